//! `COPY --from` sources read through the engine: a container is created from the stage's
//! image (never started), the listed path is stat'ed (a symlink is followed, as COPY does)
//! and archived with `GET /archive`, and the container is removed.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::StreamExt;

use super::assemble::{SourceArchive, StageFiles};
use super::error::{OutputError, Result};
use crate::engine::{ContainerId, Engine, PathKind, PathLookup, RunSpec};
use crate::plan::{JobId, Source};
use crate::platform::Platform;

/// Reads stage results that live in the engine, by job id.
pub struct EngineStageFiles<'a> {
    /// The engine.
    pub engine: &'a dyn Engine,
    /// Each finished job's engine image and platform.
    pub images: BTreeMap<JobId, (String, Platform)>,
}

/// Symlinks followed at most this many times (COPY's own limit is the kernel's, 40).
const MAX_LINKS: usize = 40;

impl EngineStageFiles<'_> {
    async fn read(
        &self,
        id: &ContainerId,
        path: &str,
        what: &str,
    ) -> Result<Option<SourceArchive>> {
        let mut path = path.to_string();
        for _ in 0..MAX_LINKS {
            let stat = self
                .engine
                .stat_path(id, &path)
                .await
                .map_err(OutputError::engine(format!("looking up {path} in {what}")))?;
            let stat = match stat {
                PathLookup::Missing => return Ok(None),
                PathLookup::Found(s) => s,
            };
            match stat.kind {
                PathKind::Symlink { target } => {
                    path = target;
                    continue;
                }
                kind => {
                    let is_dir = kind == PathKind::Dir;
                    let mut tar = Vec::new();
                    let mut stream = self.engine.get_archive(id, &path);
                    while let Some(chunk) = stream.next().await {
                        tar.extend_from_slice(
                            &chunk.map_err(OutputError::engine(format!(
                                "reading {path} from {what}"
                            )))?,
                        );
                    }
                    return Ok(Some(SourceArchive { is_dir, tar }));
                }
            }
        }
        Err(OutputError::BadArchive {
            path,
            stage: what.to_string(),
            reason: "too many levels of symbolic links".into(),
        })
    }
}

impl StageFiles for EngineStageFiles<'_> {
    fn archive<'a>(
        &'a self,
        source: &'a Source,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<SourceArchive>>> {
        Box::pin(async move {
            let (image, platform, what) = match source {
                Source::Stage { job } => {
                    let (image, platform) =
                        self.images
                            .get(job)
                            .ok_or_else(|| OutputError::MissingInput {
                                what: format!("job {job}"),
                                needed_by: format!("COPY --from (reading {path})"),
                            })?;
                    (image.clone(), platform.clone(), format!("job {job}"))
                }
                Source::Image { reference } => return Err(OutputError::MissingInput {
                    what: format!("image {reference} in the engine"),
                    needed_by:
                        "COPY --from an image (not assembled yet; use a stage: FROM image AS name)"
                            .into(),
                }),
            };
            let spec = RunSpec {
                image,
                platform: Some(platform),
                ..RunSpec::default()
            };
            let id = self
                .engine
                .create_container(&spec)
                .await
                .map_err(OutputError::engine(format!(
                    "creating a container to read {what}"
                )))?;
            let out = self.read(&id, path, &what).await;
            let removed = self.engine.remove_container(&id).await;
            let out = out?;
            removed.map_err(OutputError::engine(format!(
                "removing the container of {what}"
            )))?;
            Ok(out)
        })
    }
}
