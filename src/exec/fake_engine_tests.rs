//! The executor's scheduling and commit policy through `trait Engine` with a recording
//! fake (DESIGN: a fake is fine for a unit test of scheduling logic): dependency order,
//! a shared job committed or replayed as the policy says, the concurrency cap, and
//! cleanup on error and on cancellation. Real-engine behaviour is tested in
//! `tests/exec_build.rs` and `tests/exec_cross.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{ExecError, Fs};
use crate::dockerfile::{parse, Dockerfile};
use crate::exec::fake_engine::{FakeEngine, OnRun};
use crate::exec::fleet::{FleetEngine, OnLoss};
use crate::exec::outputs::OutputCache;
use crate::exec::scheduler::{execute, ExecInputs};
use crate::plan::Bases;
use crate::plan::{plan, BuildPlan, PlanOptions};
use crate::platform::{Catalog, Platform};
use crate::progress::Silent;

fn plan_for(df: &Dockerfile, targets: &[&str]) -> BuildPlan {
    let opts = PlanOptions {
        targets: targets
            .iter()
            .map(|t| Platform::parse(t).unwrap().normalized())
            .collect(),
        build_platform: Platform::new("linux", "amd64", ""),
        ..PlanOptions::default()
    };
    plan(df, &opts, &Catalog::embedded()).unwrap()
}

async fn run(
    engine: &FakeEngine,
    plan: &BuildPlan,
    limit: usize,
    cancel: &CancellationToken,
) -> crate::exec::Result<crate::exec::scheduler::ExecOutcome> {
    let (secrets, labels) = (BTreeMap::new(), BTreeMap::new());
    let outputs = OutputCache::new(None);
    let image_needed: BTreeSet<_> = plan
        .targets
        .iter()
        .map(|t| t.final_job)
        .filter(|j| plan.job(*j).mode != crate::plan::Mode::Assembled)
        .collect();
    execute(ExecInputs {
        engines: vec![FleetEngine::single(engine)],
        on_loss: OnLoss::Rerun,
        reporter: &Silent,
        plan,
        bases: &Bases::new(),
        context: None,
        cancel,
        no_cache: false,
        secrets: &secrets,
        labels: &labels,
        outputs: &outputs,
        image_needed,
        limit,
        escape: '\\',
        network: crate::engine::Network::Default,
        add_hosts: Vec::new(),
        no_cache_stages: Vec::new(),
        travelled: &crate::exec::travelled::NoTravel,
        keep_checkpoints: false,
    })
    .await
}

const SHARED: &str = "FROM --platform=$BUILDPLATFORM scratch AS deps\nRUN deps\n\
FROM --platform=$BUILDPLATFORM deps AS build\nARG TARGETARCH\nRUN build-$TARGETARCH\n";

#[tokio::test]
async fn a_shared_job_is_committed_where_commits_are_cheap() {
    let df = parse(SHARED).unwrap();
    let plan = plan_for(&df, &["linux/amd64", "linux/arm64"]);
    assert_eq!(plan.jobs.len(), 3, "deps once + build per target");
    let engine = FakeEngine::new(OnRun::Succeed).with_native_diff();
    let out = run(&engine, &plan, 4, &CancellationToken::new())
        .await
        .unwrap();
    let runs = engine.runs();
    assert_eq!(runs.iter().filter(|r| *r == "deps").count(), 1, "{runs:?}");
    assert_eq!(runs[0], "deps", "the shared job first: {runs:?}");
    let deps_img = match &out.outputs[0].as_ref().unwrap().fs {
        Fs::Image(img) => img.clone(),
        other => panic!("{other:?}"),
    };
    // One build job continues in the deps container; the other starts from its image.
    let specs = engine.specs.lock().unwrap();
    assert!(specs.values().any(|s| s.image == deps_img), "{specs:?}");
    // The RUN command stays as written; TARGETARCH reaches the process's environment.
    let mut arches: Vec<String> = engine
        .execs
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.argv.last().is_some_and(|c| c.starts_with("build")))
        .map(|e| {
            assert_eq!(e.argv.last().unwrap(), "build-$TARGETARCH");
            e.env
                .iter()
                .find_map(|kv| kv.strip_prefix("TARGETARCH="))
                .unwrap()
                .to_string()
        })
        .collect();
    arches.sort();
    assert_eq!(arches, ["amd64", "arm64"]);
    assert!(engine.live.lock().unwrap().is_empty());
    assert_eq!(engine.cleanups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_cheap_shared_job_is_replayed_where_commits_are_dear() {
    let df = parse(SHARED).unwrap();
    let plan = plan_for(&df, &["linux/amd64", "linux/arm64"]);
    let engine = FakeEngine::new(OnRun::Succeed);
    let out = run(&engine, &plan, 4, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.outputs[0].as_ref().unwrap().fs, Fs::Replay);
    let runs = engine.runs();
    // Its 30 ms RUN runs once more for the second consumer instead of a commit; the
    // finals are committed (their images are wanted).
    assert_eq!(runs.iter().filter(|r| *r == "deps").count(), 2, "{runs:?}");
    assert_eq!(engine.commits.load(Ordering::SeqCst), 2);
    assert!(engine.live.lock().unwrap().is_empty());
}

#[tokio::test]
async fn at_most_limit_jobs_run_at_once() {
    let text = "FROM scratch AS a\nRUN a\nFROM scratch AS b\nRUN b\nFROM scratch AS c\nRUN c\n\
FROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\nCOPY --from=c /x /c\n";
    let df = parse(text).unwrap();
    let plan = plan_for(&df, &["linux/amd64"]);
    for (limit, expected) in [(1, 1), (2, 2), (8, 3)] {
        let engine = FakeEngine::new(OnRun::Succeed);
        let _ = run(&engine, &plan, limit, &CancellationToken::new()).await;
        assert_eq!(engine.runs().len(), 3);
        assert_eq!(
            engine.peak.load(Ordering::SeqCst),
            expected,
            "limit {limit}"
        );
        assert!(engine.live.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_failing_step_stops_the_build_and_cleanup_runs() {
    let text = "FROM scratch AS a\nRUN fail now\nFROM a\nRUN never\n";
    let df = parse(text).unwrap();
    let plan = plan_for(&df, &["linux/amd64"]);
    let engine = FakeEngine::new(OnRun::FailMarked);
    let err = run(&engine, &plan, 2, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ExecError::RunFailed {
                line: 2,
                code: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(engine.runs(), ["fail now"], "nothing after the failure ran");
    assert_eq!(engine.cleanups.load(Ordering::SeqCst), 1);
    assert!(engine.live.lock().unwrap().is_empty());
}

#[tokio::test]
async fn cancelling_stops_running_steps_and_cleanup_runs() {
    let df = parse("FROM scratch\nRUN sleep 60\nRUN never\n").unwrap();
    let plan = plan_for(&df, &["linux/amd64"]);
    let engine = FakeEngine::new(OnRun::Hang);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c2.cancel();
    });
    let err = tokio::time::timeout(Duration::from_secs(5), run(&engine, &plan, 2, &cancel))
        .await
        .expect("cancellation ends the build promptly")
        .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert_eq!(engine.runs(), ["sleep 60"]);
    assert_eq!(engine.cleanups.load(Ordering::SeqCst), 1);
    assert!(engine.live.lock().unwrap().is_empty());
}
