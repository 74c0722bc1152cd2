//! Several engines in one build (issue 12): each engine keeps its own state (step-cache
//! checkpoints, pulls, the empty image, volumes, live containers handed over), and the
//! [`Ledger`] holds what the whole build shares: finished outputs, what consumers need,
//! and which engine each job runs on now.
//!
//! What moves between engines, and how:
//! - files a `COPY --from` or a bind mount reads: through xplat's output cache, already
//!   (recorded from the producing engine, `put_archive` into the consuming one);
//! - a job built `FROM` a job that ran on another engine: the consumer replays the
//!   parent's steps on its own engine, from the parent's start (a base pulled by digest,
//!   or a checkpoint that engine has). Chosen over moving the image (`docker save` into
//!   `docker load`, or through the registry) because it is always correct, needs no
//!   transfer of a whole image (often a 1 GB toolchain) between machines, and is what an
//!   engine that died leaves us with anyway; placement keeps a child with its parent
//!   where it can, so it is rare.
//!
//! An engine that dies: [`run_placed`] asks it for a ping after any failure; when it does
//! not answer, the job runs again on another engine that can run its platform (natively,
//! else emulated), and progress says so, or the build fails naming the engine
//! ([`OnLoss`]). Each engine's containers are removed at the end whatever happened.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use super::runner::{run_job, Shared};
use super::select::Needs;
use super::{ExecError, Fs, JobEnv, JobOutput, Result};
use crate::engine::Engine;
use crate::plan::{Job, JobId};
use crate::platform::Platform;
use crate::progress::Event;

/// What to do with the jobs of an engine that stops answering mid-build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnLoss {
    /// Run them again on another engine that can run their platform (emulated if none
    /// runs it natively); the build fails only if no engine can.
    #[default]
    Rerun,
    /// Fail the build, naming the engine.
    Fail,
}

/// One engine of the build, as the executor is given it.
pub struct FleetEngine<'a> {
    /// Its name (`None` with the single default engine: progress names no engine).
    pub name: Option<String>,
    /// The engine.
    pub engine: &'a dyn Engine,
    /// Platforms it runs natively.
    pub native: Vec<Platform>,
    /// Platforms it can emulate; `None` when not known.
    pub emulated: Option<Vec<Platform>>,
}

impl<'a> FleetEngine<'a> {
    /// The one engine of a build without `[engines]`.
    pub fn single(engine: &'a dyn Engine) -> FleetEngine<'a> {
        FleetEngine {
            name: None,
            native: vec![engine.platform().normalized()],
            engine,
            emulated: None,
        }
    }

    /// The name shown to users (`default` for the single engine).
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("default")
    }

    fn runs_natively(&self, p: &Platform) -> bool {
        self.native.iter().any(|n| n.can_run(p))
    }

    fn can_emulate(&self, p: &Platform) -> bool {
        self.emulated
            .as_ref()
            .map_or(true, |list| list.iter().any(|e| e.matches(p)))
    }
}

/// One engine during the build: its description, state, and whether it still answers.
pub struct Member<'a> {
    /// What the executor was given.
    pub spec: FleetEngine<'a>,
    /// Its state.
    pub shared: Shared,
    alive: AtomicBool,
}

/// What every job of the build reads and writes, whatever engine it runs on.
pub struct Ledger {
    /// Finished jobs' outputs (a program may replay any ancestor).
    outputs: Mutex<BTreeMap<JobId, JobOutput>>,
    /// The engine (index into [`Fleet::members`]) each engine job runs on now.
    placement: Mutex<Vec<usize>>,
    /// Needs of every job (from the selection).
    pub needs: Vec<Needs>,
    /// Roots each job records for this build's consumers.
    pub roots: Vec<BTreeSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ledger {
    /// The ledger of a build whose jobs start on `placement`.
    pub fn new(placement: Vec<usize>, needs: Vec<Needs>, roots: Vec<BTreeSet<String>>) -> Ledger {
        Ledger {
            outputs: Mutex::new(BTreeMap::new()),
            placement: Mutex::new(placement),
            needs,
            roots,
        }
    }

    /// A finished job's output.
    pub fn output(&self, id: JobId) -> Option<JobOutput> {
        lock(&self.outputs).get(&id).cloned()
    }

    /// A finished job's output as a job on engine `engine` can use it: an image on
    /// another engine is not there, so it is replayed.
    pub fn output_on(&self, id: JobId, engine: &str) -> Option<JobOutput> {
        self.output(id).map(|mut o| {
            if o.engine != engine && matches!(o.fs, Fs::Image(_)) {
                o.fs = Fs::Replay;
            }
            o
        })
    }

    /// Records a finished job.
    pub fn finish(&self, id: JobId, out: JobOutput) {
        lock(&self.outputs).insert(id, out);
    }

    /// Every finished output, by job.
    pub fn outputs(&self) -> BTreeMap<JobId, JobOutput> {
        lock(&self.outputs).clone()
    }

    /// The engine a job runs on now.
    pub fn engine_of(&self, id: JobId) -> usize {
        lock(&self.placement)[id.0]
    }

    fn move_job(&self, id: JobId, to: usize) {
        lock(&self.placement)[id.0] = to;
    }
}

/// The engines of a build.
pub struct Fleet<'a> {
    /// In the user's order.
    pub members: Vec<Member<'a>>,
    /// What to do when one dies.
    pub on_loss: OnLoss,
}

impl<'a> Fleet<'a> {
    /// The fleet of `engines`, each with its step-cache checkpoints.
    pub fn new(
        engines: Vec<FleetEngine<'a>>,
        checkpoints: Vec<BTreeMap<String, String>>,
        on_loss: OnLoss,
    ) -> Fleet<'a> {
        let members = engines
            .into_iter()
            .zip(checkpoints)
            .map(|(spec, ckpts)| Member {
                spec,
                shared: Shared::new(ckpts),
                alive: AtomicBool::new(true),
            })
            .collect();
        Fleet { members, on_loss }
    }

    /// The index of the engine named `name` (`None`, or a name not in the fleet: the first).
    pub fn index(&self, name: Option<&str>) -> usize {
        name.and_then(|n| {
            self.members
                .iter()
                .position(|m| m.spec.name.as_deref() == Some(n))
        })
        .unwrap_or(0)
    }

    /// Whether engine `i` still answers, as far as the build knows.
    pub fn alive(&self, i: usize) -> bool {
        self.members[i].alive.load(Ordering::SeqCst)
    }

    fn mark_dead(&self, i: usize) {
        self.members[i].alive.store(false, Ordering::SeqCst);
    }

    /// The job environment on engine `i`.
    pub fn env<'e>(&'e self, base: &JobEnv<'e>, i: usize) -> JobEnv<'e> {
        let m = &self.members[i];
        JobEnv {
            engine: m.spec.engine,
            engine_name: m.spec.name.as_deref(),
            shared: &m.shared,
            ..*base
        }
    }

    /// Another live engine for a job of platform `p`: the first that runs it natively,
    /// else the first that can emulate it; with whether it emulates.
    pub fn fallback(&self, p: &Platform) -> Option<(usize, bool)> {
        let live = |i: &usize| self.alive(*i);
        let all = 0..self.members.len();
        if let Some(i) = all
            .clone()
            .filter(live)
            .find(|i| self.members[*i].spec.runs_natively(p))
        {
            return Some((i, false));
        }
        all.filter(live)
            .find(|i| self.members[*i].spec.can_emulate(p))
            .map(|i| (i, true))
    }

    /// Moves `job` off dead engine `from`: to a fallback (reported), or an error.
    fn reassign(
        &self,
        base: &JobEnv<'_>,
        job: &Job,
        from: usize,
        failure: ExecError,
    ) -> Result<usize> {
        let name = self.members[from].spec.label().to_string();
        let lost = |why: String| ExecError::EngineLost {
            engine: name.clone(),
            job: job.id.to_string(),
            stage: job.stage.to_string(),
            why,
            source: Box::new(failure),
        };
        if self.on_loss == OnLoss::Fail {
            return Err(lost(String::new()));
        }
        let Some((to, emulated)) = self.fallback(&job.run_platform) else {
            return Err(lost(format!(
                "; no other engine can run {}",
                job.run_platform
            )));
        };
        base.ledger.move_job(job.id, to);
        base.reporter.report(&Event::Note {
            message: format!(
                "engine {name} stopped answering: {} ({}, {}) runs again on {}{}",
                job.id,
                job.stage,
                job.run_platform,
                self.members[to].spec.label(),
                if emulated { " (emulated)" } else { "" }
            ),
        });
        Ok(to)
    }
}

/// Runs `job` on the engine it is placed on; if that engine stops answering, on another
/// one as [`Fleet::on_loss`] says.
pub async fn run_placed(fleet: &Fleet<'_>, base: &JobEnv<'_>, job: &Job) -> Result<JobOutput> {
    let mut at = base.ledger.engine_of(job.id);
    if !fleet.alive(at) {
        let gone = ExecError::EngineOp {
            action: "starting a job".into(),
            source: Box::new(crate::engine::EngineError::Unreachable {
                endpoint: fleet.members[at].spec.label().to_string(),
                reason: "it stopped answering earlier in this build".into(),
                hint: String::new(),
            }),
        };
        at = fleet.reassign(base, job, at, gone)?;
    }
    loop {
        let env = fleet.env(base, at);
        let failure = match run_job(&env, job).await {
            Ok(out) => return Ok(out),
            Err(e) if e.is_cancelled() || base.cancel.is_cancelled() => return Err(e),
            Err(e) => e,
        };
        // A step that failed on an engine that still answers is the build's failure.
        if fleet.members[at].spec.engine.ping().await.is_ok() {
            return Err(failure);
        }
        fleet.mark_dead(at);
        at = fleet.reassign(base, job, at, failure)?;
    }
}

/// Jobs whose image an output needs and that finished on an engine that is gone now
/// (their image went with it): the ones to run again before export.
pub async fn lost_images(fleet: &Fleet<'_>, ledger: &Ledger) -> Vec<JobId> {
    let mut checked: BTreeMap<usize, bool> = BTreeMap::new();
    let mut out = Vec::new();
    for (id, o) in ledger.outputs() {
        if !ledger.needs[id.0].image || !matches!(o.fs, Fs::Image(_)) {
            continue;
        }
        let i = ledger.engine_of(id);
        let alive = match checked.get(&i) {
            Some(a) => *a,
            None => {
                let a = fleet.alive(i) && fleet.members[i].spec.engine.ping().await.is_ok();
                if !a {
                    fleet.mark_dead(i);
                }
                checked.insert(i, a);
                a
            }
        };
        if !alive {
            out.push(id);
        }
    }
    out
}

/// Removes every container and build volume on every engine; a dead engine gets a short
/// try. After a build that succeeded, the removals of retired containers go on (the
/// caller waits for them with [`crate::engine::Engine::cleanup`] when its outputs are
/// written), but where a build volume must go too, they are waited for: a volume in use
/// cannot be removed. Returns the first error of an engine that still answers.
pub async fn cleanup_all(
    fleet: &Fleet<'_>,
    succeeded: bool,
) -> std::result::Result<(), crate::engine::EngineError> {
    let mut first = None;
    for (i, m) in fleet.members.iter().enumerate() {
        let limit = if fleet.alive(i) { 120 } else { 5 };
        let volumes = m.shared.volumes.names();
        let work = async {
            let res = if succeeded && volumes.is_empty() {
                m.spec.engine.cleanup_unretired().await
            } else {
                m.spec.engine.cleanup().await
            };
            for v in volumes {
                let _ = m.spec.engine.remove_volume(&v).await;
            }
            res
        };
        match tokio::time::timeout(std::time::Duration::from_secs(limit), work).await {
            Ok(Err(e)) if fleet.alive(i) => {
                first.get_or_insert(e);
            }
            _ => {}
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
