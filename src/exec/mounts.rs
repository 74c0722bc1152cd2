//! Host folders a RUN step bind-mounts and that xplat makes for it: the script of a
//! `RUN <<EOF` whose body starts with `#!` (BuildKit mounts it at `/dev/pipes/<name>`),
//! and the files of another stage or image for `RUN --mount=type=bind,from=…`
//! (copied out of a container of that image with `get_archive`, unpacked with the tar
//! crate's path guards). Both need the engine to see the host's files, i.e. a local
//! engine, like secret mounts. Each folder is removed when its [`HostDir`] is dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::copy::{read_archive, stat};
use super::step::{create, image_for_platform, remove, At, JobEnv};
use super::{ExecError, JobOutput, Result};
use crate::context::clean_path;
use crate::dockerfile::Mount;
use crate::engine::{MountSpec, PathKind, PathLookup, RunSpec};
use crate::plan::Source;

/// Where BuildKit mounts the script of a single shebang heredoc.
pub const PIPES_DIR: &str = "/dev/pipes";

/// A temporary host folder, removed on drop.
#[derive(Debug)]
pub struct HostDir {
    path: PathBuf,
}

impl HostDir {
    /// Creates a fresh, empty folder under the system temporary folder.
    pub fn new(purpose: &str) -> std::io::Result<HostDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "xplat-{purpose}-{}-{n}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir(&path)?;
        Ok(HostDir { path })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn host_io<'a>(at: &'a At<'_>, what: &'a str) -> impl Fn(std::io::Error) -> ExecError + 'a {
    move |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: what.to_string(),
        source,
    }
}

/// Writes a heredoc script (mode 0755) into a new host folder and returns the folder
/// and its read-only mount at [`PIPES_DIR`].
pub fn script_mount(at: &At<'_>, name: &str, body: &str) -> Result<(HostDir, MountSpec)> {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: format!("heredoc name {name:?} cannot be a file name"),
        });
    }
    let io = host_io(at, name);
    let dir = HostDir::new("heredoc").map_err(&io)?;
    let file = dir.path().join(name);
    std::fs::write(&file, body).map_err(&io)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).map_err(&io)?;
    let spec = MountSpec::Bind {
        source: dir.path().to_string_lossy().into_owned(),
        target: PIPES_DIR.to_string(),
        rw: false,
    };
    Ok((dir, spec))
}

/// The image id a `from=` mount reads.
pub async fn source_image(
    env: &JobEnv<'_>,
    at: &At<'_>,
    source: &Source,
    deps: &std::collections::BTreeMap<usize, JobOutput>,
) -> Result<String> {
    match source {
        Source::Stage { job } => Ok(deps
            .get(&job.0)
            .ok_or_else(|| ExecError::DependencyFailed {
                job: at.label.to_string(),
            })?
            .image
            .clone()),
        Source::Image { reference } => {
            Ok(image_for_platform(env, at, reference, &at.job.run_platform)
                .await?
                .id)
        }
    }
}

/// `RUN --mount=type=bind,from=X,source=S,target=T`: copies `S` out of `image` into a
/// new host folder and returns it with a bind mount of it at `T` (read-only unless
/// `rw`; writes never reach the other image either way).
pub async fn bind_from(
    env: &JobEnv<'_>,
    at: &At<'_>,
    m: &Mount,
    image: &str,
) -> Result<(HostDir, MountSpec)> {
    let target = m
        .target
        .as_deref()
        .map(clean_path)
        .ok_or_else(|| ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: "--mount needs a target".into(),
        })?;
    let source = clean_path(&format!("/{}", m.source.as_deref().unwrap_or("")));
    let from = m.from.as_deref().unwrap_or_default();
    let id = create(
        env,
        at,
        &RunSpec {
            image: image.to_string(),
            ..Default::default()
        },
    )
    .await?;
    let res = async {
        let mut path = source.clone();
        let mut kind = PathKind::Dir;
        // Follow symlinks at the source itself (at most a few hops).
        for _ in 0..8 {
            match stat(env, at, &id, &path).await? {
                PathLookup::Missing => {
                    return Err(ExecError::Invalid {
                        stage: at.stage(),
                        line: at.line,
                        message: format!("--mount from={from}: {source} not found"),
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
                    k => {
                        kind = k;
                        break;
                    }
                },
            }
        }
        let dir = HostDir::new("mount").map_err(host_io(at, &source))?;
        let (archive_path, host) = match kind {
            PathKind::Dir => (
                format!("{}/.", path.trim_end_matches('/')),
                dir.path().to_path_buf(),
            ),
            _ => {
                let base = path.rsplit('/').next().unwrap_or("").to_string();
                (path.clone(), dir.path().join(base))
            }
        };
        let data = read_archive(env, at, &id, &archive_path).await?;
        unpack(at, &source, &data, dir.path())?;
        Ok((
            dir,
            MountSpec::Bind {
                source: host.to_string_lossy().into_owned(),
                target,
                rw: m.readonly == Some(false),
            },
        ))
    }
    .await;
    remove(env, &id).await;
    res
}

/// Unpacks an engine archive into `into`, refusing members that would escape it.
fn unpack(at: &At<'_>, what: &str, data: &[u8], into: &Path) -> Result<()> {
    let io = host_io(at, what);
    let mut ar = tar::Archive::new(data);
    ar.set_preserve_permissions(true);
    ar.set_overwrite(true);
    for entry in ar.entries().map_err(&io)? {
        let mut entry = entry.map_err(&io)?;
        let member = entry.path().map_err(&io)?.to_string_lossy().into_owned();
        if member.split('/').any(|c| c == "..") {
            return Err(ExecError::UnsafeMember {
                stage: at.stage(),
                line: at.line,
                member,
            });
        }
        // `unpack_in` also refuses members whose parents are symlinks out of `into`.
        if !entry.unpack_in(into).map_err(&io)? {
            return Err(ExecError::UnsafeMember {
                stage: at.stage(),
                line: at.line,
                member,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_dir_is_removed_on_drop() {
        let d = HostDir::new("t").unwrap();
        let p = d.path().to_path_buf();
        std::fs::write(p.join("f"), "x").unwrap();
        assert!(p.exists());
        drop(d);
        assert!(!p.exists());
    }

    #[test]
    fn two_host_dirs_differ() {
        let a = HostDir::new("t").unwrap();
        let b = HostDir::new("t").unwrap();
        assert_ne!(a.path(), b.path());
    }
}
