//! What consumers read from a finished job, kept in xplat's local cache.
//!
//! A `COPY --from=J SRC` or `RUN --mount=from=J,source=SRC` reads J's filesystem under a
//! *read root*: SRC itself, or for a wildcard the deepest folder without a pattern. The
//! roots every consumer of J will read are known from the plan before anything runs. When
//! J finishes, each root is recorded once (a `GET /archive` tar plus its stat) under J's
//! chain key; consumers then read the recording, not the engine, and the next build with
//! the same key reads it without running J at all. A symlink at a root is recorded with
//! its target.
//!
//! [`Files`] is how a COPY reads another filesystem: a live container, or a recording.
//! The cache lives in `XPLAT_CACHE_DIR`, else `$XDG_CACHE_HOME/xplat`, else
//! `~/.cache/xplat`; writes go to a temporary name and are renamed into place, so a
//! killed build never leaves a half-written entry.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use bytes::Bytes;

use crate::context::clean_path;
use crate::engine::{ContainerId, Engine, PathKind, PathLookup, PathStat};
use crate::stage::fs::FsResult;
use crate::stage::{DestFs, FsError, FsKind, FsStat, SourceFs};

/// Why reading or recording another filesystem failed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The filesystem recorded from failed (the engine).
    #[error("{source}")]
    Source {
        /// Its error.
        source: FsError,
    },
    /// A cache file could not be read or written.
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
    /// A recording was asked for a path outside every recorded root (a bug in the roots
    /// the plan gave).
    #[error("{path} is outside the recorded paths of that stage")]
    NotRecorded {
        /// The path.
        path: String,
    },
}

type FResult<T> = std::result::Result<T, FilesError>;

/// The engine's shape of a stat (what recordings store).
fn path_stat(path: &str, s: FsStat) -> PathStat {
    PathStat {
        name: path.rsplit('/').next().unwrap_or("").to_string(),
        size: 0,
        mode: s.mode,
        kind: match s.kind {
            FsKind::Dir => PathKind::Dir,
            FsKind::File => PathKind::File,
            FsKind::Symlink { target } => PathKind::Symlink { target },
        },
    }
}

/// A container's filesystem (created or running), through `HEAD`/`GET /archive`: what
/// the executor records from, copies into (the COPY destination) and reads `/etc/passwd`
/// of.
pub struct ContainerFiles<'a> {
    /// The engine.
    pub engine: &'a dyn Engine,
    /// The container.
    pub id: ContainerId,
}

fn fs_stat(s: PathStat) -> FsStat {
    FsStat {
        kind: match s.kind {
            PathKind::Dir => FsKind::Dir,
            PathKind::File => FsKind::File,
            PathKind::Symlink { target } => FsKind::Symlink { target },
        },
        mode: s.mode,
        owner: None,
        mtime: 0,
    }
}

impl ContainerFiles<'_> {
    async fn tar_of(&self, path: &str) -> FsResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = self.engine.get_archive(&self.id, path);
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

impl SourceFs for ContainerFiles<'_> {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        async move {
            Ok(match self.engine.stat_path(&self.id, path).await? {
                PathLookup::Found(s) => Some(fs_stat(s)),
                PathLookup::Missing => None,
            })
        }
        .boxed()
    }

    fn read_dir<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Vec<String>>> {
        async move {
            let tar = self
                .tar_of(&format!("{}/.", path.trim_end_matches('/')))
                .await?;
            Ok(names_in(&tar, "."))
        }
        .boxed()
    }

    fn archive<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Bytes>> {
        async move { Ok(Bytes::from(self.tar_of(path).await?)) }.boxed()
    }
}

impl DestFs for ContainerFiles<'_> {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        SourceFs::stat(self, path)
    }

    fn read_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<Bytes>>> {
        async move {
            if SourceFs::stat(self, path).await?.is_none() {
                return Ok(None);
            }
            let tar = self.tar_of(path).await?;
            let mut ar = tar::Archive::new(&tar[..]);
            if let Some(entry) = ar.entries()?.next() {
                let mut data = Vec::new();
                entry?.read_to_end(&mut data)?;
                return Ok(Some(Bytes::from(data)));
            }
            Ok(None)
        }
        .boxed()
    }
}

/// The names directly under `prefix` in a tar (`.` for a `dir/.` archive).
fn names_in(tar: &[u8], prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(entries) = tar::Archive::new(tar).entries() {
        for entry in entries.flatten() {
            let Ok(p) = entry.path() else { continue };
            let member = p.to_string_lossy().into_owned();
            let member = member.trim_start_matches("./").trim_end_matches('/');
            let rest = if prefix == "." {
                member
            } else if let Some(r) = member.strip_prefix(&format!("{prefix}/")) {
                r
            } else {
                continue;
            };
            if !rest.is_empty() && rest != "." && !rest.contains('/') {
                names.push(rest.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The root a source path is read under: the path, or the deepest folder before the
/// first component with a pattern character.
pub fn read_root(source: &str) -> String {
    let path = clean_path(&format!("/{source}"));
    let fixed: Vec<&str> = path
        .split('/')
        .take_while(|c| !c.contains(['*', '?', '[']))
        .collect();
    let root = fixed.join("/");
    if root.is_empty() {
        "/".into()
    } else {
        root
    }
}

/// What was recorded for one root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootMeta {
    /// The root path.
    pub path: String,
    /// Its stat, `None` when it does not exist.
    pub stat: Option<PathStat>,
}

/// The local cache of recorded outputs.
#[derive(Debug, Clone)]
pub struct OutputCache {
    dir: Option<PathBuf>,
}

/// xplat's cache folder from an environment map (injected, never the process env in
/// tests): `XPLAT_CACHE_DIR`, else `$XDG_CACHE_HOME/xplat`, else `$HOME/.cache/xplat`.
pub fn cache_root(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let set = |k: &str| env.get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("XPLAT_CACHE_DIR")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("xplat")))
        .or_else(|| set("HOME").map(|h| h.join(".cache").join("xplat")))
}

fn hex_of(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl OutputCache {
    /// A cache under `root` (`None`: nothing is kept between builds).
    pub fn new(root: Option<PathBuf>) -> OutputCache {
        OutputCache {
            dir: root.map(|r| r.join("outputs")),
        }
    }

    /// The folder the recordings are kept in (`None`: nothing is kept).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn entry(&self, key: &str, root: &str) -> Option<(PathBuf, PathBuf)> {
        let dir = self.dir.as_ref()?.join(key.trim_start_matches("sha256:"));
        let name = hex_of(root);
        Some((
            dir.join(format!("{name}.json")),
            dir.join(format!("{name}.tar")),
        ))
    }

    /// The recording of `root` under `key`, with every symlink target it needs.
    pub fn get(&self, key: &str, root: &str) -> Option<Vec<(RootMeta, Option<PathBuf>)>> {
        let mut out = Vec::new();
        let mut path = root.to_string();
        for _ in 0..40 {
            let (meta_path, tar) = self.entry(key, &path)?;
            let meta: RootMeta = serde_json::from_slice(&std::fs::read(&meta_path).ok()?).ok()?;
            let next = match meta.stat.as_ref().map(|s| &s.kind) {
                Some(PathKind::Symlink { target }) => Some(target.clone()),
                _ => None,
            };
            let has_tar = matches!(
                meta.stat.as_ref().map(|s| &s.kind),
                Some(PathKind::File | PathKind::Dir)
            );
            if has_tar && !tar.is_file() {
                return None;
            }
            out.push((meta, has_tar.then_some(tar)));
            match next {
                Some(t) => path = t,
                None => return Some(out),
            }
        }
        None
    }

    /// Whether every root is recorded under `key`.
    pub fn has_all<'r>(&self, key: &str, roots: impl IntoIterator<Item = &'r String>) -> bool {
        roots.into_iter().all(|r| self.get(key, r).is_some())
    }

    /// Records `root` of `files` under `key` (following a symlink at the root).
    pub async fn record(&self, key: &str, root: &str, files: &dyn SourceFs) -> FResult<()> {
        let mut path = root.to_string();
        for _ in 0..40 {
            let Some((meta_path, tar_path)) = self.entry(key, &path) else {
                return Ok(());
            };
            let stat = files
                .stat(&path)
                .await
                .map_err(|source| FilesError::Source { source })?
                .map(|s| path_stat(&path, s));
            let dir = meta_path.parent().expect("an entry has a folder");
            std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
            if matches!(
                stat.as_ref().map(|s| &s.kind),
                Some(PathKind::File | PathKind::Dir)
            ) {
                let data = files
                    .archive(&path)
                    .await
                    .map_err(|source| FilesError::Source { source })?;
                let data = super::engine_files::without_engine_files(&path, &data)
                    .map_err(io("reading the archive of", Path::new(&path)))?;
                write_atomic(&tar_path, &data)?;
            }
            let next = match stat.as_ref().map(|s| &s.kind) {
                Some(PathKind::Symlink { target }) => Some(target.clone()),
                _ => None,
            };
            let meta = RootMeta {
                path: path.clone(),
                stat,
            };
            let json = serde_json::to_vec(&meta).expect("metadata serializes");
            write_atomic(&meta_path, &json)?;
            match next {
                Some(t) => path = t,
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// A [`Files`] over the recordings of `roots` under `key` (all must be recorded).
    pub fn files(&self, key: &str, roots: &[String]) -> Option<RecordedFiles> {
        let mut metas = BTreeMap::new();
        for r in roots {
            for (meta, tar) in self.get(key, r)? {
                metas.insert(meta.path.clone(), (meta, tar));
            }
        }
        Some(RecordedFiles { roots: metas })
    }
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl Fn(std::io::Error) -> FilesError + 'p {
    move |source| FilesError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> FResult<()> {
    // Unique per write (pid and a counter), not only per process: concurrent writers of one
    // path must not share a temporary file.
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(io("creating", &tmp))?;
    f.write_all(data).map_err(io("writing", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("renaming", path))
}

/// Recorded roots read back.
#[derive(Debug, Clone)]
pub struct RecordedFiles {
    roots: BTreeMap<String, (RootMeta, Option<PathBuf>)>,
}

impl RecordedFiles {
    /// The recorded root covering `path`, and `path` relative to it.
    fn covering(&self, path: &str) -> Option<(&RootMeta, Option<&PathBuf>, String)> {
        let path = clean_path(path);
        for (root, (meta, tar)) in self.roots.iter().rev() {
            if *root == path {
                return Some((meta, tar.as_ref(), String::new()));
            }
            let prefix = if root == "/" {
                "/".to_string()
            } else {
                format!("{root}/")
            };
            if let Some(rest) = path.strip_prefix(&prefix) {
                if matches!(meta.stat.as_ref().map(|s| &s.kind), Some(PathKind::Dir)) {
                    return Some((meta, tar.as_ref(), rest.to_string()));
                }
            }
        }
        None
    }

    fn read_tar(tar: &Path) -> FResult<Vec<u8>> {
        std::fs::read(tar).map_err(io("reading", tar))
    }
}

/// The tar member names under a root's archive for a path `rel` below it: the archive of
/// a directory root `R` names its entries `basename(R)/…`.
fn member_prefix(root: &str, rel: &str) -> String {
    let base = root.rsplit('/').next().unwrap_or("");
    let base = if base.is_empty() { "." } else { base };
    if rel.is_empty() {
        base.to_string()
    } else {
        format!("{base}/{rel}")
    }
}

/// Extracts the subtree `prefix` of a tar, renamed to start with `new_base`.
fn subtree(tar: &[u8], prefix: &str, new_base: &str) -> FResult<Vec<u8>> {
    let bad = |source| FilesError::Io {
        action: "reading a recorded archive",
        path: PathBuf::from(prefix),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    let mut out = tar::Builder::new(Vec::new());
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let trimmed = name.trim_start_matches("./").trim_end_matches('/');
        let rest = if trimmed == prefix {
            ""
        } else if let Some(r) = trimmed.strip_prefix(&format!("{prefix}/")) {
            r
        } else {
            continue;
        };
        let new_name = if rest.is_empty() {
            new_base.to_string()
        } else {
            format!("{new_base}/{rest}")
        };
        let mut h = entry.header().clone();
        let link = entry.link_name().map_err(bad)?.map(|l| l.into_owned());
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(bad)?;
        match link {
            Some(l) if h.entry_type().is_symlink() || h.entry_type().is_hard_link() => {
                out.append_link(&mut h, &new_name, l).map_err(bad)?
            }
            _ => out.append_data(&mut h, &new_name, &data[..]).map_err(bad)?,
        }
    }
    out.into_inner().map_err(bad)
}

fn stat_in_tar(tar: &[u8], member: &str) -> FResult<PathLookup> {
    let bad = |source| FilesError::Io {
        action: "reading a recorded archive",
        path: PathBuf::from(member),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    for entry in ar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        if name.trim_start_matches("./").trim_end_matches('/') != member {
            continue;
        }
        let h = entry.header();
        let mode = h.mode().map_err(bad)? & 0o7777;
        let kind = if h.entry_type().is_dir() {
            PathKind::Dir
        } else if h.entry_type().is_symlink() {
            let target = entry
                .link_name()
                .map_err(bad)?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            PathKind::Symlink { target }
        } else {
            PathKind::File
        };
        return Ok(PathLookup::Found(PathStat {
            name: member.rsplit('/').next().unwrap_or(member).to_string(),
            size: h.size().unwrap_or(0) as i64,
            mode,
            kind,
        }));
    }
    Ok(PathLookup::Missing)
}

impl RecordedFiles {
    /// Stat in the engine's shape.
    pub async fn lookup(&self, path: &str) -> FResult<PathLookup> {
        let (meta, tar, rel) = self.covering(path).ok_or_else(|| FilesError::NotRecorded {
            path: path.to_string(),
        })?;
        if rel.is_empty() {
            return Ok(meta
                .stat
                .clone()
                .map_or(PathLookup::Missing, PathLookup::Found));
        }
        let Some(tar) = tar else {
            return Ok(PathLookup::Missing);
        };
        let data = RecordedFiles::read_tar(tar)?;
        stat_in_tar(&data, &member_prefix(&meta.path, &rel))
    }

    /// `GET /archive` of a path.
    pub async fn tar(&self, path: &str) -> FResult<Vec<u8>> {
        let (meta, tar, rel) = self.covering(path).ok_or_else(|| FilesError::NotRecorded {
            path: path.to_string(),
        })?;
        let tar = tar.ok_or_else(|| FilesError::NotRecorded {
            path: path.to_string(),
        })?;
        let data = RecordedFiles::read_tar(tar)?;
        if rel.is_empty() {
            return Ok(data);
        }
        let clean = clean_path(path);
        let base = clean.rsplit('/').next().unwrap_or("");
        subtree(&data, &member_prefix(&meta.path, &rel), base)
    }
}

impl SourceFs for RecordedFiles {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        async move {
            Ok(match self.lookup(path).await.map_err(Box::new)? {
                PathLookup::Found(s) => Some(fs_stat(s)),
                PathLookup::Missing => None,
            })
        }
        .boxed()
    }

    fn read_dir<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Vec<String>>> {
        async move {
            let tar = self.tar(path).await.map_err(Box::new)?;
            let clean = clean_path(path);
            let base = clean.rsplit('/').next().unwrap_or("");
            Ok(names_in(&tar, if base.is_empty() { "." } else { base }))
        }
        .boxed()
    }

    fn archive<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Bytes>> {
        async move { Ok(Bytes::from(self.tar(path).await.map_err(Box::new)?)) }.boxed()
    }
}

#[cfg(test)]
#[path = "outputs_tests.rs"]
mod tests;
