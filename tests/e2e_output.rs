//! End to end for assembled final stages and every output, against a real `docker-registry`
//! on loopback, skopeo as the independent reader, and the real engine for `--load`.
//! Planned with the real planner; nothing here needs the executor (the final stages have no
//! RUN and copy from the context or a registry base image).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Mutex;

use xplat::assemble::{
    images_for_targets, AssembleEnv, Bases, LayerCache, NoStages, RegistryBases,
};
use xplat::context::BuildContext;
use xplat::oci::{BlobSource, ImageIndex, IndexFormat, LayerOptions};
use xplat::output::{deliver, OutputOptions};
use xplat::plan::{plan, Mode, PlanOptions};
use xplat::platform::{Catalog, Platform};
use xplat::registry::{ClientOptions, PushEvent, RegistryClient};

use crate::support::{
    docker_ok, push_fixture_busybox, require, require_engine, require_registry, require_skopeo,
    skopeo_inspect_raw, TestDir,
};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}
fn arm64() -> Platform {
    Platform::new("linux", "arm64", "")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions::default()).unwrap()
}

/// Plans `dir`'s Dockerfile for amd64+arm64 and assembles every target.
async fn build(
    dir: &TestDir,
    created: Option<i64>,
    work: &std::path::Path,
) -> Result<ImageIndex, String> {
    let df_path = dir.join("Dockerfile");
    let ctx = BuildContext::open(dir.path(), &df_path).map_err(|e| e.to_string())?;
    let df =
        xplat::dockerfile::parse(&ctx.read_dockerfile().unwrap()).map_err(|e| e.to_string())?;
    let opts = PlanOptions {
        targets: vec![amd64(), arm64()],
        build_platform: amd64(),
        build_args: BTreeMap::new(),
        target_stage: None,
        ..Default::default()
    };
    let p = plan(&df, &opts, &Catalog::embedded()).map_err(|e| e.to_string())?;
    assert!(
        p.jobs
            .iter()
            .all(|j| xplat::assemble::can_assemble(&j.steps)),
        "{:?}",
        p.jobs
    );
    assert!(p.jobs.iter().any(|j| j.mode == Mode::Assembled));
    let client = client();
    let resolver = RegistryBases { client: &client };
    let bases = Bases::new(&resolver, Some(&client), None);
    let layers = LayerCache::new(
        None,
        work,
        LayerOptions {
            source_date_epoch: created,
            ..LayerOptions::default()
        },
    );
    let env = AssembleEnv {
        context: Some(&ctx),
        bases: &bases,
        stage_files: &NoStages,
        created,
        layers: &layers,
        work_dir: work,
        format: IndexFormat::Oci,
        reporter: &xplat::progress::Silent,
    };
    images_for_targets(&p, &env, &BTreeMap::new())
        .await
        .map_err(|e| e.to_string())
}

fn scratch_app() -> TestDir {
    let d = TestDir::new(&[
        (
            "Dockerfile",
            "FROM scratch\nCOPY hello.txt /etc/hello.txt\nCOPY bin/ /bin/\nENV GREETING=PONG\nEXPOSE 8080\nENTRYPOINT [\"/bin/app\"]\n",
        ),
        ("hello.txt", "hello\n"),
        ("bin/app", "not really a binary\n"),
    ]);
    std::fs::set_permissions(d.join("bin/app"), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn push_opts(tag: &str) -> OutputOptions {
    OutputOptions {
        tags: vec![tag.to_string()],
        push: true,
        ..OutputOptions::default()
    }
}

#[test]
fn scratch_final_stage_pushes_an_index_of_exactly_the_two_platforms_and_repushes_nothing() {
    let reg = require_registry!();
    require_skopeo!();
    let dir = scratch_app();
    let work = tempfile::tempdir().unwrap();
    let tag = reg.reference("app:1.0");
    let meta = work.path().join("meta.json");
    let events = Mutex::new(Vec::<PushEvent>::new());
    let on = |e: &PushEvent| events.lock().unwrap().push(e.clone());
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    let mut opts = push_opts(&tag);
    opts.metadata_file = Some(meta.clone());
    let first = rt
        .block_on(deliver(&index, &opts, &client(), None, work.path(), &on))
        .unwrap();
    assert_eq!(first.pushed.len(), 1);
    assert!(first.pushed[0].1.bytes_uploaded > 0);
    assert_eq!(first.pushed[0].1.index_digest, index.digest().to_string());

    // skopeo reads back an OCI index with exactly those two platforms.
    let raw = skopeo_inspect_raw(&tag).unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let plats: Vec<String> = raw["manifests"]
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
    assert_eq!(plats, ["linux/amd64", "linux/arm64"]);
    // The arm64 manifest's config says arm64.
    let arm = skopeo_config(&tag, "arm64");
    assert_eq!(arm["architecture"], "arm64");
    assert_eq!(arm["config"]["Entrypoint"][0], "/bin/app");
    // BuildKit's scratch default PATH comes first, then the stage's ENV (issue 10).
    assert_eq!(
        arm["config"]["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GREETING=PONG"
        ])
    );
    assert_eq!(arm["config"]["WorkingDir"], "/");

    // The metadata file names the index and every platform's manifest and config.
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["index_digest"], index.digest().to_string());
    assert_eq!(m["platforms"].as_array().unwrap().len(), 2);
    assert_eq!(m["platforms"][1]["digest"], raw["manifests"][1]["digest"]);

    // A second identical build and push: same digests (SOURCE_DATE_EPOCH), zero blob bytes.
    let work2 = tempfile::tempdir().unwrap();
    let again = rt.block_on(build(&dir, Some(0), work2.path())).unwrap();
    assert_eq!(
        again.digest(),
        index.digest(),
        "two cold builds give the same index"
    );
    events.lock().unwrap().clear();
    let second = rt
        .block_on(deliver(
            &again,
            &push_opts(&tag),
            &client(),
            None,
            work2.path(),
            &on,
        ))
        .unwrap();
    assert_eq!(second.pushed[0].1.bytes_uploaded, 0);
    assert_eq!(second.pushed[0].1.blobs_uploaded, 0);
    let ev = events.lock().unwrap();
    assert!(
        !ev.iter()
            .any(|e| matches!(e, PushEvent::BlobUploaded { .. })),
        "{ev:?}"
    );
    assert!(ev
        .iter()
        .any(|e| matches!(e, PushEvent::BlobSkipped { .. })));
}

/// The config of one platform of `tag`, through skopeo.
fn skopeo_config(tag: &str, arch: &str) -> serde_json::Value {
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--config",
            "--tls-verify=false",
            "--override-os",
            "linux",
            "--override-arch",
            arch,
        ])
        .arg(format!("docker://{tag}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn busybox_app(base: &str) -> TestDir {
    let d = TestDir::new(&[
        (
            "Dockerfile",
            &format!("FROM {base}\nCOPY hello.sh /usr/local/bin/hello\nCMD [\"hello\"]\n"),
        ),
        ("hello.sh", "#!/bin/sh\necho PONG from $(uname -m)\n"),
    ]);
    std::fs::set_permissions(d.join("hello.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn registry_base_is_resolved_per_platform_and_its_layers_are_mounted_not_downloaded() {
    let reg = require_registry!();
    require_skopeo!();
    let base = match push_fixture_busybox(&reg) {
        Ok(b) => b,
        Err(why) => return crate::support::skip(&why),
    };
    let dir = busybox_app(&base);
    let work = tempfile::tempdir().unwrap();
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    for (p, image) in index.images() {
        let l = image.layers();
        assert_eq!(l.len(), 2, "{p:?}: base layer + COPY layer");
        assert!(
            matches!(l[0].source(), BlobSource::Registry { .. }),
            "base layer stays in the registry"
        );
        assert_eq!(image.config().architecture, p.architecture);
    }
    assert_ne!(
        index.images()[0].1.layers()[0].digest(),
        index.images()[1].1.layers()[0].digest()
    );
    let tag = reg.reference("hello:1.0");
    let done = rt
        .block_on(deliver(
            &index,
            &push_opts(&tag),
            &client(),
            None,
            work.path(),
            &|_| {},
        ))
        .unwrap();
    let s = &done.pushed[0].1;
    assert_eq!(
        s.blobs_mounted, 2,
        "both base layers mounted from busybox: {s:?}"
    );
    let arm = skopeo_config(&tag, "arm64");
    assert_eq!(arm["architecture"], "arm64");
    assert_eq!(arm["config"]["Cmd"][0], "hello");
    assert!(
        !raw_has_unknown(&tag),
        "no unknown/unknown attestation entries"
    );
}

fn raw_has_unknown(tag: &str) -> bool {
    let raw = skopeo_inspect_raw(tag).unwrap();
    raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["platform"]["os"] == "unknown")
}

#[test]
fn oci_layout_is_read_by_skopeo_and_load_gives_a_runnable_image() {
    let reg = require_registry!();
    require_skopeo!();
    require_engine!();
    let base = match push_fixture_busybox(&reg) {
        Ok(b) => b,
        Err(why) => return crate::support::skip(&why),
    };
    let dir = busybox_app(&base);
    let work = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    let engine = rt
        .block_on(xplat::engine::DockerEngine::connect_from_process_env())
        .unwrap();
    let layout = out.path().join("layout");
    let tag = "xplat-test/e2e-load:1.0";
    let opts = OutputOptions {
        tags: vec![tag.to_string()],
        oci_dest: Some(layout.clone()),
        load: true,
        ..OutputOptions::default()
    };
    let load = xplat::output::LoadTarget {
        engine: &engine,
        fallback_tag: "xplat-out/e2e:latest".into(),
    };
    let done = rt
        .block_on(deliver(
            &index,
            &opts,
            &client(),
            Some(&load),
            work.path(),
            &|_| {},
        ))
        .unwrap();
    assert_eq!(done.layouts, std::slice::from_ref(&layout));
    assert!(done.hint.is_none());
    // skopeo copies the layout (both platforms) into the registry.
    let copied = reg.reference("copied:1.0");
    let st = std::process::Command::new("skopeo")
        .args(["copy", "--all", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1.0", layout.display()))
        .arg(format!("docker://{copied}"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let raw = skopeo_inspect_raw(&copied).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    // The loaded image runs.
    let run = docker_ok(&["run", "--rm", tag]);
    assert!(run.stdout.contains("PONG from x86_64"), "{}", run.stdout);
    let _ = docker_ok(&["rmi", tag]);
}

#[test]
fn no_output_flag_writes_the_default_layout_and_says_so() {
    let dir = scratch_app();
    let work = tempfile::tempdir().unwrap();
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    let dest = work.path().join("xplat-out/app");
    let opts = OutputOptions {
        default_dir: Some(dest.clone()),
        ..OutputOptions::default()
    };
    let done = rt
        .block_on(deliver(
            &index,
            &opts,
            &client(),
            None,
            work.path(),
            &|_| {},
        ))
        .unwrap();
    assert!(done.hint.as_deref().unwrap().contains("--push"));
    let read = xplat::oci::layout::read_layout(&dest).unwrap();
    assert_eq!(read.indexes.len(), 1);
    assert_eq!(read.manifests.len(), 2);
    let shown = rt
        .block_on(xplat::output::inspect(
            &format!("oci:{}", dest.display()),
            &client(),
        ))
        .unwrap();
    assert_eq!(shown.digest, index.digest().to_string());
    assert_eq!(shown.images.len(), 2);
    assert_eq!(shown.images[1].platform, "linux/arm64");
}

#[test]
fn a_base_without_the_target_platform_names_the_platforms_it_has() {
    let reg = require_registry!();
    require_skopeo!();
    let base = match push_fixture_busybox(&reg) {
        Ok(b) => b,
        Err(why) => return crate::support::skip(&why),
    };
    let rt = rt();
    let err = rt
        .block_on(xplat::ops::resolve::resolve_in_registry(
            &client(),
            &base,
            &Platform::new("linux", "s390x", ""),
        ))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s390x") && err.contains("arm64") && err.contains("amd64"),
        "{err}"
    );
}

#[test]
fn push_faults_leave_no_index_and_a_rerun_completes() {
    let mut reg = require_registry!();
    require_skopeo!();
    let dir = scratch_app();
    // A layer big enough that the push is still running when the registry dies.
    let big: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    dir.write("bin/big", &big);
    let work = tempfile::tempdir().unwrap();
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    let tag = reg.reference("faulty:1.0");
    let c = RegistryClient::new(ClientOptions {
        retry: xplat::registry::RetryPolicy {
            attempts: 2,
            initial_delay: std::time::Duration::from_millis(50),
            max_delay: std::time::Duration::from_millis(100),
        },
        ..ClientOptions::default()
    })
    .unwrap();
    let started = std::sync::atomic::AtomicBool::new(false);
    let on = |e: &PushEvent| {
        if matches!(
            e,
            PushEvent::BlobProgress { .. } | PushEvent::BlobUploaded { .. }
        ) {
            started.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let result = std::thread::scope(|s| {
        let h = s.spawn(|| {
            rt.block_on(deliver(
                &index,
                &push_opts(&tag),
                &c,
                None,
                work.path(),
                &on,
            ))
        });
        while !started.load(std::sync::atomic::Ordering::SeqCst) && !h.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        reg.stop();
        h.join().unwrap()
    });
    let err = result
        .expect_err("a push to a registry that died must fail")
        .to_string();
    assert!(err.contains("pushing"), "{err}");
    reg.restart().unwrap();
    assert!(
        skopeo_inspect_raw(&tag).is_err(),
        "no index after a failed push"
    );
    let done = rt
        .block_on(deliver(
            &index,
            &push_opts(&tag),
            &client(),
            None,
            work.path(),
            &|_| {},
        ))
        .unwrap();
    let s = &done.pushed[0].1;
    assert!(
        s.blobs_skipped > 0
            || s.bytes_uploaded
                < index
                    .images()
                    .iter()
                    .flat_map(|(_, i)| i.layers())
                    .map(|l| l.size())
                    .sum::<u64>(),
        "{s:?}"
    );
    assert_eq!(
        skopeo_inspect_raw(&tag).unwrap()["manifests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn bad_targets_fail_clearly_without_an_index() {
    let dir = scratch_app();
    let work = tempfile::tempdir().unwrap();
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    let bad_tag = rt
        .block_on(deliver(
            &index,
            &push_opts("127.0.0.1:5000/App:bad tag"),
            &client(),
            None,
            work.path(),
            &|_| {},
        ))
        .unwrap_err()
        .to_string();
    assert!(bad_tag.contains("invalid tag"), "{bad_tag}");
    let fast = RegistryClient::new(ClientOptions {
        retry: xplat::registry::RetryPolicy {
            attempts: 1,
            ..Default::default()
        },
        ..ClientOptions::default()
    })
    .unwrap();
    // Nothing listens on port 1.
    let unreachable = rt
        .block_on(deliver(
            &index,
            &push_opts("127.0.0.1:1/app:1.0"),
            &fast,
            None,
            work.path(),
            &|_| {},
        ))
        .unwrap_err()
        .to_string();
    assert!(unreachable.contains("127.0.0.1:1"), "{unreachable}");
}

#[test]
fn xplat_inspect_shows_a_pushed_index_and_a_layout() {
    let reg = require_registry!();
    let dir = scratch_app();
    let work = tempfile::tempdir().unwrap();
    let rt = rt();
    let index = rt.block_on(build(&dir, Some(0), work.path())).unwrap();
    let tag = reg.reference("shown:1.0");
    let layout = work.path().join("layout.tar");
    let mut opts = push_opts(&tag);
    opts.oci_dest = Some(layout.clone());
    rt.block_on(deliver(
        &index,
        &opts,
        &client(),
        None,
        work.path(),
        &|_| {},
    ))
    .unwrap();
    let text = crate::support::run_ok(crate::support::xplat().args(["inspect", &tag])).stdout;
    assert!(text.contains(&index.digest().to_string()), "{text}");
    assert!(
        text.contains("linux/arm64") && text.contains("8080/tcp"),
        "{text}"
    );
    let raw =
        crate::support::run_ok(crate::support::xplat().args(["inspect", "--raw", &tag])).stdout;
    assert_eq!(
        raw.as_bytes(),
        &index.blob().bytes()[..],
        "--raw prints the exact bytes"
    );
    let from_layout = crate::support::run_ok(crate::support::xplat().args([
        "inspect",
        "--json",
        &format!("oci:{}:1.0", layout.display()),
    ]))
    .stdout;
    let v: serde_json::Value = serde_json::from_str(&from_layout).unwrap();
    assert_eq!(v["digest"], index.digest().to_string());
    assert_eq!(v["images"][0]["platform"], "linux/amd64");
    let missing = crate::support::xplat()
        .args(["inspect", &reg.reference("nothing:here")])
        .output()
        .unwrap();
    assert_ne!(missing.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nothing"));
}
