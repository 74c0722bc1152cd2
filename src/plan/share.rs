//! Shared prefixes: the steps of a stage before its first use of a target-dependent value
//! are the same for every target, so they run once.
//!
//! After the graph is built, jobs of one stage that start from the same base on the same
//! run platform (a `FROM --platform=$BUILDPLATFORM` build stage, once per target) are
//! compared step by step. Their longest common prefix (equal instructions, equal ARG
//! values, equal sources) becomes a job of its own, and each of them keeps only its own
//! steps on top of it (`FROM` that prefix job). A prefix without a filesystem step
//! (only ARG, ENV, ...) is not worth a job and is left alone.
//!
//! Pure; ids are renumbered so jobs stay topologically ordered with `jobs[i].id == i`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::key::CacheKey;
use super::{Base, BuildPlan, Job, JobId, Source, Step};
use crate::dockerfile::Instruction;

/// What a prefix job's key hashes.
#[derive(Serialize)]
struct PrefixKey<'a> {
    shared_prefix_of: &'a CacheKey,
    steps: usize,
}

/// Splits the common prefix of sibling jobs into a job of its own.
pub fn share_prefixes(plan: BuildPlan) -> BuildPlan {
    let mut plan = plan;
    loop {
        let Some((members, len)) = find_group(&plan) else {
            return plan;
        };
        plan = split(plan, &members, len);
    }
}

/// The first group of sibling jobs with a useful common prefix, and its length.
fn find_group(plan: &BuildPlan) -> Option<(Vec<JobId>, usize)> {
    let mut groups: BTreeMap<(usize, String, String), Vec<JobId>> = BTreeMap::new();
    for j in &plan.jobs {
        let base = serde_json::to_string(&j.base).expect("a base serializes");
        groups
            .entry((j.stage.index, base, j.run_platform.format_all()))
            .or_default()
            .push(j.id);
    }
    for members in groups.into_values() {
        if members.len() < 2 {
            continue;
        }
        let jobs: Vec<&Job> = members.iter().map(|id| plan.job(*id)).collect();
        if !jobs.iter().any(|j| {
            j.steps
                .iter()
                .any(|s| matches!(s.instruction, Instruction::Run(_)))
        }) {
            continue;
        }
        let len = common_prefix(&jobs);
        let worth = jobs[0].steps[..len].iter().any(|s| {
            matches!(
                s.instruction,
                Instruction::Run(_)
                    | Instruction::Copy(_)
                    | Instruction::Add(_)
                    | Instruction::Workdir(_)
            )
        });
        // A full match would be one job already (the graph dedups equal instances).
        if worth && jobs.iter().all(|j| len < j.steps.len()) {
            return Some((members, len));
        }
    }
    None
}

fn common_prefix(jobs: &[&Job]) -> usize {
    let first = &jobs[0].steps;
    (0..first.len())
        .take_while(|&i| jobs.iter().all(|j| j.steps.get(i) == Some(&first[i])))
        .count()
}

/// Puts a new job holding `members`' first `len` steps before the first member.
fn split(plan: BuildPlan, members: &[JobId], len: usize) -> BuildPlan {
    let first = members[0];
    let template = plan.job(first).clone();
    let prefix_steps: Vec<Step> = template.steps[..len].to_vec();
    let mut prefix_deps: BTreeSet<JobId> = BTreeSet::new();
    if let Base::Stage { job } = &template.base {
        prefix_deps.insert(*job);
    }
    for s in &prefix_steps {
        for src in s.from.iter().chain(s.mount_from.iter().flatten()) {
            if let Source::Stage { job } = src {
                prefix_deps.insert(*job);
            }
        }
    }
    let mut platforms = Vec::new();
    for t in &plan.targets {
        if members
            .iter()
            .any(|m| plan.job(*m).platforms.contains(&t.platform))
        {
            platforms.push(t.platform.clone());
        }
    }
    // New ids: the prefix takes `first`'s place, everything from there shifts by one.
    let shift = |id: JobId| if id >= first { JobId(id.0 + 1) } else { id };
    let prefix_id = first;
    let prefix = Job {
        id: prefix_id,
        stage: template.stage.clone(),
        platforms,
        run_platform: template.run_platform.clone(),
        mode: template.mode,
        reason: template.reason.clone(),
        base: remap_base(&template.base, &shift),
        steps: prefix_steps.iter().map(|s| remap_step(s, &shift)).collect(),
        deps: prefix_deps.iter().map(|d| shift(*d)).collect(),
        key: CacheKey::of(&PrefixKey {
            shared_prefix_of: &template.key,
            steps: len,
        }),
        engine: None,
    };
    let mut jobs = Vec::with_capacity(plan.jobs.len() + 1);
    for j in plan.jobs {
        if j.id == first {
            jobs.push(prefix.clone());
        }
        let mut j2 = Job {
            id: shift(j.id),
            base: remap_base(&j.base, &shift),
            steps: j.steps.iter().map(|s| remap_step(s, &shift)).collect(),
            deps: j.deps.iter().map(|d| shift(*d)).collect(),
            ..j
        };
        if members.contains(&j.id) {
            j2.base = Base::Stage { job: prefix_id };
            j2.steps.drain(..len);
            let mut deps: BTreeSet<JobId> = BTreeSet::from([prefix_id]);
            for s in &j2.steps {
                for src in s.from.iter().chain(s.mount_from.iter().flatten()) {
                    if let Source::Stage { job } = src {
                        deps.insert(*job);
                    }
                }
            }
            j2.deps = deps.into_iter().collect();
        }
        jobs.push(j2);
    }
    let targets = plan
        .targets
        .into_iter()
        .map(|mut t| {
            t.final_job = shift(t.final_job);
            t
        })
        .collect();
    BuildPlan {
        jobs,
        targets,
        ..plan
    }
}

fn remap_base(b: &Base, shift: &dyn Fn(JobId) -> JobId) -> Base {
    match b {
        Base::Stage { job } => Base::Stage { job: shift(*job) },
        other => other.clone(),
    }
}

fn remap_source(s: &Source, shift: &dyn Fn(JobId) -> JobId) -> Source {
    match s {
        Source::Stage { job } => Source::Stage { job: shift(*job) },
        other => other.clone(),
    }
}

fn remap_step(s: &Step, shift: &dyn Fn(JobId) -> JobId) -> Step {
    Step {
        from: s.from.as_ref().map(|f| remap_source(f, shift)),
        mount_from: s
            .mount_from
            .iter()
            .map(|m| m.as_ref().map(|f| remap_source(f, shift)))
            .collect(),
        ..s.clone()
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{plan, Base, Mode, PlanOptions};
    use crate::platform::{Catalog, Platform};

    fn planned(df: &str, targets: &[&str]) -> crate::plan::BuildPlan {
        let df = crate::dockerfile::parse(df).unwrap();
        let opts = PlanOptions {
            targets: targets
                .iter()
                .map(|p| Platform::parse(p).unwrap())
                .collect(),
            build_platform: Platform::parse("linux/amd64").unwrap(),
            ..PlanOptions::default()
        };
        plan(&df, &opts, &Catalog::embedded()).unwrap()
    }

    const GO: &str = "FROM --platform=$BUILDPLATFORM golang AS build\nWORKDIR /src\n\
        COPY go.mod ./\nRUN go mod download\nCOPY . .\nARG TARGETOS TARGETARCH\n\
        RUN GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app\n\
        FROM scratch\nCOPY --from=build /out/app /app\n";

    #[test]
    fn the_target_independent_steps_run_once() {
        let p = planned(GO, &["linux/amd64", "linux/arm64", "linux/arm/v7"]);
        let builds: Vec<_> = p
            .jobs
            .iter()
            .filter(|j| j.stage.to_string() == "build")
            .collect();
        assert_eq!(builds.len(), 4, "one prefix + one per target");
        let prefix = builds[0];
        assert_eq!(prefix.steps.len(), 5, "WORKDIR, COPY, RUN, COPY, ARG");
        assert_eq!(prefix.platforms.len(), 3);
        assert_eq!(prefix.mode, Mode::Native);
        for b in &builds[1..] {
            assert_eq!(b.base, Base::Stage { job: prefix.id });
            assert_eq!(b.steps.len(), 1);
            assert_eq!(b.deps, vec![prefix.id]);
        }
        for (i, j) in p.jobs.iter().enumerate() {
            assert_eq!(j.id.0, i);
            assert!(j.deps.iter().all(|d| d.0 < i), "topological");
        }
        for t in &p.targets {
            assert_eq!(p.job(t.final_job).stage.index, 1);
        }
    }

    #[test]
    fn a_prefix_without_filesystem_steps_is_left_alone() {
        let df = "FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH\n\
                  RUN echo $TARGETARCH\n";
        let p = planned(df, &["linux/amd64", "linux/arm64"]);
        assert_eq!(p.jobs.len(), 2);
        assert!(p.jobs.iter().all(|j| j.base != Base::Scratch));
    }

    #[test]
    fn one_target_has_nothing_to_share() {
        let p = planned(GO, &["linux/arm64"]);
        assert_eq!(p.jobs.len(), 2);
    }
}
