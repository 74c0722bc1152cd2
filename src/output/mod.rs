//! Final images per target platform, and every output of a build.
//!
//! - [`assemble`]: a plan job with mode `Assembled` (no RUN) becomes an `OciImage` without
//!   running anything; base layers of a registry image stay in the registry.
//! - [`export`]: a final image the executor built in the engine becomes the same form.
//! - [`deliver`]: the per-target images as an index, then any combination of outputs:
//!   push (index last), OCI layout (folder or tar), load into the engine, metadata file.
//! - [`inspect`]: what `xplat inspect` shows of a registry reference or an OCI layout.
//! - [`metadata`]: metadata instructions as config edits (pure).
//! - [`rootfs`]: an image's filesystem (layers and whiteouts applied) as a folder or a tar,
//!   for `--output type=local` and `type=tar`.
//!
//! Registry traffic goes through `registry`, engine traffic through `engine`; this module
//! writes files only at the output paths the user gave and in a work folder it is handed.

pub mod assemble;
pub mod deliver;
mod error;
pub mod export;
pub mod inspect;
pub mod metadata;
pub mod rootfs;
pub mod spec;
pub mod stage_files;
pub mod targets;

pub use assemble::{assemble, resolve_base, AssembleEnv, NoStages, SourceArchive, StageFiles};
pub use deliver::{deliver, BuildSummary, Delivered, LoadTarget, OutputOptions, PlatformSummary};
pub use error::{OutputError, Result};
pub use export::export_from_engine;
pub use inspect::{inspect, InspectTarget, Inspection};
pub use spec::{parse_output_spec, OutputSpec};
pub use stage_files::EngineStageFiles;
pub use targets::images_for_targets;
