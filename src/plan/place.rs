//! Placement: which engine runs each engine job when several engines are configured
//! (issue 12). Pure: the engines come in as [`EngineSlot`]s (what the user declared and,
//! at build time, what each engine said about itself); the plan's jobs get
//! [`super::Job::engine`].
//!
//! The rules, in order:
//! 1. Candidates: the engines that run the job's platform natively. Only when none does,
//!    the engines that can emulate it (binfmt handlers; every engine when that is not
//!    known). Assembled jobs run nowhere.
//! 2. A job built `FROM` another engine job follows its parent when the parent's engine
//!    is a candidate and is no busier than the others, so its filesystem is at hand (a
//!    live container handed over, or a local image). A second child of the same parent
//!    goes where capacity is freest, and replays the parent's steps there.
//! 3. Otherwise the least loaded candidate: fewest jobs per CPU, the first engine on a tie.
//!
//! Modes stay decided by [`super::mode`]; this only says where.

use serde::Serialize;

use super::{Base, BuildPlan, Mode};
use crate::platform::Platform;

/// One engine as the planner sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EngineSlot {
    /// Its name (`[engines.NAME]`, `--engine NAME=…`).
    pub name: String,
    /// The platforms it runs natively, best first; the first is the BUILDPLATFORM of the
    /// targets it builds.
    pub native: Vec<Platform>,
    /// Platforms it runs only through binfmt/QEMU; `None` when not known (offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulated: Option<Vec<Platform>>,
    /// Its CPUs, the capacity jobs are spread by; 0 when not known (counted as 1).
    pub cpus: u32,
}

impl EngineSlot {
    /// Whether it runs `p` natively (its platforms, with containerd's compatibility:
    /// an amd64 engine runs 386, an arm64 one arm/v7).
    pub fn runs_natively(&self, p: &Platform) -> bool {
        self.native.iter().any(|n| n.can_run(p))
    }

    /// Whether it can run `p` under emulation (unknown counts as yes).
    pub fn can_emulate(&self, p: &Platform) -> bool {
        match &self.emulated {
            Some(list) => list.iter().any(|e| e.matches(p)),
            None => true,
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.cpus.max(1))
    }
}

/// The engines that can run a job of platform `p`, by index: the native ones, else those
/// that emulate it, else all of them (the engine then says why it cannot).
pub fn candidates(engines: &[EngineSlot], p: &Platform) -> Vec<usize> {
    let native: Vec<usize> = (0..engines.len())
        .filter(|i| engines[*i].runs_natively(p))
        .collect();
    if !native.is_empty() {
        return native;
    }
    let emulated: Vec<usize> = (0..engines.len())
        .filter(|i| engines[*i].can_emulate(p))
        .collect();
    if !emulated.is_empty() {
        return emulated;
    }
    (0..engines.len()).collect()
}

/// Sets [`super::Job::engine`] on every engine job; nothing when `engines` is empty.
pub fn place(plan: &mut BuildPlan, engines: &[EngineSlot]) {
    if engines.is_empty() {
        return;
    }
    let mut load = vec![0usize; engines.len()];
    let mut placed: Vec<Option<usize>> = vec![None; plan.jobs.len()];
    // Parents that already have a child on their own engine.
    let mut followed = vec![false; plan.jobs.len()];
    for i in 0..plan.jobs.len() {
        let job = &plan.jobs[i];
        if job.mode == Mode::Assembled {
            continue;
        }
        let cands = candidates(engines, &job.run_platform);
        let cost = |e: usize| (load[e] + 1) as f64 / engines[e].capacity();
        let best = cands
            .iter()
            .copied()
            .min_by(|a, b| cost(*a).total_cmp(&cost(*b)).then(a.cmp(b)))
            .expect("candidates are never empty");
        let parent = match &job.base {
            Base::Stage { job: p } => placed[p.0].map(|e| (p.0, e)),
            _ => None,
        };
        let pick = match parent {
            Some((p, e)) if cands.contains(&e) && (!followed[p] || cost(e) <= cost(best)) => {
                followed[p] = true;
                e
            }
            _ => best,
        };
        load[pick] += 1;
        placed[i] = Some(pick);
        plan.jobs[i].engine = Some(engines[pick].name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, PlanOptions};
    use crate::platform::Catalog;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap().normalized()
    }

    fn slot(name: &str, native: &[&str], cpus: u32) -> EngineSlot {
        EngineSlot {
            name: name.into(),
            native: native.iter().map(|n| p(n)).collect(),
            emulated: None,
            cpus,
        }
    }

    fn planned(df: &str, targets: &[&str], engines: Vec<EngineSlot>) -> BuildPlan {
        let opts = PlanOptions {
            targets: targets.iter().map(|t| p(t)).collect(),
            build_platform: p("linux/amd64"),
            engines,
            ..Default::default()
        };
        plan(
            &crate::dockerfile::parse(df).unwrap(),
            &opts,
            &Catalog::embedded(),
        )
        .unwrap()
    }

    /// (stage, run platform, mode, engine) of every job.
    fn rows(plan: &BuildPlan) -> Vec<(String, String, Mode, Option<String>)> {
        plan.jobs
            .iter()
            .map(|j| {
                (
                    j.stage.to_string(),
                    j.run_platform.to_string(),
                    j.mode,
                    j.engine.clone(),
                )
            })
            .collect()
    }

    const C: &str = "ARG BUILDER=builder\nFROM --platform=$BUILDPLATFORM $BUILDER AS build\n\
                     ARG TARGETARCH\nRUN make ARCH=$TARGETARCH\n\
                     FROM busybox\nCOPY --from=build /out/app /app\n";

    #[test]
    fn a_native_arm64_engine_builds_the_arm64_target_with_its_own_platform() {
        let plan = planned(
            C,
            &["linux/amd64", "linux/arm64"],
            vec![
                slot("local", &["linux/amd64"], 2),
                slot("arm", &["linux/arm64"], 4),
            ],
        );
        let engine = |platform: &str| {
            rows(&plan)
                .into_iter()
                .find(|r| r.0 == "build" && r.1 == platform)
                .map(|r| (r.2, r.3))
        };
        assert_eq!(
            engine("linux/amd64"),
            Some((Mode::Native, Some("local".into())))
        );
        assert_eq!(
            engine("linux/arm64"),
            Some((Mode::Native, Some("arm".into())))
        );
        // The arm64 target's BUILDPLATFORM is the arm engine's.
        assert_eq!(plan.targets[1].build_platform, Some(p("linux/arm64")));
        assert_eq!(plan.targets[0].build_platform, None);
        // Finals have no RUN: assembled, on no engine.
        assert!(rows(&plan)
            .iter()
            .filter(|r| r.2 == Mode::Assembled)
            .all(|r| r.3.is_none()));
        assert_eq!(plan.mode_counts().2, 0, "nothing emulated");
    }

    #[test]
    fn two_engines_of_the_build_platform_are_both_used() {
        let plan = planned(
            C,
            &["linux/amd64", "linux/arm64"],
            vec![
                slot("a", &["linux/amd64"], 2),
                slot("b", &["linux/amd64"], 2),
            ],
        );
        let engines: Vec<Option<String>> = plan
            .jobs
            .iter()
            .filter(|j| j.mode != Mode::Assembled)
            .map(|j| j.engine.clone())
            .collect();
        assert_eq!(engines, [Some("a".into()), Some("b".into())]);
    }

    #[test]
    fn capacity_decides_where_the_free_cpus_are() {
        // Three build jobs (one per target), all amd64: the 4-CPU engine takes two.
        let plan = planned(
            C,
            &["linux/amd64", "linux/arm64", "linux/arm/v7"],
            vec![
                slot("small", &["linux/amd64"], 2),
                slot("big", &["linux/amd64"], 4),
            ],
        );
        let on = |name: &str| {
            plan.jobs
                .iter()
                .filter(|j| j.engine.as_deref() == Some(name))
                .count()
        };
        assert_eq!((on("big"), on("small")), (2, 1));
    }

    #[test]
    fn a_foreign_run_is_emulated_only_where_no_engine_runs_it() {
        let df = "FROM alpine\nRUN apk add curl\n";
        let both = ["linux/amd64", "linux/arm64"];
        let plan = planned(df, &both, vec![slot("local", &["linux/amd64"], 2)]);
        assert_eq!(
            plan.mode_counts().2,
            1,
            "arm64 emulated with one amd64 engine"
        );
        assert_eq!(plan.jobs[1].engine.as_deref(), Some("local"));
        let plan = planned(
            df,
            &both,
            vec![
                slot("local", &["linux/amd64"], 2),
                slot("arm", &["linux/arm64"], 2),
            ],
        );
        assert_eq!(plan.mode_counts().2, 0);
        assert_eq!(plan.jobs[1].engine.as_deref(), Some("arm"));
    }

    #[test]
    fn emulation_goes_to_an_engine_that_has_the_handler() {
        let mut no_qemu = slot("a", &["linux/amd64"], 8);
        no_qemu.emulated = Some(vec![]);
        let mut qemu = slot("b", &["linux/amd64"], 1);
        qemu.emulated = Some(vec![p("linux/arm64")]);
        let plan = planned(
            "FROM alpine\nRUN true\n",
            &["linux/arm64"],
            vec![no_qemu, qemu],
        );
        assert_eq!(plan.jobs[0].mode, Mode::Emulated);
        assert_eq!(plan.jobs[0].engine.as_deref(), Some("b"));
    }

    #[test]
    fn a_child_stage_follows_its_parent() {
        let df = "FROM alpine AS base\nRUN apk add curl\nFROM base\nRUN true\n";
        let plan = planned(
            df,
            &["linux/amd64"],
            vec![
                slot("a", &["linux/amd64"], 1),
                slot("b", &["linux/amd64"], 8),
            ],
        );
        assert_eq!(plan.jobs[0].engine.as_deref(), Some("b"));
        assert_eq!(plan.jobs[1].engine.as_deref(), Some("b"), "follows base");
    }

    #[test]
    fn no_engines_no_placement() {
        let plan = planned(C, &["linux/amd64", "linux/arm64"], vec![]);
        assert!(plan.jobs.iter().all(|j| j.engine.is_none()));
        assert!(plan.targets.iter().all(|t| t.build_platform.is_none()));
    }
}
