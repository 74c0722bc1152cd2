//! buildx's vocabulary through the binary: `--output type=local|tar|docker|registry|image`,
//! `-o DIR`, `--platform local`, `-f -`, `--progress auto`, `--iidfile`, `--secret` from the
//! environment or a relative file, `--load` of one non-host platform, and the buildx flags
//! xplat refuses with the reason.

use std::io::Write;
use std::process::Stdio;

use super::{events, run};
use crate::support::{
    docker, push_fixture_busybox, require, require_engine, require_skopeo, xplat, CmdOutput,
    Fixtures, Registry, TestDir,
};

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/engine.sock");

/// A scratch final stage copying one file: assembled, nothing runs in the engine.
fn scratch_project() -> TestDir {
    TestDir::new(&[
        (
            "Dockerfile",
            "FROM scratch\nCOPY hello.txt /etc/hello.txt\n",
        ),
        ("hello.txt", "hello\n"),
    ])
}

fn engine_env() -> Vec<(&'static str, String)> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) => vec![("DOCKER_HOST", h)],
        Err(_) => vec![],
    }
}

/// `xplat ARGS` in `dir` against the test engine.
fn build(dir: &TestDir, args: &[&str]) -> CmdOutput {
    let env = engine_env();
    let envs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut all = vec!["build", "--no-config", "--progress", "json"];
    all.extend_from_slice(args);
    run(dir.path(), &all, &envs)
}

fn ok(out: CmdOutput) -> CmdOutput {
    assert_eq!(
        out.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn type_local_writes_one_folder_per_platform_and_the_rootfs_itself_for_one() {
    require_engine!();
    let dir = scratch_project();
    ok(build(
        &dir,
        &[
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            "type=local,dest=out",
            ".",
        ],
    ));
    for p in ["linux_amd64", "linux_arm64"] {
        assert_eq!(dir.read(&format!("out/{p}/etc/hello.txt")), "hello\n");
    }
    assert!(
        !dir.join("xplat-out").exists(),
        "no default layout besides -o"
    );
    // `-o DIR` is type=local; one platform is the rootfs itself.
    ok(build(
        &dir,
        &["--platform", "linux/arm64", "-o", "single", "."],
    ));
    assert_eq!(dir.read("single/etc/hello.txt"), "hello\n");
    assert!(!dir.join("single/linux_arm64").exists());
}

#[test]
fn type_tar_is_the_filesystem_split_by_platform_and_iidfile_is_the_index_digest() {
    require_engine!();
    let dir = scratch_project();
    ok(build(
        &dir,
        &[
            "--platform",
            "linux/amd64,linux/arm/v7",
            "-o",
            "type=tar,dest=fs.tar",
            "--iidfile",
            "iid",
            "--metadata-file",
            "meta.json",
            ".",
        ],
    ));
    let f = std::fs::File::open(dir.join("fs.tar")).unwrap();
    let names: Vec<String> = tar::Archive::new(f)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    for want in ["linux_amd64/etc/hello.txt", "linux_arm_v7/etc/hello.txt"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    let meta: serde_json::Value = serde_json::from_str(&dir.read("meta.json")).unwrap();
    let iid = dir.read("iid");
    assert!(iid.starts_with("sha256:"), "{iid}");
    assert_eq!(iid, meta["index_digest"].as_str().unwrap());
}

#[test]
fn the_dockerfile_can_come_from_stdin() {
    require_engine!();
    let dir = TestDir::new(&[("hello.txt", "from stdin\n")]);
    let mut cmd = xplat();
    cmd.current_dir(dir.path())
        .env("HOME", dir.path())
        .env("DOCKER_CONFIG", dir.join(".docker"))
        .args(["build", "--no-config", "-f", "-", "-o", "out", "."])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch\nCOPY hello.txt /hello.txt\n")
        .unwrap();
    let out: CmdOutput = child.wait_with_output().unwrap().into();
    ok(out);
    assert_eq!(dir.read("out/hello.txt"), "from stdin\n");
    // `xplat plan -f -` reads it too, and needs no engine.
    let mut plan = xplat();
    plan.current_dir(dir.path())
        .args(["plan", "-f", "-", "--platform", "local", "."])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = plan.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch AS only\n")
        .unwrap();
    let out: CmdOutput = child.wait_with_output().unwrap().into();
    let out = ok(out);
    assert!(out.stdout.contains("only"), "{}", out.stdout);
}

#[test]
fn platform_local_is_this_machine() {
    let dir = scratch_project();
    let out = ok(run(
        dir.path(),
        &["plan", "--platform", "local", "--format", "json", "."],
        &[],
    ));
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(plan["targets"][0]["platform"]["architecture"], arch);
    assert_eq!(plan["targets"][0]["platform"]["os"], "linux");
}

#[test]
fn bad_output_values_are_usage_errors_before_any_work() {
    let dir = scratch_project();
    for (value, says) in [
        ("type=foo,dest=x", "type \"foo\" is not supported"),
        ("type=local", "type=local needs dest=PATH"),
        ("-", "stdout"),
    ] {
        let out = run(
            dir.path(),
            &["build", "--no-config", "-o", value, "."],
            &[NO_ENGINE],
        );
        assert_eq!(out.code, Some(2), "{value}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{value}: {}", out.stderr);
        assert!(!out.stderr.contains("Docker engine"), "{}", out.stderr);
    }
}

#[test]
fn unsupported_buildx_flags_are_refused_with_the_reason_not_a_look_alike() {
    let dir = scratch_project();
    for (flag, value, says) in [
        ("--ssh", "default", "--ssh is not supported"),
        ("--ulimit", "nofile=1024:1024", "--ulimit is not supported"),
        ("--cache-to", "type=inline", "type=inline is not supported"),
        ("--allow", "security.insecure", "--allow is not supported"),
    ] {
        let out = run(
            dir.path(),
            &["build", "--no-config", flag, value, "."],
            &[NO_ENGINE],
        );
        assert_eq!(out.code, Some(2), "{flag}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{flag}: {}", out.stderr);
        assert!(out.stderr.contains("hint: "), "{flag}: {}", out.stderr);
        assert!(
            !out.stderr.contains("similar")
                && !out.stderr.contains("--push")
                && !out.stderr.contains("--quiet"),
            "{flag}: {}",
            out.stderr
        );
    }
}

#[test]
fn buildx_run_options_and_progress_auto_are_accepted() {
    require_engine!();
    let dir = scratch_project();
    let out = ok(run(
        dir.path(),
        &[
            "build",
            "--no-config",
            "--progress",
            "auto",
            "--pull",
            "--network",
            "none",
            "--add-host",
            "db:10.0.0.5",
            "--no-cache-filter",
            "stage-0",
            "-o",
            "out",
            ".",
        ],
        &engine_env()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    ));
    // auto on a pipe is plain progress: lines of text, not JSON events.
    assert!(out.stderr.contains("plan: "), "{}", out.stderr);
    assert!(events(&out, "plan").is_empty());
    let out = run(
        dir.path(),
        &["build", "--no-config", "--network", "bridge", "."],
        &[NO_ENGINE],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
}

#[test]
fn load_of_one_foreign_platform_loads_it() {
    require_engine!();
    let dir = scratch_project();
    let tag = format!("xplat-test-firsthour/load-arm64:{}", std::process::id());
    let out = build(
        &dir,
        &["--platform", "linux/arm64", "--load", "-t", &tag, "."],
    );
    let inspect = docker(["image", "inspect", "--format", "{{.Architecture}}", &tag])
        .output()
        .unwrap();
    let _ = docker(["image", "rm", &tag]).output();
    ok(out);
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "arm64");
}

#[test]
fn secrets_from_the_environment_and_a_relative_file_reach_run() {
    require_engine!();
    require!(Fixtures::get().busybox_images());
    let image = Fixtures::get().busybox_image("amd64");
    let dir = TestDir::new(&[
        (
            "Dockerfile",
            &format!(
                "FROM {image}\n\
                 RUN --mount=type=secret,id=tok --mount=type=secret,id=file \
                 test \"$(cat /run/secrets/tok)\" = s3cret-env && \
                 test \"$(cat /run/secrets/file)\" = s3cret-file\n"
            ),
        ),
        ("keys/secret.txt", "s3cret-file"),
    ]);
    let mut envs = engine_env();
    envs.push(("TOKEN", "s3cret-env".into()));
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = [
        "build",
        "--no-config",
        "--no-cache",
        "--platform",
        "linux/amd64",
        "--secret",
        "id=tok,env=TOKEN",
        "--secret",
        "id=file,src=keys/secret.txt",
        "-o",
        "out",
        ".",
    ];
    ok(run(dir.path(), &args, &envs));
    // Never in a layer, and no mount point left behind either: BuildKit removes the empty
    // files a secret is mounted on, and so does xplat's export (assemble::run_traces).
    let secrets_dir = dir.join("out/run/secrets");
    let left: Vec<_> = std::fs::read_dir(&secrets_dir)
        .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(left.is_empty(), "mount stubs left in the image: {left:?}");
    // A wrong value fails the RUN: the secret really is what the RUN reads.
    let mut wrong = envs.clone();
    wrong.retain(|(k, _)| *k != "TOKEN");
    wrong.push(("TOKEN", "other"));
    let out = run(dir.path(), &args, &wrong);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    // An unset variable is a usage error before any work.
    let mut unset = envs.clone();
    unset.retain(|(k, _)| *k != "TOKEN");
    let out = run(dir.path(), &args, &unset);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("TOKEN is not set"), "{}", out.stderr);
}

#[test]
fn type_docker_with_dest_writes_a_docker_load_archive() {
    require_engine!();
    let dir = scratch_project();
    ok(build(
        &dir,
        &[
            "--platform",
            "linux/arm64",
            "-o",
            "type=docker,dest=img.tar,name=app:1",
            ".",
        ],
    ));
    let f = std::fs::File::open(dir.join("img.tar")).unwrap();
    let mut manifest = None;
    for e in tar::Archive::new(f).entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).unwrap();
            manifest = Some(text);
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&manifest.expect("manifest.json")).unwrap();
    assert_eq!(manifest[0]["RepoTags"][0], "app:1");
}

#[test]
fn type_registry_and_type_image_push() {
    require_engine!();
    require!(Fixtures::get().registry_bin());
    let reg = Registry::start().expect("start the loopback registry");
    let dir = scratch_project();
    for (output, name) in [
        (
            format!("type=registry,name={}", reg.reference("viaregistry:1")),
            "viaregistry:1",
        ),
        (
            format!("type=image,push=true,name={}", reg.reference("viaimage:1")),
            "viaimage:1",
        ),
    ] {
        let out = ok(build(
            &dir,
            &["--platform", "linux/amd64,linux/arm64", "-o", &output, "."],
        ));
        assert_eq!(
            events(&out, "index_pushed").len(),
            1,
            "{output}: {}",
            out.stderr
        );
        assert!(
            crate::e2e::manifest_exists(&reg.reference(name)),
            "{output}"
        );
    }
}

#[test]
fn type_local_unpacks_a_registry_base_per_platform() {
    require_engine!();
    require_skopeo!();
    require!(Fixtures::get().registry_bin());
    let reg = Registry::start().expect("start the loopback registry");
    let busybox = require!(push_fixture_busybox(&reg));
    let dir = TestDir::new(&[
        ("Dockerfile", &format!("FROM {busybox}\nCOPY a /etc/a\n")),
        ("a", "mine\n"),
    ]);
    ok(build(
        &dir,
        &["--platform", "linux/amd64,linux/arm64", "-o", "out", "."],
    ));
    // ELF e_machine (offset 18): 0x3e x86-64, 0xb7 aarch64.
    for (p, machine) in [("linux_amd64", 0x3e), ("linux_arm64", 0xb7)] {
        assert_eq!(dir.read(&format!("out/{p}/etc/a")), "mine\n");
        let bin = std::fs::read(dir.join(&format!("out/{p}/bin/busybox"))).unwrap();
        assert_eq!(&bin[..4], b"\x7fELF", "{p}");
        assert_eq!(bin[18], machine, "{p}: the platform's own binary");
    }
}
