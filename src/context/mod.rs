//! The build context: `.dockerignore`, walking without escape, COPY/ADD source
//! resolution, content hashing for cache keys, and tar streams for `put_archive`.
//!
//! Filesystem only: no engine, no network. Nothing outside the context root is read,
//! and no symlink is followed out of it.
//!
//! ```text
//! BuildContext::open(dir, dockerfile) ─ listing() ─▶ Listing (ignored paths absent)
//! CopySpec + Listing ─ copy::resolve ─▶ Vec<CopyEntry> (sorted, image paths, owners, modes)
//! entries ─ hash_sources ─▶ "sha256:…" (cache key part)
//! entries ─ write_tar ─▶ tar bytes for put_archive at "/"
//! ```

pub mod archive;
pub mod copy;
mod error;
mod glob;
pub mod hash;
pub mod ignore;
pub mod tar;
pub mod walk;

use std::io::Read;

pub use copy::{resolve, CopyEntry, CopySpec, DestImage, EntryKind, Origin};
pub use error::{ContextError, Result};
pub use glob::clean_path;
/// Go `filepath.Match` patterns, also used by the executor for `COPY --from` wildcards.
pub(crate) use glob::{is_pattern, Glob};
pub use hash::{hash_sources, ContentSource};
pub use ignore::Ignore;
pub use tar::write_tar;
pub use walk::{read_dockerfile, BuildContext, Listing, SourceEntry, SourceKind};

impl ContentSource for BuildContext {
    fn open<'a>(&'a self, entry: &'a CopyEntry) -> Result<Box<dyn Read + 'a>> {
        match &entry.origin {
            Origin::Context(rel) => Ok(Box::new(self.open_file(rel)?)),
            Origin::Archive { data, .. } => Ok(Box::new(&data[..])),
            Origin::Created => Ok(Box::new(std::io::empty())),
        }
    }
}

impl copy::ArchiveReader for BuildContext {
    fn read_archive(&self, rel: &str) -> Result<Option<Vec<copy::ArchiveMember>>> {
        let mut head = Vec::with_capacity(512);
        self.open_file(rel)?
            .take(512)
            .read_to_end(&mut head)
            .map_err(|source| ContextError::Io {
                path: self.root().join(rel),
                source,
            })?;
        if archive::detect(&head).is_none() {
            return Ok(None);
        }
        let mut data = Vec::new();
        self.open_file(rel)?
            .read_to_end(&mut data)
            .map_err(|source| ContextError::Io {
                path: self.root().join(rel),
                source,
            })?;
        archive::unpack(rel, &data)
    }
}

impl BuildContext {
    /// Resolves a COPY (or, with `spec.unpack`, an ADD) against this context.
    pub fn resolve_copy(&self, spec: &CopySpec, image: &dyn DestImage) -> Result<Vec<CopyEntry>> {
        let archives: Option<&dyn copy::ArchiveReader> =
            if spec.unpack { Some(self) } else { None };
        copy::resolve(spec, self.listing()?, image, archives)
    }
}
