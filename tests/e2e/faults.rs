//! Faults and bad input: each a clear error, a non-zero exit, and no index in the registry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use base64::Engine as _;

use super::{events, manifest_exists, ok, scratch_context, xplat_build};
use crate::support::{
    push_fixture_busybox, require, require_engine, require_registry, require_skopeo, CmdOutput,
    Registry, TestDir,
};

/// A loopback TCP proxy in front of `upstream_port`, relaying client bytes at about
/// `rate` bytes/s; sends on `crossed` once `threshold` client bytes went through.
fn throttling_proxy(
    upstream_port: u16,
    rate: u64,
    threshold: u64,
    crossed: mpsc::Sender<()>,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let total = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                continue; // the registry is down: the client sees the connection close
            };
            let (total, crossed) = (total.clone(), crossed.clone());
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match c_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    let before = total.fetch_add(n as u64, Ordering::SeqCst);
                    if before < threshold && before + n as u64 >= threshold {
                        let _ = crossed.send(());
                    }
                    std::thread::sleep(Duration::from_micros(n as u64 * 1_000_000 / rate));
                }
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s_read, &mut c_write);
                let _ = c_write.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

/// Digests of the blobs a run finished uploading.
fn uploaded(out: &CmdOutput) -> Vec<String> {
    events(out, "blob")
        .iter()
        .filter(|b| b["outcome"] == "uploaded")
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn registry_stopped_mid_push_fails_without_an_index_and_a_rerun_sends_only_what_is_missing() {
    require_engine!();
    require_skopeo!();
    let mut reg = require_registry!();
    let (tx, rx) = mpsc::channel();
    // ~24 MiB of layer at ~8 MiB/s: the registry dies about 4 MiB into the push.
    let proxy = throttling_proxy(reg.port(), 8 << 20, 4 << 20, tx);
    let ctx = scratch_context(24 << 20);
    let work = tempfile::tempdir().unwrap();
    let tag = format!("127.0.0.1:{proxy}/big:1");
    let docker_config = work.path().join(".docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xplat"))
        .current_dir(work.path())
        .env("DOCKER_CONFIG", &docker_config)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "--progress",
            "json",
            "--platform",
            "linux/amd64,linux/arm64",
        ])
        .args(["-t", &tag, "--push"])
        .arg(ctx.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let collect = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
            .join("\n")
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the push reached 4 MiB");
    reg.stop();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    let first = CmdOutput {
        code: status.code(),
        stdout,
        stderr: collect.join().unwrap(),
    };
    assert_ne!(first.code, Some(0), "{}", first.stderr);
    let message = first.stderr.to_lowercase();
    assert!(
        message.contains("push") && message.contains(&format!("127.0.0.1:{proxy}")),
        "the error names the push and the registry:\n{}",
        first.stderr
    );
    assert!(
        events(&first, "index_pushed").is_empty(),
        "no index was pushed"
    );

    reg.restart().unwrap();
    assert!(!manifest_exists(&tag), "no index after a failed push");
    let done_before = uploaded(&first);
    let second = ok(xplat_build(
        work.path(),
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &tag,
            "--push",
            ctx.path().to_str().unwrap(),
        ],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    ));
    assert!(manifest_exists(&tag));
    let again = uploaded(&second);
    assert!(!again.is_empty(), "the big layer was missing");
    for d in &again {
        assert!(!done_before.contains(d), "{d} was sent twice");
    }
    let existing: Vec<_> = events(&second, "blob")
        .into_iter()
        .filter(|b| b["outcome"] == "exists")
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    for d in &done_before {
        assert!(
            existing.contains(d),
            "{d} was uploaded before, so it exists"
        );
    }
}

fn bad_push(args: &[&str], ctx: &Path, envs: &[(&str, &str)]) -> CmdOutput {
    let work = tempfile::tempdir().unwrap();
    let mut all = args.to_vec();
    all.push(ctx.to_str().unwrap());
    let out = xplat_build(work.path(), &all, envs);
    assert_ne!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("index "), "{}", out.stdout);
    out
}

#[test]
fn unknown_registry_is_a_clear_error() {
    require_engine!();
    let ctx = scratch_context(16);
    let out = bad_push(
        &["-t", "no-such-registry.invalid/app:1", "--push"],
        ctx.path(),
        &[],
    );
    assert!(
        out.stderr.contains("no-such-registry.invalid"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_tag_with_invalid_characters_is_refused_before_any_work() {
    let ctx = scratch_context(16);
    let out = bad_push(
        &["-t", "127.0.0.1:5000/App:bad tag!", "--push"],
        ctx.path(),
        &[],
    );
    assert!(out.stderr.contains("bad tag!"), "{}", out.stderr);
    assert!(events(&out, "plan").is_empty(), "nothing was built");
}

#[test]
fn wrong_credentials_are_a_clear_error_that_prints_no_secret() {
    require_engine!();
    require_skopeo!();
    let htpasswd = require!(which("htpasswd"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    crate::support::run_ok(
        Command::new(htpasswd)
            .args(["-Bbc"])
            .arg(&file)
            .args(["ci", "right-pass"]),
    );
    require!(crate::support::Fixtures::get().registry_bin());
    let reg = Registry::start_with_htpasswd(&file).expect("start the registry with auth");
    let ctx = scratch_context(16);
    let tag = reg.reference("app:1");
    let with = |user_pass: &str| {
        let work = tempfile::tempdir().unwrap();
        let cfg = work.path().join(".docker-config");
        std::fs::create_dir_all(&cfg).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
        std::fs::write(
            cfg.join("config.json"),
            format!(
                "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
                reg.host()
            ),
        )
        .unwrap();
        xplat_build(
            work.path(),
            &["-t", &tag, "--push", ctx.path().to_str().unwrap()],
            &[],
        )
    };
    let wrong = with("ci:wrong-pass");
    assert_ne!(wrong.code, Some(0), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains("wrong-pass"), "{}", wrong.stderr);
    let lower = wrong.stderr.to_lowercase();
    assert!(
        lower.contains("credential") || lower.contains("auth") || lower.contains("401"),
        "{}",
        wrong.stderr
    );
    assert!(!manifest_exists_with_auth(&tag), "no index");
    // The right credentials push: the failure above was the credentials.
    ok(with("ci:right-pass"));
}

fn manifest_exists_with_auth(reference: &str) -> bool {
    Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            "ci:right-pass",
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn which(bin: &str) -> Result<std::path::PathBuf, String> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{bin} is not installed (apache2-utils; tests/fixtures/setup.sh)"))
}

#[test]
fn a_base_image_without_the_target_platform_names_the_platforms_it_has() {
    require_engine!();
    require_skopeo!();
    let reg = require_registry!();
    let busybox = require!(push_fixture_busybox(&reg));
    let ctx = TestDir::new(&[("Dockerfile", &format!("FROM {busybox}\nCOPY a /a\n"))]);
    ctx.write("a", "a");
    let tag = reg.reference("nobase:1");
    let out = bad_push(
        &[
            "--platform",
            "linux/amd64,linux/s390x",
            "-t",
            &tag,
            "--push",
        ],
        ctx.path(),
        &[],
    );
    for p in ["linux/s390x", "linux/amd64", "linux/arm64"] {
        assert!(out.stderr.contains(p), "names {p}:\n{}", out.stderr);
    }
    assert!(!manifest_exists(&tag), "no index");
}
