//! The executor's less common instructions against the real engine: RUN and COPY
//! heredocs, ADD of a URL (from a loopback HTTP server in the test, never the network),
//! `RUN --mount=type=bind,from=…` and wildcards in `COPY --from`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use xplat::engine::DockerEngine;
use xplat::exec::ExecError;
use xplat::ops::{build, BuildOptions, BuildOutcome};
use xplat::platform::Platform;
use xplat::progress::Recorder;

use crate::support::{busybox_engine, docker, tree, TestDir};

async fn engine() -> Option<DockerEngine> {
    match busybox_engine().await {
        Ok(e) => Some(e),
        Err(why) => {
            crate::support::skip(&why);
            None
        }
    }
}

fn opts(dir: &Path) -> BuildOptions {
    BuildOptions {
        context_dir: dir.to_path_buf(),
        platforms: vec![Platform::parse("linux/amd64").unwrap().normalized()],
        target: Some("build".into()),
        build_id: Some(format!(
            "test-{}-{}",
            std::process::id(),
            dir.file_name().unwrap().to_string_lossy()
        )),
        ..Default::default()
    }
}

fn nonce() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

async fn run_build(o: &BuildOptions, engine: &DockerEngine) -> Result<BuildOutcome, ExecError> {
    build(o, engine, &Recorder::default(), &CancellationToken::new()).await
}

/// Runs `sh -c script` in the image and returns its stdout.
fn sh(image: &str, script: &str) -> String {
    let out = docker(["run", "--rm", image, "sh", "-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn heredocs_in_run_and_copy() {
    let Some(engine) = engine().await else { return };
    let n = nonce();
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS build\n\
         ARG NAME=world\n\
         RUN <<EOF\necho one {n} > /h1\necho two >> /h1\nEOF\n\
         RUN <<-EOF sh\n\techo tabbed > /h2\n\tEOF\n\
         RUN <<EOF\n#!/bin/sh\necho \"script $0\" > /h3\nEOF\n\
         RUN <<A cat > /h4a && <<B cat > /h4b\nalpha\nA\nbeta\nB\n\
         COPY <<EOF /etc/greet\nhello $NAME\nEOF\n\
         COPY <<'EOF' /etc/raw\nhello $NAME\nEOF\n\
         COPY --chmod=755 <<X <<Y /multi/\nx\nX\ny\nY\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df)]);
    let out = run_build(&opts(dir.path()), &engine).await.expect("build");
    let img = &out.targets[0].image;
    assert_eq!(sh(img, "cat /h1"), format!("one {n}\ntwo\n"));
    assert_eq!(sh(img, "cat /h2"), "tabbed\n");
    assert_eq!(sh(img, "cat /h3"), "script /dev/pipes/EOF\n");
    assert_eq!(sh(img, "cat /h4a /h4b"), "alpha\nbeta\n");
    assert_eq!(sh(img, "cat /etc/greet"), "hello world\n");
    assert_eq!(sh(img, "cat /etc/raw"), "hello $NAME\n");
    assert_eq!(sh(img, "stat -c %a /etc/greet"), "644\n");
    assert_eq!(
        sh(img, "cat /multi/X /multi/Y; stat -c %a /multi/X"),
        "x\ny\n755\n"
    );
    // The same Dockerfile again: every step comes from the cache.
    let again = run_build(&opts(dir.path()), &engine)
        .await
        .expect("rebuild");
    assert_eq!(again.steps_run, 0);
    assert_eq!(again.targets[0].image, *img);
}

/// Serves `body` to every GET on 127.0.0.1 until dropped; counts requests.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(body: Vec<u8>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            h.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                let status = if req.starts_with(b"GET /missing") {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\
                     Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    Server { port, hits, task }
}

#[tokio::test]
async fn add_of_a_url_downloads_names_checks_and_caches() {
    let Some(engine) = engine().await else { return };
    let body = format!("downloaded {}\n", nonce()).into_bytes();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    let server = serve(body.clone()).await;
    let base = format!("http://127.0.0.1:{}", server.port);
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS build\n\
         ADD {base}/files/data.txt?v=1 /dl/\n\
         ADD --checksum=sha256:{digest} --chown=1000:1000 {base}/files/data.txt /named.txt\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df)]);
    let out = run_build(&opts(dir.path()), &engine).await.expect("build");
    let img = &out.targets[0].image;
    assert_eq!(sh(img, "cat /dl/data.txt").as_bytes(), &body[..]);
    assert_eq!(
        sh(img, "stat -c '%a %u:%g %Y' /dl/data.txt"),
        "600 0:0 784111777\n"
    );
    assert_eq!(sh(img, "stat -c '%a %u:%g' /named.txt"), "600 1000:1000\n");
    assert_eq!(out.steps_run, 2);
    // Same content: downloaded again (no ETag trust) but both steps are cache hits.
    let before = server.hits.load(Ordering::SeqCst);
    let again = run_build(&opts(dir.path()), &engine)
        .await
        .expect("rebuild");
    assert_eq!((again.steps_run, again.steps_cached), (0, 2));
    assert_eq!(server.hits.load(Ordering::SeqCst), before + 2);

    // A wrong checksum, a 404 and a git URL fail with the stage and line.
    let bad = "0".repeat(64);
    for (add, needle) in [
        (
            format!("ADD --checksum=sha256:{bad} {base}/x /x"),
            "checksum mismatch",
        ),
        (format!("ADD {base}/missing /x"), "404"),
        (
            "ADD https://example.invalid/repo.git#main /src".to_string(),
            "git repository",
        ),
    ] {
        let dir = TestDir::new(&[(
            "Dockerfile",
            &format!("FROM xplat-test/busybox:amd64 AS build\n{add}\n"),
        )]);
        let err = run_build(&opts(dir.path()), &engine)
            .await
            .expect_err(&add)
            .to_string();
        assert!(
            err.contains("line 2") && err.contains(needle),
            "{add}: {err}"
        );
        assert!(err.contains("stage build"), "{err}");
    }
}

#[tokio::test]
async fn run_mount_bind_from_a_stage_and_an_image() {
    let Some(engine) = engine().await else { return };
    let n = nonce();
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS tools\n\
         RUN mkdir -p /out/sub && echo tool-{n} > /out/t.txt && echo deep > /out/sub/d.txt\n\
         FROM xplat-test/busybox:amd64 AS build\n\
         RUN --mount=type=bind,from=tools,source=/out,target=/mnt/tools cat /mnt/tools/t.txt /mnt/tools/sub/d.txt > /copied\n\
         RUN --mount=type=bind,from=tools,source=out/t.txt,target=/one.txt cat /one.txt > /copied2\n\
         RUN --mount=type=bind,from=xplat-test/busybox:amd64,source=/bin,target=/bb test -e /bb/busybox && echo yes > /copied3\n\
         RUN --mount=type=bind,from=tools,source=/out,target=/ro ! touch /ro/new 2>/dev/null && echo ro > /copied4\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df)]);
    let out = run_build(&opts(dir.path()), &engine).await.expect("build");
    let img = &out.targets[0].image;
    assert_eq!(sh(img, "cat /copied"), format!("tool-{n}\ndeep\n"));
    assert_eq!(sh(img, "cat /copied2"), format!("tool-{n}\n"));
    assert_eq!(sh(img, "cat /copied3"), "yes\n");
    assert_eq!(sh(img, "cat /copied4"), "ro\n");
    // Nothing of the mounted stage was committed.
    assert_eq!(sh(img, "ls -A /mnt/tools 2>/dev/null | wc -l"), "0\n");
    // A missing source names the stage and line.
    let dir = TestDir::new(&[(
        "Dockerfile",
        "FROM xplat-test/busybox:amd64 AS tools\nFROM xplat-test/busybox:amd64 AS build\n\
         RUN --mount=type=bind,from=tools,source=/nope,target=/x true\n",
    )]);
    let err = run_build(&opts(dir.path()), &engine)
        .await
        .expect_err("missing source")
        .to_string();
    assert!(
        err.contains("stage build, line 3") && err.contains("/nope not found"),
        "{err}"
    );
}

#[tokio::test]
async fn run_mount_bind_rw_of_the_context_never_writes_into_it() {
    // Issue 10: BuildKit discards a rw bind mount's writes; the user's source tree must be
    // left as it was found.
    let Some(engine) = engine().await else { return };
    let n = nonce();
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS build\n\
         RUN --mount=type=bind,rw,target=/ctx echo {n} > /ctx/new.txt && rm /ctx/a.txt && echo changed > /ctx/sub/b.txt && ls /ctx > /seen\n\
         RUN --mount=type=bind,rw,target=/ctx ls /ctx > /seen2\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df), ("a.txt", "a\n"), ("sub/b.txt", "b\n")]);
    let before = tree(dir.path());
    let out = run_build(&opts(dir.path()), &engine).await.expect("build");
    let img = &out.targets[0].image;
    // The first RUN saw its own writes; the second RUN got the context as it is.
    assert_eq!(sh(img, "cat /seen"), "Dockerfile\nnew.txt\nsub\n");
    assert_eq!(sh(img, "cat /seen2"), "Dockerfile\na.txt\nsub\n");
    assert_eq!(tree(dir.path()), before, "the build context changed");
}

#[tokio::test]
async fn copy_from_with_wildcards() {
    let Some(engine) = engine().await else { return };
    let n = nonce();
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS out\n\
         RUN mkdir -p /out/sub && echo a{n} > /out/a.so && echo b > /out/b.so && echo c > /out/c.txt \
         && echo deep > /out/sub/d.so\n\
         FROM xplat-test/busybox:amd64 AS build\n\
         COPY --from=out /out/*.so /lib/x/\n\
         COPY --from=out out/a.s? /single\n\
         COPY --from=out /out/[c]*.txt /out/*/d.so /many/\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df)]);
    let out = run_build(&opts(dir.path()), &engine).await.expect("build");
    let img = &out.targets[0].image;
    assert_eq!(sh(img, "ls /lib/x"), "a.so\nb.so\n");
    assert_eq!(sh(img, "cat /single"), format!("a{n}\n"));
    assert_eq!(sh(img, "ls /many"), "c.txt\nd.so\n");
    // A wildcard matching nothing copies nothing, as the engine's BuildKit does
    // (AllowEmptyWildcard; checked with `DOCKER_BUILDKIT=1 docker build`).
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS out\nRUN mkdir /out && touch /out/a.so /out/b.so{n}\n\
         FROM xplat-test/busybox:amd64 AS build\nCOPY --from=out /out/*.none /x\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df)]);
    let out = run_build(&opts(dir.path()), &engine)
        .await
        .expect("no match is not an error");
    assert_eq!(
        sh(&out.targets[0].image, "test -e /x && echo yes || echo no"),
        "no\n"
    );
    // Several matches into a destination without a trailing slash: the engine's BuildKit
    // writes them to that path (the last one wins), no error; so does xplat.
    let df = format!(
        "FROM xplat-test/busybox:amd64 AS out\nRUN mkdir /out && touch /out/a.so /out/b.so{n}\n\
         FROM xplat-test/busybox:amd64 AS build\nCOPY --from=out /out/*.so /file\n"
    );
    let dir = TestDir::new(&[("Dockerfile", &df)]);
    let out = run_build(&opts(dir.path()), &engine)
        .await
        .expect("several matches into a file");
    assert_eq!(
        sh(&out.targets[0].image, "test -f /file && echo file"),
        "file\n"
    );
}
