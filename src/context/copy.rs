//! COPY/ADD source resolution: from a [`Listing`] and the instruction's arguments to the
//! sorted list of entries that land in the image. Pure apart from the two callbacks that
//! model what only the destination image or the archive reader know.
//!
//! Rules (Dockerfile reference, COPY and ADD sections; classic builder `copy.go`):
//! - sources are relative to the context root; a leading `/` is dropped; a trailing `/` is
//!   ignored; `..` that leaves the root is refused (Docker silently clamps it; xplat prefers
//!   an error that names the path);
//! - wildcards follow Go `filepath.Match` against the root-relative path (`**` only with
//!   `--parents`); each match is copied on its own;
//! - a directory source copies its contents, not itself; symlinks inside it are copied as
//!   symlinks; a symlink named as a source (or matched) is followed, inside the context only;
//! - the destination is a directory when it ends with `/` (or `.`), when it already is one in
//!   the image, or with `--parents`; several sources require that; a relative destination
//!   is joined to WORKDIR;
//! - owner is 0:0 unless `--chown` (what an ADD extracts keeps the archive's owners);
//!   `--chmod` is octal; missing parent directories are
//!   created 0755 and owned by the `--chown` user (drop those that exist with
//!   [`without_existing`]).
//! - `--exclude` uses `.dockerignore` pattern rules; a path is dropped when a pattern
//!   matches it relative to the source pattern's directory, or (inside a copied directory)
//!   relative to that directory. BuildKit's exact anchoring was not verified.

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::{ContextError, Result};
use super::glob::{clean_path, is_pattern, Glob};
use super::ignore::Ignore;
use super::walk::{Listing, SourceKind};

/// The arguments of one COPY or ADD, after variable expansion.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CopySpec {
    /// Sources as written (relative to the context root).
    pub sources: Vec<String>,
    /// Destination as written (absolute, or relative to `workdir`).
    pub dest: String,
    /// The stage's WORKDIR at this instruction (absolute; `/` when unset).
    pub workdir: String,
    /// `--chown=user[:group]`, as written.
    pub chown: Option<String>,
    /// `--chmod=NNN` (octal), as written.
    pub chmod: Option<String>,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// ADD of local archives: extract them (ADD's default; `--unpack=false` turns it off).
    pub unpack: bool,
    /// mtime given to the directories this copy creates (e.g. `SOURCE_DATE_EPOCH`).
    pub created_mtime: i64,
}

/// What the destination image knows: users, groups, and which paths are directories.
pub trait DestImage {
    /// uid of a user name in the image's `/etc/passwd`.
    fn uid(&self, _name: &str) -> Option<u32> {
        None
    }
    /// gid of a group name in the image's `/etc/group`.
    fn gid(&self, _name: &str) -> Option<u32> {
        None
    }
    /// The primary gid of a user name in the image's `/etc/passwd` (what `--chown=name`
    /// without a group uses, as BuildKit does).
    fn primary_gid(&self, _name: &str) -> Option<u32> {
        None
    }
    /// Whether an absolute path is an existing directory in the image.
    fn is_dir(&self, _path: &str) -> bool {
        false
    }
}

/// An image about which nothing is known (scratch, or names not needed).
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownImage;
impl DestImage for UnknownImage {}

/// User and group names read from an image's `/etc/passwd` and `/etc/group` text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswdNames {
    users: BTreeMap<String, u32>,
    primary: BTreeMap<String, u32>,
    groups: BTreeMap<String, u32>,
}

impl PasswdNames {
    /// Parses `name:x:id:...` lines of both files; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> PasswdNames {
        let table = |text: &str| {
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(':');
                    let name = f.next()?;
                    let id = f.nth(1)?.parse().ok()?;
                    Some((name.to_string(), id))
                })
                .collect()
        };
        let primary = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(3)?.parse().ok()?))
            })
            .collect();
        PasswdNames {
            users: table(passwd),
            primary,
            groups: table(group),
        }
    }
}

impl DestImage for PasswdNames {
    fn uid(&self, name: &str) -> Option<u32> {
        self.users.get(name).copied()
    }
    fn gid(&self, name: &str) -> Option<u32> {
        self.groups.get(name).copied()
    }
    fn primary_gid(&self, name: &str) -> Option<u32> {
        self.primary.get(name).copied()
    }
}

/// Reads local archives for ADD: `Ok(None)` when the file is not a recognised archive.
pub trait ArchiveReader {
    /// The members of the archive at a context-relative path, with paths already guarded.
    fn read_archive(&self, rel: &str) -> Result<Option<Vec<ArchiveMember>>>;
}

/// One extracted archive member (path relative to the extraction directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveMember {
    /// Cleaned relative path, never absolute, never with `..`.
    pub path: String,
    /// Kind (hard links arrive as files with the linked data).
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
    /// Owner recorded in the archive.
    pub uid: u32,
    /// Group recorded in the archive.
    pub gid: u32,
    /// Modification time.
    pub mtime: i64,
    /// File contents (empty for dirs and links).
    #[serde(skip)]
    pub data: Vec<u8>,
}

/// What an entry in the image is: the same kinds as a context path (a symlink's
/// target is copied verbatim, never followed).
pub type EntryKind = SourceKind;

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Origin {
    /// A directory xplat creates (a missing parent, or the destination itself).
    Created,
    /// A context path (relative, resolved; read through [`super::BuildContext::open_file`]).
    Context(String),
    /// A member of a local archive extracted by ADD.
    Archive {
        /// The archive's context path.
        archive: String,
        /// The member path.
        member: String,
        /// The member's bytes.
        #[serde(skip)]
        data: Vec<u8>,
    },
}

/// One path written into the image by a COPY/ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyEntry {
    /// Absolute path in the image, cleaned (`/app/main.go`).
    pub path: String,
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (seconds).
    pub mtime: i64,
    /// Where the content comes from.
    pub origin: Origin,
}

/// Parses `--chown=user[:group]`. Names go through `image`; a lone numeric user is also
/// the gid, a lone user name takes its primary group from passwd (BuildKit's rule,
/// checked with the engine's BuildKit: see `stage`).
pub fn parse_chown(value: &str, image: &dyn DestImage) -> Result<(u32, u32)> {
    let invalid = || ContextError::InvalidChown {
        value: value.to_string(),
    };
    let (user, group) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(invalid());
    }
    let (uid, primary) = match user.parse::<u32>() {
        Ok(id) => (id, id),
        Err(_) => {
            let uid = image.uid(user).ok_or_else(|| ContextError::UnknownUser {
                name: user.to_string(),
            })?;
            (uid, image.primary_gid(user).unwrap_or(uid))
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(id) => id,
            Err(_) => image.gid(g).ok_or_else(|| ContextError::UnknownGroup {
                name: g.to_string(),
            })?,
        },
    };
    Ok((uid, gid))
}

/// Parses `--chmod` (octal only, up to `7777`).
pub fn parse_chmod(value: &str) -> Result<u32> {
    let invalid = || ContextError::InvalidChmod {
        value: value.to_string(),
    };
    if value.is_empty() || value.len() > 4 || !value.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(invalid());
    }
    u32::from_str_radix(value, 8).map_err(|_| invalid())
}

/// URL and git sources are never context paths (the one rule lives in `stage::url`).
fn is_url(src: &str) -> bool {
    crate::stage::url::is_remote(src)
}

/// One source after wildcard expansion.
struct Matched {
    /// The path as matched, before following a top-level symlink (its basename names the copy).
    written: String,
    /// The resolved path in the listing (`""` = the root).
    resolved: String,
    /// The directory `--exclude` patterns and `--parents` paths are relative to.
    base: String,
}

/// Resolves one COPY/ADD into sorted entries. `archives` is consulted for file sources
/// when `spec.unpack` is set (ADD); pass `None` for COPY.
pub fn resolve(
    spec: &CopySpec,
    listing: &Listing,
    image: &dyn DestImage,
    archives: Option<&dyn ArchiveReader>,
) -> Result<Vec<CopyEntry>> {
    if spec.sources.is_empty() {
        return Err(ContextError::NoSources);
    }
    let (uid, gid) = match &spec.chown {
        Some(c) => parse_chown(c, image)?,
        None => (0, 0),
    };
    let chmod = spec.chmod.as_deref().map(parse_chmod).transpose()?;
    let excludes = Ignore::from_patterns(&spec.excludes)?;

    let mut matched = Vec::new();
    for src in &spec.sources {
        matched.extend(expand_source(src, spec.parents, listing)?);
    }

    let dest_written = &spec.dest;
    let dir_syntax = dest_written.ends_with('/')
        || [".", ".."].contains(&dest_written.as_str())
        || dest_written.ends_with("/.")
        || dest_written.ends_with("/..");
    let dest_abs = if dest_written.starts_with('/') {
        clean_path(dest_written)
    } else {
        let wd = if spec.workdir.is_empty() {
            "/"
        } else {
            spec.workdir.as_str()
        };
        clean_path(&format!("/{wd}/{dest_written}"))
    };
    let dest_is_dir = dir_syntax || spec.parents || image.is_dir(&dest_abs);
    if matched.len() > 1 && !dest_is_dir {
        return Err(ContextError::DestNotDirectory {
            dest: dest_written.clone(),
        });
    }

    let mut out = Entries::default();
    let mode_of = |m: u32| chmod.unwrap_or(m);
    for m in &matched {
        let rel_to_base = |p: &str| -> String {
            if m.base.is_empty() {
                p.to_string()
            } else {
                p.strip_prefix(&format!("{}/", m.base))
                    .unwrap_or(p)
                    .to_string()
            }
        };
        if excludes.is_excluded(&rel_to_base(&m.written)) {
            continue;
        }
        let entry = if m.resolved.is_empty() {
            None
        } else {
            listing.get(&m.resolved)
        };
        let is_dir = entry.map_or(true, |e| e.kind == SourceKind::Dir);
        if is_dir {
            let target = if spec.parents {
                join(&dest_abs, &rel_to_base(&m.written))
            } else {
                dest_abs.clone()
            };
            out.put(created(&target, uid, gid, spec.created_mtime), false);
            for e in listing.under(&m.resolved) {
                let inner = match m.resolved.as_str() {
                    "" => e.path.as_str(),
                    dir => &e.path[dir.len() + 1..],
                };
                let excl_path = rel_to_base(&join_rel(&m.written, inner));
                if excludes.is_excluded(&excl_path) || excludes.is_excluded(inner) {
                    continue;
                }
                let mode = match e.kind {
                    SourceKind::Symlink { .. } => 0o777,
                    SourceKind::File { .. } | SourceKind::Dir => mode_of(e.mode),
                };
                let kind = e.kind.clone();
                out.put(
                    CopyEntry {
                        path: join(&target, inner),
                        kind,
                        mode,
                        uid,
                        gid,
                        mtime: e.mtime,
                        origin: Origin::Context(e.path.clone()),
                    },
                    true,
                );
            }
            continue;
        }
        let e = entry.expect("non-dir source has an entry");
        let name = m.written.rsplit('/').next().unwrap_or(&m.written);
        let file_dest = if spec.parents {
            join(&dest_abs, &rel_to_base(&m.written))
        } else if dest_is_dir {
            join(&dest_abs, name)
        } else {
            dest_abs.clone()
        };
        if spec.unpack {
            if let Some(reader) = archives {
                if let Some(members) = reader.read_archive(&m.resolved)? {
                    out.put(created(&dest_abs, uid, gid, spec.created_mtime), false);
                    for mem in members {
                        // `--chown` makes the destination folder, not what the archive
                        // holds: its members keep their own owners, as with the engine's
                        // BuildKit (Docker 20.10, checked by the differential suite).
                        let owner = (mem.uid, mem.gid);
                        let mode = if matches!(mem.kind, EntryKind::Symlink { .. }) {
                            0o777
                        } else {
                            mode_of(mem.mode)
                        };
                        out.put(
                            CopyEntry {
                                path: join(&dest_abs, &mem.path),
                                kind: mem.kind,
                                mode,
                                uid: owner.0,
                                gid: owner.1,
                                mtime: mem.mtime,
                                origin: Origin::Archive {
                                    archive: m.resolved.clone(),
                                    member: mem.path,
                                    data: mem.data,
                                },
                            },
                            true,
                        );
                    }
                    continue;
                }
            }
        }
        let SourceKind::File { size } = e.kind else {
            // resolve() followed the top-level link; a dangling one is not found.
            return Err(ContextError::NoSourceMatch {
                pattern: m.written.clone(),
            });
        };
        out.put(
            CopyEntry {
                path: file_dest,
                kind: EntryKind::File { size },
                mode: mode_of(e.mode),
                uid,
                gid,
                mtime: e.mtime,
                origin: Origin::Context(m.resolved.clone()),
            },
            true,
        );
    }
    Ok(out.finish(uid, gid, spec.created_mtime))
}

/// Expands one written source into matches (wildcards) or one resolved path.
fn expand_source(src: &str, parents: bool, listing: &Listing) -> Result<Vec<Matched>> {
    if is_url(src) {
        return Err(ContextError::UrlSource {
            src: src.to_string(),
        });
    }
    let trimmed = src.trim_start_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    // `--parents` pivot: only components after a `/./` are kept in the destination.
    let (base, rest) = match trimmed.split_once("/./") {
        Some((b, r)) if parents => (clean_path(b), format!("{b}/{r}")),
        _ => (String::new(), trimmed.to_string()),
    };
    let base = if base == "." { String::new() } else { base };
    let cleaned = clean_path(rest.trim_end_matches('/'));
    if cleaned == ".." || cleaned.starts_with("../") {
        return Err(ContextError::EscapesContext {
            path: src.to_string(),
            via: None,
        });
    }
    let cleaned = if cleaned == "." {
        String::new()
    } else {
        cleaned
    };
    if !is_pattern(&cleaned) {
        let resolved = listing.resolve(&cleaned, true)?;
        if !resolved.is_empty() && listing.get(&resolved).is_none() {
            return Err(ContextError::NoSourceMatch {
                pattern: src.to_string(),
            });
        }
        return Ok(vec![Matched {
            written: cleaned,
            resolved,
            base,
        }]);
    }
    let glob = if parents {
        Glob::go_doublestar(&cleaned)?
    } else {
        Glob::go(&cleaned)?
    };
    let mut out = Vec::new();
    for e in listing.iter() {
        if glob.matches(&e.path) {
            let resolved = listing.resolve(&e.path, true)?;
            if listing.get(&resolved).is_none() && !resolved.is_empty() {
                continue; // a dangling link matched by a wildcard is skipped
            }
            out.push(Matched {
                written: e.path.clone(),
                resolved,
                base: base.clone(),
            });
        }
    }
    // A wildcard that matches nothing copies nothing, as in BuildKit (its COPY sets
    // AllowEmptyWildcard), so the common `COPY go.mod go.sum* ./` works before the
    // project has a go.sum. A name without wildcards must exist (above).
    Ok(out)
}

fn join(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        return dir.to_string();
    }
    clean_path(&format!("{dir}/{rel}"))
}

fn join_rel(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

fn created(path: &str, uid: u32, gid: u32, mtime: i64) -> CopyEntry {
    CopyEntry {
        path: path.to_string(),
        kind: EntryKind::Dir,
        mode: 0o755,
        uid,
        gid,
        mtime,
        origin: Origin::Created,
    }
}

/// The sort key: path components, so a directory sorts right before its children.
fn key(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Entries keyed by components; later real entries win, created ones never replace.
#[derive(Default)]
struct Entries(BTreeMap<Vec<String>, CopyEntry>);

impl Entries {
    fn put(&mut self, e: CopyEntry, real: bool) {
        let k = key(&e.path);
        if k.is_empty() {
            return; // "/" itself is never written
        }
        if real || !self.0.contains_key(&k) {
            self.0.insert(k, e);
        }
    }

    fn finish(mut self, uid: u32, gid: u32, mtime: i64) -> Vec<CopyEntry> {
        let keys: Vec<Vec<String>> = self.0.keys().cloned().collect();
        for k in keys {
            for n in 1..k.len() {
                let parent = format!("/{}", k[..n].join("/"));
                self.put(created(&parent, uid, gid, mtime), false);
            }
        }
        self.0.into_values().collect()
    }
}

/// Drops the directories a copy would create that already exist in the destination, so
/// their mode and owner are left alone (Docker chowns only newly created parents).
pub fn without_existing(entries: Vec<CopyEntry>, exists: impl Fn(&str) -> bool) -> Vec<CopyEntry> {
    entries
        .into_iter()
        .filter(|e| !(e.origin == Origin::Created && exists(&e.path)))
        .collect()
}
