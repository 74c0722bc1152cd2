//! The main workflow: `xplat build --platform linux/amd64,linux/arm64 -t REG/app:1 --push`,
//! and the OCI layout and `--load` outputs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::{
    events, extract_from_registry, ok, platforms, sample, skopeo, skopeo_config, uploaded_bytes,
    xplat_build,
};
use crate::support::{
    docker, docker_ok, push_fixture_busybox, require, require_builder, require_engine,
    require_qemu_aarch64, require_registry, require_skopeo, skopeo_inspect_raw, try_run,
};

const BOTH: &str = "linux/amd64,linux/arm64";

/// Removes a container when dropped.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(["rm", "-f", &self.0]).output();
    }
}

/// GET /ping on 127.0.0.1:`port` until it answers (the server may still be starting).
fn ping(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        })();
        match attempt {
            Ok(body) if body.contains("200") => return body,
            _ if Instant::now() > deadline => panic!("no answer on 127.0.0.1:{port}: {attempt:?}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn goping_push_gives_a_two_platform_index_that_runs_and_repushes_nothing() {
    require_engine!();
    require_builder!();
    require_skopeo!();
    let qemu = require_qemu_aarch64!();
    let reg = require_registry!();
    let work = tempfile::tempdir().unwrap();
    let tag = reg.reference("goping:1.0");
    // `created` is the build's start unless SOURCE_DATE_EPOCH is set: identical builds
    // need it, or every rerun makes new config blobs.
    let sde = [("SOURCE_DATE_EPOCH", "1700000000")];
    let first = ok(xplat_build(
        work.path(),
        &["--platform", BOTH, "-t", &tag, "--push", &sample("goping")],
        &sde,
    ));
    assert!(uploaded_bytes(&first) > 1_000_000, "{}", first.stderr);
    // Only the build stage ran in the engine (once per platform); the scratch finals were
    // assembled.
    let plan = &events(&first, "plan")[0];
    assert_eq!(plan["assembled"], 2, "{plan}");
    let started: Vec<_> = events(&first, "job_started");
    assert!(started.iter().all(|e| e["stage"] == "build"), "{started:?}");

    // skopeo reads an index of exactly the two platforms; the summary names its digest.
    let raw = skopeo_inspect_raw(&tag).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"]);
    let raw_bytes = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{tag}"))
        .output()
        .unwrap()
        .stdout;
    let index_digest = format!("sha256:{}", hex::encode(Sha256::digest(&raw_bytes)));
    let index_line = first
        .stdout
        .lines()
        .find(|l| l.starts_with("index"))
        .unwrap();
    assert!(index_line.contains(&index_digest), "{}", first.stdout);
    for m in raw["manifests"].as_array().unwrap() {
        assert!(first.stdout.contains(m["digest"].as_str().unwrap()));
    }

    // docker pull --platform linux/amd64, run, GET /ping → PONG.
    docker_ok(&["pull", "-q", "--platform", "linux/amd64", &tag]);
    let name = format!("xplat-e2e-goping-{}", std::process::id());
    let _c = Container(name.clone());
    docker_ok(&["run", "-d", "--name", &name, "-p", "127.0.0.1::8080", &tag]);
    let port_line = docker_ok(&["port", &name, "8080/tcp"]).stdout;
    let port: u16 = port_line
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("docker port: {port_line:?}"));
    let answer = ping(port);
    assert!(answer.ends_with("PONG"), "{answer}");

    // The arm64 manifest's config says arm64, and its binary runs under qemu.
    let cfg = skopeo_config(&tag, "arm64");
    assert_eq!(cfg["architecture"], "arm64");
    assert_eq!(cfg["os"], "linux");
    assert_eq!(cfg["config"]["Entrypoint"][0], "/goping");
    let bin = extract_from_registry(&tag, "arm64", "/goping", work.path());
    let out = crate::support::run_ok(Command::new(&qemu).arg(&bin).arg("-version"));
    assert_eq!(out.stdout.trim(), "goping linux/arm64");

    // A second identical push uploads zero blob bytes: every blob is there already.
    let second = ok(xplat_build(
        work.path(),
        &["--platform", BOTH, "-t", &tag, "--push", &sample("goping")],
        &sde,
    ));
    assert_eq!(uploaded_bytes(&second), 0, "{}", second.stderr);
    let blobs = events(&second, "blob");
    assert!(!blobs.is_empty());
    assert!(blobs.iter().all(|b| b["outcome"] == "exists"), "{blobs:?}");
    drop(_c);
    let _ = docker(["rmi", &tag]).output();
}

#[test]
fn hello_c_on_busybox_from_the_registry_pushes_and_runs() {
    require_engine!();
    require_builder!();
    require_skopeo!();
    let reg = require_registry!();
    let busybox = require!(push_fixture_busybox(&reg));
    let work = tempfile::tempdir().unwrap();
    let tag = reg.reference("hello:1.0");
    let arg = format!("BUSYBOX_IMAGE={busybox}");
    let out = ok(xplat_build(
        work.path(),
        &[
            "--platform",
            BOTH,
            "--build-arg",
            &arg,
            "-t",
            &tag,
            "--push",
            &sample("hello-c"),
        ],
        &[],
    ));
    // Busybox layers are mounted from the busybox repository, not uploaded again.
    let blobs = events(&out, "blob");
    assert!(blobs.iter().any(|b| b["outcome"] == "mounted"), "{blobs:?}");
    let raw = skopeo_inspect_raw(&tag).unwrap();
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"]);
    assert_eq!(skopeo_config(&tag, "arm64")["architecture"], "arm64");
    // No busybox of another platform was pulled into the engine by name.
    docker_ok(&["pull", "-q", "--platform", "linux/amd64", &tag]);
    let run = docker_ok(&["run", "--rm", &tag]);
    assert!(run.stdout.contains("x86_64"), "{}", run.stdout);
    assert!(run.stdout.contains("amd64"), "{}", run.stdout);
    let _ = docker(["rmi", &tag]).output();
}

#[test]
fn source_date_epoch_gives_the_same_index_from_two_cold_builds_and_skopeo_reads_the_layout() {
    require_engine!();
    require_builder!();
    require_skopeo!();
    let work = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for n in 0..2 {
        let dest = work.path().join(format!("layout{n}"));
        let meta = work.path().join(format!("meta{n}.json"));
        let output = format!("type=oci,dest={}", dest.display());
        ok(xplat_build(
            work.path(),
            &[
                "--platform",
                BOTH,
                "--no-cache",
                "-t",
                "goping:repro",
                "--output",
                &output,
                "--metadata-file",
                meta.to_str().unwrap(),
                &sample("goping"),
            ],
            &[("SOURCE_DATE_EPOCH", "1700000000")],
        ));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        assert_eq!(m["platforms"].as_array().unwrap().len(), 2);
        digests.push(m["index_digest"].as_str().unwrap().to_string());
    }
    assert_eq!(digests[0], digests[1], "two cold builds, one index");
    // skopeo copies every platform out of the OCI layout.
    let src = work.path().join("layout0");
    let dst = work.path().join("copied");
    skopeo(&[
        "copy",
        "--all",
        &format!("oci:{}:repro", src.display()),
        &format!("oci:{}:x", dst.display()),
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dst.join("index.json")).unwrap()).unwrap();
    let copied = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(copied, digests[0], "skopeo kept the index as it was");
}

#[test]
fn load_gives_a_runnable_image_and_no_output_flag_writes_the_default_layout() {
    require_engine!();
    require_builder!();
    let work = tempfile::tempdir().unwrap();
    let tag = format!("xplat-e2e/goping:load-{}", std::process::id());
    let out = ok(xplat_build(
        work.path(),
        &["--platform", BOTH, "-t", &tag, "--load", &sample("goping")],
        &[],
    ));
    assert!(out.stdout.contains("index"), "{}", out.stdout);
    let run = docker_ok(&["run", "--rm", &tag, "-version"]);
    assert_eq!(run.stdout.trim(), "goping linux/amd64");
    let _ = docker(["rmi", &tag]).output();
    assert!(
        !work.path().join("xplat-out").exists(),
        "--load is an output: no default layout"
    );

    // No output flag: the layout goes to ./xplat-out/<name>/ with a one-line hint.
    let out = ok(xplat_build(
        work.path(),
        &["--platform", BOTH, &sample("goping")],
        &[],
    ));
    let layout = work.path().join("xplat-out/goping");
    assert!(layout.join("index.json").is_file(), "{}", out.stdout);
    let hint: Vec<_> = out
        .stdout
        .lines()
        .filter(|l| l.contains("--push"))
        .collect();
    assert_eq!(hint.len(), 1, "{}", out.stdout);
    if try_run(Command::new("skopeo").arg("--version")).is_ok() {
        let shown = skopeo(&["inspect", "--raw", &format!("oci:{}", layout.display())]);
        let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
        assert_eq!(platforms(&v), ["linux/amd64", "linux/arm64"]);
    }
}

#[test]
fn labels_and_annotations_from_flags_reach_every_config_manifest_and_the_index() {
    require_engine!();
    let dir = super::scratch_context(16);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    let output = format!("type=oci,dest={}", dest.display());
    ok(xplat_build(
        work.path(),
        &[
            "--no-config",
            "--platform",
            BOTH,
            "--label",
            "org.opencontainers.image.version=1.2.3",
            "--annotation",
            "org.opencontainers.image.title=demo",
            "-t",
            "demo:1",
            "--output",
            &output,
            &dir.path().display().to_string(),
        ],
        &[],
    ));
    let layout = xplat::oci::layout::read_layout(&dest).unwrap();
    let (_, index) = layout.indexes.values().next().unwrap();
    assert_eq!(
        index.annotations.as_ref().unwrap()["org.opencontainers.image.title"],
        "demo"
    );
    assert_eq!(layout.manifests.len(), 2);
    for (_, manifest) in layout.manifests.values() {
        assert_eq!(
            manifest.annotations.as_ref().unwrap()["org.opencontainers.image.title"],
            "demo"
        );
    }
    assert_eq!(layout.configs.len(), 2);
    for bytes in layout.configs.values() {
        let config: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(
            config["config"]["Labels"]["org.opencontainers.image.version"],
            "1.2.3"
        );
    }
}
