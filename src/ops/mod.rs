//! The composition root for `xplat build` and `xplat prune` as library functions: what
//! the CLI calls and what the tests call.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::context::BuildContext;
use crate::engine::{DockerEngine, Engine, ImageConfig, Removal};
use crate::exec::select::{self, EngineJobs};
use crate::exec::{scheduler, ExecError, JobEnv, JobOutput, Result};
use crate::plan::{plan, BuildPlan, Mode, PlanOptions};
use crate::platform::{Catalog, Platform};
use crate::progress::{Event, Reporter};

mod images;
pub use images::{build_images, BuildError, ImageBuild, ImageOptions};

/// Reference of the empty image that stands for `FROM scratch`.
pub const SCRATCH_IMAGE: &str = "xplat/scratch:empty";

/// What `build` needs, validated by the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BuildOptions {
    /// The build context directory.
    pub context_dir: PathBuf,
    /// The Dockerfile (default `<context>/Dockerfile`).
    pub dockerfile: Option<PathBuf>,
    /// Target platforms in the user's order (default: the engine's platform).
    pub platforms: Vec<Platform>,
    /// `--target STAGE`.
    pub target: Option<String>,
    /// `-t NAME`: with `--target`, each result is tagged `NAME-<os>-<arch>[-<variant>]`.
    pub tag: Option<String>,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--jobs N` (0 = the number of cores).
    pub jobs: usize,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Id put on every container of the build as label `xplat.build` (default: made
    /// from the time and process id).
    pub build_id: Option<String>,
    /// `--pull`: resolve every base image again instead of using the engine's copy.
    pub pull: bool,
    /// `--network`: the network of RUN containers.
    pub network: NetworkMode,
    /// `--add-host NAME:IP` (IP may be `host-gateway`), in order: `/etc/hosts` entries of
    /// RUN containers.
    pub add_hosts: Vec<(String, String)>,
    /// `--no-cache-filter STAGE`: stages whose steps run without the step cache.
    pub no_cache_filter: Vec<String>,
}

/// `--network` (buildx's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// The engine's default network.
    #[default]
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// Label on every container of one build: `xplat.build=<id>`.
pub const BUILD_LABEL: &str = "xplat.build";

/// One target platform's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetResult {
    /// The target platform.
    pub platform: Platform,
    /// The engine's image id holding the filesystem.
    pub image: String,
    /// The authoritative image config (the engine image's config may carry xplat labels).
    pub config: ImageConfig,
    /// The local tag given, if any.
    pub tag: Option<String>,
}

/// What a build produced, per target in `--platform` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildOutcome {
    /// Results in `--platform` order.
    pub targets: Vec<TargetResult>,
    /// Jobs executed.
    pub jobs: usize,
    /// Steps executed (not cached), over all jobs.
    pub steps_run: usize,
    /// Steps reused from the cache.
    pub steps_cached: usize,
}

/// The local tag of a target's result: `NAME-<os>-<arch>[-<variant>]` (a tag in
/// `NAME` is kept as the prefix of the new tag).
pub fn platform_tag(name: &str, p: &Platform) -> String {
    let mut suffix = format!("{}-{}", p.os, p.architecture);
    if !p.variant.is_empty() {
        suffix.push('-');
        suffix.push_str(&p.variant);
    }
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (name, None),
    };
    match tag {
        Some(t) => format!("{repo}:{t}-{suffix}"),
        None => format!("{repo}:{suffix}"),
    }
}

/// Builds the Dockerfile for every platform on `engine`: every job runs in the engine,
/// final stages included (what `--target` builds and the differential tests compare).
/// `xplat build` uses [`build_images`], which assembles no-RUN finals without the engine.
pub async fn build(
    opts: &BuildOptions,
    engine: &DockerEngine,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<BuildOutcome> {
    let ran = run_plan(opts, engine, reporter, cancel, false).await?;
    let mut targets = Vec::with_capacity(ran.plan.targets.len());
    for t in &ran.plan.targets {
        let out = ran.outputs[t.final_job.0].as_ref().expect("every job ran");
        let tag = tag_target(opts, engine, &t.platform, &out.image).await?;
        targets.push(TargetResult {
            platform: t.platform.clone(),
            image: out.image.clone(),
            config: out.config.clone(),
            tag,
        });
    }
    Ok(ran.outcome(targets))
}

/// With `--target` and `-t NAME`, tags a target's engine image `NAME-<os>-<arch>`.
async fn tag_target(
    opts: &BuildOptions,
    engine: &DockerEngine,
    p: &Platform,
    image: &str,
) -> Result<Option<String>> {
    match &opts.tag {
        Some(name) if opts.target.is_some() => {
            let t = platform_tag(name, p);
            engine
                .tag_image(image, &t)
                .await
                .map_err(|source| ExecError::EngineOp {
                    action: format!("tagging {t}"),
                    source: Box::new(source),
                })?;
            Ok(Some(t))
        }
        _ => Ok(None),
    }
}

/// What running (part of) a plan in the engine left.
pub(crate) struct Ran {
    /// The opened build context.
    pub ctx: BuildContext,
    /// The plan.
    pub plan: BuildPlan,
    /// Per job id, its output when it ran.
    pub outputs: Vec<Option<JobOutput>>,
    /// Which jobs ran and which are exported.
    pub selection: EngineJobs,
}

impl Ran {
    fn outcome(&self, targets: Vec<TargetResult>) -> BuildOutcome {
        let ran = self.outputs.iter().flatten();
        BuildOutcome {
            targets,
            jobs: self.selection.count(),
            steps_run: ran.clone().map(|o| o.steps_run).sum(),
            steps_cached: ran.map(|o| o.steps_cached).sum(),
        }
    }
}

/// Parses, plans and runs the plan's jobs: all of them, or with `assemble_finals` only
/// those the final images need from the engine ([`select::engine_jobs`]).
pub(crate) async fn run_plan(
    opts: &BuildOptions,
    engine: &DockerEngine,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
    assemble_finals: bool,
) -> Result<Ran> {
    let dockerfile = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context_dir.join("Dockerfile"));
    let ctx = BuildContext::open(&opts.context_dir, &dockerfile)
        .map_err(|e| ExecError::OpenContext(Box::new(e)))?;
    let text = ctx
        .read_dockerfile()
        .map_err(|e| ExecError::OpenContext(Box::new(e)))?;
    let df = crate::dockerfile::parse(&text)?;
    let plan = plan_build(opts, &df, engine.platform())?;
    let selection = if assemble_finals {
        select::engine_jobs(&plan)
    } else {
        EngineJobs::all(&plan)
    };
    // Jobs that do not run in the engine are assembled as OCI images.
    let (mut native, mut assembled, mut emulated) = (0, 0, 0);
    for j in &plan.jobs {
        match (selection.run[j.id.0], j.mode) {
            (false, _) | (true, Mode::Assembled) => assembled += 1,
            (true, Mode::Native) => native += 1,
            (true, Mode::Emulated) => emulated += 1,
        }
    }
    reporter.report(&Event::Plan {
        jobs: plan.jobs.len(),
        native,
        assembled,
        emulated,
    });
    let scratch = scratch_image(engine).await?;
    let limit = if opts.jobs == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        opts.jobs
    };
    let build_id = opts.build_id.clone().unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}-{nanos}", std::process::id())
    });
    let labels = BTreeMap::from([
        (BUILD_LABEL.to_string(), build_id),
        // `xplat prune --project` finds this project's cache by it.
        (
            crate::engine::PROJECT_LABEL.to_string(),
            ctx.root().display().to_string(),
        ),
    ]);
    let env = JobEnv {
        engine,
        reporter,
        plan: &plan,
        dockerfile: &df,
        context: Some(&ctx),
        cancel,
        no_cache: opts.no_cache,
        secrets: &opts.secrets,
        scratch_image: &scratch,
        labels: &labels,
    };
    let outputs = scheduler::execute_selected(&env, limit, &selection.run).await?;
    Ok(Ran {
        ctx,
        plan,
        outputs,
        selection,
    })
}

/// The plan `build` runs: the Dockerfile planned for `opts` with the engine's
/// platform as build platform (default target: the build platform).
pub fn plan_build(
    opts: &BuildOptions,
    df: &crate::dockerfile::Dockerfile,
    build_platform: &Platform,
) -> Result<BuildPlan> {
    let targets = if opts.platforms.is_empty() {
        vec![build_platform.clone()]
    } else {
        opts.platforms.clone()
    };
    let plan_opts = PlanOptions {
        targets,
        build_platform: build_platform.clone(),
        build_args: opts.build_args.clone(),
        target_stage: opts.target.clone(),
    };
    Ok(plan(df, &plan_opts, &Catalog::embedded())?)
}

/// The empty image for `FROM scratch`, imported once.
pub async fn scratch_image(engine: &DockerEngine) -> Result<String> {
    let err = |source| ExecError::EngineOp {
        action: "preparing the empty image for FROM scratch".into(),
        source: Box::new(source),
    };
    if let crate::engine::ImageLookup::Found(info) =
        engine.inspect_image(SCRATCH_IMAGE).await.map_err(err)?
    {
        return Ok(info.id);
    }
    // An empty tar: two zero blocks.
    let empty = bytes::Bytes::from(vec![0u8; 1024]);
    engine
        .import_rootfs(
            crate::engine::tar_body(empty),
            SCRATCH_IMAGE,
            engine.platform(),
        )
        .await
        .map_err(err)
}

/// What `prune` may remove and whether it only says so.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneOptions {
    /// `--older-than`, `--project`, `--filter label=`.
    pub filter: crate::exec::prune::PruneFilter,
    /// `--dry-run`: list, remove nothing.
    pub dry_run: bool,
}

/// One thing a prune removed (or, with `--dry-run`, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneItem {
    /// `container`, `image` or `volume`.
    pub kind: &'static str,
    /// Its id or name.
    pub id: String,
    /// Its own bytes, when known.
    pub bytes: Option<i64>,
}

/// What `prune` removed (or would remove, with `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PruneOutcome {
    /// Nothing was removed: the counts say what would be.
    pub dry_run: bool,
    /// Step-cache images removed.
    pub images: usize,
    /// Bytes of the removed images' own layers.
    pub image_bytes: i64,
    /// xplat images kept: user-tagged results (`-t`), what they build on, what the
    /// filters leave, and images the engine reported in use.
    pub kept: usize,
    /// Cache volumes removed.
    pub volumes: usize,
    /// Bytes of the removed volumes the engine reported.
    pub volume_bytes: i64,
    /// Leftover xplat containers removed.
    pub containers: usize,
    /// Everything removed, in the order it went.
    pub items: Vec<PruneItem>,
}

/// Removes xplat's leftover containers, step-cache images and cache volumes that
/// `options.filter` selects (all of them by default); results a user tagged (`-t`) stay,
/// with the cache images under them (see [`exec::prune`]). With `dry_run` nothing is
/// removed and the outcome says what would be.
///
/// [`exec::prune`]: crate::exec::prune
pub async fn prune(engine: &DockerEngine, options: &PruneOptions) -> Result<PruneOutcome> {
    use crate::exec::prune::{select_containers, select_filtered, select_volumes};
    let op = |action: &str| {
        let action = action.to_string();
        move |source| ExecError::EngineOp {
            action,
            source: Box::new(source),
        }
    };
    let dry = options.dry_run;
    let mut out = PruneOutcome {
        dry_run: dry,
        ..PruneOutcome::default()
    };
    let containers = engine
        .list_managed_container_entries()
        .await
        .map_err(op("listing xplat's containers"))?;
    for c in select_containers(&containers, &options.filter) {
        if !dry {
            engine
                .remove_container(&c.id)
                .await
                .map_err(op("removing a container"))?;
        }
        out.containers += 1;
        out.items.push(PruneItem {
            kind: "container",
            id: c.id.0.clone(),
            bytes: None,
        });
    }
    let images = engine.list_images().await.map_err(op("listing images"))?;
    let selection = select_filtered(&images, &options.filter);
    out.kept = selection.kept;
    for (id, bytes) in &selection.remove {
        let removed = dry
            || engine
                .remove_unused_image(id)
                .await
                .map_err(op("removing a cached image"))?
                == Removal::Removed;
        if removed {
            out.images += 1;
            out.image_bytes += bytes;
            out.items.push(PruneItem {
                kind: "image",
                id: id.clone(),
                bytes: Some(*bytes),
            });
        } else {
            out.kept += 1;
        }
    }
    let vols = if options.filter.spares_volumes() {
        Vec::new()
    } else {
        engine
            .list_cache_volumes()
            .await
            .map_err(op("listing cache volumes"))?
    };
    for v in select_volumes(&vols, &options.filter) {
        if !dry {
            engine
                .remove_volume(&v.name)
                .await
                .map_err(op("removing a cache volume"))?;
        }
        out.volumes += 1;
        out.volume_bytes += v.size.unwrap_or(0);
        out.items.push(PruneItem {
            kind: "volume",
            id: v.name.clone(),
            bytes: v.size,
        });
    }
    Ok(out)
}
