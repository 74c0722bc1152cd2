//! Faults with two engines: an engine unreachable at the start is reported before
//! anything runs (with what it would have run and who can take it), and a second engine
//! killed in the middle of a build: its job runs again on the first engine, emulated, and
//! the index is pushed; or, with `--on-engine-loss fail`, the build fails naming the
//! engine, pushes nothing, and leaves no container behind.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;

use super::{build_id, leftovers, starts, two_engines};
use crate::e2e::{manifest_exists, platforms};
use crate::support::engine2::{available, skip_or_fail, Engine2};
use crate::support::{
    docker, require, require_registry, require_skopeo, skopeo_inspect_raw, xplat, CmdOutput,
    Fixtures, Registry, TestDir,
};

/// Every regular file of the first image in an OCI layout, layers applied in order, as
/// text (lossy): path without leading `./` → contents.
pub fn layer_files(layout: &Path) -> BTreeMap<String, String> {
    layer_files_for(layout, None)
}

/// [`layer_files`] of the image for architecture `arch` (`None`: the first).
pub fn layer_files_for(layout: &Path, arch: Option<&str>) -> BTreeMap<String, String> {
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let mut doc = read(&layout.join("index.json"));
    while let Some(list) = doc.get("manifests").and_then(|m| m.as_array()).cloned() {
        let pick = list
            .iter()
            .find(|m| arch.map_or(true, |a| m["platform"]["architecture"] == a))
            .or_else(|| list.first())
            .unwrap()
            .clone();
        doc = read(&blob(&pick["digest"]));
    }
    let mut files = BTreeMap::new();
    for layer in doc["layers"].as_array().unwrap() {
        let f = std::fs::File::open(blob(&layer["digest"])).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for entry in ar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut text).unwrap();
            files.insert(name, String::from_utf8_lossy(&text).into_owned());
        }
    }
    files
}

const SLOW_RUN: &str = "ARG TARGETARCH\nFROM xplat-test/busybox:${TARGETARCH}\n\
                        RUN sleep 6 && uname -m > /arch\n";

/// Starts `xplat build --progress json` with `args`, kills `e2` as soon as the arm
/// engine's job starts its RUN, and waits for xplat; returns its output.
fn build_and_kill(e2: &mut Engine2, dir: &TestDir, args: &[String], id: &str) -> CmdOutput {
    let docker_config = dir.join(".docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let mut child = xplat()
        .current_dir(dir.path())
        .env("DOCKER_CONFIG", &docker_config)
        .env("XPLAT_BUILD_ID", id)
        .env("NO_COLOR", "1")
        .args(["build", "--progress", "json"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = Vec::new();
    let mut arm_job = None;
    let mut killed = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Ok(e) = serde_json::from_str::<serde_json::Value>(&line) {
            if e["event"] == "job_started" && e["engine"] == "arm" {
                arm_job = e["job"].as_str().map(str::to_string);
            }
            let on_arm = arm_job.is_some() && e["job"].as_str() == arm_job.as_deref();
            if !killed && on_arm && e["event"] == "step_started" {
                // Let the RUN get going inside the engine, then kill the engine.
                std::thread::sleep(std::time::Duration::from_millis(1500));
                e2.kill();
                killed = true;
            }
        }
        lines.push(line);
    }
    let out = child.wait_with_output().unwrap();
    assert!(killed, "the arm job never started:\n{}", lines.join("\n"));
    CmdOutput {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: lines.join("\n"),
    }
}

/// A second engine of this test's own (it gets killed), with the busybox arm64 image.
fn own_engine(tag: &str) -> Result<Engine2, String> {
    available()?;
    Fixtures::get().busybox_images()?;
    let e = Engine2::start(tag)?;
    e.load_from_main(&Fixtures::get().busybox_image("arm64"))?;
    Ok(e)
}

fn args_for(e2: &Engine2, reg: &Registry, name: &str, on_loss: &str, dir: &TestDir) -> Vec<String> {
    let mut args = two_engines(e2);
    args.extend(
        [
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &reg.reference(name),
            "--push",
            "--on-engine-loss",
            on_loss,
            &dir.path().display().to_string(),
        ]
        .map(String::from),
    );
    args
}

#[test]
fn an_engine_killed_mid_build_has_its_job_rerun_on_the_first_engine_emulated() {
    require_skopeo!();
    require!(Fixtures::get().binfmt_arm64());
    let reg = require_registry!();
    let mut e2 = match own_engine("rerun") {
        Ok(e) => e,
        Err(why) => return skip_or_fail(&why),
    };
    let dir = TestDir::new(&[("Dockerfile", SLOW_RUN)]);
    let id = build_id("rerun");
    let args = args_for(&e2, &reg, "wp7-kill-rerun:1", "rerun", &dir);
    let out = build_and_kill(&mut e2, &dir, &args, &id);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let note = out
        .stderr
        .lines()
        .find(|l| l.contains("engine arm stopped answering"))
        .unwrap_or_else(|| panic!("no note:\n{}", out.stderr));
    assert!(note.contains("runs again on local (emulated)"), "{note}");
    // The arm64 job started on arm, then again on local.
    let arm64: Vec<String> = starts(&out)
        .into_iter()
        .filter(|(job, _)| note.contains(&format!("{job} (")))
        .map(|(_, e)| e)
        .collect();
    assert_eq!(arm64, ["arm", "local"], "{}", out.stderr);
    let raw = skopeo_inspect_raw(&reg.reference("wp7-kill-rerun:1")).unwrap();
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"]);
    assert!(leftovers(docker(Vec::<String>::new()), &id).is_empty());
}

#[test]
fn an_engine_killed_mid_build_fails_the_build_cleanly_when_asked() {
    require_skopeo!();
    require!(Fixtures::get().binfmt_arm64());
    let reg = require_registry!();
    let mut e2 = match own_engine("fail") {
        Ok(e) => e,
        Err(why) => return skip_or_fail(&why),
    };
    let dir = TestDir::new(&[("Dockerfile", SLOW_RUN)]);
    let id = build_id("fail");
    let args = args_for(&e2, &reg, "wp7-kill-fail:1", "fail", &dir);
    let out = build_and_kill(&mut e2, &dir, &args, &id);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("engine arm stopped answering while running job"),
        "{}",
        out.stderr
    );
    assert!(
        !manifest_exists(&reg.reference("wp7-kill-fail:1")),
        "no index"
    );
    assert!(leftovers(docker(Vec::<String>::new()), &id).is_empty());
}

#[test]
fn an_unreachable_engine_is_reported_before_anything_runs() {
    require!(Fixtures::get().busybox_images());
    require!(Fixtures::get().binfmt_arm64());
    let dir = TestDir::new(&[(
        "Dockerfile",
        "ARG TARGETARCH\nFROM xplat-test/busybox:${TARGETARCH}\nRUN uname -m > /arch\n",
    )]);
    // Nothing listens on port 1.
    let base = |on_loss: &str| {
        let out = dir.path().join(format!("out-{on_loss}"));
        [
            "--no-config".to_string(),
            "--engine".into(),
            "local=".into(),
            "--engine".into(),
            "arm=tcp://127.0.0.1:1,platforms=linux/arm64".into(),
            "--platform".into(),
            "linux/amd64,linux/arm64".into(),
            "--on-engine-loss".into(),
            on_loss.into(),
            "--no-cache".into(),
            "--output".into(),
            format!("type=oci,dest={}", out.display()),
            dir.path().display().to_string(),
        ]
    };
    let args = base("fail");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = crate::e2e::xplat_build(dir.path(), &args, &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for want in [
        "engine arm cannot be reached",
        "arm would have run #1 (stage 0, linux/arm64): local can take it, emulated",
        "nothing was run",
    ] {
        assert!(out.stderr.contains(want), "{want}:\n{}", out.stderr);
    }
    assert!(starts(&out).is_empty(), "a job started: {}", out.stderr);
    // rerun: said first, then the build goes on without it.
    let args = base("rerun");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = crate::e2e::ok(crate::e2e::xplat_build(dir.path(), &args, &[]));
    let notes = crate::e2e::events(&out, "note");
    assert!(
        notes[0]["message"]
            .as_str()
            .unwrap()
            .contains("engine arm cannot be reached"),
        "{notes:?}"
    );
    let engines: Vec<String> = starts(&out).into_iter().map(|(_, e)| e).collect();
    assert_eq!(engines, ["local", "local"]);
    let files = super::faults::layer_files_for(&dir.path().join("out-rerun"), Some("arm64"));
    assert_eq!(files.get("arch").map(|s| s.trim()), Some("aarch64"));
}
