//! RUN: a container from the parent image with the state's env, user and workdir, the
//! ARGs in scope given to the process only, mounts and network as flagged; output
//! streamed to the reporter; a non-zero exit stops the build with the last lines.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::config::State;
use super::step::{commit, create, key, lookup, remove, At, JobEnv, StepOutcome};
use super::{ExecError, Result};
use crate::context::{clean_path, BuildContext};
use crate::dockerfile::{Command, Instruction, Mount, MountType, NetworkMode, Run};
use crate::engine::{MountSpec, Network, OutputLine, RunSpec};
use crate::progress::Event;

/// How many output lines a failing RUN shows.
pub const LAST_LINES: usize = 20;

/// Executes a RUN (or reuses its cached result).
pub async fn execute(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    run: &Run,
) -> Result<StepOutcome> {
    if !run.heredocs.is_empty() {
        return Err(at.unsupported("RUN with a heredoc"));
    }
    let network = match run.network {
        None | Some(NetworkMode::Default) => Network::Default,
        Some(NetworkMode::None) => Network::None,
        Some(NetworkMode::Host) => return Err(at.unsupported("RUN --network=host")),
    };
    let mounts = run
        .mounts
        .iter()
        .map(|m| {
            mount_spec(
                m,
                at,
                env.context,
                env.secrets,
                &at.job.run_platform.to_string(),
            )
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let key = key(at, state, parent, &Instruction::Run(run.clone()), "");
    if let Some(id) = lookup(env, at, &key).await? {
        return Ok(StepOutcome::Cached(id));
    }
    let spec = RunSpec {
        image: parent.to_string(),
        platform: None,
        cmd: state.argv(&run.command),
        env: state.config.env.clone(),
        build_args: state.run_args(at.args),
        user: state.config.user.clone(),
        workdir: state.config.working_dir.clone(),
        labels: BTreeMap::new(),
        network,
        mounts,
    };
    let id = create(env, at, &spec).await?;
    let last: Mutex<VecDeque<String>> = Mutex::new(VecDeque::with_capacity(LAST_LINES));
    let job = at.label.to_string();
    let sink = |line: OutputLine| {
        let text = line.text.clone();
        env.reporter.report(&Event::Output {
            job: job.clone(),
            line: text.clone(),
        });
        let mut l = last.lock().expect("output lock");
        if l.len() == LAST_LINES {
            l.pop_front();
        }
        l.push_back(text);
    };
    let code = env.engine.run_container(&id, &sink, env.cancel).await;
    let result = match code {
        Err(e) => Err(at.engine("running the step")(e)),
        Ok(0) => commit(env, at, &id, state, &key)
            .await
            .map(StepOutcome::Ran),
        Ok(code) => Err(ExecError::RunFailed {
            stage: at.stage(),
            line: at.line,
            command: command_text(&run.command),
            code,
            last_lines: last
                .lock()
                .expect("output lock")
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
        }),
    };
    remove(env, &id).await;
    result
}

fn command_text(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// The engine mount for one `RUN --mount` (`None` for an optional secret not given).
pub fn mount_spec(
    m: &Mount,
    at: &At<'_>,
    context: Option<&BuildContext>,
    secrets: &BTreeMap<String, PathBuf>,
    platform: &str,
) -> Result<Option<MountSpec>> {
    let target = m.target.clone().map(|t| clean_path(&t));
    let need_target = || {
        target.clone().ok_or_else(|| ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: "--mount needs a target".into(),
        })
    };
    match m.kind {
        MountType::Cache => {
            let target = need_target()?;
            let id = m.id.clone().unwrap_or_else(|| target.clone());
            Ok(Some(MountSpec::Cache {
                volume: cache_volume_name(&id, platform),
                target,
            }))
        }
        MountType::Tmpfs => Ok(Some(MountSpec::Tmpfs {
            target: need_target()?,
        })),
        MountType::Bind => {
            if m.from.is_some() {
                return Err(at.unsupported("RUN --mount=type=bind,from=…"));
            }
            let ctx =
                context.ok_or_else(|| at.unsupported("a bind mount without a build context"))?;
            let rel = clean_path(&format!("/{}", m.source.clone().unwrap_or_default()));
            let rel = rel.trim_start_matches('/').to_string();
            if !rel.is_empty() {
                let listing = ctx.listing().map_err(|source| ExecError::Context {
                    stage: at.stage(),
                    line: at.line,
                    source: Box::new(source),
                })?;
                if listing.get(&rel).is_none() {
                    return Err(ExecError::Invalid {
                        stage: at.stage(),
                        line: at.line,
                        message: format!("bind mount source {rel:?} is not in the build context"),
                    });
                }
            }
            Ok(Some(MountSpec::Bind {
                source: ctx.root().join(&rel).to_string_lossy().into_owned(),
                target: need_target()?,
                rw: m.readonly == Some(false),
            }))
        }
        MountType::Secret => {
            let id =
                m.id.clone()
                    .or_else(|| {
                        target
                            .as_ref()
                            .map(|t| t.rsplit('/').next().unwrap_or("").to_string())
                    })
                    .unwrap_or_default();
            match secrets.get(&id) {
                Some(src) => Ok(Some(MountSpec::Secret {
                    source: src.to_string_lossy().into_owned(),
                    target: target.unwrap_or_else(|| format!("/run/secrets/{id}")),
                })),
                None if m.required == Some(true) => Err(ExecError::MissingSecret {
                    stage: at.stage(),
                    line: at.line,
                    id,
                }),
                None => Ok(None),
            }
        }
        MountType::Ssh => Err(at.unsupported("RUN --mount=type=ssh")),
    }
}

/// The named volume behind a cache mount: stable per cache id and platform.
pub fn cache_volume_name(id: &str, platform: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{id}\0{platform}").as_bytes()));
    format!("xplat-cache-{}", &h[..16])
}
