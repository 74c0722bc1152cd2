//! The executor: runs build jobs on the engine, step by step, with a step cache, in
//! dependency order and in parallel.
//!
//! Owns: executing instructions ([`step`], [`copy`], [`run`]), the image config state
//! that xplat keeps itself ([`config`]; engine images are only filesystem snapshots,
//! see ENGINE-AND-REGISTRY §0), the step cache keys ([`step_cache`]) and the job
//! scheduler ([`scheduler`]). Talks to the engine only through [`crate::engine::Engine`].
//!
//! Input is the planner's value itself ([`crate::plan::BuildPlan`], STYLE rule 1: what
//! `xplat plan` prints is what runs). Steps arrive expanded; the executor only
//! re-expands a step whose names were unset at plan time and whose job starts from an
//! external image (whose config ENV may define them), through the planner's own
//! [`crate::plan::expand_instruction`].

pub mod config;
pub mod copy;
mod error;
pub mod fetch;
pub mod inline;
pub mod mounts;
pub mod prune;
pub mod run;
pub mod scheduler;
pub mod select;
pub mod step;
pub mod step_cache;

use serde::Serialize;

use crate::engine::ImageConfig;
use crate::platform::Platform;

pub use error::{ExecError, Result};
pub use scheduler::run_jobs;
pub use step::{run_job, JobEnv};

/// The label of a job in progress events and errors: its plan id (`#3`).
pub fn job_label(job: &crate::plan::Job) -> String {
    job.id.to_string()
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
