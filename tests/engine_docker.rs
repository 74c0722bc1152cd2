//! The engine module against the real Docker engine. Every test acquires the engine
//! through `require_busybox_engine!` (tests/support), which prints `SKIPPED: <why>`
//! and returns when there is none, and removes every container, image and volume it
//! creates.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use xplat::engine::{
    tar_body, ContainerConfig as ImageConfig, ContainerId, DockerEngine, Engine, EngineConfig,
    EngineError, ImageLookup, MountSpec, OutputLine, OutputStream, PathKind, PathLookup, RunSpec,
    CACHE_KEY_LABEL, MANAGED_LABEL,
};
use xplat::oci::docker_archive::read_docker_save;
use xplat::platform::Platform;

use crate::support::{require, require_busybox_engine};

const BUSYBOX: &str = "xplat-test/busybox:amd64";

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn argv(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn sh(script: &str) -> Vec<String> {
    argv(&["/bin/sh", "-c", script])
}

/// Collects output lines.
#[derive(Default)]
struct Captured(Mutex<Vec<OutputLine>>);

impl Captured {
    fn sink(&self) -> impl Fn(OutputLine) + Send + Sync + '_ {
        move |l| self.0.lock().unwrap().push(l)
    }
    fn texts(&self, stream: OutputStream) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.clone())
            .collect()
    }
}

/// Creates a container for `spec`, runs it, removes it; returns (exit code, captured output).
async fn run_step(engine: &DockerEngine, spec: &RunSpec) -> (i64, Captured, ContainerId) {
    let (code, out, id) = run_kept(engine, spec).await;
    engine.remove_container(&id).await.expect("remove");
    (code, out, id)
}

/// [`run_step`], keeping the stopped container.
async fn run_kept(engine: &DockerEngine, spec: &RunSpec) -> (i64, Captured, ContainerId) {
    let id = engine.create_container(spec).await.expect("create");
    let out = Captured::default();
    let code = {
        let sink = out.sink();
        engine
            .run_container(&id, &sink, &CancellationToken::new())
            .await
            .expect("run")
    };
    (code, out, id)
}

fn busybox(cmd: Vec<String>) -> RunSpec {
    RunSpec {
        image: BUSYBOX.into(),
        platform: Some(Platform::new("linux", "amd64", "")),
        cmd,
        env: argv(&["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
        ..Default::default()
    }
}

/// A tar with one file `dir/name` (parents not included) with the given mode and owner.
fn one_file_tar(path: &str, body: &[u8], mode: u32, uid: u64, gid: u64) -> Bytes {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path(path).unwrap();
    h.set_size(body.len() as u64);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, body).unwrap();
    Bytes::from(b.into_inner().unwrap())
}

async fn collect(mut s: futures::stream::BoxStream<'_, xplat::engine::Result<Bytes>>) -> Vec<u8> {
    let mut all = Vec::new();
    while let Some(chunk) = s.next().await {
        all.extend_from_slice(&chunk.expect("stream chunk"));
    }
    all
}

#[tokio::test]
async fn engine_platform_is_normalized_and_api_is_recent() {
    let engine = require_busybox_engine!();
    let p = engine.platform();
    assert_eq!(p.os, "linux");
    assert!(
        !["x86_64", "aarch64", ""].contains(&p.architecture.as_str()),
        "{p:?}"
    );
    let (major, minor) = engine.api_version().split_once('.').unwrap();
    assert!((major.parse::<u32>().unwrap(), minor.parse::<u32>().unwrap()) >= (1, 41));
}

#[tokio::test]
async fn run_captures_stdout_stderr_and_exit_codes() {
    let engine = require_busybox_engine!();
    let (code, out, id) = run_step(
        &engine,
        &busybox(sh("echo one; echo two >&2; printf 'no newline'")),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(out.texts(OutputStream::Stdout), vec!["one", "no newline"]);
    assert_eq!(out.texts(OutputStream::Stderr), vec!["two"]);
    assert!(
        !engine.container_exists(&id).await.unwrap(),
        "container left after success"
    );

    let (code, out, id) = run_step(&engine, &busybox(sh("echo failing; exit 3"))).await;
    assert_eq!(code, 3);
    assert_eq!(out.texts(OutputStream::Stdout), vec!["failing"]);
    assert!(
        !engine.container_exists(&id).await.unwrap(),
        "container left after failure"
    );
    assert!(engine.live_containers().is_empty());
}

#[tokio::test]
async fn env_user_workdir_and_build_args_are_honoured() {
    let engine = require_busybox_engine!();
    let mut spec = busybox(sh("echo \"$FOO|$VERSION|$SHADOWED\"; id -u; id -g; pwd"));
    spec.env.push("FOO=bar baz".into());
    spec.env.push("SHADOWED=from-env".into());
    spec.build_args = BTreeMap::from([
        ("VERSION".to_string(), "1.0 'q'".to_string()),
        ("SHADOWED".to_string(), "from-arg".to_string()),
    ]);
    spec.user = Some("1234:5678".into());
    spec.workdir = Some("/tmp".into());
    let (code, out, _) = run_step(&engine, &spec).await;
    assert_eq!(code, 0, "{:?}", out.texts(OutputStream::Stderr));
    assert_eq!(
        out.texts(OutputStream::Stdout),
        // The planner passes an ARG only when it was set after any ENV of its name, so
        // the build arg wins (BuildKit's order).
        vec!["bar baz|1.0 'q'|from-arg", "1234", "5678", "/tmp"]
    );
}

#[tokio::test]
async fn put_archive_commit_then_run_sees_file_mode_and_owner_and_get_archive_returns_it() {
    let engine = require_busybox_engine!();
    // A container that only receives files.
    let mut spec = busybox(Vec::new());
    spec.cmd.clear();
    let id = engine.create_container(&spec).await.unwrap();
    let tar = one_file_tar("data/hello.txt", b"hello xplat\n", 0o640, 1000, 2000);
    engine.put_archive(&id, "/", tar_body(tar)).await.unwrap();
    let base = match engine.inspect_image(BUSYBOX).await.unwrap() {
        ImageLookup::Found(i) => i,
        ImageLookup::Missing => unreachable!(),
    };
    let mut config = base.config.clone();
    config.cmd = Some(argv(&["cat", "/data/hello.txt"]));
    let image = engine.commit(&id, &config).await.unwrap();
    engine.remove_container(&id).await.unwrap();

    let mut run = busybox(sh(
        "stat -c '%a %u %g' /data/hello.txt; stat -c '%a %u' /data; cat /data/hello.txt",
    ));
    run.image = image.clone();
    let (code, out, _) = run_step(&engine, &run).await;
    assert_eq!(code, 0, "{:?}", out.texts(OutputStream::Stderr));
    assert_eq!(
        out.texts(OutputStream::Stdout),
        vec!["640 1000 2000", "755 0", "hello xplat"]
    );

    // get_archive from a (never started) container of the committed image.
    let mut reader = busybox(Vec::new());
    reader.image = image.clone();
    reader.cmd.clear();
    let rid = engine.create_container(&reader).await.unwrap();
    let bytes = collect(engine.get_archive(&rid, "/data/hello.txt")).await;
    engine.remove_container(&rid).await.unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut entries: Vec<(String, u32, u64, String)> = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut body = String::new();
        e.read_to_string(&mut body).unwrap();
        let h = e.header();
        entries.push((
            e.path().unwrap().display().to_string(),
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            body,
        ));
    }
    assert_eq!(
        entries,
        vec![(
            "hello.txt".to_string(),
            0o640,
            1000,
            "hello xplat\n".to_string()
        )]
    );

    let missing =
        collect_err(engine.get_archive(&ContainerId("no-such-container-xplat".into()), "/x")).await;
    assert!(
        matches!(missing, Some(EngineError::GetArchive { .. })),
        "{missing:?}"
    );
    engine.remove_image(&image, true).await.unwrap();
}

async fn collect_err(
    mut s: futures::stream::BoxStream<'_, xplat::engine::Result<Bytes>>,
) -> Option<EngineError> {
    while let Some(chunk) = s.next().await {
        if let Err(e) = chunk {
            return Some(e);
        }
    }
    None
}

#[tokio::test]
async fn commit_config_is_exactly_what_was_asked_and_found_by_label() {
    let engine = require_busybox_engine!();
    let base = match engine.inspect_image(BUSYBOX).await.unwrap() {
        ImageLookup::Found(i) => i,
        ImageLookup::Missing => unreachable!(),
    };
    let key = unique("key");
    let mut spec = busybox(sh("echo built > /built.txt"));
    spec.env.push("KEEP=1".into());
    spec.build_args = BTreeMap::from([("LEAKY_ARG".to_string(), "secret-ish".to_string())]);
    let id = engine.create_container(&spec).await.unwrap();
    let out = Captured::default();
    let sink = out.sink();
    assert_eq!(
        engine
            .run_container(&id, &sink, &CancellationToken::new())
            .await
            .unwrap(),
        0
    );

    let mut want = base.config.clone();
    want.env = Some(spec.env.clone());
    want.cmd = Some(argv(&["/bin/echo", "hi"]));
    want.working_dir = Some("/srv".into());
    want.user = Some("nobody".into());
    want.exposed_ports
        .get_or_insert_with(Default::default)
        .insert("8080/tcp".into(), Default::default());
    let labels = want.labels.get_or_insert_with(Default::default);
    labels.insert("org.example".into(), "yes".into());
    labels.insert(CACHE_KEY_LABEL.into(), key.clone());
    let image = engine.commit(&id, &want).await.unwrap();
    engine.remove_container(&id).await.unwrap();

    let got = match engine.inspect_image(&image).await.unwrap() {
        ImageLookup::Found(i) => i,
        ImageLookup::Missing => panic!("committed image missing"),
    };
    let mut expected: ImageConfig = want.clone();
    expected
        .labels
        .get_or_insert_with(Default::default)
        .insert(MANAGED_LABEL.into(), "true".into());
    assert_eq!(got.config, expected);
    assert!(!got
        .config
        .env
        .iter()
        .flatten()
        .any(|e| e.starts_with("LEAKY_ARG")));
    assert_eq!(got.diff_ids.len(), base.diff_ids.len() + 1);

    match engine
        .find_image_by_label(CACHE_KEY_LABEL, &key)
        .await
        .unwrap()
    {
        ImageLookup::Found(i) => assert_eq!(i.id, got.id),
        ImageLookup::Missing => panic!("not found by label"),
    }
    assert_eq!(
        engine
            .find_image_by_label(CACHE_KEY_LABEL, &unique("absent"))
            .await
            .unwrap(),
        ImageLookup::Missing
    );

    // Tag, export, remove, load back, remove.
    let tag = format!("{}:t1", unique("xplat-test/engine-tag"));
    engine.tag_image(&image, &tag).await.unwrap();
    let saved = collect(engine.export_image(&tag)).await;
    let names: Vec<String> = tar::Archive::new(&saved[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");
    engine.remove_image(&tag, true).await.unwrap();
    engine.remove_image(&image, true).await.unwrap();
    assert_eq!(
        engine.inspect_image(&tag).await.unwrap(),
        ImageLookup::Missing
    );
    let body = futures::stream::iter(vec![Ok(Bytes::from(saved))]).boxed();
    let loaded = engine.load_image(body).await.unwrap();
    assert!(loaded.iter().any(|l| l.contains(&tag)), "{loaded:?}");
    assert!(matches!(
        engine.inspect_image(&tag).await.unwrap(),
        ImageLookup::Found(_)
    ));
    engine.remove_image(&tag, true).await.unwrap();
}

#[tokio::test]
async fn a_named_cache_volume_persists_across_containers() {
    let engine = require_busybox_engine!();
    let volume = unique("xplat-test-cache");
    let mount = MountSpec::Cache {
        volume: volume.clone(),
        target: "/cache".into(),
    };
    let mut write = busybox(sh(
        "echo kept > /cache/f; head -c 4096 /dev/zero > /cache/zeros",
    ));
    write.mounts.push(mount.clone());
    assert_eq!(run_step(&engine, &write).await.0, 0);
    let mut read = busybox(sh("cat /cache/f"));
    read.mounts.push(mount);
    let (code, out, _) = run_step(&engine, &read).await;
    assert_eq!(code, 0);
    assert_eq!(out.texts(OutputStream::Stdout), vec!["kept"]);

    let volumes = engine.list_cache_volumes().await.unwrap();
    let ours = volumes
        .iter()
        .find(|v| v.name == volume)
        .expect("cache volume listed by label");
    assert_eq!(
        ours.labels.get("xplat.cache").map(String::as_str),
        Some("true")
    );
    if let Some(size) = ours.size {
        assert!(size >= 4096, "size {size}");
    } else {
        println!(
            "NOTE: engine API {} reports no volume sizes through bollard",
            engine.api_version()
        );
    }
    engine.remove_volume(&volume).await.unwrap();
    assert!(!engine
        .list_cache_volumes()
        .await
        .unwrap()
        .iter()
        .any(|v| v.name == volume));
}

#[tokio::test]
async fn cancellation_kills_and_removes_the_running_container() {
    let engine = require_busybox_engine!();
    let id = engine
        .create_container(&busybox(sh("echo started; sleep 30")))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let out = Captured::default();
    let sink = out.sink();
    let started = Instant::now();
    let res = engine.run_container(&id, &sink, &cancel).await;
    let took = started.elapsed();
    assert!(matches!(res, Err(EngineError::Cancelled { .. })), "{res:?}");
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert!(
        !engine.container_exists(&id).await.unwrap(),
        "container survived cancellation"
    );
    assert!(engine.live_containers().is_empty());
    assert_eq!(out.texts(OutputStream::Stdout), vec!["started"]);
}

#[tokio::test]
async fn cleanup_removes_every_container_left_on_an_error_path() {
    let engine = require_busybox_engine!();
    // A failing step whose caller bails out before removing its container, and one never started.
    let failed = engine
        .create_container(&busybox(sh("exit 7")))
        .await
        .unwrap();
    let sink = |_l: OutputLine| {};
    assert_eq!(
        engine
            .run_container(&failed, &sink, &CancellationToken::new())
            .await
            .unwrap(),
        7
    );
    let idle = engine.create_container(&busybox(Vec::new())).await.unwrap();
    let mut live = engine.live_containers();
    live.sort();
    let mut want = vec![failed.clone(), idle.clone()];
    want.sort();
    assert_eq!(live, want);
    assert_eq!(engine.cleanup().await.unwrap(), 2);
    assert!(!engine.container_exists(&failed).await.unwrap());
    assert!(!engine.container_exists(&idle).await.unwrap());
    assert!(engine.live_containers().is_empty());
    let managed = engine.list_managed_containers().await.unwrap();
    assert!(!managed.contains(&failed) && !managed.contains(&idle));
}

/// A retired container goes while the caller goes on: `cleanup_unretired` (the end of a
/// successful exec) leaves its removal running and removes any other container; `cleanup`
/// (the end of the build command) waits for it.
#[tokio::test]
async fn a_retired_container_is_removed_beside_the_build_and_cleanup_waits_for_it() {
    let engine = require_busybox_engine!();
    // A running keep-alive shell, as a job's container is.
    let shell = RunSpec {
        open_stdin: true,
        ..busybox(argv(&["/bin/sh"]))
    };
    let retired = engine.create_container(&shell).await.unwrap();
    engine.start_container(&retired).await.unwrap();
    let other = engine.create_container(&busybox(Vec::new())).await.unwrap();
    let started = Instant::now();
    engine.retire_container(&retired);
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "retiring waited for the removal"
    );
    assert_eq!(engine.cleanup_unretired().await.unwrap(), 1);
    assert!(!engine.container_exists(&other).await.unwrap());
    assert!(!engine.live_containers().contains(&other));
    engine.cleanup().await.unwrap();
    assert!(!engine.container_exists(&retired).await.unwrap());
    assert!(engine.live_containers().is_empty());
    let managed = engine.list_managed_containers().await.unwrap();
    assert!(!managed.contains(&retired) && !managed.contains(&other));
}

#[tokio::test]
async fn create_failure_names_the_image_and_leaves_nothing() {
    let engine = require_busybox_engine!();
    let image = unique("xplat-test/absent");
    let err = engine
        .create_container(&busybox(sh("true")).with_image(&image))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::CreateContainer { image: i, .. } if *i == image),
        "{err}"
    );
    assert!(engine.live_containers().is_empty());
    let pull = engine
        .pull_image("127.0.0.1:9/xplat-none:1", engine.platform(), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(pull, EngineError::Pull { .. }), "{pull}");
}

trait WithImage {
    fn with_image(self, image: &str) -> Self;
}

impl WithImage for RunSpec {
    fn with_image(mut self, image: &str) -> Self {
        self.image = image.to_string();
        self
    }
}

#[tokio::test]
async fn import_rootfs_makes_an_image() {
    let engine = require_busybox_engine!();
    let reference = format!("{}:rootfs", unique("xplat-test/engine-import"));
    let tar = one_file_tar("etc/xplat-release", b"v1\n", 0o644, 0, 0);
    let platform = engine.platform().clone();
    let id = engine
        .import_rootfs(tar_body(tar), &reference, &platform)
        .await
        .unwrap();
    match engine.inspect_image(&reference).await.unwrap() {
        ImageLookup::Found(i) => {
            assert_eq!(i.id, id);
            assert_eq!(i.diff_ids.len(), 1);
            assert_eq!(i.platform.os, "linux");
        }
        ImageLookup::Missing => panic!("imported image missing"),
    }
    engine.remove_image(&reference, true).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_engine_gets_one_clear_sentence() {
    let dir = tempfile::tempdir().unwrap();
    // A socket file nobody listens on: bind, then close the listener.
    let path = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let env = HashMap::from([(
        "DOCKER_HOST".to_string(),
        format!("unix://{}", path.display()),
    )]);
    let err = DockerEngine::connect(&EngineConfig::from_env(&env).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the Docker engine at unix://{}: connection refused",
            path.display()
        )
    );

    let missing = dir.path().join("absent.sock");
    let env = HashMap::from([(
        "DOCKER_HOST".to_string(),
        format!("unix://{}", missing.display()),
    )]);
    let err = DockerEngine::connect(&EngineConfig::from_env(&env).unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the Docker engine at unix://{}: no such socket",
            missing.display()
        )
    );

    // A tcp port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = HashMap::from([("DOCKER_HOST".to_string(), format!("tcp://127.0.0.1:{port}"))]);
    let err = DockerEngine::connect(&EngineConfig::from_env(&env).unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot reach the Docker engine at tcp://127.0.0.1:{port}: connection refused"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn stat_path_tells_files_dirs_and_symlinks_apart() {
    let engine = require_busybox_engine!();
    let mut spec = busybox(Vec::new());
    spec.cmd.clear();
    let id = engine.create_container(&spec).await.unwrap();
    engine
        .put_archive(
            &id,
            "/",
            tar_body(one_file_tar("opt/tool", b"#!/bin/sh\n", 0o4755, 0, 0)),
        )
        .await
        .unwrap();
    let stat = |path: &'static str| {
        let engine = &engine;
        let id = &id;
        async move { engine.stat_path(id, path).await.unwrap() }
    };
    let found = |l: PathLookup| match l {
        PathLookup::Found(s) => s,
        PathLookup::Missing => panic!("missing"),
    };
    let tool = found(stat("/opt/tool").await);
    assert_eq!(
        (tool.name.as_str(), tool.kind, tool.mode, tool.size),
        ("tool", PathKind::File, 0o4755, 10)
    );
    let tmp = found(stat("/tmp").await);
    assert_eq!((tmp.kind, tmp.mode), (PathKind::Dir, 0o1777));
    let shell = found(stat("/bin/sh").await);
    assert_eq!(
        shell.kind,
        PathKind::Symlink {
            target: "/bin/busybox".into()
        }
    );
    assert_eq!(stat("/no/such/path").await, PathLookup::Missing);
    // Replacing a directory by a file is refused (noOverwriteDirNonDir).
    let err = engine
        .put_archive(&id, "/", tar_body(one_file_tar("tmp", b"x", 0o644, 0, 0)))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::PutArchive { .. }), "{err}");
    assert_eq!(found(stat("/tmp").await).kind, PathKind::Dir);
    engine.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn dropping_the_last_engine_handle_removes_its_containers_as_a_best_effort() {
    let observer = require_busybox_engine!();
    let engine = DockerEngine::connect_from_process_env().await.unwrap();
    let clone = engine.clone();
    let id = engine
        .create_container(&busybox(sh("sleep 30")))
        .await
        .unwrap();
    drop(engine);
    // A clone still holds the set: nothing is removed yet.
    assert!(observer.container_exists(&id).await.unwrap());
    drop(clone);
    let deadline = Instant::now() + Duration::from_secs(10);
    while observer.container_exists(&id).await.unwrap() {
        assert!(
            Instant::now() < deadline,
            "container {id} survived the drop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The entry names of the top layer of a `docker save` archive.
fn top_layer_names(saved: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let image = read_docker_save(saved, dir.path()).unwrap().remove(0);
    let top = std::fs::File::open(image.layers.last().unwrap()).unwrap();
    tar::Archive::new(top)
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// What a container made from `image` sees: every path outside /proc, /sys and /dev with
/// its type, mode, owner, size, link count (and mtime and checksum for files), minus
/// what each container gets of its own (/.dockerenv, /etc/hosts and the like).
async fn listing(engine: &DockerEngine, image: &str) -> Vec<String> {
    let script = r#"cd / && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev \) -prune -o -print | sort | while read -r f; do
  case "$f" in ./.dockerenv|./etc/hostname|./etc/hosts|./etc/resolv.conf|./etc/mtab) continue;; esac
  if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$(stat -c '%n|%F|%a|%u|%g|%s|%h|%Y' "$f")|$(md5sum < "$f")"
  else stat -c '%n|%F|%a|%u|%g|%h' "$f"; fi
done"#;
    let mut spec = busybox(sh(script));
    spec.image = image.into();
    let (code, out, _) = run_step(engine, &spec).await;
    assert_eq!(code, 0, "{:?}", out.texts(OutputStream::Stderr));
    out.texts(OutputStream::Stdout)
}

/// On fuse-overlayfs xplat commits from the container's upper directory instead of the
/// engine's tree walk: the image must be the one the engine's own commit makes, for
/// every kind of change a RUN can leave (new, changed, removed and renamed files and
/// directories, a directory replaced, hard and symbolic links, a FIFO, a device, a
/// setuid file, a name too long for a plain tar header).
#[tokio::test]
async fn a_commit_from_the_upper_directory_is_the_engines_commit() {
    let engine = require_busybox_engine!();
    if !engine.profile().commits_upper_dirs {
        let driver = &engine.profile().storage_driver;
        require!(Err::<(), _>(format!(
            "the engine's storage driver is {driver}: commits from upper directories are for fuse-overlayfs engines on this machine"
        )));
    }
    let long = "n".repeat(120);
    let script = format!(
        "set -e; mkdir -p /w/a/b; echo one > /w/a/one; ln /w/a/one /w/a/two; \
         ln -s ../one /w/a/b/link; mkfifo /w/fifo; mknod /w/null c 1 3; \
         echo s > /w/suid; chmod 4755 /w/suid; chown 7:9 /w/a/b; echo long > /w/{long}; \
         touch -d '2001-02-03 04:05:06' /w/a/one; rm /etc/group; rm -rf /usr/sbin; \
         mkdir /usr/sbin; echo new > /usr/sbin/only; mv /root /root2; chmod 600 /etc/passwd; \
         rm /bin/arch"
    );
    let (code, out, id) = run_kept(&engine, &busybox(sh(&script))).await;
    assert_eq!(code, 0, "{:?}", out.texts(OutputStream::Stderr));
    let mut want = match engine.inspect_image(BUSYBOX).await.unwrap() {
        ImageLookup::Found(i) => i.config,
        ImageLookup::Missing => unreachable!(),
    };
    want.env = Some(argv(&["PATH=/bin", "K=v"]));
    let t = Instant::now();
    let ours = engine
        .commit_from_upper(&id, &want)
        .await
        .unwrap()
        .expect("a commit from the upper directory");
    let ours_took = t.elapsed();
    let theirs = engine.commit_by_engine(&id, &want).await.unwrap();
    engine.remove_container(&id).await.unwrap();
    assert_ne!(ours, theirs, "two commits, two images");

    let (a, b) = (
        engine.inspect_image(&ours).await.unwrap(),
        engine.inspect_image(&theirs).await.unwrap(),
    );
    let (ImageLookup::Found(a), ImageLookup::Found(b)) = (a, b) else {
        panic!("both images exist");
    };
    assert_eq!(a.config, b.config, "one config from both commits");
    assert_eq!(a.diff_ids.len(), b.diff_ids.len());
    assert_eq!(
        a.diff_ids[..a.diff_ids.len() - 1],
        b.diff_ids[..b.diff_ids.len() - 1]
    );

    // The new layer holds whiteouts only of names the image has: not of those that only
    // the container had (runc's `.pivot_root` folder).
    let top = top_layer_names(&collect(engine.export_image(&ours)).await);
    assert!(top.iter().any(|n| n == "etc/.wh.group"), "{top:#?}");
    assert!(top.iter().any(|n| n == "usr/sbin/.wh..wh..opq"), "{top:#?}");
    assert!(
        top.iter()
            .all(|n| !n.contains(".pivot_root") && !n.starts_with("w/.wh.")),
        "{top:#?}"
    );
    let (ls_ours, ls_theirs) = (
        listing(&engine, &ours).await,
        listing(&engine, &theirs).await,
    );
    for id in [&ours, &theirs] {
        engine.remove_image(id, true).await.unwrap();
    }
    assert_eq!(ls_ours, ls_theirs, "one filesystem from both commits");
    let has = |prefix: &str| ls_ours.iter().any(|l| l.starts_with(prefix));
    assert!(
        has("./w/a/one|regular file|644|0|0|4|2|981173106|"),
        "{ls_ours:#?}"
    );
    assert!(has("./w/null|character special file|"), "{ls_ours:#?}");
    assert!(has("./w/fifo|fifo|"), "{ls_ours:#?}");
    assert!(has("./w/suid|regular file|4755|"), "{ls_ours:#?}");
    assert!(has("./w/a/b|directory|755|7|9|"), "{ls_ours:#?}");
    assert!(has(&format!("./w/{long}|")), "{ls_ours:#?}");
    assert!(has("./usr/sbin/only|") && !has("./etc/group") && !has("./root|") && has("./root2|"));
    assert_eq!(
        ls_ours
            .iter()
            .filter(|l| l.starts_with("./usr/sbin/"))
            .count(),
        1,
        "the replaced directory holds only its new file"
    );
    assert!(!has("./bin/arch"));
    eprintln!("commit from the upper directory: {ours_took:?}");
}
