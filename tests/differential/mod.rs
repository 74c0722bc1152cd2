//! The differential suite: each case of [`cases`] is built by xplat's executor
//! (`ops::build`, linux/amd64, on the real engine) and by the engine's classic builder
//! (`DOCKER_BUILDKIT=0 docker build`), then both results are exported with `docker
//! create` + `docker export` and compared path by path (type, mode, owner, link target,
//! content; never times), and their configs field by field.
//!
//! What is legitimately different and therefore not compared:
//! - modification times (each builder writes at its own moment);
//! - xplat's own labels on the images it commits ([`compare::XPLAT_OWN_LABELS`]); the
//!   base image's `xplat.fixture.recipe` label is a user label and *is* compared;
//! - the config of xplat's *engine* image: xplat keeps the image config in its own
//!   state (`TargetResult::config`, what its final OCI images get) and commits only
//!   filesystem steps, so metadata after the last RUN/COPY/ADD/WORKDIR is not on the
//!   engine image (DESIGN). The classic image's config is compared with
//!   `TargetResult::config`;
//! - config fields outside [`compare::CONFIG_FIELDS`] (Hostname, Image, the
//!   container id of the last commit, …), which record how an image was made.
//!
//! The files the engine injects into every container (`/.dockerenv`, `/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf`, `/dev`, `/proc`, `/sys`) are created the same way
//! for both exports, so they are compared like any other path.
//!
//! A comparison the executor is known to get wrong is listed in its case's `known`
//! list with the reason; the test prints it under `KNOWN DIFFERENCES` and fails if it
//! stops differing (so the list stays true).

mod cases;
mod compare;

use std::collections::BTreeMap;
use std::process::Command;

use tokio_util::sync::CancellationToken;
use xplat::engine::DockerEngine;
use xplat::ops::{build, BuildOptions};
use xplat::platform::Platform;
use xplat::progress::Recorder;

use crate::support::tally::tally;
use crate::support::{docker, Fixtures, TestDir};
use cases::Case;
use compare::{
    config_view, diff_config, diff_fs, snapshot, xplat_config_view, FsSnapshot, Mismatch,
};

/// What one builder produced.
struct Built {
    fs: FsSnapshot,
    /// `.Config` of `docker image inspect` (used for the classic image only: xplat's
    /// engine images are filesystem snapshots, see below).
    config: serde_json::Value,
}

/// Images and tags to remove at the end, removed even when the test panics.
#[derive(Default)]
struct Cleanup {
    /// `xplat.build` ids whose committed images go.
    xplat_builds: Vec<String>,
    /// Tags and image ids the classic builder made (never the base image).
    classic_images: Vec<String>,
    /// Protected image ids (the base image): never removed.
    keep: Vec<String>,
    /// Dangling volumes that existed before the suite: never removed.
    volumes_before: Vec<String>,
}

/// Anonymous volumes no container uses. The classic builder leaves one behind for every
/// `VOLUME` its intermediate containers declared, even with `--rm`.
fn dangling_volumes() -> Vec<String> {
    docker(["volume", "ls", "-q", "--filter", "dangling=true"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut ids: Vec<String> = self.classic_images.clone();
        for b in &self.xplat_builds {
            let filter = format!("label=xplat.build={b}");
            let out = docker(["images", "-a", "-q", "--no-trunc", "--filter", &filter])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            ids.extend(out.lines().map(str::to_string));
        }
        ids.retain(|id| {
            !self
                .keep
                .iter()
                .any(|k| k.contains(id.trim_start_matches("sha256:")))
        });
        // Children before parents: retry until a round removes nothing.
        let mut left = ids;
        while !left.is_empty() {
            let before = left.len();
            left.retain(|id| {
                let out = docker(["rmi", "-f", id]).output();
                match out {
                    Ok(o) if o.status.success() => false,
                    Ok(o) => !String::from_utf8_lossy(&o.stderr).contains("No such image"),
                    Err(_) => false,
                }
            });
            if left.len() == before {
                eprintln!("differential: could not remove {left:?}");
                break;
            }
        }
        // Only unnamed (64-hex) volumes that appeared during the suite; one a running
        // container still uses is not dangling, and `volume rm` refuses it anyway.
        for v in dangling_volumes() {
            let anonymous = v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
            if anonymous && !self.volumes_before.contains(&v) {
                let _ = docker(["volume", "rm", &v]).output();
            }
        }
    }
}

fn image_id(reference: &str) -> Option<String> {
    let o = docker(["image", "inspect", "-f", "{{.Id}}", reference])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Exports a container of `image` and reads its config from `docker image inspect`.
fn export(image: &str) -> Result<Built, String> {
    let o = docker(["create", image, "x"])
        .output()
        .map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "docker create {image}: {}",
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let tar = docker(["export", &id]).output();
    let _ = docker(["rm", "-f", &id]).output();
    let tar = tar.map_err(|e| e.to_string())?;
    if !tar.status.success() {
        return Err(format!(
            "docker export: {}",
            String::from_utf8_lossy(&tar.stderr)
        ));
    }
    let fs = snapshot(&tar.stdout).map_err(|e| format!("reading the export of {image}: {e}"))?;
    let inspect = docker(["image", "inspect", image])
        .output()
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value =
        serde_json::from_slice(&inspect.stdout).map_err(|e| format!("inspect {image}: {e}"))?;
    Ok(Built {
        fs,
        config: v[0]["Config"].clone(),
    })
}

/// Builds with the classic builder; records every image it made for removal.
fn classic_build(
    case: &Case,
    dir: &TestDir,
    tag: &str,
    cleanup: &mut Cleanup,
) -> Result<(), String> {
    if let Some(oracle) = case.oracle {
        dir.write("Dockerfile.classic", oracle);
    }
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "--no-cache", "--rm", "--force-rm", "-t", tag]);
    if case.oracle.is_some() {
        cmd.arg("-f").arg(dir.join("Dockerfile.classic"));
    }
    for (k, v) in case.build_args {
        cmd.args(["--build-arg", &format!("{k}={v}")]);
    }
    cmd.arg(dir.path());
    let o = cmd.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    cleanup.classic_images.push(tag.to_string());
    // Every step's image (" ---> 1a2b3c4d5e6f"); the base image's id is kept out by `keep`.
    cleanup.classic_images.extend(
        stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("---> "))
            .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string),
    );
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "classic build failed\n{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// The outcome of one case.
struct CaseResult {
    name: &'static str,
    /// Unexpected mismatches (or a build error).
    failures: Vec<String>,
    /// Known differences that showed, with their reasons.
    known_seen: Vec<String>,
}

async fn run_case(
    case: &Case,
    engine: &DockerEngine,
    cleanup: &mut Cleanup,
    run_id: &str,
) -> CaseResult {
    let mut result = CaseResult {
        name: case.name,
        failures: Vec::new(),
        known_seen: Vec::new(),
    };
    let dir = TestDir::new(case.files);
    dir.write("Dockerfile", case.dockerfile);
    (case.setup)(&dir);

    let tag = format!("xplat-diff-classic/{}:{run_id}", case.name);
    if let Err(e) = classic_build(case, &dir, &tag, cleanup) {
        result.failures.push(e);
        return result;
    }
    let build_id = format!("diff-{run_id}-{}", case.name);
    cleanup.xplat_builds.push(build_id.clone());
    let opts = BuildOptions {
        context_dir: dir.path().to_path_buf(),
        platforms: vec![Platform::parse("linux/amd64").unwrap().normalized()],
        build_args: case
            .build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        no_cache: true,
        build_id: Some(build_id),
        ..Default::default()
    };
    let out = match build(
        &opts,
        engine,
        &Recorder::default(),
        &CancellationToken::new(),
    )
    .await
    {
        Ok(o) => o,
        Err(e) => {
            result.failures.push(format!("xplat build failed: {e}"));
            return result;
        }
    };
    let target = &out.targets[0];
    let (classic, xplat) = match (export(&tag), export(&target.image)) {
        (Ok(c), Ok(x)) => (c, x),
        (Err(e), _) | (_, Err(e)) => {
            result.failures.push(e);
            return result;
        }
    };
    let mut mismatches: Vec<Mismatch> = diff_fs(&classic.fs, &xplat.fs);
    mismatches.extend(diff_config(
        "config",
        &config_view(&classic.config),
        &xplat_config_view(&target.config),
    ));
    for m in &mismatches {
        match case.known.iter().find(|(k, _)| *k == m.key) {
            Some((_, why)) => result
                .known_seen
                .push(format!("{}: {m}\n      reason: {why}", case.name)),
            None => result.failures.push(m.to_string()),
        }
    }
    for (k, why) in case.known {
        if !mismatches.iter().any(|m| m.key == *k) {
            result.failures.push(format!(
                "{k}: listed as a KNOWN DIFFERENCE ({why}) but now matches: remove it from the list"
            ));
        }
    }
    result
}

#[tokio::test]
async fn differential_xplat_vs_classic_builder() {
    if let Err(why) = Fixtures::get().busybox_images() {
        crate::support::skip(&why);
        return;
    }
    let engine = match DockerEngine::connect_from_process_env().await {
        Ok(e) => e,
        Err(e) => return crate::support::skip(&e.to_string()),
    };
    let base = Fixtures::get().busybox_image("amd64");
    let mut cleanup = Cleanup::default();
    cleanup.keep = image_id(&base).into_iter().collect();
    cleanup.volumes_before = dangling_volumes();
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    // `XPLAT_DIFF_CASES=a,b` runs only those cases (while working on one).
    let only: Option<Vec<String>> = std::env::var("XPLAT_DIFF_CASES")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let all = cases::all();
    assert!(all.len() >= 12);
    let cases: Vec<&Case> = all
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
        .collect();
    let mut results = Vec::new();
    for case in cases {
        let started = std::time::Instant::now();
        let r = run_case(case, &engine, &mut cleanup, &run_id).await;
        tally!(
            "differential {:<40} {} ({:.1}s{})",
            r.name,
            if r.failures.is_empty() {
                "ok"
            } else {
                "MISMATCH"
            },
            started.elapsed().as_secs_f64(),
            if r.known_seen.is_empty() {
                String::new()
            } else {
                format!(", {} known difference(s)", r.known_seen.len())
            }
        );
        results.push(r);
    }
    let passed = results.iter().filter(|r| r.failures.is_empty()).count();
    let known: Vec<&String> = results.iter().flat_map(|r| &r.known_seen).collect();
    if !known.is_empty() {
        tally!("KNOWN DIFFERENCES (xplat executor vs classic builder):");
        for k in &known {
            tally!("  {k}");
        }
    }
    tally!("differential cases: {passed}/{}", results.len());
    let report: Vec<String> = results
        .iter()
        .filter(|r| !r.failures.is_empty())
        .map(|r| format!("case {}:\n  {}", r.name, r.failures.join("\n  ")))
        .collect();
    drop(cleanup);
    assert!(report.is_empty(), "differences:\n{}", report.join("\n"));
}
