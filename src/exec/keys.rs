//! Chain keys: before anything runs, every step of every job gets a key that covers
//! everything its result depends on, and each job a key for its whole result.
//!
//! `key_in` of a job is its base: the pinned base image and the run platform, the empty
//! filesystem for a platform, or the `key_out` of the job it is built `FROM`. Each step's
//! key hashes the previous key, the step as planned (instruction and the ARGs it sees)
//! and the content it reads: the context files of a COPY/ADD (contents, modes, paths;
//! not mtimes), the `key_out` (or pinned image) a `--from` names, the context files a
//! bind mount shows, the bytes of an ADD URL. Two jobs that replay the same steps on the
//! same base get the same keys, so their checkpoints are shared.
//!
//! The config state is followed through the steps (WORKDIR decides COPY destinations,
//! which are part of the content hash), with the one metadata interpreter.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{At, ExecError, Result};
use crate::context::{hash_sources, BuildContext, CopySpec};
use crate::dockerfile::{Instruction, MountType};
use crate::oci::ImageConfig;
use crate::plan::{base_key, Bases};
use crate::plan::{Base, BuildPlan, Job, JobId, Source, Step};
use crate::platform::Platform;
use crate::stage::{Download, SourceKind, StageError, State};

/// The keys of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobKeys {
    /// The key of the filesystem the job starts from.
    pub key_in: String,
    /// The key after each step, in order.
    pub steps: Vec<String>,
    /// The key of the job's result (`key_in` for a job without steps).
    pub key_out: String,
    /// The config at the job's start.
    pub start: ImageConfig,
    /// The config at the job's end.
    pub end: ImageConfig,
}

/// Keys of every job (by job id), and the downloads ADD steps need.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// By job id.
    pub jobs: Vec<JobKeys>,
    /// `ADD <url>` bodies, fetched once for the key, used again when the step runs.
    pub downloads: BTreeMap<(JobId, usize), Vec<Download>>,
}

impl Keys {
    /// The keys of a job.
    pub fn job(&self, id: JobId) -> &JobKeys {
        &self.jobs[id.0]
    }
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[derive(Serialize)]
struct StepForm<'a> {
    instruction: &'a Instruction,
    args: &'a BTreeMap<String, String>,
}

/// The key of a step given the previous key and the content it reads.
pub fn step_key(prev: &str, step: &Step, content: &str) -> String {
    let form = serde_json::to_string(&StepForm {
        instruction: &step.instruction,
        args: &step.args,
    })
    .expect("a planned step serializes");
    sha(&["step", prev, &form, content])
}

/// The key of a base image (or scratch) for a platform.
pub fn base_image_key(pinned: &str, platform: &Platform) -> String {
    sha(&["base", pinned, &platform.format_all()])
}

/// Computes the keys of every job of `plan`, in order (jobs are topologically sorted).
pub async fn compute(
    plan: &BuildPlan,
    bases: &Bases,
    context: Option<&BuildContext>,
    scratch: &dyn Fn(&Platform) -> ImageConfig,
) -> Result<Keys> {
    let mut keys = Keys::default();
    for job in &plan.jobs {
        let (key_in, start) = match &job.base {
            Base::Image { reference, .. } => {
                let b = base_of(bases, reference, &job.run_platform, job)?;
                (
                    base_image_key(&b.info.pinned, &job.run_platform),
                    b.info.config.clone(),
                )
            }
            Base::Scratch => (
                base_image_key("scratch", &job.run_platform),
                scratch(&job.run_platform),
            ),
            Base::Stage { job: parent } => {
                let p = &keys.jobs[parent.0];
                (p.key_out.clone(), p.end.clone())
            }
        };
        let mut state = State::from_base(&start);
        let mut prev = key_in.clone();
        let mut steps = Vec::with_capacity(job.steps.len());
        for (i, step) in job.steps.iter().enumerate() {
            let content = content_of(job, i, step, &state, &keys, bases, context).await?;
            if let Some(d) = content.1 {
                keys.downloads.insert((job.id, i), d);
            }
            prev = step_key(&prev, step, &content.0);
            steps.push(prev.clone());
            // A refused instruction fails when the step runs, with its location.
            let _ = state.apply(&step.instruction);
        }
        keys.jobs.push(JobKeys {
            key_out: prev,
            key_in,
            steps,
            start,
            end: state.config,
        });
    }
    Ok(keys)
}

fn base_of<'b>(
    bases: &'b Bases,
    reference: &str,
    platform: &Platform,
    job: &Job,
) -> Result<&'b crate::plan::ResolvedBase> {
    bases
        .get(&base_key(reference, platform))
        .ok_or_else(|| ExecError::UnresolvedImage {
            stage: super::stage_label(&job.stage),
            reference: reference.to_string(),
            platform: platform.format_all(),
        })
}

/// The key part of what a step reads, and the downloads an ADD URL made.
async fn content_of(
    job: &Job,
    i: usize,
    step: &Step,
    state: &State,
    keys: &Keys,
    bases: &Bases,
    context: Option<&BuildContext>,
) -> Result<(String, Option<Vec<Download>>)> {
    let no_args = BTreeMap::new();
    let label = super::job_label(job);
    let at = At {
        job,
        label: &label,
        step: i + 1,
        line: step.line,
        args: &no_args,
    };
    let source_key = |s: &Source| -> Result<String> {
        Ok(match s {
            Source::Stage { job } => keys.jobs[job.0].key_out.clone(),
            Source::Image { reference } => base_of(bases, reference, &job.run_platform, job)?
                .info
                .pinned
                .clone(),
        })
    };
    let stage_err = |source| ExecError::Stage {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    };
    match &step.instruction {
        Instruction::Copy(c) if !c.heredocs.is_empty() => Ok((String::new(), None)),
        Instruction::Copy(c) => match &step.from {
            Some(s) => Ok((source_key(s)?, None)),
            None => {
                let spec = probe_spec(
                    state, &c.sources, &c.dest, &c.chmod, &c.exclude, c.parents, false,
                );
                Ok((context_hash(&at, context, &spec)?, None))
            }
        },
        Instruction::Add(a) => match crate::stage::copy::source_kind(&step.instruction) {
            Some(SourceKind::Heredoc) => Ok((String::new(), None)),
            Some(SourceKind::Git) => Err(stage_err(StageError::GitSource {
                src: a
                    .sources
                    .iter()
                    .find(|s| crate::stage::url::is_git(s))
                    .cloned()
                    .unwrap_or_default(),
            })),
            Some(SourceKind::Url) => {
                let files = crate::assemble::fetch::downloads(&step.instruction)
                    .await
                    .map_err(|source| ExecError::Fetch {
                        stage: at.stage(),
                        line: at.line,
                        source: Box::new(source),
                    })?;
                Ok((downloads_hash(&files), Some(files)))
            }
            _ => {
                let spec = probe_spec(
                    state,
                    &a.sources,
                    &a.dest,
                    &a.chmod,
                    &a.exclude,
                    false,
                    a.unpack.unwrap_or(true),
                );
                Ok((context_hash(&at, context, &spec)?, None))
            }
        },
        Instruction::Run(r) => {
            let mut parts = Vec::new();
            for (n, m) in r.mounts.iter().enumerate() {
                if let Some(Some(s)) = step.mount_from.get(n) {
                    parts.push(format!("{n}:{}", source_key(s)?));
                } else if m.kind == MountType::Bind && m.from.is_none() {
                    let src = m.source.clone().unwrap_or_else(|| ".".into());
                    let spec = probe_spec(state, &[src], "/", &None, &[], false, false);
                    parts.push(format!("{n}:{}", context_hash(&at, context, &spec)?));
                }
            }
            Ok((parts.join(","), None))
        }
        _ => Ok((String::new(), None)),
    }
}

/// Content hash of ADD downloads: URLs and bytes (not mtimes, which the reference leaves
/// out of cache decisions).
fn downloads_hash(files: &[Download]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.url.as_bytes());
        h.update([0]);
        h.update((f.data.len() as u64).to_be_bytes());
        h.update(&f.data);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// A COPY spec for hashing: `--chown` left out (it is part of the instruction already),
/// so the key needs no look into the destination image.
fn probe_spec(
    state: &State,
    sources: &[String],
    dest: &str,
    chmod: &Option<String>,
    exclude: &[String],
    parents: bool,
    unpack: bool,
) -> CopySpec {
    CopySpec {
        sources: sources.to_vec(),
        dest: dest.to_string(),
        workdir: state.workdir(),
        chown: None,
        chmod: chmod.clone(),
        excludes: exclude.to_vec(),
        parents,
        unpack,
        created_mtime: 0,
    }
}

fn context_hash(at: &At<'_>, context: Option<&BuildContext>, spec: &CopySpec) -> Result<String> {
    let ctx =
        context.ok_or_else(|| at.unsupported("COPY from the context without a build context"))?;
    let err = |source| ExecError::Context {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    };
    let entries = ctx
        .resolve_copy(spec, &crate::context::copy::UnknownImage)
        .map_err(err)?;
    hash_sources(&entries, ctx).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(df: &str) -> (BuildPlan, crate::dockerfile::Dockerfile) {
        let d = crate::dockerfile::parse(df).unwrap();
        let amd = Platform::parse("linux/amd64").unwrap();
        let opts = crate::plan::PlanOptions {
            targets: vec![amd.clone(), Platform::parse("linux/arm64").unwrap()],
            build_platform: amd,
            build_args: BTreeMap::new(),
            target_stage: None,
            ..Default::default()
        };
        (
            crate::plan::plan(&d, &opts, &crate::platform::Catalog::embedded()).unwrap(),
            d,
        )
    }

    #[tokio::test]
    async fn keys_chain_and_differ_where_inputs_differ() {
        let (plan, _) = planned(
            "FROM scratch AS a\nENV X=1\nWORKDIR /w\nFROM a\nARG TARGETARCH\nRUN echo $TARGETARCH\n",
        );
        let empty = |p: &Platform| ImageConfig::for_platform(p, None);
        let k = compute(&plan, &Bases::new(), None, &empty).await.unwrap();
        let k2 = compute(&plan, &Bases::new(), None, &empty).await.unwrap();
        assert_eq!(k.jobs, k2.jobs, "stable");
        for job in &plan.jobs {
            let jk = k.job(job.id);
            assert_eq!(jk.steps.len(), job.steps.len());
            if let Base::Stage { job: p } = job.base {
                assert_eq!(jk.key_in, k.job(p).key_out, "chained to the parent");
            }
        }
        let finals: Vec<&str> = plan
            .targets
            .iter()
            .map(|t| k.job(t.final_job).key_out.as_str())
            .collect();
        assert_ne!(finals[0], finals[1], "TARGETARCH differs");
        let wd = k
            .job(plan.jobs[0].id)
            .end
            .config
            .clone()
            .unwrap()
            .working_dir;
        assert_eq!(wd.as_deref(), Some("/w"));
    }
}
