//! `COPY --from`: sources read through a [`SourceFs`] (wildcards expanded over its
//! listing, symlinks named as sources followed), each re-rooted under the destination with
//! the rules of [`super::copy`].

use std::io::Read;

use super::copy::{Dest, Entries, Flags};
use super::error::{Result, StageError};
use super::fs::{link_target, FsKind, SourceFs};
use crate::context::{clean_path, is_pattern, Glob};
use crate::oci::LayerEntry;

/// Symlinks followed at most this many times (the kernel's limit).
const MAX_LINKS: usize = 40;

#[allow(clippy::too_many_arguments)]
pub(super) async fn copy(
    out: &mut Entries,
    fs: &dyn SourceFs,
    from: &str,
    flags: &Flags<'_>,
    dest: &Dest,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
    mtime: i64,
) -> Result<()> {
    let mut matched = Vec::new();
    for src in flags.sources {
        let path = clean_path(&format!("/{src}"));
        if is_pattern(&path) {
            matched.extend(expand(fs, &path).await?);
        } else {
            matched.push(path);
        }
    }
    if matched.len() > 1 && !dest.is_dir {
        return Err(StageError::DestNotDirectory {
            dest: flags.dest.into(),
        });
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    for written in matched {
        let (real, kind) = follow(fs, from, &written).await?;
        let tar = fs.archive(&real).await.map_err(|source| StageError::Fs {
            action: format!("reading {real} from {from}"),
            source,
        })?;
        if kind == FsKind::Dir {
            // The destination directory itself: 0755 with the --chown owner, never the
            // source directory's mode or owner (BuildKit; issue 10).
            out.put(
                LayerEntry::dir(dest.abs.clone(), 0o755)
                    .owned_by(uid.into(), gid.into())
                    .modified_at(mtime),
                true,
            );
            rewrite(out, &real, &tar, Root::Dir(&dest.abs), owner, chmod)?;
        } else {
            let name = written.rsplit('/').next().unwrap_or_default();
            let target = dest.file_path(name);
            rewrite(out, &real, &tar, Root::File(&target), owner, chmod)?;
        }
    }
    Ok(())
}

/// Follows a symlink named as a source; `SourceNotFound` when the path (or the link's
/// target) is missing.
async fn follow(fs: &dyn SourceFs, from: &str, written: &str) -> Result<(String, FsKind)> {
    let mut path = written.to_string();
    for _ in 0..MAX_LINKS {
        let stat = fs.stat(&path).await.map_err(|source| StageError::Fs {
            action: format!("looking at {path} in {from}"),
            source,
        })?;
        match stat {
            None => {
                return Err(StageError::SourceNotFound {
                    from: from.into(),
                    path,
                })
            }
            Some(s) => match s.kind {
                FsKind::Symlink { target } => path = link_target(&path, &target),
                kind => return Ok((path, kind)),
            },
        }
    }
    Err(StageError::SymlinkLoop {
        path: written.into(),
    })
}

/// Expands a pattern component by component over the source's listing (Go
/// `filepath.Match`: `*` never crosses `/`), sorted.
async fn expand(fs: &dyn SourceFs, pattern: &str) -> Result<Vec<String>> {
    let mut current = vec![String::new()];
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &current {
            if !is_pattern(part) {
                next.push(format!("{dir}/{part}"));
                continue;
            }
            let glob = Glob::go(part)?;
            let dir_path = if dir.is_empty() { "/" } else { dir.as_str() };
            match fs.stat(dir_path).await.map_err(|source| StageError::Fs {
                action: format!("looking at {dir_path}"),
                source,
            })? {
                Some(s) if s.kind == FsKind::Dir || dir_path == "/" => {}
                _ => continue,
            }
            let names = fs
                .read_dir(dir_path)
                .await
                .map_err(|source| StageError::Fs {
                    action: format!("listing {dir_path}"),
                    source,
                })?;
            for name in names.iter().filter(|n| glob.matches(n)) {
                let p = format!("{dir}/{name}");
                if !last {
                    let is_dir = matches!(
                        fs.stat(&p).await.map_err(|source| StageError::Fs {
                            action: format!("looking at {p}"),
                            source,
                        })?,
                        Some(s) if s.kind == FsKind::Dir
                    );
                    if !is_dir {
                        continue;
                    }
                }
                next.push(p);
            }
        }
        current = next;
    }
    if parts.iter().all(|p| !is_pattern(p)) {
        return Ok(current);
    }
    // Keep only paths that exist (fixed components after a wildcard may not).
    let mut out = Vec::new();
    for p in current {
        let found = fs.stat(&p).await.map_err(|source| StageError::Fs {
            action: format!("looking at {p}"),
            source,
        })?;
        if found.is_some() {
            out.push(p);
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

enum Root<'a> {
    /// A directory's contents go under this path.
    Dir(&'a str),
    /// The one file becomes this path.
    File(&'a str),
}

/// Re-roots the entries of a `GET /archive`-like tar of `path`, guarding member paths.
fn rewrite(
    out: &mut Entries,
    path: &str,
    tar: &[u8],
    root: Root<'_>,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> Result<()> {
    let io = |source| StageError::Archive {
        path: path.to_string(),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let member = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let member = member
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let rest = member.split_once('/').map_or("", |(_, r)| r).to_string();
        if rest.split('/').any(|c| c == "..") {
            return Err(StageError::UnsafeMember {
                path: path.into(),
                member,
            });
        }
        let target = match root {
            Root::Dir(_) if rest.is_empty() => continue, // the source directory itself
            Root::Dir(d) => clean_path(&format!("{d}/{rest}")),
            Root::File(f) if rest.is_empty() => f.to_string(),
            Root::File(_) => continue,
        };
        let h = entry.header().clone();
        let mode = h.mode().map_err(io)? & 0o7777;
        let (uid, gid) = match owner {
            Some((u, g)) => (u64::from(u), u64::from(g)),
            None => (h.uid().unwrap_or(0), h.gid().unwrap_or(0)),
        };
        let mtime = h.mtime().unwrap_or(0) as i64;
        let kind = h.entry_type();
        let link = || -> Result<String> {
            Ok(entry
                .link_name()
                .map_err(io)?
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let e = if kind.is_dir() {
            LayerEntry::dir(target, chmod.unwrap_or(mode))
        } else if kind.is_symlink() {
            LayerEntry::symlink(target, link()?)
        } else if kind.is_hard_link() {
            let linked = link()?;
            let linked = linked.trim_start_matches("./");
            let inner = linked.split_once('/').map_or("", |(_, r)| r);
            match root {
                Root::Dir(d) => LayerEntry::hardlink(target, clean_path(&format!("{d}/{inner}"))),
                Root::File(_) => continue,
            }
        } else if kind.is_file() {
            let mut data = Vec::with_capacity(h.size().unwrap_or(0) as usize);
            entry.read_to_end(&mut data).map_err(io)?;
            LayerEntry::file(target, data, chmod.unwrap_or(mode))
        } else {
            continue; // devices and fifos are not copied
        };
        out.put(e.owned_by(uid, gid).modified_at(mtime), false);
    }
    Ok(())
}
