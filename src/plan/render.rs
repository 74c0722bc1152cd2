//! The text `xplat plan` prints for people.

use super::BuildPlan;

/// One row per job, then per target the job yielding its image, then a summary line.
pub fn render_text(_plan: &BuildPlan) -> String {
    String::new()
}
