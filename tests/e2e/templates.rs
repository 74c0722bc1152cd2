//! Issue 6: the `go` and `c` templates, written by `xplat init`, build end to end for
//! linux/amd64 and linux/arm64 on the offline fixtures (base images switched by build
//! args), push to a loopback registry, and the results run: amd64 in the engine, arm64
//! under qemu-aarch64-static.

use std::process::Command;

use super::{extract_from_registry, ok, platforms, xplat_build};
use crate::support::{
    docker, docker_ok, push_fixture_busybox, require, require_builder, require_engine,
    require_qemu_aarch64, require_registry, require_skopeo, run_ok, skopeo_inspect_raw, xplat,
    TestDir,
};

const BOTH: &str = "linux/amd64,linux/arm64";

/// The `RUN --mount=type=cache` volumes a test's builds create, removed when it ends (they
/// are kept between builds by design, so nothing else removes them).
struct CacheVolumes(Vec<String>);

impl CacheVolumes {
    fn list() -> Vec<String> {
        docker(["volume", "ls", "-q", "--filter", "label=xplat.cache=true"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn snapshot() -> CacheVolumes {
        CacheVolumes(CacheVolumes::list())
    }
}

impl Drop for CacheVolumes {
    fn drop(&mut self) {
        for v in CacheVolumes::list() {
            if !self.0.contains(&v) {
                let _ = docker(["volume", "rm", &v]).output();
            }
        }
    }
}

/// `xplat init --template NAME DIR` into a project folder that already has its sources.
fn init(template: &str, dir: &TestDir) {
    let out = run_ok(
        xplat()
            .args(["init", "--template", template])
            .arg(dir.path()),
    );
    assert!(out.stdout.contains("Dockerfile"), "{}", out.stdout);
    assert!(dir.join("Dockerfile").is_file());
}

/// Builds `dir` for both platforms with `build_args`, pushes to `tag`, checks the index,
/// runs the amd64 image and the arm64 binary at `binary`; returns both outputs.
fn build_push_run(
    dir: &TestDir,
    tag: &str,
    build_args: &[String],
    binary: &str,
    qemu: &std::path::Path,
) -> (String, String) {
    let mut args: Vec<&str> = vec!["--no-config", "--platform", BOTH, "-t", tag, "--push"];
    for a in build_args {
        args.extend(["--build-arg", a]);
    }
    let ctx = dir.path().display().to_string();
    args.push(&ctx);
    let work = tempfile::tempdir().unwrap();
    ok(xplat_build(work.path(), &args, &[]));
    let raw = skopeo_inspect_raw(tag).unwrap();
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"]);

    docker_ok(&["pull", "-q", "--platform", "linux/amd64", tag]);
    let amd64 = docker_ok(&["run", "--rm", tag]).stdout;
    let _ = docker(["rmi", tag]).output();

    let bin = extract_from_registry(tag, "arm64", binary, work.path());
    let out = Command::new(qemu).arg(&bin).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    (amd64, String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn go_template_builds_for_two_platforms_and_runs() {
    require_engine!();
    let builder = require_builder!();
    require_skopeo!();
    let qemu = require_qemu_aarch64!();
    let reg = require_registry!();
    let _volumes = CacheVolumes::snapshot();
    let dir = TestDir::new(&[
        ("go.mod", "module example.com/hello\n\ngo 1.19\n"),
        (
            "main.go",
            "package main\n\nimport (\n\t\"fmt\"\n\t\"runtime\"\n)\n\nfunc main() {\n\tfmt.Printf(\"hello %s/%s\\n\", runtime.GOOS, runtime.GOARCH)\n}\n",
        ),
    ]);
    init("go", &dir);
    let (amd64, arm64) = build_push_run(
        &dir,
        &reg.reference("tmpl-go:1"),
        &[format!("BUILDER_IMAGE={builder}")],
        "/app",
        &qemu,
    );
    assert_eq!(amd64.trim(), "hello linux/amd64");
    assert_eq!(arm64.trim(), "hello linux/arm64");
}

#[test]
fn c_template_builds_for_two_platforms_on_a_registry_runtime_and_runs() {
    require_engine!();
    let builder = require_builder!();
    require_skopeo!();
    let qemu = require_qemu_aarch64!();
    let reg = require_registry!();
    let busybox = require!(push_fixture_busybox(&reg));
    let dir = TestDir::new(&[
        (
            "app.c",
            "#include <stdio.h>\n#include <sys/utsname.h>\nint main(void) {\n  struct utsname u;\n  uname(&u);\n  printf(\"hello-c %s\\n\", u.machine);\n  return 0;\n}\n",
        ),
        ("Makefile", "app: app.c\n\t$(CC) -O2 -o $@ $< $(LDFLAGS)\n"),
    ]);
    init("c", &dir);
    let (amd64, arm64) = build_push_run(
        &dir,
        &reg.reference("tmpl-c:1"),
        &[
            format!("BUILDER_IMAGE={builder}"),
            format!("RUNTIME_IMAGE={busybox}"),
        ],
        "/app",
        &qemu,
    );
    assert_eq!(amd64.trim(), "hello-c x86_64");
    assert_eq!(arm64.trim(), "hello-c aarch64");
}
