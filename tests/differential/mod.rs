//! The differential suite against BuildKit, xplat's yardstick: each case of [`cases`] is
//! built for each of its platforms by the engine's own BuildKit (`DOCKER_BUILDKIT=1
//! /usr/bin/docker build --platform P -t NAME`, read back with `docker save`) and by
//! xplat's `ops::build_images` (the path `xplat build` takes: engine jobs native or
//! emulated, RUN-free finals assembled; all platforms of a case in one build). Both
//! images are read the same way (layers stacked by [`compare::stack`], config document
//! parsed) and compared path by path (type, mode, owner, link target, content; never
//! times) and field by field ([`compare::CONFIG_FIELDS`]).
//!
//! Nothing else is left out: no path, no label, no field. A difference that is
//! deliberate is listed in [`known::KNOWN`] with its reason; the test prints it
//! separately and fails when it stops occurring (so the list stays true), and it fails
//! on every difference not listed.
//!
//! Run with `cargo test --test integration -- buildkit`. `XPLAT_DIFF_CASES=a,b` runs
//! only those cases (the stale check then covers only them).

mod cases;
mod compare;
mod known;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use xplat::engine::DockerEngine;
use xplat::oci::IndexFormat;
use xplat::ops::{build_images, BuildOptions, Engines, ImageOptions};
use xplat::platform::Platform;
use xplat::progress::{Event, Recorder};
use xplat::registry::{ClientOptions, RegistryClient};

use crate::support::tally::tally;
use crate::support::{docker, push_fixture_busybox, Fixtures, Registry, TestDir};
use cases::Case;
use compare::{config_view, diff_config, diff_fs, stack, ConfigView, FsSnapshot, Mismatch};
use known::Known;

/// The CLI that drives the engine's BuildKit (Debian's 20.10; see TESTING.md).
const BUILDKIT_CLI: &str = "/usr/bin/docker";

/// Repository of the images BuildKit builds here (removed at the end).
const BUILDKIT_REPO: &str = "xplat-bkdiff";

/// One image as compared.
struct Side {
    fs: FsSnapshot,
    config: ConfigView,
}

/// The compared view of an image config document (its `config` object).
fn side(layers: &[Vec<u8>], config_document: &serde_json::Value) -> Result<Side, String> {
    let fs =
        stack(layers.iter().map(Vec::as_slice)).map_err(|e| format!("reading the layers: {e}"))?;
    let mut config = config_view(&config_document["config"]);
    config.insert(
        "Platform".into(),
        serde_json::Value::String(compare::platform_of(config_document)),
    );
    Ok(Side { fs, config })
}

/// Reads a `docker save` archive of one image: its layers in order and its config.
fn read_docker_save(archive: &[u8]) -> Result<Side, String> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(|e| e.to_string())?;
        let path = path.to_string_lossy().into_owned();
        let mut buf = Vec::new();
        entry.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        files.insert(path, buf);
    }
    let file = |name: &str| {
        files
            .get(name)
            .ok_or_else(|| format!("docker save has no {name}"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(file("manifest.json")?).map_err(|e| e.to_string())?;
    let config_name = manifest[0]["Config"].as_str().unwrap_or_default();
    let config: serde_json::Value =
        serde_json::from_slice(file(config_name)?).map_err(|e| e.to_string())?;
    let layers = manifest[0]["Layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| file(l.as_str().unwrap_or_default()).cloned())
        .collect::<Result<Vec<_>, _>>()?;
    side(&layers, &config)
}

/// Output of a command, or its stderr (and stdout) as the error.
fn output(cmd: &mut Command, what: &str) -> Result<Vec<u8>, String> {
    let o = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if o.status.success() {
        Ok(o.stdout)
    } else {
        let tail = |b: &[u8]| {
            let s = String::from_utf8_lossy(b).into_owned();
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(25)..].join("\n")
        };
        Err(format!(
            "{what} failed:\n{}\n{}",
            tail(&o.stdout),
            tail(&o.stderr)
        ))
    }
}

/// The tag BuildKit's image of `case` for `platform` gets.
fn buildkit_tag(case: &str, platform: &str, run: &str) -> String {
    format!(
        "{BUILDKIT_REPO}/{case}:{run}-{}",
        platform.replace('/', "-")
    )
}

/// Builds `case` for `platform` with the engine's BuildKit and reads the image back.
fn buildkit_build(
    case: &Case,
    dir: &Path,
    secrets: &BTreeMap<String, PathBuf>,
    platform: &str,
    tag: &str,
) -> Result<Side, String> {
    let mut cmd = Command::new(BUILDKIT_CLI);
    cmd.env("DOCKER_BUILDKIT", "1").args([
        "build",
        "--progress=plain",
        "--platform",
        platform,
        "-t",
        tag,
    ]);
    for (k, v) in case.build_args {
        cmd.args(["--build-arg", &format!("{k}={v}")]);
    }
    for (id, path) in secrets {
        cmd.arg("--secret")
            .arg(format!("id={id},src={}", path.display()));
    }
    cmd.arg(dir);
    output(&mut cmd, &format!("BuildKit build for {platform}"))?;
    let saved = output(
        Command::new(BUILDKIT_CLI).args(["save", tag]),
        "docker save",
    )?;
    read_docker_save(&saved)
}

/// The `xplat.build` label of a case's build.
fn build_id(run: &str, case: &str) -> String {
    format!("bkdiff-{run}-{case}")
}

/// What the suite shares between cases.
struct Env {
    engines: Engines,
    client: RegistryClient,
    /// xplat's cache folder for this run.
    cache: tempfile::TempDir,
    run: String,
}

/// Builds `case` for all its platforms with xplat; the images in platform order, and
/// the plan's job counts (native, assembled, emulated).
async fn xplat_build(
    case: &Case,
    dir: &Path,
    secrets: &BTreeMap<String, PathBuf>,
    env: &Env,
) -> Result<(Vec<Side>, String), String> {
    let work = tempfile::Builder::new()
        .prefix("xplat-bkdiff-work-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let opts = BuildOptions {
        context_dir: dir.to_path_buf(),
        platforms: case
            .platforms
            .iter()
            .map(|p| Platform::parse(p).expect("a valid platform").normalized())
            .collect(),
        build_args: case
            .build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: secrets.clone(),
        no_cache: true,
        jobs: 2,
        build_id: Some(build_id(&env.run, case.name)),
        cache_dir: Some(env.cache.path().to_path_buf()),
        ..Default::default()
    };
    let image_opts = ImageOptions {
        format: IndexFormat::Oci,
        created: 0,
        source_date_epoch: None,
        work_dir: work.path().join("images"),
    };
    let recorder = Recorder::default();
    let built = build_images(
        &opts,
        &env.engines,
        &env.client,
        &image_opts,
        &recorder,
        &CancellationToken::new(),
    )
    .await;
    env.engines
        .settle()
        .await
        .map_err(|e| format!("removing the build's containers: {e}"))?;
    let built = built.map_err(|e| format!("xplat build failed: {}", error_chain(&e)))?;
    let modes = recorder
        .events()
        .iter()
        .find_map(|e| match e {
            Event::Plan {
                native,
                assembled,
                emulated,
                ..
            } => Some(format!(
                "native {native}, assembled {assembled}, emulated {emulated}"
            )),
            _ => None,
        })
        .unwrap_or_default();
    let index = xplat::output::deliver::materialize(&built.index, &env.client, work.path())
        .await
        .map_err(|e| format!("downloading base layers: {e}"))?;
    let mut sides = Vec::new();
    for (_, image) in index.images() {
        let mut layers = Vec::new();
        for l in image.layers() {
            let mut buf = Vec::new();
            let mut r = l
                .open()
                .map_err(|e| format!("opening a layer of xplat's image: {e}"))?;
            r.read_to_end(&mut buf)
                .map_err(|e| format!("reading a layer of xplat's image: {e}"))?;
            layers.push(buf);
        }
        let config = serde_json::to_value(image.config()).map_err(|e| e.to_string())?;
        sides.push(side(&layers, &config)?);
    }
    Ok((sides, modes))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        s.push_str(&format!(": {c}"));
        next = c.source();
    }
    s
}

/// The outcome of one case-platform.
struct Outcome {
    case: &'static str,
    platform: &'static str,
    /// Unlisted differences (or a build error).
    failures: Vec<String>,
    /// Listed differences that showed: (key, the difference with its reason).
    known_seen: Vec<(String, String)>,
}

/// Sorts the mismatches of one case-platform into listed and unlisted ones.
fn judge(case: &'static str, platform: &'static str, mismatches: &[Mismatch]) -> Outcome {
    let mut out = Outcome {
        case,
        platform,
        failures: Vec::new(),
        known_seen: Vec::new(),
    };
    for m in mismatches {
        match known::find(case, platform, &m.key) {
            Some(k) => out.known_seen.push((
                m.key.clone(),
                format!("{case} {platform}: {m}\n      reason: {}", k.reason),
            )),
            None => out.failures.push(m.to_string()),
        }
    }
    out
}

/// The listed differences that did not occur on a case-platform they cover which ran.
fn stale(known: &[Known], outcomes: &[Outcome]) -> Vec<String> {
    let mut out = Vec::new();
    for k in known {
        for o in outcomes
            .iter()
            .filter(|o| o.case == k.case && k.applies_to(o.platform))
        {
            if !o.known_seen.iter().any(|(key, _)| key == k.key) {
                out.push(format!(
                    "{} {} {}: listed as a deliberate difference ({}) but it no longer \
                     occurs: remove it from tests/differential/known.rs",
                    k.case, o.platform, k.key, k.reason
                ));
            }
        }
    }
    out
}

/// Images, volumes and folders to remove at the end, even when the test panics.
struct Cleanup {
    buildkit_tags: Vec<String>,
    /// The `xplat.build` ids of xplat's builds.
    xplat_builds: Vec<String>,
    /// The cache volumes the cases' cache mounts use.
    cache_volumes: BTreeSet<String>,
    volumes_before: BTreeSet<String>,
}

/// The engine volumes behind the cache mounts of `case` (named by id, or target, and
/// platform, as xplat names them): only these are removed, never a volume another test
/// running at the same time made.
fn cache_volumes(case: &Case) -> BTreeSet<String> {
    use xplat::dockerfile::{Instruction, MountType};
    let df = xplat::dockerfile::parse(case.dockerfile).expect("the case parses");
    let ids: Vec<String> = df
        .stages
        .iter()
        .flat_map(|s| &s.instructions)
        .filter_map(|i| match &i.node {
            Instruction::Run(r) => Some(r.mounts.clone()),
            _ => None,
        })
        .flatten()
        .filter(|m| m.kind == MountType::Cache)
        .filter_map(|m| m.id.or(m.target))
        .collect();
    ids.iter()
        .flat_map(|id| {
            case.platforms.iter().map(move |p| {
                let p = Platform::parse(p).expect("a valid platform").normalized();
                xplat::exec::run::cache_volume_name(id, &p.to_string())
            })
        })
        .collect()
}

fn volumes() -> BTreeSet<String> {
    docker(["volume", "ls", "-q"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for t in &self.buildkit_tags {
            let _ = docker(["rmi", "-f", t]).output();
        }
        // xplat's committed images carry `xplat.build=<id>`: children first, so retry
        // until a round removes nothing.
        let mut left: Vec<String> = Vec::new();
        for b in &self.xplat_builds {
            let filter = format!("label=xplat.build={b}");
            let out = docker(["images", "-a", "-q", "--no-trunc", "--filter", &filter])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            left.extend(out.lines().map(str::to_string));
        }
        left.sort();
        left.dedup();
        while !left.is_empty() {
            let before = left.len();
            left.retain(
                |id| !matches!(docker(["rmi", "-f", id]).output(), Ok(o) if o.status.success()),
            );
            if left.len() == before {
                eprintln!("buildkit differential: could not remove images {left:?}");
                break;
            }
        }
        // The cases' cache volumes xplat made during the suite.
        let made: BTreeSet<String> = volumes()
            .difference(&self.volumes_before)
            .cloned()
            .collect();
        for v in made.intersection(&self.cache_volumes) {
            match docker(["volume", "rm", v]).output() {
                Ok(o) if o.status.success() => {}
                _ => eprintln!("buildkit differential: could not remove volume {v}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkit_differential_xplat_vs_engine_buildkit() {
    let f = Fixtures::get();
    for check in [
        f.busybox_images(),
        f.binfmt_arm64(),
        f.registry_bin().map(drop),
        f.skopeo().map(drop),
        f.busybox_oci().map(drop),
    ] {
        if let Err(why) = check {
            return crate::support::skip(&why);
        }
    }
    if !Path::new(BUILDKIT_CLI).is_file() {
        return crate::support::skip(&format!("{BUILDKIT_CLI} (Debian's docker CLI) is missing"));
    }
    let registry = Registry::start().expect("start the loopback registry");
    push_fixture_busybox(&registry).expect("push the busybox fixture");
    let engine = DockerEngine::connect_from_process_env()
        .await
        .expect("connect to the engine");
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );
    let env = Env {
        engines: Engines::single(engine),
        client: RegistryClient::new(ClientOptions::default()).expect("a registry client"),
        cache: tempfile::Builder::new()
            .prefix("xplat-bkdiff-cache-")
            .tempdir()
            .unwrap(),
        run: run.clone(),
    };
    let mut cleanup = Cleanup {
        buildkit_tags: Vec::new(),
        xplat_builds: Vec::new(),
        cache_volumes: BTreeSet::new(),
        volumes_before: volumes(),
    };
    let only: Option<Vec<String>> = std::env::var("XPLAT_DIFF_CASES")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let all = cases::all();
    assert!(all.len() >= 25, "the suite has {} Dockerfiles", all.len());
    let chosen: Vec<&Case> = all
        .iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.name)))
        .collect();
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for case in &chosen {
        let t0 = Instant::now();
        let dir = TestDir::new(case.files);
        let text = case.dockerfile.replace("@REGISTRY@", &registry.host());
        dir.write("Dockerfile", &text);
        (case.setup)(&dir);
        // Secrets live outside the context.
        let secret_dir = TestDir::new(&[]);
        let secrets: BTreeMap<String, PathBuf> = case
            .secrets
            .iter()
            .map(|(id, content)| (id.to_string(), secret_dir.write(id, content)))
            .collect();
        let tags: Vec<String> = case
            .platforms
            .iter()
            .map(|p| buildkit_tag(case.name, p, &run))
            .collect();
        cleanup.buildkit_tags.extend(tags.iter().cloned());
        cleanup.xplat_builds.push(build_id(&run, case.name));
        cleanup.cache_volumes.extend(cache_volumes(case));
        // BuildKit (one platform after the other) beside xplat (all platforms at once):
        // two builds at a time at most.
        let bk = {
            let c: Case = **case;
            let (dir, secrets, tags) = (dir.path().to_path_buf(), secrets.clone(), tags.clone());
            tokio::task::spawn_blocking(move || {
                c.platforms
                    .iter()
                    .zip(&tags)
                    .map(|(p, t)| buildkit_build(&c, &dir, &secrets, p, t))
                    .collect::<Vec<_>>()
            })
        };
        let xp = xplat_build(case, dir.path(), &secrets, &env).await;
        let bk = bk.await.expect("the BuildKit builds ran");
        // Neither builder writes into the build context (a `rw` bind's writes are discarded).
        let context_changed: Vec<String> = case
            .files
            .iter()
            .filter(|(path, content)| {
                std::fs::read(dir.join(path)).ok().as_deref() != Some(content.as_bytes())
            })
            .map(|(path, _)| format!("the build context's {path} changed"))
            .collect();
        let modes = match &xp {
            Ok((_, m)) => m.clone(),
            Err(_) => String::new(),
        };
        for (i, platform) in case.platforms.iter().enumerate() {
            let outcome = match (&bk[i], &xp) {
                (Err(e), _) => Outcome {
                    case: case.name,
                    platform,
                    failures: vec![e.clone()],
                    known_seen: Vec::new(),
                },
                (_, Err(e)) => Outcome {
                    case: case.name,
                    platform,
                    failures: vec![e.clone()],
                    known_seen: Vec::new(),
                },
                (Ok(b), Ok((x, _))) => {
                    let x = &x[i];
                    let mut m = diff_fs(&b.fs, &x.fs);
                    m.extend(diff_config(&b.config, &x.config));
                    judge(case.name, platform, &m)
                }
            };
            let mut outcome = outcome;
            outcome.failures.extend(context_changed.iter().cloned());
            outcomes.push(outcome);
        }
        let bad = outcomes
            .iter()
            .rev()
            .take(case.platforms.len())
            .filter(|o| !o.failures.is_empty())
            .count();
        tally!(
            "buildkit differential {:<36} {} ({:.1}s; xplat jobs: {modes})",
            case.name,
            if bad == 0 {
                "ok".to_string()
            } else {
                format!("{bad} DIFFERING")
            },
            t0.elapsed().as_secs_f64(),
        );
    }
    let stale = stale(known::KNOWN, &outcomes);
    let identical = outcomes
        .iter()
        .filter(|o| o.failures.is_empty() && o.known_seen.is_empty())
        .count();
    let only_known = outcomes
        .iter()
        .filter(|o| o.failures.is_empty() && !o.known_seen.is_empty())
        .count();
    tally!(
        "buildkit differential: {identical}/{} identical ({} Dockerfiles, {:.0}s)",
        outcomes.len(),
        chosen.len(),
        started.elapsed().as_secs_f64()
    );
    if only_known > 0 {
        tally!(
            "buildkit differential: {only_known} differing only by listed deliberate differences:"
        );
        for o in &outcomes {
            for (_, k) in &o.known_seen {
                tally!("  {k}");
            }
        }
    }
    let mut report: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.failures.is_empty())
        .map(|o| format!("{} {}:\n  {}", o.case, o.platform, o.failures.join("\n  ")))
        .collect();
    report.extend(stale);
    drop(cleanup);
    drop(registry);
    assert!(
        report.is_empty(),
        "differences from BuildKit:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_cache_volumes_of_a_case_are_named_by_id_or_target_and_platform() {
    let all = cases::all();
    let case = all.iter().find(|c| c.name == "mount-cache").unwrap();
    let names = cache_volumes(case);
    assert_eq!(names.len(), 3 * case.platforms.len(), "{names:?}");
    assert!(names.contains(&xplat::exec::run::cache_volume_name("/c2", "linux/arm/v7")));
}

#[test]
fn a_listed_difference_is_stale_on_each_platform_it_no_longer_occurs_on() {
    let k = [Known {
        case: "c",
        platforms: &[],
        key: "fs:/x",
        reason: "r",
    }];
    let seen = |platform, keys: &[&str]| Outcome {
        case: "c",
        platform,
        failures: Vec::new(),
        known_seen: keys
            .iter()
            .map(|k| (k.to_string(), String::new()))
            .collect(),
    };
    let outcomes = [seen("linux/amd64", &["fs:/x"]), seen("linux/arm64", &[])];
    let s = stale(&k, &outcomes);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].starts_with("c linux/arm64 fs:/x"), "{s:?}");
    assert!(stale(&k, &outcomes[..1]).is_empty());
}
