//! What xplat builds with `oci`: the same inputs give the same bytes and digests twice, every
//! document passes `validate`, and layouts and archives read back to what was written.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use xplat::oci::config::{ContainerConfig, Empty, Healthcheck};
use xplat::oci::docker_archive::{read_docker_save, write_docker_archive};
use xplat::oci::layout::{read_layout, write_layout, write_layout_tar, LayoutRef};
use xplat::oci::validate::{validate, validate_image, validate_index, DocumentKind};
use xplat::oci::{
    Digest, History, ImageConfig, ImageIndex, IndexFormat, LayerBlob, LayerEntry, LayerOptions,
    OciError, OciImage,
};
use xplat::platform::Platform;

const EPOCH: i64 = 1_700_000_000;

fn opts() -> LayerOptions {
    LayerOptions {
        source_date_epoch: Some(EPOCH),
        ..LayerOptions::default()
    }
}

/// A scratch-based image for `p`: one layer with the "binary", one with config files.
fn image_for(p: &Platform, format: IndexFormat) -> OciImage {
    let app = LayerBlob::build(
        &[LayerEntry::file(
            "/app",
            format!("binary for {}", p.architecture).into_bytes(),
            0o755,
        )
        .modified_at(2_000_000_000)],
        &opts(),
    )
    .unwrap();
    let etc = LayerBlob::build(
        &[
            LayerEntry::dir("/etc", 0o755),
            LayerEntry::file("/etc/passwd", &b"app:x:1000:1000::/:/app\n"[..], 0o644),
            LayerEntry::file("/etc/secret", &b"s"[..], 0o600).owned_by(1000, 1000),
        ],
        &opts(),
    )
    .unwrap();
    let mut cfg = ImageConfig::for_platform(p, Some(EPOCH));
    let mut ports = BTreeMap::new();
    ports.insert("8080/tcp".to_string(), Empty {});
    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.source".to_string(),
        "https://example.invalid/app".to_string(),
    );
    cfg.config = Some(ContainerConfig {
        user: Some("1000".into()),
        exposed_ports: Some(ports),
        env: Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ]),
        entrypoint: Some(vec!["/app".into()]),
        cmd: Some(vec!["--serve".into()]),
        working_dir: Some("/".into()),
        labels: Some(labels),
        stop_signal: Some("SIGTERM".into()),
        healthcheck: Some(Healthcheck {
            test: Some(vec!["CMD".into(), "/app".into(), "health".into()]),
            interval: Some(30_000_000_000),
            retries: Some(3),
            ..Healthcheck::default()
        }),
        ..ContainerConfig::default()
    });
    cfg.history = vec![
        History::instruction("COPY /out/app /app # buildkit", Some(EPOCH), false),
        History::instruction("EXPOSE 8080", Some(EPOCH), true),
        History::instruction("COPY etc /etc # buildkit", Some(EPOCH), false),
    ];
    OciImage::new(cfg, vec![app, etc], format).unwrap()
}

fn index(format: IndexFormat) -> ImageIndex {
    let targets = [
        Platform::new("linux", "amd64", ""),
        Platform::new("linux", "arm64", ""),
        Platform::new("linux", "arm", "v7"),
    ];
    ImageIndex::new(
        targets
            .iter()
            .map(|p| (p.clone(), image_for(p, format)))
            .collect(),
        format,
    )
    .unwrap()
}

fn dir_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_inputs_give_the_same_bytes_and_digests_twice() {
    for format in [IndexFormat::Oci, IndexFormat::Docker] {
        let (a, b) = (index(format), index(format));
        assert_eq!(a.blob(), b.blob(), "{format:?} index bytes");
        for ((_, x), (_, y)) in a.images().iter().zip(b.images()) {
            assert_eq!(x.manifest_blob(), y.manifest_blob());
            assert_eq!(x.config_blob(), y.config_blob());
            assert_eq!(x.layers(), y.layers());
        }
        let refs = [LayoutRef::parse("reg.example:5000/app:1.0")];
        let ta = write_layout_tar(Vec::new(), &a, &refs).unwrap();
        let tb = write_layout_tar(Vec::new(), &b, &refs).unwrap();
        assert_eq!(Digest::of(&ta), Digest::of(&tb), "{format:?} layout tar");
        let tmp = tempfile::tempdir().unwrap();
        write_layout(&tmp.path().join("a"), &a, &refs).unwrap();
        write_layout(&tmp.path().join("b"), &b, &refs).unwrap();
        assert_eq!(
            dir_bytes(&tmp.path().join("a")),
            dir_bytes(&tmp.path().join("b"))
        );
        println!("{format:?} index digest (stable): {}", a.digest());
    }
}

#[test]
fn gzip_output_is_pinned() {
    // Pins the deflate backend and level: a change of flate2 backend (feature unification),
    // zlib-rs version or level changes these bytes and every layer digest we publish.
    let entries = [LayerEntry::file(
        "hello.txt",
        "hello, world\n".repeat(100).into_bytes(),
        0o644,
    )];
    let blob = LayerBlob::build(&entries, &LayerOptions::default()).unwrap();
    assert_eq!(
        blob.diff_id().to_string(),
        "sha256:b4bbbe1a3915ab7fa46a323a5c0e441a5dad9a9d25b0446fa2dc11c0f2db7ed6"
    );
    assert_eq!(
        blob.digest().to_string(),
        "sha256:d9bc6e13a2a0763fa5d8b33847c31dcd5f46f06b507f10316984bed0f1c2f144"
    );
}

#[test]
fn everything_built_passes_validate() {
    let mut docs = 0;
    for format in [IndexFormat::Oci, IndexFormat::Docker] {
        let idx = index(format);
        validate_index(&idx).unwrap();
        validate(DocumentKind::Index, idx.blob().bytes()).unwrap();
        for (_, img) in idx.images() {
            validate_image(img).unwrap();
            validate(DocumentKind::Manifest, img.manifest_blob().bytes()).unwrap();
            validate(DocumentKind::Config, img.config_blob().bytes()).unwrap();
            let d = serde_json::to_vec(&img.descriptor()).unwrap();
            validate(DocumentKind::Descriptor, &d).unwrap();
            docs += 3;
        }
        docs += 1;
    }
    println!("oci documents built and validated: {docs}");
}

#[test]
fn documents_have_the_expected_shape() {
    let idx = index(IndexFormat::Oci);
    let v: serde_json::Value = serde_json::from_slice(idx.blob().bytes()).unwrap();
    assert_eq!(v["mediaType"], "application/vnd.oci.image.index.v1+json");
    let plats: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"].to_string())
        .collect();
    assert_eq!(
        plats,
        [
            r#"{"architecture":"amd64","os":"linux"}"#,
            r#"{"architecture":"arm64","os":"linux"}"#,
            r#"{"architecture":"arm","os":"linux","variant":"v7"}"#
        ],
        "order = given order; empty variant omitted"
    );
    let (_, arm) = &idx.images()[2];
    let cfg: serde_json::Value = serde_json::from_slice(arm.config_blob().bytes()).unwrap();
    assert_eq!(
        (cfg["architecture"].as_str(), cfg["variant"].as_str()),
        (Some("arm"), Some("v7"))
    );
    assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    assert_eq!(cfg["history"][1]["empty_layer"], true);
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    let m: serde_json::Value = serde_json::from_slice(arm.manifest_blob().bytes()).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    let docker = index(IndexFormat::Docker);
    let (_, img) = &docker.images()[0];
    let m: serde_json::Value = serde_json::from_slice(img.manifest_blob().bytes()).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        docker.document().media_type.as_deref(),
        Some("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    // Layer blobs are the same bytes in both families; only the documents differ.
    assert_eq!(
        img.layers()[0].digest(),
        idx.images()[0].1.layers()[0].digest()
    );
    assert_ne!(img.digest(), idx.images()[0].1.digest());
}

#[test]
fn families_are_never_mixed_and_platforms_must_match() {
    let amd = Platform::new("linux", "amd64", "");
    let docker_img = image_for(&amd, IndexFormat::Docker);
    let r = ImageIndex::new(vec![(amd.clone(), docker_img)], IndexFormat::Oci);
    assert!(matches!(r, Err(OciError::MixedFamilies { .. })), "{r:?}");
    let arm = Platform::new("linux", "arm64", "");
    let r = ImageIndex::new(
        vec![(arm, image_for(&amd, IndexFormat::Oci))],
        IndexFormat::Oci,
    );
    assert!(matches!(r, Err(OciError::PlatformMismatch { .. })), "{r:?}");
    // arm64 with v8 in the index matches a config without a variant.
    let arm64 = Platform::new("linux", "arm64", "");
    let img = image_for(&arm64, IndexFormat::Oci);
    assert!(ImageIndex::new(
        vec![(Platform::new("linux", "arm64", "v8"), img)],
        IndexFormat::Oci
    )
    .is_ok());
    // The same matcher as everywhere (Platform::matches): linux/arm is arm/v7, not arm/v6.
    let arm = Platform::new("linux", "arm", "");
    let v7 = image_for(&Platform::new("linux", "arm", "v7"), IndexFormat::Oci);
    assert!(ImageIndex::new(vec![(arm.clone(), v7)], IndexFormat::Oci).is_ok());
    let v6 = image_for(&Platform::new("linux", "arm", "v6"), IndexFormat::Oci);
    let r = ImageIndex::new(vec![(arm, v6)], IndexFormat::Oci);
    assert!(
        matches!(&r, Err(OciError::PlatformMismatch { config, platform })
            if config == "linux/arm/v6" && platform == "linux/arm"),
        "{r:?}"
    );
}

#[test]
fn with_config_and_with_layer_return_new_values() {
    let p = Platform::new("linux", "amd64", "");
    let img = image_for(&p, IndexFormat::Oci);
    let mut cfg = img.config().clone();
    cfg.config.as_mut().unwrap().cmd = Some(vec!["--other".into()]);
    let changed = img.with_config(cfg).unwrap();
    assert_ne!(changed.digest(), img.digest());
    assert_eq!(changed.layers(), img.layers());
    assert_eq!(
        img.config().config.as_ref().unwrap().cmd.as_deref(),
        Some(&["--serve".to_string()][..])
    );
    let layer = LayerBlob::build(&[LayerEntry::file("extra", &b"x"[..], 0o644)], &opts()).unwrap();
    let more = img
        .with_layer(
            layer.clone(),
            History::instruction("COPY extra /", Some(EPOCH), false),
        )
        .unwrap();
    assert_eq!(more.layers().len(), 3);
    assert_eq!(more.config().rootfs.diff_ids.last(), Some(&layer.diff_id()));
    validate_image(&more).unwrap();
    // A layer without its history entry is refused: Docker rejects such configs.
    let mut bad = img.config().clone();
    bad.history.push(History::instruction("RUN x", None, false));
    assert!(matches!(
        img.with_config(bad),
        Err(OciError::HistoryLayerCount { .. })
    ));
}

#[test]
fn a_layout_folder_and_tar_read_back_to_the_same_documents() {
    let idx = index(IndexFormat::Oci);
    let tmp = tempfile::tempdir().unwrap();
    let refs = [LayoutRef::parse("app:1.0")];
    assert_eq!(refs[0].name, "docker.io/library/app:1.0");
    let dir = tmp.path().join("layout");
    write_layout(&dir, &idx, &refs).unwrap();
    // Every blob hashes to its name.
    let files = dir_bytes(&dir);
    let mut blobs = 0;
    for (name, bytes) in &files {
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            assert_eq!(Digest::of(bytes).hex(), hex);
            blobs += 1;
        }
    }
    // 1 index + 3 manifests + 3 configs + 3 app layers + 1 shared etc layer.
    assert_eq!(blobs, 11);
    validate(DocumentKind::Layout, &files["oci-layout"]).unwrap();
    validate(DocumentKind::Index, &files["index.json"]).unwrap();
    let ij: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(
        ij["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/app:1.0"
    );
    assert_eq!(
        ij["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );

    let from_dir = read_layout(&dir).unwrap();
    assert_eq!(from_dir.indexes.len(), 1);
    assert_eq!(from_dir.manifests.len(), 3);
    assert_eq!(from_dir.configs.len(), 3);
    assert!(from_dir.indexes.contains_key(&idx.digest()));

    let tar_path = tmp.path().join("out.tar");
    write_layout(&tar_path, &idx, &refs).unwrap();
    let from_tar = read_layout(&tar_path).unwrap();
    assert_eq!(from_tar, from_dir);

    // A corrupted blob is caught on read.
    let victim = dir.join(idx.images()[0].1.config_blob().digest().blob_path());
    std::fs::write(&victim, b"{}").unwrap();
    assert!(matches!(
        read_layout(&dir),
        Err(OciError::DigestMismatch { .. })
    ));
}

#[test]
fn registry_only_layers_are_not_written_silently() {
    let p = Platform::new("linux", "amd64", "");
    let img = image_for(&p, IndexFormat::Oci);
    let base = img.layers()[0].clone();
    let remote = LayerBlob::from_registry(
        base.descriptor().clone(),
        base.diff_id(),
        "reg.example/base",
    )
    .unwrap();
    let mut cfg = img.config().clone();
    cfg.history.truncate(0);
    let img2 = OciImage::new(cfg, vec![remote], IndexFormat::Docker).unwrap();
    assert_eq!(img2.layers()[0].digest(), base.digest());
    validate_image(&img2).unwrap();
    let idx = ImageIndex::new(vec![(p, img2)], IndexFormat::Docker).unwrap();
    let r = write_layout_tar(Vec::new(), &idx, &[]);
    assert!(matches!(r, Err(OciError::BlobNotLocal { .. })), "{r:?}");
}

#[test]
fn a_docker_archive_reads_back_into_the_same_image() {
    let p = Platform::new("linux", "amd64", "");
    let img = image_for(&p, IndexFormat::Oci);
    let archive = write_docker_archive(Vec::new(), &[(&img, vec!["app:1.0".to_string()])]).unwrap();
    // Both the docker-archive manifest and the OCI layout are present.
    let mut names = Vec::new();
    let mut manifest_json = Vec::new();
    for e in tar::Archive::new(&archive[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().into_owned();
        if n == "manifest.json" {
            e.read_to_end(&mut manifest_json).unwrap();
        }
        names.push(n);
    }
    for must in ["manifest.json", "oci-layout", "index.json"] {
        assert!(
            names.iter().any(|n| n == must),
            "{must} missing from {names:?}"
        );
    }
    let m: serde_json::Value = serde_json::from_slice(&manifest_json).unwrap();
    assert_eq!(m[0]["RepoTags"][0], "app:1.0");
    assert_eq!(m[0]["Config"], img.config_blob().digest().blob_path());

    let tmp = tempfile::tempdir().unwrap();
    let saved = read_docker_save(&archive[..], &tmp.path().join("x")).unwrap();
    assert_eq!(saved.len(), 1);
    let back = saved[0]
        .to_oci_image(IndexFormat::Oci, &opts(), tmp.path())
        .unwrap();
    assert_eq!(
        back.digest(),
        img.digest(),
        "gzip layers are reused as they are"
    );
    // The OCI-layout half reads back as a layout too.
    let layout = xplat::oci::layout::read_layout_tar(&archive[..]).unwrap();
    assert!(layout.manifests.contains_key(&img.digest()));
}

/// Builds a tar the way Docker 20.10 (`docker save`, API 1.41) writes the legacy format.
fn legacy_save(config: &[u8], layers: &[Vec<u8>], escape: bool) -> Vec<u8> {
    fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, body: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, body).unwrap();
    }
    let mut b = tar::Builder::new(Vec::new());
    let cfg_name = format!("{}.json", Digest::of(config).hex());
    add(&mut b, &cfg_name, config);
    let mut layer_names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("{:064x}/layer.tar", i + 1);
        add(&mut b, &n, l);
        add(&mut b, &format!("{:064x}/VERSION", i + 1), b"1.0");
        layer_names.push(n);
    }
    // A repeated layer is a symlink to the first copy, as legacy saves do.
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    let link_dir = format!("{:064x}", 99);
    let target = if escape {
        "../../../etc/passwd".to_string()
    } else {
        format!("../{}", layer_names[0])
    };
    h.set_link_name(&target).unwrap();
    h.set_cksum();
    b.append_data(&mut h, format!("{link_dir}/layer.tar"), &[][..])
        .unwrap();
    layer_names.push(format!("{link_dir}/layer.tar"));
    let manifest = serde_json::json!([{ "Config": cfg_name, "RepoTags": ["old:latest"], "Layers": layer_names }]);
    add(&mut b, "manifest.json", manifest.to_string().as_bytes());
    add(&mut b, "repositories", b"{}");
    b.into_inner().unwrap()
}

fn plain_tar(entries: &[LayerEntry]) -> Vec<u8> {
    let blob = LayerBlob::build(entries, &LayerOptions::default()).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(blob.open().unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn a_legacy_docker_save_becomes_an_oci_image() {
    let l1 = plain_tar(&[LayerEntry::file("bin/busybox", &b"elf"[..], 0o755)]);
    let l2 = plain_tar(&[LayerEntry::file("etc/motd", &b"hi"[..], 0o644)]);
    let diff = |t: &[u8]| Digest::of(t);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "container": "0123", "docker_version": "20.10.24",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Hostname": "", "Labels": null},
        "rootfs": {"type": "layers", "diff_ids": [diff(&l1), diff(&l2), diff(&l1)]},
        "history": [{"created_by": "ADD a"}, {"created_by": "ADD b"}, {"created_by": "ADD a again"}]
    })
    .to_string();
    let tmp = tempfile::tempdir().unwrap();
    let archive = legacy_save(config.as_bytes(), &[l1.clone(), l2], false);
    let saved = read_docker_save(&archive[..], &tmp.path().join("x")).unwrap();
    assert_eq!(saved[0].repo_tags, ["old:latest"]);
    assert_eq!(saved[0].layers.len(), 3);
    let img = saved[0]
        .to_oci_image(IndexFormat::Docker, &opts(), tmp.path())
        .unwrap();
    assert_eq!(img.config().rootfs.diff_ids[2], diff(&l1));
    assert_eq!(
        img.config().extra["docker_version"],
        "20.10.24",
        "unknown fields kept"
    );
    validate_image(&img).unwrap();

    let bad = legacy_save(config.as_bytes(), &[l1], true);
    let r = read_docker_save(&bad[..], &tmp.path().join("y"));
    assert!(matches!(r, Err(OciError::UnsafePath { .. })), "{r:?}");
}

#[test]
fn a_zero_layer_image_builds_but_the_oracle_flags_it() {
    // image-spec: "layers SHOULD have at least one entry"; the schema says minItems 1.
    // xplat can still build such an image (a scratch stage with only metadata); the
    // oracle reports it so a caller can decide to add an empty layer.
    let p = Platform::new("linux", "amd64", "");
    let mut cfg = ImageConfig::for_platform(&p, Some(EPOCH));
    cfg.history = vec![History::instruction("CMD [\"x\"]", Some(EPOCH), true)];
    let img = OciImage::new(cfg, vec![], IndexFormat::Oci).unwrap();
    let err = validate_image(&img).unwrap_err();
    assert!(err.to_string().contains("manifest/layers"), "{err}");
}
