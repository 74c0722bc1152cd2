//! The one error type of the `context` module.

use std::path::PathBuf;

/// Everything that can go wrong while reading a build context, resolving a
/// COPY/ADD, hashing sources or writing a tar stream.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A filesystem call failed.
    #[error("reading {path}: {source}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The context root is not a directory.
    #[error("build context {path} is not a directory")]
    NotADirectory {
        /// The path given as context.
        path: PathBuf,
    },
    /// A `.dockerignore`, `--exclude` or source pattern is malformed.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A source path leaves the build context (`../x`, or a symlink pointing out).
    #[error("COPY/ADD source {path:?} resolves outside the build context{}", via.as_ref().map(|v| format!(" (through symlink {v:?})")).unwrap_or_default())]
    EscapesContext {
        /// The source path as written.
        path: String,
        /// The symlink inside the context that points out, if any.
        via: Option<String>,
    },
    /// Too many symlinks were followed while resolving a source.
    #[error("COPY/ADD source {path:?}: too many levels of symbolic links")]
    SymlinkLoop {
        /// The source path as written.
        path: String,
    },
    /// A source matched nothing in the (filtered) context.
    #[error(
        "COPY/ADD source {pattern:?} not found in the build context (or excluded by .dockerignore)"
    )]
    NoSourceMatch {
        /// The source path or pattern as written.
        pattern: String,
    },
    /// A COPY/ADD without any source.
    #[error("COPY/ADD needs at least one source and a destination")]
    NoSources,
    /// Several sources, and a destination that does not end with `/`.
    #[error("COPY/ADD with more than one source file needs a destination directory ending with '/', got {dest:?}")]
    DestNotDirectory {
        /// The destination as written.
        dest: String,
    },
    /// A URL or git source: not a build-context path.
    #[error("source {src:?} is a URL, not a build-context path")]
    UrlSource {
        /// The source as written.
        src: String,
    },
    /// `--chown` value that cannot be parsed.
    #[error("invalid --chown value {value:?}")]
    InvalidChown {
        /// The value as written.
        value: String,
    },
    /// `--chown` user name absent from the image's /etc/passwd.
    #[error("--chown: unknown user {name:?} (not in the image's /etc/passwd)")]
    UnknownUser {
        /// The user name.
        name: String,
    },
    /// `--chown` group name absent from the image's /etc/group.
    #[error("--chown: unknown group {name:?} (not in the image's /etc/group)")]
    UnknownGroup {
        /// The group name.
        name: String,
    },
    /// `--chmod` value that is not an octal mode.
    #[error("invalid --chmod value {value:?}: only octal modes (e.g. 755) are supported")]
    InvalidChmod {
        /// The value as written.
        value: String,
    },
    /// An archive member would land outside the destination or write through a symlink.
    #[error("archive {archive}: member {member:?} would be written outside its destination")]
    UnsafeArchivePath {
        /// The archive (context path).
        archive: String,
        /// The member path as stored in the archive.
        member: String,
    },
    /// An archive compressed with a format this build of xplat cannot read.
    #[error("archive {archive}: {format} compression is not supported yet")]
    UnsupportedCompression {
        /// The archive (context path).
        archive: String,
        /// The detected format.
        format: &'static str,
    },
    /// An archive member of a type xplat does not extract (device, fifo, ...).
    #[error("archive {archive}: member {member:?} has unsupported type {kind}")]
    UnsupportedArchiveEntry {
        /// The archive (context path).
        archive: String,
        /// The member path.
        member: String,
        /// The tar entry type byte, printed.
        kind: String,
    },
    /// An archive that cannot be read as tar.
    #[error("archive {archive}: {source}")]
    BadArchive {
        /// The archive (context path).
        archive: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A tar entry path that is absolute after cleaning, has `..`, or goes through a symlink.
    #[error("refusing tar entry {path:?}: {reason}")]
    UnsafeTarPath {
        /// The entry path.
        path: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A file changed type or identity between listing and reading (possible symlink swap).
    #[error("{path} changed while the build was reading it")]
    ChangedDuringBuild {
        /// The context-relative path.
        path: String,
    },
    /// Writing the tar stream failed.
    #[error("writing tar stream: {0}")]
    Write(#[source] std::io::Error),
}

/// Result alias of the `context` module.
pub type Result<T> = std::result::Result<T, ContextError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ContextError {
    let path = path.into();
    move |source| ContextError::Io { path, source }
}
