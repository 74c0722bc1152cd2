//! A corpus of realistic Dockerfiles (`tests/data/corpus/<name>/Dockerfile`), written
//! in the styles real projects use: Go, Rust, C, Node, Python, Java, .NET, PHP and Ruby
//! builders; xx-style helper stages; cache, bind, secret, ssh and tmpfs mounts, with
//! and without `target=`; heredocs; ONBUILD; ARGs before FROM and inherited across
//! stages; `# check=` and `# escape=` directives; Windows base images; a file that is
//! not UTF-8. Each goes through the binary, as a user runs it: `xplat check` and
//! `xplat plan --format json` for linux/amd64, linux/arm64 and linux/arm/v7, built on
//! linux/amd64. Nothing may panic or fail, and the table below says how many jobs
//! each plan emulates and which lint rules `xplat check` reports.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{xplat, CmdOutput};

const PLATFORMS: &str = "linux/amd64,linux/arm64,linux/arm/v7";

/// (case folder, extra flags, emulated jobs, lint rules reported, sorted and unique)
type Case = (
    &'static str,
    &'static [&'static str],
    usize,
    &'static [&'static str],
);

#[rustfmt::skip]
const CASES: &[Case] = &[
    ("add-remote-checksum", &[], 0, &[]),
    ("arg-before-from", &[], 0, &[]),
    // The build stage and the final stage both RUN on the target: 2 + 2.
    ("c-autotools-on-target", &[], 4, &["EmulatedStage"]),
    ("c-cmake-heredoc", &[], 0, &[]),
    ("c-gcc-cross", &[], 0, &[]),
    ("certs-stage", &[], 2, &["EmulatedStage"]),
    // Without its `# check=skip=UndefinedVar,UnusedStage`: UndeclaredPlatformArg, UnusedStage.
    ("check-directives", &[], 0, &[]),
    ("chown-by-name", &[], 2, &["EmulatedStage"]),
    // `--platform=linux/amd64` in a stage named after it: no lint, native everywhere.
    ("constant-platform-named", &[], 0, &[]),
    ("copy-parents-exclude", &[], 0, &[]),
    ("debian-multiarch-cross", &[], 0, &[]),
    ("docker-cli-style", &[], 0, &[]),
    ("dotnet-publish", &[], 0, &[]),
    ("env-arg-chain", &[], 2, &["EmulatedStage", "UnusedStage"]),
    ("env-arg-chain", &["--target", "dev"], 4, &["EmulatedStage"]),
    ("go-alpine-runtime", &[], 2, &["EmulatedStage"]),
    ("go-bind-mounts", &[], 0, &[]),
    ("go-cgo-zig", &[], 0, &[]),
    ("go-distroless", &[], 0, &[]),
    // TARGETOS/TARGETARCH declared in `gobase` only: inherited, not undeclared.
    ("go-inherited-args", &[], 0, &[]),
    ("go-ldflags-version", &[], 0, &[]),
    ("go-ldflags-version", &["--build-arg", "VERSION=1.2.3"], 0, &[]),
    ("go-scratch", &[], 0, &[]),
    ("go-xx", &[], 0, &[]),
    ("heredoc-config", &[], 0, &[]),
    ("java-gradle-user", &[], 2, &["EmulatedStage"]),
    ("java-jlink", &[], 2, &["EmulatedStage"]),
    ("java-maven", &[], 0, &[]),
    ("latin1-maintainer", &[], 0, &[]),
    ("metadata-only-final", &[], 0, &[]),
    ("mount-no-target", &[], 0, &["UnusedStage"]),
    ("mount-no-target", &["--target", "test"], 0, &["UnusedStage"]),
    ("node-build-platform-deps", &[], 0, &[]),
    // The `onbuild` stage RUNs, and its ONBUILD RUN fires in `app`: 2 + 2.
    ("node-onbuild-stage", &[], 4, &["EmulatedStage"]),
    ("node-pnpm-static-nginx", &[], 0, &[]),
    ("node-single-stage", &[], 2, &["EmulatedStage"]),
    // The image's triggers are unknown offline: the executor runs them.
    ("onbuild-image", &[], 0, &[]),
    ("php-apache", &[], 2, &["EmulatedStage"]),
    ("python-poetry-venv", &[], 2, &["EmulatedStage"]),
    ("python-slim-pip", &[], 2, &["EmulatedStage"]),
    ("python-wheels", &[], 4, &["EmulatedStage"]),
    ("ruby-bundler", &[], 4, &["EmulatedStage"]),
    ("rust-cargo-chef", &[], 2, &["EmulatedStage"]),
    ("rust-musl-scratch", &[], 0, &[]),
    ("rust-on-target", &[], 2, &["EmulatedStage"]),
    ("rust-xx", &[], 0, &[]),
    ("secrets-ssh", &[], 0, &[]),
    ("static-site-hugo", &[], 0, &[]),
    ("test-stage-target", &[], 0, &["UnusedStage"]),
    ("tmpfs-network-none", &[], 0, &[]),
    // Windows images planned for the Linux targets, as asked: their RUN is emulated.
    ("windows-nanoserver-multistage", &[], 2, &["EmulatedStage"]),
    ("windows-servercore-escape", &[], 2, &["EmulatedStage"]),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/corpus")
}

/// `xplat <args> -f Dockerfile .` in the case folder, with no `XPLAT_*` from the caller.
fn run(dir: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd: Command = xplat();
    cmd.args(args)
        .args(["--platform", PLATFORMS, "--build-platform", "linux/amd64"])
        .args(["-f", "Dockerfile", "."])
        .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("XPLAT_") {
            cmd.env_remove(k);
        }
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("running xplat: {e}"))
        .into()
}

/// The `[Rule]` names at the end of `xplat check`'s finding lines, sorted, unique.
fn rules_of(stderr: &str) -> Vec<String> {
    let mut rules: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with("Dockerfile:"))
        .filter_map(|l| l.rsplit_once(" [")?.1.strip_suffix(']').map(String::from))
        .collect();
    rules.sort();
    rules.dedup();
    rules
}

#[test]
fn corpus_checks_and_plans_through_the_binary() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 40,
        "the corpus has {} Dockerfiles",
        dirs.len()
    );
    let listed: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    for d in &dirs {
        assert!(listed.contains(&d.as_str()), "{d} is not in CASES");
    }
    let mut failures = Vec::new();
    for (name, flags, emulated, rules) in CASES {
        let dir = corpus_dir().join(name);
        let what = format!("{name} {}", flags.join(" "));
        let check = run(&dir, &[&["check"], *flags].concat());
        if check.code != Some(0) || check.stderr.contains(": error:") {
            failures.push(format!(
                "{what}: xplat check exited {:?}:\n{}",
                check.code, check.stderr
            ));
            continue;
        }
        let got = rules_of(&check.stderr);
        if got != *rules {
            failures.push(format!(
                "{what}: xplat check reports {got:?}, want {rules:?}:\n{}",
                check.stderr
            ));
        }
        let plan = run(&dir, &[&["plan", "--format", "json"], *flags].concat());
        if plan.code != Some(0) {
            failures.push(format!(
                "{what}: xplat plan exited {:?}:\n{}",
                plan.code, plan.stderr
            ));
            continue;
        }
        let p: serde_json::Value = serde_json::from_str(&plan.stdout)
            .unwrap_or_else(|e| panic!("{what}: plan JSON: {e}\n{}", plan.stdout));
        let jobs = p["jobs"].as_array().unwrap();
        let n = jobs.iter().filter(|j| j["mode"] == "emulated").count();
        if n != *emulated {
            failures.push(format!("{what}: {n} emulated jobs, want {emulated}"));
        }
        assert_eq!(p["targets"].as_array().unwrap().len(), 3, "{what}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The plan's JSON for one case, default flags.
fn plan_json(name: &str, flags: &[&str]) -> serde_json::Value {
    let out = run(
        &corpus_dir().join(name),
        &[&["plan", "--format", "json"], flags].concat(),
    );
    assert_eq!(out.code, Some(0), "{name}: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap()
}

/// Bytes that are not UTF-8 (a Latin-1 `José` in a comment and a LABEL) are read, not
/// refused: they become U+FFFD, as in BuildKit's image config.
#[test]
fn a_latin1_dockerfile_reads_with_replacement_characters() {
    let raw = std::fs::read(corpus_dir().join("latin1-maintainer/Dockerfile")).unwrap();
    assert!(
        std::str::from_utf8(&raw).is_err(),
        "the file must stay Latin-1"
    );
    let p = plan_json("latin1-maintainer", &[]);
    let label = p["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["steps"].as_array().unwrap())
        .find_map(|s| s["instruction"]["Label"].as_array().cloned())
        .unwrap();
    assert_eq!(label[0]["value"], "Jos\u{fffd} Garc\u{fffd}a");
}

/// `RUN --mount` without `target=` plans at the WORKDIR (issue 10: Docker's own
/// Dockerfiles do this), and an inherited ARG reaches a child stage's RUN.
#[test]
fn mounts_without_target_and_inherited_args_in_the_plan() {
    let p = plan_json("mount-no-target", &["--target", "test"]);
    let mounts: Vec<serde_json::Value> = p["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["stage"]["name"] == "test")
        .flat_map(|j| j["steps"].as_array().unwrap().clone())
        .filter_map(|s| s["instruction"]["Run"]["mounts"].as_array().cloned())
        .flatten()
        .collect();
    let targets: Vec<&str> = mounts
        .iter()
        .map(|m| m["target"].as_str().unwrap())
        .collect();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| *t == "/src" || *t == "/src/hack"),
        "{targets:?}"
    );

    let p = plan_json("go-inherited-args", &[]);
    for job in p["jobs"].as_array().unwrap() {
        if job["stage"]["name"] != "worker" {
            continue;
        }
        let platform = &job["platforms"][0];
        let want = match platform["variant"].as_str() {
            Some(v) => format!("linux/{}/{v}", platform["architecture"].as_str().unwrap()),
            None => format!("linux/{}", platform["architecture"].as_str().unwrap()),
        };
        let run = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["instruction"]["Run"].is_object())
            .unwrap();
        assert_eq!(run["args"]["TARGETPLATFORM"], want.as_str(), "{job}");
    }
}
