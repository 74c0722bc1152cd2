//! Issue 9: a RUN-free stage built both ways, in the engine ([`xplat::ops::build`], what
//! `--target STAGE -t NAME` runs: every job planned into the engine, each platform's
//! result tagged there) and assembled (`xplat build`, written as an OCI layout), gives the
//! same config and the same filesystem: every path with its type, mode, owner, content and
//! link target.
//!
//! The engine side's config is the build's authoritative one ([`xplat::ops::TargetResult`]):
//! the engine's committed copy leaves VOLUMEs out on purpose (`exec/runner.rs`: an image's
//! VOLUMEs would become anonymous volumes of every later step's container).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use tokio_util::sync::CancellationToken;
use xplat::ops::BuildOptions;
use xplat::platform::Platform;
use xplat::progress::Silent;

use crate::e2e::{ok, xplat_build};
use crate::support::{connect_engine, docker, docker_ok, require, require_engine, TestDir};

/// Every step kind a RUN-free stage can have, on scratch.
const DOCKERFILE: &str = r#"FROM scratch AS users
COPY etc/ /etc/
COPY tree/ /srv/tree/

FROM scratch AS final
COPY --from=users /etc/passwd /etc/group /etc/
COPY a /a
COPY --chmod=0640 a /modes/a640
COPY --chown=7:8 a /owned/numeric
COPY --chown=app:app a /owned/by-name
COPY tree/ /t/
COPY tree/*.txt /glob/
COPY --from=users /srv/tree /from-stage/
ADD archive.tar /unpacked/
WORKDIR /work/here
ENV A=1 B="two words"
USER app
LABEL org.example.name=both-ways
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s CMD ["/a"]
ENTRYPOINT ["/a"]
CMD ["--help"]
"#;

/// One path of an image's filesystem: type, mode, owner, content or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: char,
    mode: u32,
    owner: (u64, u64),
    data: Vec<u8>,
}

/// Applies one layer tar to `fs` (no whiteouts: the stages start from scratch).
fn apply(fs: &mut BTreeMap<String, Entry>, layer: impl Read) {
    let mut ar = tar::Archive::new(layer);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let path = format!("/{}", path.trim_start_matches("./").trim_end_matches('/'));
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            _ => 'f',
        };
        let mut data = Vec::new();
        match kind {
            'l' | 'h' => {
                data = e
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default()
            }
            'f' => {
                e.read_to_end(&mut data).unwrap();
            }
            _ => {}
        }
        if path == "/" {
            continue;
        }
        let entry = Entry {
            kind,
            mode: h.mode().unwrap() & 0o7777,
            owner: (h.uid().unwrap(), h.gid().unwrap()),
            data,
        };
        fs.insert(path, entry);
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The engine image `tag`: its config and filesystem, from `docker save`.
fn engine_image(tag: &str, work: &Path) -> (Value, BTreeMap<String, Entry>) {
    let dir = work.join(tag.replace(['/', ':'], "_"));
    std::fs::create_dir_all(&dir).unwrap();
    let tar = dir.join("image.tar");
    docker_ok(&["save", "-o", &tar.display().to_string(), tag]);
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    ar.unpack(&dir).unwrap();
    let manifest = read_json(&dir.join("manifest.json"));
    let config = read_json(&dir.join(manifest[0]["Config"].as_str().unwrap()));
    let mut fs = BTreeMap::new();
    for layer in manifest[0]["Layers"].as_array().unwrap() {
        apply(
            &mut fs,
            std::fs::File::open(dir.join(layer.as_str().unwrap())).unwrap(),
        );
    }
    (config, fs)
}

/// The image of `arch` in the OCI layout `layout`: its config and filesystem.
fn layout_image(layout: &Path, arch: &str) -> (Value, BTreeMap<String, Entry>) {
    let blob = |d: &Value| {
        let d = d.as_str().unwrap().strip_prefix("sha256:").unwrap();
        layout.join("blobs/sha256").join(d)
    };
    let mut manifests: Vec<Value> = read_json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .clone();
    // An index inside the layout's index: its manifests are the platforms'.
    while let Some(i) = manifests
        .iter()
        .position(|m| m["mediaType"].as_str().unwrap_or("").contains("index"))
    {
        let inner = read_json(&blob(&manifests.remove(i)["digest"]));
        manifests.extend(inner["manifests"].as_array().unwrap().iter().cloned());
    }
    let m = manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == arch)
        .unwrap_or_else(|| panic!("no {arch} image in the layout: {manifests:?}"));
    let manifest = read_json(&blob(&m["digest"]));
    let config = read_json(&blob(&manifest["config"]["digest"]));
    let mut fs = BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let f = std::fs::File::open(blob(&layer["digest"])).unwrap();
        let gz = layer["mediaType"].as_str().unwrap().ends_with("gzip");
        if gz {
            apply(&mut fs, flate2::read::GzDecoder::new(f));
        } else {
            apply(&mut fs, f);
        }
    }
    (config, fs)
}

/// What two images' configs must agree on: the runtime config without xplat's labels, and
/// the platform.
fn comparable(config: &Value) -> Value {
    let mut c = config["config"].clone();
    if let Some(labels) = c.get_mut("Labels").and_then(Value::as_object_mut) {
        labels.retain(|k, _| !k.starts_with("xplat."));
    }
    serde_json::json!({
        "architecture": config["architecture"],
        "os": config["os"],
        "variant": config.get("variant"),
        "config": c,
    })
}

/// Removes the engine tags when dropped.
struct Tags(Vec<String>);

impl Drop for Tags {
    fn drop(&mut self) {
        for t in &self.0 {
            let _ = docker(["rmi", t]).output();
        }
    }
}

#[test]
fn a_run_free_stage_built_in_the_engine_and_assembled_is_the_same_image() {
    require_engine!();
    let dir = TestDir::new(&[
        ("Dockerfile", DOCKERFILE),
        ("a", "a file\n"),
        (
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:7:8::/home/app:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\napp:x:8:\n"),
        ("tree/one.txt", "one\n"),
        ("tree/two.txt", "two\n"),
        ("tree/sub/three.bin", "three\n"),
    ]);
    // An archive ADD unpacks.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o751);
    h.set_uid(3);
    h.set_gid(4);
    h.set_cksum();
    b.append_data(&mut h, "inner/x", &b"inner\n"[..]).unwrap();
    dir.write("archive.tar", b.into_inner().unwrap());
    let work = tempfile::tempdir().unwrap();
    let ctx = dir.path().display().to_string();
    let name = format!("xplat-test-pipeline/both-ways-{}", std::process::id());
    let tags = Tags(vec![
        format!("{name}:linux-amd64"),
        format!("{name}:linux-arm64"),
    ]);
    let both = "linux/amd64,linux/arm64";
    // In the engine: what `--target final -t NAME` runs.
    let opts = BuildOptions {
        context_dir: dir.path().to_path_buf(),
        platforms: vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        ],
        target: Some("final".into()),
        tag: Some(name.clone()),
        build_id: Some(format!("both-ways-{}", std::process::id())),
        cache_dir: Some(work.path().join("cache")),
        ..Default::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = require!(rt.block_on(connect_engine()));
    let built = rt
        .block_on(xplat::ops::build(
            &opts,
            &engine,
            &Silent,
            &CancellationToken::new(),
        ))
        .expect("the engine build");
    assert_eq!(
        built
            .targets
            .iter()
            .map(|t| t.tag.clone())
            .collect::<Vec<_>>(),
        tags.0.iter().cloned().map(Some).collect::<Vec<_>>()
    );
    // Assembled: the default, into a layout.
    let layout = work.path().join("layout");
    let out = format!("type=oci,dest={}", layout.display());
    let assembled = ok(xplat_build(
        work.path(),
        &[
            "--platform",
            both,
            "--target",
            "final",
            "--output",
            &out,
            &ctx,
        ],
        &[],
    ));
    let plan = crate::e2e::events(&assembled, "plan");
    assert_eq!(plan[0]["native"], 0, "{plan:?}");
    assert_eq!(plan[0]["emulated"], 0, "{plan:?}");
    for (i, arch) in ["amd64", "arm64"].into_iter().enumerate() {
        let target = &built.targets[i];
        let (mut engine_config, engine_fs) = engine_image(&tags.0[i], work.path());
        engine_config["config"] = serde_json::to_value(&target.config).unwrap();
        let (layout_config, layout_fs) = layout_image(&layout, arch);
        assert_eq!(
            serde_json::to_string_pretty(&comparable(&engine_config)).unwrap(),
            serde_json::to_string_pretty(&comparable(&layout_config)).unwrap(),
            "{arch}: config (engine left, assembled right)"
        );
        let paths = |fs: &BTreeMap<String, Entry>| fs.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            paths(&engine_fs),
            paths(&layout_fs),
            "{arch}: paths (engine left, assembled right)"
        );
        let differ: Vec<String> = engine_fs
            .iter()
            .filter(|(path, e)| layout_fs.get(*path) != Some(e))
            .map(|(path, e)| format!("{path}: engine {e:?}, assembled {:?}", layout_fs.get(path)))
            .collect();
        assert!(differ.is_empty(), "{arch}:\n{}", differ.join("\n"));
        assert_eq!(layout_fs["/owned/by-name"].owner, (7, 8), "{arch}");
        assert_eq!(layout_fs["/unpacked/inner/x"].mode, 0o751, "{arch}");
    }
}
