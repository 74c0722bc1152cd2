//! [`PlanError`]: every way planning fails, each with the Dockerfile location it
//! points at (except option errors, which come from the command line).

use crate::dockerfile::expand::ExpandError;
use crate::dockerfile::{Location, ParseError};
use crate::platform::PlatformError;

/// This module's result type.
pub type Result<T> = std::result::Result<T, PlanError>;

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No target platform was given.
    #[error("no target platform given")]
    NoTargets,
    /// Two target platforms are the same after normalization.
    #[error("target platform {platform} is given twice")]
    DuplicateTarget {
        /// The normalized platform.
        platform: String,
    },
    /// `--target` names no stage.
    #[error("target stage {name:?} not found{}", hint(suggestion))]
    UnknownTarget {
        /// The name given.
        name: String,
        /// The closest stage name, if any is close.
        suggestion: Option<String>,
    },
    /// `COPY --from=N` / `--mount from=N` with an index past the last stage.
    #[error("invalid stage index {index} in {keyword} (the file has {stages} stages)")]
    InvalidStageIndex {
        /// The index given.
        index: usize,
        /// `COPY` or `RUN`.
        keyword: &'static str,
        /// How many stages there are.
        stages: usize,
        /// The instruction.
        location: Location,
    },
    /// Stages that depend on each other in a loop.
    #[error("circular dependency between stages: {}", cycle.join(" -> "))]
    Cycle {
        /// The stages of the loop, first one repeated at the end.
        cycle: Vec<String>,
        /// The reference that closes the loop.
        location: Location,
    },
    /// `FROM ${X}` that expands to nothing.
    #[error("base name ({expr}) should not be blank")]
    BlankBaseName {
        /// The base as written.
        expr: String,
        /// The FROM line.
        location: Location,
    },
    /// `FROM --platform=$X` that expands to nothing.
    #[error("empty platform value from expression {expr}{}", hint(suggestion))]
    EmptyPlatform {
        /// The value as written.
        expr: String,
        /// A declared name close to the unset one.
        suggestion: Option<String>,
        /// The FROM line.
        location: Location,
    },
    /// `FROM --platform=` whose expanded value is not a platform.
    #[error("failed to parse platform {expr} (expanded to {value:?}): {source}")]
    InvalidPlatform {
        /// The value as written.
        expr: String,
        /// The value after expansion.
        value: String,
        /// Why it does not parse (boxed: it is large and rare).
        source: Box<PlatformError>,
        /// The FROM line.
        location: Location,
    },
    /// A word that cannot be expanded (bad substitution, `${X:?}` unset, …).
    #[error("expanding {keyword} word {word:?}: {source}")]
    Expand {
        /// The instruction keyword.
        keyword: &'static str,
        /// The word as written.
        word: String,
        /// What went wrong.
        source: ExpandError,
        /// The instruction.
        location: Location,
    },
    /// An ONBUILD trigger of the base (image config or parent stage) that does not parse.
    #[error("ONBUILD trigger {trigger:?} of the base: {source}")]
    InvalidTrigger {
        /// The trigger text.
        trigger: String,
        /// Why it does not parse (boxed: it is large and rare).
        source: Box<ParseError>,
        /// The FROM line (where BuildKit runs triggers).
        location: Location,
    },
    /// `RUN --mount` whose target (none, or relative, joined to the WORKDIR) is `/`.
    #[error("invalid mount target {target:?} (mount {mount} of RUN: no target= and WORKDIR /, or a target that resolves to /)")]
    InvalidMountTarget {
        /// The target as resolved.
        target: String,
        /// Which `--mount`, from 1.
        mount: usize,
        /// The RUN.
        location: Location,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

impl PlanError {
    /// Where in the Dockerfile the error points, when it comes from the file.
    pub fn location(&self) -> Option<Location> {
        use PlanError::*;
        match self {
            NoTargets | DuplicateTarget { .. } | UnknownTarget { .. } => None,
            InvalidStageIndex { location, .. }
            | Cycle { location, .. }
            | BlankBaseName { location, .. }
            | EmptyPlatform { location, .. }
            | InvalidPlatform { location, .. }
            | Expand { location, .. }
            | InvalidTrigger { location, .. }
            | InvalidMountTarget { location, .. } => Some(*location),
        }
    }
}
