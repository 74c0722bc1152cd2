//! Running one engine job: its [`Program`] in as few containers as its mounts allow.
//!
//! - The start: the latest checkpoint along the program's chain keys, else the start
//!   image (a pinned base is pulled by digest once per build, its platform checked), the
//!   empty image for the platform, or the parent's live container.
//! - A container is created when the first filesystem step needs one, with a shell as its
//!   process and standard input open, so it stays up; RUN steps go through `exec` with the
//!   step's env, user and workdir; COPY/ADD/WORKDIR through `put_archive`. Its mounts are
//!   those of the RUN steps ahead of it while they agree (cache mounts are unioned; bind,
//!   tmpfs and secret mounts and the network must be equal; nothing may write under a
//!   mount target); the first RUN that disagrees starts a new container (a commit first,
//!   when RUN work happened since the last image).
//! - Commits follow [`super::policy`]: a checkpoint before a step that reads the context
//!   when the RUN work since the last image outweighs a commit; at the end, a commit when
//!   the image is needed or the consumers' replay would cost more.
//! - The recorded outputs consumers read are written at the end; the container is then
//!   handed to the one consumer that continues in it, or removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use crate::once::OnceMap;

use super::keys::Keys;
use super::outputs::ContainerFiles;
use super::policy::Policy;
use super::program::{self, Position, Program, Start};
use super::{job_label, At, ExecError, Fs, JobEnv, JobOutput, Result};
use crate::dockerfile::Instruction;
use crate::engine::{
    ContainerId, Engine, ImageLookup, MountSpec, Network, PathLookup, RunSpec, CACHE_KEY_LABEL,
};
use crate::plan::{Job, JobId};
use crate::progress::Event;
use crate::stage::{Effect, State};

pub use super::bases::{base_image, scratch_image};

/// The state one engine's jobs share in a build (each engine has its own: see
/// [`super::fleet`]).
#[derive(Default)]
pub struct Shared {
    /// Step-cache checkpoints: chain key → image id (read once, grown by commits).
    pub checkpoints: Mutex<BTreeMap<String, String>>,
    /// One pull per pinned reference.
    pub(super) pulls: OnceMap<String, String>,
    /// The empty image per platform.
    pub(super) scratch: OnceMap<String, String>,
    /// Checkpoints loaded from a travelled cache, once per key (`None`: it failed).
    imports: OnceMap<String, Option<String>>,
    /// Live containers a job left for a consumer to continue in (and whether started).
    pub handover: Mutex<BTreeMap<JobId, (ContainerId, bool)>>,
    /// Volumes this build made.
    pub volumes: super::mounts::Volumes,
    /// Host folders behind bind mounts, kept until the build ends.
    host_dirs: Mutex<Vec<super::mounts::HostDir>>,
}

impl Shared {
    /// The state of one engine, with its step-cache checkpoints.
    pub fn new(checkpoints: BTreeMap<String, String>) -> Shared {
        Shared {
            checkpoints: Mutex::new(checkpoints),
            ..Shared::default()
        }
    }

    /// Keeps a host folder until the build ends.
    pub fn keep(&self, dir: super::mounts::HostDir) {
        lock(&self.host_dirs).push(dir);
    }

    fn checkpoint(&self, key: &str) -> Option<String> {
        lock(&self.checkpoints).get(key).cloned()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A container at some position of a program.
struct Live {
    id: ContainerId,
    started: bool,
    /// Non-cache mounts and network it was created with.
    fixed: Vec<MountSpec>,
    network: Network,
    /// Cache mounts by target.
    caches: BTreeMap<String, MountSpec>,
}

/// Where the runner is.
struct Cursor {
    /// The newest engine image of this program's filesystem and how many positions it
    /// covers.
    image: Option<String>,
    /// Filesystem steps since `image`.
    fs_since_image: bool,
    /// Seconds of filesystem work (RUN, COPY/ADD, WORKDIR) since `image`: what a replay of
    /// these steps would cost.
    run_since_image: f64,
    /// Whether a RUN step ran since `image` (replaying only COPY and WORKDIR steps costs
    /// little on any engine).
    ran_since_image: bool,
    live: Option<Live>,
}

/// Runs one job on `env.engine`; its deps' outputs are in `env.ledger`.
pub async fn run_job(env: &JobEnv<'_>, job: &Job) -> Result<JobOutput> {
    let started = Instant::now();
    let label = job_label(job);
    let result = run_inner(env, job, &label).await;
    match &result {
        Ok(_) => env.reporter.report(&Event::JobFinished {
            job: label,
            millis: started.elapsed().as_millis() as u64,
        }),
        Err(e) => env.reporter.report(&Event::JobFailed {
            job: label,
            error: e.to_string().lines().next().unwrap_or_default().to_string(),
        }),
    }
    result
}

async fn run_inner(env: &JobEnv<'_>, job: &Job, label: &str) -> Result<JobOutput> {
    let shared = env.shared;
    let here = env.engine_label();
    let prog = program::build(
        env.plan,
        env.keys,
        job,
        &|id| env.ledger.output_on(id, here),
        &|id| lock(&shared.handover).remove(&id),
    );
    env.reporter.report(&Event::JobStarted {
        job: label.to_string(),
        stage: job.stage.to_string(),
        platforms: job.platforms.iter().map(|p| p.to_string()).collect(),
        steps: prog.positions.len(),
        engine: env.engine_name.map(str::to_string),
    });
    let mut state = State::from_base(&prog.start_config);
    // The latest checkpoint along the program (a live start is newer than any).
    let mut first = 0;
    let mut cursor = Cursor {
        image: None,
        fs_since_image: false,
        run_since_image: 0.0,
        ran_since_image: false,
        live: None,
    };
    if let Start::Live(id, started) = &prog.start {
        cursor.live = Some(Live {
            id: id.clone(),
            started: *started,
            fixed: Vec::new(),
            network: Network::Default,
            caches: BTreeMap::new(),
        });
    } else if env.caches(job) {
        if let Some((n, img)) = latest_checkpoint(env, job, &prog, label).await {
            first = n + 1;
            cursor.image = Some(img);
        }
    }
    let mut cached = 0;
    for p in &prog.positions[..first] {
        // Checked when the step first ran.
        let _ = state.apply(&p.step.instruction);
        env.reporter.report(&Event::StepCached {
            job: label.to_string(),
            step: cached + 1,
        });
        cached += 1;
    }
    if cursor.image.is_none() && cursor.live.is_none() {
        cursor.image = Some(start_image(env, job, &prog).await?);
    }
    let profile = env.engine.profile();
    let size = match &cursor.image {
        Some(img) => match env.engine.inspect_image(img).await {
            Ok(ImageLookup::Found(info)) => info.size,
            _ => 0,
        },
        None => 0,
    };
    let policy = Policy::new(profile, size);
    let mut ran = 0;
    let mut run_total = 0.0;
    let work = async {
        for (n, p) in prog.positions.iter().enumerate().skip(first) {
            if env.cancel.is_cancelled() {
                return Err(ExecError::Cancelled);
            }
            let at = At {
                job: p.job,
                label,
                step: n + 1,
                line: p.step.line,
                args: &p.step.args,
            };
            env.reporter.report(&Event::StepStarted {
                job: label.to_string(),
                step: n + 1,
                of: prog.positions.len(),
                text: crate::progress::step_text(&p.step.instruction),
            });
            // A checkpoint before a step that reads the context, where rebuilds start.
            if reads_context(p)
                && cursor.fs_since_image
                && ((env.keep_checkpoints && cursor.ran_since_image)
                    || policy.checkpoint(cursor.run_since_image))
            {
                let key = if n == 0 {
                    prog.start_key.clone()
                } else {
                    prog.positions[n - 1].key.to_string()
                };
                commit(env, &at, &mut cursor, &state, &key).await?;
            }
            let expanded;
            let instr = match &p.step.template {
                // Names only the base's ENV defines (the base was not known when planning).
                Some(t) => {
                    let mut vars = state.env_map();
                    vars.extend(p.step.args.clone());
                    expanded = crate::plan::expand_instruction(t, p.step.line, &vars, env.escape)
                        .map_err(|e| ExecError::Plan(Box::new(e)))?;
                    &expanded
                }
                None => &p.step.instruction,
            };
            // COPY, ADD and RUN leave the config alone: `stage` computes a COPY's files
            // from the state before it, which this still is.
            let effect = state.apply(instr).map_err(|source| ExecError::Stage {
                stage: at.stage(),
                line: at.line,
                source: Box::new(source),
            })?;
            if effect == Effect::Config {
                continue;
            }
            let mounts = match instr {
                Instruction::Run(r) => Some(super::run::mounts(env, &at, &state, r, p).await?),
                _ => None,
            };
            ensure_live(env, &at, &mut cursor, &prog, n, &state, mounts.as_ref()).await?;
            let live = cursor.live.as_mut().expect("ensure_live made one");
            let id = live.id.clone();
            let step_started = Instant::now();
            match instr {
                Instruction::Run(r) => {
                    if !live.started {
                        start(env, &at, live).await?;
                    }
                    if let Some(m) = &mounts {
                        super::remote::write_secrets(env, &at, &id, m, r).await?;
                    }
                    let secs = super::run::execute(env, &at, &state, &id, r, p).await?;
                    cursor.run_since_image += secs;
                    cursor.ran_since_image = true;
                    run_total += secs;
                }
                Instruction::Copy(_) | Instruction::Add(_) => {
                    super::copy::execute_files(env, &at, &state, &id, instr, p).await?;
                }
                _ => match &effect {
                    Effect::MakeDir { path, user } => {
                        super::copy::make_workdir(env, &at, &id, path, user.as_deref()).await?;
                    }
                    _ => unreachable!("filesystem steps only"),
                },
            }
            // A consumer that replays these steps pays for its COPY and WORKDIR steps too
            // (put_archive, and the reads behind them), not only for its RUNs.
            if !matches!(instr, Instruction::Run(_)) {
                cursor.run_since_image += step_started.elapsed().as_secs_f64();
            }
            cursor.fs_since_image = true;
            ran += 1;
        }
        Ok(())
    };
    let res = work.await;
    if let Err(e) = res {
        if let Some(live) = cursor.live.take() {
            let _ = env.engine.remove_container(&live.id).await;
        }
        return Err(e);
    }
    finish(
        env, job, label, &prog, &state, cursor, &policy, run_total, ran, cached,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    env: &JobEnv<'_>,
    job: &Job,
    label: &str,
    prog: &Program<'_>,
    state: &State,
    mut cursor: Cursor,
    policy: &Policy,
    run_total: f64,
    ran: usize,
    cached: usize,
) -> Result<JobOutput> {
    let shared = env.shared;
    let needs = &env.ledger.needs[job.id.0];
    let key_out = env.keys.job(job.id).key_out.clone();
    let no_args = BTreeMap::new();
    let at = At {
        job,
        label,
        step: prog.positions.len(),
        line: job.steps.last().map_or(0, |s| s.line),
        args: &no_args,
    };
    // Record what this build's consumers read.
    let roots = &env.ledger.roots[job.id.0];
    if !roots.is_empty() {
        let temp;
        let id = match &cursor.live {
            Some(l) => l.id.clone(),
            None => {
                let img = cursor.image.clone().expect("an image or a container");
                temp = create(
                    env,
                    &at,
                    &RunSpec {
                        image: img,
                        platform: Some(prog.platform.clone()),
                        ..RunSpec::default()
                    },
                )
                .await?;
                temp.clone()
            }
        };
        let files = ContainerFiles {
            engine: env.engine,
            id: id.clone(),
        };
        let res = record_roots(env, &at, &key_out, roots, &files).await;
        if cursor.live.is_none() {
            env.engine.retire_container(&id);
        }
        res?;
    }
    let want_image = needs.image
        || (!needs.from_consumers.is_empty()
            && policy.commit_for_consumers(cursor.run_since_image));
    let fs = match (&cursor.image, cursor.fs_since_image) {
        (Some(img), false) => Fs::Image(img.clone()),
        _ if want_image => Fs::Image(commit(env, &at, &mut cursor, state, &key_out).await?),
        _ => Fs::Replay,
    };
    // The one consumer that continues in the container takes it (on this engine); else
    // it goes.
    let me = env.ledger.engine_of(job.id);
    let runs_after = needs
        .from_consumers
        .iter()
        .any(|k| env.ledger.output(*k).is_none() && env.ledger.engine_of(*k) == me);
    let handed_over = match cursor.live.take() {
        Some(live) if runs_after => {
            lock(&shared.handover).insert(job.id, (live.id.clone(), live.started));
            Some(live.id)
        }
        Some(live) => {
            env.engine.retire_container(&live.id);
            None
        }
        None => None,
    };
    let out = JobOutput {
        fs,
        config: state.config.clone(),
        platform: prog.platform.clone(),
        run_seconds: run_total,
        steps_run: ran,
        steps_cached: cached,
        handed_over,
        engine: env.engine_label().to_string(),
    };
    env.ledger.finish(job.id, out.clone());
    Ok(out)
}

async fn record_roots(
    env: &JobEnv<'_>,
    at: &At<'_>,
    key: &str,
    roots: &BTreeSet<String>,
    files: &dyn crate::stage::SourceFs,
) -> Result<()> {
    for r in roots {
        env.outputs
            .record(key, r, files)
            .await
            .map_err(|source| ExecError::Record {
                stage: at.stage(),
                path: r.clone(),
                source: Box::new(source),
            })?;
    }
    Ok(())
}

/// The latest position of the program with a checkpoint: one in the engine, or one a
/// travelled cache holds, loaded now. A checkpoint that cannot be loaded is a warning,
/// and the search goes on below it.
async fn latest_checkpoint(
    env: &JobEnv<'_>,
    job: &Job,
    prog: &Program<'_>,
    label: &str,
) -> Option<(usize, String)> {
    for n in (0..prog.positions.len()).rev() {
        let key = prog.positions[n].key;
        if let Some(img) = env.shared.checkpoint(key) {
            return Some((n, img));
        }
        if env.travelled.entry(key).is_none() {
            continue;
        }
        let cell = env.shared.imports.cell(&key.to_string());
        let loaded = cell
            .get_or_init(|| async {
                let t = Instant::now();
                let message = match load_travelled(env, job, prog, key, 0).await {
                    Ok(img) => {
                        env.reporter.report(&Event::Note {
                            message: format!(
                                "{label}: loaded the checkpoint of step {} from the cache in {:.1} s",
                                n + 1,
                                t.elapsed().as_secs_f64()
                            ),
                        });
                        return Some(img);
                    }
                    Err(why) => format!(
                        "warning: {label}: the cached checkpoint of step {} could not be \
                         loaded ({why}); its steps run",
                        n + 1
                    ),
                };
                env.reporter.report(&Event::Note { message });
                None
            })
            .await;
        if let Some(img) = loaded.clone() {
            return Some((n, img));
        }
    }
    None
}

/// Loads the travelled checkpoint of `key` into the engine, after what it sits on: its
/// parent checkpoint (loaded first when the engine lacks it) or the job's start image.
fn load_travelled<'a>(
    env: &'a JobEnv<'a>,
    job: &'a Job,
    prog: &'a Program<'a>,
    key: &'a str,
    depth: usize,
) -> futures::future::BoxFuture<'a, std::result::Result<String, String>> {
    Box::pin(async move {
        let parent = env
            .travelled
            .entry(key)
            .ok_or_else(|| "the cache has no entry for it".to_string())?;
        match parent {
            Some(p) if env.shared.checkpoint(&p).is_none() => {
                if depth >= 32 {
                    return Err("its chain of parents is too long".into());
                }
                let img = load_travelled(env, job, prog, &p, depth + 1).await?;
                lock(&env.shared.checkpoints).insert(p, img);
            }
            Some(_) => {}
            None => {
                start_image(env, job, prog)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let archive = env.travelled.archive(key).await?;
        env.engine
            .load(archive.body)
            .await
            .map_err(|e| e.to_string())?;
        match env.engine.inspect_image(&archive.image_id).await {
            Ok(ImageLookup::Found(_)) => {}
            _ => return Err(format!("the engine did not load {}", archive.image_id)),
        }
        lock(&env.shared.checkpoints).insert(key.to_string(), archive.image_id.clone());
        Ok(archive.image_id)
    })
}

/// The image a program starts from (not a live container).
async fn start_image(env: &JobEnv<'_>, job: &Job, prog: &Program<'_>) -> Result<String> {
    let no_args = BTreeMap::new();
    let label = job_label(job);
    let at = At {
        job,
        label: &label,
        step: 0,
        line: 0,
        args: &no_args,
    };
    match &prog.start {
        Start::Image(img) => Ok(img.clone()),
        Start::Live(..) => unreachable!("a live start needs no image"),
        Start::Scratch => scratch_image(env, &at, &prog.platform).await,
        Start::Base(reference) => base_image(env, &at, reference, &prog.platform).await,
    }
}

/// Creates a container, with the build's labels, reporting it.
pub async fn create(env: &JobEnv<'_>, at: &At<'_>, spec: &RunSpec) -> Result<ContainerId> {
    let mut spec = spec.clone();
    spec.labels
        .extend(env.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let id = env
        .engine
        .create_container(&spec)
        .await
        .map_err(at.engine(format!("creating a container from {}", short(&spec.image))))?;
    env.reporter.report(&Event::ContainerCreated {
        job: at.label.to_string(),
    });
    Ok(id)
}

fn short(image: &str) -> &str {
    image
        .strip_prefix("sha256:")
        .map(|h| &h[..12.min(h.len())])
        .unwrap_or(image)
}

/// Makes sure a container at the current position exists whose mounts suit the step
/// (`mounts`: a RUN's, `None` for COPY/ADD/WORKDIR).
async fn ensure_live(
    env: &JobEnv<'_>,
    at: &At<'_>,
    cursor: &mut Cursor,
    prog: &Program<'_>,
    n: usize,
    state: &State,
    mounts: Option<&super::run::RunMounts>,
) -> Result<()> {
    if let (Some(live), Some(m)) = (&cursor.live, mounts) {
        if !m.fits(&live.fixed, live.network, &live.caches) {
            // A new container: commit first when RUN work would otherwise be lost.
            let key = if n == 0 {
                prog.start_key.clone()
            } else {
                prog.positions[n - 1].key.to_string()
            };
            // (A handed-over container has no image yet: commit it too.)
            if cursor.fs_since_image || cursor.image.is_none() {
                commit(env, at, cursor, state, &key).await?;
            }
            let live = cursor.live.take().expect("checked");
            env.engine.retire_container(&live.id);
        }
    }
    if cursor.live.is_some() {
        return Ok(());
    }
    let image = cursor.image.clone().expect("an image when no container");
    // The mounts of the RUN steps ahead that agree with this one.
    let segment = super::run::segment_mounts(env, at, prog, n, state).await?;
    let spec = RunSpec {
        image,
        platform: Some(prog.platform.clone()),
        cmd: vec![state
            .shell()
            .first()
            .cloned()
            .unwrap_or_else(|| "/bin/sh".into())],
        env: state.env().to_vec(),
        user: None,
        workdir: None,
        labels: BTreeMap::new(),
        network: segment.network,
        mounts: segment.all(),
        open_stdin: true,
        build_args: BTreeMap::new(),
        extra_hosts: env.add_hosts.to_vec(),
    };
    let id = create(env, at, &spec).await?;
    cursor.live = Some(Live {
        id,
        started: false,
        fixed: segment.fixed.clone(),
        network: segment.network,
        caches: segment.caches.clone(),
    });
    Ok(())
}

async fn start(env: &JobEnv<'_>, at: &At<'_>, live: &mut Live) -> Result<()> {
    // The keep-alive shell must exist; `stat` follows no final link, so look at its target.
    let mut path = "/bin/sh".to_string();
    for _ in 0..8 {
        match env
            .engine
            .stat_path(&live.id, &path)
            .await
            .map_err(at.engine("looking for /bin/sh"))?
        {
            PathLookup::Missing => {
                return Err(ExecError::NoShell {
                    stage: at.stage(),
                    line: at.line,
                })
            }
            PathLookup::Found(st) => match st.kind {
                crate::engine::PathKind::Symlink { target } => {
                    path = if target.starts_with('/') {
                        target
                    } else {
                        format!("/bin/{target}")
                    }
                }
                _ => break,
            },
        }
    }
    env.engine
        .start_container(&live.id)
        .await
        .map_err(at.engine("starting the container"))?;
    live.started = true;
    Ok(())
}

/// Commits the live container as a checkpoint for `key`.
async fn commit(
    env: &JobEnv<'_>,
    at: &At<'_>,
    cursor: &mut Cursor,
    state: &State,
    key: &str,
) -> Result<String> {
    let live = cursor.live.as_ref().expect("a container to commit");
    let mut config = state.config.config.clone().unwrap_or_default();
    // An image's VOLUMEs become anonymous volumes (and mount points in the layer) of every
    // container made from it, and writes under them would be lost: BuildKit keeps them.
    // The authoritative config is xplat's state, so the engine's copy goes without.
    config.volumes = None;
    config
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(CACHE_KEY_LABEL.to_string(), key.to_string());
    let t = Instant::now();
    let img = env
        .engine
        .commit(&live.id, &config)
        .await
        .map_err(at.engine("committing"))?;
    env.reporter.report(&Event::Note {
        message: format!(
            "{}: committed a checkpoint in {:.1} s",
            at.label,
            t.elapsed().as_secs_f64()
        ),
    });
    lock(&env.shared.checkpoints).insert(key.to_string(), img.clone());
    cursor.image = Some(img.clone());
    cursor.fs_since_image = false;
    cursor.run_since_image = 0.0;
    cursor.ran_since_image = false;
    Ok(img)
}

/// Whether a step reads the build context (a COPY or ADD without `--from`, or a RUN with
/// a bind mount of the context): the place a rebuild after an edit starts.
fn reads_context(p: &Position<'_>) -> bool {
    match &p.step.instruction {
        Instruction::Copy(c) => c.from.is_none() && c.heredocs.is_empty(),
        Instruction::Add(a) => a.heredocs.is_empty(),
        _ => false,
    }
}

/// Keeps `Engine` in scope for trait methods used through `env.engine`.
#[allow(dead_code)]
fn _engine_in_scope(_: &dyn Engine) {}

/// The chain keys, for tests.
#[allow(dead_code)]
fn _keys_in_scope(_: &Keys) {}
