//! Running one job: resolve FROM (with ONBUILD triggers), then each planned step in
//! turn. Metadata instructions edit the [`State`]; RUN, COPY, ADD and WORKDIR produce a
//! committed image, looked up first in the step cache.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::config::State;
use super::step_cache::StepInputs;
use super::{copy, job_label, run, ExecError, JobOutput, Result};
use crate::context::BuildContext;
use crate::dockerfile::{Dockerfile, Instruction};
use crate::engine::{ContainerId, Engine, ImageConfig, ImageLookup, RunSpec, CACHE_KEY_LABEL};
use crate::plan::{expand_instruction, Base, BuildPlan, Job, Mode, Step};
use crate::platform::Platform;
use crate::progress::{shorten, Event, Reporter};

/// What every job of a build shares.
pub struct JobEnv<'a> {
    /// The engine.
    pub engine: &'a dyn Engine,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
    /// The plan being run.
    pub plan: &'a BuildPlan,
    /// The parsed Dockerfile the plan was made from (original instructions for
    /// re-expansion, the escape character).
    pub dockerfile: &'a Dockerfile,
    /// The build context (COPY/ADD sources, bind mounts).
    pub context: Option<&'a BuildContext>,
    /// Fires on Ctrl-C.
    pub cancel: &'a CancellationToken,
    /// `--no-cache`: never reuse a cached step.
    pub no_cache: bool,
    /// `--secret id=…,src=…`: secret id → host file.
    pub secrets: &'a BTreeMap<String, PathBuf>,
    /// Image id of the empty image used for `FROM scratch`.
    pub scratch_image: &'a str,
    /// Labels put on every container of this build (e.g. `xplat.build=<id>`).
    pub labels: &'a BTreeMap<String, String>,
}

/// Where a step runs: its job, stage and line, and the ARGs it sees.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The job.
    pub job: &'a Job,
    /// The job's label in events ([`job_label`]).
    pub label: &'a str,
    /// 1-based step number.
    pub step: usize,
    /// Dockerfile line.
    pub line: usize,
    /// The ARG values the step sees (planned; RUN gives them to the process).
    pub args: &'a BTreeMap<String, String>,
}

impl At<'_> {
    /// The stage's name (or `stage N`) for errors.
    pub fn stage(&self) -> String {
        stage_label(&self.job.stage)
    }

    /// Wraps an engine error with the stage, line and what was being done.
    pub fn engine(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(crate::engine::EngineError) -> ExecError + '_ {
        let action = action.into();
        move |source| ExecError::Engine {
            stage: self.stage(),
            line: self.line,
            action,
            source: Box::new(source),
        }
    }

    /// An [`ExecError::Unsupported`] here.
    pub fn unsupported(&self, what: impl Into<String>) -> ExecError {
        ExecError::Unsupported {
            stage: self.stage(),
            line: self.line,
            what: what.into(),
        }
    }
}

/// Runs one job on top of the outputs of the jobs it depends on (by job index).
pub async fn run_job(
    env: &JobEnv<'_>,
    job: &Job,
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<JobOutput> {
    let started = Instant::now();
    let label = job_label(job);
    let result = run_job_inner(env, job, &label, deps).await;
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

async fn run_job_inner(
    env: &JobEnv<'_>,
    job: &Job,
    label: &str,
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<JobOutput> {
    let no_args = BTreeMap::new();
    let from = At {
        job,
        label,
        step: 0,
        line: from_line(env, job),
        args: &no_args,
    };
    let (mut image, base_config, platform) = resolve_base(env, job, deps, &from).await?;
    // The plan runs the triggers of a stage base and of a resolved image itself.
    let mut steps: Vec<Step> = match &job.base {
        Base::Image { pinned: None, .. } => onbuild_triggers(env, &base_config, &from)?,
        _ => Vec::new(),
    };
    let reexpand = starts_from_image(env.plan, job);
    steps.extend(job.steps.iter().cloned());
    env.reporter.report(&Event::JobStarted {
        job: label.to_string(),
        stage: job.stage.to_string(),
        platforms: job.platforms.iter().map(|p| p.to_string()).collect(),
        steps: steps.len(),
    });
    let mut state = State::new(base_config, &stage_label(&job.stage));
    let (mut run_count, mut cached) = (0, 0);
    for (n, s) in steps.iter().enumerate() {
        if env.cancel.is_cancelled() {
            return Err(ExecError::Cancelled);
        }
        let at = At {
            job,
            label,
            step: n + 1,
            line: s.line,
            args: &s.args,
        };
        let instruction = if reexpand && !s.unresolved.is_empty() {
            Cow::Owned(reexpanded(env, job, s, &state)?)
        } else {
            Cow::Borrowed(&s.instruction)
        };
        env.reporter.report(&Event::StepStarted {
            job: label.to_string(),
            step: n + 1,
            of: steps.len(),
            text: shorten(&describe(&instruction), 60),
        });
        if state.apply(&instruction, at.line)? {
            continue;
        }
        let outcome = match instruction.as_ref() {
            Instruction::Run(_) if job.mode == Mode::Assembled => {
                return Err(ExecError::RunInAssembledJob {
                    stage: at.stage(),
                    line: at.line,
                    platform: job.run_platform.to_string(),
                })
            }
            Instruction::Run(r) => {
                let r = at_workdir(r, &s.mounts_at_workdir, &state, &at)?;
                run::execute(env, &at, &state, &image, &r, &s.mount_from, deps).await?
            }
            Instruction::Copy(c) => {
                copy::execute_copy(env, &at, &state, &image, c, s.from.as_ref(), deps).await?
            }
            Instruction::Add(a) => copy::execute_add(env, &at, &state, &image, a).await?,
            Instruction::Workdir(_) => workdir(env, &at, &state, &image).await?,
            other => return Err(at.unsupported(other.keyword())),
        };
        match outcome {
            StepOutcome::Cached(id) => {
                cached += 1;
                image = id;
            }
            StepOutcome::Ran(id) => {
                run_count += 1;
                image = id;
            }
        }
    }
    Ok(JobOutput {
        image,
        config: state.config,
        platform,
        steps_run: run_count,
        steps_cached: cached,
    })
}

/// Whether the job's filesystem comes from an external image, directly or through
/// the stages it builds on: only then can a base config ENV define names the planner
/// could not resolve.
fn starts_from_image(plan: &BuildPlan, job: &Job) -> bool {
    let mut j = job;
    loop {
        match &j.base {
            Base::Image { .. } => return true,
            Base::Scratch => return false,
            Base::Stage { job } => j = plan.job(*job),
        }
    }
}

/// The step's template (its instruction as written) expanded again with the current
/// config Env (base image ENV included) overridden by the step's ARGs: the later
/// setter wins, and an ARG set after an ENV of the same name is in `step.args`.
fn reexpanded(env: &JobEnv<'_>, job: &Job, step: &Step, state: &State) -> Result<Instruction> {
    let template = step.template.as_ref().ok_or_else(|| ExecError::Invalid {
        stage: job.stage.to_string(),
        line: step.line,
        message: "the plan lists unresolved names but no template".into(),
    })?;
    let mut vars = state.env_map();
    vars.extend(step.args.clone());
    Ok(expand_instruction(
        template,
        step.line,
        &vars,
        env.dockerfile.directives.escape,
    )?)
}

/// The RUN with the mounts the plan left to the WORKDIR ([`Step::mounts_at_workdir`])
/// put at or under the current WORKDIR; `/` is refused as BuildKit refuses it.
fn at_workdir(
    r: &crate::dockerfile::Run,
    which: &[usize],
    state: &State,
    at: &At<'_>,
) -> Result<crate::dockerfile::Run> {
    let mut r = r.clone();
    for &i in which {
        if let Some(m) = r.mounts.get_mut(i) {
            let target = super::config::join_workdir(
                state.config.working_dir.as_deref(),
                m.target.as_deref().unwrap_or(""),
            );
            if target == "/" {
                return Err(ExecError::Invalid {
                    stage: at.stage(),
                    line: at.line,
                    message: format!("invalid mount target \"/\" (mount {})", i + 1),
                });
            }
            m.target = Some(target);
        }
    }
    Ok(r)
}

fn from_line(env: &JobEnv<'_>, job: &Job) -> usize {
    env.dockerfile
        .stages
        .get(job.stage.index)
        .map(|s| s.span.start_line)
        .unwrap_or(0)
}

/// How a filesystem step got its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Reused from the step cache.
    Cached(String),
    /// Executed and committed.
    Ran(String),
}

/// Looks the step's key up in the cache (unless `--no-cache`), reporting a hit.
///
/// Cached step images are found by their `xplat.cache.key` label (the engine lists
/// intermediate images too: see `Engine::find_image_by_label`). One lookup mechanism
/// only: the first pass also tagged every step image `xplat-cache:<key>`, which put one
/// line per cached step into `docker images` and is no longer needed.
pub async fn lookup(env: &JobEnv<'_>, at: &At<'_>, key: &str) -> Result<Option<String>> {
    if env.no_cache {
        return Ok(None);
    }
    match env
        .engine
        .find_image_by_label(CACHE_KEY_LABEL, key)
        .await
        .map_err(at.engine("looking up the step cache"))?
    {
        ImageLookup::Found(info) => {
            env.reporter.report(&Event::StepCached {
                job: at.label.to_string(),
                step: at.step,
            });
            Ok(Some(info.id))
        }
        ImageLookup::Missing => Ok(None),
    }
}

/// The step key for `instr` in `state` on `parent`, with `content` (what it reads).
pub fn key(at: &At<'_>, state: &State, parent: &str, instr: &Instruction, content: &str) -> String {
    StepInputs::new(&at.job.key.0, parent, instr, state, at.args, content).key()
}

/// Creates a container, reporting it.
pub async fn create(env: &JobEnv<'_>, at: &At<'_>, spec: &RunSpec) -> Result<ContainerId> {
    let mut spec = spec.clone();
    spec.labels
        .extend(env.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    let spec = &spec;
    let id = env
        .engine
        .create_container(spec)
        .await
        .map_err(at.engine(format!("creating a container from {}", short(&spec.image))))?;
    env.reporter.report(&Event::ContainerCreated {
        job: at.label.to_string(),
    });
    Ok(id)
}

/// Commits a container with the state's config plus the step-cache label.
pub async fn commit(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    state: &State,
    key: &str,
) -> Result<String> {
    let mut config = state.config.clone();
    config
        .labels
        .insert(CACHE_KEY_LABEL.to_string(), key.to_string());
    env.engine
        .commit(id, &config)
        .await
        .map_err(at.engine("committing the step"))
}

/// Removes a container; errors are ignored here because `cleanup` retries at the end.
pub async fn remove(env: &JobEnv<'_>, id: &ContainerId) {
    let _ = env.engine.remove_container(id).await;
}

async fn workdir(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
) -> Result<StepOutcome> {
    let instr = Instruction::Workdir(state.config.working_dir.clone().unwrap_or_default());
    let key = key(at, state, parent, &instr, "");
    if let Some(id) = lookup(env, at, &key).await? {
        return Ok(StepOutcome::Cached(id));
    }
    // The engine creates the working directory (0755, root) when it creates the container.
    let spec = RunSpec {
        image: parent.to_string(),
        workdir: state.config.working_dir.clone(),
        env: state.config.env.clone(),
        ..Default::default()
    };
    let id = create(env, at, &spec).await?;
    let res = commit(env, at, &id, state, &key).await;
    remove(env, &id).await;
    res.map(StepOutcome::Ran)
}

async fn resolve_base(
    env: &JobEnv<'_>,
    job: &Job,
    deps: &BTreeMap<usize, JobOutput>,
    at: &At<'_>,
) -> Result<(String, ImageConfig, Platform)> {
    match &job.base {
        Base::Scratch => Ok((
            env.scratch_image.to_string(),
            ImageConfig::default(),
            job.run_platform.clone(),
        )),
        Base::Stage { job: dep } => {
            let out = deps
                .get(&dep.0)
                .ok_or_else(|| ExecError::DependencyFailed {
                    job: at.label.to_string(),
                })?;
            Ok((out.image.clone(), out.config.clone(), out.platform.clone()))
        }
        Base::Image { reference, .. } => {
            let info = image_for_platform(env, at, reference, &job.run_platform).await?;
            Ok((info.id.clone(), info.config.clone(), info.platform.clone()))
        }
    }
}

/// A local image for `platform`, pulled when missing or for another architecture.
pub async fn image_for_platform(
    env: &JobEnv<'_>,
    at: &At<'_>,
    reference: &str,
    platform: &Platform,
) -> Result<crate::engine::ImageInfo> {
    let inspect = |r| env.engine.inspect_image(r);
    if let ImageLookup::Found(info) = inspect(reference)
        .await
        .map_err(at.engine(format!("inspecting {reference}")))?
    {
        // `matches`, not `==`: an arm64 image often says variant v8, the target none.
        if platform.matches(&info.platform) {
            return Ok(*info);
        }
    }
    let job = at.label.to_string();
    let sink = move |p: crate::engine::PullProgress| {
        if p.layer.is_none() {
            let _ = (&job, p);
        }
    };
    env.engine
        .pull_image(reference, platform, &sink)
        .await
        .map_err(at.engine(format!("pulling {reference} for {platform}")))?;
    match inspect(reference)
        .await
        .map_err(at.engine(format!("inspecting {reference}")))?
    {
        ImageLookup::Found(info) => Ok(*info),
        ImageLookup::Missing => Err(ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: format!("image {reference} is missing after pulling it"),
        }),
    }
}

/// The base image's ONBUILD triggers as planned steps (they run first, at the FROM
/// line), expanded with the base image's ENV. Triggers see no ARG.
fn onbuild_triggers(env: &JobEnv<'_>, base: &ImageConfig, at: &At<'_>) -> Result<Vec<Step>> {
    if base.on_build.is_empty() {
        return Ok(Vec::new());
    }
    let text = format!("FROM scratch\n{}\n", base.on_build.join("\n"));
    let df = crate::dockerfile::parse(&text)?;
    let vars = State::new(base.clone(), &at.stage()).env_map();
    let escape = env.dockerfile.directives.escape;
    df.stages[0]
        .instructions
        .iter()
        .map(|s| {
            if matches!(s.node, Instruction::Copy(ref c) if c.from.is_some()) {
                return Err(at.unsupported("COPY --from in an ONBUILD trigger"));
            }
            Ok(Step {
                line: at.line,
                instruction: expand_instruction(&s.node, at.line, &vars, escape)?,
                args: BTreeMap::new(),
                from: None,
                mount_from: Vec::new(),
                unresolved: Vec::new(),
                template: None,
                mounts_at_workdir: Vec::new(),
            })
        })
        .collect()
}

/// A one-line description of an instruction for progress.
pub fn describe(instr: &Instruction) -> String {
    use crate::dockerfile::Command;
    let rest = match instr {
        Instruction::Run(r) => match &r.command {
            Command::Shell(s) => s.clone(),
            Command::Exec(v) => format!("{v:?}"),
        },
        Instruction::Copy(c) => format!("{} {}", c.sources.join(" "), c.dest),
        Instruction::Add(a) => format!("{} {}", a.sources.join(" "), a.dest),
        Instruction::Workdir(w) | Instruction::User(w) => w.clone(),
        _ => String::new(),
    };
    format!("{} {}", instr.keyword(), rest).trim().to_string()
}

fn short(image: &str) -> &str {
    image
        .strip_prefix("sha256:")
        .map(|h| &h[..12.min(h.len())])
        .unwrap_or(image)
}

/// How errors name a stage: `stage build`, or `stage 0` when it has no name.
fn stage_label(stage: &crate::plan::StageRef) -> String {
    match &stage.name {
        Some(name) => format!("stage {name}"),
        None => stage.to_string(),
    }
}
