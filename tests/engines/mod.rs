//! Issue 12 through the real `xplat` binary, on two real engines: this machine's, and a
//! second dockerd started by the tests in its own namespaces, reached over TCP with TLS
//! and declared as running linux/arm64 (binfmt lets it). `xplat engines` and `xplat
//! plan` show the engines and placements; the C template is built with its arm64 job on
//! the second engine and pushed; secrets reach the remote engine on a tmpfs and never a
//! layer; an engine that is unreachable at the start is reported before anything runs;
//! and an engine killed mid-build has its job rerun on the first engine, emulated, or the
//! build fails cleanly, as `--on-engine-loss` says.

mod builds;
mod faults;
mod ssh;

use std::process::Command;

use crate::e2e::events;
use crate::support::engine2::Engine2;
use crate::support::{require_engine2, run_ok, samples_dir, xplat, CmdOutput};

/// `--no-config --engine local= --engine arm=…,platforms=linux/arm64,tls=…`.
pub fn two_engines(e2: &Engine2) -> Vec<String> {
    vec![
        "--no-config".into(),
        "--engine".into(),
        "local=".into(),
        "--engine".into(),
        e2.engine_flag("arm", "linux/arm64"),
    ]
}

/// A build id unique to this test run (`XPLAT_BUILD_ID`: the `xplat.build` label).
pub fn build_id(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("wp7-{tag}-{}-{nanos}", std::process::id())
}

/// Containers labelled `xplat.build=ID` on the engine `docker` talks to.
pub fn leftovers(mut docker: Command, id: &str) -> Vec<String> {
    let out = run_ok(docker.args(["ps", "-aq", "--filter", &format!("label=xplat.build={id}")]));
    out.stdout.lines().map(str::to_string).collect()
}

/// The engine each job started on, in order, from `--progress json`: (job, engine).
pub fn starts(out: &CmdOutput) -> Vec<(String, String)> {
    events(out, "job_started")
        .iter()
        .map(|e| {
            (
                e["job"].as_str().unwrap().to_string(),
                e["engine"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn engines_lists_both_engines_with_their_platforms_and_storage() {
    let e2 = require_engine2!();
    let mut args = vec!["engines".to_string(), "--format".into(), "json".into()];
    args.extend(two_engines(e2));
    args.extend([
        "--engine".into(),
        "gone=tcp://127.0.0.1:1,platforms=linux/riscv64".into(),
    ]);
    let out: CmdOutput = xplat().args(&args).output().unwrap().into();
    assert_eq!(
        out.code,
        Some(1),
        "an unreachable engine exits 1: {}",
        out.stderr
    );
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    let (local, arm, gone) = (row("local"), row("arm"), row("gone"));
    assert_eq!(local["reachable"], true);
    assert_eq!(local["native"], serde_json::json!(["linux/amd64"]));
    assert!(
        local["emulated"]
            .as_array()
            .unwrap()
            .contains(&"linux/arm64".into()),
        "binfmt handlers of the host: {local}"
    );
    assert_eq!(arm["reachable"], true);
    assert_eq!(arm["endpoint"], format!("{} (TLS)", e2.host()));
    assert_eq!(arm["native"], serde_json::json!(["linux/arm64"]));
    assert_eq!(arm["declared"], true);
    assert_eq!(arm["storage_driver"], "overlay2");
    assert_eq!(arm["native_diff"], true);
    assert!(arm["api_version"].as_str().unwrap().starts_with("1."));
    assert!(arm["cpus"].as_i64().unwrap() > 0 && arm["memory"].as_i64().unwrap() > 0);
    assert_eq!(gone["reachable"], false);
    assert!(
        gone["error"].as_str().unwrap().contains("127.0.0.1:1"),
        "{gone}"
    );
    // The table says the same for people, with the storage warning.
    let mut args = vec!["engines".to_string()];
    args.extend(two_engines(e2));
    let text = run_ok(xplat().args(&args)).stdout;
    assert!(
        text.contains("linux/arm64 (declared; runs linux/amd64)"),
        "{text}"
    );
    let local_driver = local["storage_driver"].as_str().unwrap();
    if local["native_diff"] == false && local["commits_upper_dirs"] == true {
        assert!(
            text.contains(&format!(
                "note: local: storage driver {local_driver} has no native diff: xplat commits \
                 from the containers' upper directories itself"
            )),
            "{text}"
        );
    } else if local["native_diff"] == false {
        assert!(
            text.contains(&format!(
                "warning: local: storage driver {local_driver} has no native diff"
            )),
            "{text}"
        );
    }
}

#[test]
fn plan_places_each_job_on_an_engine_without_connecting() {
    // Nothing listens at these hosts: `xplat plan` uses the declared platforms only.
    let ctx = samples_dir().join("hello-c");
    let base = [
        "plan",
        "--platform",
        "linux/amd64,linux/arm64",
        "--engine",
        "local=unix:///nonexistent.sock,platforms=linux/amd64",
        "--engine",
        "arm=tcp://127.0.0.1:1,platforms=linux/arm64",
    ];
    let text = run_ok(xplat().args(base).arg(&ctx)).stdout;
    let header = text.lines().next().unwrap();
    assert!(header.contains("ENGINE"), "{text}");
    let build_rows: Vec<&str> = text.lines().filter(|l| l.contains(" build ")).collect();
    assert_eq!(build_rows.len(), 2, "{text}");
    assert!(
        build_rows
            .iter()
            .any(|l| l.contains("linux/arm64") && l.contains(" arm ")),
        "{text}"
    );
    assert!(text.contains("BUILDPLATFORM linux/arm64"), "{text}");
    let json = run_ok(xplat().args(base).args(["--format", "json"]).arg(&ctx)).stdout;
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let engines: Vec<(String, String)> = plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["engine"].is_string())
        .map(|j| {
            (
                j["run_platform"]["architecture"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                j["engine"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        engines,
        [
            ("amd64".into(), "local".into()),
            ("arm64".into(), "arm".into())
        ]
    );
    // Without engines: no placement, exactly as before.
    let plain = run_ok(
        xplat()
            .args(["plan", "--platform", "linux/amd64,linux/arm64"])
            .arg(&ctx),
    )
    .stdout;
    assert!(!plain.lines().next().unwrap().contains("ENGINE"), "{plain}");
}
