//! RUN: a container from the parent image with the state's env, user and workdir, the
//! ARGs in scope given to the process only, mounts and network as flagged; output
//! streamed to the reporter; a non-zero exit stops the build with the last lines.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::config::State;
use super::mounts::{self, HostDir, PIPES_DIR};
use super::step::{commit, create, key, lookup, remove, At, JobEnv, StepOutcome};
use super::{ExecError, JobOutput, Result};
use crate::context::{clean_path, BuildContext};
use crate::dockerfile::{Command, Heredoc, Instruction, Mount, MountType, NetworkMode, Run};
use crate::engine::{MountSpec, Network, OutputLine, RunSpec};
use crate::plan::Source;
use crate::progress::Event;

/// How many output lines a failing RUN shows.
pub const LAST_LINES: usize = 20;

/// Executes a RUN (or reuses its cached result). `mount_from` is the plan's
/// resolution of each `--mount` with `from=` ([`crate::plan::Step::mount_from`]).
pub async fn execute(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    run: &Run,
    mount_from: &[Option<Source>],
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<StepOutcome> {
    let argv = heredoc_argv(run);
    let network = match run.network {
        None | Some(NetworkMode::Default) => Network::Default,
        Some(NetworkMode::None) => Network::None,
        Some(NetworkMode::Host) => return Err(at.unsupported("RUN --network=host")),
    };
    let mut mounts: Vec<MountSpec> = Vec::new();
    // Images read by `from=` mounts: their ids are part of the step key.
    let mut from_images: Vec<(usize, String)> = Vec::new();
    for (n, m) in run.mounts.iter().enumerate() {
        if m.from.is_some() {
            if m.kind != MountType::Bind {
                return Err(at.unsupported(format!("RUN --mount=type={:?},from=…", m.kind)));
            }
            let source =
                mount_from
                    .get(n)
                    .and_then(|s| s.as_ref())
                    .ok_or_else(|| ExecError::Invalid {
                        stage: at.stage(),
                        line: at.line,
                        message: format!(
                            "the plan did not resolve --mount from={}",
                            m.from.as_deref().unwrap_or_default()
                        ),
                    })?;
            from_images.push((n, mounts::source_image(env, at, source, deps).await?));
            continue;
        }
        let platform = at.job.run_platform.to_string();
        if let Some(spec) = mount_spec(m, at, env.context, env.secrets, &platform)? {
            mounts.push(spec);
        }
    }
    let content = from_images
        .iter()
        .map(|(_, id)| id.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let key = key(at, state, parent, &Instruction::Run(run.clone()), &content);
    if let Some(id) = lookup(env, at, &key).await? {
        return Ok(StepOutcome::Cached(id));
    }
    // Host folders behind bind mounts made for this step; removed when dropped.
    let mut host_dirs: Vec<HostDir> = Vec::new();
    for (n, image) in &from_images {
        let (dir, spec) = mounts::bind_from(env, at, &run.mounts[*n], image).await?;
        host_dirs.push(dir);
        mounts.push(spec);
    }
    let cmd = match argv {
        HeredocArgv::Plain => state.argv(&run.command),
        HeredocArgv::Shell(script) => state.argv(&Command::Shell(script)),
        HeredocArgv::Script(h) => {
            let (dir, spec) = mounts::script_mount(at, &h.name, &h.body())?;
            host_dirs.push(dir);
            mounts.push(spec);
            vec![format!("{PIPES_DIR}/{}", h.name)]
        }
    };
    let spec = RunSpec {
        image: parent.to_string(),
        platform: None,
        cmd,
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
    drop(host_dirs);
    result
}

/// How a RUN with heredocs runs, after BuildKit's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeredocArgv<'a> {
    /// No heredoc: the command as written.
    Plain,
    /// A script for the SHELL: the body of a lone `<<EOF`, or the command line with
    /// every heredoc body and terminator put back after it (the shell reads them).
    Shell(String),
    /// A lone `<<EOF` whose body starts with `#!`: written to a file and executed.
    Script(&'a Heredoc),
}

/// Decides how a RUN with heredocs runs: a command line that is only `<<[-]WORD`
/// (quotes allowed) runs its body (a file if it starts with `#!`, else through the
/// SHELL, tabs stripped for `<<-`); any other line gets the bodies appended, each
/// followed by its terminator, and the shell handles them.
pub fn heredoc_argv(run: &Run) -> HeredocArgv<'_> {
    let line = match (&run.command, run.heredocs.as_slice()) {
        (_, []) | (Command::Exec(_), _) => return HeredocArgv::Plain,
        (Command::Shell(line), _) => line,
    };
    if let [h] = run.heredocs.as_slice() {
        if is_lone_heredoc(line, &h.name) {
            let body = h.body();
            if body.starts_with("#!") {
                return HeredocArgv::Script(h);
            }
            return HeredocArgv::Shell(body);
        }
    }
    let mut full = line.clone();
    for h in &run.heredocs {
        full.push('\n');
        full.push_str(&h.content);
        full.push_str(&h.name);
    }
    HeredocArgv::Shell(full)
}

/// Whether a command line is nothing but the heredoc marker `<<[-]NAME` (the name
/// possibly quoted).
fn is_lone_heredoc(line: &str, name: &str) -> bool {
    let Some(rest) = line.trim().strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    if rest.contains(char::is_whitespace) {
        return false;
    }
    rest.replace(['"', '\''], "") == name
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
                // Resolved by `execute` (it needs the engine): see `mounts::bind_from`.
                return Err(at.unsupported("RUN --mount=type=bind,from=… here"));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(text: &str) -> Run {
        let df = crate::dockerfile::parse(&format!("FROM scratch\n{text}")).unwrap();
        match &df.stages[0].instructions[0].node {
            Instruction::Run(r) => r.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn heredoc_rules() {
        let r = run_of("RUN echo hi\n");
        assert_eq!(heredoc_argv(&r), HeredocArgv::Plain);
        let r = run_of("RUN <<EOF\necho a\necho b\nEOF\n");
        assert_eq!(
            heredoc_argv(&r),
            HeredocArgv::Shell("echo a\necho b\n".into())
        );
        let r = run_of("RUN <<-'EOF'\n\techo $A\n\tEOF\n");
        assert_eq!(heredoc_argv(&r), HeredocArgv::Shell("echo $A\n".into()));
        let r = run_of("RUN <<EOF\n#!/bin/sh -e\necho x\nEOF\n");
        assert!(matches!(heredoc_argv(&r), HeredocArgv::Script(h) if h.name == "EOF"));
        let r = run_of("RUN <<EOF sh -e\necho x\nEOF\n");
        assert_eq!(
            heredoc_argv(&r),
            HeredocArgv::Shell("<<EOF sh -e\necho x\nEOF".into())
        );
        let r = run_of("RUN cat <<A <<B > /f\none\nA\ntwo\nB\n");
        assert_eq!(
            heredoc_argv(&r),
            HeredocArgv::Shell("cat <<A <<B > /f\none\nA\ntwo\nB".into())
        );
    }

    #[test]
    fn lone_heredoc_marker() {
        assert!(is_lone_heredoc("<<EOF", "EOF"));
        assert!(is_lone_heredoc("<<-\"EOF\"", "EOF"));
        assert!(!is_lone_heredoc("<<EOF bash", "EOF"));
        assert!(!is_lone_heredoc("cat <<EOF", "EOF"));
    }
}
