//! The one error type of `assemble`.

use std::path::PathBuf;

use crate::engine::EngineError;
use crate::oci::OciError;
use crate::registry::RegistryError;
use crate::stage::{FsError, StageError};

/// Result alias for `assemble`.
pub type Result<T> = std::result::Result<T, AssembleError>;

/// Why an instruction cannot be assembled (the planner asks [`super::can_assemble`] first,
/// so reaching one of these is a caller bug).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// RUN executes code.
    Run,
    /// ADD of a git repository.
    GitSource,
    /// `ADD --unpack=true` of a URL.
    UrlUnpack,
    /// `COPY --from` with `--parents` or `--exclude`.
    FromFlags,
    /// Heredoc sources mixed with files, or with `--from`.
    HeredocMix,
    /// URL sources mixed with local paths.
    UrlMix,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Run => "RUN executes code; the planner must make this job native or emulated",
            Refusal::GitSource => "ADD of a git repository is not supported",
            Refusal::UrlUnpack => "ADD --unpack=true of a URL is not supported",
            Refusal::FromFlags => "COPY --from with --parents or --exclude is not supported",
            Refusal::HeredocMix => "heredoc sources mixed with files or --from",
            Refusal::UrlMix => "URL sources mixed with local paths",
        })
    }
}

/// What can go wrong while assembling images.
#[derive(Debug, thiserror::Error)]
pub enum AssembleError {
    /// A base image could not be resolved.
    #[error(transparent)]
    Resolve(Box<crate::ops::resolve::ResolveError>),
    /// An instruction the assembler does not do.
    #[error("{stage}, line {line}: cannot be assembled: {why}")]
    NotAssemblable {
        /// The stage.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// Why.
        why: Refusal,
    },
    /// An instruction's meaning was refused by `stage`.
    #[error("{stage}, line {line}: {source}")]
    Stage {
        /// The stage.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The cause.
        #[source]
        source: StageError,
    },
    /// A registry operation failed (messages already redacted by `registry`).
    #[error("{action}: {source}")]
    Registry {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: RegistryError,
    },
    /// Building or reading OCI content failed.
    #[error("{action}: {source}")]
    Oci {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: OciError,
    },
    /// An engine operation failed.
    #[error("{action}: {source}")]
    Engine {
        /// What was being done.
        action: String,
        /// The cause (boxed: engine errors are large).
        #[source]
        source: Box<EngineError>,
    },
    /// Reading a base image's or a stage's filesystem failed.
    #[error("{action}: {source}")]
    Fs {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: FsError,
    },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`writing`, `creating`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Downloading an `ADD <url>` failed.
    #[error("ADD {url}: {reason}")]
    Download {
        /// The URL (redacted).
        url: String,
        /// Why.
        reason: String,
    },
    /// An `ADD --checksum` did not match.
    #[error("ADD {url}: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// The URL (redacted).
        url: String,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// An `ADD --checksum` value that is not `sha256:<64 hex>`.
    #[error("ADD --checksum={value}: expected sha256: and 64 hex digits")]
    InvalidChecksum {
        /// The value.
        value: String,
    },
    /// A result the assembler needs was not given to it (a caller bug).
    #[error("no result for {what}: it must be built before {needed_by}")]
    MissingInput {
        /// The missing job or image.
        what: String,
        /// Who needed it.
        needed_by: String,
    },
}

impl AssembleError {
    pub(crate) fn oci(action: impl Into<String>) -> impl FnOnce(OciError) -> AssembleError {
        let action = action.into();
        move |source| AssembleError::Oci { action, source }
    }

    pub(crate) fn registry(
        action: impl Into<String>,
    ) -> impl FnOnce(RegistryError) -> AssembleError {
        let action = action.into();
        move |source| AssembleError::Registry { action, source }
    }

    pub(crate) fn engine(action: impl Into<String>) -> impl FnOnce(EngineError) -> AssembleError {
        let action = action.into();
        move |source| AssembleError::Engine {
            action,
            source: Box::new(source),
        }
    }

    pub(crate) fn fs(action: impl Into<String>) -> impl FnOnce(FsError) -> AssembleError {
        let action = action.into();
        move |source| AssembleError::Fs { action, source }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> AssembleError {
        let path = path.into();
        move |source| AssembleError::Io {
            action,
            path,
            source,
        }
    }
}
