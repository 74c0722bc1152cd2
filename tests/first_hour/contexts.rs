//! `docker context` as the docker CLI resolves it: `--context`, `DOCKER_HOST`,
//! `DOCKER_CONTEXT`, the Docker config's `currentContext`, in that order.

use std::path::Path;

use sha2::Digest as _;

use super::run;
use crate::support::{require, require_engine, TestDir};

/// Writes a docker context `name` with host `host` into the Docker config folder `dir`,
/// laid out as `docker context create` does.
fn write_context(dir: &Path, name: &str, host: &str) {
    let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta = dir.join("contexts/meta").join(id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{"Description":""}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        ),
    )
    .unwrap();
}

fn project() -> TestDir {
    let dir = TestDir::new(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    let docker = dir.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), r#"{"currentContext":"laptop"}"#).unwrap();
    write_context(&docker, "laptop", "unix:///nonexistent/laptop.sock");
    write_context(&docker, "ci", "unix:///nonexistent/ci.sock");
    dir
}

#[test]
fn the_current_context_of_the_docker_config_chooses_the_engine() {
    let dir = project();
    let out = run(dir.path(), &["build", "--no-config", "."], &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("unix:///nonexistent/laptop.sock (docker context laptop)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: check the engine of docker context laptop"),
        "{}",
        out.stderr
    );
}

#[test]
fn docker_context_beats_the_config_and_docker_host_beats_both() {
    let dir = project();
    let out = run(
        dir.path(),
        &["build", "--no-config", "."],
        &[("DOCKER_CONTEXT", "ci")],
    );
    assert!(
        out.stderr.contains("/nonexistent/ci.sock"),
        "{}",
        out.stderr
    );
    let out = run(
        dir.path(),
        &["build", "--no-config", "."],
        &[
            ("DOCKER_CONTEXT", "ci"),
            ("DOCKER_HOST", "unix:///nonexistent/host.sock"),
        ],
    );
    assert!(
        out.stderr.contains("/nonexistent/host.sock"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("docker context"), "{}", out.stderr);
}

#[test]
fn an_unknown_context_is_named_with_where_it_came_from() {
    let dir = project();
    let out = run(
        dir.path(),
        &["--context", "nope", "build", "--no-config", "."],
        &[],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("docker context \"nope\" (from --context) does not exist"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_context_flag_beats_docker_host_as_in_the_docker_cli() {
    require_engine!();
    let dir = project();
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    write_context(&dir.join(".docker"), "real", &socket);
    let out = run(
        dir.path(),
        &[
            "--context",
            "real",
            "build",
            "--no-config",
            "--progress",
            "json",
            "-o",
            "type=oci,dest=out",
            ".",
        ],
        &[("DOCKER_HOST", "unix:///nonexistent/host.sock")],
    );
    require!(if out.code == Some(0) {
        Ok(())
    } else if out.stderr.contains("permission denied") {
        Err(format!(
            "the engine socket is not ours to use: {}",
            out.stderr
        ))
    } else {
        panic!("the build through --context real failed:\n{}", out.stderr)
    });
    assert!(dir.join("out/index.json").is_file());
}
