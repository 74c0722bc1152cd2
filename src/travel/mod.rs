//! The build cache that travels (`--cache-to`, `--cache-from`): what a fresh CI runner
//! needs to skip the jobs whose results it would only read.
//!
//! What travels is the output cache ([`crate::exec::outputs`]): for each job of the build,
//! the recordings its consumers read (`COPY --from`, bind mounts), under the job's chain
//! key (base digest, each step, the content it reads, its dependencies' keys). A job whose
//! recordings are all there is not run, and an assembled final reads them directly: with
//! no change, a rebuild on an empty engine runs no RUN. Keys are per job, and a job's key
//! holds its platform, so entries of different platforms never overwrite each other.
//!
//! The format is an OCI image index (in a registry under a tag, or `index.json` of an OCI
//! layout folder) of OCI artifact manifests, one per key: `artifactType`
//! [`ARTIFACT_TYPE`], the empty config, one layer (a tar of the key's recording files),
//! and the key in the [`KEY_ANNOTATION`] annotation of the manifest and of its index entry.
//! `xplat inspect` reads it like any index.
//!
//! With `mode=max` the engine's step-cache checkpoints of the build's jobs travel too
//! ([`checkpoint`]): a fresh runner loads one only when a job would start from it, so a
//! changed job starts at its latest checkpoint rather than at its first step.
//! Secrets never reach a recording (they are on a tmpfs, never in a job's filesystem), nor
//! do cache mounts (volumes, not the job's files). Every blob and manifest is checked
//! against its digest on import; a source that cannot be read, or an entry that does not
//! check out, is a warning and is skipped.

mod checkpoint;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::oci::digest::HashingWriter;
use crate::registry::{
    sha256_digest, Blob, BlobSource, ImageRef, PlatformImage, PushOptions, PushRequest,
    RawManifest, RegistryClient, OCI_INDEX, OCI_MANIFEST,
};

pub use checkpoint::{
    parent_of, CheckpointImage, Checkpoints, CHECKPOINT_TYPE, KIND_ANNOTATION, PARENT_ANNOTATION,
};
pub use spec::{parse_from, parse_to, CacheTo, Location, Mode, SpecError};

/// The `artifactType` of a cache entry's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.xplat.cache.v1";
/// The media type of an entry's one layer: a tar of its recording files.
pub const ENTRY_MEDIA_TYPE: &str = "application/vnd.xplat.cache.entry.v1.tar";
/// The annotation holding an entry's chain key.
pub const KEY_ANNOTATION: &str = "dev.xplat.cache.key";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";

/// Why the cache could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum TravelError {
    /// A file of the cache could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The registry refused or failed.
    #[error("{0}")]
    Registry(#[from] crate::registry::RegistryError),
    /// The cache's index or an entry is not what xplat writes.
    #[error("{0}")]
    Corrupt(String),
}

type Result<T> = std::result::Result<T, TravelError>;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TravelError {
    let path = path.to_path_buf();
    move |source| TravelError::Io {
        action,
        path,
        source,
    }
}

/// One entry made ready to export: its key, its manifest, what its index entry says and
/// its blobs (a [`BlobSource::Remote`] blob is one the destination holds already).
struct Entry {
    key: String,
    artifact_type: &'static str,
    annotations: serde_json::Value,
    manifest: RawManifest,
    blobs: Vec<Blob>,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    /// Entries in the cache.
    pub entries: usize,
    /// Of those, checkpoints (`mode=max`).
    pub checkpoints: usize,
    /// Checkpoints the destination held already (not read from the engine again).
    pub kept: usize,
    /// Bytes sent (a registry) or written (a folder) for blobs the destination lacked.
    pub bytes: u64,
    /// Checkpoints left out, with why (a warning each).
    pub skipped: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Entries taken into the local cache.
    pub entries: usize,
    /// Entries already there.
    pub present: usize,
    /// Entries skipped, with why (a warning each).
    pub skipped: Vec<String>,
    /// Checkpoint entries (`mode=max`), not fetched: (key, manifest digest, parent key).
    pub checkpoints: Vec<(String, String, Option<String>)>,
}

/// Packs the recordings of `keys` found under `outputs` (the output cache's folder), in
/// key order, into `work`.
fn pack(outputs: &Path, keys: &BTreeSet<String>, work: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for key in keys {
        let dir = outputs.join(key.trim_start_matches("sha256:"));
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = read
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_entry_file(n))
            .collect();
        if names.is_empty() {
            continue;
        }
        names.sort();
        std::fs::create_dir_all(work).map_err(io("creating", work))?;
        let layer = work.join(format!("{}.tar", key.trim_start_matches("sha256:")));
        let file = std::fs::File::create(&layer).map_err(io("creating", &layer))?;
        let mut tar = tar::Builder::new(HashingWriter::new(file));
        for n in &names {
            let path = dir.join(n);
            let mut f = std::fs::File::open(&path).map_err(io("reading", &path))?;
            let len = f.metadata().map_err(io("reading", &path))?.len();
            let mut h = tar::Header::new_gnu();
            h.set_size(len);
            h.set_mode(0o644);
            h.set_mtime(0);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, n, &mut f)
                .map_err(io("packing", &path))?;
        }
        let (file, digest, layer_size) = tar.into_inner().map_err(io("writing", &layer))?.finish();
        file.sync_all().map_err(io("writing", &layer))?;
        let layer_digest = digest.to_string();
        let manifest = entry_manifest(key, &layer_digest, layer_size);
        entries.push(Entry {
            key: key.clone(),
            artifact_type: ARTIFACT_TYPE,
            annotations: serde_json::json!({ KEY_ANNOTATION: key }),
            manifest,
            blobs: vec![
                Blob {
                    digest: sha256_digest(EMPTY),
                    size: EMPTY.len() as u64,
                    source: BlobSource::Bytes(Bytes::from_static(EMPTY)),
                },
                Blob {
                    digest: layer_digest,
                    size: layer_size,
                    source: BlobSource::File(layer),
                },
            ],
        });
    }
    Ok(entries)
}

/// `<64 hex>.json` or `<64 hex>.tar`: the only names an entry holds.
fn is_entry_file(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    stem.len() == 64
        && stem
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && (ext == "json" || ext == "tar")
}

fn entry_manifest(key: &str, layer_digest: &str, layer_size: u64) -> RawManifest {
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": sha256_digest(EMPTY), "size": EMPTY.len()},
        "layers": [{"mediaType": ENTRY_MEDIA_TYPE, "digest": layer_digest, "size": layer_size}],
        "annotations": {KEY_ANNOTATION: key},
    });
    RawManifest::new(OCI_MANIFEST, serde_json::to_vec(&doc).expect("json"))
}

fn index_of(entries: &[Entry]) -> RawManifest {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "mediaType": OCI_MANIFEST,
                "artifactType": e.artifact_type,
                "digest": e.manifest.digest,
                "size": e.manifest.bytes.len(),
                "annotations": e.annotations,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
        "annotations": {"dev.xplat.cache.format": "1"},
    });
    RawManifest::new(OCI_INDEX, serde_json::to_vec(&doc).expect("json"))
}

/// Exports the recordings of `keys` to `to`, and with `mode=max` the `checkpoints` (an
/// entry `to` holds already is kept as it is: the engine is not read again). `outputs`
/// is the output cache's folder; `work` a scratch folder.
pub async fn export(
    to: &Location,
    outputs: &Path,
    keys: &BTreeSet<String>,
    checkpoints: &[CheckpointImage],
    client: &RegistryClient,
    work: &Path,
) -> Result<Exported> {
    let work = work.join("cache-export");
    let mut entries = pack(outputs, keys, &work)?;
    let mut done = Exported::default();
    let held = if checkpoints.is_empty() {
        BTreeMap::new()
    } else {
        held_checkpoints(to, client).await
    };
    let source = Source { at: to, client };
    for c in checkpoints {
        let parent = parent_of(c, checkpoints);
        let kept = match held.get(&c.key) {
            Some(digest) => kept_entry(&source, &c.key, digest).await.ok(),
            None => None,
        };
        let entry = match kept {
            Some(e) => {
                done.kept += 1;
                e
            }
            None => match checkpoint::pack(c, parent, &work).await {
                Ok(p) => checkpoint_entry(p, parent),
                Err(why) => {
                    done.skipped
                        .push(format!("checkpoint {}: {why}", short(&c.key)));
                    continue;
                }
            },
        };
        done.checkpoints += 1;
        entries.push(entry);
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let index = index_of(&entries);
    done.bytes = match to {
        Location::Local(dir) => export_local(dir, &entries, &index)?,
        Location::Registry(reference) => {
            export_registry(reference, &entries, &index, client).await?
        }
    };
    done.entries = entries.len();
    let _ = std::fs::remove_dir_all(&work);
    Ok(done)
}

fn checkpoint_entry(p: checkpoint::Packed, parent: Option<&str>) -> Entry {
    let annotations = checkpoint::annotations(&p.key, parent);
    Entry {
        key: p.key,
        artifact_type: CHECKPOINT_TYPE,
        annotations,
        manifest: p.manifest,
        blobs: vec![
            Blob {
                digest: sha256_digest(&p.config),
                size: p.config.len() as u64,
                source: BlobSource::Bytes(p.config),
            },
            Blob {
                digest: p.layer_digest,
                size: p.layer_size,
                source: BlobSource::File(p.layer),
            },
        ],
    }
}

/// The checkpoint entries `to` holds (key → manifest digest); none when it cannot be read.
async fn held_checkpoints(to: &Location, client: &RegistryClient) -> BTreeMap<String, String> {
    let source = Source { at: to, client };
    let Ok(bytes) = source.index().await else {
        return BTreeMap::new();
    };
    let index: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    listed(&index)
        .filter(|l| l.kind == Some("checkpoint"))
        .map(|l| (l.key.to_string(), l.digest.to_string()))
        .collect()
}

/// One xplat cache entry as a cache index lists it.
struct Listed<'a> {
    key: &'a str,
    digest: &'a str,
    /// `None`: recordings; `checkpoint`; a kind a newer version wrote.
    kind: Option<&'a str>,
    /// The key of the checkpoint a checkpoint sits on, as written.
    parent: Option<&'a str>,
}

/// The entries of a cache index that carry a key (others are not xplat's).
fn listed(index: &serde_json::Value) -> impl Iterator<Item = Listed<'_>> {
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let a = &m["annotations"];
            Some(Listed {
                key: a[KEY_ANNOTATION].as_str()?,
                digest: m["digest"].as_str()?,
                kind: a[KIND_ANNOTATION].as_str(),
                parent: a[PARENT_ANNOTATION].as_str(),
            })
        })
}

/// A checkpoint entry `source` holds, kept as it is: its manifest (checked) and its blobs,
/// which stay where they are.
async fn kept_entry(source: &Source<'_>, key: &str, digest: &str) -> Result<Entry> {
    let bytes = source.blob(digest, true).await?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| TravelError::Corrupt(format!("its manifest is not JSON: {e}")))?;
    let mut blobs = Vec::new();
    for d in std::iter::once(&doc["config"]).chain(doc["layers"].as_array().into_iter().flatten()) {
        let (Some(digest), Some(size)) = (d["digest"].as_str(), d["size"].as_u64()) else {
            return Err(TravelError::Corrupt("a descriptor has no digest".into()));
        };
        let reference = match source.at {
            Location::Registry(r) => r.clone(),
            // A folder's blob stays in the folder (and must be there).
            Location::Local(dir) => {
                let path = Source::local_blob(dir, digest)?;
                if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(size) {
                    return Err(TravelError::Corrupt(format!("{digest} is missing")));
                }
                ImageRef::parse("localhost/held").expect("a valid reference")
            }
        };
        blobs.push(Blob {
            digest: digest.to_string(),
            size,
            source: BlobSource::Remote(reference),
        });
    }
    Ok(Entry {
        key: key.to_string(),
        artifact_type: CHECKPOINT_TYPE,
        annotations: doc["annotations"].clone(),
        manifest: RawManifest::new(OCI_MANIFEST, bytes.to_vec()),
        blobs,
    })
}

fn export_local(dir: &Path, entries: &[Entry], index: &RawManifest) -> Result<u64> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io("creating", &blobs))?;
    let mut written = 0u64;
    let mut live = BTreeSet::new();
    for e in entries {
        let manifest = Blob {
            digest: e.manifest.digest.clone(),
            size: e.manifest.bytes.len() as u64,
            source: BlobSource::Bytes(e.manifest.bytes.clone()),
        };
        for b in e.blobs.iter().chain(std::iter::once(&manifest)) {
            let hex = b.digest.trim_start_matches("sha256:").to_string();
            let path = blobs.join(&hex);
            live.insert(hex);
            if path.is_file() {
                continue;
            }
            let tmp = path.with_extension("tmp");
            written += match &b.source {
                BlobSource::Bytes(bytes) => std::fs::write(&tmp, bytes).map(|_| bytes.len() as u64),
                BlobSource::File(f) => std::fs::copy(f, &tmp),
                BlobSource::Remote(_) => {
                    return Err(TravelError::Corrupt(format!(
                        "blob {} of a kept entry is gone from {}",
                        b.digest,
                        dir.display()
                    )))
                }
            }
            .map_err(io("writing", &tmp))?;
            std::fs::rename(&tmp, &path).map_err(io("writing", &path))?;
        }
    }
    let layout = dir.join("oci-layout");
    std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io("writing", &layout))?;
    let at = dir.join("index.json");
    let tmp = dir.join("index.json.tmp");
    std::fs::write(&tmp, &index.bytes).map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, &at).map_err(io("writing", &at))?;
    // Blobs no entry references any more go (the folder holds one cache, not a history).
    for f in std::fs::read_dir(&blobs)
        .map_err(io("reading", &blobs))?
        .flatten()
    {
        if !live.contains(&*f.file_name().to_string_lossy()) {
            let _ = std::fs::remove_file(f.path());
        }
    }
    Ok(written)
}

async fn export_registry(
    reference: &ImageRef,
    entries: &[Entry],
    index: &RawManifest,
    client: &RegistryClient,
) -> Result<u64> {
    let images = entries
        .iter()
        .map(|e| PlatformImage {
            platform: format!("cache {}", short(&e.key)),
            manifest: e.manifest.clone(),
            blobs: e.blobs.clone(),
        })
        .collect();
    let req = PushRequest {
        target: reference.clone(),
        tags: vec![reference.tag.clone().unwrap_or_else(|| "latest".into())],
        images,
        index: index.clone(),
    };
    let summary = client.push(&req, &PushOptions::default(), &|_| {}).await?;
    Ok(summary.bytes_uploaded)
}

/// How a cache location is named in messages.
pub fn describe(at: &Location) -> String {
    match at {
        Location::Local(d) => d.display().to_string(),
        Location::Registry(r) => r.to_string(),
    }
}

fn short(key: &str) -> &str {
    let k = key.trim_start_matches("sha256:");
    &k[..k.len().min(12)]
}

/// Takes every entry of `from` that the output cache folder `outputs` lacks. A source
/// that cannot be read is an error (the caller warns); a bad entry is skipped and said.
pub async fn import(from: &Location, outputs: &Path, client: &RegistryClient) -> Result<Imported> {
    let source = Source { at: from, client };
    let index_bytes = source.index().await?;
    let index: serde_json::Value = serde_json::from_slice(&index_bytes)
        .map_err(|e| TravelError::Corrupt(format!("the cache index is not JSON: {e}")))?;
    let mut done = Imported::default();
    if !index["manifests"].is_array() {
        return Err(TravelError::Corrupt(
            "the cache index lists no manifests".into(),
        ));
    }
    for Listed {
        key,
        digest,
        kind,
        parent,
    } in listed(&index)
    {
        if !is_key(key) {
            done.skipped
                .push(format!("an entry's key {key:?} is not a chain key"));
            continue;
        }
        match kind {
            None => {}
            // Loaded when a job would start from it (`Checkpoints`).
            Some("checkpoint") => {
                let parent = parent.filter(|p| is_key(p)).map(str::to_string);
                done.checkpoints
                    .push((key.to_string(), digest.to_string(), parent));
                continue;
            }
            Some(_) => continue, // a kind this version does not know
        }
        let dir = outputs.join(key.trim_start_matches("sha256:"));
        if dir.is_dir() {
            done.present += 1;
            continue;
        }
        match take(&source, key, digest, outputs, &dir).await {
            Ok(()) => done.entries += 1,
            Err(why) => done.skipped.push(format!("entry {}: {why}", short(key))),
        }
    }
    Ok(done)
}

fn is_key(key: &str) -> bool {
    let hex = key.trim_start_matches("sha256:");
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches one entry, checks every digest, and unpacks it into `dir` (through a
/// temporary folder, so a failed entry leaves nothing).
async fn take(
    source: &Source<'_>,
    key: &str,
    digest: &str,
    outputs: &Path,
    dir: &Path,
) -> Result<()> {
    let manifest = source.blob(digest, true).await?;
    let doc: serde_json::Value = serde_json::from_slice(&manifest)
        .map_err(|e| TravelError::Corrupt(format!("its manifest is not JSON: {e}")))?;
    if doc["annotations"][KEY_ANNOTATION].as_str() != Some(key) {
        return Err(TravelError::Corrupt(
            "its manifest names another key".into(),
        ));
    }
    let layer = doc["layers"][0]["digest"]
        .as_str()
        .ok_or_else(|| TravelError::Corrupt("its manifest has no layer".into()))?;
    let data = source.blob(layer, false).await?;
    let tmp = outputs.join(format!(".import-{}-{}", std::process::id(), short(key)));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io("creating", &tmp))?;
    let unpacked =
        unpack(&data, &tmp).and_then(|()| std::fs::rename(&tmp, dir).map_err(io("placing", dir)));
    if unpacked.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    unpacked
}

/// Unpacks an entry's tar into `into`: flat, known names only, so nothing can land
/// outside the entry's folder.
fn unpack(data: &[u8], into: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(data);
    for entry in archive
        .entries()
        .map_err(io("reading the entry in", into))?
    {
        let mut entry = entry.map_err(io("reading the entry in", into))?;
        let name = entry
            .path()
            .map_err(io("reading the entry in", into))?
            .to_string_lossy()
            .into_owned();
        if !is_entry_file(&name) || entry.header().entry_type() != tar::EntryType::Regular {
            return Err(TravelError::Corrupt(format!("it holds {name:?}")));
        }
        let to = into.join(&name);
        let mut f = std::fs::File::create(&to).map_err(io("writing", &to))?;
        std::io::copy(&mut entry, &mut f).map_err(io("writing", &to))?;
    }
    Ok(())
}

/// Where an import reads from.
struct Source<'a> {
    at: &'a Location,
    client: &'a RegistryClient,
}

impl Source<'_> {
    async fn index(&self) -> Result<Bytes> {
        match self.at {
            Location::Local(dir) => {
                let p = dir.join("index.json");
                Ok(std::fs::read(&p).map_err(io("reading", &p))?.into())
            }
            Location::Registry(r) => Ok(self.client.fetch_manifest(r).await?.bytes),
        }
    }

    /// The path of a blob in a local cache folder.
    fn local_blob(dir: &Path, digest: &str) -> Result<PathBuf> {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TravelError::Corrupt(format!("bad digest {digest:?}")));
        }
        Ok(dir.join("blobs").join("sha256").join(hex))
    }

    /// A blob as a file: a cache folder's own, else downloaded into `tmp` (never held
    /// whole in memory). The caller checks it against `digest` as it reads it.
    async fn blob_file(&self, digest: &str, tmp: &Path) -> Result<PathBuf> {
        let r = match self.at {
            Location::Local(dir) => return Self::local_blob(dir, digest),
            Location::Registry(r) => r,
        };
        let fetched = async {
            let mut stream = self.client.blob_stream(r, digest).await?;
            let mut f = tokio::fs::File::create(tmp)
                .await
                .map_err(io("writing", tmp))?;
            while let Some(chunk) = stream.next().await {
                f.write_all(&chunk?).await.map_err(io("writing", tmp))?;
            }
            f.flush().await.map_err(io("writing", tmp))
        }
        .await;
        if let Err(e) = fetched {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
        Ok(tmp.to_path_buf())
    }

    /// A blob (or, with `manifest`, a manifest) by digest, checked against it.
    async fn blob(&self, digest: &str, manifest: bool) -> Result<Bytes> {
        let bytes: Bytes = match self.at {
            Location::Local(dir) => {
                let p = Self::local_blob(dir, digest)?;
                std::fs::read(&p).map_err(io("reading", &p))?.into()
            }
            Location::Registry(r) if manifest => {
                self.client
                    .fetch_manifest(&r.with_digest(digest))
                    .await?
                    .bytes
            }
            Location::Registry(r) => self.client.fetch_blob(r, digest).await?,
        };
        if sha256_digest(&bytes) != digest {
            return Err(TravelError::Corrupt(format!(
                "{digest} does not match its content"
            )));
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
