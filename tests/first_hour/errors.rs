//! Every error says its context once: no "pushing X: pushing X", no "in R R", no
//! "pulling I for P: pulling I for P" (issue 13, finding 3), as people read them.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use super::{events, run};
use crate::support::{require, require_engine, Fixtures, TestDir};

/// Panics when `line` says the same thing twice in a row: a repeated run of
/// `": "`-separated segments, or a word (with `/` or `:`) right after itself.
pub fn assert_says_context_once(line: &str) {
    let segs: Vec<&str> = line.split(": ").collect();
    for k in 1..=segs.len() / 2 {
        for i in 0..=segs.len() - 2 * k {
            assert!(
                segs[i..i + k] != segs[i + k..i + 2 * k],
                "{:?} is said twice in:\n{line}",
                segs[i..i + k].join(": ")
            );
        }
    }
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|w| w.trim_end_matches([':', ',', ';']))
        .collect();
    for w in words.windows(2) {
        assert!(
            !(w[0] == w[1] && (w[0].contains('/') || w[0].contains(':'))),
            "{:?} twice in a row in:\n{line}",
            w[0]
        );
    }
}

/// The `error:` line of stderr.
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"))
}

#[test]
fn the_checker_catches_what_issue_13_saw() {
    for bad in [
        "error: pushing r/app: pushing r/app: blob x failed",
        "error: checking blob x in 127.0.0.1:5000/app 127.0.0.1:5000/app: not authorized",
        "error: a: pulling i for p: pulling i for p: denied",
    ] {
        assert!(
            std::panic::catch_unwind(|| assert_says_context_once(bad)).is_err(),
            "{bad}"
        );
    }
    assert_says_context_once("error: pushing r/app: index not pushed: checking blob x: denied");
}

/// A registry that lets a push start (so the check before work passes) and then
/// refuses everything else with 401, as a registry with a per-operation policy does.
fn half_open_registry() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok() && line.trim() != "" {
                line.clear();
            }
            let mut parts = first.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let answer = match (method, path) {
                ("GET", "/v2/") => "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n".to_string(),
                ("POST", p) if p.ends_with("/blobs/uploads/") => format!(
                    "HTTP/1.1 202 Accepted\r\nLocation: {p}session\r\nContent-Length: 0\r\n"
                ),
                ("DELETE", _) => "HTTP/1.1 204 No Content\r\n".to_string(),
                _ => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n".to_string(),
            };
            let mut conn = conn;
            let _ = conn.write_all(format!("{answer}Connection: close\r\n\r\n").as_bytes());
        }
    });
    port
}

#[test]
fn a_refused_push_names_the_repository_and_the_step_once() {
    require_engine!();
    let port = half_open_registry();
    let dir = TestDir::new(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    let tag = format!("127.0.0.1:{port}/app:1");
    let out = run(
        dir.path(),
        &["build", "--no-config", "--push", "-t", &tag, "."],
        &[("DOCKER_HOST", &docker_host())],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line = error_line(&out.stderr);
    assert!(
        line.contains(&format!("pushing 127.0.0.1:{port}/app")),
        "{line}"
    );
    assert!(line.contains("not authorized (HTTP 401)"), "{line}");
    assert_says_context_once(line);
    assert!(
        out.stderr.contains(&format!(
            "hint: log in with `docker login 127.0.0.1:{port}`"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_refused_inspect_names_the_image_once() {
    let port = half_open_registry();
    let dir = TestDir::new(&[]);
    let reference = format!("127.0.0.1:{port}/app:1");
    let out = run(dir.path(), &["inspect", &reference], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line = error_line(&out.stderr);
    assert_eq!(
        line,
        format!(
            "error: inspecting {reference}: fetching the manifest of tag 1: not authorized (HTTP 401)"
        )
    );
    assert_says_context_once(line);
}

#[test]
fn a_base_image_that_cannot_be_had_is_named_once() {
    require_engine!();
    require!(Fixtures::get().busybox_images());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/nope:1");
    let dir = TestDir::new(&[("Dockerfile", &format!("FROM {image}\nRUN true\n"))]);
    let out = run(
        dir.path(),
        &["build", "--no-config", "--progress", "json", "."],
        &[("DOCKER_HOST", &docker_host())],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let line = error_line(&out.stderr);
    // However the base is looked for (engine, then registry), the image is named once.
    assert_eq!(line.matches(&image).count(), 1, "{line}");
    assert_says_context_once(line);
    for failed in events(&out, "job_failed") {
        assert_says_context_once(failed["error"].as_str().unwrap());
    }
}

#[test]
fn a_base_image_from_a_build_arg_is_reported_before_the_build_with_the_arg() {
    require_engine!();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let image = format!("127.0.0.1:{port}/nope:1");
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("ARG BASE={image}\nFROM ${{BASE}}\nRUN true\n"),
    )]);
    let out = run(
        dir.path(),
        &["build", "--no-config", "--progress", "json", "."],
        &[("DOCKER_HOST", &docker_host())],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("hint: line 2: FROM ${BASE} takes the image from the build arg BASE"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("--build-arg BASE=IMAGE"),
        "{}",
        out.stderr
    );
    // Before the build: no job started.
    assert!(events(&out, "job_started").is_empty(), "{}", out.stderr);
}

/// The engine the tests use (`DOCKER_HOST` of this process, else the default socket).
fn docker_host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}
