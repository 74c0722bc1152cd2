//! What one container runs to produce a job's result: a start (an engine image, a base to
//! pull, the empty filesystem, or a live container handed over by the parent job) and
//! the steps to run on it: the job's own, after the steps of ancestors whose results were
//! not committed ([`super::Fs::Replay`]). Positions carry their chain keys, so the runner
//! can start at the latest checkpoint.

use super::keys::Keys;
use super::{Fs, JobOutput};
use crate::engine::ContainerId;
use crate::oci::ImageConfig;
use crate::plan::{Base, BuildPlan, Job, JobId, Step};
use crate::platform::Platform;

/// Where a program starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// An engine image (a committed result or checkpoint).
    Image(String),
    /// A base image by reference, for the program's platform.
    Base(String),
    /// The empty filesystem.
    Scratch,
    /// A live container at the end of the parent job, handed over to this one (and
    /// whether it was started).
    Live(ContainerId, bool),
}

/// One step of a program.
#[derive(Debug, Clone, Copy)]
pub struct Position<'p> {
    /// The job the step belongs to.
    pub job: &'p Job,
    /// Its index in that job's steps.
    pub index: usize,
    /// The step.
    pub step: &'p Step,
    /// The chain key after it.
    pub key: &'p str,
    /// Whether it belongs to an ancestor (replayed) rather than the job being run.
    pub replayed: bool,
}

/// A job's program.
#[derive(Debug, Clone)]
pub struct Program<'p> {
    /// The start.
    pub start: Start,
    /// The chain key at the start.
    pub start_key: String,
    /// The config at the start.
    pub start_config: ImageConfig,
    /// The platform of the filesystem.
    pub platform: Platform,
    /// The steps, in order.
    pub positions: Vec<Position<'p>>,
}

/// Builds the program of `job`: `output(id)` gives the finished ancestors' outputs and
/// `take_live(id)` hands over a live container a parent left (at most one consumer gets it).
pub fn build<'p>(
    plan: &'p BuildPlan,
    keys: &'p Keys,
    job: &'p Job,
    output: &dyn Fn(JobId) -> Option<JobOutput>,
    take_live: &dyn Fn(JobId) -> Option<(ContainerId, bool)>,
) -> Program<'p> {
    // The chain of jobs to run, from the one whose start is materialized to `job`.
    let mut chain: Vec<&Job> = vec![job];
    let mut start = None;
    let mut cur = job;
    while start.is_none() {
        match &cur.base {
            Base::Image { reference, .. } => start = Some(Start::Base(reference.clone())),
            Base::Scratch => start = Some(Start::Scratch),
            Base::Stage { job: parent } => {
                let out = output(*parent);
                let live = if std::ptr::eq(cur, job) {
                    take_live(*parent)
                } else {
                    None
                };
                match (live, out.map(|o| o.fs)) {
                    (Some((id, started)), _) => start = Some(Start::Live(id, started)),
                    (None, Some(Fs::Image(img))) => start = Some(Start::Image(img)),
                    // Replay (or not run at all: the selection only skips a base whose
                    // consumers do not run, so this is a replay too).
                    (None, _) => {
                        cur = plan.job(*parent);
                        chain.push(cur);
                    }
                }
            }
        }
    }
    let first = *chain.last().expect("the chain holds the job");
    let first_keys = keys.job(first.id);
    let mut positions = Vec::new();
    for j in chain.iter().rev() {
        let jk = keys.job(j.id);
        for (index, step) in j.steps.iter().enumerate() {
            positions.push(Position {
                job: j,
                index,
                step,
                key: &jk.steps[index],
                replayed: j.id != job.id,
            });
        }
    }
    Program {
        start: start.expect("the loop ends with a start"),
        start_key: first_keys.key_in.clone(),
        start_config: first_keys.start.clone(),
        platform: first.run_platform.clone(),
        positions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Bases;
    use crate::plan::{plan, PlanOptions};
    use crate::platform::Catalog;

    #[tokio::test]
    async fn replays_uncommitted_parents_and_starts_at_committed_ones() {
        let df = crate::dockerfile::parse(
            "FROM scratch AS a\nCOPY x /x\nFROM a AS b\nCOPY y /y\nFROM b\nCOPY z /z\n",
        )
        .unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        let opts = PlanOptions {
            targets: vec![amd.clone()],
            build_platform: amd,
            build_args: Default::default(),
            target_stage: None,
            ..Default::default()
        };
        let p = plan(&df, &opts, &Catalog::embedded()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for f in ["x", "y", "z"] {
            std::fs::write(dir.path().join(f), f).unwrap();
        }
        std::fs::write(dir.path().join("Dockerfile"), "").unwrap();
        let ctx =
            crate::context::BuildContext::open(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let empty = |p: &Platform| ImageConfig::for_platform(p, None);
        let keys = super::super::keys::compute(&p, &Bases::new(), Some(&ctx), &empty)
            .await
            .unwrap();
        let last = &p.jobs[2];
        let out = |fs: Fs| JobOutput {
            fs,
            config: ImageConfig::default(),
            platform: Platform::default(),
            run_seconds: 0.0,
            steps_run: 0,
            steps_cached: 0,
            handed_over: None,
            engine: "default".into(),
        };
        // Nothing committed: the whole chain is replayed from scratch.
        let prog = build(&p, &keys, last, &|_| Some(out(Fs::Replay)), &|_| None);
        assert_eq!(prog.start, Start::Scratch);
        assert_eq!(prog.positions.len(), 3);
        assert_eq!(prog.start_key, keys.job(p.jobs[0].id).key_in);
        assert!(prog.positions[0].replayed && !prog.positions[2].replayed);
        // The parent committed: start there.
        let prog = build(
            &p,
            &keys,
            last,
            &|_| Some(out(Fs::Image("img".into()))),
            &|_| None,
        );
        assert_eq!(prog.start, Start::Image("img".into()));
        assert_eq!(prog.positions.len(), 1);
        assert_eq!(prog.start_key, keys.job(p.jobs[1].id).key_out);
        // A live container handed over wins.
        let prog = build(&p, &keys, last, &|_| Some(out(Fs::Replay)), &|_| {
            Some((ContainerId("c".into()), true))
        });
        assert_eq!(prog.start, Start::Live(ContainerId("c".into()), true));
    }
}
