//! The README's first command and its two quickstarts, run as written (only the registry
//! host and the offline builder image differ): issue 13's "a first run that shows the
//! product" and "README quickstarts are tested".

use std::path::{Path, PathBuf};

use super::run;
use crate::support::{
    docker, require, samples_dir, skopeo_inspect_raw, try_run, CmdOutput, Fixtures, TestDir,
};

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap()
}

/// The text of README.md from the heading `heading` to the next heading of any level.
fn section(readme: &str, heading: &str) -> String {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no heading {heading:?}"));
    let rest = &readme[start + heading.len()..];
    let end = rest
        .lines()
        .scan(0, |at, line| {
            let here = *at;
            *at += line.len() + 1;
            Some((here, line))
        })
        .find(|(_, line)| line.starts_with('#'))
        .map_or(rest.len(), |(at, _)| at);
    rest[..end].to_string()
}

/// The command lines of a section (indented code) that start with `prefix`, without
/// trailing comments.
fn commands(section: &str, prefix: &str) -> Vec<String> {
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.split(" #").next().unwrap().trim().to_string())
        .collect()
}

/// The body of the first ```` ```LANG ```` fence in `section`.
fn fence(section: &str, lang: &str) -> String {
    let open = format!("```{lang}\n");
    let start = section.find(&open).expect("a fence") + open.len();
    let end = section[start..].find("```").unwrap() + start;
    section[start..end].to_string()
}

/// `xplat` words of a README command line, shell-split on blanks (the quickstarts quote
/// nothing that holds a blank).
fn words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .skip(1)
        .map(|w| w.trim_matches('"').to_string())
        .collect()
}

fn xplat_in(dir: &Path, args: &[String]) -> CmdOutput {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(dir, &args, &[]);
    assert_eq!(
        out.code,
        Some(0),
        "xplat {args:?} in {}:\n{}\n{}",
        dir.display(),
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn the_readme_first_command_builds_both_platforms_and_runs_both_binaries() {
    let f = Fixtures::get();
    require!(f.builder_image());
    require!(f.binfmt_arm64().or_else(|_| f.qemu_aarch64().map(|_| ())));
    let first = commands(&section(&readme(), "## The two commands"), "bash ");
    assert_eq!(
        first,
        ["bash tests/first-run.sh", "bash tests/run.sh"],
        "the README's two commands"
    );
    let out_dir = TestDir::new(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/first-run.sh");
    let out = try_run(
        std::process::Command::new("bash")
            .arg(&script)
            .env("XPLAT_BIN", env!("CARGO_BIN_EXE_xplat"))
            .env("OUT", out_dir.path())
            .current_dir(out_dir.path()),
    )
    .unwrap_or_else(|e| panic!("tests/first-run.sh: {e}"));
    for line in [
        "linux_amd64: goping linux/amd64",
        "linux_arm64: goping linux/arm64",
    ] {
        assert!(out.stdout.contains(line), "{}\n{}", out.stdout, out.stderr);
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("goping/index.json")).unwrap())
            .unwrap();
    let layout = out_dir.path().join("goping");
    let platforms = image_platforms(&layout, &index);
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"], "{index}");
}

/// The platforms of the one multi-platform image in an OCI layout.
fn image_platforms(layout: &Path, index: &serde_json::Value) -> Vec<String> {
    let blob = |digest: &str| -> serde_json::Value {
        let hex = digest.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one image in the layout: {index}");
    let inner = blob(manifests[0]["digest"].as_str().unwrap());
    let mut out: Vec<String> = inner["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn the_apple_silicon_quickstart_runs_as_written() {
    let f = Fixtures::get();
    let builder = require!(f.builder_image());
    let quick = section(&readme(), "### An Apple Silicon laptop, servers on amd64");
    let lines = commands(&quick, "xplat ");
    assert_eq!(lines.len(), 3, "init, plan, build: {lines:?}");
    let dir = TestDir::new(&[]);
    let project = dir.path().join("myservice");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("go.mod"),
        "module example.com/myservice\n\ngo 1.19\n",
    )
    .unwrap();
    std::fs::write(
        project.join("main.go"),
        "package main\n\nimport (\n\t\"fmt\"\n\t\"runtime\"\n)\n\nfunc main() { fmt.Println(\"myservice\", runtime.GOARCH) }\n",
    )
    .unwrap();
    let tag = format!("myservice-quickstart-{}:dev", std::process::id());
    let _cleanup = RemoveImage(tag.clone());
    // The go template's cache mounts make volumes: they go at the end, as in its own test.
    let _volumes = crate::e2e::templates::CacheVolumes::snapshot();
    for line in &lines {
        let mut args = words(line);
        if args[0] == "build" {
            // Offline: the Go builder comes from the fixtures instead of docker.io.
            args.extend(["--build-arg".into(), format!("BUILDER_IMAGE={builder}")]);
            let at = args.iter().position(|a| a == "myservice:dev").unwrap();
            args[at] = tag.clone();
        }
        let out = xplat_in(&project, &args);
        if args[0] == "plan" {
            assert!(out.stdout.contains("0 emulated"), "{}", out.stdout);
        }
    }
    let ran = try_run(&mut docker(["run", "--rm", tag.as_str()])).unwrap();
    assert_eq!(ran.stdout.trim(), "myservice amd64");
}

struct RemoveImage(String);

impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = docker(["rmi", "-f", self.0.as_str()]).output();
    }
}

#[test]
fn the_ci_quickstart_runs_as_written() {
    let f = Fixtures::get();
    require!(f.builder_image());
    require!(f.registry_bin());
    require!(f.skopeo());
    let registry = crate::support::Registry::start().expect("start the loopback registry");
    let quick = section(
        &readme(),
        "### A CI release pipeline pushing a manifest list",
    );
    let toml = fence(&quick, "toml").replace("ghcr.io", &registry.host());
    let yaml = fence(&quick, "yaml");
    let line = commands(&yaml, "- run: xplat ")
        .into_iter()
        .next()
        .expect("the GitHub Actions build line");
    let line = line
        .trim_start_matches("- run: ")
        .replace("\"${GITHUB_REF_NAME#v}\"", "1.0.0");
    // The repository: the goping sample (its Dockerfile's default builder is the offline one).
    let dir = TestDir::new(&[]);
    copy_dir(&samples_dir().join("goping"), dir.path());
    std::fs::write(dir.path().join("xplat.toml"), toml).unwrap();
    xplat_in(dir.path(), &words(&line));
    let metadata: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("build.json")).unwrap()).unwrap();
    let platforms: Vec<&str> = metadata["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["platform"].as_str().unwrap())
        .collect();
    assert_eq!(
        platforms,
        ["linux/amd64", "linux/arm64", "linux/arm/v7"],
        "{metadata:#}"
    );
    for tag in ["1.0.0", "latest"] {
        let index = skopeo_inspect_raw(&registry.reference(&format!("example/app:{tag}")))
            .unwrap_or_else(|e| panic!("{tag} pushed: {e}"));
        assert_eq!(
            index["manifests"].as_array().map(Vec::len),
            Some(3),
            "{index}"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}
