//! The context root and its listing: walking respects `.dockerignore`, never follows a
//! symlink, and reads a file only after checking it is still the file that was listed.
//!
//! Symlinks inside the context are listed as symlinks (Docker copies them as links).
//! [`Listing::resolve`] follows links *within* the listing for COPY source paths and
//! refuses any path whose resolution leaves the root.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use super::error::{io_err, ContextError, Result};
use super::glob::clean_path;
use super::ignore::Ignore;

/// What a listed path is (and, as [`super::EntryKind`], what an image entry is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SourceKind {
    /// A regular file of this many bytes.
    File {
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Dir,
    /// A symbolic link, with its target text as stored.
    Symlink {
        /// The link target, unresolved.
        target: String,
    },
}

/// One non-ignored path of the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceEntry {
    /// Slash-separated path relative to the context root (`src/main.go`).
    pub path: String,
    /// File, directory or symlink.
    pub kind: SourceKind,
    /// Permission bits including setuid/setgid/sticky (`0o7777` mask).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// (device, inode) at listing time, to detect a swap before reading.
    #[serde(skip)]
    pub(crate) identity: (u64, u64),
}

/// All non-ignored entries of a context, keyed by relative path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The absolute, canonical context root (used to map absolute symlink targets).
    root: PathBuf,
    entries: BTreeMap<String, SourceEntry>,
}

/// How many symlinks one resolution may follow (Linux's limit).
const MAX_LINKS: usize = 40;

impl Listing {
    /// A listing from entries (for tests and for sources other than a local directory).
    pub fn from_entries(root: impl Into<PathBuf>, entries: Vec<SourceEntry>) -> Listing {
        let entries = entries.into_iter().map(|e| (e.path.clone(), e)).collect();
        Listing {
            root: root.into(),
            entries,
        }
    }

    /// The entry at a relative path, without following symlinks.
    pub fn get(&self, path: &str) -> Option<&SourceEntry> {
        self.entries.get(path)
    }

    /// Every entry, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = &SourceEntry> {
        self.entries.values()
    }

    /// Entries strictly below directory `dir` (`""` for the root), sorted.
    pub fn under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a SourceEntry> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
            .map(|(_, e)| e)
            .filter(|e| !e.path.is_empty())
    }

    /// Resolves a source path (as written, relative to the root) through symlinks inside
    /// the listing. `follow_last`: whether a symlink in the last component is followed too.
    /// Returns the resolved relative path (`""` for the root) or an escape error.
    pub fn resolve(&self, written: &str, follow_last: bool) -> Result<String> {
        let escape = |via: Option<&str>| ContextError::EscapesContext {
            path: written.to_string(),
            via: via.map(str::to_string),
        };
        let cleaned = clean_path(written.trim_start_matches('/'));
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(escape(None));
        }
        let mut todo: Vec<String> = components(&cleaned).into_iter().rev().collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(part) = todo.pop() {
            if part == ".." {
                if done.pop().is_none() {
                    return Err(escape(None));
                }
                continue;
            }
            done.push(part);
            let here = done.join("/");
            let Some(entry) = self.entries.get(&here) else {
                continue;
            };
            let SourceKind::Symlink { target } = &entry.kind else {
                continue;
            };
            if todo.is_empty() && !follow_last {
                break;
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(ContextError::SymlinkLoop {
                    path: written.to_string(),
                });
            }
            done.pop();
            let rel_target = if let Some(abs) = target.strip_prefix('/') {
                // Absolute targets are accepted only when they point inside the root.
                let root = self.root.to_string_lossy();
                let root = root.trim_start_matches('/');
                match abs.strip_prefix(root) {
                    Some("") => {
                        done.clear();
                        String::new()
                    }
                    Some(rest) if rest.starts_with('/') => {
                        done.clear();
                        rest.trim_start_matches('/').to_string()
                    }
                    _ => return Err(escape(Some(&here))),
                }
            } else {
                target.clone()
            };
            // Check lexical escape of the target itself before continuing.
            let base = done.join("/");
            let joined = if base.is_empty() {
                clean_path(&rel_target)
            } else {
                clean_path(&format!("{base}/{rel_target}"))
            };
            if joined == ".." || joined.starts_with("../") || joined.starts_with('/') {
                return Err(escape(Some(&here)));
            }
            for c in components(&rel_target).into_iter().rev() {
                todo.push(c);
            }
        }
        Ok(done.join("/"))
    }
}

fn components(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// A build context directory: the one root outside which xplat reads nothing.
#[derive(Debug)]
pub struct BuildContext {
    root: PathBuf,
    dockerfile: PathBuf,
    ignore: Ignore,
    listing: OnceLock<Listing>,
}

impl BuildContext {
    /// Opens `dir` as the context. `dockerfile` is the Dockerfile path as the user gave it
    /// (it may live outside the context, as with `docker build -f`). The ignore file is
    /// `<dockerfile>.dockerignore` when present, else `<dir>/.dockerignore` (BuildKit's rule).
    pub fn open(dir: &Path, dockerfile: &Path) -> Result<BuildContext> {
        let root = fs::canonicalize(dir).map_err(io_err(dir))?;
        if !fs::metadata(&root).map_err(io_err(&root))?.is_dir() {
            return Err(ContextError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(".dockerignore");
        let specific = PathBuf::from(specific);
        let ignore_path = [specific, root.join(".dockerignore")]
            .into_iter()
            .find(|p| p.is_file());
        let ignore = match ignore_path {
            Some(p) => Ignore::parse(&fs::read_to_string(&p).map_err(io_err(&p))?)?,
            None => Ignore::default(),
        };
        Ok(BuildContext {
            root,
            dockerfile: dockerfile.to_path_buf(),
            ignore,
            listing: OnceLock::new(),
        })
    }

    /// The canonical context root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The parsed `.dockerignore` (empty when there is none).
    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// Reads the Dockerfile ([`read_dockerfile`]); it is readable even when
    /// `.dockerignore` excludes it.
    pub fn read_dockerfile(&self) -> Result<String> {
        read_dockerfile(&self.dockerfile)
    }

    /// The listing of every non-ignored path, computed once.
    pub fn listing(&self) -> Result<&Listing> {
        if let Some(l) = self.listing.get() {
            return Ok(l);
        }
        let walked = walk(&self.root, &self.ignore)?;
        Ok(self.listing.get_or_init(|| walked))
    }

    /// Opens a listed regular file for reading, refusing it if any component is now a
    /// symlink or the file is not the one that was listed (device and inode compared).
    pub fn open_file(&self, rel: &str) -> Result<impl Read> {
        let listing = self.listing()?;
        let changed = || ContextError::ChangedDuringBuild {
            path: rel.to_string(),
        };
        let entry = listing.get(rel).ok_or_else(changed)?;
        if !matches!(entry.kind, SourceKind::File { .. }) {
            return Err(changed());
        }
        let mut p = self.root.clone();
        for c in rel.split('/') {
            p.push(c);
            let md = fs::symlink_metadata(&p).map_err(io_err(&p))?;
            if md.file_type().is_symlink() {
                return Err(changed());
            }
        }
        let file = fs::File::open(&p).map_err(io_err(&p))?;
        let md = file.metadata().map_err(io_err(&p))?;
        if (md.dev(), md.ino()) != entry.identity || !md.is_file() {
            return Err(changed());
        }
        Ok(file)
    }
}

/// Reads a Dockerfile as text. Every command that reads one comes here (`xplat
/// check`, `plan`, `build` and the build context), so they all see the same text: bytes
/// that are not UTF-8 become U+FFFD ([`crate::dockerfile::decode`], as BuildKit), never
/// an error. A `-f -` (stdin) reader belongs here too when it comes.
pub fn read_dockerfile(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    Ok(crate::dockerfile::decode(&bytes))
}

/// Walks `root` depth-first without following symlinks, applying `ignore`. Parents of
/// re-included paths are listed even when the directory itself is excluded.
fn walk(root: &Path, ignore: &Ignore) -> Result<Listing> {
    let mut entries = BTreeMap::new();
    let mut stack: Vec<(PathBuf, String, bool)> = vec![(root.to_path_buf(), String::new(), false)];
    while let Some((dir, rel, dir_excluded)) = stack.pop() {
        let mut children: Vec<_> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(io_err(&dir))?;
        children.sort();
        for name in children {
            let Some(name_str) = name.to_str() else {
                return Err(ContextError::Io {
                    path: dir.join(&name),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "file name is not UTF-8",
                    ),
                });
            };
            let child_rel = if rel.is_empty() {
                name_str.to_string()
            } else {
                format!("{rel}/{name_str}")
            };
            let path = dir.join(&name);
            let md = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let excluded = ignore.is_excluded(&child_rel);
            let ft = md.file_type();
            if ft.is_dir() {
                if excluded && !ignore.may_reinclude_under(&child_rel) {
                    continue;
                }
                if !excluded {
                    add_parents(&mut entries, root, &child_rel)?;
                    entries.insert(child_rel.clone(), entry(&child_rel, SourceKind::Dir, &md));
                }
                stack.push((path, child_rel, excluded || dir_excluded));
                continue;
            }
            if excluded {
                continue;
            }
            let kind = if ft.is_symlink() {
                let t = fs::read_link(&path).map_err(io_err(&path))?;
                SourceKind::Symlink {
                    target: t.to_string_lossy().into_owned(),
                }
            } else if ft.is_file() {
                SourceKind::File { size: md.len() }
            } else {
                // Sockets, fifos and devices are not sent, as with `docker build`.
                continue;
            };
            add_parents(&mut entries, root, &child_rel)?;
            entries.insert(child_rel.clone(), entry(&child_rel, kind, &md));
        }
    }
    Ok(Listing {
        root: root.to_path_buf(),
        entries,
    })
}

/// Lists the parent directories of a re-included path that were themselves excluded.
fn add_parents(entries: &mut BTreeMap<String, SourceEntry>, root: &Path, rel: &str) -> Result<()> {
    let mut end = 0;
    while let Some(i) = rel[end..].find('/') {
        end += i;
        let parent = &rel[..end];
        if !entries.contains_key(parent) {
            let p = root.join(parent);
            let md = fs::symlink_metadata(&p).map_err(io_err(&p))?;
            entries.insert(parent.to_string(), entry(parent, SourceKind::Dir, &md));
        }
        end += 1;
    }
    Ok(())
}

fn entry(rel: &str, kind: SourceKind, md: &fs::Metadata) -> SourceEntry {
    SourceEntry {
        path: rel.to_string(),
        kind,
        mode: md.permissions().mode() & 0o7777,
        mtime: md.mtime(),
        identity: (md.dev(), md.ino()),
    }
}
