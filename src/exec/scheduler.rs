//! The scheduler: runs jobs in dependency order, independent ones at once up to a
//! limit, each job exactly once however many targets need it, results in pre-sized
//! slots (index = job index). The policy ([`run_jobs`]) is generic over the job runner
//! so it is tested with a recording fake; [`execute`] wires it to [`run_job`] and
//! guarantees the engine's cleanup on every exit path.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use super::step::{run_job, JobEnv};
use super::{ExecError, JobOutput, Result};

/// How long running jobs get to wind down after an error or a cancellation before
/// they are dropped.
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `deps.len()` jobs; job `i` starts once every job in `deps[i]` has finished, with
/// at most `limit` running at once. `run(i, outputs_of_deps)` runs job `i`, and must
/// stop soon once `cancel` fires. The first error (or a cancellation) stops everything:
/// no job starts any more, `cancel` is fired so running jobs stop, and they are awaited
/// (up to [`DRAIN_GRACE`]) before the first error is returned. Awaiting matters: a job
/// dropped in the middle of an engine call can leave a container the engine created
/// but nobody tracks (seen with Ctrl-C during a container create).
/// Dependencies must point to existing jobs and form no cycle.
pub async fn run_jobs<'a, T, F>(
    deps: &[Vec<usize>],
    limit: usize,
    cancel: &CancellationToken,
    run: F,
) -> Result<Vec<T>>
where
    T: Clone + Send + 'a,
    F: Fn(usize, BTreeMap<usize, T>) -> BoxFuture<'a, Result<T>>,
{
    let n = deps.len();
    let limit = limit.max(1);
    let mut slots: Vec<Option<T>> = vec![None; n];
    let mut started = vec![false; n];
    let mut running = FuturesUnordered::new();
    let mut finished = 0;
    while finished < n {
        for i in 0..n {
            if running.len() >= limit {
                break;
            }
            if !started[i] && deps[i].iter().all(|d| slots[*d].is_some()) {
                started[i] = true;
                let inputs = deps[i]
                    .iter()
                    .map(|d| (*d, slots[*d].clone().expect("dependency finished")))
                    .collect();
                let fut = run(i, inputs);
                running.push(async move { (i, fut.await) });
            }
        }
        if running.is_empty() {
            // Nothing runnable and nothing running: a cycle or a bad index.
            let stuck = (0..n).find(|i| !started[*i]).unwrap_or(0);
            return Err(ExecError::Cycle {
                job: format!("#{stuck}"),
            });
        }
        let failure = tokio::select! {
            biased;
            _ = cancel.cancelled() => ExecError::Cancelled,
            Some((i, res)) = running.next() => match res {
                Ok(v) => {
                    slots[i] = Some(v);
                    finished += 1;
                    continue;
                }
                Err(e) => e,
            },
        };
        cancel.cancel();
        let _ = tokio::time::timeout(DRAIN_GRACE, async {
            while running.next().await.is_some() {}
        })
        .await;
        return Err(failure);
    }
    Ok(slots
        .into_iter()
        .map(|s| s.expect("every job finished"))
        .collect())
}

/// Runs every job of `env.plan` on the engine (outputs indexed by job id) and always
/// removes the containers left behind, whether the build succeeded, failed or was
/// cancelled.
pub async fn execute(env: &JobEnv<'_>, limit: usize) -> Result<Vec<JobOutput>> {
    let all = vec![true; env.plan.jobs.len()];
    let outputs = execute_selected(env, limit, &all).await?;
    Ok(outputs
        .into_iter()
        .map(|o| o.expect("every job ran"))
        .collect())
}

/// Runs the jobs `run` selects (see [`super::select::engine_jobs`]; the selection must
/// hold every dependency of a selected job) and cleans up as [`execute`] does. Outputs are
/// indexed by job id, `None` for jobs that did not run.
pub async fn execute_selected(
    env: &JobEnv<'_>,
    limit: usize,
    run: &[bool],
) -> Result<Vec<Option<JobOutput>>> {
    let jobs = &env.plan.jobs;
    // The selected jobs, renumbered densely for `run_jobs`.
    let ids: Vec<usize> = (0..jobs.len()).filter(|i| run[*i]).collect();
    let mut dense = vec![usize::MAX; jobs.len()];
    for (k, i) in ids.iter().enumerate() {
        dense[*i] = k;
    }
    let mut deps = Vec::with_capacity(ids.len());
    for &i in &ids {
        let mut d = Vec::with_capacity(jobs[i].deps.len());
        for dep in &jobs[i].deps {
            if dense[dep.0] == usize::MAX {
                return Err(ExecError::Cycle {
                    job: format!("{} (needs #{}, which is not selected)", jobs[i].id, dep.0),
                });
            }
            d.push(dense[dep.0]);
        }
        deps.push(d);
    }
    // A child token: a failing job stops its siblings without cancelling the caller's.
    let stop = env.cancel.child_token();
    let env = &JobEnv {
        cancel: &stop,
        ..*env
    };
    let ids_ref = &ids;
    let result = run_jobs(&deps, limit, &stop, |k, inputs| {
        Box::pin(async move {
            let inputs: BTreeMap<usize, JobOutput> =
                inputs.into_iter().map(|(d, o)| (ids_ref[d], o)).collect();
            run_job(env, &jobs[ids_ref[k]], &inputs).await
        })
    })
    .await;
    let cleaned = env.engine.cleanup().await;
    let outputs = match (result, cleaned) {
        (Err(e), _) => return Err(e),
        (Ok(_), Err(source)) => {
            return Err(ExecError::EngineOp {
                action: "removing the build's containers".into(),
                source: Box::new(source),
            })
        }
        (Ok(v), Ok(_)) => v,
    };
    let mut all = vec![None; jobs.len()];
    for (k, o) in outputs.into_iter().enumerate() {
        all[ids[k]] = Some(o);
    }
    Ok(all)
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "fake_engine_tests.rs"]
mod fake_engine_tests;
