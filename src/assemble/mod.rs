//! `assemble`: jobs without RUN as OCI images, byte by byte, without running anything.
//! Every instruction's meaning comes from `stage` (the executor uses the same interpreter);
//! this module supplies what `stage` asks for and writes layers.
//!
//! - [`job`]: one job: base image, then each step through `stage` ([`can_assemble`] is what
//!   the planner asks to decide the `Assembled` mode: true exactly when nothing is refused);
//! - [`targets`]: a plan's targets → one image each (assembled jobs composed, memoized) → index;
//! - [`base`]: resolved bases (registry layers stay in the registry; engine-only bases are
//!   exported once per image id), layer bytes downloaded on demand;
//! - [`fsindex`]: the base's filesystem from its layers' tar headers (cached by layer
//!   digest): parents' metadata, passwd/group, and files for `COPY --from` an image;
//! - [`layers`]: layers computed once per build and cached by content across builds;
//! - [`stage_files`]: `COPY --from` a stage the engine built; [`fetch`]: `ADD <url>`;
//! - [`export`]: an engine-built final as the same `OciImage` form;
//! - [`cache_dir`]: where the local caches live.
//!
//! I/O goes through `registry`, `engine` (traits) and the cache and work folders only.

pub mod base;
pub mod cache_dir;
mod error;
pub mod export;
pub mod fetch;
pub mod fsindex;
pub mod job;
pub mod layers;
pub mod run_traces;
pub mod stage_files;
pub mod targets;

use std::path::Path;

pub use base::{
    BaseInfo, BaseOrigin, BaseResolver, Bases, EngineImages, KnownBases, RegistryBases,
    ResolvedBase,
};
pub use error::{AssembleError, Refusal, Result};
pub use export::export_from_engine;
pub use job::{assemble, can_assemble, refusal};
pub use layers::{CacheStats, LayerCache};
pub use run_traces::RunTraces;
pub use stage_files::{NoStages, StageFiles};
pub use targets::images_for_targets;

use crate::context::BuildContext;
use crate::oci::IndexFormat;
use crate::plan::JobId;
use crate::platform::Platform;

/// What assembling needs besides the plan.
pub struct AssembleEnv<'a> {
    /// The build context (for COPY/ADD without `--from`).
    pub context: Option<&'a BuildContext>,
    /// Base images and layer bytes.
    pub bases: &'a Bases<'a>,
    /// `COPY --from` stages the engine built.
    pub stage_files: &'a dyn StageFiles,
    /// The image's `created` time and the history entries' (SOURCE_DATE_EPOCH when set,
    /// else the build's start), Unix seconds. Also the mtime of directories COPY creates.
    pub created: Option<i64>,
    /// Layers: written once per build, cached across builds; holds the layer options.
    pub layers: &'a LayerCache,
    /// A folder for exports and downloads; kept by the caller until every output is written.
    pub work_dir: &'a Path,
    /// OCI or Docker documents.
    pub format: IndexFormat,
    /// Where progress goes (one event per assembled job).
    pub reporter: &'a dyn crate::progress::Reporter,
}

impl AssembleEnv<'_> {
    /// The base image `reference` for `platform`, in this build's format.
    pub async fn base_image(
        &self,
        reference: &str,
        platform: &Platform,
    ) -> Result<crate::oci::OciImage> {
        self.bases
            .image(reference, platform, self.format, self.layers, self.work_dir)
            .await
    }

    /// Whether `job`'s result is in the engine.
    pub fn engine_ran(&self, job: JobId) -> bool {
        self.stage_files.has(job)
    }
}

/// `os/arch[/variant]`.
pub fn show(p: &Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}
