//! Where the engine is: `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH`
//! read from an injected map (tests never touch the process environment).
//!
//! Pure: no I/O. `docker.rs` turns an [`EngineConfig`] into a connection.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{EngineError, Result};

/// The socket the Docker CLI uses when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// Plain HTTP over tcp, `host:port`.
    Tcp(String),
    /// HTTPS over tcp with client certificates from `cert_dir` (ca.pem, cert.pem, key.pem).
    TcpTls {
        /// `host:port`.
        addr: String,
        /// The folder holding the PEM files.
        cert_dir: PathBuf,
    },
    /// HTTPS over tcp with client certificates named one by one (`[engines.NAME] tls`).
    TcpTlsFiles {
        /// `host:port`.
        addr: String,
        /// The PEM files.
        files: TlsFiles,
    },
    /// `ssh://[user@]host`: bollard runs the system `ssh` and `docker system dial-stdio`
    /// on the host (see `engine::fleet` for what that needs).
    Ssh(String),
}

/// The PEM files of a TLS client: the CA that signed the engine's certificate, and the
/// client's own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

impl TlsFiles {
    /// `ca.pem`, `cert.pem` and `key.pem` in `dir`, as the Docker CLI names them.
    pub fn in_dir(dir: &std::path::Path) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::TcpTls { addr, .. } | Endpoint::TcpTlsFiles { addr, .. } => {
                write!(f, "tcp://{addr} (TLS)")
            }
            Endpoint::Ssh(dest) => write!(f, "ssh://{dest}"),
        }
    }
}

/// Connection settings for [`super::DockerEngine::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Where the engine listens.
    pub endpoint: Endpoint,
    /// Timeout for the first contact (ping and version negotiation).
    pub connect_timeout: Duration,
    /// Timeout for every later request until response headers arrive. Long, because
    /// a big `put_archive` or `commit` answers only when done (bollard's default is 120 s).
    pub request_timeout: Duration,
    /// The docker context it came from, when a named one (not `default`) chose it.
    pub context: Option<String>,
}

impl EngineConfig {
    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` (and `HOME` for the
    /// default cert folder) from `env`, as the Docker CLI does.
    pub fn from_env(env: &HashMap<String, String>) -> Result<EngineConfig> {
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let host = get("DOCKER_HOST").unwrap_or("");
        let tls = get("DOCKER_TLS_VERIFY").is_some();
        let cert_dir = match get("DOCKER_CERT_PATH") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(get("HOME").unwrap_or("/root")).join(".docker"),
        };
        let unsupported = |why: &str| EngineError::UnsupportedHost {
            value: host.to_string(),
            why: why.to_string(),
        };
        let endpoint = if host.is_empty() {
            Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET))
        } else if let Some(path) = host.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(unsupported("the unix socket path is empty"));
            }
            Endpoint::Unix(PathBuf::from(path))
        } else if let Some(addr) = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
        {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() {
                return Err(unsupported("the tcp address is empty"));
            }
            if tls {
                Endpoint::TcpTls {
                    addr: addr.to_string(),
                    cert_dir,
                }
            } else {
                Endpoint::Tcp(addr.to_string())
            }
        } else if let Some(addr) = host.strip_prefix("https://") {
            Endpoint::TcpTls {
                addr: addr.trim_end_matches('/').to_string(),
                cert_dir,
            }
        } else if let Some(dest) = host.strip_prefix("ssh://") {
            let dest = dest.trim_end_matches('/');
            if dest.is_empty() {
                return Err(unsupported("the ssh destination is empty"));
            }
            Endpoint::Ssh(dest.to_string())
        } else {
            return Err(unsupported(
                "use unix:///path/to/docker.sock or tcp://host:port",
            ));
        };
        Ok(EngineConfig {
            endpoint,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(3600),
            context: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn endpoint_from_env_table() {
        let cases: &[(&[(&str, &str)], Endpoint)] = &[
            (&[], Endpoint::Unix(DEFAULT_SOCKET.into())),
            (
                &[("DOCKER_HOST", "")],
                Endpoint::Unix(DEFAULT_SOCKET.into()),
            ),
            (
                &[("DOCKER_HOST", "unix:///run/user/1000/docker.sock")],
                Endpoint::Unix("/run/user/1000/docker.sock".into()),
            ),
            (
                &[("DOCKER_HOST", "tcp://10.0.0.2:2375")],
                Endpoint::Tcp("10.0.0.2:2375".into()),
            ),
            (
                &[
                    ("DOCKER_HOST", "tcp://10.0.0.2:2375"),
                    ("DOCKER_TLS_VERIFY", ""),
                ],
                Endpoint::Tcp("10.0.0.2:2375".into()),
            ),
            (
                &[
                    ("DOCKER_HOST", "tcp://h:2376"),
                    ("DOCKER_TLS_VERIFY", "1"),
                    ("DOCKER_CERT_PATH", "/certs"),
                ],
                Endpoint::TcpTls {
                    addr: "h:2376".into(),
                    cert_dir: "/certs".into(),
                },
            ),
            (
                &[
                    ("DOCKER_HOST", "tcp://h:2376"),
                    ("DOCKER_TLS_VERIFY", "1"),
                    ("HOME", "/home/u"),
                ],
                Endpoint::TcpTls {
                    addr: "h:2376".into(),
                    cert_dir: "/home/u/.docker".into(),
                },
            ),
            (
                &[
                    ("DOCKER_HOST", "https://h:2376/"),
                    ("DOCKER_CERT_PATH", "/c"),
                ],
                Endpoint::TcpTls {
                    addr: "h:2376".into(),
                    cert_dir: "/c".into(),
                },
            ),
        ];
        for (pairs, want) in cases {
            let got = EngineConfig::from_env(&env(pairs)).unwrap().endpoint;
            assert_eq!(&got, want, "env {pairs:?}");
        }
    }

    #[test]
    fn unsupported_hosts_are_refused_with_the_value() {
        for host in [
            "ssh://",
            "npipe:////./pipe/docker_engine",
            "unix://",
            "tcp://",
            "box:2375",
        ] {
            let err = EngineConfig::from_env(&env(&[("DOCKER_HOST", host)])).unwrap_err();
            assert!(
                matches!(&err, EngineError::UnsupportedHost { value, .. } if value == host),
                "{host}: {err}"
            );
        }
    }

    #[test]
    fn timeouts_are_long_for_requests() {
        let c = EngineConfig::from_env(&HashMap::new()).unwrap();
        assert_eq!(c.request_timeout, Duration::from_secs(3600));
        assert!(c.connect_timeout < c.request_timeout);
    }

    #[test]
    fn endpoint_display_is_what_the_user_typed() {
        assert_eq!(
            Endpoint::Unix("/x.sock".into()).to_string(),
            "unix:///x.sock"
        );
        assert_eq!(Endpoint::Tcp("h:1".into()).to_string(), "tcp://h:1");
        assert_eq!(Endpoint::Ssh("me@box".into()).to_string(), "ssh://me@box");
    }

    #[test]
    fn ssh_hosts_are_endpoints() {
        let c = EngineConfig::from_env(&env(&[("DOCKER_HOST", "ssh://me@box")])).unwrap();
        assert_eq!(c.endpoint, Endpoint::Ssh("me@box".into()));
    }
}
