//! The scheduler: runs jobs in dependency order, independent ones at once up to a
//! limit, each job exactly once however many targets need it, results in pre-sized
//! slots (index = job index). The policy ([`run_jobs`]) is generic over the job runner
//! so it is tested with a recording fake; [`execute`] computes the keys, asks
//! [`super::select`] what must run, wires the policy to the runner and guarantees the
//! engine's cleanup (containers, the build's volumes) on every exit path.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use std::collections::BTreeSet;
use std::path::PathBuf;

use futures::future::join_all;

use super::fleet::{cleanup_all, lost_images, run_placed, Fleet, FleetEngine, Ledger, OnLoss};
use super::keys::Keys;
use super::outputs::OutputCache;
use super::select::{Decision, Selection};
use super::{ExecError, Fs, JobEnv, JobOutput, Result};
use crate::context::BuildContext;
use crate::engine::{RunSpec, CACHE_KEY_LABEL};
use crate::oci::ImageConfig;
use crate::plan::Bases;
use crate::plan::{BuildPlan, JobId};
use crate::platform::Platform;
use crate::progress::Reporter;

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

/// What [`execute`] needs besides the plan.
pub struct ExecInputs<'a> {
    /// The engines, in the user's order ([`FleetEngine::single`] without `[engines]`);
    /// each job runs on the one the plan placed it on (the first when it names none).
    pub engines: Vec<FleetEngine<'a>>,
    /// What to do when an engine stops answering mid-build.
    pub on_loss: OnLoss,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
    /// The plan.
    pub plan: &'a BuildPlan,
    /// Resolved base images.
    pub bases: &'a Bases,
    /// The build context.
    pub context: Option<&'a BuildContext>,
    /// Fires on Ctrl-C.
    pub cancel: &'a CancellationToken,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--secret`s.
    pub secrets: &'a BTreeMap<String, PathBuf>,
    /// Labels on every container (`xplat.build=<id>`).
    pub labels: &'a BTreeMap<String, String>,
    /// The local output cache.
    pub outputs: &'a OutputCache,
    /// Jobs whose engine image an output wants (exported finals, tagged stage results).
    pub image_needed: BTreeSet<JobId>,
    /// At most this many jobs at once.
    pub limit: usize,
    /// The Dockerfile's escape character.
    pub escape: char,
    /// `--network`.
    pub network: crate::engine::Network,
    /// `--add-host NAME:IP` entries.
    pub add_hosts: Vec<String>,
    /// `--no-cache-filter` stages.
    pub no_cache_stages: Vec<String>,
    /// Checkpoints of a travelled cache.
    pub travelled: &'a dyn super::travelled::Travelled,
    /// `--cache-to ...,mode=max` ([`super::JobEnv::keep_checkpoints`]).
    pub keep_checkpoints: bool,
}

/// What the engine side of a build produced.
#[derive(Debug)]
pub struct ExecOutcome {
    /// Chain keys of every job.
    pub keys: Keys,
    /// What ran and what the caches served.
    pub selection: Selection,
    /// By job id; `None` for assembled jobs. [`JobOutput::engine`] says where an image is.
    pub outputs: Vec<Option<JobOutput>>,
    /// Each engine's step-cache checkpoints after the build (chain key → image id), by
    /// engine label ([`super::JobEnv::engine_label`]).
    pub checkpoints: Vec<(String, BTreeMap<String, String>)>,
}

impl ExecOutcome {
    /// Steps run and reused, over all jobs.
    pub fn step_counts(&self) -> (usize, usize) {
        self.outputs
            .iter()
            .flatten()
            .fold((0, 0), |(r, c), o| (r + o.steps_run, c + o.steps_cached))
    }
}

/// BuildKit's config of an empty image for `platform` (`stage` knows its defaults).
pub fn scratch_config(platform: &Platform) -> ImageConfig {
    crate::stage::State::scratch(platform).config
}

/// Runs the plan's engine jobs that the caches cannot serve, each on its engine, and
/// always removes the build's containers and volumes on every engine, whether it
/// succeeded, failed or was cancelled.
pub async fn execute(inputs: ExecInputs<'_>) -> Result<ExecOutcome> {
    let plan = inputs.plan;
    let keys = super::keys::compute(plan, inputs.bases, inputs.context, &scratch_config).await?;
    let checkpoints = if inputs.no_cache {
        vec![BTreeMap::new(); inputs.engines.len()]
    } else {
        let reads = inputs
            .engines
            .iter()
            .map(|e| e.engine.images_by_label(CACHE_KEY_LABEL));
        let mut all = Vec::new();
        for (e, res) in inputs.engines.iter().zip(join_all(reads).await) {
            all.push(res.map_err(|source| ExecError::EngineOp {
                action: format!("reading the step cache of engine {}", e.label()),
                source: Box::new(source),
            })?);
        }
        all
    };
    let fleet = Fleet::new(inputs.engines, checkpoints, inputs.on_loss);
    let placement: Vec<usize> = plan
        .jobs
        .iter()
        .map(|j| fleet.index(j.engine.as_deref()))
        .collect();
    let needs = super::select::needs(plan, &inputs.image_needed);
    // A job the step cache may not serve gets a key nothing was recorded under.
    let uncached: BTreeSet<String> = plan
        .jobs
        .iter()
        .filter(|j| {
            j.stage.name.as_ref().is_some_and(|n| {
                inputs
                    .no_cache_stages
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(n))
            })
        })
        .map(|j| keys.job(j.id).key_out.clone())
        .collect();
    let key_out = |id: JobId| keys.job(id).key_out.clone();
    let ckpt = |id: JobId, k: &str| {
        if uncached.contains(k) {
            return None;
        }
        let shared = &fleet.members[placement[id.0]].shared;
        shared
            .checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(k)
            .cloned()
    };
    let recorded =
        |k: &str, roots: &BTreeSet<String>| !inputs.no_cache && inputs.outputs.has_all(k, roots);
    let selection = super::select::select(plan, &key_out, &needs, &ckpt, &recorded);
    let ledger = Ledger::new(placement, needs, selection.roots.clone());
    let stop = inputs.cancel.child_token();
    let first = &fleet.members[0];
    let base = JobEnv {
        engine: first.spec.engine,
        engine_name: first.spec.name.as_deref(),
        ledger: &ledger,
        reporter: inputs.reporter,
        plan,
        bases: inputs.bases,
        keys: &keys,
        context: inputs.context,
        cancel: &stop,
        no_cache: inputs.no_cache,
        secrets: inputs.secrets,
        labels: inputs.labels,
        shared: &first.shared,
        outputs: inputs.outputs,
        escape: inputs.escape,
        network: inputs.network,
        add_hosts: &inputs.add_hosts,
        no_cache_stages: &inputs.no_cache_stages,
        travelled: inputs.travelled,
        keep_checkpoints: inputs.keep_checkpoints,
    };
    let result = async {
        satisfy(&fleet, &base, &selection).await?;
        let ids: Vec<usize> = (0..plan.jobs.len())
            .filter(|i| selection.runs(JobId(*i)))
            .collect();
        let mut dense = vec![usize::MAX; plan.jobs.len()];
        for (k, i) in ids.iter().enumerate() {
            dense[*i] = k;
        }
        let deps: Vec<Vec<usize>> = ids
            .iter()
            .map(|i| {
                plan.jobs[*i]
                    .deps
                    .iter()
                    .filter(|d| dense[d.0] != usize::MAX)
                    .map(|d| dense[d.0])
                    .collect()
            })
            .collect();
        let (fleet, base, ids) = (&fleet, &base, &ids);
        run_jobs(&deps, inputs.limit, &stop, |k, _inputs| {
            Box::pin(async move { run_placed(fleet, base, &plan.jobs[ids[k]]).await })
        })
        .await?;
        // An image an output needs went with an engine that died after its job finished.
        for id in lost_images(fleet, &ledger).await {
            run_placed(fleet, base, plan.job(id)).await?;
        }
        Ok::<_, ExecError>(())
    }
    .await;
    let cleaned = cleanup_all(&fleet, result.is_ok()).await;
    match (result, cleaned) {
        (Err(e), _) => return Err(e),
        (Ok(_), Err(source)) => {
            return Err(ExecError::EngineOp {
                action: "removing the build's containers".into(),
                source: Box::new(source),
            })
        }
        (Ok(_), Ok(_)) => {}
    }
    let table = ledger.outputs();
    let outputs = (0..plan.jobs.len())
        .map(|i| table.get(&JobId(i)).cloned())
        .collect();
    let checkpoints = fleet
        .members
        .iter()
        .map(|m| {
            let all = super::runner::lock(&m.shared.checkpoints).clone();
            (m.spec.label().to_string(), all)
        })
        .collect();
    Ok(ExecOutcome {
        keys,
        selection,
        outputs,
        checkpoints,
    })
}

/// Outputs for the jobs the caches serve, and the recorded roots their consumers read
/// that are not in the output cache yet (read from the checkpoint image).
async fn satisfy(fleet: &Fleet<'_>, base: &JobEnv<'_>, selection: &Selection) -> Result<()> {
    for job in &base.plan.jobs {
        let Decision::Satisfied(fs) = &selection.decisions[job.id.0] else {
            continue;
        };
        let env = &fleet.env(base, base.ledger.engine_of(job.id));
        let jk = env.keys.job(job.id);
        let roots = &selection.roots[job.id.0];
        let recorded = !env.no_cache && env.outputs.has_all(&jk.key_out, roots);
        if let (Fs::Image(img), false) = (fs, recorded) {
            if !roots.is_empty() {
                let label = super::job_label(job);
                let no_args = BTreeMap::new();
                let at = super::At {
                    job,
                    label: &label,
                    step: 0,
                    line: 0,
                    args: &no_args,
                };
                let tmp = super::runner::create(
                    env,
                    &at,
                    &RunSpec {
                        image: img.clone(),
                        platform: Some(job.run_platform.clone()),
                        ..RunSpec::default()
                    },
                )
                .await?;
                let files = super::outputs::ContainerFiles {
                    engine: env.engine,
                    id: tmp.clone(),
                };
                let mut res = Ok(());
                for r in roots {
                    if let Err(e) = env.outputs.record(&jk.key_out, r, &files).await {
                        res = Err(ExecError::Record {
                            stage: at.stage(),
                            path: r.clone(),
                            source: Box::new(e),
                        });
                        break;
                    }
                }
                let _ = env.engine.remove_container(&tmp).await;
                res?;
            }
        }
        let out = JobOutput {
            fs: fs.clone(),
            config: jk.end.clone(),
            platform: job.run_platform.clone(),
            run_seconds: 0.0,
            steps_run: 0,
            steps_cached: job.steps.len(),
            handed_over: None,
            engine: env.engine_label().to_string(),
        };
        env.ledger.finish(job.id, out);
    }
    Ok(())
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "fake_engine_tests.rs"]
mod fake_engine_tests;
