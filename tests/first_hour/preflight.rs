//! `--push` checks every target registry before anything is built: within 2 s, with the
//! cause named (connection refused, DNS, TLS, 401) and what to do. The engine is made
//! unreachable in these tests, so an error from the engine proves the check passed and
//! nothing was built before it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::{events, run};
use crate::support::{require, CmdOutput, Fixtures, Registry, TestDir};

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/engine.sock");

fn project() -> TestDir {
    TestDir::new(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")])
}

/// `xplat build --push -t TAG .` with JSON progress; returns the output and how long it took.
fn push(dir: &TestDir, tag: &str, envs: &[(&str, &str)]) -> (CmdOutput, Duration) {
    let started = Instant::now();
    let mut all = vec![NO_ENGINE];
    all.extend_from_slice(envs);
    let out = run(
        dir.path(),
        &[
            "build",
            "--no-config",
            "--progress",
            "json",
            "--push",
            "-t",
            tag,
            ".",
        ],
        &all,
    );
    (out, started.elapsed())
}

fn assert_fails_fast(out: &CmdOutput, took: Duration, cause: &str, hint: &str) {
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(cause),
        "names {cause:?}:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("hint: {hint}")),
        "says {hint:?}:\n{}",
        out.stderr
    );
    assert!(
        events(out, "plan").is_empty(),
        "nothing was planned or built"
    );
    assert!(
        !out.stderr.contains("Docker engine"),
        "before the engine:\n{}",
        out.stderr
    );
}

#[test]
fn a_dead_port_fails_in_under_two_seconds_before_the_build() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = project();
    let (out, took) = push(&dir, &format!("127.0.0.1:{port}/app:1"), &[]);
    assert_fails_fast(
        &out,
        took,
        &format!("cannot push to 127.0.0.1:{port}/app: connection refused"),
        &format!("nothing listens at 127.0.0.1:{port}"),
    );
}

#[test]
fn an_unknown_host_is_named_as_dns() {
    let dir = project();
    let (out, took) = push(&dir, "no-such-registry.invalid/app:1", &[]);
    assert_fails_fast(
        &out,
        took,
        "cannot push to no-such-registry.invalid/app: the host name does not resolve",
        "check the registry host name",
    );
}

/// The machine's own non-loopback address (spoken to over HTTPS, unlike loopback).
fn outside_address() -> Result<std::net::IpAddr, String> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.connect("192.0.2.1:9")
        .or_else(|_| s.connect("10.255.255.1:9"))
        .map_err(|e| format!("no route off this machine: {e}"))?;
    let ip = s.local_addr().map_err(|e| e.to_string())?.ip();
    if ip.is_loopback() || ip.is_unspecified() {
        return Err("no non-loopback address".into());
    }
    Ok(ip)
}

#[test]
fn plain_http_spoken_to_over_tls_is_named_as_tls() {
    let ip = require!(outside_address());
    // A plain-HTTP server: a TLS ClientHello gets an HTTP answer.
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let host = format!("{ip}:{port}");
    let dir = project();
    let (out, took) = push(&dir, &format!("{host}/app:1"), &[]);
    assert_fails_fast(
        &out,
        took,
        &format!("cannot push to {host}/app: TLS handshake failed"),
        &format!("if {host} speaks plain HTTP, pass --insecure-registry {host}"),
    );
}

fn htpasswd_registry() -> Result<(Registry, tempfile::TempDir), String> {
    Fixtures::get().registry_bin()?;
    let bin = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("htpasswd"))
        .find(|p| p.is_file())
        .ok_or("htpasswd is not installed (apache2-utils)")?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("htpasswd");
    let ok = Command::new(bin)
        .args(["-Bbc"])
        .arg(&file)
        .args(["ci", "right-pass"])
        .output()
        .map_err(|e| e.to_string())?;
    if !ok.status.success() {
        return Err("htpasswd failed".into());
    }
    let reg = Registry::start_with_htpasswd(&file).expect("start the registry with auth");
    Ok((reg, dir))
}

/// A project whose Docker config holds `user_pass` for `registry` (none when empty).
fn with_credentials(registry: &str, user_pass: &str) -> TestDir {
    let dir = project();
    let docker = dir.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auths = if user_pass.is_empty() {
        String::new()
    } else {
        let auth = base64::engine::general_purpose::STANDARD.encode(user_pass);
        format!("\"{registry}\":{{\"auth\":\"{auth}\"}}")
    };
    std::fs::write(
        docker.join("config.json"),
        format!("{{\"auths\":{{{auths}}}}}"),
    )
    .unwrap();
    dir
}

#[test]
fn a_registry_that_wants_a_login_is_refused_before_the_build_with_what_to_do() {
    let (reg, _keep) = require!(htpasswd_registry());
    let tag = reg.reference("app:1");
    for creds in ["", "ci:wrong-pass"] {
        let dir = with_credentials(&reg.host(), creds);
        let (out, took) = push(&dir, &tag, &[]);
        assert_fails_fast(
            &out,
            took,
            &format!(
                "cannot push to {}/app: not authorized to push (HTTP 401)",
                reg.host()
            ),
            &format!("log in with `docker login {}`", reg.host()),
        );
        assert!(!out.stderr.contains("wrong-pass"), "{}", out.stderr);
    }
    // The right credentials pass the check: what fails next is the (absent) engine.
    let dir = with_credentials(&reg.host(), "ci:right-pass");
    let (out, _) = push(&dir, &tag, &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot reach the Docker engine"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_working_registry_passes_the_check_which_cancels_its_upload() {
    require!(Fixtures::get().registry_bin());
    let reg = Registry::start().expect("start the loopback registry");
    let dir = project();
    let (out, took) = push(&dir, &reg.reference("app:1"), &[]);
    assert!(
        out.stderr.contains("cannot reach the Docker engine"),
        "the check passed and the engine came next:\n{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // The upload the check opened was cancelled: distribution 2.8 removes a cancelled
    // session's `data` and `startedat` (it keeps an empty hash state until its purge).
    let uploads = reg
        .storage()
        .join("docker/registry/v2/repositories/app/_uploads");
    let sessions: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(sessions.len(), 1, "the check opened one upload session");
    for s in &sessions {
        for f in ["data", "startedat"] {
            assert!(!s.join(f).exists(), "{} was not cancelled", s.display());
        }
    }
}
