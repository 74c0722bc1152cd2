//! Deterministic layer tars from a list of entries, gzip-compressed while streaming,
//! with diff_id (sha256 of the tar) and digest (sha256 of the gzip) computed on the way.
//!
//! Determinism rules (ENGINE-AND-REGISTRY §5): entries sorted by path component,
//! whiteouts before their siblings, parents before children (missing parents are
//! added as root-owned 0755 directories with mtime 0); headers written field by field
//! (ustar + PAX, empty uname/gname); mtimes clamped to `source_date_epoch` when given;
//! gzip from flate2 on the zlib-rs backend (zlib-ng's speed, no C) at a fixed level, never
//! flushed mid-stream. The backend is part of the digest: changing it changes every blob's
//! bytes (not its diff_id).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use flate2::write::GzEncoder;

pub use super::blob::{BlobSource, LayerBlob};
use super::digest::{Digest, HashingWriter};
use super::error::{OciError, Result};
use super::tar_writer::{Header, TarWriter, TypeFlag};

/// Prefix of a whiteout file name (image-spec `layer.md`).
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory whiteout.
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum FileSource {
    /// Bytes held in memory.
    Bytes(Bytes),
    /// A regular file on the host, read while the layer is written (symlinks refused).
    Host(PathBuf),
}

/// What a layer entry is.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Its content.
        source: FileSource,
    },
    /// A symbolic link; the target is stored as given (absolute targets are normal in images).
    Symlink {
        /// The link target.
        target: String,
    },
    /// A hard link to a regular file entry of the same layer.
    Hardlink {
        /// Path of the linked file, inside the layer.
        target: String,
    },
}

/// One path in a layer, with the metadata its tar header carries.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerEntry {
    /// Path inside the image; a leading `/` is allowed and dropped, `..` and NUL are refused.
    pub path: String,
    /// Directory, file, symlink or hardlink.
    pub kind: EntryKind,
    /// Permission bits including setuid/setgid/sticky (`& 0o7777` is written).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Modification time, Unix seconds (clamped to `source_date_epoch` when set).
    pub mtime: i64,
}

impl LayerEntry {
    fn new(path: impl Into<String>, kind: EntryKind, mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// A root-owned directory.
    pub fn dir(path: impl Into<String>, mode: u32) -> LayerEntry {
        LayerEntry::new(path, EntryKind::Dir, mode)
    }

    /// A root-owned file with in-memory content.
    pub fn file(path: impl Into<String>, content: impl Into<Bytes>, mode: u32) -> LayerEntry {
        let source = FileSource::Bytes(content.into());
        LayerEntry::new(path, EntryKind::File { source }, mode)
    }

    /// A root-owned file whose content is read from a host file when the layer is written.
    pub fn host_file(path: impl Into<String>, host: impl Into<PathBuf>, mode: u32) -> LayerEntry {
        let source = FileSource::Host(host.into());
        LayerEntry::new(path, EntryKind::File { source }, mode)
    }

    /// A root-owned symlink (mode 0777).
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> LayerEntry {
        LayerEntry::new(
            path,
            EntryKind::Symlink {
                target: target.into(),
            },
            0o777,
        )
    }

    /// A hard link to the file entry at `target`.
    pub fn hardlink(path: impl Into<String>, target: impl Into<String>) -> LayerEntry {
        LayerEntry::new(
            path,
            EntryKind::Hardlink {
                target: target.into(),
            },
            0o644,
        )
    }

    /// A whiteout that deletes `deleted` (a path in a lower layer): the empty file `dir/.wh.name`.
    pub fn whiteout(deleted: &str) -> LayerEntry {
        let trimmed = deleted.trim_end_matches('/');
        let (dir, name) = match trimmed.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n),
            None => (String::new(), trimmed),
        };
        LayerEntry::file(format!("{dir}{WHITEOUT_PREFIX}{name}"), Bytes::new(), 0o644)
    }

    /// An opaque whiteout: hides everything lower layers have under `dir`.
    pub fn opaque(dir: &str) -> LayerEntry {
        let dir = dir.trim_end_matches('/');
        let path = if dir.is_empty() {
            OPAQUE_WHITEOUT.to_string()
        } else {
            format!("{dir}/{OPAQUE_WHITEOUT}")
        };
        LayerEntry::file(path, Bytes::new(), 0o644)
    }

    /// The same entry with another owner.
    pub fn owned_by(mut self, uid: u64, gid: u64) -> LayerEntry {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// The same entry with another mtime.
    pub fn modified_at(mut self, mtime: i64) -> LayerEntry {
        self.mtime = mtime;
        self
    }
}

/// How a layer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerOptions {
    /// SOURCE_DATE_EPOCH, passed in by the caller (never read from the environment here).
    pub source_date_epoch: Option<i64>,
    /// gzip level 0-9; part of the digest, so keep it fixed.
    pub gzip_level: u32,
}

impl Default for LayerOptions {
    fn default() -> Self {
        LayerOptions {
            source_date_epoch: None,
            gzip_level: 6,
        }
    }
}

/// The digests and sizes of one written layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerDigests {
    /// sha256 of the uncompressed tar (`rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the compressed blob.
    pub digest: Digest,
    /// Size of the compressed blob.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
}

type Pipeline<W> = HashingWriter<GzEncoder<HashingWriter<W>>>;

fn pipeline<W: Write>(out: W, opts: &LayerOptions) -> Pipeline<W> {
    let level = flate2::Compression::new(opts.gzip_level.min(9));
    HashingWriter::new(GzEncoder::new(HashingWriter::new(out), level))
}

fn finish_pipeline<W: Write>(p: Pipeline<W>) -> io::Result<(W, LayerDigests)> {
    let (gz, diff_id, tar_size) = p.finish();
    let (out, digest, size) = gz.finish()?.finish();
    Ok((
        out,
        LayerDigests {
            diff_id,
            digest,
            size,
            tar_size,
        },
    ))
}

/// gzips an existing uncompressed tar stream, hashing both sides.
pub fn compress_tar<R: Read, W: Write>(
    mut tar: R,
    opts: &LayerOptions,
    out: W,
) -> io::Result<(W, LayerDigests)> {
    let mut p = pipeline(out, opts);
    io::copy(&mut tar, &mut p)?;
    finish_pipeline(p)
}

/// Writes the deterministic gzip layer for `entries` to `out`; returns `out` and the digests.
pub fn write_layer<W: Write>(
    entries: &[LayerEntry],
    opts: &LayerOptions,
    out: W,
) -> Result<(W, LayerDigests)> {
    let p = write_entries(entries, opts, Parents::Implicit, pipeline(out, opts))?;
    finish_pipeline(p).map_err(OciError::io("finishing layer gzip"))
}

/// Writes `entries` as a plain (uncompressed) tar: what the executor sends to an engine's
/// `put_archive`. Unlike a layer, it lists no parent the caller did not: the archive is
/// extracted over a filesystem whose existing folders keep their owner and mode (an
/// implicit root-owned `owned/` entry reset a folder `COPY --chown=7:8` had made, issue 9),
/// and `stage` already lists the parents that are missing.
pub fn write_plain_tar<W: Write>(entries: &[LayerEntry], opts: &LayerOptions, out: W) -> Result<W> {
    write_entries(entries, opts, Parents::AsListed, out)
}

/// Whether a tar lists the parents its entries leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parents {
    /// As root-owned 0755 folders: a layer must be complete on its own.
    Implicit,
    /// Not at all: the tar is extracted over a filesystem that has them.
    AsListed,
}

fn write_entries<W: Write>(
    entries: &[LayerEntry],
    opts: &LayerOptions,
    parents: Parents,
    out: W,
) -> Result<W> {
    let plan = plan_entries(entries, parents)?;
    let mut tar = TarWriter::new(out);
    let clamp = |t: i64| -> u64 {
        let t = t.max(0);
        opts.source_date_epoch.map_or(t, |e| t.min(e.max(0))) as u64
    };
    for (i, item) in plan.items.iter().enumerate() {
        let e = item.entry;
        let action = || format!("writing layer entry {}", item.path);
        match &e.kind {
            EntryKind::Dir => {
                let name = format!("{}/", item.path);
                tar.header(&hdr(&name, "", TypeFlag::Directory, e, 0, clamp(e.mtime)))
                    .map_err(OciError::io(action()))?;
            }
            EntryKind::Symlink { target } => {
                tar.header(&hdr(
                    &item.path,
                    target,
                    TypeFlag::Symlink,
                    e,
                    0,
                    clamp(e.mtime),
                ))
                .map_err(OciError::io(action()))?;
            }
            EntryKind::File { .. } | EntryKind::Hardlink { .. } => {
                let group = item.group.as_deref().unwrap_or(&item.path);
                let leader = plan.leader[group];
                if leader != i {
                    let link = &plan.items[leader].path;
                    tar.header(&hdr(
                        &item.path,
                        link,
                        TypeFlag::Hardlink,
                        e,
                        0,
                        clamp(e.mtime),
                    ))
                    .map_err(OciError::io(action()))?;
                    continue;
                }
                // The leader carries the content and metadata of the linked file itself.
                let file = plan.files[group];
                let EntryKind::File { source } = &file.kind else {
                    unreachable!("group key is a file")
                };
                write_file(&mut tar, &item.path, file, source, clamp(file.mtime))?;
            }
        }
    }
    tar.finish().map_err(OciError::io("finishing layer tar"))
}

fn hdr<'a>(
    name: &'a str,
    link: &'a str,
    flag: TypeFlag,
    e: &LayerEntry,
    size: u64,
    mtime: u64,
) -> Header<'a> {
    Header {
        name,
        link,
        flag,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size,
        mtime,
    }
}

fn write_file<W: Write>(
    tar: &mut TarWriter<W>,
    name: &str,
    e: &LayerEntry,
    source: &FileSource,
    mtime: u64,
) -> Result<()> {
    let action = || format!("writing layer entry {name}");
    match source {
        FileSource::Bytes(b) => {
            tar.header(&hdr(name, "", TypeFlag::Regular, e, b.len() as u64, mtime))
                .map_err(OciError::io(action()))?;
            tar.write_content(b).map_err(OciError::io(action()))?;
            tar.pad(b.len() as u64).map_err(OciError::io(action()))
        }
        FileSource::Host(path) => {
            let host_err = |reason: String| OciError::HostFile {
                path: path.clone(),
                reason,
            };
            let meta = std::fs::symlink_metadata(path).map_err(|e| host_err(e.to_string()))?;
            if !meta.file_type().is_file() {
                return Err(host_err("not a regular file".to_string()));
            }
            let size = meta.len();
            let f = File::open(path).map_err(|e| host_err(e.to_string()))?;
            tar.header(&hdr(name, "", TypeFlag::Regular, e, size, mtime))
                .map_err(OciError::io(action()))?;
            let copied = io::copy(&mut f.take(size), tar.content_writer())
                .map_err(OciError::io(action()))?;
            if copied != size {
                return Err(host_err(format!(
                    "shrank from {size} to {copied} bytes while being read"
                )));
            }
            tar.pad(size).map_err(OciError::io(action()))
        }
    }
}

/// A normalised entry in write order.
struct Item<'a> {
    path: String,
    entry: &'a LayerEntry,
    /// For files and hardlinks: the path of the file whose content they share.
    group: Option<String>,
}

struct Plan<'a> {
    items: Vec<Item<'a>>,
    /// Group (file path) → index of the first item of that group in write order.
    leader: BTreeMap<String, usize>,
    /// Group (file path) → the file entry.
    files: BTreeMap<String, &'a LayerEntry>,
}

/// Root-owned 0755 directory used for parents the caller did not list.
static IMPLICIT_DIR: LayerEntry = LayerEntry {
    path: String::new(),
    kind: EntryKind::Dir,
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 0,
};

fn plan_entries(entries: &[LayerEntry], parents: Parents) -> Result<Plan<'_>> {
    let mut by_path: BTreeMap<String, &LayerEntry> = BTreeMap::new();
    for e in entries {
        let p = normalize_path(&e.path)?;
        if let EntryKind::Symlink { target } = &e.kind {
            if target.contains('\0') {
                return Err(OciError::UnsafePath {
                    path: e.path.clone(),
                    reason: "symlink target contains NUL",
                });
            }
        }
        if by_path.insert(p.clone(), e).is_some() {
            return Err(OciError::DuplicateEntry { path: p });
        }
    }
    let listed: Vec<String> = by_path.keys().cloned().collect();
    for p in &listed {
        let mut parent = p.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            match by_path.get(dir) {
                Some(d) if d.kind != EntryKind::Dir => {
                    return Err(OciError::UnsafePath {
                        path: p.clone(),
                        reason: "a parent path is not a directory",
                    });
                }
                Some(_) => {}
                None if parents == Parents::Implicit => {
                    by_path.insert(dir.to_string(), &IMPLICIT_DIR);
                }
                None => {}
            }
            parent = dir;
        }
    }
    let mut files = BTreeMap::new();
    for (p, e) in &by_path {
        if matches!(e.kind, EntryKind::File { .. }) {
            files.insert(p.clone(), *e);
        }
    }
    let mut items: Vec<Item<'_>> = Vec::with_capacity(by_path.len());
    for (path, entry) in by_path {
        let group = match &entry.kind {
            EntryKind::File { .. } => Some(path.clone()),
            EntryKind::Hardlink { target } => {
                let t = normalize_path(target)?;
                if !files.contains_key(&t) {
                    return Err(OciError::HardlinkTarget {
                        path,
                        target: target.clone(),
                    });
                }
                Some(t)
            }
            _ => None,
        };
        items.push(Item { path, entry, group });
    }
    items.sort_by(|a, b| sort_key(&a.path).cmp(&sort_key(&b.path)));
    let mut leader = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        if let Some(g) = &it.group {
            leader.entry(g.clone()).or_insert(i);
        }
    }
    Ok(Plan {
        items,
        leader,
        files,
    })
}

/// Component-wise order with whiteouts first within a directory.
fn sort_key(path: &str) -> Vec<(bool, &str)> {
    path.split('/')
        .map(|c| (!c.starts_with(WHITEOUT_PREFIX), c))
        .collect()
}

/// Normalises a layer path: drops a leading `/`, empty and `.` components; refuses `..`,
/// NUL and the empty path.
pub fn normalize_path(path: &str) -> Result<String> {
    let bad = |reason| OciError::UnsafePath {
        path: path.to_string(),
        reason,
    };
    if path.contains('\0') {
        return Err(bad("contains NUL"));
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad("contains a `..` component")),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(bad("names the layer root"));
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
#[path = "layer_tests.rs"]
mod tests;
