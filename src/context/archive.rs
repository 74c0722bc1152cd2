//! Local tar archives for ADD: detection by magic bytes and extraction with path guards.
//!
//! Detection looks at content only (never the file name), as the Dockerfile reference
//! requires: gzip `1f 8b`, bzip2 `BZh`, xz `fd 37 7a 58 5a 00`, plain tar `ustar` at
//! offset 257. gzip and plain tar are extracted; bzip2 and xz are recognised and refused
//! with a clear error (no decoder among the project's dependencies yet).
//!
//! Guards: member paths are cleaned; absolute paths are made relative (as `tar -x` does);
//! a path with `..` leaving the destination, or one that goes through a symlink member
//! extracted earlier, is refused; hard links become copies of an earlier member's bytes.

use std::collections::BTreeMap;
use std::io::Read;

use super::copy::{ArchiveMember, EntryKind};
use super::error::{ContextError, Result};
use super::glob::clean_path;

/// A recognised archive format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// Uncompressed tar.
    Tar,
    /// gzip-compressed tar.
    Gzip,
    /// bzip2-compressed tar.
    Bzip2,
    /// xz-compressed tar.
    Xz,
}

/// Detects the format from the first 512 bytes (or fewer) of a file.
pub fn detect(head: &[u8]) -> Option<ArchiveFormat> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Some(ArchiveFormat::Gzip)
    } else if head.starts_with(b"BZh") {
        Some(ArchiveFormat::Bzip2)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Some(ArchiveFormat::Xz)
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        Some(ArchiveFormat::Tar)
    } else {
        None
    }
}

/// Extracts the members of `data` (named `archive` in errors) if it is an archive.
pub fn unpack(archive: &str, data: &[u8]) -> Result<Option<Vec<ArchiveMember>>> {
    let bad = |source| ContextError::BadArchive {
        archive: archive.to_string(),
        source,
    };
    match detect(&data[..data.len().min(512)]) {
        None => Ok(None),
        Some(ArchiveFormat::Tar) => read_members(archive, data).map(Some),
        Some(ArchiveFormat::Gzip) => {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(data)
                .read_to_end(&mut plain)
                .map_err(bad)?;
            // A gzip of something that is not a tar is copied as-is, like Docker does.
            if detect(&plain[..plain.len().min(512)]) != Some(ArchiveFormat::Tar) {
                return Ok(None);
            }
            read_members(archive, &plain).map(Some)
        }
        Some(ArchiveFormat::Bzip2) => Err(ContextError::UnsupportedCompression {
            archive: archive.into(),
            format: "bzip2",
        }),
        Some(ArchiveFormat::Xz) => Err(ContextError::UnsupportedCompression {
            archive: archive.into(),
            format: "xz",
        }),
    }
}

/// Cleans a member path; `None` when it would leave the extraction directory.
pub fn guard_member_path(raw: &str) -> Option<String> {
    let cleaned = clean_path(&format!("/{raw}"));
    let rel = cleaned.trim_start_matches('/');
    // clean_path on a rooted path already clamps "..": compare with a relative cleaning
    // to detect a member that tried to climb out.
    let relative = clean_path(raw.trim_start_matches('/'));
    if relative == ".." || relative.starts_with("../") {
        return None;
    }
    Some(rel.to_string())
}

fn read_members(archive: &str, tar_bytes: &[u8]) -> Result<Vec<ArchiveMember>> {
    let bad = |source| ContextError::BadArchive {
        archive: archive.to_string(),
        source,
    };
    let unsafe_path = |member: &str| ContextError::UnsafeArchivePath {
        archive: archive.into(),
        member: member.into(),
    };
    let mut members: BTreeMap<String, ArchiveMember> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut ar = tar::Archive::new(tar_bytes);
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(path) = guard_member_path(&raw) else {
            return Err(unsafe_path(&raw));
        };
        if path.is_empty() {
            continue; // "./" itself
        }
        // No writing through a symlink member: every parent must not be a link.
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if matches!(
                members.get(&path[..end]).map(|m| &m.kind),
                Some(EntryKind::Symlink { .. })
            ) {
                return Err(unsafe_path(&raw));
            }
            end += 1;
        }
        let header = entry.header();
        let mode = header.mode().map_err(bad)? & 0o7777;
        let uid = header.uid().map_err(bad)? as u32;
        let gid = header.gid().map_err(bad)? as u32;
        let mtime = header.mtime().map_err(bad)? as i64;
        let etype = header.entry_type();
        let link = || {
            entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
        };
        let (kind, data) = match etype {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).map_err(bad)?;
                (
                    EntryKind::File {
                        size: data.len() as u64,
                    },
                    data,
                )
            }
            tar::EntryType::Directory => (EntryKind::Dir, Vec::new()),
            tar::EntryType::Symlink => {
                let target = link().unwrap_or_default();
                (EntryKind::Symlink { target }, Vec::new())
            }
            tar::EntryType::Link => {
                let target = link().unwrap_or_default();
                let Some(t) = guard_member_path(&target) else {
                    return Err(unsafe_path(&raw));
                };
                match members.get(&t) {
                    Some(m) if matches!(m.kind, EntryKind::File { .. }) => {
                        (m.kind.clone(), m.data.clone())
                    }
                    _ => return Err(unsafe_path(&raw)),
                }
            }
            other => {
                return Err(ContextError::UnsupportedArchiveEntry {
                    archive: archive.into(),
                    member: raw,
                    kind: format!("{other:?}"),
                })
            }
        };
        if !members.contains_key(&path) {
            order.push(path.clone());
        }
        members.insert(
            path.clone(),
            ArchiveMember {
                path,
                kind,
                mode,
                uid,
                gid,
                mtime,
                data,
            },
        );
    }
    Ok(order
        .into_iter()
        .filter_map(|p| members.remove(&p))
        .collect())
}
