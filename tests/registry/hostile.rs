//! Error paths against a small in-process hostile registry: a tokio
//! `TcpListener` speaking hand-written HTTP/1.1 (one request per connection),
//! because no HTTP server crate is a dependency. It implements just enough of
//! the distribution API (sessions, PATCH/PUT, HEAD, manifests) and injects
//! faults: 413 on monolithic PUT, 202/401 on mount, 401 everywhere, 500s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use xplat::registry::{
    sha256_digest, AuthSources, BlobSource, ClientOptions, ImageRef, PushEvent, PushOptions,
    RegistryClient, RegistryError, RetryPolicy,
};

use super::real::{image, mem_blob, noise, request, Events};

/// Faults to inject.
#[derive(Default, Clone)]
struct Faults {
    monolithic_413: bool,
    /// Status for `POST ?mount=` (201 mounts when the blob exists anywhere).
    mount_status: Option<u16>,
    unauthorized: bool,
    /// Answer this many PATCH requests with 500, after storing half the body.
    fail_patches: u32,
    /// Answer this many upload PUTs with 500.
    fail_puts: u32,
    /// Answer every blob HEAD with 500 (a registry whose blob links are damaged).
    fail_heads: bool,
    /// Demand Bearer tokens from `/token`, issued for this Basic credential
    /// (base64 of `user:password`); the first token expires after this many requests.
    bearer: Option<(String, u32)>,
}

#[derive(Default)]
struct State {
    faults: Faults,
    blobs: BTreeMap<String, Vec<u8>>, // "repo@digest"
    sessions: BTreeMap<String, Vec<u8>>,
    manifests: BTreeMap<String, Vec<u8>>, // "repo:ref"
    log: Vec<String>,                     // "METHOD path Content-Range"
    next: u32,
    host: String,
    tokens: std::collections::BTreeSet<String>,
    tokens_issued: u32,
    token_queries: Vec<String>,
    authorized: u32,
}

struct Req {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

struct Hostile {
    host: String,
    state: Arc<Mutex<State>>,
}

impl Hostile {
    async fn start(faults: Faults) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State {
            faults,
            host: host.clone(),
            ..Default::default()
        }));
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let (status, headers, body) = handle(&s, req);
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self { host, state }
    }

    fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                v.replace("%3A", ":")
                    .replace("%2F", "/")
                    .replace("%2C", ","),
            )
        })
        .collect();
    Some(Req {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn answer(status: u16, headers: &[(&str, String)]) -> Answer {
    (
        status,
        headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        Vec::new(),
    )
}

fn handle(state: &Mutex<State>, req: Req) -> Answer {
    let mut st = state.lock().unwrap();
    let range = req
        .headers
        .get("content-range")
        .cloned()
        .unwrap_or_default();
    st.log.push(
        format!("{} {} {range}", req.method, req.path)
            .trim_end()
            .to_string(),
    );
    if st.faults.unauthorized {
        return answer(
            401,
            &[("WWW-Authenticate", "Basic realm=\"hostile\"".into())],
        );
    }
    if let Some((basic, expire_after)) = st.faults.bearer.clone() {
        let challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"hostile\"",
            st.host
        );
        if req.path == "/token" {
            let q = req
                .query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            st.token_queries.push(q);
            if req.headers.get("authorization") != Some(&format!("Basic {basic}")) {
                return answer(401, &[]);
            }
            st.tokens_issued += 1;
            let token = format!("tok-{}", st.tokens_issued);
            st.tokens.insert(token.clone());
            let body = format!(r#"{{"token":"{token}"}}"#).into_bytes();
            return (
                200,
                vec![("Content-Type".into(), "application/json".into())],
                body,
            );
        }
        let presented = req
            .headers
            .get("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::to_string)
            .unwrap_or_default();
        if !st.tokens.contains(&presented) {
            return answer(401, &[("WWW-Authenticate", challenge)]);
        }
        st.authorized += 1;
        if st.authorized == expire_after {
            st.tokens.remove(&presented); // expired: the next request must fetch a new one
        }
    }
    if req.path == "/v2/" {
        return answer(200, &[]);
    }
    let rest = req.path.strip_prefix("/v2/").unwrap_or("");
    if st.faults.fail_heads && req.method == "HEAD" && rest.contains("/blobs/sha256:") {
        return answer(500, &[]);
    }
    let session_loc = |id: &str, repo: &str| format!("/v2/{repo}/blobs/uploads/{id}");
    if let Some((repo, _)) = rest.split_once("/blobs/uploads") {
        let repo = repo.to_string();
        let id = rest.rsplit('/').next().unwrap_or("").to_string();
        match req.method.as_str() {
            "POST" => {
                if let Some(d) = req.query.get("mount") {
                    match st.faults.mount_status {
                        Some(201) => {
                            let src = req.query.get("from").cloned().unwrap_or_default();
                            if let Some(b) = st.blobs.get(&format!("{src}@{d}")).cloned() {
                                st.blobs.insert(format!("{repo}@{d}"), b);
                                return answer(
                                    201,
                                    &[("Location", format!("/v2/{repo}/blobs/{d}"))],
                                );
                            }
                        }
                        Some(401) => return answer(401, &[]),
                        _ => {}
                    }
                }
                st.next += 1;
                let id = format!("s{}", st.next);
                st.sessions.insert(id.clone(), Vec::new());
                answer(
                    202,
                    &[
                        ("Location", session_loc(&id, &repo)),
                        ("OCI-Chunk-Min-Length", "1024".into()),
                    ],
                )
            }
            "PATCH" => {
                if !st.sessions.contains_key(&id) {
                    return answer(404, &[]);
                }
                let have = st.sessions[&id].len();
                let start: usize = range
                    .split('-')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(have);
                if start != have {
                    return answer(416, &[]);
                }
                if st.faults.fail_patches > 0 {
                    st.faults.fail_patches -= 1;
                    let half = req.body.len() / 2;
                    st.sessions
                        .get_mut(&id)
                        .unwrap()
                        .extend_from_slice(&req.body[..half]);
                    return answer(500, &[]);
                }
                st.sessions
                    .get_mut(&id)
                    .unwrap()
                    .extend_from_slice(&req.body);
                let end = st.sessions[&id].len().saturating_sub(1);
                answer(
                    202,
                    &[
                        ("Location", session_loc(&id, &repo)),
                        ("Range", format!("0-{end}")),
                    ],
                )
            }
            "GET" => match st.sessions.get(&id) {
                Some(b) => {
                    let end = b.len().saturating_sub(1);
                    answer(
                        204,
                        &[
                            ("Location", session_loc(&id, &repo)),
                            ("Range", format!("0-{end}")),
                        ],
                    )
                }
                None => answer(404, &[]),
            },
            "PUT" => {
                if !req.body.is_empty() && st.faults.monolithic_413 {
                    return answer(413, &[]);
                }
                if st.faults.fail_puts > 0 {
                    st.faults.fail_puts -= 1;
                    return answer(500, &[]);
                }
                let Some(mut data) = st.sessions.remove(&id) else {
                    return answer(404, &[]);
                };
                data.extend_from_slice(&req.body);
                let d = req.query.get("digest").cloned().unwrap_or_default();
                if sha256_digest(&data) != d {
                    return answer(400, &[]);
                }
                st.blobs.insert(format!("{repo}@{d}"), data);
                answer(
                    201,
                    &[
                        ("Location", format!("/v2/{repo}/blobs/{d}")),
                        ("Docker-Content-Digest", d),
                    ],
                )
            }
            _ => answer(405, &[]),
        }
    } else if let Some((repo, d)) = rest.split_once("/blobs/") {
        match st.blobs.get(&format!("{repo}@{d}")) {
            Some(b) if req.method == "GET" => (200, vec![], b.clone()),
            Some(b) => answer(200, &[("Content-Length-Hint", b.len().to_string())]),
            None => answer(404, &[]),
        }
    } else if let Some((repo, r)) = rest.split_once("/manifests/") {
        if req.method == "PUT" {
            let d = sha256_digest(&req.body);
            st.manifests.insert(format!("{repo}:{r}"), req.body);
            answer(201, &[("Docker-Content-Digest", d)])
        } else {
            answer(404, &[])
        }
    } else {
        answer(404, &[])
    }
}

fn client_with(auth: AuthSources) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        auth,
        retry: RetryPolicy {
            attempts: 4,
            initial_delay: std::time::Duration::from_millis(10),
            max_delay: std::time::Duration::from_millis(50),
        },
        ..Default::default()
    })
    .unwrap()
}

#[tokio::test]
async fn monolithic_413_is_retried_in_chunks() {
    let reg = Hostile::start(Faults {
        monolithic_413: true,
        ..Default::default()
    })
    .await;
    let layer = mem_blob(noise("413", 10_000));
    let req = request(
        &format!("{}/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![layer.clone()])],
    );
    let options = PushOptions {
        chunk_size: 4096,
        ..Default::default()
    };
    let events = Events::default();
    client_with(AuthSources::default())
        .push(&req, &options, &events.sink())
        .await
        .unwrap();
    assert!(events.all().contains(&PushEvent::ChunkedFallback {
        digest: layer.digest.clone()
    }));
    let patches: Vec<String> = reg
        .log()
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    // 10 000 bytes (+ the small config, also refused whole) in 4096-byte chunks.
    assert!(
        patches.iter().any(|l| l.ends_with(" 8192-9999")),
        "{patches:?}"
    );
    let st = reg.state.lock().unwrap();
    assert_eq!(
        st.blobs[&format!("app@{}", layer.digest)],
        noise("413", 10_000)
    );
    assert!(st.manifests.contains_key("app:t"));
}

#[tokio::test]
async fn mount_answered_202_continues_in_the_session_it_opened() {
    let reg = Hostile::start(Faults {
        mount_status: Some(202),
        ..Default::default()
    })
    .await;
    let bytes = noise("base", 5_000);
    let digest = sha256_digest(&bytes);
    reg.state
        .lock()
        .unwrap()
        .blobs
        .insert(format!("base@{digest}"), bytes.clone());
    let layer = xplat::registry::Blob {
        digest: digest.clone(),
        size: 5_000,
        source: BlobSource::Remote(
            ImageRef::parse(&format!("{}/base@{digest}", reg.host)).unwrap(),
        ),
    };
    let req = request(
        &format!("{}/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![layer])],
    );
    let summary = client_with(AuthSources::default())
        .push(&req, &PushOptions::default(), &|_: &PushEvent| {})
        .await
        .unwrap();
    assert_eq!((summary.blobs_mounted, summary.blobs_uploaded), (0, 2));
    let log = reg.log();
    let mount_at = log
        .iter()
        .position(|l| l.starts_with("POST /v2/app/blobs/uploads/"))
        .unwrap();
    // The session the 202 opened (s1) is used, not a new POST.
    assert!(
        log[mount_at + 1..]
            .iter()
            .any(|l| l.starts_with("GET /v2/base/blobs/")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l == "PUT /v2/app/blobs/uploads/s1"),
        "{log:?}"
    );
    assert_eq!(
        reg.state.lock().unwrap().blobs[&format!("app@{digest}")],
        bytes
    );
}

#[tokio::test]
async fn mount_answered_401_falls_back_to_upload_and_201_mounts() {
    for (status, mounted) in [(401, 0), (201, 1)] {
        let reg = Hostile::start(Faults {
            mount_status: Some(status),
            ..Default::default()
        })
        .await;
        let bytes = noise("base", 3_000);
        let digest = sha256_digest(&bytes);
        reg.state
            .lock()
            .unwrap()
            .blobs
            .insert(format!("base@{digest}"), bytes);
        let layer = xplat::registry::Blob {
            digest: digest.clone(),
            size: 3_000,
            source: BlobSource::Remote(
                ImageRef::parse(&format!("{}/base@{digest}", reg.host)).unwrap(),
            ),
        };
        let req = request(
            &format!("{}/app", reg.host),
            &["t"],
            vec![image("linux/amd64", vec![layer])],
        );
        let s = client_with(AuthSources::default())
            .push(&req, &PushOptions::default(), &|_: &PushEvent| {})
            .await
            .unwrap();
        assert_eq!(s.blobs_mounted, mounted, "mount answered {status}");
        assert!(reg
            .state
            .lock()
            .unwrap()
            .blobs
            .contains_key(&format!("app@{digest}")));
    }
}

#[tokio::test]
async fn unauthorized_is_a_clear_error_without_credentials() {
    let reg = Hostile::start(Faults {
        unauthorized: true,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cr3t-pw");
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let client = client_with(AuthSources {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    let req = request(
        &format!("{}/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![mem_blob(noise("x", 100))])],
    );
    let err = client
        .push(&req, &PushOptions::default(), &|_: &PushEvent| {})
        .await
        .unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(
        text.contains("not authorized (HTTP 401)") && text.contains("index not pushed"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t") && !text.contains(&auth), "{text}");
    // Credentials were offered (Basic), and nothing was written.
    assert!(reg.state.lock().unwrap().manifests.is_empty());
    let pull = client
        .inspect(&ImageRef::parse(&format!("{}/app:t", reg.host)).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(pull, RegistryError::Unauthorized { status: 401, .. }),
        "{pull}"
    );
}

#[tokio::test]
async fn a_blob_check_that_keeps_failing_falls_back_to_an_upload() {
    let reg = Hostile::start(Faults {
        fail_heads: true,
        ..Default::default()
    })
    .await;
    let layer = mem_blob(noise("heads", 3_000));
    let req = request(
        &format!("{}/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![layer.clone()])],
    );
    let events = Events::default();
    client_with(AuthSources::default())
        .push(&req, &PushOptions::default(), &events.sink())
        .await
        .unwrap();
    let log = reg.log();
    // Each blob was checked (and retried) before it was uploaded anyway.
    assert!(
        log.iter().any(|l| l.starts_with("HEAD /v2/app/blobs/")),
        "{log:?}"
    );
    assert!(
        events.all().iter().any(
            |e| matches!(e, PushEvent::BlobUploaded { digest, .. } if *digest == layer.digest)
        ),
        "{:?}",
        events.all()
    );
    let st = reg.state.lock().unwrap();
    assert_eq!(
        st.blobs[&format!("app@{}", layer.digest)],
        noise("heads", 3_000)
    );
    assert!(st.manifests.contains_key("app:t"));
}

#[tokio::test]
async fn server_errors_are_retried_and_chunked_uploads_resume_from_range() {
    // The config's monolithic PUT fails once; the layer's first PATCH stores
    // half its body, then answers 500.
    let reg = Hostile::start(Faults {
        fail_puts: 1,
        fail_patches: 1,
        ..Default::default()
    })
    .await;
    let layer = mem_blob(noise("resume", 12_000));
    let req = request(
        &format!("{}/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![layer.clone()])],
    );
    let options = PushOptions {
        monolithic_max: 1000,
        chunk_size: 4096,
        concurrency: 1,
    };
    let events = Events::default();
    client_with(AuthSources::default())
        .push(&req, &options, &events.sink())
        .await
        .unwrap();
    let retries = events
        .all()
        .iter()
        .filter(|e| matches!(e, PushEvent::Retrying { .. }))
        .count();
    assert_eq!(retries, 2, "{:?}", events.all());
    let log = reg.log();
    let patches: Vec<&str> = log
        .iter()
        .filter(|l| l.starts_with("PATCH"))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    // After the failure the client asked where the session stood and resumed
    // at byte 2048 instead of restarting from 0.
    assert_eq!(
        patches,
        ["0-4095", "2048-6143", "6144-10239", "10240-11999"],
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l == "GET /v2/app/blobs/uploads/s3"),
        "{log:?}"
    );
    let st = reg.state.lock().unwrap();
    assert_eq!(
        st.blobs[&format!("app@{}", layer.digest)],
        noise("resume", 12_000)
    );
    assert!(st.manifests.contains_key("app:t"));
}

#[tokio::test]
async fn bearer_tokens_are_fetched_with_credentials_and_renewed_on_expiry() {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("bob:hunter2");
    let reg = Hostile::start(Faults {
        bearer: Some((basic.clone(), 3)),
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{basic}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let client = client_with(AuthSources {
        docker_config_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    });
    let req = request(
        &format!("{}/team/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![mem_blob(noise("b", 2_000))])],
    );
    let one_at_a_time = PushOptions {
        concurrency: 1,
        ..Default::default()
    };
    client
        .push(&req, &one_at_a_time, &|_: &PushEvent| {})
        .await
        .unwrap();
    {
        let st = reg.state.lock().unwrap();
        assert!(st.manifests.contains_key("team/app:t"));
        // A second token was fetched after the first expired mid-push.
        assert_eq!(st.tokens_issued, 2, "{:?}", st.token_queries);
        assert!(
            st.token_queries
                .iter()
                .all(|q| q.contains("scope=repository:team/app:pull,push")
                    && q.contains("service=hostile")),
            "{:?}",
            st.token_queries
        );
    }

    // Wrong password: the token endpoint refuses; the error says so and holds no secret.
    let reg = Hostile::start(Faults {
        bearer: Some(("bm90OnRoaXM=".into(), 0)),
        ..Default::default()
    })
    .await;
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{basic}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let req = request(
        &format!("{}/team/app", reg.host),
        &["t"],
        vec![image("linux/amd64", vec![mem_blob(noise("b", 2_000))])],
    );
    let err = client
        .push(&req, &PushOptions::default(), &|_: &PushEvent| {})
        .await
        .unwrap_err();
    let text = format!("{err} / {err:?}");
    assert!(
        text.contains("not authorized") && !text.contains("hunter2") && !text.contains(&basic),
        "{text}"
    );
}
