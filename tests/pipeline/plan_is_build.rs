//! Issue 9: what `xplat plan --format json` prints is the plan `xplat build` runs, for the
//! option combinations that once took different paths (`xplat.toml` platforms,
//! `XPLAT_PLATFORMS`, a user platform in `--platforms-dir`, `--build-arg NAME` with NAME
//! unset, `--target`). The build reports its plan twice, in `--progress json`'s plan event
//! and in `--metadata-file`; both must equal the printed plan.
//!
//! The Dockerfile's stages start from scratch, so no base image is resolved: a resolved
//! base pins its digest into the build's plan, which `xplat plan` (no engine, no registry)
//! cannot know.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{require, require_engine, run_ok, xplat, TestDir};

const DOCKERFILE: &str = "\
FROM scratch AS files
ARG NAME=from-the-dockerfile
ARG TARGETARCH
ARG TARGET_DEBIAN_ARCH
COPY a /a
ENV NAME=$NAME ARCH=$TARGETARCH DEBIAN=$TARGET_DEBIAN_ARCH

FROM scratch AS final
ARG NAME
COPY --from=files /a /b
LABEL name=$NAME
";

/// A platform the embedded catalog does not have.
const USER_PLATFORM: &str = "\
os = \"linux\"
architecture = \"loong64\"
description = \"LoongArch (a user's platform file)\"
aliases = [\"loongarch64\"]
gnu_triple = \"loongarch64-linux-gnu\"
debian_arch = \"loong64\"
qemu_binary = \"qemu-loongarch64-static\"

[go]
goos = \"linux\"
goarch = \"loong64\"

[rust]
gnu = \"loongarch64-unknown-linux-gnu\"
musl = \"loongarch64-unknown-linux-musl\"
";

/// `xplat ARGS` in `dir`, with only the `XPLAT_*` variables given.
fn cmd(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = xplat();
    c.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("XPLAT_") || k == "NAME" {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c
}

/// The plan `xplat plan --format json` prints, and the plans `xplat build` reports (plan
/// event, metadata file), for the same options.
fn plans(dir: &TestDir, global: &[&str], opts: &[&str], env: &[(&str, &str)]) -> [Value; 3] {
    let mut args: Vec<&str> = global.to_vec();
    args.extend(["plan", "--format", "json"]);
    args.extend(opts);
    args.push(".");
    let printed = run_ok(&mut cmd(dir.path(), &args, env));
    let printed: Value = serde_json::from_str(&printed.stdout).expect("plan prints JSON");

    let meta = dir.join("metadata.json");
    let layout = dir.join("out");
    let mut args: Vec<&str> = global.to_vec();
    let meta_arg = meta.display().to_string();
    let out_arg = format!("type=oci,dest={}", layout.display());
    args.extend(["build", "--progress", "json", "--metadata-file", &meta_arg]);
    args.extend(["--output", &out_arg]);
    args.extend(opts);
    args.push(".");
    let built = run_ok(&mut cmd(dir.path(), &args, env));
    let event = built
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "plan")
        .unwrap_or_else(|| panic!("no plan event in:\n{}", built.stderr));
    let metadata: Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).expect("metadata file")).unwrap();
    std::fs::remove_dir_all(&layout).ok();
    [printed, event["plan"].clone(), metadata["plan"].clone()]
}

/// Asserts the three plans are one, and returns it.
fn same_plan(case: &str, [printed, event, metadata]: [Value; 3]) -> Value {
    let show = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    assert_eq!(
        show(&printed),
        show(&event),
        "{case}: the plan event differs from `xplat plan`"
    );
    assert_eq!(
        show(&printed),
        show(&metadata),
        "{case}: the metadata file's plan differs from `xplat plan`"
    );
    printed
}

fn platforms(plan: &Value) -> Vec<String> {
    plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let p = &t["platform"];
            format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

fn project() -> TestDir {
    TestDir::new(&[("Dockerfile", DOCKERFILE), ("a", "a\n")])
}

/// The `ENV` step of the `files` stage of `plan`'s first job that has one.
fn env_step(plan: &Value) -> String {
    plan["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["steps"].as_array().unwrap().iter())
        .find(|s| s["instruction"].get("Env").is_some())
        .map(|s| s["instruction"].to_string())
        .expect("an ENV step")
}

#[test]
fn plan_equals_build_with_platforms_from_xplat_toml() {
    require_engine!();
    let dir = project();
    dir.write(
        "xplat.toml",
        "platforms = [\"linux/arm64\", \"linux/amd64\"]\n",
    );
    let plan = same_plan("xplat.toml", plans(&dir, &[], &[], &[]));
    assert_eq!(platforms(&plan), ["linux/arm64", "linux/amd64"]);
}

#[test]
fn plan_equals_build_with_xplat_platforms() {
    require_engine!();
    let dir = project();
    let env = [("XPLAT_PLATFORMS", "linux/amd64,linux/arm/v7")];
    let plan = same_plan("XPLAT_PLATFORMS", plans(&dir, &[], &[], &env));
    assert_eq!(platforms(&plan), ["linux/amd64", "linux/arm"]);
}

#[test]
fn plan_equals_build_with_a_user_platform_from_platforms_dir() {
    require_engine!();
    let dir = project();
    dir.write("platforms/linux-loong64.toml", USER_PLATFORM);
    let global = ["--platforms-dir", "platforms"];
    let opts = ["--platform", "linux/loong64,linux/amd64"];
    let plan = same_plan("--platforms-dir", plans(&dir, &global, &opts, &[]));
    assert_eq!(platforms(&plan), ["linux/loong64", "linux/amd64"]);
    assert!(env_step(&plan).contains("loong64"), "{}", env_step(&plan));
}

#[test]
fn plan_equals_build_with_a_build_arg_whose_variable_is_unset() {
    require_engine!();
    let dir = project();
    let opts = ["--build-arg", "NAME", "--platform", "linux/amd64"];
    let plan = same_plan("--build-arg NAME (unset)", plans(&dir, &[], &opts, &[]));
    // Unset is absent, as with docker build: the Dockerfile's default stands.
    let env = env_step(&plan);
    assert!(env.contains("from-the-dockerfile"), "{env}");
    // Set, it is the variable's value, in both.
    let plan = same_plan(
        "--build-arg NAME (set)",
        plans(&dir, &[], &opts, &[("NAME", "from-the-environment")]),
    );
    let env = env_step(&plan);
    assert!(env.contains("from-the-environment"), "{env}");
}

#[test]
fn plan_equals_build_with_a_target_stage() {
    require_engine!();
    let dir = project();
    let opts = ["--target", "files", "--platform", "linux/amd64,linux/arm64"];
    let plan = same_plan("--target", plans(&dir, &[], &opts, &[]));
    assert_eq!(plan["target_stage"]["name"], "files");
    assert_eq!(plan["jobs"].as_array().unwrap().len(), 2);
}

#[test]
fn plan_check_and_config_read_the_same_xplat_toml() {
    let dir = project();
    dir.write(
        "xplat.toml",
        "platforms = [\"linux/arm64\", \"linux/s390x\"]\n",
    );
    let config = run_ok(&mut cmd(dir.path(), &["config", "--format", "json"], &[]));
    let config: Value = serde_json::from_str(&config.stdout).unwrap();
    assert_eq!(
        config["platforms"],
        serde_json::json!(["linux/arm64", "linux/s390x"])
    );
    let plan = run_ok(&mut cmd(
        dir.path(),
        &["plan", "--format", "json", "."],
        &[],
    ));
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(platforms(&plan), ["linux/arm64", "linux/s390x"]);
    let check = run_ok(&mut cmd(dir.path(), &["check", "."], &[]));
    assert!(
        check.stderr.contains("for linux/arm64,linux/s390x"),
        "{}",
        check.stderr
    );
}
