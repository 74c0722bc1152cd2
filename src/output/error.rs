//! The one error type of the `output` module.

use std::path::PathBuf;

use crate::context::ContextError;
use crate::engine::EngineError;
use crate::oci::OciError;
use crate::registry::RegistryError;

/// Result alias for the `output` module.
pub type Result<T> = std::result::Result<T, OutputError>;

/// What can go wrong while assembling final images or writing, pushing or loading them.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A registry operation failed (messages are already redacted by `registry`).
    #[error("{action}: {source}")]
    Registry {
        /// What was being done, e.g. `resolving busybox:latest for linux/arm64`.
        action: String,
        /// The registry's error.
        #[source]
        source: RegistryError,
    },
    /// Building or writing OCI content failed.
    #[error("{action}: {source}")]
    Oci {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: OciError,
    },
    /// Reading the build context failed.
    #[error("{action}: {source}")]
    Context {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: ContextError,
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
    /// An instruction that cannot be assembled without running anything reached the assembler.
    #[error("line {line}: {keyword} cannot be assembled without running it ({why})")]
    NotAssemblable {
        /// Dockerfile line.
        line: usize,
        /// The instruction keyword.
        keyword: &'static str,
        /// Why.
        why: &'static str,
    },
    /// A `COPY --from` source path does not exist in the stage it names.
    #[error("line {line}: COPY --from: {path} not found in {stage}")]
    SourceNotFound {
        /// Dockerfile line.
        line: usize,
        /// Path asked for.
        path: String,
        /// The stage or image.
        stage: String,
    },
    /// A stage result the assembler needs was not given to it (a caller bug).
    #[error("no result for {what}: it must be built before {needed_by}")]
    MissingInput {
        /// The missing job or image.
        what: String,
        /// Who needed it.
        needed_by: String,
    },
    /// A `-t` value is not a valid image reference.
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag {
        /// The tag as given.
        tag: String,
        /// Why.
        reason: String,
    },
    /// `--push` without any `-t`.
    #[error("--push needs at least one -t REGISTRY/REPOSITORY:TAG")]
    PushWithoutTag,
    /// `--load` for a platform the build did not produce.
    #[error("--load: the build has no image for {wanted} (it has {available})")]
    NoImageForPlatform {
        /// The platform asked for.
        wanted: String,
        /// The platforms built, comma-separated.
        available: String,
    },
    /// A `--output` value that is not understood.
    #[error("invalid --output {value:?}: {reason}")]
    InvalidOutput {
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A tar from the engine (COPY --from) is malformed.
    #[error("reading the archive of {path} from {stage}: {reason}")]
    BadArchive {
        /// Path asked for.
        path: String,
        /// The stage.
        stage: String,
        /// Why.
        reason: String,
    },
    /// A layer entry's path would write outside the output (`..`, NUL, a symlink loop).
    #[error("layer {layer}: refusing the entry {path:?}: {why}")]
    UnsafeLayerPath {
        /// The path as the layer has it.
        path: String,
        /// The layer's position, base first (0).
        layer: usize,
        /// Why it is refused.
        why: &'static str,
    },
    /// A layer is not a tar archive that can be read.
    #[error("reading layer {digest}: {reason}")]
    BadLayer {
        /// The layer's digest.
        digest: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer xplat cannot unpack.
    #[error("layer {digest}: {why}")]
    UnsupportedLayer {
        /// The layer's digest.
        digest: String,
        /// Why.
        why: &'static str,
    },
    /// A JSON document could not be (de)serialized.
    #[error("{action}: {source}")]
    Json {
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl OutputError {
    pub(crate) fn oci(action: impl Into<String>) -> impl FnOnce(OciError) -> OutputError {
        let action = action.into();
        move |source| OutputError::Oci { action, source }
    }

    pub(crate) fn registry(action: impl Into<String>) -> impl FnOnce(RegistryError) -> OutputError {
        let action = action.into();
        move |source| OutputError::Registry { action, source }
    }

    pub(crate) fn engine(action: impl Into<String>) -> impl FnOnce(EngineError) -> OutputError {
        let action = action.into();
        move |source| OutputError::Engine {
            action,
            source: Box::new(source),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> OutputError {
        let path = path.into();
        move |source| OutputError::Io {
            action,
            path,
            source,
        }
    }
}
