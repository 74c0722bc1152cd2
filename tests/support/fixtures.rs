//! What the machine offers the tests, read from `$XPLAT_FIXTURES/env` (written by
//! `tests/fixtures/setup.sh`) or, when that file is absent, probed directly.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Default cache folder of the fixtures, as in `tests/fixtures/setup.sh`.
pub const DEFAULT_DIR: &str = "/var/tmp/xplat-fixtures";

/// The fixtures available on this machine. Each accessor returns `Err(why)` when
/// the thing is missing, ready for the `require!` macro.
#[derive(Debug, Clone, Default)]
pub struct Fixtures {
    /// Where the values came from (the env file, or "probe").
    pub source: String,
    /// The raw key/value pairs of the env file (or of the probe).
    pub values: BTreeMap<String, String>,
}

/// The folder of the fixtures cache (`$XPLAT_FIXTURES` or [`DEFAULT_DIR`]).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("XPLAT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// `tests/data/samples` of this repository.
pub fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/samples")
}

/// Test data collected by others (`../shared/peer`, see its PROVENANCE.md).
pub fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer")
}

/// Prints `SKIPPED: <test name>: <why>` where cargo does not capture it (straight to stderr).
///
/// Under CI (`CI=true`) or with `XPLAT_REQUIRE_FIXTURES=1` nothing may be skipped: the
/// test fails instead, so a broken `tests/fixtures/setup.sh` cannot pass CI.
pub fn skip(why: &str) {
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("?");
    if must_not_skip(&std::env::vars().collect()) {
        panic!("{name} would be SKIPPED under CI=true / XPLAT_REQUIRE_FIXTURES=1: {why}");
    }
    // A leading newline keeps the line apart from libtest's "test name ... " prefix.
    let _ = write!(std::io::stderr(), "\nSKIPPED: {name}: {why}\n");
}

/// Whether skipping is refused: `CI=true` (or `1`), or `XPLAT_REQUIRE_FIXTURES=1`.
pub fn must_not_skip(env: &BTreeMap<String, String>) -> bool {
    let on = |k: &str| env.get(k).is_some_and(|v| v == "true" || v == "1");
    on("CI") || on("XPLAT_REQUIRE_FIXTURES")
}

/// Parses `KEY=VALUE` lines; `#` comments and blank lines are ignored.
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn which(bin: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

impl Fixtures {
    /// The fixtures of this machine, read once per test binary.
    pub fn get() -> &'static Fixtures {
        static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
        FIXTURES.get_or_init(|| {
            let file = fixtures_dir().join("env");
            match std::fs::read_to_string(&file) {
                Ok(text) => Fixtures {
                    source: file.display().to_string(),
                    values: parse_env(&text),
                },
                Err(_) => Fixtures::probe(),
            }
        })
    }

    /// Finds out what is available without the env file (setup.sh not run).
    pub fn probe() -> Fixtures {
        let mut v = BTreeMap::new();
        let engine = succeeds(Command::new("docker").arg("info"));
        v.insert("ENGINE".into(), yes(engine));
        if !engine {
            v.insert("ENGINE_REASON".into(), "`docker info` failed".into());
        }
        let binfmt = |name: &str| {
            std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/{name}"))
                .map(|s| s.starts_with("enabled"))
                .unwrap_or(false)
        };
        v.insert("BINFMT_ARM64".into(), yes(binfmt("qemu-aarch64")));
        v.insert("BINFMT_ARM".into(), yes(binfmt("qemu-arm")));
        for (key, bin) in [
            ("QEMU_AARCH64", "qemu-aarch64-static"),
            ("QEMU_ARM", "qemu-arm-static"),
            ("REGISTRY_BIN", "docker-registry"),
            ("SKOPEO", "skopeo"),
        ] {
            v.insert(key.into(), which(bin).unwrap_or_default());
        }
        let image = |name: &str| {
            engine && succeeds(Command::new("docker").args(["image", "inspect", name]))
        };
        v.insert("BUILDER_IMAGE".into(), "xplat-test/builder:bookworm".into());
        v.insert("BUILDER".into(), yes(image("xplat-test/builder:bookworm")));
        v.insert("BUSYBOX_REPO".into(), "xplat-test/busybox".into());
        v.insert(
            "BUSYBOX_IMAGES".into(),
            yes(["amd64", "arm64", "armv7"]
                .iter()
                .all(|t| image(&format!("xplat-test/busybox:{t}")))),
        );
        let oci = fixtures_dir().join("busybox/oci");
        if oci.join("index.json").is_file() {
            v.insert("BUSYBOX_OCI".into(), oci.display().to_string());
        }
        Fixtures {
            source: "probe".into(),
            values: v,
        }
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    fn flag(&self, key: &str) -> bool {
        self.value(key) == Some("yes")
    }

    fn not_set_up(&self, what: &str) -> String {
        format!("{what} (per {}; run tests/fixtures/setup.sh)", self.source)
    }

    /// `Ok` when a Docker engine answers.
    pub fn engine(&self) -> Result<(), String> {
        if self.flag("ENGINE") {
            Ok(())
        } else {
            let why = self.value("ENGINE_REASON").unwrap_or("no engine");
            Err(self.not_set_up(&format!("no Docker engine: {why}")))
        }
    }

    /// `Ok` when the engine can run arm64 containers through binfmt/QEMU.
    pub fn binfmt_arm64(&self) -> Result<(), String> {
        self.engine()?;
        if self.flag("BINFMT_ARM64") {
            Ok(())
        } else {
            let why = self.value("BINFMT_REASON").unwrap_or("not registered");
            Err(self.not_set_up(&format!("binfmt for arm64 is not registered: {why}")))
        }
    }

    /// The path of `qemu-aarch64-static`.
    pub fn qemu_aarch64(&self) -> Result<PathBuf, String> {
        self.path("QEMU_AARCH64", "qemu-aarch64-static")
    }

    /// The path of Debian's `docker-registry`.
    pub fn registry_bin(&self) -> Result<PathBuf, String> {
        self.path("REGISTRY_BIN", "docker-registry")
    }

    /// The path of `skopeo`.
    pub fn skopeo(&self) -> Result<PathBuf, String> {
        self.path("SKOPEO", "skopeo")
    }

    fn path(&self, key: &str, bin: &str) -> Result<PathBuf, String> {
        self.value(key)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .ok_or_else(|| self.not_set_up(&format!("{bin} is not installed")))
    }

    /// The builder image (Debian bookworm with Go, gcc and the arm64/armhf cross gcc).
    pub fn builder_image(&self) -> Result<String, String> {
        self.engine()?;
        match (self.flag("BUILDER"), self.value("BUILDER_IMAGE")) {
            (true, Some(name)) => Ok(name.to_string()),
            _ => Err(self.not_set_up("the builder image was not built")),
        }
    }

    /// `Ok` when the engine has `xplat-test/busybox:{amd64,arm64,armv7}`.
    pub fn busybox_images(&self) -> Result<(), String> {
        self.engine()?;
        if self.flag("BUSYBOX_IMAGES") {
            Ok(())
        } else {
            Err(self.not_set_up("the busybox engine images were not loaded"))
        }
    }

    /// The engine image name of busybox for an architecture tag: `amd64`, `arm64` or `armv7`.
    pub fn busybox_image(&self, tag: &str) -> String {
        let repo = self.value("BUSYBOX_REPO").unwrap_or("xplat-test/busybox");
        format!("{repo}:{tag}")
    }

    /// The multi-platform busybox OCI image layout (amd64, arm64, arm/v7), tagged `latest`.
    pub fn busybox_oci(&self) -> Result<PathBuf, String> {
        self.value("BUSYBOX_OCI")
            .map(PathBuf::from)
            .filter(|p| p.join("index.json").is_file())
            .ok_or_else(|| self.not_set_up("the busybox OCI layout is missing"))
    }
}

#[test]
fn parse_env_reads_keys_and_skips_comments() {
    let v = parse_env("# comment\nENGINE=yes\n\nREASON=a=b c\nBAD LINE\n");
    assert_eq!(v.get("ENGINE").map(String::as_str), Some("yes"));
    assert_eq!(v.get("REASON").map(String::as_str), Some("a=b c"));
    assert_eq!(v.len(), 2);
}

#[test]
fn missing_values_give_reasons() {
    let f = Fixtures {
        source: "test".into(),
        values: parse_env("ENGINE=no\nENGINE_REASON=dockerd did not start\nBINFMT_ARM64=yes"),
    };
    let why = f.engine().unwrap_err();
    assert!(why.contains("dockerd did not start"), "{why}");
    assert!(f.binfmt_arm64().is_err(), "binfmt needs the engine too");
    assert!(f.builder_image().is_err());
    assert!(f.skopeo().unwrap_err().contains("skopeo"));
}

#[test]
fn skipping_is_refused_under_ci() {
    let env = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(must_not_skip(&env(&[("CI", "true")])));
    assert!(must_not_skip(&env(&[("XPLAT_REQUIRE_FIXTURES", "1")])));
    assert!(!must_not_skip(&env(&[("CI", "false")])));
    assert!(!must_not_skip(&env(&[])));
}
