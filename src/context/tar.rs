//! The tar stream sent to the engine's `put_archive` (extracted at `/`), written to any
//! `Write`. Headers are filled from the entries, never from the host file: owner, mode and
//! mtime are exactly what COPY decided; user and group names stay empty.
//!
//! Guards: every entry path must be absolute and clean, contain no `..`, and not pass
//! through a symlink written earlier in the same stream; a file whose size changed since
//! it was listed is refused rather than truncated or padded.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use super::copy::{CopyEntry, EntryKind};
use super::error::{ContextError, Result};
use super::glob::clean_path;
use super::hash::ContentSource;

/// Checks one entry path against the tar guards; returns the archive name (no leading `/`).
pub fn guard_path(path: &str, links: &BTreeSet<String>) -> Result<String> {
    let refuse = |reason| ContextError::UnsafeTarPath {
        path: path.to_string(),
        reason,
    };
    if !path.starts_with('/') {
        return Err(refuse("not an absolute image path"));
    }
    if path.split('/').any(|c| c == "..") {
        return Err(refuse("contains '..'"));
    }
    if clean_path(path) != path || path == "/" {
        return Err(refuse("not a clean path"));
    }
    let rel = &path[1..];
    let mut end = 0;
    while let Some(i) = rel[end..].find('/') {
        end += i;
        if links.contains(&rel[..end]) {
            return Err(refuse("goes through a symlink written earlier"));
        }
        end += 1;
    }
    Ok(rel.to_string())
}

/// Writes `entries` (sorted, as [`super::copy::resolve`] returns them) as an uncompressed tar.
pub fn write_tar<W: Write>(out: W, entries: &[CopyEntry], src: &dyn ContentSource) -> Result<W> {
    let mut b = tar::Builder::new(out);
    let mut links = BTreeSet::new();
    for e in entries {
        let name = guard_path(&e.path, &links)?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode & 0o7777);
        h.set_uid(e.uid.into());
        h.set_gid(e.gid.into());
        h.set_mtime(e.mtime.max(0) as u64);
        match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, format!("{name}/"), std::io::empty())
                    .map_err(ContextError::Write)?;
            }
            EntryKind::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &name, target)
                    .map_err(ContextError::Write)?;
                links.insert(name);
            }
            EntryKind::File { size } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(*size);
                let reader = src.open(e)?;
                let mut counted = Exact {
                    inner: reader.take(*size + 1),
                    left: *size,
                    over: false,
                };
                let res = b.append_data(&mut h, &name, &mut counted);
                if counted.over || counted.left != 0 {
                    let path = match &e.origin {
                        super::copy::Origin::Context(p) => p.clone(),
                        _ => e.path.clone(),
                    };
                    return Err(ContextError::ChangedDuringBuild { path });
                }
                res.map_err(ContextError::Write)?;
            }
        }
    }
    b.into_inner().map_err(ContextError::Write)
}

/// Reads exactly `left` bytes, noting a short or long source instead of passing it on.
struct Exact<R> {
    inner: R,
    left: u64,
    over: bool,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? > 0 {
                self.over = true;
            }
            return Ok(0);
        }
        let cap = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..cap])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shrank",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
