//! Outputs of a build: sinks for the per-target images.
//!
//! - [`deliver`]: the per-target images as an index, then any combination of outputs:
//!   push (index last), OCI layout (folder or tar), load into the engine, metadata file.
//! - [`inspect`]: what `xplat inspect` shows of a registry reference or an OCI layout.
//! - [`metadata`]: the build's labels and annotations on every image and the index.
//! - [`rootfs`]: an image's filesystem (layers and whiteouts applied) as a folder or a tar,
//!   for `--output type=local` and `type=tar`.
//! - `summary`: [`BuildSummary`], the `--metadata-file` document (with the plan the build
//!   ran) and the end-of-build lines.
//!
//! Images are made by `assemble` (assembled jobs, engine exports). Registry traffic goes
//! through `registry`, engine traffic through `engine`; this module writes files only at the
//! output paths the user gave and in a work folder it is handed.

pub mod deliver;
mod error;
pub mod inspect;
pub mod metadata;
pub mod rootfs;
pub mod spec;
mod summary;

pub use deliver::{deliver, BuildSummary, Delivered, LoadTarget, OutputOptions, PlatformSummary};
pub use error::{OutputError, Result};
pub use inspect::{inspect, InspectTarget, Inspection};
pub use spec::{parse_output_spec, OutputSpec};
