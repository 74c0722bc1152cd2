//! Content hashes of COPY/ADD entries, for step cache keys.
//!
//! The hash covers, per entry in order: the image path, the kind, the mode, uid and gid,
//! the symlink target, and the sha256 of file contents. It leaves out mtime: the
//! Dockerfile reference says mtime "isn't included in the determination of whether or not
//! the file has changed" (ADD section), so a `touch` or a fresh `git clone` keeps the cache.
//! It leaves out the host paths too, so a context moved to another machine hashes the same.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::copy::{CopyEntry, EntryKind};
use super::error::{ContextError, Result};

/// Gives the bytes of a file entry.
pub trait ContentSource {
    /// A reader over the entry's content (only called for [`EntryKind::File`]).
    fn open<'a>(&'a self, entry: &'a CopyEntry) -> Result<Box<dyn Read + 'a>>;
}

/// `sha256:<hex>` over the entries' metadata and contents; stable across runs and machines.
pub fn hash_sources(entries: &[CopyEntry], src: &dyn ContentSource) -> Result<String> {
    let mut h = Sha256::new();
    for e in entries {
        let (tag, extra) = match &e.kind {
            EntryKind::File { .. } => ("file", hex::encode(file_digest(e, src)?)),
            EntryKind::Dir => ("dir", String::new()),
            EntryKind::Symlink { target } => ("symlink", target.clone()),
        };
        // NUL cannot occur in paths or link targets, so the record is unambiguous.
        let record = format!(
            "{}\0{tag}\0{:o}\0{}\0{}\0{extra}\n",
            e.path, e.mode, e.uid, e.gid
        );
        h.update(record.as_bytes());
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn file_digest(e: &CopyEntry, src: &dyn ContentSource) -> Result<[u8; 32]> {
    let mut r = src.open(e)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).map_err(|source| ContextError::Io {
            path: e.path.clone().into(),
            source,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}
