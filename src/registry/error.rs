//! The registry module's one error type. Every message that may carry a URL or
//! a server answer has been passed through [`super::redact::redact`] first, so
//! no variant can carry a credential.
//!
//! Context is said once (issue 13): a variant names its own step, not the image or
//! repository its caller already names (`resolving base image R for P: manifest not
//! found`, `pushing R: index not pushed: checking blob D: not authorized`); the
//! reference stays in the fields for programs.

use std::path::PathBuf;

/// Result of every fallible registry operation.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// What went wrong while talking to a registry or reading credentials.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// An image reference broke Docker's naming rules.
    #[error("invalid image reference {reference:?}: {part} {value:?} {reason}")]
    InvalidReference {
        /// The whole reference as typed.
        reference: String,
        /// Which part is wrong: `registry`, `repository`, `tag` or `digest`.
        part: &'static str,
        /// The offending part.
        value: String,
        /// Why it is wrong.
        reason: &'static str,
    },
    /// A credentials file could not be read.
    #[error("reading credentials file {path}: {source}")]
    ReadingAuthFile {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// A credentials file is not the JSON we expect (the message never quotes values).
    #[error("parsing credentials file {path}: {reason}")]
    ParsingAuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `docker-credential-<name>` helper failed.
    #[error("credential helper docker-credential-{helper} failed for {registry}: {reason}")]
    CredentialHelper {
        /// Helper name (the suffix after `docker-credential-`).
        helper: String,
        /// Registry asked for.
        registry: String,
        /// Exit status and redacted stderr, or the spawn failure.
        reason: String,
    },
    /// The Docker config holds an OAuth identity token for this registry, which xplat cannot exchange yet.
    #[error("credentials for {registry} are an identity token (docker login via OAuth); xplat supports username/password credentials only")]
    IdentityTokenUnsupported {
        /// Registry the token is for.
        registry: String,
    },
    /// The registry refused our credentials (or their absence).
    #[error("{operation}: not authorized (HTTP {status})")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// Repository.
        repository: String,
        /// What we were doing, naming the repository unless the caller does
        /// (`pushing blob sha256:…` under a push of the repository).
        operation: String,
        /// 401 or 403.
        status: u16,
    },
    /// The registry could not be reached, or kept failing, after all retries.
    #[error("{operation}: registry unreachable after {attempts} attempt(s): {reason}")]
    Unreachable {
        /// What we were doing.
        operation: String,
        /// How many times we tried.
        attempts: u32,
        /// The last failure (redacted).
        reason: String,
    },
    /// The registry kept answering with a server error (5xx) after all retries.
    #[error("{operation}: the registry kept answering HTTP {status} after {attempts} attempt(s)")]
    ServerError {
        /// What we were doing.
        operation: String,
        /// How many times we tried.
        attempts: u32,
        /// The last status.
        status: u16,
    },
    /// The registry answered with a status the protocol does not allow here.
    #[error("{operation}: unexpected HTTP {status} from {url}: {body}")]
    UnexpectedStatus {
        /// What we were doing.
        operation: String,
        /// Redacted URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// Start of the answer body, redacted.
        body: String,
    },
    /// A manifest or tag does not exist.
    #[error("manifest not found")]
    ManifestNotFound {
        /// The reference asked for.
        reference: String,
    },
    /// An index has no manifest for the wanted platform.
    #[error("no image for {wanted}; it has: {}", if available.is_empty() { "no platforms".to_string() } else { available.join(", ") })]
    PlatformNotFound {
        /// The reference asked for.
        reference: String,
        /// The wanted platform.
        wanted: String,
        /// Platforms the index lists (attestations left out).
        available: Vec<String>,
    },
    /// A single-platform image is not for the wanted platform.
    #[error("a single-platform image for {actual}, not {wanted}")]
    PlatformMismatch {
        /// The reference asked for.
        reference: String,
        /// The wanted platform.
        wanted: String,
        /// What its config says.
        actual: String,
    },
    /// A document has a media type xplat cannot read.
    #[error("{reference}: unsupported media type {media_type:?}")]
    UnsupportedMediaType {
        /// The reference asked for.
        reference: String,
        /// The media type found.
        media_type: String,
    },
    /// A manifest, index or config is not valid JSON of the expected shape.
    #[error("{reference}: invalid document: {reason}")]
    InvalidDocument {
        /// The reference asked for.
        reference: String,
        /// What failed.
        reason: String,
    },
    /// Content did not hash to the digest that names it.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// Digest we asked for.
        expected: String,
        /// Digest of what arrived.
        actual: String,
    },
    /// An upload session answer had no usable `Location`.
    #[error("{operation}: registry gave no usable upload Location")]
    MissingLocation {
        /// What we were doing.
        operation: String,
    },
    /// A blob file on disk could not be read.
    #[error("reading blob {digest} from {path}: {source}")]
    ReadingBlob {
        /// Blob digest.
        digest: String,
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// oci-client's token negotiation failed (message redacted).
    #[error("authenticating to {registry}: {reason}")]
    TokenExchange {
        /// Registry host.
        registry: String,
        /// Redacted oci-client error.
        reason: String,
    },
    /// Building the HTTP client failed.
    #[error("building HTTP client: {reason}")]
    HttpClient {
        /// Redacted reqwest error.
        reason: String,
    },
    /// A step of a push failed; the index was not pushed.
    #[error("index not pushed: {source}")]
    PushAborted {
        /// Target reference.
        reference: String,
        /// The failed step (`blob sha256:…`, `manifest for linux/arm64`).
        step: String,
        /// Why.
        #[source]
        source: Box<RegistryError>,
    },
    /// A repository a push names cannot take it (checked before the build).
    #[error("cannot push to {}/{}: {}", .0.registry, .0.repository, .0.failure)]
    PushCheck(Box<super::preflight::PushCheckError>),
    /// A push request is inconsistent (e.g. two sources for one digest with different sizes).
    #[error("invalid push request: {reason}")]
    InvalidPushRequest {
        /// What is inconsistent.
        reason: String,
    },
}

impl RegistryError {
    /// What the user can do about this error, when the registry module knows.
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::PushCheck(e) => Some(e.hint.clone()),
            RegistryError::PushAborted { source, .. } => source.hint(),
            RegistryError::Unauthorized {
                registry, status, ..
            } if *status == 403 => Some(format!(
                "your credentials for {registry} are not allowed this: check the repository name \
                 and your rights on it"
            )),
            RegistryError::Unauthorized { registry, .. } => Some(format!(
                "log in with `docker login {registry}` (xplat reads $DOCKER_CONFIG/config.json, its \
                 credential helpers and REGISTRY_AUTH_FILE)"
            )),
            _ => None,
        }
    }
}
