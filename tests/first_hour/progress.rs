//! Progress that shows everything: JSON events for every pushed blob and manifest, the
//! index, and the result with its digests (issue 13, finding 8).

use super::{events, run};
use crate::support::{require, require_engine, Fixtures, Registry, TestDir};

#[test]
fn a_push_reports_each_manifest_the_index_and_the_result() {
    require_engine!();
    require!(Fixtures::get().registry_bin());
    let reg = Registry::start().expect("start the loopback registry");
    let dir = TestDir::new(&[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a\n")]);
    let tag = reg.reference("progress:1");
    let mut env = Vec::new();
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        env.push(("DOCKER_HOST", h));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = run(
        dir.path(),
        &[
            "build",
            "--no-config",
            "--progress",
            "json",
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &tag,
            "--push",
            "--metadata-file",
            "meta.json",
            ".",
        ],
        &env,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let repo = format!("{}/progress", reg.host());
    let manifests = events(&out, "manifest_pushed");
    let mut platforms: Vec<&str> = manifests
        .iter()
        .map(|m| m["platform"].as_str().unwrap())
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert!(manifests.iter().all(|m| m["repository"] == repo.as_str()));
    let index = events(&out, "index_pushed");
    assert_eq!(index.len(), 1, "{}", out.stderr);
    assert_eq!(index[0]["tag"], "1");
    assert!(!events(&out, "blob").is_empty());
    let result = events(&out, "result");
    assert_eq!(result.len(), 1, "{}", out.stderr);
    let result = &result[0];
    let meta: serde_json::Value = serde_json::from_str(&dir.read("meta.json")).unwrap();
    assert_eq!(result["index_digest"], meta["index_digest"]);
    assert_eq!(result["index_digest"], index[0]["digest"]);
    assert_eq!(result["pushed"][0], repo.as_str());
    for m in &manifests {
        let p = result["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["platform"] == m["platform"])
            .expect("the platform is in the result");
        assert_eq!(p["digest"], m["digest"]);
    }
    // The result is the last event.
    let last = out
        .stderr
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .unwrap();
    assert_eq!(last["event"], "result");
}
