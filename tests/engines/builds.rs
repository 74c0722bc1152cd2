//! Builds on two engines: the C template for amd64 and arm64 with its arm64 job on the
//! second engine (checked in that engine's own event record and in xplat's progress),
//! pushed as one index whose images run; and a secret on the remote engine.

use std::process::Command;

use super::{build_id, leftovers, starts, two_engines};
use crate::e2e::{events, extract_from_registry, ok, platforms, xplat_build};
use crate::support::engine2::BUILDER;
use crate::support::{
    docker, docker_ok, push_fixture_busybox, require, require_builder, require_engine2,
    require_qemu_aarch64, require_registry, require_skopeo, run_ok, skopeo_inspect_raw, xplat,
    Fixtures, TestDir,
};

/// The container-create events of engine `docker` since `since` (Unix seconds) for
/// containers labelled `xplat.build=ID`.
fn creates(mut docker: Command, since: u64, id: &str) -> usize {
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = run_ok(docker.args([
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "type=container",
        "--filter",
        "event=create",
        "--filter",
        &format!("label=xplat.build={id}"),
        "--format",
        "{{.Actor.ID}}",
    ]));
    out.stdout.lines().count()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn c_template_builds_its_arm64_job_on_the_second_engine_and_pushes_one_index() {
    let e2 = require_engine2!();
    require_builder!();
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
    run_ok(xplat().args(["init", "--template", "c"]).arg(dir.path()));
    let tag = reg.reference("wp7-two-engines-c:1");
    let id = build_id("c");
    let since = now();
    let mut args = two_engines(e2);
    let ctx = dir.path().display().to_string();
    let builder = format!("BUILDER_IMAGE={BUILDER}");
    let runtime = format!("RUNTIME_IMAGE={busybox}");
    args.extend(
        [
            "--platform",
            "linux/amd64,linux/arm64",
            "-t",
            &tag,
            "--push",
            "--no-cache",
            "--build-arg",
            &builder,
            "--build-arg",
            &runtime,
            &ctx,
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let work = tempfile::tempdir().unwrap();
    let out = ok(xplat_build(work.path(), &args, &[("XPLAT_BUILD_ID", &id)]));

    // xplat's progress: the arm64 build job ran on arm, the amd64 one on local.
    let jobs = events(&out, "job_started");
    let engine_of = |arch: &str| {
        jobs.iter()
            .find(|e| e["stage"] == "build" && e["platforms"][0] == format!("linux/{arch}"))
            .map(|e| e["engine"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(
        engine_of("arm64").as_deref(),
        Some("arm"),
        "{:?}",
        starts(&out)
    );
    assert_eq!(
        engine_of("amd64").as_deref(),
        Some("local"),
        "{:?}",
        starts(&out)
    );
    // The second engine's own record: it created this build's containers.
    assert!(
        creates(e2.docker(), since, &id) > 0,
        "no container of {id} on arm"
    );
    // Nothing of the build is left on either engine.
    assert!(leftovers(e2.docker(), &id).is_empty());
    assert!(leftovers(docker(Vec::<String>::new()), &id).is_empty());

    // One index with both platforms; both images run.
    let raw = skopeo_inspect_raw(&tag).unwrap();
    assert_eq!(platforms(&raw), ["linux/amd64", "linux/arm64"]);
    docker_ok(&["pull", "-q", "--platform", "linux/amd64", &tag]);
    let amd64 = docker_ok(&["run", "--rm", &tag]).stdout;
    let _ = docker(["rmi", &tag]).output();
    assert_eq!(amd64.trim(), "hello-c x86_64");
    let bin = extract_from_registry(&tag, "arm64", "/app", work.path());
    let run = Command::new(qemu).arg(&bin).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout).trim(),
        "hello-c aarch64"
    );
    // Compiled on the arm64 engine by its own gcc: a native aarch64 binary, statically linked.
    let file = std::fs::read(&bin).unwrap();
    assert_eq!(&file[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([file[18], file[19]]), 183, "EM_AARCH64");
}

#[test]
fn a_secret_reaches_the_remote_engine_on_a_tmpfs_and_never_a_layer() {
    let e2 = require_engine2!();
    require!(Fixtures::get().busybox_images());
    let secret = "s3cret-for-the-remote-engine";
    let dir = TestDir::new(&[(
        "Dockerfile",
        "ARG TARGETARCH\nFROM xplat-test/busybox:${TARGETARCH}\n\
         RUN --mount=type=secret,id=tok,required=true \\\n  \
         test \"$(tr a-z A-Z < /run/secrets/tok)\" = \"S3CRET-FOR-THE-REMOTE-ENGINE\" \\\n  \
         && stat -c %a /run/secrets/tok > /mode && mount | grep -c ' /run/secrets ' > /tmpfs\n",
    )]);
    dir.write("tok.txt", secret);
    let id = build_id("secret");
    let mut args = two_engines(e2);
    let layout = dir.path().join("out");
    let secret_flag = format!("id=tok,src={}", dir.join("tok.txt").display());
    let dest = format!("type=oci,dest={}", layout.display());
    let ctx = dir.path().display().to_string();
    args.extend(
        [
            "--platform",
            "linux/arm64",
            "--no-cache",
            "--secret",
            &secret_flag,
            "--output",
            &dest,
            &ctx,
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ok(xplat_build(dir.path(), &args, &[("XPLAT_BUILD_ID", &id)]));
    assert_eq!(super::starts(&out)[0].1, "arm", "{:?}", super::starts(&out));
    assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret));
    // Every layer of the image: /mode says 400 and /tmpfs that /run/secrets was a tmpfs;
    // no layer holds the secret file.
    let files = crate::engines::faults::layer_files(&layout);
    assert_eq!(
        files.get("mode").map(|s| s.trim()),
        Some("400"),
        "{:?}",
        files.keys()
    );
    assert_eq!(files.get("tmpfs").map(|s| s.trim()), Some("1"));
    // The mount point stays (as with any mount), empty.
    let under: Vec<&String> = files
        .keys()
        .filter(|k| k.starts_with("run/secrets/") && *k != "run/secrets/")
        .collect();
    assert!(under.is_empty(), "{under:?}");
    assert!(files.values().all(|v| !v.contains(secret)));
    assert!(leftovers(e2.docker(), &id).is_empty());
}
