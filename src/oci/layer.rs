//! Deterministic layer tars from a list of entries, gzip-compressed while streaming,
//! with diff_id (sha256 of the tar) and digest (sha256 of the gzip) computed on the way.
//!
//! Determinism rules (ENGINE-AND-REGISTRY §5): entries sorted by path component,
//! whiteouts before their siblings, parents before children (missing parents are
//! added as root-owned 0755 directories with mtime 0); headers written field by field
//! (ustar + PAX, empty uname/gname); mtimes clamped to `source_date_epoch` when given;
//! gzip from flate2 on the miniz_oxide backend at a fixed level, never flushed mid-stream.

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
/// `put_archive`. Unlike a layer, it holds exactly `entries`, no implicit parent folders:
/// the engine re-applies a tar folder's owner and mode to a folder that exists, so an
/// implicit `0755 0:0` parent would reset `/home` made by a WORKDIR under `USER 1000`
/// (BuildKit leaves existing parents alone). `stage` lists the missing parents itself.
pub fn write_plain_tar<W: Write>(entries: &[LayerEntry], opts: &LayerOptions, out: W) -> Result<W> {
    write_entries(entries, opts, Parents::AsGiven, out)
}

/// Whether a tar gets the parent folders its entries do not list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parents {
    /// Added, `0755 0:0` (a layer must hold every parent of its paths).
    Implicit,
    /// Only the entries given.
    AsGiven,
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
mod tests {
    use super::*;
    use flate2::read::GzDecoder;

    fn list(blob: &LayerBlob) -> Vec<(String, u8, u32, u64, u64, String)> {
        let BlobSource::Bytes(b) = blob.source() else {
            panic!("in memory")
        };
        let mut ar = tar::Archive::new(GzDecoder::new(&b[..]));
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    String::from_utf8(e.path_bytes().to_vec()).unwrap(),
                    h.entry_type().as_byte(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.mtime().unwrap(),
                    link,
                )
            })
            .collect()
    }

    /// What `put_archive` gets holds no folder it was not given: the engine would
    /// re-apply `0755 0:0` to an existing `/home` made by a WORKDIR under `USER 1000`.
    #[test]
    fn a_plain_tar_has_no_implicit_parents() {
        let entries = vec![LayerEntry::dir("/home/u/work/root-made", 0o755)];
        let tar = super::write_plain_tar(&entries, &LayerOptions::default(), Vec::new()).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| String::from_utf8(e.unwrap().path_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(names, ["home/u/work/root-made/"]);
    }

    #[test]
    fn entries_are_sorted_with_parents_and_modes_kept() {
        let entries = vec![
            LayerEntry::file("/usr/bin/app", &b"bin"[..], 0o4755)
                .owned_by(1000, 1000)
                .modified_at(50),
            LayerEntry::dir("etc", 0o700).modified_at(10),
            LayerEntry::file("etc/secret", &b"s"[..], 0o600),
            LayerEntry::whiteout("etc/old"),
            LayerEntry::symlink("bin", "usr/bin"),
        ];
        let blob = LayerBlob::build(&entries, &LayerOptions::default()).unwrap();
        let got = list(&blob);
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "etc/",
                "etc/.wh.old",
                "etc/secret",
                "usr/",
                "usr/bin/",
                "usr/bin/app"
            ]
        );
        assert_eq!(got[1].2, 0o700);
        assert_eq!(got[3].2, 0o600);
        assert_eq!((got[6].2, got[6].3, got[6].4), (0o4755, 1000, 50));
        assert_eq!((got[0].1, got[0].5.as_str()), (b'2', "usr/bin"));
        assert_eq!(got[4].2, 0o755, "implicit parent");
    }

    #[test]
    fn mtime_is_clamped_to_source_date_epoch() {
        let entries = vec![LayerEntry::file("a", &b"x"[..], 0o644).modified_at(2_000_000_000)];
        let opts = LayerOptions {
            source_date_epoch: Some(1_000),
            ..Default::default()
        };
        let blob = LayerBlob::build(&entries, &opts).unwrap();
        assert_eq!(list(&blob)[0].4, 1_000);
        let unclamped = LayerBlob::build(&entries, &LayerOptions::default()).unwrap();
        assert_eq!(list(&unclamped)[0].4, 2_000_000_000);
    }

    #[test]
    fn hardlinks_point_to_the_first_in_order() {
        let entries = vec![
            LayerEntry::file("z/file", &b"data"[..], 0o644),
            LayerEntry::hardlink("a/link", "z/file"),
        ];
        let got = list(&LayerBlob::build(&entries, &LayerOptions::default()).unwrap());
        let a = got.iter().find(|g| g.0 == "a/link").unwrap();
        let z = got.iter().find(|g| g.0 == "z/file").unwrap();
        assert_eq!(a.1, b'0', "first occurrence is the regular file");
        assert_eq!((z.1, z.5.as_str()), (b'1', "a/link"));
        let missing = vec![LayerEntry::hardlink("l", "nope")];
        assert!(matches!(
            LayerBlob::build(&missing, &LayerOptions::default()),
            Err(OciError::HardlinkTarget { .. })
        ));
    }

    #[test]
    fn unsafe_paths_are_rejected() {
        for p in ["../x", "a/../../b", "a\0b", "/", "", "./.."] {
            let r = LayerBlob::build(
                &[LayerEntry::file(p, &b""[..], 0o644)],
                &LayerOptions::default(),
            );
            assert!(matches!(r, Err(OciError::UnsafePath { .. })), "{p:?}");
        }
        let dup = [LayerEntry::dir("a", 0o755), LayerEntry::dir("/a/", 0o755)];
        assert!(matches!(
            LayerBlob::build(&dup, &LayerOptions::default()),
            Err(OciError::DuplicateEntry { .. })
        ));
        let under_file = [
            LayerEntry::file("a", &b""[..], 0o644),
            LayerEntry::file("a/b", &b""[..], 0o644),
        ];
        assert!(LayerBlob::build(&under_file, &LayerOptions::default()).is_err());
    }

    #[test]
    fn empty_layer_has_the_well_known_diff_id_and_is_stable() {
        let a = LayerBlob::build(&[], &LayerOptions::default()).unwrap();
        let b = LayerBlob::build(&[], &LayerOptions::default()).unwrap();
        assert_eq!(
            a.diff_id().to_string(),
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        assert_eq!(a, b);
    }

    #[test]
    fn host_files_are_streamed_and_symlinks_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let from_host = LayerBlob::build(
            &[LayerEntry::host_file("f", &f, 0o644)],
            &LayerOptions::default(),
        )
        .unwrap();
        let from_mem = LayerBlob::build(
            &[LayerEntry::file("f", &b"hello"[..], 0o644)],
            &LayerOptions::default(),
        )
        .unwrap();
        assert_eq!(from_host.digest(), from_mem.digest());
        #[cfg(unix)]
        {
            let l = dir.path().join("l");
            std::os::unix::fs::symlink(&f, &l).unwrap();
            let r = LayerBlob::build(
                &[LayerEntry::host_file("f", &l, 0o644)],
                &LayerOptions::default(),
            );
            assert!(matches!(r, Err(OciError::HostFile { .. })));
        }
    }

    #[test]
    fn import_file_agrees_with_build() {
        let entries = vec![LayerEntry::file("x", &b"1234"[..], 0o644)];
        let opts = LayerOptions::default();
        let built = LayerBlob::build(&entries, &opts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (tar, _) = write_plain_tar(&entries);
        let plain = dir.path().join("layer.tar");
        std::fs::write(&plain, &tar).unwrap();
        let imported = LayerBlob::import_file(&plain, &dir.path().join("out.gz"), &opts).unwrap();
        assert_eq!(imported.diff_id(), built.diff_id());
        assert_eq!(imported.digest(), built.digest());
        let gz = dir.path().join("layer.gz");
        let BlobSource::Bytes(b) = built.source() else {
            panic!()
        };
        std::fs::write(&gz, b).unwrap();
        let again = LayerBlob::import_file(&gz, &dir.path().join("unused"), &opts).unwrap();
        assert_eq!(
            (again.diff_id(), again.digest()),
            (built.diff_id(), built.digest())
        );
    }

    fn write_plain_tar(entries: &[LayerEntry]) -> (Vec<u8>, Digest) {
        let blob = LayerBlob::build(entries, &LayerOptions::default()).unwrap();
        let BlobSource::Bytes(b) = blob.source() else {
            panic!()
        };
        let mut out = Vec::new();
        GzDecoder::new(&b[..]).read_to_end(&mut out).unwrap();
        (out, blob.diff_id())
    }
}
