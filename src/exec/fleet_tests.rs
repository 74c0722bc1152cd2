//! Two engines, one of which dies at its first RUN (a recording fake: the scheduling
//! logic only; `tests/engines.rs` kills a real second dockerd): its job runs again on the
//! other engine, emulated, and progress says so; or the build fails naming the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use tokio_util::sync::CancellationToken;

use super::{FleetEngine, OnLoss};
use crate::dockerfile::parse;
use crate::exec::fake_engine::{FakeEngine, OnRun};
use crate::exec::outputs::OutputCache;
use crate::exec::scheduler::{execute, ExecInputs, ExecOutcome};
use crate::exec::{ExecError, Result};
use crate::ops::resolve::Bases;
use crate::plan::{plan, BuildPlan, EngineSlot, PlanOptions};
use crate::platform::{Catalog, Platform};
use crate::progress::{Event, Recorder};

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap().normalized()
}

fn two_engine_plan() -> BuildPlan {
    let df = parse("FROM scratch\nRUN work\n").unwrap();
    let slot = |name: &str, native: &str| EngineSlot {
        name: name.into(),
        native: vec![p(native)],
        emulated: None,
        cpus: 2,
    };
    let opts = PlanOptions {
        targets: vec![p("linux/amd64"), p("linux/arm64")],
        build_platform: p("linux/amd64"),
        engines: vec![slot("a", "linux/amd64"), slot("b", "linux/arm64")],
        ..PlanOptions::default()
    };
    plan(&df, &opts, &Catalog::embedded()).unwrap()
}

async fn run(
    a: &FakeEngine,
    b: &FakeEngine,
    plan: &BuildPlan,
    on_loss: OnLoss,
    rec: &Recorder,
) -> Result<ExecOutcome> {
    let (secrets, labels) = (BTreeMap::new(), BTreeMap::new());
    let outputs = OutputCache::new(None);
    let engine = |name: &str, e: &'static str, fake| FleetEngine {
        name: Some(name.into()),
        engine: fake,
        native: vec![p(e)],
        emulated: None,
    };
    let image_needed: BTreeSet<_> = plan.targets.iter().map(|t| t.final_job).collect();
    execute(ExecInputs {
        engines: vec![engine("a", "linux/amd64", a), engine("b", "linux/arm64", b)],
        on_loss,
        reporter: rec,
        plan,
        bases: &Bases::new(),
        context: None,
        cancel: &CancellationToken::new(),
        no_cache: false,
        secrets: &secrets,
        labels: &labels,
        outputs: &outputs,
        image_needed,
        limit: 4,
        escape: '\\',
        network: crate::engine::Network::Default,
        add_hosts: Vec::new(),
        no_cache_stages: Vec::new(),
        travelled: &crate::exec::travelled::NoTravel,
        keep_checkpoints: false,
    })
    .await
}

fn notes(rec: &Recorder) -> Vec<String> {
    rec.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Note { message } => Some(message),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn jobs_of_an_engine_that_dies_run_again_on_another() {
    let plan = two_engine_plan();
    let engines: Vec<_> = plan.jobs.iter().map(|j| j.engine.clone()).collect();
    assert_eq!(engines, [Some("a".into()), Some("b".into())]);
    let a = FakeEngine::new(OnRun::Succeed);
    let mut b = FakeEngine::new(OnRun::Succeed);
    b.dies_on_exec = true;
    let rec = Recorder::default();
    let out = run(&a, &b, &plan, OnLoss::Rerun, &rec).await.unwrap();
    assert_eq!(a.runs(), ["work", "work"], "both RUNs ended up on a");
    assert!(b.runs().is_empty());
    let on: Vec<&str> = out
        .outputs
        .iter()
        .flatten()
        .map(|o| o.engine.as_str())
        .collect();
    assert_eq!(on, ["a", "a"]);
    let notes = notes(&rec);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("engine b stopped answering")
                && n.contains("runs again on a (emulated)")),
        "{notes:?}"
    );
    // The rerun says where it runs.
    let started: Vec<Option<String>> = rec
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::JobStarted { job, engine, .. } if job == "#1" => Some(engine),
            _ => None,
        })
        .collect();
    assert_eq!(started, [Some("b".into()), Some("a".into())]);
    assert!(a.live.lock().unwrap().is_empty(), "nothing left on a");
    assert_eq!(a.cleanups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn with_fail_the_build_names_the_lost_engine() {
    let plan = two_engine_plan();
    let a = FakeEngine::new(OnRun::Succeed);
    let mut b = FakeEngine::new(OnRun::Succeed);
    b.dies_on_exec = true;
    let rec = Recorder::default();
    let err = run(&a, &b, &plan, OnLoss::Fail, &rec).await.unwrap_err();
    assert!(
        matches!(&err, ExecError::EngineLost { engine, job, .. } if engine == "b" && job == "#1"),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("engine b stopped answering"),
        "{err}"
    );
    assert!(a.live.lock().unwrap().is_empty(), "nothing left on a");
    assert_eq!(a.cleanups.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_step_that_fails_on_a_live_engine_is_not_an_engine_loss() {
    let plan = two_engine_plan();
    let a = FakeEngine::new(OnRun::Succeed);
    let b = FakeEngine::new(OnRun::FailMarked);
    // b answers pings: its failed RUN is the build's failure, not rerun elsewhere.
    let plan = BuildPlan {
        jobs: plan
            .jobs
            .into_iter()
            .map(|mut j| {
                if let crate::dockerfile::Instruction::Run(r) = &mut j.steps[0].instruction {
                    r.command = crate::dockerfile::Command::Shell("fail here".into());
                }
                j
            })
            .collect(),
        ..plan
    };
    let rec = Recorder::default();
    let err = run(&a, &b, &plan, OnLoss::Rerun, &rec).await.unwrap_err();
    assert!(matches!(err, ExecError::RunFailed { code: 3, .. }), "{err}");
    assert!(notes(&rec).iter().all(|n| !n.contains("stopped answering")));
}

#[tokio::test]
async fn an_image_lost_with_its_engine_after_the_job_finished_is_made_again() {
    let plan = two_engine_plan();
    let a = FakeEngine::new(OnRun::Succeed);
    let mut b = FakeEngine::new(OnRun::Succeed);
    b.dies_after_exec = true;
    let rec = Recorder::default();
    let out = run(&a, &b, &plan, OnLoss::Rerun, &rec).await.unwrap();
    // b ran its job, then died with the image the output needs: a makes it again.
    assert_eq!(b.runs(), ["work"]);
    assert_eq!(a.runs(), ["work", "work"]);
    assert_eq!(out.outputs[1].as_ref().unwrap().engine, "a");
    assert!(notes(&rec)
        .iter()
        .any(|n| n.contains("engine b stopped answering")));
}

#[tokio::test]
async fn cancelling_cleans_up_every_engine() {
    let plan = two_engine_plan();
    let a = FakeEngine::new(OnRun::Hang);
    let b = FakeEngine::new(OnRun::Hang);
    let rec = Recorder::default();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        c2.cancel();
    });
    let (secrets, labels) = (BTreeMap::new(), BTreeMap::new());
    let outputs = OutputCache::new(None);
    let fleet = vec![
        FleetEngine {
            name: Some("a".into()),
            engine: &a,
            native: vec![p("linux/amd64")],
            emulated: None,
        },
        FleetEngine {
            name: Some("b".into()),
            engine: &b,
            native: vec![p("linux/arm64")],
            emulated: None,
        },
    ];
    let err = execute(ExecInputs {
        engines: fleet,
        on_loss: OnLoss::Rerun,
        reporter: &rec,
        plan: &plan,
        bases: &Bases::new(),
        context: None,
        cancel: &cancel,
        no_cache: false,
        secrets: &secrets,
        labels: &labels,
        outputs: &outputs,
        image_needed: plan.targets.iter().map(|t| t.final_job).collect(),
        limit: 4,
        escape: '\\',
        network: crate::engine::Network::Default,
        add_hosts: Vec::new(),
        no_cache_stages: Vec::new(),
        travelled: &crate::exec::travelled::NoTravel,
        keep_checkpoints: false,
    })
    .await
    .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    for e in [&a, &b] {
        assert_eq!(e.cleanups.load(Ordering::SeqCst), 1);
        assert!(e.live.lock().unwrap().is_empty());
    }
}

#[test]
fn an_image_on_another_engine_is_replayed_not_used() {
    use crate::exec::{Fs, JobOutput};
    use crate::plan::JobId;
    let ledger = super::Ledger::new(vec![0, 1], vec![Default::default(); 2], vec![]);
    let out = JobOutput {
        fs: Fs::Image("sha256:parent".into()),
        config: Default::default(),
        platform: p("linux/amd64"),
        run_seconds: 3.0,
        steps_run: 1,
        steps_cached: 0,
        handed_over: None,
        engine: "a".into(),
    };
    ledger.finish(JobId(0), out);
    assert_eq!(
        ledger.output_on(JobId(0), "a").unwrap().fs,
        Fs::Image("sha256:parent".into())
    );
    assert_eq!(ledger.output_on(JobId(0), "b").unwrap().fs, Fs::Replay);
}
