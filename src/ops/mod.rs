//! The composition root for `xplat build` and `xplat prune` as library functions: what
//! the CLI calls and what the tests call. [`Session`] (in `session`) holds what `xplat
//! plan`, `check` and `build` share: the catalog, the Dockerfile and the planner's inputs;
//! [`BuildOptions::catalog`] and [`BuildOptions::plan_inputs`] carry them into the build,
//! so [`plan_build`] plans exactly what `xplat plan` printed (given the same build platform
//! and base images), and the plan it ran goes out in the plan event.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::context::BuildContext;
use crate::engine::fleet::EngineSpec;
use crate::engine::{DockerEngine, Engine};
use crate::exec::outputs::{cache_root, OutputCache};
use crate::exec::scheduler::{execute, ExecInputs, ExecOutcome};
use crate::exec::{ExecError, Fs, Result};
use crate::oci::ContainerConfig;
use crate::plan::{plan, Base, BuildPlan, JobId, Mode, Source};
use crate::platform::{Catalog, Platform};
use crate::progress::{Event, Reporter};
use crate::registry::RegistryClient;

pub mod engines;
mod images;
pub mod resolve;
pub mod session;
pub use engines::{BuildEngine, Engines};
pub use images::{build_images, BuildError, ImageBuild, ImageOptions};
pub use session::{PlanInputs, Session};

/// Repository of the empty images that stand for `FROM scratch` in the engine, one tag
/// per platform (`xplat/scratch:linux-arm64`).
pub const SCRATCH_REPO: &str = "xplat/scratch";

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
    /// `--pull`: resolve base images in their registry even when the engine has them.
    pub pull: bool,
    /// `--jobs N` (0 = the number of cores).
    pub jobs: usize,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// Id put on every container of the build as label `xplat.build` (default: made
    /// from the time and process id).
    pub build_id: Option<String>,
    /// xplat's cache folder (default: `XPLAT_CACHE_DIR`, `$XDG_CACHE_HOME/xplat`,
    /// `~/.cache/xplat` from the process environment).
    pub cache_dir: Option<PathBuf>,
    /// `[engines]` and `--engine`: the engines to build on (empty: the default engine).
    pub engines: Vec<EngineSpec>,
    /// `--on-engine-loss`: what happens to the jobs of an engine that stops answering.
    pub on_engine_loss: crate::exec::fleet::OnLoss,
    /// `--build-platform`: every target's build stages run as it (default: the first
    /// engine's platform, or with engines the platform of the engine that runs a target).
    pub build_platform: Option<Platform>,
    /// `--network`: the network of RUN containers.
    pub network: NetworkMode,
    /// `--add-host NAME:IP` (IP may be `host-gateway`), in order: `/etc/hosts` entries of
    /// RUN containers.
    pub add_hosts: Vec<(String, String)>,
    /// `--no-cache-filter STAGE`: stages whose steps run without the step cache.
    pub no_cache_filter: Vec<String>,
    /// The session's platform catalog (embedded, the user's folder, `--platforms-dir`):
    /// the build plans with the catalog `xplat plan` plans with.
    pub catalog: Catalog,
    /// The session's parsed Dockerfile (`None`: read and parse [`BuildOptions::dockerfile`]).
    pub parsed: Option<crate::dockerfile::Dockerfile>,
    /// `--cache-from`: caches whose entries the output cache takes before the build.
    pub cache_from: Vec<crate::travel::Location>,
    /// `--cache-to`: where the caller exports the build's cache after delivering it.
    pub cache_to: Option<crate::travel::CacheTo>,
}

impl BuildOptions {
    /// The planner's inputs, as the session has them.
    pub fn plan_inputs(&self) -> PlanInputs {
        PlanInputs {
            platforms: self.platforms.clone(),
            build_platform: self.build_platform.clone(),
            build_args: self.build_args.clone(),
            target: self.target.clone(),
        }
    }
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetResult {
    /// The target platform.
    pub platform: Platform,
    /// The engine's image id holding the filesystem.
    pub image: String,
    /// The authoritative image config (the engine image's config may carry xplat labels).
    pub config: ContainerConfig,
    /// The local tag given, if any.
    pub tag: Option<String>,
}

/// What a build produced, per target in `--platform` order.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Builds the Dockerfile for every platform with every job in the engine, finals
/// included (what `--target STAGE -t NAME` tags and the classic-builder differential
/// suite compares). `xplat build` uses [`build_images`], which assembles RUN-free finals.
pub async fn build(
    opts: &BuildOptions,
    engine: &DockerEngine,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<BuildOutcome> {
    build_on(opts, &Engines::single(engine.clone()), reporter, cancel).await
}

/// [`build`] on the build's engines (`[engines]`): each job on its engine, each result
/// tagged in the engine that holds it.
pub async fn build_on(
    opts: &BuildOptions,
    engines: &Engines,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<BuildOutcome> {
    let client = RegistryClient::new(crate::registry::ClientOptions::default())
        .map_err(|e| ExecError::RegistryClient(Box::new(e)))?;
    let built = stage_results(opts, engines, &client, reporter, cancel).await;
    // Nothing follows in the engine: the removal of retired containers is waited for here.
    let settled = engines.settle().await;
    let built = built?;
    settled.map_err(|source| ExecError::EngineOp {
        action: "removing the build's containers".into(),
        source: Box::new(source),
    })?;
    Ok(built)
}

/// [`build_on`] but for waiting on the retired containers.
async fn stage_results(
    opts: &BuildOptions,
    engines: &Engines,
    client: &RegistryClient,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
) -> Result<BuildOutcome> {
    let ran = run_engine(opts, engines, client, reporter, cancel, true).await?;
    let mut targets = Vec::with_capacity(ran.plan.targets.len());
    for t in &ran.plan.targets {
        let out = ran.exec.outputs[t.final_job.0]
            .as_ref()
            .expect("every final ran or was cached");
        let Fs::Image(image) = &out.fs else {
            unreachable!("finals are committed: their image is needed")
        };
        let tag = tag_target(opts, engines.by_label(&out.engine), &t.platform, image).await?;
        targets.push(TargetResult {
            platform: t.platform.clone(),
            image: image.clone(),
            config: out.config.config.clone().unwrap_or_default(),
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

/// What running the engine side of a plan left.
pub(crate) struct Ran {
    /// The opened build context.
    pub ctx: BuildContext,
    /// The plan.
    pub plan: BuildPlan,
    /// Base images resolved before planning.
    pub bases: resolve::Bases,
    /// What the executor did.
    pub exec: ExecOutcome,
    /// The output cache.
    pub outputs: OutputCache,
}

impl Ran {
    fn outcome(&self, targets: Vec<TargetResult>) -> BuildOutcome {
        let (steps_run, steps_cached) = self.exec.step_counts();
        BuildOutcome {
            targets,
            jobs: self.exec.selection.count(),
            steps_run,
            steps_cached,
        }
    }
}

/// Every (reference, platform) the plan starts from or copies from, with the engine of
/// the job that wants it (`None`: an assembled job, or no engines named).
pub fn wanted_images(plan: &BuildPlan) -> Vec<(String, Platform, Option<String>)> {
    let mut out = Vec::new();
    for j in &plan.jobs {
        let at = || j.engine.clone();
        if let Base::Image { reference, .. } = &j.base {
            out.push((reference.clone(), j.run_platform.clone(), at()));
        }
        for s in &j.steps {
            let sources = s.from.iter().chain(s.mount_from.iter().flatten());
            for src in sources {
                if let Source::Image { reference } = src {
                    out.push((reference.clone(), j.run_platform.clone(), at()));
                }
            }
        }
    }
    out
}

/// Takes the entries of every `--cache-from` into the output cache, and lists their
/// checkpoints (`mode=max`), which the executor loads when a job would start from one.
/// Nothing here fails the build: a source that cannot be read, or an entry that does not
/// check out, is a warning.
async fn import_caches(
    from: &[crate::travel::Location],
    outputs: &OutputCache,
    client: &RegistryClient,
    reporter: &dyn Reporter,
) -> crate::travel::Checkpoints {
    let work = std::env::temp_dir().join(format!("xplat-travel-{}", std::process::id()));
    let mut checkpoints = crate::travel::Checkpoints::new(client.clone(), work);
    let Some(dir) = outputs.dir() else {
        return checkpoints;
    };
    for at in from {
        let name = crate::travel::describe(at);
        let message = match crate::travel::import(at, dir, client).await {
            Ok(got) => {
                for why in &got.skipped {
                    reporter.report(&Event::Note {
                        message: format!("warning: cache from {name}: skipped {why}"),
                    });
                }
                let listed = got.checkpoints.len();
                let new = checkpoints.add(at, got.checkpoints);
                let ckpts = if listed > 0 {
                    format!(", {new} checkpoints listed (loaded when a job starts from one)")
                } else {
                    String::new()
                };
                format!(
                    "cache from {name}: {} entries taken, {} already here{ckpts}",
                    got.entries, got.present
                )
            }
            Err(e) => format!("warning: cache from {name} could not be read: {e}"),
        };
        reporter.report(&Event::Note { message });
    }
    checkpoints
}

/// Parses, plans (placing jobs on the engines), resolves the base images (each in the
/// store of the engine that first needs it, else its registry) and runs the engine jobs
/// the caches cannot serve.
pub(crate) async fn run_engine(
    opts: &BuildOptions,
    engines: &Engines,
    client: &RegistryClient,
    reporter: &dyn Reporter,
    cancel: &CancellationToken,
    all_in_engine: bool,
) -> Result<Ran> {
    let dockerfile = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| opts.context_dir.join("Dockerfile"));
    let ctx = BuildContext::open(&opts.context_dir, &dockerfile)
        .map_err(|e| ExecError::OpenContext(Box::new(e)))?;
    // The session's syntax tree when the caller has one: the Dockerfile is read and parsed
    // once per command.
    let df = match &opts.parsed {
        Some(df) => df.clone(),
        None => {
            let text = ctx
                .read_dockerfile()
                .map_err(|e| ExecError::OpenContext(Box::new(e)))?;
            crate::dockerfile::parse(&text)?
        }
    };
    let slots = engines.slots();
    let build_platform = opts
        .build_platform
        .clone()
        .unwrap_or_else(|| engines.build_platform());
    let plan_with = |slots: &[crate::plan::EngineSlot], bases: &resolve::Bases| {
        plan_build(opts, &df, &build_platform, all_in_engine, slots, bases)
    };
    // Engines that did not answer: said before anything runs, with what they would have run.
    if !engines.dead.is_empty() {
        let mut all = slots.clone();
        all.extend(engines::dead_slots(engines));
        let would = plan_with(&all, &resolve::Bases::new())?;
        for line in engines::check_unreachable(engines, &would, opts.on_engine_loss)? {
            reporter.report(&Event::Note { message: line });
        }
    }
    // Plan, resolve every image the plan names, plan again with them (their ENV, WORKDIR
    // and ONBUILD triggers), until no new image appears (a trigger may name one).
    let mut bases = resolve::Bases::new();
    let mut plan = plan_with(&slots, &bases)?;
    for _ in 0..4 {
        let mut wanted: BTreeMap<Option<String>, Vec<(String, Platform)>> = BTreeMap::new();
        for (r, p, at) in wanted_images(&plan) {
            if !bases.contains_key(&resolve::base_key(&r, &p)) {
                wanted.entry(at).or_default().push((r, p));
            }
        }
        if wanted.is_empty() {
            break;
        }
        for (at, list) in wanted {
            let engine = engines.by_name(at.as_deref());
            let more = resolve::resolve_all(&list, Some(engine as &dyn Engine), client, opts.pull)
                .await
                .map_err(|e| ExecError::Resolve(Box::new(e.with_arg_hint(&df, &plan))))?;
            for (k, v) in more {
                bases.entry(k).or_insert(v);
            }
        }
        plan = plan_with(&slots, &bases)?;
    }
    let (native, assembled, emulated) = plan.mode_counts();
    reporter.report(&Event::Plan {
        jobs: plan.jobs.len(),
        native,
        assembled,
        emulated,
        plan: Box::new(plan.clone()),
    });
    let limit = match opts.jobs {
        0 if engines.named() => engines.job_limit(),
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
        n => n,
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
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let outputs = OutputCache::new(opts.cache_dir.clone().or_else(|| cache_root(&env)));
    let travelled = if opts.no_cache {
        None
    } else {
        Some(import_caches(&opts.cache_from, &outputs, client, reporter).await)
    };
    let mut image_needed = BTreeSet::new();
    for t in &plan.targets {
        if plan.job(t.final_job).mode != Mode::Assembled {
            image_needed.insert(t.final_job);
        }
    }
    let exec = execute(ExecInputs {
        engines: engines.fleet(),
        on_loss: opts.on_engine_loss,
        reporter,
        plan: &plan,
        bases: &bases,
        context: Some(&ctx),
        cancel,
        no_cache: opts.no_cache,
        secrets: &opts.secrets,
        labels: &labels,
        outputs: &outputs,
        image_needed,
        limit,
        escape: df.directives.escape,
        network: match opts.network {
            NetworkMode::Default => crate::engine::Network::Default,
            NetworkMode::None => crate::engine::Network::None,
            NetworkMode::Host => crate::engine::Network::Host,
        },
        add_hosts: opts
            .add_hosts
            .iter()
            .map(|(name, ip)| format!("{name}:{ip}"))
            .collect(),
        no_cache_stages: opts.no_cache_filter.clone(),
        travelled: match &travelled {
            Some(t) => t,
            None => &crate::exec::travelled::NoTravel,
        },
        keep_checkpoints: opts
            .cache_to
            .as_ref()
            .is_some_and(|t| t.mode == crate::travel::Mode::Max),
    })
    .await?;
    Ok(Ran {
        ctx,
        plan,
        bases,
        exec,
        outputs,
    })
}

/// The plan `build` runs: the Dockerfile planned for `opts` (with the session's catalog)
/// with `build_platform` as the default build platform (default target: the build
/// platform), the jobs placed on `engines` (none: one engine) and the base images resolved
/// so far.
pub fn plan_build(
    opts: &BuildOptions,
    df: &crate::dockerfile::Dockerfile,
    build_platform: &Platform,
    all_in_engine: bool,
    engines: &[crate::plan::EngineSlot],
    bases: &resolve::Bases,
) -> Result<BuildPlan> {
    let mut plan_opts = opts
        .plan_inputs()
        .options(build_platform, all_in_engine, engines);
    plan_opts.bases = bases
        .iter()
        .map(|(k, b)| (k.clone(), b.info.clone()))
        .collect();
    Ok(plan(df, &plan_opts, &opts.catalog)?)
}

/// Keeps the job-id type in scope for readers.
#[allow(dead_code)]
fn _ids(_: JobId) {}

mod prune;
pub use prune::{prune, PruneItem, PruneOptions, PruneOutcome};
