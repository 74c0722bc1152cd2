//! Assembled layers computed once (issue 11): a layer whose entries are identical for
//! several platforms is written once per build, and a local cache of compressed blobs keyed
//! by content means an unchanged layer is never recompressed on a warm rebuild. The same
//! cache, keyed by diff_id, lets an export of an engine-built image reuse blobs.
//!
//! The content key hashes every entry's header fields and, for in-memory files, their bytes;
//! for a host file it hashes its path, size, mtime, ctime, inode and device rather than its
//! bytes (git's index does the same): hashing 300 MB on every warm build would cost more than
//! the 5 % budget. A file rewritten in place with the same size within one ctime tick would be
//! missed; ctime changes on every write, so an edit is seen.
//!
//! Cache layout (in the cache folder, see [`super::cache_dir`]):
//! `blobs/sha256/<hex>` the gzip blobs; `layers/<key>.json` and `diff_ids/<compressor>/<hex>.json` their
//! digests. Files are written under a temporary name and renamed, so concurrent builds
//! never see half a blob. Layers stream to disk: nothing is held whole in memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::oci::{Digest, EntryKind, FileSource, LayerBlob, LayerEntry, LayerOptions, OciError};

/// What the cache records for one blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    diff_id: String,
    digest: String,
    size: u64,
}

/// Counts of what the cache did (for tests and the bench).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Layers written (tar + gzip).
    pub written: usize,
    /// Layers reused from this build's memo.
    pub shared: usize,
    /// Layers reused from the persistent cache.
    pub reused: usize,
}

/// The layer cache of one build.
#[derive(Debug)]
pub struct LayerCache {
    dir: Option<PathBuf>,
    work_dir: PathBuf,
    options: LayerOptions,
    /// This build's layers by content key; a cell is shared by concurrent callers, so a
    /// layer two platforms need at the same time is still written once.
    memo: crate::once::OnceMap<String, LayerBlob>,
    stats: Mutex<CacheStats>,
}

impl LayerCache {
    /// A cache persisted in `dir` (`None`: this build only), writing fresh layers into `dir`
    /// or else `work_dir` (which must outlive the build's outputs).
    pub fn new(dir: Option<PathBuf>, work_dir: &Path, options: LayerOptions) -> LayerCache {
        LayerCache {
            dir,
            work_dir: work_dir.to_path_buf(),
            options,
            memo: Default::default(),
            stats: Mutex::new(CacheStats::default()),
        }
    }

    /// The persistent cache folder, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Where files are kept: the cache folder, else the work folder.
    pub fn root(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| self.work_dir.clone())
    }

    /// The layer options every layer is written with.
    pub fn options(&self) -> &LayerOptions {
        &self.options
    }

    /// What the cache did so far.
    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().expect("stats lock")
    }

    fn count(&self, f: impl FnOnce(&mut CacheStats)) {
        f(&mut self.stats.lock().expect("stats lock"));
    }

    /// The layer of `entries`: from this build's memo, the persistent cache, or written now.
    /// Writing (tar, gzip, digests) runs on a blocking thread, so the finals of several
    /// platforms are compressed in parallel.
    pub async fn layer(&self, entries: &[LayerEntry]) -> crate::oci::Result<LayerBlob> {
        let key = content_key(entries, &self.options);
        let cell = self.memo.cell(&key);
        let mut counted = false;
        let layer = cell
            .get_or_try_init(|| async {
                counted = true;
                let record = format!("layers/{key}.json");
                if let Some(l) = self.lookup(&record) {
                    self.count(|s| s.reused += 1);
                    return Ok(l);
                }
                let root = self.dir.clone().unwrap_or_else(|| self.work_dir.clone());
                let (owned, options) = (entries.to_vec(), self.options);
                let l = tokio::task::spawn_blocking(move || write(&root, &owned, &options))
                    .await
                    .map_err(|e| OciError::Io {
                        action: "writing a layer".into(),
                        source: std::io::Error::other(e),
                    })??;
                self.remember(&record, &l);
                self.remember(&diff_id_record(l.diff_id()), &l);
                self.count(|s| s.written += 1);
                Ok(l)
            })
            .await?
            .clone();
        if !counted {
            self.count(|s| s.shared += 1);
        }
        Ok(layer)
    }

    /// A cached gzip blob whose uncompressed tar has this diff_id.
    pub fn by_diff_id(&self, diff_id: Digest) -> Option<LayerBlob> {
        self.lookup(&diff_id_record(diff_id))
    }

    /// Records a blob (e.g. one compressed while exporting) under its diff_id, moving its file
    /// into the cache; returns the layer as it now lives.
    pub fn keep(&self, layer: LayerBlob) -> LayerBlob {
        let Some(dir) = &self.dir else { return layer };
        let crate::oci::BlobSource::File(path) = layer.source() else {
            return layer;
        };
        let dest = dir.join("blobs/sha256").join(layer.digest().hex());
        let tmp = tmp_name(&dest);
        let moved = std::fs::create_dir_all(dest.parent().expect("has a parent"))
            .and_then(|_| std::fs::copy(path, &tmp))
            .and_then(|_| std::fs::rename(&tmp, &dest));
        if moved.is_err() {
            return layer;
        }
        let kept = LayerBlob::from_gzip_file(&dest, layer.digest(), layer.size(), layer.diff_id());
        self.remember(&diff_id_record(layer.diff_id()), &kept);
        kept
    }

    fn lookup(&self, record: &str) -> Option<LayerBlob> {
        let dir = self.dir.as_ref()?;
        let r: Record = serde_json::from_slice(&std::fs::read(dir.join(record)).ok()?).ok()?;
        let digest = Digest::parse(&r.digest).ok()?;
        let blob = dir.join("blobs/sha256").join(digest.hex());
        // A blob that is gone or truncated is a miss, never an error.
        if std::fs::metadata(&blob).ok()?.len() != r.size {
            return None;
        }
        let diff_id = Digest::parse(&r.diff_id).ok()?;
        Some(LayerBlob::from_gzip_file(&blob, digest, r.size, diff_id))
    }

    fn remember(&self, record: &str, layer: &LayerBlob) {
        let Some(dir) = &self.dir else { return };
        let r = Record {
            diff_id: layer.diff_id().to_string(),
            digest: layer.digest().to_string(),
            size: layer.size(),
        };
        let path = dir.join(record);
        let tmp = tmp_name(&path);
        // The cache is an optimisation: failing to record is not a build error.
        let _ = std::fs::create_dir_all(path.parent().expect("has a parent"))
            .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(&r).unwrap_or_default()))
            .and_then(|_| std::fs::rename(&tmp, &path));
    }
}

/// Writes the gzip blob of `entries` into `root`'s `blobs/sha256`, under a temporary name
/// first.
fn write(
    root: &Path,
    entries: &[LayerEntry],
    options: &LayerOptions,
) -> crate::oci::Result<LayerBlob> {
    let blobs = root.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)
        .map_err(OciError::io(format!("creating {}", blobs.display())))?;
    let tmp = blobs.join(format!(".new-{}-{}", std::process::id(), unique()));
    let built = LayerBlob::build_to_file(entries, options, &tmp)?;
    let dest = blobs.join(built.digest().hex());
    std::fs::rename(&tmp, &dest).map_err(OciError::io(format!("renaming {}", tmp.display())))?;
    Ok(LayerBlob::from_gzip_file(
        &dest,
        built.digest(),
        built.size(),
        built.diff_id(),
    ))
}

/// The compressor behind every blob this cache writes. Its output is part of a blob's
/// digest, so blobs another compressor wrote (an older xplat's miniz_oxide) must not
/// answer: both record paths name it.
const COMPRESSOR: &str = "zlib-rs";

/// The record of the blob whose uncompressed tar has `diff_id`.
fn diff_id_record(diff_id: Digest) -> String {
    format!("diff_ids/{COMPRESSOR}/{}.json", diff_id.hex())
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A temporary name beside `path`, unique in this process (pid and a counter): files are
/// written under it and renamed into place.
pub(super) fn tmp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}-{}", std::process::id(), unique()));
    path.with_file_name(name)
}

/// The content key of a layer: its options and every entry (see the module doc for files).
pub fn content_key(entries: &[LayerEntry], options: &LayerOptions) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(b"xplat-layer-v1");
    field(COMPRESSOR.as_bytes());
    field(&options.gzip_level.to_be_bytes());
    field(&options.source_date_epoch.unwrap_or(i64::MIN).to_be_bytes());
    for e in entries {
        field(e.path.as_bytes());
        field(&e.mode.to_be_bytes());
        field(&e.uid.to_be_bytes());
        field(&e.gid.to_be_bytes());
        field(&e.mtime.to_be_bytes());
        match &e.kind {
            EntryKind::Dir => field(b"d"),
            EntryKind::Symlink { target } => {
                field(b"l");
                field(target.as_bytes());
            }
            EntryKind::Hardlink { target } => {
                field(b"h");
                field(target.as_bytes());
            }
            EntryKind::File {
                source: FileSource::Bytes(b),
            } => {
                field(b"f");
                field(&Sha256::digest(b));
            }
            EntryKind::File {
                source: FileSource::Host(p),
            } => {
                field(b"F");
                field(p.as_os_str().as_encoded_bytes());
                field(&host_identity(p));
            }
        }
    }
    hex::encode(h.finalize())
}

/// size, mtime, ctime (ns), inode and device of a host file; empty when it cannot be read
/// (the layer write will then report the error).
fn host_identity(p: &Path) -> Vec<u8> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(56);
    for v in [
        m.len() as i64,
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.ino() as i64,
        m.dev() as i64,
    ] {
        out.write_all(&v.to_be_bytes()).expect("vec write");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(written: usize, shared: usize, reused: usize) -> CacheStats {
        CacheStats {
            written,
            shared,
            reused,
        }
    }

    #[tokio::test]
    async fn identical_entries_are_written_once_per_build_and_once_ever() {
        let cache_dir = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("big");
        std::fs::write(&src, vec![7u8; 100_000]).unwrap();
        let entries = vec![
            LayerEntry::host_file("/big", &src, 0o644),
            LayerEntry::file("/small", &b"x"[..], 0o600),
        ];
        let opts = LayerOptions::default();
        let cache = LayerCache::new(Some(cache_dir.path().into()), work.path(), opts);
        let a = cache.layer(&entries).await.unwrap();
        let b = cache.layer(&entries).await.unwrap();
        assert_eq!((a.digest(), a.diff_id()), (b.digest(), b.diff_id()));
        assert_eq!(cache.stats(), counts(1, 1, 0));
        // The digest equals a layer built directly: the cache changes nothing of the bytes.
        assert_eq!(
            a.digest(),
            LayerBlob::build(&entries, &opts).unwrap().digest()
        );
        // A new build (new cache value) reuses the blob without writing it.
        let warm = LayerCache::new(Some(cache_dir.path().into()), work.path(), opts);
        let c = warm.layer(&entries).await.unwrap();
        assert_eq!(c.digest(), a.digest());
        assert_eq!(warm.stats(), counts(0, 0, 1));
        assert_eq!(warm.by_diff_id(a.diff_id()).unwrap().digest(), a.digest());
        // Editing the file changes the key.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&src, vec![8u8; 100_000]).unwrap();
        let d = warm.layer(&entries).await.unwrap();
        assert_ne!(d.digest(), a.digest());
        assert_eq!(warm.stats().written, 1);
        // A truncated blob is a miss, not an error.
        let blob = cache_dir.path().join("blobs/sha256").join(d.digest().hex());
        std::fs::write(&blob, b"short").unwrap();
        let again = LayerCache::new(Some(cache_dir.path().into()), work.path(), opts);
        assert_eq!(again.layer(&entries).await.unwrap().digest(), d.digest());
        assert_eq!(again.stats().written, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_layer_two_platforms_need_at_once_is_written_once() {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("big");
        std::fs::write(&src, vec![3u8; 4_000_000]).unwrap();
        let entries = vec![LayerEntry::host_file("/big", &src, 0o755)];
        let cache = LayerCache::new(None, work.path(), LayerOptions::default());
        let (a, b) = tokio::join!(cache.layer(&entries), cache.layer(&entries));
        assert_eq!(a.unwrap().digest(), b.unwrap().digest());
        assert_eq!(cache.stats(), counts(1, 1, 0));
    }

    #[tokio::test]
    async fn without_a_cache_folder_layers_go_to_the_work_dir() {
        let work = tempfile::tempdir().unwrap();
        let cache = LayerCache::new(None, work.path(), LayerOptions::default());
        let l = cache
            .layer(&[LayerEntry::file("/a", &b"a"[..], 0o644)])
            .await
            .unwrap();
        let crate::oci::BlobSource::File(p) = l.source() else {
            panic!("a file")
        };
        assert!(p.starts_with(work.path()));
        assert!(cache.by_diff_id(l.diff_id()).is_none());
    }
}
