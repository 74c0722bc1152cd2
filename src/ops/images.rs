//! `xplat build`'s main path: the engine runs only the jobs the final images need and
//! the caches cannot give (`exec::select`), then every target becomes one OCI image:
//! assembled jobs are composed (`assemble::targets`, reading engine-built stages from the
//! outputs the executor recorded), finals built in the engine are exported
//! (`assemble::export`) with the executor's config state. The index over them is what
//! `output::deliver` pushes, writes or loads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use futures::future::BoxFuture;

use super::{run_engine, tag_target, BuildOptions, Engines, Ran};
use crate::assemble::{
    cache_dir::cache_dir_from_process, export_from_engine, images_for_targets, AssembleEnv,
    AssembleError, Bases, KnownBases, LayerCache, RunTraces, StageFiles,
};
use crate::exec::{ExecError, Fs};
use crate::oci::{ImageIndex, IndexFormat, LayerOptions};
use crate::output::OutputError;
use crate::plan::{Base, JobId, Mode};
use crate::progress::Reporter;
use crate::registry::RegistryClient;
use crate::stage::SourceFs;

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
    /// Advice carried by the error (its variants are transparent, so an error chain never
    /// shows the inner error as a link of its own).
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Exec(ExecError::Resolve(r))
            | BuildError::Assemble(AssembleError::Resolve(r)) => r.hint(),
            _ => None,
        }
    }

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
    /// The plan the build ran (the `--metadata-file` records it).
    pub plan: crate::plan::BuildPlan,
    /// Every job's chain key (what `--cache-to` exports the recordings of).
    pub cache_keys: std::collections::BTreeSet<String>,
    /// The output cache's folder, if one is kept.
    pub outputs_dir: Option<PathBuf>,
    /// With `--cache-to ...,mode=max`: the step-cache checkpoints of the build's jobs.
    pub checkpoints: Vec<crate::travel::CheckpointImage>,
}

/// Builds every target's final image as an OCI image, running on the engines only what
/// the finals need and the caches cannot give; an engine-built image is exported from the
/// engine its job ran on.
pub async fn build_images(
    opts: &BuildOptions,
    engines: &Engines,
    client: &RegistryClient,
    image_opts: &ImageOptions,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<ImageBuild, BuildError> {
    let ran = run_engine(opts, engines, client, reporter, cancel, false).await?;
    let layer_options = LayerOptions {
        source_date_epoch: image_opts.source_date_epoch,
        ..LayerOptions::default()
    };
    std::fs::create_dir_all(&image_opts.work_dir)
        .map_err(OutputError::io("creating", &image_opts.work_dir))?;
    let layers = LayerCache::new(
        opts.cache_dir.clone().or_else(cache_dir_from_process),
        &image_opts.work_dir,
        layer_options,
    );
    // Engine jobs whose image an output or an assembled job needs, exported once.
    let mut ready = BTreeMap::new();
    for (i, out) in ran.exec.outputs.iter().enumerate() {
        let (Some(out), true) = (out, needs_export(&ran, JobId(i))) else {
            continue;
        };
        if cancel.is_cancelled() {
            return Err(ExecError::Cancelled.into());
        }
        let Fs::Image(image) = &out.fs else {
            continue;
        };
        let job = ran.plan.job(JobId(i));
        let exported = export_from_engine(
            engines.by_label(&out.engine),
            image,
            &job.run_platform,
            &out.config,
            Some(image_opts.created),
            &layers,
            &[],
            &image_opts.work_dir.join(format!("job{i}")),
            image_opts.format,
            &run_traces(&ran.plan, JobId(i)),
        )
        .await?;
        ready.insert(JobId(i), exported);
    }
    let mut engine_tags = Vec::new();
    for t in &ran.plan.targets {
        if let Some(Some(out)) = ran.exec.outputs.get(t.final_job.0) {
            if let Fs::Image(image) = &out.fs {
                let engine = engines.by_label(&out.engine);
                if let Some(tag) = tag_target(opts, engine, &t.platform, image).await? {
                    engine_tags.push(tag);
                }
            }
        }
    }
    let stage_files = RecordedStageFiles { ran: &ran };
    let known = KnownBases(&ran.bases);
    let bases = Bases::new(&known, Some(client), Some(engines.first()));
    let env = AssembleEnv {
        context: Some(&ran.ctx),
        bases: &bases,
        stage_files: &stage_files,
        created: Some(image_opts.created),
        layers: &layers,
        work_dir: &image_opts.work_dir,
        format: image_opts.format,
        reporter,
    };
    if cancel.is_cancelled() {
        return Err(ExecError::Cancelled.into());
    }
    let index = images_for_targets(&ran.plan, &env, &ready).await?;
    let (steps_run, steps_cached) = ran.exec.step_counts();
    Ok(ImageBuild {
        index,
        jobs_run: ran.exec.selection.count(),
        jobs: ran.plan.jobs.len(),
        steps_run,
        steps_cached,
        engine_tags,
        plan: ran.plan.clone(),
        cache_keys: ran
            .exec
            .keys
            .jobs
            .iter()
            .map(|k| k.key_out.clone())
            .collect(),
        outputs_dir: ran.outputs.dir().map(Path::to_path_buf),
        checkpoints: match &opts.cache_to {
            Some(t) if t.mode == crate::travel::Mode::Max => build_checkpoints(&ran, engines).await,
            _ => Vec::new(),
        },
    })
}

/// The step-cache checkpoints (in every engine) at any step of the build's jobs.
async fn build_checkpoints(ran: &Ran, engines: &Engines) -> Vec<crate::travel::CheckpointImage> {
    let keys: std::collections::BTreeSet<&str> = ran
        .exec
        .keys
        .jobs
        .iter()
        .flat_map(|k| {
            std::iter::once(&k.key_in)
                .chain(&k.steps)
                .chain(std::iter::once(&k.key_out))
        })
        .map(String::as_str)
        .collect();
    let mut out = Vec::new();
    for (label, all) in &ran.exec.checkpoints {
        let engine = engines.by_label(label);
        for (key, image) in all {
            if !keys.contains(key.as_str()) {
                continue;
            }
            let found = crate::engine::Engine::inspect_image(engine, image).await;
            if let Ok(crate::engine::ImageLookup::Found(info)) = found {
                out.push(crate::travel::CheckpointImage {
                    key: key.clone(),
                    image: info.id.clone(),
                    diff_ids: info.diff_ids.clone(),
                    engine: engine.clone(),
                });
            }
        }
    }
    out
}

/// What the RUN steps that made the job's image did (in the job, and in the engine-built
/// jobs it starts from): whether there was one, and the absolute targets of their bind and
/// secret mounts (a relative target is left out: it is resolved against a WORKDIR only the
/// executor knows).
fn run_traces(plan: &crate::plan::BuildPlan, id: JobId) -> RunTraces {
    use crate::dockerfile::{Instruction, MountType};
    let job = plan.job(id);
    let mut traces = match job.base {
        Base::Stage { job } => run_traces(plan, job),
        _ => RunTraces::default(),
    };
    for s in &job.steps {
        let Instruction::Run(r) = &s.instruction else {
            continue;
        };
        traces.ran = true;
        for m in &r.mounts {
            let target = m.target.clone().filter(|t| !t.is_empty());
            let target = match m.kind {
                MountType::Secret if target.is_none() && m.env.is_none() => {
                    Some(format!("/run/secrets/{}", m.id.clone().unwrap_or_default()))
                }
                MountType::Secret | MountType::Bind => target,
                _ => None,
            };
            if let Some(t) = target.filter(|t| t.starts_with('/')) {
                traces.mount_targets.insert(crate::context::clean_path(&t));
            }
        }
    }
    traces
}

/// Whether an engine job's image becomes (part of) a final image: a final built in the
/// engine, or the base of an assembled job.
fn needs_export(ran: &Ran, id: JobId) -> bool {
    let plan = &ran.plan;
    if plan.job(id).mode == Mode::Assembled {
        return false;
    }
    plan.targets.iter().any(|t| t.final_job == id)
        || plan.jobs.iter().any(|k| {
            k.mode == Mode::Assembled && matches!(k.base, Base::Stage { job } if job == id)
        })
}

/// `COPY --from` an engine-built stage, for assembled jobs: the files the executor
/// recorded for this build's consumers (no engine call).
struct RecordedStageFiles<'a> {
    ran: &'a Ran,
}

impl StageFiles for RecordedStageFiles<'_> {
    fn open<'a>(
        &'a self,
        job: JobId,
    ) -> BoxFuture<'a, crate::assemble::Result<Box<dyn SourceFs + 'a>>> {
        Box::pin(async move {
            let key = &self.ran.exec.keys.job(job).key_out;
            let roots: Vec<String> = self.ran.exec.selection.roots[job.0]
                .iter()
                .cloned()
                .collect();
            let files =
                self.ran
                    .outputs
                    .files(key, &roots)
                    .ok_or_else(|| AssembleError::MissingInput {
                        what: format!("the recorded files of job {job}"),
                        needed_by: "COPY --from".into(),
                    })?;
            Ok(Box::new(files) as Box<dyn SourceFs + 'a>)
        })
    }

    fn has(&self, job: JobId) -> bool {
        self.ran.plan.job(job).mode != Mode::Assembled
    }
}
