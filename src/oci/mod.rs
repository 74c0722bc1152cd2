//! Pure OCI: deterministic layer tars, image config, manifests, indexes, digests,
//! and the OCI-layout and docker-archive writers and readers.
//!
//! This module owns the exact bytes xplat publishes. It never talks to a network or
//! an engine: writers take `impl Write`, readers take `impl Read`. The only filesystem
//! use is reading host files named by a layer's entry list, and reading or writing an
//! OCI layout folder (or extracting a `docker save` tar into a folder) when asked.
//!
//! Every document is serialized once, at construction, and its digest is the sha256 of
//! exactly those bytes. Values never change after construction: `with_*` methods
//! return new values (STYLE.md rule 2).

pub mod blob;
pub mod config;
pub mod digest;
pub mod docker_archive;
mod error;
pub mod image;
pub mod index;
pub mod layer;
pub mod layout;
pub mod manifest;
pub mod media_type;
mod tar_writer;
pub mod time;
pub mod validate;

pub use config::{ContainerConfig, Healthcheck, History, ImageConfig, RootFs};
pub use digest::Digest;
pub use error::{OciError, Result};
pub use image::OciImage;
pub use index::ImageIndex;
pub use layer::{
    write_plain_tar, BlobSource, EntryKind, FileSource, LayerBlob, LayerEntry, LayerOptions,
};
pub use manifest::{Descriptor, ImageManifest, IndexDocument, PlatformSpec};
pub use media_type::IndexFormat;
