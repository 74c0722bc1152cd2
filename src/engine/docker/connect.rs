//! Connecting a [`DockerEngine`]: the endpoint (unix socket, tcp, tcp+TLS, ssh), the API
//! version negotiation (1.41 or newer) and the engine's platform; an engine that does not
//! answer becomes [`EngineError::Unreachable`] with what to do about it.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::errors::Error as Bollard;
use bollard::{Docker, API_DEFAULT_VERSION};

use super::super::config::{Endpoint, EngineConfig};
use super::super::error::{EngineError, Result};
use super::super::guard::Containers;
use super::super::request::{self, api_at_least, engine_platform};
use super::{DockerEngine, MIN_API_VERSION};

impl DockerEngine {
    /// Connects to the engine `config` names, negotiates the API version (1.41 or newer
    /// required) and reads the engine's platform.
    pub async fn connect(config: &EngineConfig) -> Result<DockerEngine> {
        let endpoint = config.endpoint.to_string();
        let first = config.connect_timeout.as_secs().max(1);
        let docker = match &config.endpoint {
            Endpoint::Unix(path) => {
                if !path.exists() {
                    return Err(unreachable(config, "no such socket".into()));
                }
                Docker::connect_with_unix(&path.to_string_lossy(), first, API_DEFAULT_VERSION)
                    .map_err(|e| unreachable(config, root_cause(&e)))?
            }
            Endpoint::Tcp(addr) => Docker::connect_with_http(addr, first, API_DEFAULT_VERSION)
                .map_err(|e| unreachable(config, root_cause(&e)))?,
            Endpoint::TcpTls { addr, cert_dir } => Docker::connect_with_ssl(
                addr,
                &cert_dir.join("key.pem"),
                &cert_dir.join("cert.pem"),
                &cert_dir.join("ca.pem"),
                first,
                API_DEFAULT_VERSION,
            )
            .map_err(|source| EngineError::Tls {
                endpoint: endpoint.clone(),
                cert_dir: cert_dir.display().to_string(),
                source,
            })?,
            Endpoint::TcpTlsFiles { addr, files } => Docker::connect_with_ssl(
                addr,
                &files.key,
                &files.cert,
                &files.ca,
                first,
                API_DEFAULT_VERSION,
            )
            .map_err(|source| EngineError::Tls {
                endpoint: endpoint.clone(),
                cert_dir: files.ca.parent().unwrap_or(&files.ca).display().to_string(),
                source,
            })?,
            // bollard starts `ssh -M` per connection and talks to `docker system dial-stdio`
            // on the host; the connect timeout is its request timeout until replaced below.
            Endpoint::Ssh(dest) => {
                Docker::connect_with_ssh(&format!("ssh://{dest}"), first, API_DEFAULT_VERSION, None)
                    .map_err(|e| unreachable(config, root_cause(&e)))?
            }
        };
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(config, root_cause(&e)))?;
        let version = docker
            .version()
            .await
            .map_err(|e| unreachable(config, root_cause(&e)))?;
        let api_version = version.api_version.clone().unwrap_or_default();
        if !api_at_least(&api_version, MIN_API_VERSION) {
            return Err(EngineError::ApiTooOld {
                endpoint,
                found: api_version,
                required: MIN_API_VERSION.into(),
            });
        }
        let platform = engine_platform(
            version.os.as_deref().unwrap_or("linux"),
            version.arch.as_deref().unwrap_or(""),
        );
        let info = docker
            .info()
            .await
            .map_err(|e| unreachable(config, root_cause(&e)))?;
        let mut profile = request::engine_profile(&info, version.version.as_deref().unwrap_or(""));
        profile.api_version = api_version.clone();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        profile.shares_filesystem = matches!(config.endpoint, Endpoint::Unix(_))
            && !host.trim().is_empty()
            && host.trim() == profile.name;
        let image_store = super::upper::image_store(&info, profile.shares_filesystem);
        profile.commits_upper_dirs = image_store.is_some();
        Ok(DockerEngine {
            docker: docker.with_timeout(config.request_timeout),
            endpoint,
            target: config.endpoint.clone(),
            api_version,
            platform,
            profile,
            containers: Arc::new(Containers::new()),
            image_store,
        })
    }

    /// Connects to the engine the docker CLI would use from the process environment
    /// (`DOCKER_HOST`, `DOCKER_CONTEXT`, the Docker config's current context).
    pub async fn connect_from_process_env() -> Result<DockerEngine> {
        Self::connect_with_context(None).await
    }

    /// [`Self::connect_from_process_env`] with `--context NAME` (which, as in the docker
    /// CLI, wins over `DOCKER_HOST`); see [`super::context`].
    pub async fn connect_with_context(context: Option<&str>) -> Result<DockerEngine> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::connect(&super::super::context::resolve(&env, context)?).await
    }
}

fn unreachable(config: &EngineConfig, reason: String) -> EngineError {
    let endpoint = &config.endpoint;
    if let Some(name) = &config.context {
        return EngineError::Unreachable {
            endpoint: format!("{endpoint} (docker context {name})"),
            reason,
            hint: format!(
                "check the engine of docker context {name} (docker context inspect {name}), \
                 or choose another with --context NAME or DOCKER_CONTEXT"
            ),
        };
    }
    let hint = match endpoint {
        Endpoint::Unix(_) if reason.contains("permission denied") => {
            "run as a member of the docker group, or set DOCKER_HOST"
        }
        Endpoint::Unix(_) => "start dockerd or set DOCKER_HOST",
        Endpoint::Tcp(_) | Endpoint::TcpTls { .. } | Endpoint::TcpTlsFiles { .. } => {
            "check that the engine listens there, or set DOCKER_HOST to one that does"
        }
        Endpoint::Ssh(_) => {
            "check `ssh HOST docker version` works without a password (a key or an agent), \
             with the docker CLI installed on the host"
        }
    };
    EngineError::Unreachable {
        endpoint: endpoint.to_string(),
        reason,
        hint: hint.into(),
    }
}

/// The innermost cause in a few words: an io error's kind ("connection refused")
/// rather than hyper's wrapping text.
pub(super) fn root_cause(err: &Bollard) -> String {
    if matches!(err, Bollard::RequestTimeoutError) {
        return "no answer in time".into();
    }
    let mut cur: &(dyn std::error::Error + 'static) = err;
    let mut last = err.to_string();
    loop {
        if let Some(io) = cur.downcast_ref::<std::io::Error>() {
            return io_reason(io);
        }
        match cur.source() {
            Some(next) => {
                last = next.to_string();
                cur = next;
            }
            None => return last,
        }
    }
}

fn io_reason(io: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match io.kind() {
        ConnectionRefused => "connection refused".into(),
        PermissionDenied => "permission denied".into(),
        NotFound => "no such socket".into(),
        TimedOut => "connection timed out".into(),
        _ => io.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_unix_socket_message_says_what_and_how() {
        let mut config = EngineConfig::from_env(&HashMap::new()).unwrap();
        let err = unreachable(&config, "connection refused".into());
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker engine at unix:///var/run/docker.sock: connection refused"
        );
        // The advice is a field; the CLI prints it as a `hint:` line.
        match err {
            EngineError::Unreachable { hint, .. } => {
                assert_eq!(hint, "start dockerd or set DOCKER_HOST")
            }
            other => panic!("{other:?}"),
        }
        // Chosen by a docker context: the message and the hint name it.
        config.context = Some("colima".into());
        let err = unreachable(&config, "no such socket".into());
        assert!(err.to_string().contains("(docker context colima)"), "{err}");
        match err {
            EngineError::Unreachable { hint, .. } => {
                assert!(hint.contains("docker context inspect colima"), "{hint}")
            }
            other => panic!("{other:?}"),
        }
    }
}
