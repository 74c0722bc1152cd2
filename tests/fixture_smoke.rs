//! Proves that each test-support helper and each fixture made by
//! `tests/fixtures/setup.sh` works: the engine, the busybox images (native and
//! emulated), the loopback registry (start, stop, restart), the multi-platform
//! busybox push, the builder image's toolchains, TestDir and the xplat binary.

use std::io::Read;
use std::process::Command;

use crate::support::*;

fn platforms_of(index: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = index["manifests"]
        .as_array()
        .expect("an index has manifests")
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or("?"),
                p["architecture"].as_str().unwrap_or("?")
            );
            if let Some(var) = p["variant"].as_str() {
                s.push('/');
                s.push_str(var);
            }
            s
        })
        .collect();
    v.sort();
    v
}

#[test]
fn engine_answers_with_api_141_or_newer() {
    require_engine!();
    let out = docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    let api = out.stdout.trim();
    let (major, minor) = api.split_once('.').expect("API version like 1.41");
    let (major, minor): (u32, u32) = (major.parse().unwrap(), minor.parse().unwrap());
    assert!(
        (major, minor) >= (1, 41),
        "engine API {api} is older than 1.41"
    );
}

#[test]
fn busybox_amd64_runs_echo() {
    require_busybox_images!();
    let image = Fixtures::get().busybox_image("amd64");
    let out = docker_ok(&["run", "--rm", &image, "echo", "hello from busybox"]);
    assert_eq!(out.stdout.trim(), "hello from busybox");
    let out = docker_ok(&[
        "run",
        "--rm",
        "--user",
        "nobody",
        &image,
        "sh",
        "-c",
        "id -u; touch /tmp/x && echo ok",
    ]);
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["65534", "ok"]
    );
}

#[test]
fn busybox_engine_images_say_their_architecture() {
    require_busybox_images!();
    let f = Fixtures::get();
    for (tag, want) in [
        ("amd64", "amd64/"),
        ("arm64", "arm64/v8"),
        ("armv7", "arm/v7"),
    ] {
        let out = docker_ok(&[
            "image",
            "inspect",
            "-f",
            "{{.Architecture}}/{{.Variant}}",
            &f.busybox_image(tag),
        ]);
        assert_eq!(out.stdout.trim(), want, "busybox:{tag}");
    }
}

#[test]
fn busybox_arm64_runs_in_the_engine_under_binfmt() {
    require_busybox_images!();
    require_binfmt_arm64!();
    let image = Fixtures::get().busybox_image("arm64");
    let out = docker_ok(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        &image,
        "uname",
        "-m",
    ]);
    assert_eq!(out.stdout.trim(), "aarch64");
}

/// Reads `bin/busybox` for one platform out of the OCI layout.
fn busybox_binary_from_layout(layout: &std::path::Path, arch: &str) -> Vec<u8> {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let json = |digest: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(blob(digest)).unwrap()).unwrap()
    };
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let index = json(top["manifests"][0]["digest"].as_str().unwrap());
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} in the busybox index"));
    let manifest = json(entry["digest"].as_str().unwrap());
    let layer =
        std::fs::File::open(blob(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("bin/busybox") {
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            return bytes;
        }
    }
    panic!("bin/busybox missing in the {arch} layer");
}

#[test]
fn arm64_busybox_from_the_layout_runs_under_qemu_user() {
    let qemu = require_qemu_aarch64!();
    let layout = require!(Fixtures::get().busybox_oci());
    let dir = TestDir::new(&[]);
    let bin = dir.write("busybox", busybox_binary_from_layout(&layout, "arm64"));
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = run_ok(Command::new(qemu).arg(&bin).args(["uname", "-m"]));
    assert_eq!(out.stdout.trim(), "aarch64");
}

#[test]
fn registry_starts_stops_and_restarts() {
    let mut reg = require_registry!();
    assert_eq!(registry::http_status(reg.port(), "/v2/"), Ok(200));
    assert!(reg.is_running());
    reg.stop();
    assert!(!reg.is_running());
    assert!(
        registry::http_status(reg.port(), "/v2/").is_err(),
        "a stopped registry must not answer"
    );
    reg.restart().expect("restart");
    assert_eq!(registry::http_status(reg.port(), "/v2/"), Ok(200));
    let port = reg.port();
    drop(reg);
    assert!(
        registry::http_status(port, "/v2/").is_err(),
        "drop must stop the registry"
    );
}

#[test]
fn busybox_push_lands_as_a_three_platform_index() {
    require_skopeo!();
    let reg = require_registry!();
    let reference = push_fixture_busybox(&reg).expect("push busybox");
    let index = skopeo_inspect_raw(&reference).expect("inspect");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        platforms_of(&index),
        ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    );
    // and the storage survives a restart
    let mut reg = reg;
    reg.restart().unwrap();
    assert_eq!(
        platforms_of(&skopeo_inspect_raw(&reference).unwrap()).len(),
        3
    );
}

#[test]
fn engine_pulls_busybox_from_the_loopback_registry() {
    require_engine!();
    require_skopeo!();
    let reg = require_registry!();
    let reference = push_fixture_busybox(&reg).expect("push busybox");
    docker_ok(&["pull", "-q", "--platform", "linux/amd64", &reference]);
    let out = docker_ok(&["run", "--rm", &reference, "echo", "pulled"]);
    let _ = docker(["image", "rm", "-f", &reference]).output();
    assert_eq!(out.stdout.trim(), "pulled");
}

#[test]
fn builder_has_go_and_the_cross_compilers() {
    let builder = require_builder!();
    let out = docker_ok(&[
        "run",
        "--rm",
        &builder,
        "sh",
        "-c",
        "go version && aarch64-linux-gnu-gcc --version && arm-linux-gnueabihf-gcc --version && make --version",
    ]);
    assert!(out.stdout.contains("go version go1."), "{}", out.stdout);
    assert!(
        out.stdout.contains("aarch64-linux-gnu-gcc"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("arm-linux-gnueabihf-gcc"),
        "{}",
        out.stdout
    );
}

#[test]
fn builder_cross_compiles_hello_c_for_arm64_and_it_runs_under_qemu() {
    let builder = require_builder!();
    let qemu = require_qemu_aarch64!();
    let out_dir = TestDir::new(&[]);
    let src = samples_dir().join("hello-c");
    let mount_src = format!("{}:/src:ro", src.display());
    let mount_out = format!("{}:/out", out_dir.path().display());
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &mount_src,
        "-v",
        &mount_out,
        &builder,
        "sh",
        "-c",
        "cp -r /src /b && make -C /b CC=aarch64-linux-gnu-gcc && cp /b/hello /out/hello",
    ]);
    let out = run_ok(Command::new(qemu).arg(out_dir.join("hello")));
    assert_eq!(out.stdout.trim(), "hello-c Linux/aarch64 (built for arm64)");
}

#[test]
fn testdir_writes_nested_files() {
    let d = TestDir::new(&[("Dockerfile", "FROM scratch\n"), ("src/a/b.txt", "b")]);
    assert_eq!(d.read("Dockerfile"), "FROM scratch\n");
    assert_eq!(d.read("src/a/b.txt"), "b");
    let p = d.path().to_path_buf();
    drop(d);
    assert!(!p.exists(), "TestDir is removed on drop");
}

#[test]
fn xplat_binary_runs() {
    let out = run_ok(xplat().arg("--version"));
    assert!(out.stdout.starts_with("xplat "), "{}", out.stdout);
}

#[test]
fn samples_are_where_tests_look() {
    for f in [
        "goping/main.go",
        "goping/go.mod",
        "goping/Dockerfile",
        "hello-c/hello.c",
        "hello-c/Makefile",
        "hello-c/Dockerfile",
    ] {
        assert!(samples_dir().join(f).is_file(), "missing sample file {f}");
    }
}
