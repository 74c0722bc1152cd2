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
    /// An instruction's argument is invalid (e.g. a bad port, a relative VOLUME).
    #[error("{stage}, line {line}: {message}")]
    Invalid {
        /// Stage name or index.
        stage: String,
        /// Dockerfile line.
        line: usize,
        /// What is wrong.
        message: String,
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
