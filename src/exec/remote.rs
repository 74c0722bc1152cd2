//! What must reach an engine that may be on another machine without a host bind mount
//! (issue 12): secrets, and bind mounts of a single file. Folders of the context or of a
//! stage already travel as volumes filled through `put_archive` (`mounts.rs`).
//!
//! - A secret on an engine that shares xplat's files is a read-only bind mount of the
//!   host file, as before. On another machine it goes into a tmpfs mounted at
//!   `/run/secrets` (never part of a layer, never on the engine's disk): the executor
//!   writes the file through `exec` (`head -c N` reading the exec's standard input, as
//!   root, mode 0400 unless `mode=`) just before the RUN. Only the default folder is used,
//!   since a tmpfs over another folder would hide the image's files there.
//! - A single file: on a local engine a private host copy, bind-mounted (a volume mounts
//!   only as a folder); on another machine the file in a volume of this build, mounted
//!   by `VolumeOptions.Subpath` (API 1.45, Docker 26); older remote engines get an error
//!   that says to mount the folder instead.

use super::mounts::{self, volume_name, HostDir};
use super::run::RunMounts;
use super::{At, ExecError, JobEnv, Result};
use crate::dockerfile::{Mount, MountType, Run};
use crate::engine::{ContainerId, ExecSpec, MountSpec, OutputLine, StdinBytes};

/// Decides how a `--mount=type=secret` reaches the engine; `None` when the secret was not
/// given and is not required.
pub fn secret_mount(
    env: &JobEnv<'_>,
    at: &At<'_>,
    m: &Mount,
    target: &str,
) -> Result<Option<MountSpec>> {
    let id =
        m.id.clone()
            .unwrap_or_else(|| target.rsplit('/').next().unwrap_or("").to_string());
    let Some(src) = env.secrets.get(&id) else {
        return if m.required == Some(true) {
            Err(ExecError::MissingSecret {
                stage: at.stage(),
                line: at.line,
                id,
            })
        } else {
            Ok(None)
        };
    };
    let source = src.to_string_lossy().into_owned();
    if env.engine.profile().shares_filesystem {
        return Ok(Some(MountSpec::Secret {
            source,
            target: target.to_string(),
        }));
    }
    // On another machine: a tmpfs over the secret's folder, written through exec. Only
    // where hiding that folder hides nothing of the image's.
    if MountSpec::secret_dir(target) != SECRETS_DIR {
        return Err(at.unsupported(format!(
            "a secret at {target} on an engine on another machine (xplat writes secrets into \
             a tmpfs at {SECRETS_DIR}: use the default target, {SECRETS_DIR}/{id})"
        )));
    }
    Ok(Some(MountSpec::SecretTmpfs {
        source,
        target: target.to_string(),
    }))
}

/// Where BuildKit mounts secrets by default.
pub const SECRETS_DIR: &str = "/run/secrets";

/// Writes the RUN's secrets of an engine on another machine into their tmpfs, through
/// `exec` as root (`head -c N` from standard input; mode `mode=`, else 0400 as
/// BuildKit), just before the RUN. The bytes travel in the exec's input stream only: not in an argv,
/// an environment, a log or a layer.
pub async fn write_secrets(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    mounts: &RunMounts,
    run: &Run,
) -> Result<()> {
    for m in &mounts.fixed {
        let MountSpec::SecretTmpfs { source, target } = m else {
            continue;
        };
        let default_target = |rm: &Mount| {
            rm.target
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| format!("{SECRETS_DIR}/{}", rm.id.clone().unwrap_or_default()))
        };
        let mode = run
            .mounts
            .iter()
            .find(|rm| rm.kind == MountType::Secret && default_target(rm) == *target)
            .and_then(|rm| rm.mode)
            .unwrap_or(0o400);
        let bytes = std::fs::read(source).map_err(|source_err| ExecError::Archive {
            stage: at.stage(),
            line: at.line,
            path: format!("the secret for {target}"),
            source: source_err,
        })?;
        let spec = ExecSpec {
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                r#"umask 077 && head -c "$3" > "$1" && chmod "$2" "$1""#.into(),
                "xplat-secret".into(),
                target.clone(),
                format!("{mode:o}"),
                bytes.len().to_string(),
            ],
            env: Vec::new(),
            user: Some("0".into()),
            workdir: None,
            stdin: Some(StdinBytes(bytes)),
        };
        let quiet = |_line: OutputLine| {};
        let code = env
            .engine
            .exec(id, &spec, &quiet, env.cancel)
            .await
            .map_err(at.engine(format!("writing the secret for {target}")))?;
        if code != 0 {
            return Err(at.unsupported(format!(
                "a secret on an engine on another machine in an image without /bin/sh and head \
                 (writing {target} exited {code})"
            )));
        }
    }
    Ok(())
}

/// The API that mounts one file of a volume (`VolumeOptions.Subpath`, Docker 26).
pub const SUBPATH_API: &str = "1.45";

/// A single file at `target`. A volume can only be mounted as a folder before API 1.45,
/// so: on an engine that shares this machine's files, a private host copy bind-mounted;
/// else, on API 1.45+, the file in a volume of this build mounted by subpath; else an
/// error that says so.
pub async fn file_mount(
    env: &JobEnv<'_>,
    at: &At<'_>,
    tar: &[u8],
    target: &str,
    rw: bool,
    unique: &str,
) -> Result<MountSpec> {
    let profile = env.engine.profile();
    if !profile.shares_filesystem {
        if !crate::engine::request::api_at_least(&profile.api_version, SUBPATH_API) {
            return Err(at.unsupported(format!(
                "a bind mount of a single file on an engine on another machine with API {} \
                 (it needs {SUBPATH_API}, Docker 26; or mount its folder)",
                profile.api_version
            )));
        }
        let build = env
            .labels
            .get(crate::ops::BUILD_LABEL)
            .cloned()
            .unwrap_or_default();
        let volume = volume_name("file", unique, &build);
        let (name, body) = single_entry(at, tar)?;
        mounts::ensure_volume(env, at, &volume, || async move { Ok(body) }).await?;
        return Ok(MountSpec::VolumeFile {
            volume,
            file: name,
            target: target.to_string(),
            read_only: !rw,
        });
    }
    let dir = HostDir::new("mount").map_err(|source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: target.to_string(),
        source,
    })?;
    let file = mounts::unpack_single(at, tar, dir.path())?;
    let spec = MountSpec::Bind {
        source: file.to_string_lossy().into_owned(),
        target: target.to_string(),
        rw,
    };
    env.shared.keep(dir);
    Ok(spec)
}

/// The one file of a tar as (its base name, a tar holding just it at the root).
fn single_entry(at: &At<'_>, tar: &[u8]) -> Result<(String, Vec<u8>)> {
    let io = |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: "a single-file mount".into(),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let name = path.rsplit('/').next().unwrap_or("file").to_string();
        let name = if name.is_empty() || name == ".." {
            "file".to_string()
        } else {
            name
        };
        let mut h = entry.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(io)?;
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut h, &name, &data[..]).map_err(io)?;
        return Ok((name, b.into_inner().map_err(io)?));
    }
    Err(ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: "a single-file mount".into(),
        source: std::io::Error::other("no file in the archive"),
    })
}
