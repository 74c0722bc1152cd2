//! The text `xplat plan` prints for people: one row per job (stage, the target
//! platforms it serves, the platform it runs as, its mode, what it waits for),
//! then per target the job whose result is its image, then a summary line.

use super::{BuildPlan, Mode, Reason};
use crate::platform::Platform;

/// A job's stage, with the steps it runs when its stage is split in a shared prefix and
/// per-target parts (`build (steps 1-4)`, `build (step 5)`).
fn stage_cell(plan: &BuildPlan, job: &super::Job) -> String {
    let same_stage = |id: super::JobId| plan.job(id).stage == job.stage;
    let offset = match &job.base {
        super::Base::Stage { job: b } if same_stage(*b) => plan.job(*b).steps.len(),
        _ => 0,
    };
    let is_prefix = plan.jobs.iter().any(|k| {
        k.stage == job.stage && matches!(k.base, super::Base::Stage { job: b } if b == job.id)
    });
    if offset == 0 && !is_prefix {
        return job.stage.to_string();
    }
    let (first, last) = (offset + 1, offset + job.steps.len());
    if first == last {
        format!("{} (step {first})", job.stage)
    } else {
        format!("{} (steps {first}-{last})", job.stage)
    }
}

/// Renders the plan as an aligned table, the images per target and a summary. With
/// several engines an ENGINE column says where each job runs.
pub fn render_text(plan: &BuildPlan) -> String {
    let placed = plan.jobs.iter().any(|j| j.engine.is_some());
    let header = ["JOB", "STAGE", "PLATFORMS", "RUNS AS", "MODE", "WAITS FOR"];
    let mut rows: Vec<Vec<String>> = vec![header.map(String::from).to_vec()];
    if placed {
        rows[0].insert(5, "ENGINE".into());
    }
    for job in &plan.jobs {
        let mode = match (&job.mode, &job.reason) {
            (Mode::Emulated, Reason::RunOnForeignPlatform { line, .. }) => {
                format!("emulated (RUN at line {line})")
            }
            (m, _) => m.to_string(),
        };
        let waits = if job.deps.is_empty() {
            "-".to_string()
        } else {
            job.deps
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let served = if job.platforms.len() == plan.targets.len() && plan.targets.len() > 1 {
            format!("all ({})", Platform::format_list(&job.platforms))
        } else {
            Platform::format_list(&job.platforms)
        };
        let mut row = vec![
            job.id.to_string(),
            stage_cell(plan, job),
            served,
            job.run_platform.to_string(),
            mode,
            waits,
        ];
        if placed {
            row.insert(5, job.engine.clone().unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    let mut widths = vec![0usize; rows[0].len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push('\n');
    let pw = plan
        .targets
        .iter()
        .map(|t| t.platform.to_string().len())
        .max()
        .unwrap_or(0);
    for t in &plan.targets {
        let job = plan.job(t.final_job);
        let built_on = match &t.build_platform {
            Some(bp) => format!(", BUILDPLATFORM {bp}"),
            None => String::new(),
        };
        out.push_str(&format!(
            "{:<pw$}  image from {} ({}){built_on}\n",
            t.platform.to_string(),
            job.id,
            job.stage
        ));
    }
    if !plan.unused_build_args.is_empty() {
        out.push_str(&format!(
            "\nwarning: build args not consumed by any planned stage: {}\n",
            plan.unused_build_args.join(", ")
        ));
    }
    let (n, a, e) = plan.mode_counts();
    out.push_str(&format!(
        "\n{} job{}: {n} native, {a} assembled, {e} emulated\n",
        plan.jobs.len(),
        if plan.jobs.len() == 1 { "" } else { "s" }
    ));
    out
}
