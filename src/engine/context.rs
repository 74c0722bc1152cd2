//! Which engine the Docker CLI would talk to: its context rules, read from an injected
//! environment map and the Docker config folder (tests pass a fake folder; nothing here
//! reads the process environment).
//!
//! The order is the docker CLI's (`cli/command/cli.go: resolveContextName`):
//! 1. `--context NAME` (xplat's global flag, as docker's);
//! 2. `DOCKER_HOST` set: the default context, which is `DOCKER_HOST` itself;
//! 3. `DOCKER_CONTEXT`;
//! 4. `currentContext` in `$DOCKER_CONFIG/config.json` (default `~/.docker`);
//! 5. the default context.
//!
//! The context `default` is `DOCKER_HOST` with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`,
//! else the default socket ([`EngineConfig::from_env`]). A named context lives in
//! `contexts/meta/<sha256(name)>/meta.json` (`Endpoints.docker.Host`, `SkipTLSVerify`)
//! with its TLS material in `contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::config::{Endpoint, EngineConfig};
use super::error::{EngineError, Result};

/// The context that stands for `DOCKER_HOST` or the default socket.
pub const DEFAULT_CONTEXT: &str = "default";

/// Where the context name came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextSource {
    /// `--context NAME`.
    Flag,
    /// `DOCKER_CONTEXT`.
    Env,
    /// `currentContext` in the Docker config file.
    ConfigFile,
}

impl std::fmt::Display for ContextSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ContextSource::Flag => "--context",
            ContextSource::Env => "DOCKER_CONTEXT",
            ContextSource::ConfigFile => "currentContext in the Docker config",
        })
    }
}

/// The Docker config folder: `DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir(env: &HashMap<String, String>) -> PathBuf {
    let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(get("HOME").unwrap_or("/root")).join(".docker"),
    }
}

/// The folder name the docker CLI stores a context under: the hex sha256 of its name.
pub fn context_id(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// The context name the docker CLI would use, and where it came from (`None` for the
/// default context chosen because nothing named another).
pub fn context_name(
    env: &HashMap<String, String>,
    flag: Option<&str>,
) -> Result<Option<(String, ContextSource)>> {
    let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if let Some(name) = flag.filter(|n| !n.is_empty()) {
        return Ok(Some((name.to_string(), ContextSource::Flag)));
    }
    if get("DOCKER_HOST").is_some() {
        return Ok(None);
    }
    if let Some(name) = get("DOCKER_CONTEXT") {
        return Ok(Some((name.to_string(), ContextSource::Env)));
    }
    let file = docker_config_dir(env).join("config.json");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::DockerConfigInvalid {
                path: file,
                reason: e.to_string(),
            })
        }
    };
    #[derive(Deserialize)]
    struct ConfigFile {
        #[serde(rename = "currentContext", default)]
        current_context: String,
    }
    // An empty file is what some tools leave behind; the docker CLI accepts it.
    if text.trim().is_empty() {
        return Ok(None);
    }
    let parsed: ConfigFile =
        serde_json::from_str(&text).map_err(|e| EngineError::DockerConfigInvalid {
            path: file.clone(),
            reason: e.to_string(),
        })?;
    Ok(Some(parsed.current_context)
        .filter(|n| !n.is_empty())
        .map(|n| (n, ContextSource::ConfigFile)))
}

#[derive(Debug, Deserialize)]
struct Meta {
    #[serde(rename = "Endpoints", default)]
    endpoints: HashMap<String, MetaEndpoint>,
}

#[derive(Debug, Deserialize)]
struct MetaEndpoint {
    #[serde(rename = "Host", default)]
    host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// Where the engine is, as the docker CLI would resolve it with `--context flag`
/// (see the module docs for the order).
pub fn resolve(env: &HashMap<String, String>, flag: Option<&str>) -> Result<EngineConfig> {
    match context_name(env, flag)? {
        None => EngineConfig::from_env(env),
        Some((name, _)) if name == DEFAULT_CONTEXT => EngineConfig::from_env(env),
        Some((name, source)) => named(&docker_config_dir(env), &name, source),
    }
}

/// The engine of the named context stored under `config_dir`.
pub fn named(config_dir: &Path, name: &str, source: ContextSource) -> Result<EngineConfig> {
    let id = context_id(name);
    let meta_path = config_dir
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let invalid = |reason: String| EngineError::ContextInvalid {
        name: name.to_string(),
        path: meta_path.clone(),
        reason,
    };
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EngineError::ContextNotFound {
                name: name.to_string(),
                source_of_name: source.to_string(),
                config_dir: config_dir.to_path_buf(),
            })
        }
        Err(e) => return Err(invalid(e.to_string())),
    };
    let meta: Meta = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let ep = meta
        .endpoints
        .get("docker")
        .filter(|e| !e.host.is_empty())
        .ok_or_else(|| invalid("it has no docker endpoint (Endpoints.docker.Host)".into()))?;
    if ep.skip_tls_verify {
        return Err(invalid(
            "it sets SkipTLSVerify, and xplat always verifies the engine's certificate; \
             give the context the engine's CA (docker context update NAME --docker ca=FILE,...)"
                .into(),
        ));
    }
    let tls_dir = config_dir
        .join("contexts")
        .join("tls")
        .join(&id)
        .join("docker");
    let has_tls = tls_dir.join("ca.pem").is_file();
    let mut config = endpoint(&ep.host, has_tls.then_some(tls_dir), name)?;
    config.context = Some(name.to_string());
    Ok(config)
}

/// The endpoint of a context's `Host`; TLS when the context holds TLS material (or the
/// host says `https://`).
fn endpoint(host: &str, tls_dir: Option<PathBuf>, name: &str) -> Result<EngineConfig> {
    let unsupported = |why: &str| EngineError::UnsupportedContextHost {
        name: name.to_string(),
        value: host.to_string(),
        why: why.to_string(),
    };
    let tcp = |addr: &str, tls: Option<PathBuf>| -> Result<Endpoint> {
        let addr = addr.trim_end_matches('/');
        if addr.is_empty() {
            return Err(unsupported("the tcp address is empty"));
        }
        Ok(match tls {
            Some(cert_dir) => Endpoint::TcpTls {
                addr: addr.to_string(),
                cert_dir,
            },
            None => Endpoint::Tcp(addr.to_string()),
        })
    };
    let endpoint = if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(unsupported("the unix socket path is empty"));
        }
        Endpoint::Unix(PathBuf::from(path))
    } else if let Some(addr) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        tcp(addr, tls_dir)?
    } else if let Some(addr) = host.strip_prefix("https://") {
        match tls_dir {
            Some(dir) => tcp(addr, Some(dir))?,
            None => {
                return Err(unsupported(
                    "https needs the context's TLS material (ca.pem, cert.pem, key.pem)",
                ))
            }
        }
    } else if host.starts_with("ssh://") {
        return Err(unsupported(
            "ssh engines are not supported yet; forward the socket (ssh -L) and use a unix:// or tcp:// context",
        ));
    } else {
        return Err(unsupported("expected unix://PATH or tcp://HOST:PORT"));
    };
    let defaults = EngineConfig::from_env(&HashMap::new())?;
    Ok(EngineConfig {
        endpoint,
        ..defaults
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DEFAULT_SOCKET;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A Docker config folder with `currentContext` (when given) and contexts
    /// `(name, host, tls, skip_verify)`, made as the docker CLI lays them out.
    fn config_dir(
        current: Option<&str>,
        contexts: &[(&str, &str, bool, bool)],
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if let Some(c) = current {
            std::fs::write(
                dir.path().join("config.json"),
                format!("{{\"auths\":{{}},\"currentContext\":\"{c}\"}}"),
            )
            .unwrap();
        }
        for (name, host, tls, skip) in contexts {
            let meta = dir.path().join("contexts/meta").join(context_id(name));
            std::fs::create_dir_all(&meta).unwrap();
            std::fs::write(
                meta.join("meta.json"),
                format!(
                    "{{\"Name\":\"{name}\",\"Metadata\":{{}},\"Endpoints\":{{\"docker\":{{\"Host\":\"{host}\",\"SkipTLSVerify\":{skip}}}}}}}"
                ),
            )
            .unwrap();
            if *tls {
                let t = dir
                    .path()
                    .join("contexts/tls")
                    .join(context_id(name))
                    .join("docker");
                std::fs::create_dir_all(&t).unwrap();
                for f in ["ca.pem", "cert.pem", "key.pem"] {
                    std::fs::write(t.join(f), "PEM").unwrap();
                }
            }
        }
        dir
    }

    #[test]
    fn the_context_id_is_the_sha256_of_the_name() {
        // `docker context create desktop-linux` stores it under this folder.
        assert_eq!(
            context_id("desktop-linux"),
            "fe9c6bd7a66301f49ca9b6a70b217107cd1284598bfc254700c989b916da791e"
        );
    }

    #[test]
    fn resolution_follows_the_docker_cli_order() {
        let dir = config_dir(
            Some("colima"),
            &[
                ("colima", "unix:///home/u/.colima/docker.sock", false, false),
                ("other", "unix:///run/other.sock", false, false),
                ("remote", "tcp://10.1.2.3:2376", true, false),
            ],
        );
        let cfg = dir.path().to_str().unwrap();
        let unix = |p: &str| Endpoint::Unix(p.into());
        // (environment, --context, endpoint wanted, context named)
        type Case<'a> = (
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            Endpoint,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            // currentContext from the config file.
            (
                &[("DOCKER_CONFIG", cfg)],
                None,
                unix("/home/u/.colima/docker.sock"),
                Some("colima"),
            ),
            // DOCKER_CONTEXT beats the config file.
            (
                &[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "other")],
                None,
                unix("/run/other.sock"),
                Some("other"),
            ),
            // DOCKER_HOST beats DOCKER_CONTEXT and the config file.
            (
                &[
                    ("DOCKER_CONFIG", cfg),
                    ("DOCKER_CONTEXT", "other"),
                    ("DOCKER_HOST", "unix:///from/host.sock"),
                ],
                None,
                unix("/from/host.sock"),
                None,
            ),
            // --context beats DOCKER_HOST (docker: resolveContextName checks the flag first).
            (
                &[
                    ("DOCKER_CONFIG", cfg),
                    ("DOCKER_HOST", "unix:///from/host.sock"),
                ],
                Some("other"),
                unix("/run/other.sock"),
                Some("other"),
            ),
            // `default` is DOCKER_HOST, else the default socket.
            (
                &[("DOCKER_CONFIG", cfg), ("DOCKER_HOST", "tcp://h:2375")],
                Some("default"),
                Endpoint::Tcp("h:2375".into()),
                None,
            ),
            (
                &[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "default")],
                None,
                unix(DEFAULT_SOCKET),
                None,
            ),
            // An empty DOCKER_CONTEXT counts as unset.
            (
                &[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "")],
                None,
                unix("/home/u/.colima/docker.sock"),
                Some("colima"),
            ),
            // TLS material comes from the context's tls folder.
            (
                &[("DOCKER_CONFIG", cfg)],
                Some("remote"),
                Endpoint::TcpTls {
                    addr: "10.1.2.3:2376".into(),
                    cert_dir: dir
                        .path()
                        .join("contexts/tls")
                        .join(context_id("remote"))
                        .join("docker"),
                },
                Some("remote"),
            ),
        ];
        for (pairs, flag, want, context) in cases {
            let got = resolve(&env(pairs), *flag).unwrap();
            assert_eq!(&got.endpoint, want, "env {pairs:?} flag {flag:?}");
            assert_eq!(
                got.context.as_deref(),
                *context,
                "env {pairs:?} flag {flag:?}"
            );
        }
    }

    #[test]
    fn the_config_folder_defaults_to_home_dot_docker() {
        let home = tempfile::tempdir().unwrap();
        let docker = home.path().join(".docker");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(docker.join("config.json"), r#"{"currentContext":"x"}"#).unwrap();
        let meta = docker.join("contexts/meta").join(context_id("x"));
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"x","Endpoints":{"docker":{"Host":"unix:///x.sock"}}}"#,
        )
        .unwrap();
        let got = resolve(&env(&[("HOME", home.path().to_str().unwrap())]), None).unwrap();
        assert_eq!(got.endpoint, Endpoint::Unix("/x.sock".into()));
    }

    #[test]
    fn no_config_file_means_the_default_socket() {
        let dir = tempfile::tempdir().unwrap();
        let got = resolve(
            &env(&[("DOCKER_CONFIG", dir.path().to_str().unwrap())]),
            None,
        )
        .unwrap();
        assert_eq!(got.endpoint, Endpoint::Unix(DEFAULT_SOCKET.into()));
        assert_eq!(got.context, None);
    }

    #[test]
    fn a_missing_context_names_itself_and_where_its_name_came_from() {
        let dir = config_dir(Some("gone"), &[]);
        let cfg = dir.path().to_str().unwrap();
        let err = resolve(&env(&[("DOCKER_CONFIG", cfg)]), None).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, EngineError::ContextNotFound { name, .. } if name == "gone"),
            "{err:?}"
        );
        assert!(text.contains("currentContext"), "{text}");
        let err = resolve(&env(&[("DOCKER_CONFIG", cfg)]), Some("nope")).unwrap_err();
        assert!(err.to_string().contains("--context"), "{err}");
    }

    #[test]
    fn unusable_contexts_are_refused_with_the_reason() {
        let dir = config_dir(
            None,
            &[
                ("insecure", "tcp://h:2376", true, true),
                ("ssh", "ssh://me@box", false, false),
                ("https-no-tls", "https://h:2376", false, false),
            ],
        );
        let cfg = dir.path().to_str().unwrap();
        for (name, needle) in [
            ("insecure", "SkipTLSVerify"),
            ("ssh", "ssh"),
            ("https-no-tls", "TLS material"),
        ] {
            let err = resolve(&env(&[("DOCKER_CONFIG", cfg)]), Some(name)).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(needle) && text.contains(name),
                "{name}: {text}"
            );
        }
        std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
        let err = resolve(&env(&[("DOCKER_CONFIG", cfg)]), None).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }
}
