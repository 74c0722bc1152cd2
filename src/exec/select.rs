//! Which engine jobs must run, given the caches. Pure: the plan, the chain keys, the
//! engine's checkpoints and what the output cache holds go in; a decision per job comes
//! out, tested without Docker.
//!
//! What a job's consumers need from it ([`Needs`]): its filesystem, for the engine jobs
//! built `FROM` it; the read roots of `COPY --from` and bind mounts; its image, when it is
//! a final the outputs export or a stage result to tag. Walking the jobs from the last
//! (consumers before what they consume): a job runs when something needed is in no cache:
//! no checkpoint at its end key for an image or a running consumer's base, or recorded
//! roots missing with no checkpoint to read them from. A consumer that does not run needs
//! nothing, so a warm build runs nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::outputs::read_root;
use super::Fs;
use crate::dockerfile::Instruction;
use crate::plan::{Base, BuildPlan, JobId, Mode, Source};

/// What the consumers of one job need from it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Engine jobs built `FROM` it (all of them, running or not).
    pub from_consumers: Vec<JobId>,
    /// Read roots, by consumer.
    pub roots: BTreeMap<JobId, BTreeSet<String>>,
    /// Its image is needed (a final exported from the engine, an assembled job's base,
    /// a stage result to tag).
    pub image: bool,
}

/// Whether a job runs in the engine.
pub fn in_engine(plan: &BuildPlan, id: JobId) -> bool {
    plan.job(id).mode != Mode::Assembled
}

/// The needs of every job. `image_needed` marks jobs whose image an output wants (the
/// caller adds the finals it exports and the stage results it tags).
pub fn needs(plan: &BuildPlan, image_needed: &BTreeSet<JobId>) -> Vec<Needs> {
    let mut out = vec![Needs::default(); plan.jobs.len()];
    for k in &plan.jobs {
        let engine_k = in_engine(plan, k.id);
        if let Base::Stage { job } = &k.base {
            if engine_k {
                out[job.0].from_consumers.push(k.id);
            } else if in_engine(plan, *job) {
                out[job.0].image = true;
            }
        }
        for s in &k.steps {
            if let (Instruction::Copy(c), Some(Source::Stage { job })) = (&s.instruction, &s.from) {
                let roots = out[job.0].roots.entry(k.id).or_default();
                roots.extend(c.sources.iter().map(|src| read_root(src)));
            }
            if let Instruction::Run(r) = &s.instruction {
                for (m, src) in r.mounts.iter().zip(&s.mount_from) {
                    if let Some(Source::Stage { job }) = src {
                        let root = read_root(m.source.as_deref().unwrap_or("/"));
                        out[job.0].roots.entry(k.id).or_default().insert(root);
                    }
                }
            }
        }
    }
    for id in image_needed {
        out[id.0].image = true;
    }
    out
}

/// The decision for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run it (its steps may still be found in the step cache).
    Run,
    /// Do not run it; this is its filesystem (a checkpoint, or nothing needed).
    Satisfied(Fs),
    /// An assembled job: not the executor's.
    Assembled,
}

/// What [`select`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// By job id.
    pub decisions: Vec<Decision>,
    /// Roots each job must provide to the consumers that read them this build.
    pub roots: Vec<BTreeSet<String>>,
}

impl Selection {
    /// Whether the job runs.
    pub fn runs(&self, id: JobId) -> bool {
        self.decisions[id.0] == Decision::Run
    }

    /// How many jobs run.
    pub fn count(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| **d == Decision::Run)
            .count()
    }
}

/// Decides which jobs run. `checkpoint(job, key)` gives the image committed with that
/// step-cache key on the job's engine; `recorded(key, roots)` says whether the output
/// cache holds them all.
pub fn select(
    plan: &BuildPlan,
    key_out: &dyn Fn(JobId) -> String,
    needs: &[Needs],
    checkpoint: &dyn Fn(JobId, &str) -> Option<String>,
    recorded: &dyn Fn(&str, &BTreeSet<String>) -> bool,
) -> Selection {
    let n = plan.jobs.len();
    let mut decisions = vec![Decision::Assembled; n];
    let mut roots = vec![BTreeSet::new(); n];
    for j in (0..n).rev() {
        let id = JobId(j);
        if !in_engine(plan, id) {
            continue;
        }
        // Roots read by consumers that will read this build: assembled consumers, and
        // engine consumers that run.
        let mut wanted = BTreeSet::new();
        for (consumer, r) in &needs[j].roots {
            if !in_engine(plan, *consumer) || decisions[consumer.0] == Decision::Run {
                wanted.extend(r.iter().cloned());
            }
        }
        let base_of_runner = needs[j]
            .from_consumers
            .iter()
            .any(|k| decisions[k.0] == Decision::Run);
        let key = key_out(id);
        let ckpt = checkpoint(id, &key);
        let must_run = match &ckpt {
            Some(_) => false,
            None => needs[j].image || base_of_runner || !recorded(&key, &wanted),
        };
        decisions[j] = if must_run {
            Decision::Run
        } else {
            Decision::Satisfied(ckpt.map_or(Fs::Skipped, Fs::Image))
        };
        roots[j] = wanted;
    }
    Selection { decisions, roots }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, PlanOptions};
    use crate::platform::{Catalog, Platform};

    const GO: &str = "FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETARCH\n\
                      RUN go build -o /out/app\nFROM scratch\nCOPY --from=build /out/app /app\n";

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

    fn run_with(
        p: &BuildPlan,
        images: &BTreeSet<JobId>,
        ckpts: &[&str],
        recorded: bool,
    ) -> Selection {
        let n = needs(p, images);
        let key = |id: JobId| format!("k{}", id.0);
        let ck = |_: JobId, k: &str| ckpts.contains(&k).then(|| format!("img-{k}"));
        let rec = |_: &str, _: &BTreeSet<String>| recorded;
        select(p, &key, &n, &ck, &rec)
    }

    #[test]
    fn a_cold_build_runs_the_build_stages_and_a_warm_one_nothing() {
        let p = planned(GO, &["linux/amd64", "linux/arm64"]);
        let cold = run_with(&p, &BTreeSet::new(), &[], false);
        let ran: Vec<String> = p
            .jobs
            .iter()
            .filter(|j| cold.runs(j.id))
            .map(|j| j.stage.to_string())
            .collect();
        assert_eq!(ran, ["build", "build"], "one per target; finals assembled");
        let build = p
            .jobs
            .iter()
            .find(|j| j.stage.to_string() == "build")
            .unwrap();
        assert_eq!(
            cold.roots[build.id.0],
            BTreeSet::from(["/out/app".to_string()])
        );
        let warm = run_with(&p, &BTreeSet::new(), &[], true);
        assert_eq!(warm.count(), 0);
        assert_eq!(warm.decisions[build.id.0], Decision::Satisfied(Fs::Skipped));
    }

    #[test]
    fn an_exported_final_runs_unless_its_checkpoint_exists() {
        let df = "FROM alpine AS base\nRUN apk add curl\nFROM base\nRUN true\n";
        let p = planned(df, &["linux/amd64"]);
        let fin = p.targets[0].final_job;
        let images = BTreeSet::from([fin]);
        let cold = run_with(&p, &images, &[], true);
        assert_eq!(cold.count(), 2, "the final and its base");
        let key = format!("k{}", fin.0);
        let warm = run_with(&p, &images, &[key.as_str()], true);
        assert_eq!(warm.count(), 0);
        assert_eq!(
            warm.decisions[fin.0],
            Decision::Satisfied(Fs::Image(format!("img-{key}")))
        );
        // The base is not needed when the final is satisfied.
        let base = p.jobs.iter().find(|j| j.id != fin).unwrap().id;
        assert_eq!(warm.decisions[base.0], Decision::Satisfied(Fs::Skipped));
    }

    #[test]
    fn a_running_consumer_needs_its_base() {
        let df = "FROM alpine AS base\nRUN apk add curl\nFROM base\nRUN true\n";
        let p = planned(df, &["linux/amd64"]);
        let fin = p.targets[0].final_job;
        let base = p.jobs.iter().find(|j| j.id != fin).unwrap().id;
        let base_key = format!("k{}", base.0);
        // Final not cached, base checkpointed: only the final runs.
        let s = run_with(&p, &BTreeSet::from([fin]), &[base_key.as_str()], true);
        assert!(s.runs(fin));
        assert!(!s.runs(base));
    }
}
