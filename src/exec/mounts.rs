//! What `RUN --mount` mounts, reaching the engine through its API only: cache mounts are
//! named volumes kept between builds; a bind mount of the context or of another stage's
//! files is a volume of this build filled through `put_archive` (so `.dockerignore` holds,
//! the engine may be remote, and a `rw` mount's writes land in a throwaway copy, never in
//! the user's source tree); a `#!` heredoc script is a volume at `/dev/pipes`; tmpfs is
//! tmpfs. Secrets are bind mounts of a host file under a private temporary folder: they
//! need the engine to share xplat's filesystem (a local engine).
//!
//! Volumes are filled once per build through a container made only for that (never
//! started) and removed when the build ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use super::runner::{create, scratch_image};
use super::{At, ExecError, JobEnv, Result};
use crate::engine::{tar_body, RunSpec};

/// Where BuildKit mounts the script of a single shebang heredoc.
pub const PIPES_DIR: &str = "/dev/pipes";

/// Where a volume being filled is mounted in its helper container.
const FILL_AT: &str = "/xplat-volume";

/// Label on volumes made for one build (removed when it ends).
pub const BUILD_VOLUME_LABEL: &str = "xplat.volume";

/// Volumes of this build, each filled once.
#[derive(Default)]
pub struct Volumes {
    made: crate::once::OnceMap<String, ()>,
}

impl Volumes {
    /// Names of the volumes made so far.
    pub fn names(&self) -> Vec<String> {
        self.made.keys()
    }
}

/// The name of a build volume for some content: stable within a build.
pub fn volume_name(kind: &str, content: &str, build: &str) -> String {
    let h = hex::encode(Sha256::digest(format!("{content}\0{build}").as_bytes()));
    format!("xplat-{kind}-{}", &h[..20])
}

/// Makes volume `name` and fills it with `tar` (entries relative to the volume root),
/// once per build. `tar` is only called the first time.
pub async fn ensure_volume<F, Fut>(env: &JobEnv<'_>, at: &At<'_>, name: &str, tar: F) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>>>,
{
    let labels = BTreeMap::from([(BUILD_VOLUME_LABEL.to_string(), "true".to_string())]);
    fill_volume(env, at, name, &labels, tar).await
}

/// A cache mount's `uid`, `gid` and `mode` (BuildKit's defaults 0, 0 and 0755) on the root
/// of its volume, once per build: the engine makes a new volume 0755 0:0. BuildKit sets
/// them when it makes the cache; here they are set again on each build's first use of it,
/// which leaves a cache used with the same options as BuildKit has it.
pub async fn shape_cache_volume(
    env: &JobEnv<'_>,
    at: &At<'_>,
    name: &str,
    uid: u32,
    gid: u32,
    mode: u32,
) -> Result<()> {
    let labels = BTreeMap::from([(
        crate::engine::CACHE_VOLUME_LABEL.to_string(),
        "true".to_string(),
    )]);
    fill_volume(env, at, name, &labels, || async move {
        Ok(cache_root_tar(uid, gid, mode))
    })
    .await
}

/// A tar of the volume root alone (`./`) with an owner and mode.
pub fn cache_root_tar(uid: u32, gid: u32, mode: u32) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(mode & 0o7777);
    h.set_uid(uid.into());
    h.set_gid(gid.into());
    h.set_size(0);
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "./", std::io::empty())
        .and_then(|()| b.into_inner())
        .expect("a tar in memory")
}

async fn fill_volume<F, Fut>(
    env: &JobEnv<'_>,
    at: &At<'_>,
    name: &str,
    labels: &BTreeMap<String, String>,
    tar: F,
) -> Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>>>,
{
    let cell = env.shared.volumes.made.cell(&name.to_string());
    cell.get_or_try_init(|| async {
        env.engine
            .create_volume(name, labels)
            .await
            .map_err(at.engine(format!("creating volume {name}")))?;
        let data = tar().await?;
        let platform = env.engine.platform().clone();
        let image = scratch_image(env, at, &platform).await?;
        let helper = create(
            env,
            at,
            &RunSpec {
                image,
                platform: Some(platform),
                mounts: vec![crate::engine::MountSpec::Cache {
                    volume: name.to_string(),
                    target: FILL_AT.into(),
                }],
                ..RunSpec::default()
            },
        )
        .await?;
        // Extracted at `/` under the mount point, so a relative symlink in the data (a
        // busybox `arch -> ../bin/busybox`) stays inside the extraction root.
        let data = prefixed(at, &data, FILL_AT.trim_start_matches('/'))?;
        let put = env
            .engine
            .put_archive(&helper, "/", tar_body(data.into()))
            .await
            .map_err(at.engine(format!("filling volume {name}")));
        let _ = env.engine.remove_container(&helper).await;
        put
    })
    .await?;
    Ok(())
}

/// The entries of `tar` moved under `prefix/`.
fn prefixed(at: &At<'_>, tar: &[u8], prefix: &str) -> Result<Vec<u8>> {
    let io = |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: prefix.to_string(),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    let mut out = tar::Builder::new(Vec::new());
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let name = name.trim_start_matches("./").trim_start_matches('/');
        let new = if name.is_empty() || name == "." {
            format!("{prefix}/")
        } else {
            format!("{prefix}/{name}")
        };
        let mut h = entry.header().clone();
        let link = entry.link_name().map_err(io)?.map(|l| l.into_owned());
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(io)?;
        match link {
            Some(l) if h.entry_type().is_hard_link() => {
                let l = l.to_string_lossy();
                let l = format!(
                    "{prefix}/{}",
                    l.trim_start_matches("./").trim_start_matches('/')
                );
                out.append_link(&mut h, &new, l).map_err(io)?
            }
            Some(l) if h.entry_type().is_symlink() => {
                out.append_link(&mut h, &new, l).map_err(io)?
            }
            _ => out.append_data(&mut h, &new, &data[..]).map_err(io)?,
        }
    }
    out.into_inner().map_err(io)
}

/// Unpacks the one file of a tar into `dir`; returns its path.
pub fn unpack_single(at: &At<'_>, tar: &[u8], dir: &Path) -> Result<PathBuf> {
    let io = |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: dir.display().to_string(),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    ar.set_preserve_permissions(true);
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let base = name.rsplit('/').next().unwrap_or("file").to_string();
        let base = if base.is_empty() || base == ".." {
            "file".into()
        } else {
            base
        };
        let path = dir.join(base);
        entry.unpack(&path).map_err(io)?;
        return Ok(path);
    }
    Err(ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: dir.display().to_string(),
        source: std::io::Error::other("no file in the archive"),
    })
}

/// A temporary host folder, removed on drop (secrets).
#[derive(Debug)]
pub struct HostDir {
    path: PathBuf,
}

impl HostDir {
    /// Creates a fresh, private folder (mode 0700) under the system temporary folder.
    pub fn new(purpose: &str) -> std::io::Result<HostDir> {
        use std::os::unix::fs::PermissionsExt;
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
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
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

/// Re-roots a `GET /archive` tar of a directory (`base/…`) to its contents (`…`), or
/// keeps a file's single entry; refuses members with `..`.
pub fn contents_of(at: &At<'_>, tar: &[u8], is_dir: bool) -> Result<Vec<u8>> {
    let io = |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: "a mount source".into(),
        source,
    };
    let mut ar = tar::Archive::new(tar);
    let mut out = tar::Builder::new(Vec::new());
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let name = entry.path().map_err(io)?.to_string_lossy().into_owned();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if name.split('/').any(|c| c == "..") {
            return Err(ExecError::UnsafeMember {
                stage: at.stage(),
                line: at.line,
                member: name,
            });
        }
        let rest = if is_dir {
            match name.split_once('/') {
                Some((_, r)) => r.to_string(),
                None => continue,
            }
        } else {
            name
        };
        let mut h = entry.header().clone();
        let link = entry.link_name().map_err(io)?.map(|l| l.into_owned());
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(io)?;
        match link {
            Some(l) if h.entry_type().is_symlink() || h.entry_type().is_hard_link() => {
                out.append_link(&mut h, &rest, l).map_err(io)?
            }
            _ => out.append_data(&mut h, &rest, &data[..]).map_err(io)?,
        }
    }
    out.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_root_tar_holds_the_root_alone_with_uid_gid_and_mode() {
        let tar = cache_root_tar(1000, 1001, 0o700);
        let mut ar = tar::Archive::new(&tar[..]);
        let entries: Vec<_> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let h = e.unwrap().header().clone();
                (
                    h.path().unwrap().display().to_string(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                )
            })
            .collect();
        assert_eq!(entries, [("./".to_string(), 0o700, 1000, 1001)]);
    }

    #[test]
    fn host_dir_is_private_and_removed_on_drop() {
        use std::os::unix::fs::PermissionsExt;
        let d = HostDir::new("t").unwrap();
        let p = d.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::write(p.join("f"), "x").unwrap();
        drop(d);
        assert!(!p.exists());
    }

    #[test]
    fn volume_names_depend_on_content_and_build() {
        let a = volume_name("ctx", "sha256:1", "b1");
        assert_eq!(a, volume_name("ctx", "sha256:1", "b1"));
        assert_ne!(a, volume_name("ctx", "sha256:2", "b1"));
        assert_ne!(a, volume_name("ctx", "sha256:1", "b2"));
        assert!(a.starts_with("xplat-ctx-"));
    }
}
