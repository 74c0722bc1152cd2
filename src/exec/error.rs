//! The executor's error type: every way running a job can fail, with the stage and
//! Dockerfile line attached where one is known.

use thiserror::Error;

use crate::context::ContextError;
use crate::engine::EngineError;

/// Errors of the `exec` module.
#[derive(Debug, Error)]
pub enum ExecError {
    /// A RUN exited non-zero.
    #[error(
        "{stage}, line {line}: RUN {command} returned exit code {code}\n--- last lines of output ---\n{last_lines}"
    )]
    RunFailed {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line of the RUN.
        line: usize,
        /// The command as written.
        command: String,
        /// The exit code.
        code: i64,
        /// The last lines of its output, newline-separated.
        last_lines: String,
    },
    /// An engine call failed while executing an instruction.
    #[error("{stage}, line {line}: {action}: {source}")]
    Engine {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line (0 for the FROM of a stage).
        line: usize,
        /// What was being done, as a gerund phrase.
        action: String,
        /// The engine's error.
        #[source]
        source: Box<EngineError>,
    },
    /// Resolving COPY/ADD sources in the build context failed.
    #[error("{stage}, line {line}: {source}")]
    Context {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The context error.
        #[source]
        source: Box<ContextError>,
    },
    /// An engine stopped answering during the build, and its job was not run elsewhere
    /// (`--on-engine-loss fail`, or no other engine can run the job's platform).
    #[error("engine {engine} stopped answering while running job {job} ({stage}){why}: {source}")]
    EngineLost {
        /// The engine's name.
        engine: String,
        /// The job it was running.
        job: String,
        /// Its stage.
        stage: String,
        /// Why it was not run elsewhere (`; no other engine runs linux/s390x`), or empty.
        why: String,
        /// What failed on the engine.
        #[source]
        source: Box<ExecError>,
    },
    /// A base image found only in an engine's own store is not in the store of the
    /// engine a job runs on.
    #[error(
        "{stage}: {reference} for {platform} is in another engine's image store, not in engine \
         {engine}'s; push it to a registry, or load it there (docker save | docker -H HOST load)"
    )]
    BaseNotOnEngine {
        /// Stage name or index.
        stage: String,
        /// The reference.
        reference: String,
        /// The platform.
        platform: String,
        /// The engine that lacks it.
        engine: String,
    },
    /// Engines named in the configuration cannot be reached at the start, and the build
    /// cannot (or may not) go on without them.
    #[error("{message}")]
    EnginesUnreachable {
        /// Which engines, why, and what they would have run.
        message: String,
    },
    /// The executor does not support this instruction or flag yet.
    #[error("{stage}, line {line}: {what} is not supported by xplat's executor")]
    Unsupported {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// What is unsupported.
        what: String,
    },
    /// `ADD --checksum` is not `sha256:` and 64 hex digits.
    #[error("{stage}, line {line}: --checksum={value}: expected sha256: and 64 hex digits")]
    BadChecksum {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The value given.
        value: String,
    },
    /// A download for ADD failed.
    #[error("{stage}, line {line}: downloading {url}: {reason}")]
    Download {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A download did not have the checksum `ADD --checksum` asked for.
    #[error("{stage}, line {line}: {url}: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The URL.
        url: String,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// `--checksum` with several sources.
    #[error("{stage}, line {line}: --checksum needs exactly one source")]
    ChecksumWithSeveralSources {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
    },
    /// The number of heredoc sources and bodies differ (a parser bug).
    #[error("{stage}, line {line}: {sources} heredoc sources but {bodies} heredoc bodies")]
    HeredocCount {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// Sources.
        sources: usize,
        /// Bodies.
        bodies: usize,
    },
    /// A heredoc's name cannot be a file name (for a `#!` script).
    #[error("{stage}, line {line}: heredoc name {name:?} cannot be a file name")]
    BadHeredocName {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The name.
        name: String,
    },
    /// Several sources into a destination that is not a folder.
    #[error("{stage}, line {line}: with more than one source, the destination must be a directory and end with a /")]
    DestNotDirectory {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
    },
    /// An ADD URL whose path gives no file name, into a folder.
    #[error(
        "{stage}, line {line}: the URL has no file name in its path; give a destination file name"
    )]
    UrlWithoutName {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
    },
    /// `COPY --from` names a source that does not exist there.
    #[error("{stage}, line {line}: COPY --from={from}: {path} not found")]
    SourceMissing {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The `--from` value.
        from: String,
        /// The path.
        path: String,
    },
    /// A `COPY --from` wildcard matched nothing.
    #[error("{stage}, line {line}: COPY --from={from}: no files match {pattern}")]
    NoMatch {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The `--from` value.
        from: String,
        /// The pattern.
        pattern: String,
    },
    /// The plan left a `--from` unresolved (a planner bug).
    #[error("{stage}, line {line}: the plan did not resolve --from={from}")]
    UnresolvedFrom {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The value.
        from: String,
    },
    /// A `RUN --mount` without a target where WORKDIR is `/`.
    #[error("{stage}, line {line}: --mount needs a target= when WORKDIR is /")]
    MountTargetMissing {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
    },
    /// Reading another stage's or image's files failed.
    #[error("{stage}, line {line}: reading {path}: {source}")]
    ReadSource {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: Box<super::outputs::FilesError>,
    },
    /// Recording a stage's output for its consumers failed.
    #[error("{stage}: recording {path} for the stages that read it: {source}")]
    Record {
        /// Stage name.
        stage: String,
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: Box<super::outputs::FilesError>,
    },
    /// The recorded outputs a consumer reads are missing (a scheduling bug).
    #[error("{stage}, line {line}: the files of {roots} were not recorded")]
    NotRecorded {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The roots.
        roots: String,
    },
    /// `stage` refused the instruction or could not compute what it writes.
    #[error("{stage}, line {line}: {source}")]
    Stage {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// Why.
        #[source]
        source: Box<crate::stage::StageError>,
    },
    /// An `ADD <url>` download failed.
    #[error("{stage}, line {line}: {source}")]
    Fetch {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// Why.
        #[source]
        source: Box<crate::assemble::AssembleError>,
    },
    /// Making an OCI document failed.
    #[error("{action}: {source}")]
    Oci {
        /// What was being done.
        action: String,
        /// Why.
        #[source]
        source: Box<crate::oci::OciError>,
    },
    /// `--mount=type=secret,id=X` names a secret not given with `--secret id=X,src=...`.
    #[error("{stage}, line {line}: secret {id:?} was not given (use --secret id={id},src=FILE)")]
    MissingSecret {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The secret id.
        id: String,
    },
    /// A tar stream from the engine could not be read or rewritten.
    #[error("{stage}, line {line}: reading the archive of {path}: {source}")]
    Archive {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The source path in the other image.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A tar member from another image would land outside its destination.
    #[error("{stage}, line {line}: refusing archive member {member:?} (escapes its destination)")]
    UnsafeMember {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The member path.
        member: String,
    },
    /// The Dockerfile could not be parsed.
    #[error("{0}")]
    Parse(#[from] Box<crate::dockerfile::ParseError>),
    /// Reading the Dockerfile or the context failed before any job ran.
    #[error("opening the build context: {0}")]
    OpenContext(#[source] Box<ContextError>),
    /// The planner refused the Dockerfile or the options, or could not re-expand a
    /// step with the base image's ENV.
    #[error("{0}")]
    Plan(#[from] Box<crate::plan::PlanError>),
    /// The scheduler was given dependencies that never become ready (a cycle or a
    /// bad index): a bug in the plan.
    #[error("job {job} waits for a job that never runs")]
    Cycle {
        /// The job.
        job: String,
    },
    /// An assembled job (one that must run nothing) met a RUN, e.g. from a base
    /// image's ONBUILD trigger.
    #[error("{stage}, line {line}: RUN in a job planned to run nothing ({platform} is not the build platform)")]
    RunInAssembledJob {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// The job's platform.
        platform: String,
    },
    /// An image a job starts from or copies from was not resolved before the build (a bug:
    /// the resolver runs over every reference the plan names).
    #[error("{stage}: image {reference} for {platform} was not resolved")]
    UnresolvedImage {
        /// Stage name.
        stage: String,
        /// The reference.
        reference: String,
        /// The platform.
        platform: String,
    },
    /// A pulled image is not the platform it was pulled for.
    #[error("{stage}: {reference} was pulled for {wanted} but the engine's image is {actual}")]
    WrongPlatform {
        /// Stage name.
        stage: String,
        /// The reference.
        reference: String,
        /// What was asked.
        wanted: String,
        /// What arrived.
        actual: String,
    },
    /// A RUN needs a shell to keep its container up and none is in the image.
    #[error("{stage}, line {line}: RUN needs /bin/sh in the image (xplat runs steps in a container kept up by a shell)")]
    NoShell {
        /// Stage name.
        stage: String,
        /// Dockerfile line.
        line: usize,
    },
    /// A base image could not be resolved.
    #[error(transparent)]
    Resolve(Box<crate::ops::resolve::ResolveError>),
    /// The registry client could not be made.
    #[error("making the registry client: {0}")]
    RegistryClient(Box<crate::registry::RegistryError>),
    /// The build was cancelled (Ctrl-C).
    #[error("build cancelled")]
    Cancelled,
    /// A job was not run because a job it depends on failed.
    #[error("job {job} was not run: a job it depends on failed")]
    DependencyFailed {
        /// The job id.
        job: String,
    },
    /// An engine call made outside any stage failed (scratch image, tagging, prune).
    #[error("{action}: {source}")]
    EngineOp {
        /// What was being done.
        action: String,
        /// The engine's error.
        #[source]
        source: Box<EngineError>,
    },
}

/// Result alias of the `exec` module.
pub type Result<T> = std::result::Result<T, ExecError>;

impl ExecError {
    /// A failure reading another filesystem at `at`.
    pub fn read_source(
        at: &super::At<'_>,
        path: &str,
        source: super::outputs::FilesError,
    ) -> ExecError {
        ExecError::ReadSource {
            stage: at.stage(),
            line: at.line,
            path: path.to_string(),
            source: Box::new(source),
        }
    }

    /// Whether this error is (or comes from) a cancellation.
    pub fn is_cancelled(&self) -> bool {
        match self {
            ExecError::Cancelled => true,
            ExecError::Engine { source, .. } | ExecError::EngineOp { source, .. } => {
                matches!(**source, EngineError::Cancelled { .. })
            }
            _ => false,
        }
    }
}

impl From<crate::dockerfile::ParseError> for ExecError {
    fn from(e: crate::dockerfile::ParseError) -> Self {
        ExecError::Parse(Box::new(e))
    }
}

impl From<crate::plan::PlanError> for ExecError {
    fn from(e: crate::plan::PlanError) -> Self {
        ExecError::Plan(Box::new(e))
    }
}
