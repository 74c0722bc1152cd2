//! `docker load` archives, and `docker save` archives read back.
//!
//! Writing: one tar holding both the docker-archive `manifest.json` (the graphdriver store
//! needs it) and the OCI layout (`oci-layout`, `index.json`, `blobs/`), which the containerd
//! store prefers (ENGINE-AND-REGISTRY §0.9, §4.5). Layers stay gzip-compressed; both stores
//! decompress them.
//!
//! Reading: both `docker save` forms go through `manifest.json` — the legacy one
//! (`<id>.json`, `<id>/layer.tar`, Docker 20.10 / API 1.41) and the OCI-ish one (paths under
//! `blobs/sha256/`). The archive is extracted into a folder the caller owns, with every path
//! guarded; symlinks between layer files (legacy saves use them for repeated layers) are
//! resolved inside the archive, never on disk.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::config::ImageConfig;
use super::digest::Digest;
use super::error::{OciError, Result};
use super::image::OciImage;
use super::layer::{normalize_path, LayerBlob, LayerOptions};
use super::layout::{image_blobs, layout_index_json, write_tar, LayoutRef};
use super::manifest::PlatformSpec;
use super::media_type::IndexFormat;

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveEntry {
    /// Path of the config file in the archive.
    pub config: String,
    /// Tags, e.g. `foo:v1`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub repo_tags: Vec<String>,
    /// Paths of the layer files, base first.
    pub layers: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Writes a tar for `docker load`: each image with its tags (`foo:v1`).
pub fn write_docker_archive<W: Write>(out: W, images: &[(&OciImage, Vec<String>)]) -> Result<W> {
    let mut blobs = BTreeMap::new();
    let mut entries = Vec::new();
    let mut index_entries = Vec::new();
    for (image, tags) in images {
        image_blobs(image, &mut blobs);
        entries.push(ArchiveEntry {
            config: image.config_blob().digest().blob_path(),
            repo_tags: tags.clone(),
            layers: image
                .layers()
                .iter()
                .map(|l| l.digest().blob_path())
                .collect(),
        });
        let mut d = image.descriptor();
        d.platform = Some(PlatformSpec::from(&image.platform()));
        if tags.is_empty() {
            index_entries.push(d);
        } else {
            for t in tags {
                let r = LayoutRef::parse(t);
                let mut d = d.clone();
                let mut a = BTreeMap::new();
                a.insert(super::layout::CONTAINERD_NAME.to_string(), r.name);
                a.insert(super::layout::REF_NAME.to_string(), r.tag);
                d.annotations = Some(a);
                index_entries.push(d);
            }
        }
    }
    let manifest_json =
        serde_json::to_vec(&entries).map_err(OciError::json("serializing manifest.json"))?;
    write_tar(
        out,
        &layout_index_json(index_entries)?,
        &blobs,
        Some(&manifest_json),
    )
}

/// The names in a `docker load` archive of one untagged image that holds only the layers
/// the engine lacks (it reads a layer's file only when the layer's chain is not in its
/// store): `<config digest>.json` for the config, `<i>/layer.tar` for layer `i` (base
/// first), and the archive's `manifest.json`, which names them all.
pub struct PartialLoad {
    /// The config's name.
    pub config_name: String,
    /// Every layer's name, base first.
    pub layers: Vec<String>,
    /// The bytes of `manifest.json`.
    pub manifest: Vec<u8>,
}

impl PartialLoad {
    /// The names for an image with config `config` and `layer_count` layers.
    pub fn new(config: &[u8], layer_count: usize) -> PartialLoad {
        let config_name = format!("{}.json", Digest::of(config).hex());
        let layers: Vec<String> = (0..layer_count).map(|i| format!("{i}/layer.tar")).collect();
        let manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": config_name,
            "RepoTags": null,
            "Layers": layers,
        }]))
        .expect("json");
        PartialLoad {
            config_name,
            layers,
            manifest,
        }
    }

    /// The header of a file of `size` bytes in such an archive.
    pub fn header(size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }
}

/// One image read from a `docker save` archive.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedImage {
    /// Its tags.
    pub repo_tags: Vec<String>,
    /// The config as stored.
    pub config_bytes: Bytes,
    /// The config parsed (unknown fields kept).
    pub config: ImageConfig,
    /// Extracted layer files, base first (plain tar or gzip as the engine wrote them).
    pub layers: Vec<PathBuf>,
}

impl SavedImage {
    /// Makes an `OciImage` of it: every layer becomes a gzip blob (kept as is when already gzip,
    /// compressed into `work_dir` when plain) whose diff_id must equal the config's.
    pub fn to_oci_image(
        &self,
        format: IndexFormat,
        opts: &LayerOptions,
        work_dir: &Path,
    ) -> Result<OciImage> {
        let expected = &self.config.rootfs.diff_ids;
        if expected.len() != self.layers.len() {
            return Err(OciError::MalformedArchive {
                what: "docker save archive",
                reason: format!(
                    "{} layers but {} diff_ids in the config",
                    self.layers.len(),
                    expected.len()
                ),
            });
        }
        let mut blobs = Vec::with_capacity(self.layers.len());
        for (i, (path, want)) in self.layers.iter().zip(expected).enumerate() {
            let blob =
                LayerBlob::import_file(path, &work_dir.join(format!("layer-{i}.tar.gz")), opts)?;
            if blob.diff_id() != *want {
                return Err(OciError::DigestMismatch {
                    what: format!("layer {}", path.display()),
                    expected: want.to_string(),
                    actual: blob.diff_id().to_string(),
                });
            }
            blobs.push(blob);
        }
        OciImage::new(self.config.clone(), blobs, format)
    }
}

/// Extracts a `docker save` tar into `dest` (an empty folder the caller owns) and reads its
/// `manifest.json`.
pub fn read_docker_save<R: Read>(input: R, dest: &Path) -> Result<Vec<SavedImage>> {
    let malformed = |reason: String| OciError::MalformedArchive {
        what: "docker save archive",
        reason,
    };
    let mut symlinks: BTreeMap<String, String> = BTreeMap::new();
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut ar = tar::Archive::new(input);
    for entry in ar
        .entries()
        .map_err(OciError::io("reading docker save archive"))?
    {
        let mut e = entry.map_err(OciError::io("reading docker save archive"))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let name = normalize_path(&raw)?;
        match e.header().entry_type() {
            tar::EntryType::Regular => {
                let target = dest.join(&name);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)
                        .map_err(OciError::io(format!("creating {}", parent.display())))?;
                }
                let mut f = File::create(&target)
                    .map_err(OciError::io(format!("creating {}", target.display())))?;
                io::copy(&mut e, &mut f).map_err(OciError::io(format!("extracting {name}")))?;
                files.insert(name, target);
            }
            tar::EntryType::Symlink => {
                let link = e
                    .link_name()
                    .map_err(OciError::io("reading a symlink"))?
                    .unwrap_or_default();
                let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                let target = resolve_link(dir, &link.to_string_lossy()).ok_or_else(|| {
                    OciError::UnsafePath {
                        path: format!("{name} -> {}", link.display()),
                        reason: "symlink leaves the archive",
                    }
                })?;
                symlinks.insert(name, target);
            }
            _ => {}
        }
    }
    let lookup = |name: &str| -> Result<PathBuf> {
        let mut n = normalize_path(name)?;
        for _ in 0..8 {
            if let Some(p) = files.get(&n) {
                return Ok(p.clone());
            }
            match symlinks.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        Err(malformed(format!("{name} is not a file in the archive")))
    };
    let manifest =
        fs::read(lookup("manifest.json")?).map_err(OciError::io("reading manifest.json"))?;
    let entries: Vec<ArchiveEntry> =
        serde_json::from_slice(&manifest).map_err(OciError::json("parsing manifest.json"))?;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let config_path = lookup(&entry.config)?;
        let config_bytes: Bytes = fs::read(&config_path)
            .map_err(OciError::io(format!("reading {}", entry.config)))?
            .into();
        if let Some(hex) = digest_in_name(&entry.config) {
            Digest::parse(&format!("sha256:{hex}"))?.verify(&config_bytes, &entry.config)?;
        }
        let config = ImageConfig::parse(&config_bytes)?;
        let layers = entry
            .layers
            .iter()
            .map(|l| lookup(l))
            .collect::<Result<Vec<_>>>()?;
        out.push(SavedImage {
            repo_tags: entry.repo_tags,
            config_bytes,
            config,
            layers,
        });
    }
    Ok(out)
}

/// Resolves a relative symlink target against its directory, lexically, inside the archive;
/// `None` when it is absolute or climbs above the archive root.
fn resolve_link(dir: &str, link: &str) -> Option<String> {
    if link.starts_with('/') || link.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
    for c in link.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The 64-hex name of `blobs/sha256/<hex>` or `<hex>.json`, when the path has one.
fn digest_in_name(path: &str) -> Option<&str> {
    let base = path.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    (hex.len() == 64
        && hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)))
    .then_some(hex)
}
