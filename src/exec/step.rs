//! Running one job: resolve FROM (with ONBUILD triggers), then each instruction in
//! turn. Metadata instructions edit the [`State`]; RUN, COPY, ADD and WORKDIR produce a
//! committed image, looked up first in the step cache.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::config::State;
use super::step_cache::StepInputs;
use super::{copy, run, Base, ExecError, ExecJob, JobOutput, Result};
use crate::context::BuildContext;
use crate::dockerfile::{Instruction, Spanned};
use crate::engine::{ContainerId, Engine, ImageConfig, ImageLookup, RunSpec, CACHE_KEY_LABEL};
use crate::platform::Platform;
use crate::progress::{shorten, Event, Reporter};

/// What every job of a build shares.
pub struct JobEnv<'a> {
    /// The engine.
    pub engine: &'a dyn Engine,
    /// Where progress goes.
    pub reporter: &'a dyn Reporter,
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

/// Where a step runs: its job, stage and line.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// The job.
    pub job: &'a ExecJob,
    /// 1-based step number.
    pub step: usize,
    /// Dockerfile line.
    pub line: usize,
}

impl At<'_> {
    /// Wraps an engine error with the stage, line and what was being done.
    pub fn engine(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(crate::engine::EngineError) -> ExecError + '_ {
        let action = action.into();
        move |source| ExecError::Engine {
            stage: self.job.stage.clone(),
            line: self.line,
            action,
            source: Box::new(source),
        }
    }

    /// An [`ExecError::Unsupported`] here.
    pub fn unsupported(&self, what: impl Into<String>) -> ExecError {
        ExecError::Unsupported {
            stage: self.job.stage.clone(),
            line: self.line,
            what: what.into(),
        }
    }
}

/// Runs one job on top of the outputs of the jobs it depends on (by job index).
pub async fn run_job(
    env: &JobEnv<'_>,
    job: &ExecJob,
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<JobOutput> {
    let started = Instant::now();
    let result = run_job_inner(env, job, deps).await;
    match &result {
        Ok(_) => env.reporter.report(&Event::JobFinished {
            job: job.id.clone(),
            millis: started.elapsed().as_millis() as u64,
        }),
        Err(e) => env.reporter.report(&Event::JobFailed {
            job: job.id.clone(),
            error: e.to_string().lines().next().unwrap_or_default().to_string(),
        }),
    }
    result
}

async fn run_job_inner(
    env: &JobEnv<'_>,
    job: &ExecJob,
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<JobOutput> {
    let from = At {
        job,
        step: 0,
        line: 0,
    };
    let (mut image, base_config, platform) = resolve_base(env, job, deps, &from).await?;
    let mut steps: Vec<Spanned<Instruction>> = onbuild_triggers(&base_config, job)?;
    steps.extend(job.steps.iter().cloned());
    env.reporter.report(&Event::JobStarted {
        job: job.id.clone(),
        stage: job.stage.clone(),
        platforms: job.serves.iter().map(|p| p.to_string()).collect(),
        steps: steps.len(),
    });
    let mut state = State::new(base_config, &job.stage, job.escape);
    let (mut run_count, mut cached) = (0, 0);
    for (n, s) in steps.iter().enumerate() {
        if env.cancel.is_cancelled() {
            return Err(ExecError::Cancelled);
        }
        let at = At {
            job,
            step: n + 1,
            line: s.span.start_line,
        };
        env.reporter.report(&Event::StepStarted {
            job: job.id.clone(),
            step: n + 1,
            of: steps.len(),
            text: shorten(&describe(&s.node), 60),
        });
        if state.apply(&s.node, at.line, &job.arg_values)? {
            continue;
        }
        let outcome = match &s.node {
            Instruction::Run(r) => run::execute(env, &at, &state, &image, r).await?,
            Instruction::Copy(c) => copy::execute_copy(env, &at, &state, &image, c, deps).await?,
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
/// Cached step images are found by a tag derived from the key ([`cache_tag`]), not by
/// listing labels: the engine hides intermediate images (those with children) from an
/// image list without `all=true`, and a tag is an exact lookup.
pub async fn lookup(env: &JobEnv<'_>, at: &At<'_>, key: &str) -> Result<Option<String>> {
    if env.no_cache {
        return Ok(None);
    }
    let tag = cache_tag(key);
    match env
        .engine
        .inspect_image(&tag)
        .await
        .map_err(at.engine("looking up the step cache"))?
    {
        ImageLookup::Found(info)
            if info.config.labels.get(CACHE_KEY_LABEL).map(String::as_str) == Some(key) =>
        {
            env.reporter.report(&Event::StepCached {
                job: at.job.id.clone(),
                step: at.step,
            });
            Ok(Some(info.id))
        }
        _ => Ok(None),
    }
}

/// The repository of step-cache tags (`xplat prune` removes it).
pub const CACHE_REPO: &str = "xplat-cache";

/// The tag of the image caching the step with `key`: `xplat-cache:<hex>`.
pub fn cache_tag(key: &str) -> String {
    format!("{CACHE_REPO}:{}", key.trim_start_matches("sha256:"))
}

/// The step key for `instr` in `state` on `parent`, with `content` (what it reads).
pub fn key(at: &At<'_>, state: &State, parent: &str, instr: &Instruction, content: &str) -> String {
    StepInputs::new(&at.job.key, parent, instr, state, content).key()
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
        job: at.job.id.clone(),
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
    let image = env
        .engine
        .commit(id, &config)
        .await
        .map_err(at.engine("committing the step"))?;
    env.engine
        .tag_image(&image, &cache_tag(key))
        .await
        .map_err(at.engine("tagging the step's cache image"))?;
    Ok(image)
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
    job: &ExecJob,
    deps: &BTreeMap<usize, JobOutput>,
    at: &At<'_>,
) -> Result<(String, ImageConfig, Platform)> {
    match &job.base {
        Base::Scratch => Ok((
            env.scratch_image.to_string(),
            ImageConfig::default(),
            job.platform.clone(),
        )),
        Base::Job(i) => {
            let out = deps.get(i).ok_or_else(|| ExecError::DependencyFailed {
                job: job.id.clone(),
            })?;
            Ok((out.image.clone(), out.config.clone(), out.platform.clone()))
        }
        Base::Image(reference) => {
            let info = image_for_platform(env, at, reference, &job.platform).await?;
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
        if info.platform.architecture == platform.architecture
            && info.platform.variant == platform.variant
        {
            return Ok(*info);
        }
    }
    let job = at.job.id.clone();
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
            stage: at.job.stage.clone(),
            line: at.line,
            message: format!("image {reference} is missing after pulling it"),
        }),
    }
}

/// The base image's ONBUILD triggers as instructions (they run first, at the FROM line).
fn onbuild_triggers(base: &ImageConfig, job: &ExecJob) -> Result<Vec<Spanned<Instruction>>> {
    if base.on_build.is_empty() {
        return Ok(Vec::new());
    }
    let text = format!("FROM scratch\n{}\n", base.on_build.join("\n"));
    let df = crate::dockerfile::parse(&text)?;
    let line = job
        .steps
        .first()
        .map(|s| s.span.start_line.saturating_sub(1))
        .unwrap_or(1);
    Ok(df.stages[0]
        .instructions
        .iter()
        .map(|s| Spanned {
            node: s.node.clone(),
            span: crate::dockerfile::Span {
                start_line: line,
                end_line: line,
            },
        })
        .collect())
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
