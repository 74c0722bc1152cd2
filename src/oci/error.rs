//! The one error type of the `oci` module.

use std::path::PathBuf;

use super::validate::Violation;

/// Result alias for the `oci` module.
pub type Result<T> = std::result::Result<T, OciError>;

/// Everything that can go wrong while building, writing or reading OCI content.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A digest string is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest {
        /// The text that failed to parse.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Content does not hash to the digest that names it.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being checked (a blob path, a layer, ...).
        what: String,
        /// The digest the content was expected to have.
        expected: String,
        /// The digest the content has.
        actual: String,
    },
    /// A layer entry path is empty, contains `..` or NUL, or otherwise escapes the layer root.
    #[error("unsafe path {path:?} in layer entry: {reason}")]
    UnsafePath {
        /// The offending path as given.
        path: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Two layer entries normalise to the same path.
    #[error("duplicate layer entry {path:?}")]
    DuplicateEntry {
        /// The normalised path.
        path: String,
    },
    /// A hardlink points to a path that is not a regular file in the same layer.
    #[error("hardlink {path:?} points to {target:?}, which is not a regular file in this layer")]
    HardlinkTarget {
        /// The link.
        path: String,
        /// Its target.
        target: String,
    },
    /// A host file named by a layer entry is not a regular file (e.g. a symlink), or changed size while read.
    #[error("host file {path} cannot be used as layer content: {reason}")]
    HostFile {
        /// The host path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An I/O error while doing `action`.
    #[error("{action}: {source}")]
    Io {
        /// A gerund phrase: what was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document could not be parsed or serialized.
    #[error("{action}: {source}")]
    Json {
        /// A gerund phrase: what was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// An OCI index and a Docker manifest list family would be mixed in one document.
    #[error("cannot mix media-type families: {detail}")]
    MixedFamilies {
        /// What was mixed.
        detail: String,
    },
    /// The image config does not describe the platform it is indexed under.
    #[error("image config says {config} but the index entry says {platform}")]
    PlatformMismatch {
        /// os/arch/variant from the config.
        config: String,
        /// os/arch/variant of the index entry.
        platform: String,
    },
    /// The config history has more non-empty entries than there are layers.
    #[error("config history has {non_empty} non-empty entries but the image has {layers} layers")]
    HistoryLayerCount {
        /// Number of history entries without `empty_layer: true`.
        non_empty: usize,
        /// Number of layers.
        layers: usize,
    },
    /// The bytes of a blob are not available locally (it lives in a registry).
    #[error("blob {digest} is only in registry repository {repository}; fetch it before writing")]
    BlobNotLocal {
        /// The blob digest.
        digest: String,
        /// Where it lives.
        repository: String,
    },
    /// A document failed the validation oracle.
    #[error("{kind} is invalid: {}", violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// What kind of document.
        kind: &'static str,
        /// Each broken rule.
        violations: Vec<Violation>,
    },
    /// An OCI layout or docker archive lacks something it must have.
    #[error("malformed {what}: {reason}")]
    MalformedArchive {
        /// `OCI layout`, `docker save archive`, ...
        what: &'static str,
        /// What is missing or wrong.
        reason: String,
    },
    /// A blob's media type is not one this module can handle here.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
        /// Where it was found.
        what: &'static str,
    },
}

impl OciError {
    /// Wraps an I/O error with a gerund phrase.
    pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> OciError {
        let action = action.into();
        move |source| OciError::Io { action, source }
    }

    /// Wraps a JSON error with a gerund phrase.
    pub(crate) fn json(action: impl Into<String>) -> impl FnOnce(serde_json::Error) -> OciError {
        let action = action.into();
        move |source| OciError::Json { action, source }
    }
}
