//! The one error type of `stage`: every way an instruction's meaning can be refused,
//! each a named case (no catch-all message).

use crate::context::ContextError;

/// An error of a SourceFs or DestFs implementation (engine, registry, files), kept as is.
pub type FsError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why `stage` refused an instruction or could not compute what it writes.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// `EXPOSE` with a word that is not `port[-port][/tcp|udp|sctp]`.
    #[error("invalid port {port:?} in EXPOSE")]
    InvalidPort {
        /// The word as written.
        port: String,
    },
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `--chown` that is not `user[:group]`.
    #[error("invalid --chown value {value:?}: expected user[:group]")]
    InvalidChown {
        /// The value as written.
        value: String,
    },
    /// `--chown` or `USER` names a user the destination's `/etc/passwd` does not have.
    #[error("--chown: unknown user {name:?} (not in the destination's /etc/passwd)")]
    UnknownUser {
        /// The user name.
        name: String,
    },
    /// `--chown` names a group the destination's `/etc/group` does not have.
    #[error("--chown: unknown group {name:?} (not in the destination's /etc/group)")]
    UnknownGroup {
        /// The group name.
        name: String,
    },
    /// `--chmod` that is not octal up to 7777.
    #[error("invalid --chmod value {value:?}: expected octal digits up to 7777")]
    InvalidChmod {
        /// The value as written.
        value: String,
    },
    /// Several sources into a destination that is not a directory.
    #[error("when using COPY/ADD with more than one source, the destination must be a directory and end with a /, got {dest:?}")]
    DestNotDirectory {
        /// The destination as written.
        dest: String,
    },
    /// `COPY --from` of a path the source does not have.
    #[error("COPY --from={from}: {path} not found")]
    SourceNotFound {
        /// The `--from` value.
        from: String,
        /// The path looked up.
        path: String,
    },
    /// A `COPY --from` wildcard that matched nothing.
    #[error("COPY --from={from}: no source files were specified (nothing matches {pattern})")]
    NoWildcardMatch {
        /// The `--from` value.
        from: String,
        /// The pattern.
        pattern: String,
    },
    /// A symlink chain longer than the kernel's limit.
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop {
        /// Where following started.
        path: String,
    },
    /// An archive member whose path leaves the copied directory.
    #[error("archive of {path}: member {member:?} escapes the copied path")]
    UnsafeMember {
        /// The copied path.
        path: String,
        /// The member name.
        member: String,
    },
    /// A source archive (GET /archive-like tar) could not be read.
    #[error("reading the archive of {path}: {source}")]
    Archive {
        /// The copied path.
        path: String,
        /// The tar error.
        source: std::io::Error,
    },
    /// A heredoc source mixed with file sources in one COPY/ADD.
    #[error("mixing heredoc and file sources in one COPY/ADD is not supported")]
    MixedHeredocSources,
    /// The parser gave a different number of heredoc bodies than `<<` sources.
    #[error("{sources} heredoc sources but {bodies} heredoc bodies")]
    HeredocCount {
        /// `<<NAME` sources.
        sources: usize,
        /// Bodies.
        bodies: usize,
    },
    /// `COPY --from` together with a heredoc source.
    #[error("COPY --from with a heredoc source")]
    HeredocWithFrom,
    /// ADD mixing URLs and local paths.
    #[error("mixing URL and local sources in one ADD is not supported")]
    MixedUrlSources,
    /// ADD of a git repository.
    #[error("ADD of a git repository ({src}) is not supported")]
    GitSource {
        /// The source as written.
        src: String,
    },
    /// `ADD --unpack=true` of a URL.
    #[error("ADD --unpack=true of a URL is not supported")]
    UrlUnpack,
    /// `--checksum` with several sources.
    #[error("ADD --checksum needs exactly one source")]
    ChecksumSources,
    /// A URL to be copied was not downloaded by the caller.
    #[error("ADD {url}: not downloaded (the caller must fetch URLs before stage::copy)")]
    MissingDownload {
        /// The URL.
        url: String,
    },
    /// A file copied into a directory has no name (a URL whose path is `/`).
    #[error("{src} has no file name; give a destination file name")]
    NoFileName {
        /// The source.
        src: String,
    },
    /// COPY/ADD from the context, without a context.
    #[error("COPY/ADD from the build context, but no build context was given")]
    NoContext,
    /// `COPY --from`, without a source filesystem.
    #[error("COPY --from={from}: no source filesystem was given")]
    NoSource {
        /// The `--from` value.
        from: String,
    },
    /// Resolving context sources failed.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A SourceFs/DestFs call failed.
    #[error("{action}: {source}")]
    Fs {
        /// What was being done (`reading /etc/passwd of the destination`).
        action: String,
        /// The implementation's error.
        source: FsError,
    },
}

/// `Result` with [`StageError`].
pub type Result<T> = std::result::Result<T, StageError>;
