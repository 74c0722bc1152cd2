//! Several engines (issue 12): the list a user names in `xplat.toml` (`[engines.NAME]`) or
//! with `--engine NAME=HOST[,platforms=…]`, connecting to all of them at once, and what
//! each says about itself ([`Survey`]: what `xplat engines` prints and what placement
//! needs). The single-endpoint resolution (`DOCKER_HOST`, Docker contexts) stays in
//! `config.rs`; an engine listed without a host is that one.
//!
//! # ssh://user@host, through bollard's `ssh` feature (bollard 0.21.1, openssh 0.11)
//!
//! bollard starts the system `ssh` as a master (`-M -f -N`, `ControlPersist=yes`,
//! `BatchMode=yes`, `StrictHostKeyChecking=accept-new`; control socket in a temporary
//! folder under `$XDG_STATE_HOME` or `~/.local/state`) for every HTTP connection it
//! opens, and speaks the Engine API through `ssh … docker system dial-stdio`. So:
//! - xplat's machine needs the OpenSSH client, and a key or agent that logs in without a
//!   prompt (BatchMode refuses passwords); an unknown host key is accepted and recorded,
//!   a changed one refused;
//! - the host needs the docker CLI (`docker system dial-stdio`, Docker 18.09+) and the
//!   user must reach its engine (the docker group);
//! - a port in the URL does not work: bollard hands openssh `user@host:port` without the
//!   `ssh://` scheme, which openssh passes to `ssh` as the host name. Put the port in
//!   `~/.ssh/config` (`Host arm-builder` / `Port 2222`) and write `ssh://user@arm-builder`.
//!   [`endpoint`] refuses a port with that advice.

use std::path::Path;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use super::config::{Endpoint, EngineConfig, TlsFiles};
use super::docker::DockerEngine;
use super::error::{EngineError, Result};
use super::Engine;
use crate::platform::{Catalog, Platform};

/// One engine of the user's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpec {
    /// Its name (`[engines.NAME]`).
    pub name: String,
    /// Where it is; `None`: the engine the Docker CLI would use (`DOCKER_HOST`, context).
    pub endpoint: Option<Endpoint>,
    /// Platforms it runs natively, as declared (replacing its own platform, as a buildx
    /// node's `--platform` does); empty: its own platform.
    pub platforms: Vec<Platform>,
}

/// `unix://…`, `tcp://host:port`, `https://host:port` or `ssh://[user@]host`, with the TLS
/// client files for tcp (which make it HTTPS).
pub fn endpoint(host: &str, tls: Option<TlsFiles>) -> Result<Endpoint> {
    let unsupported = |why: &str| EngineError::UnsupportedHost {
        value: host.to_string(),
        why: why.to_string(),
    };
    let tcp = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("https://"));
    match (tcp, tls) {
        (Some(addr), Some(files)) => {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() {
                return Err(unsupported("the tcp address is empty"));
            }
            Ok(Endpoint::TcpTlsFiles {
                addr: addr.to_string(),
                files,
            })
        }
        (None, Some(_)) => Err(unsupported("tls applies to tcp:// hosts only")),
        (_, None) if host.starts_with("https://") => Err(unsupported(
            "https needs the client certificates: tls = { ca = …, cert = …, key = … }",
        )),
        (_, None) => {
            if let Some(dest) = host.strip_prefix("ssh://") {
                let after_user = dest.rsplit('@').next().unwrap_or(dest);
                if after_user.contains(':') {
                    return Err(unsupported(
                        "bollard cannot pass a port to ssh: name the host in ~/.ssh/config \
                         (Host NAME, HostName, Port) and write ssh://user@NAME",
                    ));
                }
            }
            let env = std::collections::HashMap::from([("DOCKER_HOST".into(), host.into())]);
            Ok(EngineConfig::from_env(&env)?.endpoint)
        }
    }
}

/// What [`connect_all`] got for one engine.
pub struct Connected {
    /// The engine as listed.
    pub spec: EngineSpec,
    /// The connection, or why there is none.
    pub engine: Result<DockerEngine>,
}

/// Connects to every engine at once, each within `timeout` (an engine that does not
/// answer is reported, not waited for).
pub async fn connect_all(
    specs: &[EngineSpec],
    timeout: Duration,
    context: Option<&str>,
) -> Vec<Connected> {
    let tries = specs.iter().map(|spec| async move {
        let work = async {
            match &spec.endpoint {
                None => DockerEngine::connect_with_context(context).await,
                Some(endpoint) => {
                    let mut config = EngineConfig::from_env(&Default::default())?;
                    config.endpoint = endpoint.clone();
                    config.connect_timeout = timeout;
                    DockerEngine::connect(&config).await
                }
            }
        };
        let engine = match tokio::time::timeout(timeout, work).await {
            Ok(res) => res,
            Err(_) => Err(EngineError::Unreachable {
                endpoint: spec
                    .endpoint
                    .as_ref()
                    .map_or_else(|| "the default engine".into(), |e| e.to_string()),
                reason: format!("no answer within {} s", timeout.as_secs()),
                hint: "check that the engine runs and listens there".into(),
            }),
        };
        Connected {
            spec: spec.clone(),
            engine,
        }
    });
    join_all(tries).await
}

/// The platforms an engine runs natively: as declared, else its own.
pub fn native_platforms(spec: &EngineSpec, engine: &dyn Engine) -> Vec<Platform> {
    if spec.platforms.is_empty() {
        vec![engine.platform().normalized()]
    } else {
        spec.platforms.iter().map(Platform::normalized).collect()
    }
}

/// The platforms whose QEMU handler is registered (`qemu-aarch64` → linux/arm64, after
/// the catalog's `qemu_binary`), minus those in `native`, in catalog order.
pub fn emulated_platforms(
    handlers: &[String],
    native: &[Platform],
    catalog: &Catalog,
) -> Vec<Platform> {
    let mut out: Vec<Platform> = Vec::new();
    for spec in catalog.specs() {
        let handler = spec.qemu_binary.trim_end_matches("-static");
        if handler.is_empty() || !handlers.iter().any(|h| h == handler) {
            continue;
        }
        let p = spec.platform().normalized();
        if native.iter().any(|n| n.can_run(&p)) || out.contains(&p) {
            continue;
        }
        out.push(p);
    }
    out
}

/// What one engine said about itself: a row of `xplat engines`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Survey {
    /// Its name.
    pub name: String,
    /// Where it is, as shown to users.
    pub endpoint: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Why not, when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Negotiated API version.
    pub api_version: String,
    /// Docker version.
    pub server_version: String,
    /// Its own platform (what its kernel runs).
    #[serde(serialize_with = "platform_name")]
    pub platform: Platform,
    /// Platforms it runs natively (declared, else its own).
    #[serde(serialize_with = "platform_names")]
    pub native: Vec<Platform>,
    /// Whether `native` is the user's declaration.
    pub declared: bool,
    /// Platforms it can only emulate (binfmt handlers registered on its host).
    #[serde(serialize_with = "platform_names")]
    pub emulated: Vec<Platform>,
    /// The binfmt handler names found (`qemu-aarch64`, …); `None` when they could not be read.
    pub binfmt_handlers: Option<Vec<String>>,
    /// Storage driver.
    pub storage_driver: String,
    /// Whether commits diff natively (see `EngineProfile::native_diff`).
    pub native_diff: bool,
    /// Whether xplat commits from upper directories there instead (see
    /// `EngineProfile::commits_upper_dirs`).
    pub commits_upper_dirs: bool,
    /// CPUs.
    pub cpus: i64,
    /// Memory in bytes.
    pub memory: i64,
}

fn platform_name<S: serde::Serializer>(p: &Platform, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.format())
}

fn platform_names<S: serde::Serializer>(
    ps: &[Platform],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(ps.iter().map(Platform::format))
}

impl Survey {
    /// The row of an engine that did not answer.
    pub fn unreachable(spec: &EngineSpec, err: &EngineError) -> Survey {
        Survey {
            name: spec.name.clone(),
            endpoint: spec
                .endpoint
                .as_ref()
                .map_or_else(|| "default".into(), |e| e.to_string()),
            reachable: false,
            error: Some(err.to_string()),
            api_version: String::new(),
            server_version: String::new(),
            platform: Platform::default(),
            native: spec.platforms.clone(),
            declared: !spec.platforms.is_empty(),
            emulated: Vec::new(),
            binfmt_handlers: None,
            storage_driver: String::new(),
            native_diff: false,
            commits_upper_dirs: false,
            cpus: 0,
            memory: 0,
        }
    }

    /// The row of a connected engine whose binfmt handlers were read (`None`: unreadable).
    pub fn of(
        spec: &EngineSpec,
        engine: &DockerEngine,
        handlers: Option<Vec<String>>,
        catalog: &Catalog,
    ) -> Survey {
        let native = native_platforms(spec, engine);
        let emulated = handlers
            .as_deref()
            .map(|h| emulated_platforms(h, &native, catalog))
            .unwrap_or_default();
        let profile = engine.profile();
        Survey {
            name: spec.name.clone(),
            endpoint: engine.endpoint().to_string(),
            reachable: true,
            error: None,
            api_version: engine.api_version().to_string(),
            server_version: profile.server_version.clone(),
            platform: engine.platform().clone(),
            native,
            declared: !spec.platforms.is_empty(),
            emulated,
            binfmt_handlers: handlers,
            storage_driver: profile.storage_driver.clone(),
            native_diff: profile.native_diff,
            commits_upper_dirs: profile.commits_upper_dirs,
            cpus: profile.cpus,
            memory: profile.memory,
        }
    }
}

/// Names in a `GET /archive` listing of the binfmt_misc folder that are handlers (not
/// the `register` and `status` control files).
pub fn handler_names(paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = paths
        .iter()
        .filter_map(|p| {
            let p = p.trim_end_matches('/');
            let (dir, name) = p.rsplit_once('/')?;
            (!dir.contains('/') && !name.is_empty()).then(|| name.to_string())
        })
        .filter(|n| n != "register" && n != "status")
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Where the binfmt_misc folder of the engine's host is read from (bind-mounted into a
/// container that never starts: the engine's archive endpoint sees its mounts).
pub const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";

/// The binfmt handlers registered on the engine's host: a container of `image` (any
/// image; the empty one does), never started, with the host's binfmt_misc folder
/// bind-mounted read-only, and the names its archive lists (the files read as empty
/// through the archive endpoint, so whether a handler is enabled is not known). The
/// container is removed whatever happens.
pub async fn binfmt_handlers(engine: &dyn Engine, image: &str) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    let spec = super::RunSpec {
        image: image.to_string(),
        platform: Some(engine.platform().clone()),
        mounts: vec![super::MountSpec::Bind {
            source: BINFMT_DIR.into(),
            target: "/binfmt".into(),
            rw: false,
        }],
        ..super::RunSpec::default()
    };
    let id = engine.create_container(&spec).await?;
    let tar: std::result::Result<Vec<bytes::Bytes>, EngineError> =
        engine.get_archive(&id, "/binfmt").try_collect().await;
    let _ = engine.remove_container(&id).await;
    let tar = tar?.concat();
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(&tar[..]);
    let entries = archive.entries().map_err(|e| EngineError::BinfmtListing {
        reason: e.to_string(),
    })?;
    for entry in entries.flatten() {
        if let Ok(path) = entry.path() {
            names.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(handler_names(&names))
}

/// The relative cert paths of a config file, made absolute from its folder.
pub fn tls_in(dir: &Path, ca: &str, cert: &str, key: &str) -> TlsFiles {
    let at = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        }
    };
    TlsFiles {
        ca: at(ca),
        cert: at(cert),
        key: at(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_endpoints() {
        assert_eq!(
            endpoint("unix:///run/docker.sock", None).unwrap(),
            Endpoint::Unix("/run/docker.sock".into())
        );
        assert_eq!(
            endpoint("tcp://10.0.0.2:2375", None).unwrap(),
            Endpoint::Tcp("10.0.0.2:2375".into())
        );
        let files = tls_in(Path::new("/proj"), "certs/ca.pem", "/abs/cert.pem", "k.pem");
        assert_eq!(files.ca, Path::new("/proj/certs/ca.pem"));
        assert_eq!(files.cert, Path::new("/abs/cert.pem"));
        assert_eq!(
            endpoint("tcp://arm:2376", Some(files.clone())).unwrap(),
            Endpoint::TcpTlsFiles {
                addr: "arm:2376".into(),
                files
            }
        );
        assert_eq!(
            endpoint("ssh://me@arm-builder", None).unwrap(),
            Endpoint::Ssh("me@arm-builder".into())
        );
    }

    #[test]
    fn unusable_hosts_say_why() {
        let tls = Some(TlsFiles::in_dir(Path::new("/c")));
        let why = |host: &str, tls: Option<TlsFiles>| match endpoint(host, tls) {
            Err(EngineError::UnsupportedHost { why, .. }) => why,
            other => panic!("{host}: {other:?}"),
        };
        assert!(why("unix:///s", tls.clone()).contains("tcp:// hosts only"));
        assert!(why("https://h:2376", None).contains("client certificates"));
        assert!(why("ssh://me@h:2222", None).contains("~/.ssh/config"));
        assert!(why("h:2375", None).contains("tcp://host:port"));
    }

    #[test]
    fn binfmt_handlers_map_to_emulated_platforms() {
        let listing: Vec<String> = [
            "binfmt/",
            "binfmt/qemu-aarch64",
            "binfmt/qemu-arm",
            "binfmt/register",
            "binfmt/status",
            "binfmt/python3.11",
        ]
        .map(String::from)
        .to_vec();
        let handlers = handler_names(&listing);
        assert_eq!(handlers, ["python3.11", "qemu-aarch64", "qemu-arm"]);
        let catalog = Catalog::embedded();
        let amd = Platform::parse("linux/amd64").unwrap();
        let emulated = emulated_platforms(&handlers, &[amd], &catalog);
        let names: Vec<String> = emulated.iter().map(Platform::format).collect();
        assert!(names.contains(&"linux/arm64".to_string()), "{names:?}");
        assert!(names.contains(&"linux/arm/v7".to_string()), "{names:?}");
        assert!(!names.contains(&"linux/riscv64".to_string()), "{names:?}");
        // A native arm64 engine emulates no arm: it runs arm natively.
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let emulated = emulated_platforms(&handlers, &[arm64], &catalog);
        assert!(emulated.is_empty(), "{emulated:?}");
    }
}
