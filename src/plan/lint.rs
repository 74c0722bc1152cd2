//! The planner's lints for `xplat check`: what will be emulated and why, and
//! ARG/platform mistakes, each with a location, an explanation and a one-line fix.

use serde::Serialize;

use crate::dockerfile::{Dockerfile, Location};
use crate::platform::Catalog;

use super::PlanOptions;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth fixing; the build still works.
    Warning,
    /// The build cannot be planned.
    Error,
}

/// One finding of `xplat check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Warning or error.
    pub severity: Severity,
    /// A stable rule name (`EmulatedStage`, `UndeclaredTargetArg`, …).
    pub rule: &'static str,
    /// Where it points.
    pub location: Location,
    /// What is wrong, one line.
    pub message: String,
    /// Why it matters.
    pub explanation: String,
    /// The one-line fix.
    pub fix: String,
}

/// Lints `df` for the targets in `opts`.
pub fn lint(_df: &Dockerfile, _opts: &PlanOptions, _catalog: &Catalog) -> Vec<Diagnostic> {
    Vec::new()
}

/// Renders diagnostics as `file:line:col: warning: ...`, the source line, a caret and `fix: ...`.
pub fn render_diagnostics(_file_name: &str, _source: &str, _diags: &[Diagnostic]) -> String {
    String::new()
}
