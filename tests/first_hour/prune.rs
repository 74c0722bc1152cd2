//! `xplat prune --dry-run` and its filters, against the shared engine: only ever with
//! `--dry-run` (other people's caches live there); this test's own images are removed
//! with `docker rmi` at the end.

use super::run;
use crate::support::{docker, require, require_busybox_images, require_engine, Fixtures, TestDir};

/// Ids of the images labelled `xplat.project=<project>`.
fn project_images(project: &str) -> Vec<String> {
    let out = docker([
        "images",
        "-a",
        "-q",
        "--no-trunc",
        "--filter",
        &format!("label=xplat.project={project}"),
    ])
    .output()
    .unwrap();
    let mut ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Removes this test's images (children before parents: retried until none is left).
fn remove_images(project: &str) {
    for _ in 0..10 {
        let ids = project_images(project);
        if ids.is_empty() {
            return;
        }
        for id in ids {
            let _ = docker(["rmi", &id]).output();
        }
    }
}

#[test]
fn dry_run_lists_this_projects_cache_and_removes_nothing() {
    require_engine!();
    require_busybox_images!();
    let image = Fixtures::get().busybox_image("amd64");
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("FROM {image}\nRUN echo one > /one\nRUN echo two > /two\n"),
    )]);
    let project = std::fs::canonicalize(dir.path())
        .unwrap()
        .display()
        .to_string();
    let mut env = Vec::new();
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        env.push(("DOCKER_HOST", h));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let built = run(
        dir.path(),
        &[
            "build",
            "--no-config",
            "--platform",
            "linux/amd64",
            "-o",
            "out",
            ".",
        ],
        &env,
    );
    let before = project_images(&project);
    let check = || -> Result<(), String> {
        if built.code != Some(0) {
            return Err(format!("the build failed: {}", built.stderr));
        }
        if before.is_empty() {
            return Err("the build's cached image is labelled with the project".into());
        }
        Ok(())
    };
    if let Err(e) = check() {
        remove_images(&project);
        panic!("{e}");
    }

    let listed = run(dir.path(), &["prune", "--dry-run", "--project"], &env);
    let recent = run(
        dir.path(),
        &["prune", "--dry-run", "--project", ".", "--older-than", "1h"],
        &env,
    );
    let other = TestDir::new(&[]);
    let elsewhere = run(
        dir.path(),
        &[
            "prune",
            "--dry-run",
            "--project",
            other.path().to_str().unwrap(),
        ],
        &env,
    );
    let after = project_images(&project);
    remove_images(&project);

    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    assert_eq!(before, after, "a dry run removes nothing");
    for id in &before {
        assert!(
            listed.stdout.contains(&format!("image {id}")),
            "{id} is listed:\n{}",
            listed.stdout
        );
    }
    assert!(
        listed
            .stdout
            .contains(&format!("would remove {} cache image", before.len())),
        "{}",
        listed.stdout
    );
    assert!(
        recent.stdout.contains("would remove 0 cache images"),
        "built seconds ago, none is older than 1h:\n{}",
        recent.stdout
    );
    assert!(
        elsewhere.stdout.contains("would remove 0 cache images"),
        "another project's cache is not this one's:\n{}",
        elsewhere.stdout
    );
    for out in [&listed, &recent, &elsewhere] {
        assert!(
            out.stdout.contains("0 cache volumes"),
            "a project filter keeps volumes:\n{}",
            out.stdout
        );
    }
}
