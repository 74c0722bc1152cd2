//! The executor against the real engine: cross builds of the samples, the step cache
//! (a warm rebuild creates no container), failures with the line and output, and cleanup.

use std::collections::BTreeMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;
use xplat::engine::DockerEngine;
use xplat::exec::ExecError;
use xplat::ops::{build, BuildOptions};
use xplat::platform::Platform;
use xplat::progress::{Event, Recorder};

use crate::support::{docker, samples_dir, Fixtures, TestDir};

fn p(s: &str) -> Platform {
    Platform::parse(s).unwrap().normalized()
}

async fn engine() -> Option<DockerEngine> {
    if let Err(why) = Fixtures::get().engine() {
        crate::support::skip(&why);
        return None;
    }
    match DockerEngine::connect_from_process_env().await {
        Ok(e) => Some(e),
        Err(e) => {
            crate::support::skip(&e.to_string());
            None
        }
    }
}

fn containers_created(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::ContainerCreated { .. }))
        .count()
}

/// Containers of the build with this id that still exist.
fn containers_of(build_id: &str) -> usize {
    let filter = format!("label=xplat.build={build_id}");
    let out = docker(["ps", "-aq", "--filter", &filter]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn opts(dir: &Path, platforms: &[&str]) -> BuildOptions {
    BuildOptions {
        context_dir: dir.to_path_buf(),
        platforms: platforms.iter().map(|s| p(s)).collect(),
        build_id: Some(format!(
            "test-{}-{}",
            std::process::id(),
            dir.file_name().unwrap().to_string_lossy()
        )),
        ..Default::default()
    }
}

/// Copies a file out of an engine image.
fn extract(image: &str, path: &str, to: &Path) {
    let out = docker(["create", image, "/x"]).output().unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let st = docker(["cp", &format!("{id}:{path}"), &to.to_string_lossy()])
        .status()
        .unwrap();
    docker(["rm", "-f", &id]).output().unwrap();
    assert!(st.success(), "docker cp {path} from {image}");
}

#[tokio::test]
async fn goping_cross_build_runs_on_both_platforms_and_warm_rebuild_creates_no_container() {
    let Some(engine) = engine().await else { return };
    let builder = match Fixtures::get().builder_image() {
        Ok(b) => b,
        Err(why) => return crate::support::skip(&why),
    };
    let mut o = opts(
        &samples_dir().join("goping"),
        &["linux/amd64", "linux/arm64"],
    );
    o.target = Some("build".into());
    o.tag = Some("xplat-test-exec/goping:t".into());
    o.build_args = BTreeMap::from([("BUILDER_IMAGE".to_string(), builder)]);
    let rec = Recorder::default();
    let cancel = CancellationToken::new();
    let out = build(&o, &engine, &rec, &cancel).await.expect("cold build");
    assert_eq!(out.targets.len(), 2);
    assert_eq!(out.targets[0].platform, p("linux/amd64"));
    assert_eq!(
        out.targets[1].tag.as_deref(),
        Some("xplat-test-exec/goping:t-linux-arm64")
    );
    let tmp = TestDir::new(&[]);
    extract(&out.targets[0].image, "/out/goping", &tmp.join("amd64"));
    extract(&out.targets[1].image, "/out/goping", &tmp.join("arm64"));
    let run = std::process::Command::new(tmp.join("amd64"))
        .arg("-version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "goping linux/amd64"
    );
    match Fixtures::get().qemu_aarch64() {
        Ok(qemu) => {
            let run = std::process::Command::new(qemu)
                .arg(tmp.join("arm64"))
                .arg("-version")
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&run.stdout).trim(),
                "goping linux/arm64"
            );
        }
        Err(why) => crate::support::skip(&format!("the arm64 run: {why}")),
    }
    assert_eq!(
        containers_of(o.build_id.as_deref().unwrap()),
        0,
        "no container survives success"
    );

    // Warm rebuild: every step from the cache, not one container.
    let warm = Recorder::default();
    let again = build(&o, &engine, &warm, &cancel)
        .await
        .expect("warm build");
    assert_eq!(
        containers_created(&warm.events()),
        0,
        "{:#?}",
        warm.events()
    );
    assert_eq!(again.steps_run, 0);
    assert_eq!(again.targets[1].image, out.targets[1].image);
}

#[tokio::test]
async fn shared_stage_runs_once_and_touching_a_file_reruns_from_its_copy() {
    let Some(engine) = engine().await else { return };
    let dir = TestDir::new(&[(
        "Dockerfile",
        "ARG BUILDPLATFORM\nFROM --platform=$BUILDPLATFORM xplat-test/busybox:amd64 AS deps\n\
             RUN echo deps > /deps\n\
             FROM deps AS build\nARG TARGETARCH\nCOPY a.txt /a.txt\nRUN echo $TARGETARCH > /arch\n",
    )]);
    // Content no earlier run has cached.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    dir.write("a.txt", format!("one {nonce}"));
    let mut o = opts(dir.path(), &["linux/amd64", "linux/arm64"]);
    o.target = Some("build".into());
    let rec = Recorder::default();
    let cancel = CancellationToken::new();
    build(&o, &engine, &rec, &cancel).await.expect("build");
    let deps_started = rec
        .events()
        .iter()
        .filter(|e| matches!(e, Event::JobStarted { stage, .. } if stage == "deps"))
        .count();
    // The shared stage ran once, or not at all when an earlier run's step cache holds it.
    assert!(deps_started <= 1, "the shared stage ran at most once");
    // Whether the first build left deps in the step cache: found there, or committed as a
    // checkpoint. The commit policy commits only where the RUN work it saves costs more
    // than the commit (exec/policy.rs), so a 0.3 s RUN may be replayed instead.
    let deps_kept = rec.events().iter().any(|e| match e {
        Event::StepCached { job, .. } => job == "#0",
        Event::Note { message } => message.starts_with("#0: committed"),
        _ => false,
    });
    dir.write("a.txt", format!("two {nonce}"));
    let rec2 = Recorder::default();
    build(&o, &engine, &rec2, &cancel).await.expect("rebuild");
    let ran = |text: &str| {
        rec2.events()
            .iter()
            .filter(|e| matches!(e, Event::StepStarted { text: t, .. } if t == text))
            .count()
    };
    // The RUN that reads TARGETARCH ran once per target, after the changed COPY.
    assert_eq!(
        ran("RUN echo $TARGETARCH > /arch"),
        2,
        "{:#?}",
        rec2.events()
    );
    assert!(ran("COPY a.txt /a.txt") >= 1, "{:#?}", rec2.events());
    // The shared stage's RUN ran again only if it was not kept.
    if deps_kept {
        assert_eq!(ran("RUN echo deps > /deps"), 0, "{:#?}", rec2.events());
    }
    let deps_jobs = rec2
        .events()
        .iter()
        .filter(|e| matches!(e, Event::JobStarted { stage, .. } if stage == "deps"))
        .count();
    assert!(deps_jobs <= 1, "{:#?}", rec2.events());
}

#[tokio::test]
async fn failing_run_reports_line_code_output_and_leaves_no_container() {
    let Some(engine) = engine().await else { return };
    let dir = TestDir::new(&[(
        "Dockerfile",
        "FROM xplat-test/busybox:amd64\nRUN echo first\nRUN echo boom-output && exit 3\n",
    )]);
    let o = BuildOptions {
        no_cache: true,
        ..opts(dir.path(), &["linux/amd64"])
    };
    let err = build(&o, &engine, &Recorder::default(), &CancellationToken::new())
        .await
        .expect_err("must fail");
    match &err {
        ExecError::RunFailed {
            line,
            code,
            last_lines,
            ..
        } => {
            assert_eq!(*line, 3);
            assert_eq!(*code, 3);
            assert!(last_lines.contains("boom-output"), "{last_lines}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        containers_of(o.build_id.as_deref().unwrap()),
        0,
        "no container survives a failing step"
    );
}

#[tokio::test]
async fn cancelling_stops_the_build_and_leaves_no_container() {
    let Some(engine) = engine().await else { return };
    let dir = TestDir::new(&[(
        "Dockerfile",
        "FROM xplat-test/busybox:amd64\nRUN sleep 60\n",
    )]);
    let o = BuildOptions {
        no_cache: true,
        ..opts(dir.path(), &["linux/amd64"])
    };
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        c2.cancel();
    });
    let started = std::time::Instant::now();
    let err = build(&o, &engine, &Recorder::default(), &cancel)
        .await
        .expect_err("cancelled");
    assert!(err.is_cancelled(), "{err}");
    assert!(started.elapsed().as_secs() < 30);
    assert_eq!(
        containers_of(o.build_id.as_deref().unwrap()),
        0,
        "no container survives cancellation"
    );
}
