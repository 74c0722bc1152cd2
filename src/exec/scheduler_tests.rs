//! Scheduler policy with a recording fake runner: order, each job once, the
//! concurrency cap, and stopping on error or cancellation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::*;

struct Record {
    running: AtomicUsize,
    peak: AtomicUsize,
    log: Mutex<Vec<String>>,
    calls: Mutex<Vec<usize>>,
}

impl Record {
    fn new() -> Record {
        Record {
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        }
    }
}

async fn fake(
    rec: &Record,
    i: usize,
    inputs: BTreeMap<usize, usize>,
    fail: Option<usize>,
) -> Result<usize> {
    rec.calls.lock().unwrap().push(i);
    let now = rec.running.fetch_add(1, Ordering::SeqCst) + 1;
    rec.peak.fetch_max(now, Ordering::SeqCst);
    rec.log.lock().unwrap().push(format!("start {i}"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    rec.running.fetch_sub(1, Ordering::SeqCst);
    rec.log.lock().unwrap().push(format!("end {i}"));
    if fail == Some(i) {
        return Err(ExecError::Cancelled);
    }
    Ok(i * 10 + inputs.values().sum::<usize>())
}

fn pos(log: &[String], s: &str) -> usize {
    log.iter().position(|l| l == s).unwrap()
}

#[tokio::test]
async fn dependency_order_each_job_once_results_in_slots() {
    // 0 ← 1, 0 ← 2, {1,2} ← 3: job 0 is shared by 1 and 2 and runs once.
    let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
    let rec = Record::new();
    let out = run_jobs(&deps, 4, &CancellationToken::new(), |i, inp| {
        Box::pin(fake(&rec, i, inp, None))
    })
    .await
    .unwrap();
    assert_eq!(out, vec![0, 10, 20, 30 + 10 + 20]);
    let mut calls = rec.calls.lock().unwrap().clone();
    calls.sort();
    assert_eq!(calls, vec![0, 1, 2, 3], "each job exactly once");
    let log = rec.log.lock().unwrap().clone();
    assert!(pos(&log, "end 0") < pos(&log, "start 1"));
    assert!(pos(&log, "end 0") < pos(&log, "start 2"));
    assert!(pos(&log, "end 1") < pos(&log, "start 3"));
    assert!(pos(&log, "end 2") < pos(&log, "start 3"));
    assert_eq!(rec.peak.load(Ordering::SeqCst), 2, "1 and 2 ran at once");
}

#[tokio::test]
async fn concurrency_never_exceeds_the_limit() {
    let deps = vec![vec![]; 7];
    let rec = Record::new();
    run_jobs(&deps, 3, &CancellationToken::new(), |i, inp| {
        Box::pin(fake(&rec, i, inp, None))
    })
    .await
    .unwrap();
    assert_eq!(rec.peak.load(Ordering::SeqCst), 3);
    assert_eq!(rec.calls.lock().unwrap().len(), 7);
}

#[tokio::test]
async fn an_error_stops_dependents() {
    let deps = vec![vec![], vec![0], vec![1]];
    let rec = Record::new();
    let err = run_jobs(&deps, 2, &CancellationToken::new(), |i, inp| {
        Box::pin(fake(&rec, i, inp, Some(0)))
    })
    .await;
    assert!(err.is_err());
    assert_eq!(
        rec.calls.lock().unwrap().clone(),
        vec![0],
        "no dependent started"
    );
}

#[tokio::test]
async fn cancellation_returns_promptly() {
    let deps = vec![vec![]];
    let cancel = CancellationToken::new();
    cancel.cancel();
    let started = std::time::Instant::now();
    let err = run_jobs(&deps, 1, &cancel, |_, _| {
        let cancel = cancel.clone();
        Box::pin(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(30)) => Ok(0usize),
                _ = cancel.cancelled() => Err(ExecError::Cancelled),
            }
        })
    })
    .await;
    assert!(matches!(err, Err(ExecError::Cancelled)));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn running_jobs_finish_their_engine_call_before_an_error_returns() {
    // Job 1 fails at once; job 0 is in the middle of something that must not be
    // dropped (an engine call creating a container): run_jobs waits for it.
    let deps = vec![vec![], vec![]];
    let done = AtomicUsize::new(0);
    let cancel = CancellationToken::new();
    let err = run_jobs(&deps, 2, &cancel, |i, _| {
        let done = &done;
        Box::pin(async move {
            if i == 1 {
                return Err(ExecError::Cancelled);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            done.fetch_add(1, Ordering::SeqCst);
            Ok(0usize)
        })
    })
    .await;
    assert!(err.is_err());
    assert_eq!(
        done.load(Ordering::SeqCst),
        1,
        "job 0 was awaited, not dropped"
    );
    assert!(cancel.is_cancelled(), "the running jobs were told to stop");
}

#[tokio::test]
async fn a_cycle_is_reported_not_hung() {
    let deps = vec![vec![1], vec![0]];
    let err = run_jobs(&deps, 1, &CancellationToken::new(), |_, _| {
        Box::pin(async { Ok(0usize) })
    })
    .await;
    assert!(matches!(err, Err(ExecError::Cycle { .. })));
}
