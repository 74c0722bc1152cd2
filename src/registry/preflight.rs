//! Checks before work: every repository a `--push` names is reachable and accepts a
//! push from us, asked before anything is built so a wrong port, a typo in a host name,
//! a TLS mismatch or missing credentials cost seconds, not a whole build.
//!
//! Two requests per repository:
//! 1. `GET /v2/` without credentials, only to see that a registry answers there (any of
//!    200 and 401 will do). Transport failures are named: connection refused, DNS, TLS,
//!    no answer in time.
//! 2. `POST /v2/<repo>/blobs/uploads/` with push credentials (for a token registry this
//!    is a token for the `push` scope), then `DELETE` of the upload it opened. Asking for
//!    a token alone is not enough: token servers hand out tokens with fewer actions than
//!    asked (Docker Hub does), and basic-auth registries check nothing until a write. An
//!    upload start is the first request of every real push, so the answer is the one
//!    the push would get; the session is cancelled at once and holds no data.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use reqwest::header::CONTENT_LENGTH;
use reqwest::StatusCode;
use serde::Serialize;

use super::client::Access;
use super::client::{describe, RegistryClient, SendFailure};
use super::error::{RegistryError, Result};
use super::reference::ImageRef;

/// Time limits of the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflightOptions {
    /// How long a registry may take to answer `/v2/` (the reachability check).
    pub reach_timeout: Duration,
    /// How long the permission check may take (token exchange and upload start): longer,
    /// because a token server far away may take more than a second.
    pub permission_timeout: Duration,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        Self {
            reach_timeout: Duration::from_secs(2),
            permission_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a repository cannot take a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PushCheckFailure {
    /// Nothing listens at the registry's address.
    ConnectionRefused,
    /// The registry's host name does not resolve.
    Dns {
        /// The resolver's words.
        reason: String,
    },
    /// The TLS handshake failed (plain HTTP on the other side, an unknown CA, a bad name).
    Tls {
        /// The TLS library's words.
        reason: String,
    },
    /// The registry did not answer in time.
    Timeout {
        /// The limit, in milliseconds.
        millis: u64,
    },
    /// Some other transport failure.
    Network {
        /// What failed.
        reason: String,
    },
    /// Something answered, but not a registry (`/v2/` gave this status).
    NotARegistry {
        /// The status.
        status: u16,
    },
    /// The registry refused the push: 401 (who are you) or 403 (not allowed).
    Denied {
        /// 401 or 403.
        status: u16,
    },
    /// The repository does not exist and the registry does not create it on push.
    RepositoryUnknown,
    /// Any other answer to the upload start.
    Unexpected {
        /// The status.
        status: u16,
        /// The start of the answer's body (redacted).
        body: String,
    },
}

impl std::fmt::Display for PushCheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushCheckFailure::ConnectionRefused => f.write_str("connection refused"),
            PushCheckFailure::Dns { reason } => {
                write!(f, "the host name does not resolve ({reason})")
            }
            PushCheckFailure::Tls { reason } => write!(f, "TLS handshake failed ({reason})"),
            PushCheckFailure::Timeout { millis } => {
                write!(f, "no answer within {:.1} s", *millis as f64 / 1000.0)
            }
            PushCheckFailure::Network { reason } => f.write_str(reason),
            PushCheckFailure::NotARegistry { status } => {
                write!(f, "no registry API there (/v2/ answered HTTP {status})")
            }
            PushCheckFailure::Denied { status: 403 } => f.write_str("push denied (HTTP 403)"),
            PushCheckFailure::Denied { status } => {
                write!(f, "not authorized to push (HTTP {status})")
            }
            PushCheckFailure::RepositoryUnknown => f.write_str("the repository does not exist"),
            PushCheckFailure::Unexpected { status, body } if body.is_empty() => {
                write!(f, "starting an upload answered HTTP {status}")
            }
            PushCheckFailure::Unexpected { status, body } => {
                write!(f, "starting an upload answered HTTP {status}: {body}")
            }
        }
    }
}

impl PushCheckFailure {
    /// What the user can do about it, for `registry` (`host[:port]`) and `repository`.
    pub fn hint(&self, registry: &str, repository: &str) -> String {
        match self {
            PushCheckFailure::ConnectionRefused => format!(
                "nothing listens at {registry}: start the registry, or fix the host and port in -t"
            ),
            PushCheckFailure::Dns { .. } => {
                format!("check the registry host name in -t ({registry})")
            }
            PushCheckFailure::Tls { .. } => format!(
                "if {registry} speaks plain HTTP, pass --insecure-registry {registry}; if it uses \
                 a private CA, add the CA to the system's trust store"
            ),
            PushCheckFailure::Timeout { .. } | PushCheckFailure::Network { .. } => format!(
                "check the network path to {registry} (firewall, proxy, VPN) and that the registry runs"
            ),
            PushCheckFailure::NotARegistry { .. } => format!(
                "{registry} is not a registry's address: check the host and port in -t"
            ),
            PushCheckFailure::Denied { status: 403 } => format!(
                "your credentials for {registry} may not push to {repository}: check the \
                 repository name and your rights on it"
            ),
            PushCheckFailure::Denied { .. } => format!(
                "log in with `docker login {registry}` (xplat reads $DOCKER_CONFIG/config.json, its \
                 credential helpers and REGISTRY_AUTH_FILE)"
            ),
            PushCheckFailure::RepositoryUnknown => format!(
                "create the repository {repository} on {registry} first (some registries, such as \
                 ECR, do not create it on push)"
            ),
            PushCheckFailure::Unexpected { .. } => format!(
                "{registry} did not accept the start of a push; try `docker push` to the same \
                 repository to see whether the registry works"
            ),
        }
    }
}

/// A repository that cannot take a push: which, why, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushCheckError {
    /// Registry host.
    pub registry: String,
    /// Repository.
    pub repository: String,
    /// Why.
    pub failure: PushCheckFailure,
    /// What to do about it (the CLI prints it as a `hint:` line).
    pub hint: String,
}

/// Checks, concurrently, that every repository of `targets` takes a push. The first
/// failure in `targets` order is returned as [`RegistryError::PushCheck`].
pub async fn check_push(
    client: &RegistryClient,
    targets: &[ImageRef],
    options: &PreflightOptions,
) -> Result<()> {
    let mut seen = BTreeSet::new();
    let repos: Vec<&ImageRef> = targets
        .iter()
        .filter(|r| seen.insert((r.registry.clone(), r.repository.clone())))
        .collect();
    let results = join_all(repos.iter().map(|r| check_one(client, r, options))).await;
    for (r, result) in repos.iter().zip(results) {
        if let Err(failure) = result {
            return Err(RegistryError::PushCheck(Box::new(PushCheckError {
                registry: r.registry.clone(),
                repository: r.repository.clone(),
                hint: failure.hint(&r.registry, &r.repository),
                failure,
            })));
        }
    }
    Ok(())
}

async fn check_one(
    client: &RegistryClient,
    r: &ImageRef,
    options: &PreflightOptions,
) -> std::result::Result<(), PushCheckFailure> {
    let timeout = |d: Duration| PushCheckFailure::Timeout {
        millis: d.as_millis() as u64,
    };
    tokio::time::timeout(options.reach_timeout, reach(client, r))
        .await
        .map_err(|_| timeout(options.reach_timeout))??;
    tokio::time::timeout(options.permission_timeout, may_push(client, r))
        .await
        .map_err(|_| timeout(options.permission_timeout))?
}

/// `GET /v2/` without credentials: is there a registry?
async fn reach(client: &RegistryClient, r: &ImageRef) -> std::result::Result<(), PushCheckFailure> {
    let url = client.url_root(r);
    let resp = client
        .http()
        .get(&url)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let status = resp.status();
    if status.is_success() || status == StatusCode::UNAUTHORIZED {
        return Ok(());
    }
    if status == StatusCode::BAD_REQUEST {
        // Go's net/http answers plain HTTP on a TLS port with this status and text.
        let body = super::client::error_body(resp).await;
        if body.contains("HTTPS") {
            return Err(PushCheckFailure::Tls {
                reason: "the registry speaks HTTPS and was spoken to over plain HTTP".into(),
            });
        }
    }
    Err(PushCheckFailure::NotARegistry {
        status: status.as_u16(),
    })
}

/// Starts an upload with push credentials and cancels it.
async fn may_push(
    client: &RegistryClient,
    r: &ImageRef,
) -> std::result::Result<(), PushCheckFailure> {
    let url = client.url(r, "blobs/uploads/");
    let op = format!("starting an upload to {}/{}", r.registry, r.repository);
    let resp = match client
        .send_once(r, Access::Push, &op, &|c| {
            c.post(&url).header(CONTENT_LENGTH, 0)
        })
        .await
    {
        Ok(resp) => resp,
        Err(SendFailure::Fatal(RegistryError::Unauthorized { status, .. })) => {
            return Err(PushCheckFailure::Denied { status })
        }
        Err(SendFailure::Fatal(e)) => {
            return Err(PushCheckFailure::Network {
                reason: e.to_string(),
            })
        }
        Err(SendFailure::Transient(reason)) => return Err(PushCheckFailure::Network { reason }),
        Err(SendFailure::Server(status)) => {
            return Err(PushCheckFailure::Unexpected {
                status: status.as_u16(),
                body: String::new(),
            })
        }
    };
    match resp.status() {
        StatusCode::ACCEPTED => {
            // Cancel the session; a registry that cannot is left to expire it.
            if let Some(session) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| resp.url().join(l).ok())
            {
                let _ = client
                    .send_once(r, Access::Push, &op, &|c| c.delete(session.clone()))
                    .await;
            }
            Ok(())
        }
        // A registry that mounts or accepts the empty upload at once is fine too.
        StatusCode::CREATED => Ok(()),
        StatusCode::NOT_FOUND => Err(PushCheckFailure::RepositoryUnknown),
        status => Err(PushCheckFailure::Unexpected {
            status: status.as_u16(),
            body: super::client::error_body(resp).await,
        }),
    }
}

/// Names a transport failure by its cause, walking the error's sources.
fn classify(e: &reqwest::Error) -> PushCheckFailure {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return PushCheckFailure::ConnectionRefused;
            }
        }
        cur = err.source();
    }
    let text = describe(e);
    let lower = text.to_lowercase();
    if lower.contains("dns error") || lower.contains("failed to lookup address") {
        let reason = text.rsplit(": ").next().unwrap_or(&text).trim().to_string();
        return PushCheckFailure::Dns { reason };
    }
    if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
    {
        let reason = text.rsplit(": ").next().unwrap_or(&text).trim().to_string();
        return PushCheckFailure::Tls { reason };
    }
    if e.is_timeout() {
        return PushCheckFailure::Timeout { millis: 0 };
    }
    PushCheckFailure::Network { reason: text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_says_what_and_what_to_do() {
        let cases = [
            (
                PushCheckFailure::ConnectionRefused,
                "connection refused",
                "nothing listens at r:1",
            ),
            (
                PushCheckFailure::Dns {
                    reason: "Name or service not known".into(),
                },
                "does not resolve",
                "host name",
            ),
            (
                PushCheckFailure::Tls {
                    reason: "UnknownIssuer".into(),
                },
                "TLS",
                "--insecure-registry r:1",
            ),
            (
                PushCheckFailure::Timeout { millis: 2000 },
                "no answer within 2.0 s",
                "network",
            ),
            (
                PushCheckFailure::Denied { status: 401 },
                "not authorized",
                "docker login r:1",
            ),
            (PushCheckFailure::Denied { status: 403 }, "denied", "rights"),
            (
                PushCheckFailure::RepositoryUnknown,
                "does not exist",
                "create the repository app",
            ),
            (
                PushCheckFailure::NotARegistry { status: 404 },
                "no registry API",
                "host and port",
            ),
        ];
        for (failure, what, todo) in cases {
            assert!(failure.to_string().contains(what), "{failure}");
            let hint = failure.hint("r:1", "app");
            assert!(hint.contains(todo), "{failure:?}: {hint}");
        }
    }

    #[tokio::test]
    async fn a_dead_port_is_connection_refused_at_once() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = RegistryClient::new(Default::default()).unwrap();
        let target = ImageRef::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
        let started = std::time::Instant::now();
        let err = check_push(&client, &[target], &PreflightOptions::default())
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        match &err {
            RegistryError::PushCheck(e) => {
                assert_eq!(e.failure, PushCheckFailure::ConnectionRefused)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!("cannot push to 127.0.0.1:{port}/app: connection refused")
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_within_the_limit() {
        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in listener.incoming().take(4) {
                held.push(c);
            }
            std::thread::sleep(Duration::from_secs(5));
        });
        let client = RegistryClient::new(Default::default()).unwrap();
        let target = ImageRef::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
        let options = PreflightOptions {
            reach_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let err = check_push(&client, &[target], &options).await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains("no answer within 0.3 s"), "{err}");
    }
}
