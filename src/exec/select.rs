//! Which jobs of a plan the engine must run when the final images are made as OCI images
//! (`ops::build_images`): final stages with no RUN are assembled without the engine, so
//! only the jobs their assembly reads from, the finals that have RUN, and everything
//! those depend on run. Pure: tested on planner output without Docker.
//!
//! The walk starts at each target's final job. A job without RUN is assembled: its
//! `COPY --from` stages must be engine images (they are read through the engine), and its
//! base stage is either assembled too (the walk continues) or has RUN, in which case it
//! runs and its image is exported. A job with RUN runs and is exported. Everything a
//! running job depends on runs as well.

use std::collections::BTreeSet;

use crate::dockerfile::Instruction;
use crate::plan::{Base, BuildPlan, Job, JobId, Mode, Source};

/// The jobs the engine runs, and those whose engine image becomes (part of) a final image.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EngineJobs {
    /// `run[i]`: job `i` runs in the engine.
    pub run: Vec<bool>,
    /// Jobs whose engine image is exported (finals with RUN, and bases with RUN of
    /// assembled finals), sorted.
    pub export: BTreeSet<JobId>,
}

impl EngineJobs {
    /// Every job runs and nothing is exported (the engine-only build).
    pub fn all(plan: &BuildPlan) -> EngineJobs {
        EngineJobs {
            run: vec![true; plan.jobs.len()],
            export: BTreeSet::new(),
        }
    }

    /// How many jobs run.
    pub fn count(&self) -> usize {
        self.run.iter().filter(|r| **r).count()
    }
}

/// A job is composed without running anything when it has no RUN (or the planner
/// marked it `Assembled`).
pub fn is_assembled(job: &Job) -> bool {
    job.mode == Mode::Assembled
        || !job
            .steps
            .iter()
            .any(|s| matches!(s.instruction, Instruction::Run(_)))
}

/// The jobs to run in the engine so that every target's image can be assembled or exported.
pub fn engine_jobs(plan: &BuildPlan) -> EngineJobs {
    let mut roots = BTreeSet::new();
    let mut export = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for t in &plan.targets {
        let mut cur = t.final_job;
        loop {
            if !seen.insert(cur) {
                break;
            }
            let job = plan.job(cur);
            if !is_assembled(job) {
                roots.insert(cur);
                export.insert(cur);
                break;
            }
            for s in &job.steps {
                if let Some(Source::Stage { job }) = &s.from {
                    roots.insert(*job);
                }
            }
            match &job.base {
                Base::Stage { job } => cur = *job,
                Base::Image { .. } | Base::Scratch => break,
            }
        }
    }
    // Jobs are topologically ordered: walking down from the last marks every dependency.
    let mut run = vec![false; plan.jobs.len()];
    for r in &roots {
        run[r.0] = true;
    }
    for i in (0..plan.jobs.len()).rev() {
        if run[i] {
            for d in &plan.jobs[i].deps {
                run[d.0] = true;
            }
        }
    }
    EngineJobs { run, export }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, PlanOptions};
    use crate::platform::{Catalog, Platform};

    fn planned(df: &str, targets: &[&str]) -> BuildPlan {
        let df = crate::dockerfile::parse(df).unwrap();
        let opts = PlanOptions {
            targets: targets
                .iter()
                .map(|p| Platform::parse(p).unwrap())
                .collect(),
            build_platform: Platform::parse("linux/amd64").unwrap(),
            build_args: Default::default(),
            target_stage: None,
            ..Default::default()
        };
        plan(&df, &opts, &Catalog::embedded()).unwrap()
    }

    fn stages(p: &BuildPlan, sel: &EngineJobs) -> Vec<String> {
        p.jobs
            .iter()
            .filter(|j| sel.run[j.id.0])
            .map(|j| format!("{}@{}", j.stage, j.run_platform))
            .collect()
    }

    const GOPING: &str = "FROM --platform=$BUILDPLATFORM golang AS build\nRUN go build\n\
                          FROM scratch\nCOPY --from=build /out/app /app\n";

    #[test]
    fn scratch_final_runs_only_the_build_stage() {
        let p = planned(GOPING, &["linux/amd64", "linux/arm64"]);
        let sel = engine_jobs(&p);
        assert_eq!(stages(&p, &sel), vec!["build@linux/amd64"]);
        assert!(sel.export.is_empty());
        assert_eq!(sel.count(), 1);
    }

    #[test]
    fn final_with_run_runs_and_is_exported_with_its_deps() {
        let df = "FROM --platform=$BUILDPLATFORM golang AS build\nRUN go build\n\
                  FROM alpine\nCOPY --from=build /out/app /app\nRUN /app --selftest\n";
        let p = planned(df, &["linux/amd64", "linux/arm64"]);
        let sel = engine_jobs(&p);
        assert_eq!(sel.count(), p.jobs.len());
        let finals: BTreeSet<JobId> = p.targets.iter().map(|t| t.final_job).collect();
        assert_eq!(sel.export, finals);
    }

    #[test]
    fn assembled_final_on_a_stage_with_run_exports_that_stage() {
        let df = "FROM alpine AS base\nRUN apk add curl\nFROM base\nCOPY a /a\n";
        let p = planned(df, &["linux/amd64"]);
        let sel = engine_jobs(&p);
        assert_eq!(stages(&p, &sel), vec!["base@linux/amd64"]);
        assert_eq!(sel.export.len(), 1);
        assert_eq!(
            p.job(*sel.export.first().unwrap()).stage.to_string(),
            "base"
        );
    }

    #[test]
    fn copy_from_an_assembled_stage_runs_that_stage() {
        let df = "FROM alpine AS files\nCOPY a /a\nFROM scratch\nCOPY --from=files /a /a\n";
        let p = planned(df, &["linux/arm64"]);
        let sel = engine_jobs(&p);
        assert_eq!(stages(&p, &sel), vec!["files@linux/arm64"]);
        assert!(sel.export.is_empty());
    }

    #[test]
    fn nothing_runs_for_a_context_only_final() {
        let p = planned("FROM busybox\nCOPY a /a\nCMD [\"sh\"]\n", &["linux/arm64"]);
        let sel = engine_jobs(&p);
        assert_eq!(sel.count(), 0);
        assert_eq!(EngineJobs::all(&p).count(), p.jobs.len());
    }
}
