//! A final image the executor built in the engine (a native or emulated final stage),
//! exported with `docker save` and turned into the same `OciImage` form as an assembled one.
//! Layers whose diff_id the cache knows are not recompressed (issue 11).
//!
//! The config written is the executor's `stage::State`, not the engine's: a commit can only
//! add to a config (build-arg env, the RUN command as Cmd), and Docker 20.10's `import`
//! labels every image amd64, so the platform fields come from the target too.
//!
//! What RUN steps leave in the image is made BuildKit's ([`run_traces`]).

use std::path::Path;

use super::base::{clean_engine_noise, saved_layers, EngineImages};
use super::error::{AssembleError, Result};
use super::layers::LayerCache;
use super::run_traces::{drop_mount_stubs, missing_mount_points, RunTraces};
use super::show;
use crate::oci::config::History;
use crate::oci::{ImageConfig, IndexFormat, LayerBlob, LayerEntry, OciImage};

use crate::platform::Platform;

/// Exports `image` (an engine id or per-platform reference) as the final image for
/// `platform`, with `config` (the executor's state: `stage::State::config`) as its runtime
/// config. `known` are layers whose blobs exist already (the base image's, from its
/// registry): a saved layer with one of their diff_ids is not recompressed. `traces`: what
/// the RUN steps that made the image (in this job or the engine-built ones it starts
/// from) leave that BuildKit's image has otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn export_from_engine(
    engine: &dyn EngineImages,
    image: &str,
    platform: &Platform,
    config: &ImageConfig,
    created: Option<i64>,
    cache: &LayerCache,
    known: &[crate::oci::LayerBlob],
    work_dir: &Path,
    format: IndexFormat,
    traces: &RunTraces,
) -> Result<OciImage> {
    let action = format!("exporting the {} image from the engine", show(platform));
    let dir = work_dir.join(format!("save-{}", show(platform).replace('/', "-")));
    let saved = engine.save(image, &dir).await?;
    let layers = saved_layers(&saved, cache, &dir, known)?;
    let mut layers = drop_mount_stubs(layers, &saved.layers, &traces.mount_targets, &dir, cache)?;
    let mut out = saved.config.clone();
    let missing = if traces.ran {
        missing_mount_points(&saved.layers)?
    } else {
        Vec::new()
    };
    if !missing.is_empty() {
        let mtime = created.unwrap_or(0);
        let entries: Vec<LayerEntry> = missing
            .iter()
            .map(|p| LayerEntry::dir(format!("/{p}"), 0o755).modified_at(mtime))
            .collect();
        let blob = LayerBlob::build(&entries, cache.options())
            .map_err(AssembleError::oci("writing the RUN mount points layer"))?;
        layers.push(blob);
        if !out.history.is_empty() {
            out.history.push(History {
                created: created.map(crate::oci::time::rfc3339),
                created_by: Some("xplat: the RUN mount points /dev /proc /sys".into()),
                ..History::default()
            });
        }
    }
    out.config = config.config.clone();
    out.author = config.author.clone();
    clean_engine_noise(&mut out);
    out.os = platform.os.clone();
    out.architecture = platform.architecture.clone();
    out.variant = (!platform.variant.is_empty()).then(|| platform.variant.clone());
    out.created = created.map(crate::oci::time::rfc3339);
    if out.non_empty_history() != layers.len() {
        out.history = (0..layers.len())
            .map(|_| History {
                created: created.map(crate::oci::time::rfc3339),
                created_by: Some("xplat: exported from the engine".into()),
                ..History::default()
            })
            .collect();
    }
    OciImage::new(out, layers, format).map_err(AssembleError::oci(action))
}
