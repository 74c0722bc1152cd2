//! Issue 15: every template, written by `xplat init` into a small project of its language,
//! builds with `xplat build --push` for every platform its `xplat.toml` lists (linux/amd64,
//! linux/arm64, linux/arm/v7) on the offline stand-ins of its base images
//! (`tests/fixtures/stand_ins.sh`, pointed at by `tests/fixtures/template-args/*.args`). Each
//! platform's image then runs in the engine (arm64 and arm/v7 under binfmt/QEMU), and its
//! layers, user and entrypoint are held to what the template's comments promise.
//!
//! A missing fixture is a failure under `CI=true` (or `XPLAT_REQUIRE_FIXTURES=1`) and a
//! `SKIPPED` line elsewhere.

mod compiled;
mod interpreted;
mod promises;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{events, ok, xplat_build};
use crate::support::tally::tally;
use crate::support::{
    docker, run_ok, skip, try_run, xplat, CmdOutput, Fixtures, Registry, TestDir,
};

/// The platforms every template's `xplat.toml` lists, in its order.
pub const PLATFORMS: [Target; 3] = [
    Target {
        platform: "linux/amd64",
        arch: "amd64",
        binfmt: None,
    },
    Target {
        platform: "linux/arm64",
        arch: "arm64",
        binfmt: Some("BINFMT_ARM64"),
    },
    Target {
        platform: "linux/arm/v7",
        arch: "arm",
        binfmt: Some("BINFMT_ARM"),
    },
];

/// One target platform of the templates.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// `linux/arm/v7`.
    pub platform: &'static str,
    /// The OCI architecture.
    pub arch: &'static str,
    /// The fixtures key that says the engine runs it under QEMU (none for the host's).
    pub binfmt: Option<&'static str>,
}

/// Whether a missing fixture fails the test instead of skipping it.
pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("XPLAT_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

/// Reports a missing fixture: a panic under [`strict`], else `SKIPPED: <why>`.
pub fn missing(why: &str) {
    assert!(
        !strict(),
        "missing fixture under CI (a test that would skip fails here): {why}"
    );
    skip(why);
}

/// `Ok(v)` gives `v`; `Err(why)` fails under CI and returns from the test with SKIPPED elsewhere.
macro_rules! need {
    ($check:expr) => {
        match $check {
            Ok(v) => v,
            Err(why) => {
                $crate::e2e::templates::missing(&why);
                return;
            }
        }
    };
}
pub(crate) use need;

/// A loopback registry for one test. On drop it also removes the engine images pulled
/// from it (the engine pulls a stand-in to run a build stage on it; nothing else would
/// ever remove those).
pub struct TestRegistry(Registry);

impl std::ops::Deref for TestRegistry {
    type Target = Registry;

    fn deref(&self) -> &Registry {
        &self.0
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let prefix = format!("{}/", self.0.host());
        // Pulled by tag or by digest (then the tag is <none>): remove it by either name.
        let listed = docker([
            "images",
            "--digests",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}",
        ])
        .output();
        let Ok(listed) = listed else { return };
        for line in String::from_utf8_lossy(&listed.stdout).lines() {
            if !line.starts_with(&prefix) {
                continue;
            }
            for name in line.split(' ') {
                if !name.ends_with(":<none>") && !name.ends_with("@<none>") {
                    let _ = docker(["rmi", name]).output();
                }
            }
        }
    }
}

/// What a template test needs from the machine: an engine that runs all three platforms,
/// skopeo and a loopback registry.
pub fn engine_registry() -> Result<TestRegistry, String> {
    let f = Fixtures::get();
    f.engine()?;
    f.skopeo()?;
    for t in PLATFORMS {
        if let Some(key) = t.binfmt {
            if f.values.get(key).map(String::as_str) != Some("yes") {
                return Err(format!(
                    "the engine cannot run {} images: {key} is not registered (per {}; run tests/fixtures/setup.sh)",
                    t.platform, f.source
                ));
            }
        }
    }
    f.registry_bin()?;
    Ok(TestRegistry(
        Registry::start().expect("start the loopback registry"),
    ))
}

/// `tests/fixtures/template-args/<template>.args` as (NAME, VALUE) pairs, with `${REGISTRY}`
/// replaced by `registry`'s host after pushing the stand-in layouts the values name there,
/// and engine images (`xplat-test/...`) checked to exist.
pub fn stand_in_args(template: &str, registry: &Registry) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (name, value) in args_file(template) {
        let value = match value.strip_prefix("${REGISTRY}/") {
            Some(reference) => {
                push_stand_in(reference, registry)?;
                format!("{}/{reference}", registry.host())
            }
            None => {
                if value.starts_with("xplat-test/") {
                    let found = docker(["image", "inspect", "--format", "{{.Id}}", &value])
                        .output()
                        .is_ok_and(|o| o.status.success());
                    if !found {
                        return Err(format!(
                            "engine image {value} is missing (tests/fixtures/setup.sh makes it)"
                        ));
                    }
                }
                value
            }
        };
        out.push((name, value));
    }
    Ok(out)
}

/// The raw lines of `tests/fixtures/template-args/<template>.args`, in file order.
pub fn args_file(template: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/template-args")
        .join(format!("{template}.args"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not NAME=VALUE: {l}", path.display()));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Pushes the stand-in layout for `xplat-test/<name>:latest` (the env key `OCI_<NAME>`).
fn push_stand_in(reference: &str, registry: &Registry) -> Result<(), String> {
    let name = reference
        .strip_prefix("xplat-test/")
        .and_then(|r| r.strip_suffix(":latest"))
        .unwrap_or_else(|| panic!("stand-in references are xplat-test/NAME:latest: {reference}"));
    let key = format!("OCI_{}", name.to_uppercase().replace('-', "_"));
    let f = Fixtures::get();
    let layout = f
        .values
        .get(&key)
        .filter(|p| Path::new(p).join("index.json").is_file())
        .ok_or_else(|| {
            let why = f.values.get("STANDINS_REASON").cloned().unwrap_or_default();
            format!(
                "the {name} stand-in layout is missing ({key} per {}; run tests/fixtures/setup.sh){}",
                f.source,
                if why.is_empty() { String::new() } else { format!(": {why}") }
            )
        })?;
    try_run(
        Command::new(f.skopeo()?)
            .args(["copy", "--all", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{layout}:latest"))
            .arg(format!("docker://{}/{reference}", registry.host())),
    )
    .map(drop)
}

/// A project folder `hello/` inside a temporary folder (so `xplat init` names it `hello`).
pub struct Project {
    _root: TestDir,
    /// `<tmp>/hello`.
    pub dir: PathBuf,
}

impl Project {
    /// Writes `files` into `hello/` and runs `xplat init [--template T] hello` there.
    pub fn init(files: &[(&str, &str)], template: Option<&str>) -> Project {
        let root = TestDir::new(&[]);
        for (path, text) in files {
            root.write(&format!("hello/{path}"), text);
        }
        let mut cmd = xplat();
        cmd.current_dir(root.path()).arg("init");
        if let Some(t) = template {
            cmd.args(["--template", t]);
        }
        let out = run_ok(cmd.arg("hello"));
        let dir = root.join("hello");
        assert!(dir.join("Dockerfile").is_file(), "{}", out.stdout);
        assert!(dir.join("xplat.toml").is_file(), "{}", out.stdout);
        Project { _root: root, dir }
    }
}

/// What one `xplat build --push` of a template gave.
pub struct Built {
    /// `REGISTRY/tmpl-NAME:1`.
    pub reference: String,
}

/// `xplat build --set version=1 -t REF --push --build-arg ...` in the project folder, as a
/// user would after `xplat init` (platforms and the rest come from its xplat.toml).
pub fn build(
    template: &str,
    project: &Project,
    registry: &Registry,
    args: &[(String, String)],
) -> Built {
    let reference = registry.reference(&format!("tmpl-{template}:1"));
    let mut argv: Vec<String> = vec![
        "--set".into(),
        "version=1".into(),
        "-t".into(),
        reference.clone(),
        "--push".into(),
    ];
    for (k, v) in args {
        argv.extend(["--build-arg".into(), format!("{k}={v}")]);
    }
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let started = Instant::now();
    let out = ok(xplat_build(&project.dir, &argv, &[]));
    // Every template's comments say its build emulates nothing: the build's own plan agrees.
    let plan = &events(&out, "plan")[0];
    assert_eq!(plan["emulated"], 0, "{template}: {plan}");
    tally!(
        "template {template}: xplat build --push for {} in {:.1} s",
        PLATFORMS.map(|t| t.platform).join(","),
        started.elapsed().as_secs_f64()
    );
    Built { reference }
}

/// One platform's image in the registry: its manifest's layers and its config.
pub struct Pushed {
    /// Layer digests with their (compressed) sizes, bottom first.
    pub layers: Vec<(String, u64)>,
    /// The image config (`config` object of the config blob).
    pub config: serde_json::Value,
}

impl Pushed {
    /// The total compressed size of the layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|(_, s)| s).sum()
    }

    /// The layers on top of `base`'s, which must be a prefix of these; their sizes.
    pub fn added_to(&self, base: &Pushed) -> Vec<u64> {
        assert!(
            self.layers.len() >= base.layers.len()
                && self.layers[..base.layers.len()] == base.layers[..],
            "the base image's layers are not the final image's first layers\nbase: {:?}\nfinal: {:?}",
            base.layers,
            self.layers
        );
        self.layers[base.layers.len()..]
            .iter()
            .map(|(_, s)| *s)
            .collect()
    }
}

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let out = run_ok(Command::new("skopeo").args(args));
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("skopeo {args:?}: {e}"))
}

/// The manifests of the index at `reference`: (`os/arch[/variant]`, manifest digest).
fn index(reference: &str) -> Vec<(String, String)> {
    let index = skopeo_json(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]);
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("{reference} is not an index: {index}"))
        .iter()
        .map(|m| {
            let p = &m["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            );
            if let Some(v) = p["variant"].as_str().filter(|v| !v.is_empty()) {
                s = format!("{s}/{v}");
            }
            (s, m["digest"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The manifest and config of `repo@digest`, which must be for `t`'s architecture.
fn pushed(repo: &str, digest: &str, t: &Target) -> Pushed {
    let by_digest = format!("docker://{repo}@{digest}");
    let manifest = skopeo_json(&["inspect", "--raw", "--tls-verify=false", &by_digest]);
    let config = skopeo_json(&["inspect", "--config", "--tls-verify=false", &by_digest]);
    assert_eq!(
        config["architecture"], t.arch,
        "{by_digest} ({})",
        t.platform
    );
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect();
    Pushed {
        layers,
        config: config["config"].clone(),
    }
}

fn repository(reference: &str) -> &str {
    reference.rsplit_once(':').map(|(r, _)| r).unwrap()
}

/// Every platform's manifest and config of the image xplat pushed to `reference`, checking
/// that its index holds exactly [`PLATFORMS`], in order.
pub fn inspect(reference: &str) -> BTreeMap<&'static str, Pushed> {
    let listed = index(reference);
    let names: Vec<&str> = listed.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        PLATFORMS.map(|t| t.platform),
        "the index of {reference}"
    );
    PLATFORMS
        .iter()
        .zip(&listed)
        .map(|(t, (_, digest))| (t.platform, pushed(repository(reference), digest, t)))
        .collect()
}

/// The image for `t` in a stand-in's index at `reference` (arm64 may carry the variant v8).
pub fn inspect_base(reference: &str, t: &Target) -> Pushed {
    let listed = index(reference);
    let (_, digest) = listed
        .iter()
        .find(|(p, _)| p == t.platform || (t.arch == "arm64" && p == "linux/arm64/v8"))
        .unwrap_or_else(|| panic!("{reference} has no {} image: {listed:?}", t.platform));
    pushed(repository(reference), digest, t)
}

/// Pulls `reference` for `t` into the engine, runs it with no arguments, removes the pulled
/// tag again, and returns its standard output (it must exit 0).
pub fn run_image(reference: &str, t: &Target) -> String {
    run_ok(&mut docker([
        "pull",
        "-q",
        "--platform",
        t.platform,
        reference,
    ]));
    let out = docker(["run", "--rm", "--platform", t.platform, reference]).output();
    let _ = docker(["rmi", reference]).output();
    let out: CmdOutput = out.expect("docker run").into();
    assert_eq!(
        out.code,
        Some(0),
        "docker run {reference} ({}) failed\n--- stdout\n{}\n--- stderr\n{}",
        t.platform,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// The `RUN --mount=type=cache` volumes a test's builds create, removed when it ends (they
/// are kept between builds by design, so nothing else removes them).
pub struct CacheVolumes(Vec<String>);

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

    /// The volumes that exist now (kept on drop).
    pub fn snapshot() -> CacheVolumes {
        CacheVolumes(CacheVolumes::list())
    }

    /// The names of the cache volumes the templates' `RUN --mount=type=cache` can make,
    /// for every platform they build: only those are removed, never a volume another
    /// test running at the same time has just made.
    fn templates_own() -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path().join("Dockerfile")) else {
                continue;
            };
            for mount in text.split("--mount=type=cache,").skip(1) {
                let options = mount.split_whitespace().next().unwrap_or("");
                let field = |k: &str| {
                    options
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(k).map(str::to_string))
                };
                if let Some(id) = field("id=").or_else(|| field("target=")) {
                    ids.push(id);
                }
            }
        }
        // An id may name build args (`cargo-target-${TARGET_RUST_TRIPLE}-${RUST_LIBC}`):
        // every target's catalog values, and both of the rust template's libcs.
        let catalog = xplat::platform::Catalog::embedded();
        let mut names = Vec::new();
        for id in &ids {
            for target in &PLATFORMS {
                let platform = xplat::platform::Platform::parse(target.platform).unwrap();
                let mut vars = catalog
                    .get(&platform)
                    .map(|spec| spec.build_args(xplat::platform::ArgRole::Target))
                    .unwrap_or_default();
                for libc in ["gnu", "musl"] {
                    vars.insert("RUST_LIBC".into(), libc.into());
                    let expanded = vars
                        .iter()
                        .fold(id.clone(), |id, (k, v)| id.replace(&format!("${{{k}}}"), v));
                    for run in &PLATFORMS {
                        names.push(xplat::exec::run::cache_volume_name(&expanded, run.platform));
                    }
                }
            }
        }
        names
    }
}

impl Drop for CacheVolumes {
    fn drop(&mut self) {
        let own = CacheVolumes::templates_own();
        for v in CacheVolumes::list() {
            if !self.0.contains(&v) && own.contains(&v) {
                let _ = docker(["volume", "rm", &v]).output();
            }
        }
    }
}
