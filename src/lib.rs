//! xplat builds one multi-stage Dockerfile for many target platforms at once
//! and publishes one multi-platform image.
//!
//! The pipeline, one way, every arrow a plain value:
//!
//! ```text
//! Dockerfile text ─ dockerfile::parse ─▶ Dockerfile (AST)
//! Dockerfile + options ─ plan::plan ───▶ BuildPlan (pure)
//! BuildPlan + Engine ─ exec::run ──────▶ one image per target platform
//! images ─ output ─────────────────────▶ registry index, OCI layout, engine
//! ```
#![warn(missing_docs)]

pub mod assemble;
pub mod cli;
pub mod context;
pub mod dockerfile;
pub mod engine;
pub mod exec;
pub mod init;
pub mod oci;
pub mod once;
pub mod ops;
pub mod output;
pub mod plan;
pub mod platform;
pub mod progress;
pub mod registry;
pub mod stage;
pub mod travel;
