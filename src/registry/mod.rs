//! The only module that talks to registries.
//!
//! - [`reference`]: parse `REGISTRY/REPO:TAG@DIGEST` with Docker's rules.
//! - [`auth`]: credentials from Docker's config, containers' `auth.json` and
//!   credential helpers; [`redact`] keeps them out of every message.
//! - [`client`]: one HTTP client per build; token negotiation is delegated to
//!   oci-client, requests, retries and 401-refresh are ours.
//! - [`pull`]: resolve a base image for a platform without downloading layers;
//!   stream a blob when an output needs its bytes; inspect a reference.
//! - [`preflight`]: before a build, every `--push` repository is reachable and takes a
//!   push from us (an upload start, cancelled), or the cause is named within seconds.
//! - [`push`]: push per-platform images and the index last, with HEAD-skip,
//!   cross-repo mount, chunked/resumable uploads and progress events.
//!
//! Its input types are deliberately minimal (digests, media types, exact
//! bytes) so it does not depend on the `oci` module: manifests are pushed as
//! the exact bytes the caller hashed, never re-serialized.
//! It may not touch the Docker engine or the filesystem outside blob files it is given.

pub mod auth;
pub mod client;
pub mod error;
pub mod preflight;
pub mod pull;
pub mod push;
pub mod redact;
pub mod reference;
mod upload;

use std::path::PathBuf;

use bytes::Bytes;
use serde::Serialize;

pub use auth::{AuthSources, Credential};
pub use client::{ClientOptions, RegistryClient, RetryPolicy};
pub use error::{RegistryError, Result};
pub use preflight::{check_push, PreflightOptions, PushCheckError, PushCheckFailure};
pub use pull::{Inspected, ResolvedImage};
pub use push::{push_order, PushEvent, PushOptions, PushStep, PushSummary};
pub use redact::redact;
pub use reference::ImageRef;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A content descriptor: what a manifest says about a blob or a child manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// Media type.
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// Where a blob's bytes come from when the registry does not have them yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobSource {
    /// Bytes in memory (configs, small layers).
    Bytes(Bytes),
    /// A file on disk holding exactly the blob (e.g. a compressed layer).
    File(PathBuf),
    /// A blob already in a registry repository (a base image layer): mounted
    /// when it is on the target registry, otherwise streamed across.
    Remote(ImageRef),
}

/// A blob to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// `sha256:…` of the bytes.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Where the bytes come from.
    pub source: BlobSource,
}

/// A manifest or index as the exact bytes to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawManifest {
    /// Media type (also the `Content-Type` sent).
    pub media_type: String,
    /// The exact serialized document.
    pub bytes: Bytes,
    /// `sha256:` of `bytes`.
    pub digest: String,
}

impl RawManifest {
    /// Wraps serialized bytes, computing their digest.
    pub fn new(media_type: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            media_type: media_type.into(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }
}

/// One platform's image: its manifest and every blob it references (config and layers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformImage {
    /// The platform, e.g. `linux/arm64`, for messages and progress.
    pub platform: String,
    /// The image manifest.
    pub manifest: RawManifest,
    /// Config and layer blobs.
    pub blobs: Vec<Blob>,
}

/// Everything one `--push` publishes: per-platform images, then the index under each tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRequest {
    /// Target repository (its tag is ignored; see `tags`).
    pub target: ImageRef,
    /// Tags to point at the index.
    pub tags: Vec<String>,
    /// Per-platform images in `--platform` order.
    pub images: Vec<PlatformImage>,
    /// The index (or manifest list) referencing every image manifest.
    pub index: RawManifest,
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
