//! The executor: runs the plan's engine jobs, each in as few containers and commits as
//! possible, with a step cache, in dependency order and in parallel.
//!
//! How a job runs (issue 11: no commit on the critical path):
//! - [`keys`] gives every step a chain key before anything runs: the base image's pinned
//!   id, each step as planned and the content it reads (context files, other jobs' keys).
//! - [`program`] decides what one container runs: the steps of the job, after the replayed
//!   steps of a parent job whose result was not committed, split into segments where
//!   `RUN --mount`s clash (mounts are fixed when a container is created).
//! - [`runner`] runs a program: one container per segment, started with a shell that
//!   waits on its input; RUN goes through `exec` with the step's env, user and workdir;
//!   COPY and WORKDIR through `put_archive`; metadata only edits the config. Nothing is
//!   committed between steps. A commit happens only where it pays ([`policy`]): the
//!   engine commits cheaply (native diff), or the RUN work since the last image costs
//!   more than the commit would; and where an image is needed (an exported final).
//! - [`outputs`]: what consumers read from a finished job (`COPY --from`, bind mounts)
//!   is recorded into the local cache, so a warm build needs no engine work at all.
//! - [`select`]: with the caches known, which jobs must run.
//!
//! Talks to the engine only through [`crate::engine::Engine`]. Input is the planner's
//! value itself ([`crate::plan::BuildPlan`]): what `xplat plan` prints is what runs.

mod bases;
pub mod copy;
pub mod empty;
pub mod engine_files;
mod error;
#[cfg(test)]
pub(crate) mod fake_engine;
pub mod fleet;
pub mod keys;
pub mod mounts;
pub mod outputs;
pub mod policy;
pub mod program;
pub mod prune;
pub mod remote;
pub mod run;
pub mod runner;
pub mod scheduler;
pub mod select;
pub mod travelled;

use std::collections::BTreeMap;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::context::BuildContext;
use crate::engine::{ContainerId, Engine};
use crate::oci::ImageConfig;
use crate::plan::Bases;
use crate::plan::{BuildPlan, Job};
use crate::platform::Platform;
use crate::progress::Reporter;

pub use error::{ExecError, Result};
pub use scheduler::run_jobs;

/// The label of a job in progress events and errors: its plan id (`#3`).
pub fn job_label(job: &Job) -> String {
    job.id.to_string()
}

/// What a job runs with: the engine it is placed on and that engine's state, and what
/// every job of the build shares.
#[derive(Clone, Copy)]
pub struct JobEnv<'a> {
    /// The engine the job runs on.
    pub engine: &'a dyn Engine,
    /// Its name, when the build has named engines (progress says where a job runs).
    pub engine_name: Option<&'a str>,
    /// What the whole build shares: finished outputs, needs, placement.
    pub ledger: &'a fleet::Ledger,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
    /// The plan being run.
    pub plan: &'a BuildPlan,
    /// Resolved base images (and `--from` images), by reference and platform.
    pub bases: &'a Bases,
    /// Chain keys of every job's steps.
    pub keys: &'a keys::Keys,
    /// The build context (COPY/ADD sources, bind mounts).
    pub context: Option<&'a BuildContext>,
    /// Fires on Ctrl-C.
    pub cancel: &'a CancellationToken,
    /// `--no-cache`: never reuse a cached step.
    pub no_cache: bool,
    /// `--secret id=…,src=…`: secret id → host file.
    pub secrets: &'a BTreeMap<String, PathBuf>,
    /// Labels put on every container of this build (e.g. `xplat.build=<id>`).
    pub labels: &'a BTreeMap<String, String>,
    /// The engine's images and containers shared between its jobs (pulls, scratch
    /// images, checkpoints, hand-over of live containers, volumes).
    pub shared: &'a runner::Shared,
    /// Outputs recorded for consumers, in the local cache.
    pub outputs: &'a outputs::OutputCache,
    /// The Dockerfile's escape character (re-expanding a step's template).
    pub escape: char,
    /// `--network`: RUN steps without their own `--network` use it.
    pub network: crate::engine::Network,
    /// `--add-host` entries (`NAME:IP`) of every RUN container.
    pub add_hosts: &'a [String],
    /// `--no-cache-filter`: stages (lowercase names) run without the step cache.
    pub no_cache_stages: &'a [String],
    /// Checkpoints of a travelled cache (`--cache-from` of a `mode=max` cache).
    pub travelled: &'a dyn travelled::Travelled,
    /// `--cache-to ...,mode=max`: a checkpoint before every step that reads the context
    /// when a RUN ran since the last image, even where the commit costs more than
    /// replaying the steps would, since the checkpoint is what a fresh runner starts a
    /// changed job from.
    pub keep_checkpoints: bool,
}

impl JobEnv<'_> {
    /// Whether the step cache may serve this job.
    pub fn caches(&self, job: &Job) -> bool {
        !self.no_cache
            && !job.stage.name.as_ref().is_some_and(|n| {
                self.no_cache_stages
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(n))
            })
    }
}

impl JobEnv<'_> {
    /// The engine's name as outputs record it (`default` for the one unnamed engine).
    pub fn engine_label(&self) -> &str {
        self.engine_name.unwrap_or("default")
    }
}

/// Where a step runs: its job, step number and line, and the ARGs it sees.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The job that owns the step.
    pub job: &'a Job,
    /// The job's label in events ([`job_label`]) of the job being run (a replayed step
    /// of a parent job still reports under the running job).
    pub label: &'a str,
    /// 1-based step number in the running program.
    pub step: usize,
    /// Dockerfile line.
    pub line: usize,
    /// The ARG values the step sees (planned; RUN gives them to the process).
    pub args: &'a BTreeMap<String, String>,
}

impl At<'_> {
    /// The stage's name (or `stage N`) for errors.
    pub fn stage(&self) -> String {
        stage_label(&self.job.stage)
    }

    /// Wraps an engine error with the stage, line and what was being done.
    pub fn engine(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(crate::engine::EngineError) -> ExecError + '_ {
        let action = action.into();
        move |source| ExecError::Engine {
            stage: self.stage(),
            line: self.line,
            action,
            source: Box::new(source),
        }
    }

    /// An [`ExecError::Unsupported`] here.
    pub fn unsupported(&self, what: impl Into<String>) -> ExecError {
        ExecError::Unsupported {
            stage: self.stage(),
            line: self.line,
            what: what.into(),
        }
    }
}

/// How errors name a stage: `stage build`, or `stage 0` when it has no name.
pub fn stage_label(stage: &crate::plan::StageRef) -> String {
    match &stage.name {
        Some(name) => format!("stage {name}"),
        None => stage.to_string(),
    }
}

/// Where a finished engine job's filesystem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fs {
    /// Committed (or found in the step cache) as this engine image.
    Image(String),
    /// Not committed: a consumer rebuilds it by replaying the job's steps on top of its
    /// own start (cheaper than the commit would have been). Files consumers read were
    /// recorded into the output cache.
    Replay,
    /// Not run at all: every consumer is served from the caches.
    Skipped,
}

/// What a job produced.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOutput {
    /// Where its filesystem is.
    pub fs: Fs,
    /// The image config as the Dockerfile defines it (no xplat labels, no build args).
    pub config: ImageConfig,
    /// The platform of its filesystem.
    pub platform: Platform,
    /// Seconds its RUN steps took (what replaying it would cost).
    pub run_seconds: f64,
    /// Steps that ran (not cached).
    pub steps_run: usize,
    /// Steps reused from the step cache.
    pub steps_cached: usize,
    /// A live container left for the one consumer that continues in it.
    pub handed_over: Option<ContainerId>,
    /// The engine its image (or live container) is on ([`JobEnv::engine_label`]).
    pub engine: String,
}
