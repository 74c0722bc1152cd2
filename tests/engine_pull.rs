//! `Engine::pull_image` against a real registry process on loopback (Debian's
//! `docker-registry`, `support::Registry`), filled with the busybox fixture by the
//! Docker CLI. Prints `SKIPPED: <why>` when the registry binary or the engine is
//! missing, or the engine cannot push to the loopback registry.

use std::sync::Mutex;

use xplat::engine::{Engine, ImageLookup, PullProgress};
use xplat::platform::Platform;

use crate::support::{docker, require, require_busybox_engine, require_registry, skip, try_run};

const BUSYBOX: &str = "xplat-test/busybox:amd64";

fn docker_cli(args: &[&str]) -> Result<(), String> {
    try_run(&mut docker(args)).map(drop)
}

#[tokio::test]
async fn pull_for_a_platform_reports_progress_and_lands_the_image() {
    let engine = require_busybox_engine!();
    let registry = require_registry!();
    let reference = format!(
        "127.0.0.1:{}/xplat-pull-test:{}",
        registry.port(),
        std::process::id()
    );
    if let Err(e) =
        docker_cli(&["tag", BUSYBOX, &reference]).and_then(|_| docker_cli(&["push", &reference]))
    {
        let _ = docker_cli(&["rmi", &reference]);
        return skip(&format!("could not fill the registry: {e}"));
    }
    engine.remove_image(&reference, false).await.unwrap();
    assert_eq!(
        engine.inspect_image(&reference).await.unwrap(),
        ImageLookup::Missing
    );

    let seen: Mutex<Vec<PullProgress>> = Mutex::default();
    let sink = |p: PullProgress| seen.lock().unwrap().push(p);
    let amd64 = Platform::new("linux", "amd64", "");
    engine.pull_image(&reference, &amd64, &sink).await.unwrap();

    let info = match engine.inspect_image(&reference).await.unwrap() {
        ImageLookup::Found(i) => i,
        ImageLookup::Missing => panic!("pulled image missing"),
    };
    assert_eq!(info.platform, amd64);
    let statuses: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.status.clone())
        .collect();
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("Pull") || s.contains("Downloaded")),
        "{statuses:?}"
    );
    engine.remove_image(&reference, false).await.unwrap();

    // A tag the registry does not have: a Pull error carrying reference and platform
    // (the message is the engine's alone: callers add "pulling X for P" once).
    let absent = format!("127.0.0.1:{}/xplat-pull-test:absent", registry.port());
    let err = engine
        .pull_image(&absent, &amd64, &|_| {})
        .await
        .unwrap_err();
    let text = err.to_string();
    match &err {
        xplat::engine::EngineError::Pull {
            reference,
            platform,
            message,
        } => {
            assert_eq!(
                (reference.as_str(), platform.as_str()),
                (absent.as_str(), "linux/amd64")
            );
            assert!(message.contains("not found"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !text.contains("pulling"),
        "said once, by the caller: {text}"
    );
}
