//! A final image the executor built in the engine (a native or emulated final stage),
//! exported with `docker save` and turned into the same `OciImage` form as an assembled one.
//! Layers whose diff_id the cache knows are not recompressed (issue 11).
//!
//! The config written is the executor's `stage::State`, not the engine's: a commit can only
//! add to a config (build-arg env, the RUN command as Cmd), and Docker 20.10's `import`
//! labels every image amd64, so the platform fields come from the target too.
//!
//! An image a RUN made gets the RUN's mount points as BuildKit's has them
//! ([`MOUNT_POINTS`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use super::base::{clean_engine_noise, saved_layers, EngineImages};
use super::error::{AssembleError, Result};
use super::layers::LayerCache;
use super::show;
use crate::oci::config::History;
use crate::oci::{ImageConfig, IndexFormat, LayerBlob, LayerEntry, OciImage};
use crate::platform::Platform;

/// Exports `image` (an engine id or per-platform reference) as the final image for
/// `platform`, with `config` (the executor's state: `stage::State::config`) as its runtime
/// config. `known` are layers whose blobs exist already (the base image's, from its
/// registry): a saved layer with one of their diff_ids is not recompressed. `ran_run`:
/// a RUN made the image (in this job or an engine-built one it starts from).
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
    ran_run: bool,
) -> Result<OciImage> {
    let action = format!("exporting the {} image from the engine", show(platform));
    let dir = work_dir.join(format!("save-{}", show(platform).replace('/', "-")));
    let saved = engine.save(image, &dir).await?;
    let mut layers = saved_layers(&saved, cache, &dir, known)?;
    let mut out = saved.config.clone();
    let missing = if ran_run {
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

/// The folders a RUN leaves in BuildKit's image: runc makes `/dev`, `/proc` and `/sys` in
/// the rootfs to mount on when the image has none, so they land in the RUN's layer (0755,
/// root). The engine makes its own in a container's init layer, which a commit leaves out.
pub const MOUNT_POINTS: [&str; 3] = ["dev", "proc", "sys"];

/// Which of [`MOUNT_POINTS`] the stacked layers (base first; plain tar or gzip) lack.
/// Read from the top down, headers only, until each is decided.
pub fn missing_mount_points(layers: &[PathBuf]) -> Result<Vec<&'static str>> {
    // name -> present?
    let mut decided: Vec<(&'static str, bool)> = Vec::new();
    for path in layers.iter().rev() {
        if decided.len() == MOUNT_POINTS.len() {
            break;
        }
        let mut f = std::fs::File::open(path).map_err(AssembleError::io("opening", path))?;
        let mut magic = [0u8; 2];
        let gzip = f
            .read(&mut magic)
            .map_err(AssembleError::io("reading", path))?
            == 2
            && magic == [0x1f, 0x8b];
        let f = std::fs::File::open(path).map_err(AssembleError::io("opening", path))?;
        let names = if gzip {
            top_names(tar::Archive::new(flate2::read::GzDecoder::new(f)).entries())
        } else {
            top_names(tar::Archive::new(f).entries_with_seek())
        }
        .map_err(AssembleError::io("reading", path))?;
        let opaque_root = names.iter().any(|n| n == ".wh..wh..opq");
        for p in MOUNT_POINTS {
            if decided.iter().any(|(d, _)| *d == p) {
                continue;
            }
            if names.iter().any(|n| n == p) {
                decided.push((p, true));
            } else if opaque_root || names.iter().any(|n| n.strip_prefix(".wh.") == Some(p)) {
                decided.push((p, false));
            }
        }
    }
    Ok(MOUNT_POINTS
        .into_iter()
        .filter(|p| !decided.contains(&(*p, true)))
        .collect())
}

/// The first component of every path in a layer tar (`./proc/x` -> `proc`).
fn top_names<R: Read>(
    entries: std::io::Result<tar::Entries<'_, R>>,
) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries? {
        let e = e?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let trimmed = raw.trim_start_matches("./").trim_start_matches('/');
        if let Some(first) = trimmed
            .split('/')
            .next()
            .filter(|s| !s.is_empty() && *s != ".")
        {
            if out.last().map(String::as_str) != Some(first) {
                out.push(first.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(dir: &Path, name: &str, paths: &[&str]) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        for p in paths {
            let mut h = tar::Header::new_gnu();
            let is_dir = p.ends_with('/');
            h.set_entry_type(if is_dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, p, std::io::empty()).unwrap();
        }
        let path = dir.join(name);
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        path
    }

    #[test]
    fn mount_points_missing_from_every_layer_are_the_ones_added() {
        let d = tempfile::tempdir().unwrap();
        let busybox = layer(d.path(), "0", &["bin/", "bin/sh", "etc/"]);
        let debian = layer(d.path(), "1", &["dev/", "proc/", "sys/", "usr/"]);
        let run = layer(d.path(), "2", &["tmp/", "tmp/x"]);
        let gone = layer(d.path(), "3", &[".wh.sys"]);
        assert_eq!(
            missing_mount_points(&[busybox.clone(), run.clone()]).unwrap(),
            MOUNT_POINTS
        );
        assert!(missing_mount_points(&[debian.clone(), run.clone()])
            .unwrap()
            .is_empty());
        assert_eq!(missing_mount_points(&[debian, run, gone]).unwrap(), ["sys"]);
        assert_eq!(missing_mount_points(&[]).unwrap(), MOUNT_POINTS);
    }
}
