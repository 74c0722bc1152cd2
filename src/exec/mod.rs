//! The executor: runs build jobs on the engine, step by step, with a step cache, in
//! dependency order and in parallel.
//!
//! Owns: executing instructions ([`step`], [`copy`], [`run`]), the image config state
//! that xplat keeps itself ([`config`]; engine images are only filesystem snapshots,
//! see ENGINE-AND-REGISTRY §0), the step cache keys ([`step_cache`]) and the job
//! scheduler ([`scheduler`]). Talks to the engine only through [`crate::engine::Engine`].
//!
//! Until the planner (`crate::plan`) is merged, [`local_plan`] derives the jobs from
//! the Dockerfile itself; [`ExecJob`] is the executor's own input type so that the
//! switch to `plan::Job` is one adapter.

pub mod config;
pub mod copy;
mod error;
pub mod local_plan;
pub mod run;
pub mod scheduler;
pub mod step;
pub mod step_cache;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dockerfile::{Instruction, Spanned};
use crate::engine::ImageConfig;
use crate::platform::Platform;

pub use error::{ExecError, Result};
pub use scheduler::run_jobs;
pub use step::{run_job, JobEnv};

/// Where a job's filesystem starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Base {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// A base image by reference (local, else pulled for the job's platform).
    Image(String),
    /// The output of another job (index into the job list).
    Job(usize),
}

/// One job as the executor runs it: a stage for one run platform with resolved inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecJob {
    /// Stable id for display and events (e.g. `build@linux/amd64`).
    pub id: String,
    /// Stage name, or its index when unnamed.
    pub stage: String,
    /// The platform the job's containers are created for.
    pub platform: Platform,
    /// Platforms of the targets this job serves (display only).
    pub serves: Vec<Platform>,
    /// Where the filesystem starts.
    pub base: Base,
    /// The stage's instructions, unexpanded, with their lines.
    pub steps: Vec<Spanned<Instruction>>,
    /// Values an `ARG` in the stage may take: `--build-arg`s, global ARG values and the
    /// automatic platform ARGs. Only names the stage declares come into scope.
    pub arg_values: BTreeMap<String, String>,
    /// Jobs whose outputs this one reads (`FROM`, `COPY --from`), by index.
    pub deps: Vec<usize>,
    /// `COPY --from` names (stage name or index) mapped to job indices.
    pub from_jobs: BTreeMap<String, usize>,
    /// The job's cache key: identity of its stage and resolved inputs.
    pub key: String,
    /// The Dockerfile's escape character.
    pub escape: char,
}

/// What a job produced: an engine image and xplat's authoritative config for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobOutput {
    /// The engine's image id of the last filesystem step (or the base image).
    pub image: String,
    /// The image config as the Dockerfile defines it (no xplat labels, no build args).
    pub config: ImageConfig,
    /// The platform of the image.
    pub platform: Platform,
    /// Steps that ran (not cached).
    pub steps_run: usize,
    /// Steps reused from the step cache.
    pub steps_cached: usize,
}
