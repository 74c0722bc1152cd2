//! Issue 4, item 9 (b), (c) and the CLI's Ctrl-C: hello-c cross-built for amd64 and
//! arm64 with `--target build` (run natively and under qemu-aarch64-static), an
//! emulated stage under binfmt, and `xplat build` interrupted by SIGINT.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use xplat::engine::DockerEngine;
use xplat::ops::{build, BuildOptions};
use xplat::platform::Platform;
use xplat::progress::{Event, Recorder};

use crate::support::{
    docker, require, require_binfmt_arm64, require_builder, require_busybox_images, require_engine,
    require_qemu_aarch64, samples_dir, xplat, Fixtures, TestDir,
};

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap().normalized()
}

async fn engine() -> DockerEngine {
    DockerEngine::connect_from_process_env()
        .await
        .expect("the fixtures say an engine answers")
}

fn containers_of(build_id: &str) -> usize {
    let filter = format!("label=xplat.build={build_id}");
    let out = docker(["ps", "-aq", "--filter", &filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Copies a file out of an engine image with the docker CLI.
fn extract(image: &str, path: &str, to: &Path) {
    let out = docker(["create", image, "/x"]).output().unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let st = docker(["cp", &format!("{id}:{path}"), &to.to_string_lossy()])
        .status()
        .unwrap();
    docker(["rm", "-f", &id]).output().unwrap();
    assert!(st.success(), "docker cp {path} from {image}");
}

fn build_id(name: &str) -> String {
    format!("test-{}-{name}", std::process::id())
}

#[tokio::test]
async fn hello_c_cross_build_runs_natively_and_under_qemu() {
    require_engine!();
    let builder = require_builder!();
    let qemu = require_qemu_aarch64!();
    let o = BuildOptions {
        context_dir: samples_dir().join("hello-c"),
        platforms: vec![p("linux/amd64"), p("linux/arm64")],
        target: Some("build".into()),
        tag: Some("xplat-test-exec/hello-c:t".into()),
        build_args: BTreeMap::from([("BUILDER_IMAGE".to_string(), builder)]),
        build_id: Some(build_id("hello-c")),
        ..Default::default()
    };
    let rec = Recorder::default();
    let out = build(&o, &engine().await, &rec, &CancellationToken::new())
        .await
        .expect("hello-c builds");
    // The build jobs run natively on the engine's platform: nothing is emulated. Three:
    // the steps before the first that reads TARGETARCH run once, then one job per target.
    let plan = rec.events().into_iter().find_map(|e| match e {
        Event::Plan {
            native, emulated, ..
        } => Some((native, emulated)),
        _ => None,
    });
    assert_eq!(plan, Some((3, 0)));
    assert_eq!(
        out.targets
            .iter()
            .map(|t| t.tag.clone().unwrap())
            .collect::<Vec<_>>(),
        [
            "xplat-test-exec/hello-c:t-linux-amd64",
            "xplat-test-exec/hello-c:t-linux-arm64"
        ]
    );
    let tmp = TestDir::new(&[]);
    extract(&out.targets[0].image, "/out/hello", &tmp.join("amd64"));
    extract(&out.targets[1].image, "/out/hello", &tmp.join("arm64"));
    let native = std::process::Command::new(tmp.join("amd64"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&native.stdout).trim(),
        "hello-c Linux/x86_64 (built for amd64)"
    );
    let emulated = std::process::Command::new(qemu)
        .arg(tmp.join("arm64"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&emulated.stdout).trim(),
        "hello-c Linux/aarch64 (built for arm64)"
    );
    assert_eq!(containers_of(o.build_id.as_deref().unwrap()), 0);
}

#[tokio::test]
async fn an_emulated_stage_runs_under_binfmt() {
    require_busybox_images!();
    require_binfmt_arm64!();
    let image = Fixtures::get().busybox_image("arm64");
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("FROM {image}\nRUN uname -m > /arch && cat /arch\n"),
    )]);
    let o = BuildOptions {
        context_dir: dir.path().to_path_buf(),
        platforms: vec![p("linux/arm64")],
        no_cache: true,
        build_id: Some(build_id("emulated")),
        ..Default::default()
    };
    let rec = Recorder::default();
    build(&o, &engine().await, &rec, &CancellationToken::new())
        .await
        .expect("the emulated stage runs");
    let events = rec.events();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Plan { emulated: 1, .. })),
        "the plan says one emulated job: {events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Output { line, .. } if line.trim() == "aarch64")),
        "the RUN ran as arm64: {events:#?}"
    );
    assert_eq!(containers_of(o.build_id.as_deref().unwrap()), 0);
}

#[test]
fn ctrl_c_stops_xplat_build_with_130_and_leaves_no_container() {
    require_busybox_images!();
    // While the RUN's container is running (its output is seen) ...
    interrupt_build_when(|line| line.contains(r#""event":"output""#) && line.contains("sleeping"));
    // ... and as early as the step starts, while the container is being created: a
    // dropped create once left a container behind (scheduler::DRAIN_GRACE).
    interrupt_build_when(|line| line.contains(r#""event":"step_started""#));
}

/// Runs `xplat build` on `RUN sleep 60`, sends SIGINT when a progress line matches
/// `when`, and checks exit code 130, a prompt stop and no container of that process.
fn interrupt_build_when(when: impl Fn(&str) -> bool) {
    let image = Fixtures::get().busybox_image("amd64");
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("FROM {image}\nRUN echo sleeping && sleep 60\n"),
    )]);
    let mut child = xplat()
        .args(["build", "--no-config", "--no-cache", "--progress", "json"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn xplat build");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut matched = false;
    while !matched && started.elapsed() < Duration::from_secs(60) {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                matched = when(&line);
                seen.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(_) => break,
        }
    }
    assert!(matched, "the moment to interrupt never came: {seen:#?}");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let signalled = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "exit code after SIGINT: {seen:#?}"
    );
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
    // xplat's default build label starts with its process id.
    let out = docker([
        "ps",
        "-a",
        "--filter",
        "label=xplat.build",
        "--format",
        "{{.Label \"xplat.build\"}}",
    ])
    .output()
    .unwrap();
    let prefix = format!("{pid}-");
    let left: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(String::from)
        .collect();
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// The issue-4 workflow through the binary: `xplat build --platform P1,P2 --target build
/// -t NAME` tags each target's stage result in the engine, exports nothing, and prints
/// one line per target.
#[test]
fn cli_target_build_tags_each_platform_in_the_engine() {
    require_engine!();
    let builder = require_builder!();
    let work = TestDir::new(&[]);
    let arg = format!("BUILDER_IMAGE={builder}");
    let out = xplat()
        .current_dir(work.path())
        .args([
            "build",
            "--no-config",
            "--progress",
            "plain",
            "--platform",
            "linux/amd64,linux/arm64",
            "--target",
            "build",
            "--build-arg",
            &arg,
            "-t",
            "xplat-test-cli/hello-c",
        ])
        .arg(samples_dir().join("hello-c"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for (platform, tag) in [
        ("linux/amd64", "xplat-test-cli/hello-c:linux-amd64"),
        ("linux/arm64", "xplat-test-cli/hello-c:linux-arm64"),
    ] {
        assert!(
            stdout.contains(&format!("{platform}  tagged {tag}")),
            "{stdout}"
        );
        let arch = docker(["image", "inspect", "-f", "{{.Id}}", tag])
            .output()
            .unwrap();
        assert!(arch.status.success(), "{tag} is not in the engine");
        let _ = docker(["rmi", tag]).output();
    }
    // Nothing was exported: no default layout was written.
    assert!(!work.join("xplat-out").exists());
}
