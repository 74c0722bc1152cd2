//! The build planner: from a parsed [`Dockerfile`], the target platforms, the
//! build args and an optional `--target` stage, computes which work runs where
//! before anything runs. The result, a [`BuildPlan`], is the value the
//! executor consumes and `xplat plan --format json` prints.
//!
//! Pure: no I/O, no engine, no environment. The caller reads files and passes
//! the build platform in. Split by concern:
//! - [`args`]: automatic platform ARGs, catalog ARGs, global and stage ARG scoping;
//! - `resolve`: each instruction's words expanded with the ARG/ENV values it can see;
//! - `graph`: stage lookup, per-target stage instances, references, cycles,
//!   dedup of identical instances into one [`Job`], topological order;
//! - [`mode`]: [`Mode`] (native / assembled / emulated) and its [`Reason`];
//! - [`place`]: which engine runs each engine job, when several are configured;
//! - [`key`]: [`CacheKey`], sha256 of a canonical serialization of resolved inputs;
//! - [`lint`]: the lints of `xplat check` and their renderer;
//! - [`render`]: the text `xplat plan` prints for people.
//!
//! Base images: with a [`BaseInfo`] in [`PlanOptions::bases`] (resolved before
//! planning), a job starts from its base's config as BuildKit does (ENV, WORKDIR,
//! ONBUILD triggers as its first steps). Without one (planning offline), a name
//! only the image could define is listed in [`Step::unresolved`] and the step keeps
//! its raw instruction in [`Step::template`] for the executor to re-expand with the
//! image config, and the image's triggers are the executor's to run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dockerfile::{Dockerfile, Instruction};
use crate::platform::{Catalog, Platform};

pub mod args;
mod error;
mod graph;
pub mod key;
pub mod lint;
pub mod mode;
pub mod place;
pub mod render;
mod resolve;
pub mod share;
mod start;

pub use resolve::expand_instruction;

pub use error::{PlanError, Result};
pub use key::CacheKey;
pub use lint::{fails, lint, render_diagnostics, Diagnostic, Severity};
pub use mode::{Mode, Reason};
pub use place::EngineSlot;
pub use render::render_text;

/// One base image resolved for one requested platform, before planning (the
/// resolver does the I/O; the planner only reads this).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseInfo {
    /// What to use: an engine image id `sha256:…` or `repo@sha256:<manifest>`.
    pub pinned: String,
    /// The image's actual platform.
    pub platform: Platform,
    /// Its config: Env, WorkingDir and OnBuild are what the planner reads.
    pub config: crate::oci::ImageConfig,
}

/// A base image resolved once per (reference, platform) before planning, by the one
/// resolver (`ops::resolve`): what the planner, the executor and the assembler all read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedBase {
    /// The reference as written after expansion.
    pub reference: String,
    /// The platform asked for.
    pub requested: Platform,
    /// What was found: pinned id, actual platform, config.
    pub info: BaseInfo,
    /// Where its layers are.
    pub origin: BaseOrigin,
}

/// Where a resolved base's layers are.
#[derive(Debug, Clone, PartialEq)]
pub enum BaseOrigin {
    /// In the engine's store (used as is, as BuildKit-in-engine does).
    Engine {
        /// The engine's image id.
        image_id: String,
    },
    /// In a registry, by digest: the engine pulls `repository@manifest_digest`, the
    /// assembler leaves the layers there.
    Registry {
        /// `registry/repository`.
        repository: String,
        /// The platform manifest's digest.
        manifest_digest: String,
        /// Its layer descriptors, base first.
        layers: Vec<crate::oci::Descriptor>,
    },
}

/// Resolved bases by (reference as expanded, requested platform's `format_all()`).
pub type Bases = BTreeMap<(String, String), ResolvedBase>;

/// The key of a base in [`Bases`] and [`PlanOptions::bases`].
pub fn base_key(reference: &str, platform: &Platform) -> (String, String) {
    (reference.to_string(), platform.normalized().format_all())
}

/// What to plan: validated options (the CLI builds them from flags).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PlanOptions {
    /// Target platforms, in the user's `--platform` order (normalized by the caller
    /// or here; duplicates after normalization are an error).
    pub targets: Vec<Platform>,
    /// The platform the engine runs natively (BUILDPLATFORM).
    pub build_platform: Platform,
    /// `--build-arg NAME=VALUE` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target NAME` (a stage name, case-insensitive, or an index); `None`: the last stage.
    pub target_stage: Option<String>,
    /// Run every job in the engine, assembling nothing (stage results tagged in the
    /// engine with `--target STAGE -t NAME`; the classic-builder differential suite).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_in_engine: bool,
    /// Base images resolved before planning, by (reference as expanded in FROM,
    /// requested platform's `format_all()`). Empty: plan without them.
    #[serde(skip)]
    pub bases: BTreeMap<(String, String), BaseInfo>,
    /// The engines jobs are placed on, in the user's order (the first is the default).
    /// Empty: one engine, whose platform is [`PlanOptions::build_platform`] (no
    /// placement; every job's [`Job::engine`] is `None`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub engines: Vec<EngineSlot>,
    /// The user chose the build platform (`--build-platform`): every target's build
    /// stages run as it. Otherwise, with engines, a target an engine runs natively gets
    /// that engine's platform as its BUILDPLATFORM, as a buildx node does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fixed_build_platform: bool,
}

impl PlanOptions {
    /// The BUILDPLATFORM of `target`: [`PlanOptions::build_platform`], unless engines are
    /// configured, the user did not fix it, and an engine runs `target` natively: then
    /// that engine's first platform (so its build stages run there, natively, and each
    /// engine builds its own targets as buildx nodes do).
    pub fn build_platform_for(&self, target: &Platform) -> Platform {
        if self.fixed_build_platform {
            return self.build_platform.normalized();
        }
        self.engines
            .iter()
            .find(|e| e.runs_natively(target))
            .and_then(|e| e.native.first())
            .unwrap_or(&self.build_platform)
            .normalized()
    }

    /// The platforms some engine runs natively: the engines' own, or the build platform
    /// when none are configured.
    pub fn native_platforms(&self) -> Vec<Platform> {
        if self.engines.is_empty() {
            return vec![self.build_platform.normalized()];
        }
        self.engines
            .iter()
            .flat_map(|e| e.native.iter().map(Platform::normalized))
            .collect()
    }
}

/// Index of a job in [`BuildPlan::jobs`]. Jobs are topologically ordered, so a
/// job's dependencies always have smaller ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobId(pub usize);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The plan: every job to run, in dependency order, and the job whose result is
/// each target's image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildPlan {
    /// The build platform the plan was made for.
    pub build_platform: Platform,
    /// The stage that was built (`--target`, or the last stage).
    pub target_stage: StageRef,
    /// One entry per target platform, in `--platform` order.
    pub targets: Vec<TargetPlan>,
    /// All jobs, topologically ordered (`jobs[i].id == JobId(i)`).
    pub jobs: Vec<Job>,
    /// `--build-arg` names no ARG of a planned stage (nor a global ARG) declared, sorted.
    pub unused_build_args: Vec<String>,
}

/// The result of one target platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetPlan {
    /// The target platform (normalized).
    pub platform: Platform,
    /// The job whose filesystem and config are this platform's image.
    pub final_job: JobId,
    /// This target's BUILDPLATFORM when it is not [`BuildPlan::build_platform`] (an
    /// engine runs the target natively: [`PlanOptions::build_platform_for`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_platform: Option<Platform>,
}

/// A stage of the Dockerfile, by position and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct StageRef {
    /// Position among the stages, from 0.
    pub index: usize,
    /// The `AS` name, lowercased, if any.
    pub name: Option<String>,
}

impl std::fmt::Display for StageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => f.write_str(n),
            None => write!(f, "stage {}", self.index),
        }
    }
}

/// One unit of work: a stage instance with fully resolved inputs, shared by
/// every target platform whose instance of the stage resolved identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Its position in [`BuildPlan::jobs`].
    pub id: JobId,
    /// The stage it builds.
    pub stage: StageRef,
    /// Target platforms it serves (directly or through a later job), in `--platform` order.
    pub platforms: Vec<Platform>,
    /// The platform its RUN steps execute as (and the platform of its image).
    pub run_platform: Platform,
    /// How it is executed.
    pub mode: Mode,
    /// Why it has that mode.
    pub reason: Reason,
    /// What it starts from.
    pub base: Base,
    /// Its instructions after FROM, expanded, in order.
    pub steps: Vec<Step>,
    /// Jobs that must finish first (base and COPY/mount sources), sorted, no duplicates.
    pub deps: Vec<JobId>,
    /// Stable hash of its resolved inputs and its dependencies' keys (context
    /// file contents are not included: the executor adds them).
    pub key: CacheKey,
    /// The engine it runs on ([`place`]); `None` for assembled jobs, and for every job
    /// when no engines are configured (the one engine runs them all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

/// What a job starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Base {
    /// An image reference (after expansion), pulled for the job's run platform.
    Image {
        /// The reference as written after expansion, e.g. `golang:1.22`.
        reference: String,
        /// [`BaseInfo::pinned`] when the image was resolved before planning: the
        /// image to use, and what the cache key holds instead of the tag.
        #[serde(skip_serializing_if = "Option::is_none")]
        pinned: Option<String>,
    },
    /// The result of another job (`FROM builder`).
    Stage {
        /// The job.
        job: JobId,
    },
    /// `FROM scratch`: an empty filesystem.
    Scratch,
}

/// Where a `COPY --from` or `RUN --mount=from=` reads from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Another job's result.
    Stage {
        /// The job.
        job: JobId,
    },
    /// An image reference, pulled for the job's run platform.
    Image {
        /// The reference after expansion.
        reference: String,
    },
}

/// One instruction of a job, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// First line of the instruction in the Dockerfile.
    pub line: usize,
    /// The instruction with its words expanded the way BuildKit expands them
    /// (RUN/CMD/ENTRYPOINT/SHELL/HEALTHCHECK commands stay as written: the
    /// shell expands them at run time). `COPY --from`/`--mount from=` values are
    /// expanded too; what they point at is in [`Step::from`]/[`Step::mount_from`].
    pub instruction: Instruction,
    /// The ARG values in effect at the step whose latest setter was an ARG,
    /// inherited ones included (a stage built FROM another sees the parent's ARGs,
    /// as in BuildKit): the executor gives a RUN the config Env overridden by
    /// these. Set for RUN steps and for steps with a [`Step::template`]; empty
    /// otherwise.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// For `COPY --from=`: the resolved source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Source>,
    /// For RUN: one entry per `--mount`, in order; `Some` for a mount with `from=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mount_from: Vec<Option<Source>>,
    /// Names looked up while expanding that were unknown at plan time: the job
    /// starts from an image without a [`BaseInfo`], whose config Env may define them.
    /// Empty when the base is known (a name unset there is simply empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    /// With [`Step::unresolved`] names: the instruction as written, unexpanded, for
    /// the executor to expand with the base config's Env overridden by
    /// [`Step::args`] (so it never reads the Dockerfile again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<Instruction>,
    /// For RUN: the `--mount`s (by index) with no `target=` or a relative one that
    /// the planner could not resolve, because the WORKDIR at this step depends on a
    /// base image it does not know: the executor puts them at (or under) the
    /// WORKDIR, and refuses `/` (BuildKit's `invalid mount target "/"`). Where the
    /// WORKDIR is known, the planner has already made every target absolute.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts_at_workdir: Vec<usize>,
}

impl BuildPlan {
    /// The job with this id.
    pub fn job(&self, id: JobId) -> &Job {
        &self.jobs[id.0]
    }

    /// How many jobs have each mode: `(native, assembled, emulated)`.
    pub fn mode_counts(&self) -> (usize, usize, usize) {
        self.jobs
            .iter()
            .fold((0, 0, 0), |(n, a, e), j| match j.mode {
                Mode::Native => (n + 1, a, e),
                Mode::Assembled => (n, a + 1, e),
                Mode::Emulated => (n, a, e + 1),
            })
    }
}

/// Plans a build. Pure: the same inputs give the same plan, byte for byte.
///
/// Errors carry the Dockerfile location they come from: an unknown `--target`,
/// a reference to a stage index that does not exist, a cycle between stages,
/// an expansion error, a blank base name or an invalid `--platform` value.
pub fn plan(df: &Dockerfile, opts: &PlanOptions, catalog: &Catalog) -> Result<BuildPlan> {
    let plan = graph::build(df, opts, catalog)?;
    let mut plan = share::share_prefixes(plan);
    mode::finalize(&mut plan, opts.all_in_engine);
    place::place(&mut plan, &opts.engines);
    Ok(plan)
}

#[cfg(test)]
mod tests;
