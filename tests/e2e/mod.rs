//! Issue 5 end to end, through the real `xplat` binary: `xplat build --push` of the
//! goping (scratch final) and hello-c (busybox final from the loopback registry) samples
//! for linux/amd64 and linux/arm64, checked with skopeo, `docker pull`/`run` and
//! qemu-aarch64-static; the other outputs; and faults and bad input.

mod cache;
mod faults;
mod push;
pub(crate) mod templates;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{samples_dir, CmdOutput, TestDir};

/// `xplat build` with a private Docker config (no host credentials), `--progress json`,
/// in `cwd`, with `envs` added.
pub fn xplat_build(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> CmdOutput {
    let docker_config = cwd.join(".docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let mut cmd = crate::support::xplat();
    cmd.current_dir(cwd)
        .env("DOCKER_CONFIG", &docker_config)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("SOURCE_DATE_EPOCH")
        .env("NO_COLOR", "1")
        .args(["build", "--progress", "json"])
        .args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run xplat").into()
}

/// Panics with both outputs unless the command exited 0.
pub fn ok(out: CmdOutput) -> CmdOutput {
    assert_eq!(
        out.code,
        Some(0),
        "xplat failed\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    out
}

/// A sample's context folder (read in place, never copied).
pub fn sample(name: &str) -> String {
    samples_dir().join(name).display().to_string()
}

/// The `--progress json` events of one kind, from stderr.
pub fn events(out: &CmdOutput, kind: &str) -> Vec<serde_json::Value> {
    out.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}

/// Blob bytes uploaded, from the `blob` events.
pub fn uploaded_bytes(out: &CmdOutput) -> u64 {
    events(out, "blob")
        .iter()
        .map(|e| e["uploaded"].as_u64().unwrap())
        .sum()
}

/// `os/arch` of every manifest of an index document.
pub fn platforms(index: &serde_json::Value) -> Vec<String> {
    index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

/// The config of `reference` for linux/`arch`, read by skopeo.
pub fn skopeo_config(reference: &str, arch: &str) -> serde_json::Value {
    let out = skopeo(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        &format!("docker://{reference}"),
    ]);
    serde_json::from_str(&out.stdout).unwrap()
}

/// `skopeo ARGS`, which must succeed.
pub fn skopeo(args: &[&str]) -> CmdOutput {
    crate::support::run_ok(Command::new("skopeo").args(args))
}

/// Whether the registry holds a manifest under `reference` (skopeo answers).
pub fn manifest_exists(reference: &str) -> bool {
    Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Copies the linux/`arch` image of `reference` to an OCI layout and extracts `path` from
/// its layers (last layer wins) into `dest`.
pub fn extract_from_registry(reference: &str, arch: &str, path: &str, dest: &Path) -> PathBuf {
    let layout = dest.join(format!("layout-{arch}"));
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--override-os",
        "linux",
        "--override-arch",
        arch,
        &format!("docker://{reference}"),
        &format!("oci:{}:x", layout.display()),
    ]);
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| {
        let d = d.as_str().unwrap().strip_prefix("sha256:").unwrap();
        layout.join("blobs/sha256").join(d)
    };
    let index = read(&layout.join("index.json"));
    let manifest = read(&blob(&index["manifests"][0]["digest"]));
    let out = dest.join(format!(
        "{arch}-{}",
        path.trim_start_matches('/').replace('/', "_")
    ));
    let want = path.trim_start_matches('/');
    for layer in manifest["layers"].as_array().unwrap() {
        let f = std::fs::File::open(blob(&layer["digest"])).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for entry in ar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name.trim_start_matches("./") == want {
                entry.unpack(&out).unwrap();
            }
        }
    }
    assert!(out.is_file(), "{path} not found in {reference} ({arch})");
    out
}

/// A build context: a scratch final stage copying one file from the context (no RUN,
/// nothing runs in the engine), optionally with `big` bytes of incompressible data.
pub fn scratch_context(big: usize) -> TestDir {
    let d = TestDir::new(&[(
        "Dockerfile",
        "FROM scratch\nCOPY hello.txt /hello.txt\nCOPY big.bin /big.bin\nCMD [\"/hello\"]\n",
    )]);
    d.write("hello.txt", "hello\n");
    // xorshift: incompressible, so the layer is as large as the file.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(big);
    while data.len() < big {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(big);
    d.write("big.bin", data);
    d
}
