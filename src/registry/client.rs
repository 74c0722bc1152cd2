//! One HTTP client for every registry a build talks to.
//!
//! Token negotiation (the `/v2/` challenge, Bearer realm, Basic fallback) is
//! delegated to oci-client's `Client::auth`. The requests themselves go through
//! our own reqwest client because oci-client's push helpers cannot do what the
//! push needs: choose chunk sizes, retry a 413 chunked, fall back from a 202
//! mount to the session it opened, or resume an upload from the registry's
//! `Range` (see `upload.rs`). Both share the same plain-HTTP decision.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{RequestBuilder, Response, StatusCode};

use super::auth::{AuthSources, Credential};
use super::error::{RegistryError, Result};
use super::push::PushEvent;
use super::redact::redact;
use super::reference::ImageRef;

/// How transient failures (5xx, 408, 429, resets, timeouts) are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total tries per request, first included.
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub initial_delay: Duration,
    /// Upper bound of one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `n` (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }
}

/// What a [`RegistryClient`] needs to know.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host` or `host:port`) spoken to over plain HTTP, from `--insecure-registry`.
    /// `localhost`, `127.0.0.0/8` and `[::1]` always are.
    pub insecure_registries: Vec<String>,
    /// Where credentials are looked up.
    pub auth: AuthSources,
    /// Retry policy for transient failures.
    pub retry: RetryPolicy,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Time allowed between two reads of one answer.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            auth: AuthSources::default(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Pull or push rights asked of the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read only.
    Pull,
    /// Read and write.
    Push,
}

/// A request that did not produce an answer we can use.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// Worth retrying: connection refused/reset, timeout, 408, 429.
    Transient(String),
    /// Worth retrying: the registry answered with a 5xx status.
    Server(StatusCode),
    /// Not worth retrying.
    Fatal(RegistryError),
}

type AuthKey = (String, String, Access);

/// A registry client shared (cheaply cloned) across a build's tasks.
#[derive(Clone)]
pub struct RegistryClient {
    http: reqwest::Client,
    options: Arc<ClientOptions>,
    headers: Arc<Mutex<BTreeMap<AuthKey, Option<HeaderValue>>>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Builds a client.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            .user_agent(concat!("xplat/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::HttpClient {
                reason: redact(&e.to_string()),
            })?;
        Ok(Self {
            http,
            options: Arc::new(options),
            headers: Arc::default(),
        })
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Whether `registry` is spoken to over plain HTTP.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        is_plain_http(registry, &self.options.insecure_registries)
    }

    /// The HTTP client itself (no credentials attached).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `scheme://host/v2/` of a reference's registry.
    pub(crate) fn url_root(&self, r: &ImageRef) -> String {
        let scheme = if self.is_plain_http(&r.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/", r.api_host())
    }

    /// `scheme://host/v2/<repo>/<path>` for a reference.
    pub(crate) fn url(&self, r: &ImageRef, path: &str) -> String {
        let scheme = if self.is_plain_http(&r.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/{}/{path}", r.api_host(), r.repository)
    }

    fn credential(&self, r: &ImageRef) -> Result<RegistryAuth> {
        match self.options.auth.lookup(&r.registry, &r.repository)? {
            None => Ok(RegistryAuth::Anonymous),
            Some(Credential::Basic { username, password }) => {
                Ok(RegistryAuth::Basic(username, password))
            }
            Some(Credential::IdentityToken(_)) => Err(RegistryError::IdentityTokenUnsupported {
                registry: r.registry.clone(),
            }),
        }
    }

    /// The `Authorization` value for `r` (cached), or `None` for anonymous access.
    async fn auth_header(
        &self,
        r: &ImageRef,
        access: Access,
        refresh: bool,
    ) -> Result<Option<HeaderValue>, SendFailure> {
        let key = (r.registry.clone(), r.repository.clone(), access);
        if !refresh {
            if let Some(h) = self.headers.lock().expect("auth cache lock").get(&key) {
                return Ok(h.clone());
            }
        }
        let auth = self.credential(r).map_err(SendFailure::Fatal)?;
        let oci = oci_client::Client::new(ClientConfig {
            protocol: if self.is_plain_http(&r.registry) {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(self.options.connect_timeout),
            read_timeout: Some(self.options.read_timeout),
            ..Default::default()
        });
        let reference = oci_client::Reference::with_tag(
            r.registry.clone(),
            r.repository.clone(),
            "latest".into(),
        );
        let op = match access {
            Access::Pull => RegistryOperation::Pull,
            Access::Push => RegistryOperation::Push,
        };
        let header = match oci.auth(&reference, &auth, op).await {
            Ok(Some(token)) => Some(secret_header(&format!("Bearer {token}"))),
            Ok(None) => match &auth {
                RegistryAuth::Basic(u, p) => {
                    use base64::Engine as _;
                    let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
                    Some(secret_header(&format!("Basic {b}")))
                }
                _ => None,
            },
            Err(OciDistributionError::AuthenticationFailure(_)) => {
                return Err(SendFailure::Fatal(RegistryError::Unauthorized {
                    registry: r.registry.clone(),
                    repository: r.repository.clone(),
                    operation: format!(
                        "getting a {} token for {}/{}",
                        match access {
                            Access::Pull => "pull",
                            Access::Push => "push",
                        },
                        r.registry,
                        r.repository
                    ),
                    status: 401,
                }))
            }
            Err(OciDistributionError::RequestError(e)) => {
                return Err(SendFailure::Transient(redact(&format!("{e:#}"))))
            }
            Err(e) => {
                return Err(SendFailure::Fatal(RegistryError::TokenExchange {
                    registry: r.registry.clone(),
                    reason: redact(&e.to_string()),
                }))
            }
        };
        self.headers
            .lock()
            .expect("auth cache lock")
            .insert(key, header.clone());
        Ok(header)
    }

    /// Sends one request built by `build` with auth applied; on a 401 the token
    /// is renewed once. Statuses other than 401/403 and transient ones are
    /// returned to the caller.
    pub(crate) async fn send_once(
        &self,
        r: &ImageRef,
        access: Access,
        operation: &str,
        build: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Send + Sync),
    ) -> Result<Response, SendFailure> {
        let mut refreshed = false;
        loop {
            let header = self.auth_header(r, access, refreshed).await?;
            let mut req = build(&self.http);
            if let Some(h) = header {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = req.send().await.map_err(|e| {
                if e.is_builder() {
                    // A request we could not build will not get better on retry.
                    SendFailure::Fatal(RegistryError::HttpClient {
                        reason: describe(&e),
                    })
                } else {
                    SendFailure::Transient(describe(&e))
                }
            })?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(SendFailure::Fatal(RegistryError::Unauthorized {
                    registry: r.registry.clone(),
                    repository: r.repository.clone(),
                    operation: operation.to_string(),
                    status: status.as_u16(),
                }));
            }
            if status.is_server_error() {
                return Err(SendFailure::Server(status));
            }
            if is_transient(status) {
                return Err(SendFailure::Transient(format!("HTTP {status}")));
            }
            return Ok(resp);
        }
    }

    /// [`Self::send_once`] with the retry policy: transient failures are
    /// retried with exponential backoff, then reported as `Unreachable`.
    pub(crate) async fn send(
        &self,
        r: &ImageRef,
        access: Access,
        operation: &str,
        on_event: &(dyn Fn(&PushEvent) + Send + Sync),
        build: &(dyn Fn(&reqwest::Client) -> RequestBuilder + Send + Sync),
    ) -> Result<Response> {
        let policy = &self.options.retry;
        let mut attempt = 1;
        loop {
            match self.send_once(r, access, operation, build).await {
                Ok(resp) => return Ok(resp),
                Err(SendFailure::Fatal(e)) => return Err(e),
                Err(failure) => {
                    let reason = match &failure {
                        SendFailure::Server(status) => format!("HTTP {status}"),
                        SendFailure::Transient(reason) => reason.clone(),
                        SendFailure::Fatal(_) => unreachable!("handled above"),
                    };
                    if attempt >= policy.attempts {
                        return Err(match failure {
                            SendFailure::Server(status) => RegistryError::ServerError {
                                operation: operation.to_string(),
                                attempts: attempt,
                                status: status.as_u16(),
                            },
                            _ => RegistryError::Unreachable {
                                operation: operation.to_string(),
                                attempts: attempt,
                                reason,
                            },
                        });
                    }
                    on_event(&PushEvent::Retrying {
                        operation: operation.to_string(),
                        attempt,
                        reason,
                    });
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }
}

fn secret_header(value: &str) -> HeaderValue {
    let mut h = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    h.set_sensitive(true);
    h
}

/// A reqwest failure as text, with its causes (reqwest's Display alone says
/// only "error sending request"), redacted.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    redact(&s)
}

/// 5xx, 408 and 429 are worth retrying.
pub(crate) fn is_transient(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Plain HTTP for loopback registries (as Docker does) and for `--insecure-registry` entries,
/// which match `host:port` exactly or a bare `host` on any port.
pub fn is_plain_http(registry: &str, insecure: &[String]) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.split(':').next().unwrap_or(registry),
    };
    let loopback = host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback || insecure.iter().any(|i| i == registry || i == host)
}

/// Reads an error answer's start for a message (redacted, at most 300 chars).
pub(crate) async fn error_body(resp: Response) -> String {
    let text = resp.text().await.unwrap_or_default();
    redact(text.trim()).chars().take(300).collect()
}

/// Builds an `UnexpectedStatus` from an answer.
pub(crate) async fn unexpected(operation: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let url = redact(resp.url().as_str());
    RegistryError::UnexpectedStatus {
        operation: operation.to_string(),
        url,
        status,
        body: error_body(resp).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_rules() {
        let insecure = vec!["reg.lan:5000".to_string(), "other.lan".to_string()];
        for (reg, want) in [
            ("localhost:5000", true),
            ("localhost", true),
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("[::1]:5000", true),
            ("reg.lan:5000", true),
            ("reg.lan:5001", false),
            ("other.lan:443", true),
            ("docker.io", false),
            ("10.0.0.1:5000", false),
        ] {
            assert_eq!(is_plain_http(reg, &insecure), want, "{reg}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            attempts: 9,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        let d: Vec<u128> = (1..=4).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(d, [100, 200, 350, 350]);
        assert_eq!(p.delay(60).as_millis(), 350);
    }

    #[test]
    fn transient_statuses() {
        for (s, want) in [
            (500, true),
            (502, true),
            (503, true),
            (429, true),
            (408, true),
            (404, false),
            (413, false),
            (401, false),
        ] {
            assert_eq!(is_transient(StatusCode::from_u16(s).unwrap()), want, "{s}");
        }
    }
}
