//! What `stage::copy` needs to know about filesystems it does not own, as two small
//! object-safe traits, and an in-memory implementation of both for tests.
//!
//! - [`DestFs`]: the filesystem a COPY/ADD/WORKDIR writes into (existing directories,
//!   parents' metadata, `/etc/passwd` and `/etc/group` for `--chown` by name). The executor
//!   implements it over a container; the assembler over the base image's layers.
//! - [`SourceFs`]: the filesystem `COPY --from` reads (stat, directory listing, and a tar
//!   of one path like Docker's `GET /archive`). Same two implementations.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::error::FsError;

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsKind {
    /// A directory.
    Dir,
    /// A regular file (or anything that is neither a directory nor a symlink).
    File,
    /// A symbolic link, with its target as stored (relative targets are relative to the
    /// link's directory; an engine may give the resolved absolute path instead).
    Symlink {
        /// The target.
        target: String,
    },
}

/// What a filesystem says of one path (not following a final symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsStat {
    /// Directory, file or symlink.
    pub kind: FsKind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    /// `(uid, gid)` when the implementation knows it (an engine's stat does not).
    pub owner: Option<(u32, u32)>,
    /// Modification time, Unix seconds.
    pub mtime: i64,
}

impl FsStat {
    /// A directory stat.
    pub fn dir(mode: u32, uid: u32, gid: u32) -> FsStat {
        FsStat {
            kind: FsKind::Dir,
            mode,
            owner: Some((uid, gid)),
            mtime: 0,
        }
    }
}

/// The result type of filesystem calls.
pub type FsResult<T> = std::result::Result<T, FsError>;

/// The filesystem a COPY/ADD/WORKDIR writes into.
pub trait DestFs: Send + Sync {
    /// lstat of an absolute path (intermediate symlinks followed); `None` when missing.
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>>;
    /// The bytes of a small regular file (`/etc/passwd`); `None` when missing.
    fn read_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<Bytes>>>;
}

/// The filesystem `COPY --from` reads.
pub trait SourceFs: Send + Sync {
    /// lstat of an absolute path (intermediate symlinks followed); `None` when missing.
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>>;
    /// The names in a directory, sorted.
    fn read_dir<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Vec<String>>>;
    /// A tar of `path` as Docker's `GET /archive` gives it: a directory's entries rooted at
    /// its basename (`out/`, `out/a`), a file as one entry named by its basename. A final
    /// symlink is archived as the link.
    fn archive<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Bytes>>;
}

/// An in-memory filesystem: both traits, for unit tests (and for the lead's fakes).
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    nodes: BTreeMap<String, (FsStat, Bytes)>,
}

impl MemFs {
    /// An empty filesystem (only `/`).
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Adds a directory (parents are added 0755 0:0 when missing).
    pub fn dir(mut self, path: &str, mode: u32, uid: u32, gid: u32) -> MemFs {
        self.put(path, FsStat::dir(mode, uid, gid), Bytes::new());
        self
    }

    /// Adds a file.
    pub fn file(mut self, path: &str, data: &str, mode: u32, uid: u32, gid: u32) -> MemFs {
        let stat = FsStat {
            kind: FsKind::File,
            mode,
            owner: Some((uid, gid)),
            mtime: 0,
        };
        self.put(path, stat, Bytes::copy_from_slice(data.as_bytes()));
        self
    }

    /// Adds a symlink.
    pub fn symlink(mut self, path: &str, target: &str) -> MemFs {
        let stat = FsStat {
            kind: FsKind::Symlink {
                target: target.into(),
            },
            mode: 0o777,
            owner: Some((0, 0)),
            mtime: 0,
        };
        self.put(path, stat, Bytes::new());
        self
    }

    fn put(&mut self, path: &str, stat: FsStat, data: Bytes) {
        let path = crate::context::clean_path(&format!("/{path}"));
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            if p.is_empty() {
                break;
            }
            self.nodes
                .entry(p.to_string())
                .or_insert_with(|| (FsStat::dir(0o755, 0, 0), Bytes::new()));
            parent = p;
        }
        self.nodes.insert(path, (stat, data));
    }

    /// Resolves intermediate symlinks of `path` (not the last component).
    fn resolve_parents(&self, path: &str) -> Option<String> {
        Some(resolve_parents(path, |p| {
            self.nodes.get(p).map(|n| n.0.kind.clone())
        }))
    }

    fn lookup(&self, path: &str) -> Option<(String, &(FsStat, Bytes))> {
        let p = self.resolve_parents(path)?;
        if p == "/" {
            return None;
        }
        self.nodes.get(&p).map(|n| (p, n))
    }

    fn stat_sync(&self, path: &str) -> Option<FsStat> {
        if crate::context::clean_path(&format!("/{path}")) == "/" {
            return Some(FsStat::dir(0o755, 0, 0));
        }
        self.lookup(path).map(|(_, n)| n.0.clone())
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = if dir == "/" {
            "/".to_string()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(str::to_string)
            .collect()
    }

    fn tar(&self, path: &str) -> std::io::Result<Bytes> {
        let (real, (stat, data)) = match self.lookup(path) {
            Some(found) => found,
            None => return Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
        };
        let base = real.rsplit('/').next().unwrap_or("").to_string();
        let mut b = tar::Builder::new(Vec::new());
        append(&mut b, &base, stat, data)?;
        if stat.kind == FsKind::Dir {
            let prefix = format!("{real}/");
            for (k, (s, d)) in self.nodes.range(prefix.clone()..) {
                let Some(rest) = k.strip_prefix(&prefix) else {
                    break;
                };
                append(&mut b, &format!("{base}/{rest}"), s, d)?;
            }
        }
        Ok(b.into_inner()?.into())
    }
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, s: &FsStat, d: &Bytes) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(s.mode);
    let (uid, gid) = s.owner.unwrap_or((0, 0));
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_mtime(s.mtime.max(0) as u64);
    match &s.kind {
        FsKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, format!("{name}/"), std::io::empty())
        }
        FsKind::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(d.len() as u64);
            b.append_data(&mut h, name, &d[..])
        }
        FsKind::Symlink { target } => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, target)
        }
    }
}

/// `path` with its intermediate symlinks resolved (not the last component), through
/// `kind_of` (the kind of an absolute path, `None` when missing). Absolute and cleaned.
pub fn resolve_parents(path: &str, kind_of: impl Fn(&str) -> Option<FsKind>) -> String {
    let clean = crate::context::clean_path(&format!("/{path}"));
    if clean == "/" {
        return clean;
    }
    let mut cur = String::new();
    let parts: Vec<&str> = clean.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let mut next = crate::context::clean_path(&format!("{cur}/{part}"));
        if i + 1 < parts.len() {
            for _ in 0..40 {
                match kind_of(&next) {
                    Some(FsKind::Symlink { target }) => next = link_target(&next, &target),
                    _ => break,
                }
            }
        }
        cur = if next == "/" { String::new() } else { next };
    }
    if cur.is_empty() {
        "/".into()
    } else {
        cur
    }
}

/// Where a symlink at `link` (absolute) with `target` points, cleaned.
pub fn link_target(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        crate::context::clean_path(target)
    } else {
        let dir = link.rsplit_once('/').map_or("", |(d, _)| d);
        crate::context::clean_path(&format!("/{dir}/{target}"))
    }
}

fn not_found(path: &str) -> FsError {
    format!("{path}: no such file or directory").into()
}

impl DestFs for MemFs {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        Box::pin(async move { Ok(self.stat_sync(path)) })
    }

    fn read_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<Bytes>>> {
        Box::pin(async move {
            Ok(self
                .lookup(path)
                .filter(|(_, n)| n.0.kind == FsKind::File)
                .map(|(_, n)| n.1.clone()))
        })
    }
}

impl SourceFs for MemFs {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        Box::pin(async move { Ok(self.stat_sync(path)) })
    }

    fn read_dir<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Vec<String>>> {
        Box::pin(async move {
            let real = self.resolve_parents(path).ok_or_else(|| not_found(path))?;
            Ok(self.children(&real))
        })
    }

    fn archive<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Bytes>> {
        Box::pin(async move { self.tar(path).map_err(|e| format!("{path}: {e}").into()) })
    }
}
