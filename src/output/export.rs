//! A final image the executor built in the engine (a native or emulated final stage),
//! exported with `docker save` and turned into the same `OciImage` form as an assembled one.
//!
//! The config written is the executor's config state, not the engine's: a commit can only
//! add to a config (build-arg env, the RUN command as Cmd) and Docker 20.10's `import`
//! labels every image amd64, so the platform fields come from the target too.

use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::assemble::show;
use super::error::{OutputError, Result};
use crate::engine::DockerEngine;
use crate::oci::config::History;
use crate::oci::docker_archive::read_docker_save;
use crate::oci::{IndexFormat, LayerOptions, OciImage};
use crate::platform::Platform;

/// Exports `image` (an engine id or per-platform reference) as the final image for `platform`.
#[allow(clippy::too_many_arguments)]
pub async fn export_from_engine(
    engine: &DockerEngine,
    image: &str,
    platform: &Platform,
    state: &crate::oci::ImageConfig,
    created: Option<i64>,
    layer_options: &LayerOptions,
    work_dir: &Path,
    format: IndexFormat,
) -> Result<OciImage> {
    let action = format!("exporting the {} image from the engine", show(platform));
    let slug = show(platform).replace('/', "-");
    let tar_path = work_dir.join(format!("save-{slug}.tar"));
    let dir = work_dir.join(format!("save-{slug}"));
    std::fs::create_dir_all(&dir).map_err(OutputError::io("creating", &dir))?;
    {
        let mut f = tokio::fs::File::create(&tar_path)
            .await
            .map_err(OutputError::io("creating", &tar_path))?;
        let mut stream = engine.export_image(image);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(OutputError::engine(action.clone()))?;
            f.write_all(&chunk)
                .await
                .map_err(OutputError::io("writing", &tar_path))?;
        }
        f.flush()
            .await
            .map_err(OutputError::io("writing", &tar_path))?;
    }
    let file = std::fs::File::open(&tar_path).map_err(OutputError::io("opening", &tar_path))?;
    let saved = read_docker_save(std::io::BufReader::new(file), &dir)
        .map_err(OutputError::oci(action.clone()))?;
    let _ = std::fs::remove_file(&tar_path);
    let saved = saved
        .into_iter()
        .next()
        .ok_or_else(|| OutputError::MissingInput {
            what: format!("image {image} in the engine's export"),
            needed_by: action.clone(),
        })?;
    let oci = saved
        .to_oci_image(format, layer_options, &dir)
        .map_err(OutputError::oci(action.clone()))?;
    let mut config = oci.config().clone();
    config.config = state.config.clone();
    config.author = state.author.clone();
    config.os = platform.os.clone();
    config.architecture = platform.architecture.clone();
    config.variant = (!platform.variant.is_empty()).then(|| platform.variant.clone());
    config.created = created.map(crate::oci::time::rfc3339);
    // Engine noise that names build containers and hosts.
    for k in ["container", "container_config", "docker_version"] {
        config.extra.remove(k);
    }
    if config.non_empty_history() != oci.layers().len() {
        config.history = (0..oci.layers().len())
            .map(|_| History {
                created: created.map(crate::oci::time::rfc3339),
                created_by: Some("xplat: exported from the engine".into()),
                ..History::default()
            })
            .collect();
    }
    oci.with_config(config).map_err(OutputError::oci(action))
}
