//! The images a job starts from in the engine: a base image, pulled by digest once per
//! build when the resolver found it in a registry (its platform checked after the pull),
//! or used as the engine holds it; and the empty image of a platform for `FROM scratch`.

use super::{At, ExecError, JobEnv, Result};
use crate::engine::ImageLookup;
use crate::plan::{base_key, BaseOrigin};
use crate::platform::Platform;

/// A base image in the engine, pulled by digest once per build when the resolver found
/// it in a registry; its platform is checked.
pub async fn base_image(
    env: &JobEnv<'_>,
    at: &At<'_>,
    reference: &str,
    platform: &Platform,
) -> Result<String> {
    let base = env
        .bases
        .get(&base_key(reference, platform))
        .ok_or_else(|| ExecError::UnresolvedImage {
            stage: at.stage(),
            reference: reference.into(),
            platform: platform.format_all(),
        })?;
    let pinned = match &base.origin {
        // Resolved in the engine's store; with one engine that is this one.
        BaseOrigin::Engine { image_id } if env.engine_name.is_none() => return Ok(image_id.clone()),
        BaseOrigin::Engine { .. } | BaseOrigin::Registry { .. } => base.info.pinned.clone(),
    };
    let local_only = matches!(base.origin, BaseOrigin::Engine { .. });
    let cell = env.shared.pulls.cell(&pinned);
    cell.get_or_try_init(|| async {
        if local_only {
            // Found in some engine's store: this engine must hold the same image (same
            // id), since nothing can pull it. Images move between engines through a
            // registry or `docker save | docker load`, not behind the user's back.
            return match env
                .engine
                .inspect_image(&pinned)
                .await
                .map_err(at.engine(format!("inspecting {pinned}")))?
            {
                ImageLookup::Found(info) => Ok(info.id),
                ImageLookup::Missing => Err(ExecError::BaseNotOnEngine {
                    stage: at.stage(),
                    reference: reference.into(),
                    platform: platform.format(),
                    engine: env.engine_label().to_string(),
                }),
            };
        }
        if let ImageLookup::Found(info) = env
            .engine
            .inspect_image(&pinned)
            .await
            .map_err(at.engine(format!("inspecting {pinned}")))?
        {
            return Ok(info.id);
        }
        let sink = |_p: crate::engine::PullProgress| {};
        env.engine
            .pull_image(&pinned, platform, &sink)
            .await
            .map_err(at.engine(format!("pulling {reference} for {platform}")))?;
        match env
            .engine
            .inspect_image(&pinned)
            .await
            .map_err(at.engine(format!("inspecting {pinned}")))?
        {
            ImageLookup::Found(info) if platform.matches(&info.platform) => Ok(info.id),
            ImageLookup::Found(info) => Err(ExecError::WrongPlatform {
                stage: at.stage(),
                reference: reference.into(),
                wanted: platform.format(),
                actual: info.platform.format(),
            }),
            ImageLookup::Missing => Err(ExecError::UnresolvedImage {
                stage: at.stage(),
                reference: pinned.clone(),
                platform: platform.format_all(),
            }),
        }
    })
    .await
    .cloned()
}

/// The empty image labelled for `platform` (for `FROM scratch` jobs that run in the
/// engine), once per build and engine ([`empty_image`]).
pub async fn scratch_image(env: &JobEnv<'_>, at: &At<'_>, platform: &Platform) -> Result<String> {
    let slug = platform.format().replace('/', "-");
    let cell = env.shared.scratch.cell(&slug);
    cell.get_or_try_init(|| async {
        super::empty::empty_image(env.engine, platform)
            .await
            .map_err(|e| match e {
                ExecError::EngineOp { action, source } => at.engine(action)(*source),
                other => other,
            })
    })
    .await
    .cloned()
}
