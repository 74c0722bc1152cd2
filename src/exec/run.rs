//! RUN: the command goes through `exec` in the job's running container, with the step's
//! environment (ENV, then the ARGs in effect), USER and WORKDIR; its output is streamed
//! to the reporter; a non-zero exit stops the build with the last lines. Its mounts are
//! fixed when the container is created ([`RunMounts`]), so the runner asks which RUN
//! steps ahead can share a container ([`segment_mounts`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::mounts::{self, contents_of, volume_name, HostDir, PIPES_DIR};
use super::outputs::{read_root, RecordedFiles};
use super::program::{Position, Program};
use super::{At, ExecError, JobEnv, Result};
use crate::context::{clean_path, hash_sources, write_tar, CopySpec};
use crate::dockerfile::{Command, Heredoc, Instruction, Mount, MountType, NetworkMode, Run};
use crate::engine::{ContainerId, ExecSpec, MountSpec, Network, OutputLine, PathKind, PathLookup};
use crate::plan::Source;
use crate::progress::Event;
use crate::stage::State;

/// How many output lines a failing RUN shows.
pub const LAST_LINES: usize = 20;

/// The mounts and network of a RUN (or of a container shared by several).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunMounts {
    /// Bind, tmpfs and secret mounts: RUN steps sharing a container must agree on these.
    pub fixed: Vec<MountSpec>,
    /// Cache mounts by target: unioned over the RUN steps of a container.
    pub caches: BTreeMap<String, MountSpec>,
    /// `--network`.
    pub network: Network,
    /// Targets of every mount (nothing else may write under them in a shared container).
    pub targets: Vec<String>,
}

impl RunMounts {
    /// Whether a RUN with these mounts can run in a container created with the others.
    pub fn fits(
        &self,
        fixed: &[MountSpec],
        network: Network,
        caches: &BTreeMap<String, MountSpec>,
    ) -> bool {
        self.network == network
            && self.fixed == fixed
            && self.caches.iter().all(|(t, m)| caches.get(t) == Some(m))
    }

    /// Whether another RUN's mounts can join these: same fixed mounts and network, and no
    /// cache target used two ways.
    fn joins(&self, other: &RunMounts) -> bool {
        self.network == other.network
            && self.fixed == other.fixed
            && other
                .caches
                .iter()
                .all(|(t, m)| self.caches.get(t).map_or(true, |mine| mine == m))
    }

    /// Every mount, for creating the container.
    pub fn all(&self) -> Vec<MountSpec> {
        let mut v = self.fixed.clone();
        v.extend(self.caches.values().cloned());
        v
    }

    fn under_a_target(&self, path: &str) -> bool {
        let path = clean_path(path);
        self.targets.iter().any(|t| {
            path == *t || t == "/" || path.starts_with(&format!("{}/", t.trim_end_matches('/')))
        })
    }
}

/// The mounts of the container made at position `n`: those of the RUN steps from `n` on
/// that agree, stopping before a step that writes under one of their targets.
pub async fn segment_mounts(
    env: &JobEnv<'_>,
    at: &At<'_>,
    prog: &Program<'_>,
    n: usize,
    state: &State,
) -> Result<RunMounts> {
    let mut state = state.clone();
    let mut seg: Option<RunMounts> = None;
    let mut writes: Vec<String> = Vec::new();
    for p in &prog.positions[n..] {
        let instr = &p.step.instruction;
        match instr {
            Instruction::Run(r) => {
                let here = At {
                    line: p.step.line,
                    args: &p.step.args,
                    job: p.job,
                    ..*at
                };
                let m = mounts(env, &here, &state, r, p).await?;
                if writes.iter().any(|w| m.under_a_target(w)) {
                    break;
                }
                match &mut seg {
                    None => seg = Some(m),
                    Some(s) if s.joins(&m) => {
                        s.caches.extend(m.caches);
                        s.targets.extend(m.targets);
                    }
                    Some(_) => break,
                }
            }
            Instruction::Copy(c) => writes.push(dest_of(&state, &c.dest)),
            Instruction::Add(a) => writes.push(dest_of(&state, &a.dest)),
            Instruction::Workdir(_) => {
                let _ = state.apply(instr);
                writes.push(state.workdir());
                continue;
            }
            _ => {}
        }
        if let Some(s) = &seg {
            if writes.iter().any(|w| s.under_a_target(w)) {
                break;
            }
        }
        let _ = state.apply(instr);
    }
    Ok(seg.unwrap_or_default())
}

fn dest_of(state: &State, dest: &str) -> String {
    if dest.starts_with('/') {
        clean_path(dest)
    } else {
        clean_path(&format!("{}/{dest}", state.workdir()))
    }
}

/// A mount's target: as given (relative ones under WORKDIR), else WORKDIR itself (an
/// error when that is `/`), as BuildKit resolves them.
fn target_of(at: &At<'_>, state: &State, m: &Mount) -> Result<String> {
    match m.target.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => Ok(dest_of(state, t)),
        None => {
            let wd = state.workdir();
            if wd == "/" {
                Err(ExecError::MountTargetMissing {
                    stage: at.stage(),
                    line: at.line,
                })
            } else {
                Ok(wd)
            }
        }
    }
}

/// The mounts of one RUN. Volumes for binds are named here and filled on first use.
pub async fn mounts(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    run: &Run,
    p: &Position<'_>,
) -> Result<RunMounts> {
    let mut out = RunMounts {
        network: match run.network {
            None => env.network,
            Some(NetworkMode::Default) => Network::Default,
            Some(NetworkMode::None) => Network::None,
            Some(NetworkMode::Host) => Network::Host,
        },
        ..RunMounts::default()
    };
    let build = env
        .labels
        .get(crate::ops::BUILD_LABEL)
        .cloned()
        .unwrap_or_default();
    for (n, m) in run.mounts.iter().enumerate() {
        let target = match m.kind {
            MountType::Secret => m
                .target
                .clone()
                .filter(|t| !t.is_empty())
                .map(|t| dest_of(state, &t))
                .unwrap_or_else(|| format!("/run/secrets/{}", m.id.clone().unwrap_or_default())),
            _ => target_of(at, state, m)?,
        };
        let rw = m.readonly == Some(false);
        let spec = match m.kind {
            MountType::Cache => {
                let id = m.id.clone().unwrap_or_else(|| target.clone());
                let volume = cache_volume_name(&id, &p.job.run_platform.to_string());
                if m.uid.is_some() || m.gid.is_some() || m.mode.is_some() {
                    let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
                    let mode = m.mode.unwrap_or(0o755);
                    mounts::shape_cache_volume(env, at, &volume, uid, gid, mode).await?;
                }
                let spec = MountSpec::Cache {
                    volume,
                    target: target.clone(),
                };
                out.caches.insert(target.clone(), spec);
                out.targets.push(target);
                continue;
            }
            MountType::Tmpfs => MountSpec::Tmpfs {
                target: target.clone(),
            },
            MountType::Bind => match p.step.mount_from.get(n).and_then(|s| s.as_ref()) {
                Some(source) => from_mount(env, at, m, source, &build, rw, p, &target).await?,
                None => context_mount(env, at, state, m, &build, rw, p, &target).await?,
            },
            // `env=` without a target: only an environment variable (see `execute`).
            MountType::Secret if m.env.is_some() && m.target.is_none() => continue,
            MountType::Secret => match super::remote::secret_mount(env, at, m, &target)? {
                Some(s) => s,
                None => continue,
            },
            MountType::Ssh => return Err(at.unsupported("RUN --mount=type=ssh")),
        };
        out.fixed.push(spec);
        out.targets.push(target);
    }
    if let HeredocArgv::Script(h) = heredoc_argv(run) {
        let volume = volume_name("pipes", &format!("{}\0{}", h.name, h.body()), &build);
        let body = h.body();
        let name = h.name.clone();
        mounts::ensure_volume(
            env,
            at,
            &volume,
            || async move { script_tar(at, &name, &body) },
        )
        .await?;
        out.fixed.push(MountSpec::Volume {
            volume,
            target: PIPES_DIR.into(),
            read_only: true,
        });
    }
    Ok(out)
}

fn script_tar(at: &At<'_>, name: &str, body: &str) -> Result<Vec<u8>> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(ExecError::BadHeredocName {
            stage: at.stage(),
            line: at.line,
            name: name.to_string(),
        });
    }
    let io = |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: name.to_string(),
        source,
    };
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o755);
    h.set_size(body.len() as u64);
    b.append_data(&mut h, name, body.as_bytes()).map_err(io)?;
    b.into_inner().map_err(io)
}

/// The context files under the mount's `source`, `.dockerignore` applied: a volume for a
/// folder; a private copy bind-mounted for a single file (which needs an engine that
/// shares this machine's files). A `rw` mount gets its own copy per step, so its writes
/// go nowhere.
#[allow(clippy::too_many_arguments)]
async fn context_mount(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    m: &Mount,
    build: &str,
    rw: bool,
    p: &Position<'_>,
    target: &str,
) -> Result<MountSpec> {
    let ctx = env
        .context
        .ok_or_else(|| at.unsupported("a bind mount without a build context"))?;
    let src = m.source.clone().unwrap_or_else(|| ".".into());
    let spec = CopySpec {
        sources: vec![src.clone()],
        dest: "/".into(),
        workdir: state.workdir(),
        ..CopySpec::default()
    };
    let err = |source| ExecError::Context {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    };
    let entries = ctx
        .resolve_copy(&spec, &crate::context::copy::UnknownImage)
        .map_err(err)?;
    let hash = hash_sources(&entries, ctx).map_err(err)?;
    let listing = ctx.listing().map_err(err)?;
    let resolved = listing.resolve(&src, true).map_err(err)?;
    let is_dir = resolved.is_empty()
        || listing
            .get(&resolved)
            .map_or(true, |e| e.kind == crate::context::SourceKind::Dir);
    if !is_dir {
        let tar = write_tar(Vec::new(), &entries, ctx).map_err(err)?;
        let unique = format!("{hash}\0{rw}\0{}\0{target}", p.key);
        return super::remote::file_mount(env, at, &tar, target, rw, &unique).await;
    }
    let unique = if rw {
        format!(
            "{hash}\0rw\0{}\0{}",
            p.key,
            m.target.as_deref().unwrap_or("")
        )
    } else {
        hash
    };
    let name = volume_name("ctx", &unique, build);
    mounts::ensure_volume(env, at, &name, || async {
        write_tar(Vec::new(), &entries, ctx).map_err(err)
    })
    .await?;
    Ok(MountSpec::Volume {
        volume: name,
        target: target.to_string(),
        read_only: !rw,
    })
}

/// Another stage's (or image's) files under the mount's `source`: a volume for a folder,
/// a private host copy for a single file.
#[allow(clippy::too_many_arguments)]
async fn from_mount(
    env: &JobEnv<'_>,
    at: &At<'_>,
    m: &Mount,
    source: &Source,
    build: &str,
    rw: bool,
    p: &Position<'_>,
    target: &str,
) -> Result<MountSpec> {
    let path = clean_path(&format!("/{}", m.source.as_deref().unwrap_or("")));
    let key = match source {
        Source::Stage { job } => env.keys.job(*job).key_out.clone(),
        Source::Image { reference } => format!("image:{reference}"),
    };
    let unique = if rw {
        format!("{key}\0{path}\0rw\0{}", p.key)
    } else {
        format!("{key}\0{path}")
    };
    let name = volume_name("from", &unique, build);
    let from = m.from.clone().unwrap_or_default();
    let files = super::copy::source_files(env, at, source, &[read_root(&path)]).await?;
    let (real, kind) = follow(at, &files, &path, &from).await?;
    let tar = files
        .tar(&real)
        .await
        .map_err(|e| ExecError::read_source(at, &real, e))?;
    if kind != PathKind::Dir {
        return super::remote::file_mount(
            env,
            at,
            &tar,
            target,
            rw,
            &format!("{unique}\0{target}"),
        )
        .await;
    }
    mounts::ensure_volume(env, at, &name, || async { contents_of(at, &tar, true) }).await?;
    Ok(MountSpec::Volume {
        volume: name,
        target: target.to_string(),
        read_only: !rw,
    })
}

/// Follows symlinks at `path` in `files`; the real path and its kind.
pub async fn follow(
    at: &At<'_>,
    files: &RecordedFiles,
    path: &str,
    from: &str,
) -> Result<(String, PathKind)> {
    let mut path = path.to_string();
    for _ in 0..40 {
        match files
            .lookup(&path)
            .await
            .map_err(|e| ExecError::read_source(at, &path, e))?
        {
            PathLookup::Missing => {
                return Err(ExecError::SourceMissing {
                    stage: at.stage(),
                    line: at.line,
                    from: from.to_string(),
                    path,
                })
            }
            PathLookup::Found(st) => match st.kind {
                PathKind::Symlink { target } => {
                    path = if target.starts_with('/') {
                        clean_path(&target)
                    } else {
                        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
                        clean_path(&format!("{parent}/{target}"))
                    };
                }
                k => return Ok((path, k)),
            },
        }
    }
    Err(ExecError::SourceMissing {
        stage: at.stage(),
        line: at.line,
        from: from.to_string(),
        path,
    })
}

/// `RUN --mount=type=secret,env=VAR`: the secret's content as `VAR=…` for this command
/// only (never in a config, a layer or a key).
fn secret_env(env: &JobEnv<'_>, at: &At<'_>, run: &Run) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for m in run.mounts.iter().filter(|m| m.kind == MountType::Secret) {
        let Some(var) = &m.env else { continue };
        let id = m.id.clone().unwrap_or_else(|| var.clone());
        match env.secrets.get(&id) {
            Some(src) => {
                let value = std::fs::read(src).map_err(|source| ExecError::Archive {
                    stage: at.stage(),
                    line: at.line,
                    path: format!("secret {id}"),
                    source,
                })?;
                out.push(format!("{var}={}", String::from_utf8_lossy(&value)));
            }
            None if m.required == Some(true) => {
                return Err(ExecError::MissingSecret {
                    stage: at.stage(),
                    line: at.line,
                    id,
                })
            }
            None => {}
        }
    }
    Ok(out)
}

/// The named volume behind a cache mount: stable per cache id and platform.
pub fn cache_volume_name(id: &str, platform: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{id}\0{platform}").as_bytes()));
    format!("xplat-cache-{}", &h[..16])
}

/// Runs a RUN in the container; returns the seconds it took.
pub async fn execute(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    id: &ContainerId,
    run: &Run,
    _p: &Position<'_>,
) -> Result<f64> {
    let argv = match heredoc_argv(run) {
        HeredocArgv::Plain => state.argv(&run.command),
        HeredocArgv::Shell(script) => state.argv(&Command::Shell(script)),
        HeredocArgv::Script(h) => vec![format!("{PIPES_DIR}/{}", h.name)],
    };
    let mut run_env = state.run_env(at.args);
    run_env.extend(secret_env(env, at, run)?);
    let spec = ExecSpec {
        argv,
        env: run_env,
        user: state.user().map(str::to_string),
        workdir: Some(state.workdir()),
        stdin: None,
    };
    let last: Mutex<VecDeque<String>> = Mutex::new(VecDeque::with_capacity(LAST_LINES));
    let job = at.label.to_string();
    let sink = |line: OutputLine| {
        let text = line.text.clone();
        env.reporter.report(&Event::Output {
            job: job.clone(),
            line: text.clone(),
        });
        let mut l = last.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() == LAST_LINES {
            l.pop_front();
        }
        l.push_back(text);
    };
    let t = Instant::now();
    let code = env
        .engine
        .exec(id, &spec, &sink, env.cancel)
        .await
        .map_err(at.engine("running the step"))?;
    if code != 0 {
        let lines = last.lock().unwrap_or_else(|e| e.into_inner());
        return Err(ExecError::RunFailed {
            stage: at.stage(),
            line: at.line,
            command: command_text(&run.command),
            code,
            last_lines: lines.iter().cloned().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(t.elapsed().as_secs_f64())
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

/// Keeps the secret-folder type visible to readers of this module.
#[allow(dead_code)]
fn _secret_folders(_: &HostDir) {}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
