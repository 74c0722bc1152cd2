//! `xplat build`'s main path: the engine runs only the jobs the final images need
//! (`exec::select`), then every target becomes one OCI image: finals without RUN are
//! assembled (`assemble::targets`), finals built in the engine are exported
//! (`assemble::export`) with the executor's config state. The index over them is what
//! `output::deliver` pushes, writes or loads.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::{run_plan, tag_target, BuildOptions};
use crate::assemble::export::from_engine_state;
use crate::assemble::{
    cache_dir::cache_dir_from_process, export_from_engine, images_for_targets, AssembleEnv,
    AssembleError, Bases, EngineFirstBases, EngineStageFiles, LayerCache,
};
use crate::engine::{DockerEngine, Engine};
use crate::exec::ExecError;
use crate::oci::{ImageIndex, IndexFormat, LayerOptions};
use crate::output::OutputError;
use crate::progress::Reporter;
use crate::registry::RegistryClient;

/// What making the final images needs besides the build options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageOptions {
    /// OCI or Docker documents.
    pub format: IndexFormat,
    /// The images' `created` time, Unix seconds (SOURCE_DATE_EPOCH, else the build start).
    pub created: i64,
    /// SOURCE_DATE_EPOCH when set: clamps layer mtimes.
    pub source_date_epoch: Option<i64>,
    /// A folder for exported and large layers; must outlive the delivery of the index.
    pub work_dir: PathBuf,
}

/// Why making the final images failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Running the jobs in the engine failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// Preparing the output folder failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Assembling or exporting a final image failed.
    #[error(transparent)]
    Assemble(#[from] AssembleError),
}

impl BuildError {
    /// The build was stopped by a cancellation (Ctrl-C).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, BuildError::Exec(e) if e.is_cancelled())
    }
}

/// The final images of a build.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    /// One image per target, in `--platform` order, and the index over them.
    pub index: ImageIndex,
    /// Jobs the engine ran (cached or not).
    pub jobs_run: usize,
    /// Jobs in the plan.
    pub jobs: usize,
    /// Steps executed (not cached).
    pub steps_run: usize,
    /// Steps reused from the cache.
    pub steps_cached: usize,
    /// Per-platform engine tags made with `--target` and `-t` (finals built in the engine).
    pub engine_tags: Vec<String>,
}

/// Builds every target's final image as an OCI image, running in the engine only what
/// the finals need.
pub async fn build_images(
    opts: &BuildOptions,
    engine: &DockerEngine,
    client: &RegistryClient,
    image_opts: &ImageOptions,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<ImageBuild, BuildError> {
    let ran = run_plan(opts, engine, reporter, cancel, true).await?;
    let layer_options = LayerOptions {
        source_date_epoch: image_opts.source_date_epoch,
        ..LayerOptions::default()
    };
    std::fs::create_dir_all(&image_opts.work_dir)
        .map_err(OutputError::io("creating", &image_opts.work_dir))?;
    let layers = LayerCache::new(
        cache_dir_from_process(),
        &image_opts.work_dir,
        layer_options,
    );
    let mut ready = BTreeMap::new();
    for id in &ran.selection.export {
        if cancel.is_cancelled() {
            return Err(ExecError::Cancelled.into());
        }
        let job = ran.plan.job(*id);
        let out = ran.outputs[id.0].as_ref().expect("exported jobs ran");
        let image = export_from_engine(
            engine,
            &out.image,
            &job.run_platform,
            &from_engine_state(&out.config),
            Some(image_opts.created),
            &layers,
            &[],
            &image_opts.work_dir.join(format!("job{}", id.0)),
            image_opts.format,
        )
        .await?;
        ready.insert(*id, image);
    }
    let mut engine_tags = Vec::new();
    for t in &ran.plan.targets {
        if let Some(out) = &ran.outputs[t.final_job.0] {
            if let Some(tag) = tag_target(opts, engine, &t.platform, &out.image).await? {
                engine_tags.push(tag);
            }
        }
    }
    let stage_files = EngineStageFiles::new(
        engine as &dyn Engine,
        ran.plan
            .jobs
            .iter()
            .filter_map(|j| {
                ran.outputs[j.id.0]
                    .as_ref()
                    .map(|o| (j.id, (o.image.clone(), j.run_platform.clone())))
            })
            .collect(),
    );
    let resolver = EngineFirstBases {
        engine: engine as &dyn Engine,
        client,
    };
    let bases = Bases::new(&resolver, Some(client), Some(engine));
    let env = AssembleEnv {
        context: Some(&ran.ctx),
        bases: &bases,
        stage_files: &stage_files,
        created: Some(image_opts.created),
        layers: &layers,
        work_dir: &image_opts.work_dir,
        format: image_opts.format,
    };
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled.into());
    }
    let index = images_for_targets(&ran.plan, &env, &ready).await?;
    let done = ran.outcome(Vec::new());
    Ok(ImageBuild {
        index,
        jobs_run: done.jobs,
        jobs: ran.plan.jobs.len(),
        steps_run: done.steps_run,
        steps_cached: done.steps_cached,
        engine_tags,
    })
}
