//! The compiled templates (go, go-cgo, c, rust): cross-compiled on the build machine, one
//! binary per target on scratch or a distroless-style runtime, run in the engine for
//! linux/amd64, linux/arm64 and linux/arm/v7.

use super::{build, engine_registry, inspect, inspect_base, need, run_image, stand_in_args};
use super::{CacheVolumes, Project, PLATFORMS};

/// `uname -m` of each target (what qemu-arm reports for arm/v7).
const MACHINES: [&str; 3] = ["x86_64", "aarch64", "armv7l"];

/// What every compiled template's comments promise about the final image.
fn assert_runs_as_nonroot_app(config: &serde_json::Value, platform: &str) {
    assert_eq!(config["User"], "65532:65532", "{platform}: {config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/app"]),
        "{platform}: {config}"
    );
}

#[test]
fn go_template_builds_and_runs_on_scratch_for_three_platforms() {
    let reg = need!(engine_registry());
    let args = need!(stand_in_args("go", &reg));
    let _volumes = CacheVolumes::snapshot();
    let project = Project::init(
        &[
            ("go.mod", "module example.com/hello\n\ngo 1.19\n"),
            (
                "main.go",
                "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n\t\"runtime\"\n)\n\n\
                 func main() {\n\t_, err := os.Stat(\"/etc/ssl/certs/ca-certificates.crt\")\n\
                 \tfmt.Printf(\"hello-go %s/%s uid=%d ca=%v\\n\", runtime.GOOS, runtime.GOARCH, os.Getuid(), err == nil)\n}\n",
            ),
        ],
        None,
    );
    let built = build("go", &project, &reg, &args);
    let images = inspect(&built.reference);
    for (t, goarch) in PLATFORMS.iter().zip(["amd64", "arm64", "arm"]) {
        let image = &images[t.platform];
        assert_runs_as_nonroot_app(&image.config, t.platform);
        // "two files, /app and the CA bundle, on scratch": two layers, a few MB.
        assert_eq!(image.layers.len(), 2, "{}: {:?}", t.platform, image.layers);
        assert!(
            image.size() < 5_000_000,
            "{}: {} bytes",
            t.platform,
            image.size()
        );
        let out = run_image(&built.reference, t);
        assert_eq!(
            out.trim(),
            format!("hello-go linux/{goarch} uid=65532 ca=true")
        );
    }
}

#[test]
fn go_cgo_template_links_glibc_and_runs_on_the_glibc_runtime_for_three_platforms() {
    let reg = need!(engine_registry());
    let args = need!(stand_in_args("go-cgo", &reg));
    let runtime = args
        .iter()
        .find(|(k, _)| k == "RUNTIME_IMAGE")
        .map(|(_, v)| v.clone())
        .expect("go-cgo.args names RUNTIME_IMAGE");
    let _volumes = CacheVolumes::snapshot();
    // go-cgo detects nothing of its own (a go.mod means the go template): named.
    let project = Project::init(
        &[
            ("go.mod", "module example.com/hello\n\ngo 1.19\n"),
            (
                "main.go",
                "package main\n\n// #include <gnu/libc-version.h>\nimport \"C\"\n\n\
                 import (\n\t\"fmt\"\n\t\"os\"\n\t\"runtime\"\n)\n\n\
                 func main() {\n\tfmt.Printf(\"hello-cgo %s/%s glibc %s uid=%d\\n\", runtime.GOOS, runtime.GOARCH,\n\
                 \t\tC.GoString(C.gnu_get_libc_version()), os.Getuid())\n}\n",
            ),
        ],
        Some("go-cgo"),
    );
    let built = build("go-cgo", &project, &reg, &args);
    let images = inspect(&built.reference);
    for (t, goarch) in PLATFORMS.iter().zip(["amd64", "arm64", "arm"]) {
        let image = &images[t.platform];
        assert_runs_as_nonroot_app(&image.config, t.platform);
        // "the runtime's size plus your binary's": one layer on top of the runtime's.
        let added = image.added_to(&inspect_base(&runtime, t));
        assert_eq!(added.len(), 1, "{}: {added:?}", t.platform);
        assert!(added[0] < 3_000_000, "{}: {added:?}", t.platform);
        let out = run_image(&built.reference, t);
        assert_eq!(
            out.trim(),
            format!("hello-cgo linux/{goarch} glibc 2.36 uid=65532")
        );
    }
}

#[test]
fn c_template_builds_static_binaries_on_the_static_runtime_for_three_platforms() {
    let reg = need!(engine_registry());
    let args = need!(stand_in_args("c", &reg));
    let runtime = args
        .iter()
        .find(|(k, _)| k == "RUNTIME_IMAGE")
        .map(|(_, v)| v.clone())
        .expect("c.args names RUNTIME_IMAGE");
    let project = Project::init(
        &[
            (
                "hello.c",
                "#include <stdio.h>\n#include <unistd.h>\n#include <sys/utsname.h>\n\
                 int main(void) {\n  struct utsname u;\n  uname(&u);\n\
                 printf(\"hello-c %s uid=%d ca=%d\\n\", u.machine, (int)getuid(),\n\
                 access(\"/etc/ssl/certs/ca-certificates.crt\", R_OK) == 0);\n  return 0;\n}\n",
            ),
            (
                "Makefile",
                "hello: hello.c\n\t$(CC) -O2 -o $@ $< $(LDFLAGS)\n",
            ),
        ],
        None,
    );
    // A binary the user built on their machine, newer than the source: make must not
    // take it for the target's (the template runs make -B).
    std::fs::write(
        project.dir.join("hello"),
        "#!/bin/sh\necho stale host build\n",
    )
    .unwrap();
    let built = build("c", &project, &reg, &args);
    let images = inspect(&built.reference);
    for (t, machine) in PLATFORMS.iter().zip(MACHINES) {
        let image = &images[t.platform];
        assert_runs_as_nonroot_app(&image.config, t.platform);
        // "your binary's size plus about 1 MB": one small layer on the static runtime.
        let base = inspect_base(&runtime, t);
        let added = image.added_to(&base);
        assert_eq!(added.len(), 1, "{}: {added:?}", t.platform);
        assert!(
            image.size() < 3_000_000,
            "{}: {} bytes",
            t.platform,
            image.size()
        );
        let out = run_image(&built.reference, t);
        assert_eq!(out.trim(), format!("hello-c {machine} uid=65532 ca=1"));
    }
}

#[test]
fn rust_template_cross_builds_with_debians_rustc_for_three_platforms() {
    let reg = need!(engine_registry());
    let args = need!(stand_in_args("rust", &reg));
    let _volumes = CacheVolumes::snapshot();
    let project = Project::init(
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            (
                "src/main.rs",
                "use std::net::ToSocketAddrs;\nuse std::os::unix::fs::MetadataExt;\n\n\
                 fn main() {\n    let uid = std::fs::metadata(\"/proc/self\").map(|m| m.uid()).unwrap_or(0);\n\
                 \x20   let ca = std::path::Path::new(\"/etc/ssl/certs/ca-certificates.crt\").is_file();\n\
                 \x20   let localhost = (\"localhost\", 80).to_socket_addrs().is_ok();\n\
                 \x20   println!(\"hello-rust {} uid={uid} ca={ca} localhost={localhost}\", std::env::consts::ARCH);\n}\n",
            ),
        ],
        None,
    );
    let built = build("rust", &project, &reg, &args);
    let images = inspect(&built.reference);
    for (t, arch) in PLATFORMS.iter().zip(["x86_64", "aarch64", "arm"]) {
        let image = &images[t.platform];
        assert_runs_as_nonroot_app(&image.config, t.platform);
        assert_eq!(image.layers.len(), 2, "{}: {:?}", t.platform, image.layers);
        assert!(
            image.size() < 5_000_000,
            "{}: {} bytes",
            t.platform,
            image.size()
        );
        let out = run_image(&built.reference, t);
        assert_eq!(
            out.trim(),
            format!("hello-rust {arch} uid=65532 ca=true localhost=true")
        );
    }
}

#[test]
fn rust_template_says_why_musl_cannot_build_with_debians_rustc() {
    // The musl default needs rustup, which downloads the target's standard library: not
    // possible offline. The template must say so and what works instead.
    let reg = need!(engine_registry());
    let args: Vec<(String, String)> = need!(stand_in_args("rust", &reg))
        .into_iter()
        .filter(|(k, _)| k != "RUST_LIBC")
        .collect();
    let _volumes = CacheVolumes::snapshot();
    let project = Project::init(
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("src/main.rs", "fn main() {}\n"),
        ],
        None,
    );
    let dest = project.dir.join("xplat-out/image.tar");
    let mut argv = vec![
        "--platform".to_string(),
        "linux/arm64".to_string(),
        "-o".to_string(),
        format!("type=oci,dest={}", dest.display()),
    ];
    for (k, v) in &args {
        argv.extend(["--build-arg".to_string(), format!("{k}={v}")]);
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = super::super::xplat_build(&project.dir, &argv, &[]);
    assert_ne!(
        out.code,
        Some(0),
        "musl built with Debian's rustc?\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("Debian's rustc has no musl target: use RUST_LIBC=gnu"),
        "{}",
        out.stderr
    );
    assert!(!dest.exists(), "a failed build wrote {}", dest.display());
}
