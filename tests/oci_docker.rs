//! `oci` output checked by independent tools: `docker load` runs an image xplat assembled
//! (and `docker save` of it reads back with matching diff_ids), and `skopeo` reads the OCI
//! layout. Each prints `SKIPPED: <why>` when its tool is missing.

use std::path::Path;
use std::process::Command;

use xplat::oci::docker_archive::{read_docker_save, write_docker_archive};
use xplat::oci::layout::{write_layout, LayoutRef};
use xplat::oci::{
    ContainerConfig, History, ImageConfig, ImageIndex, IndexFormat, LayerBlob, LayerEntry,
    LayerOptions, OciImage,
};
use xplat::platform::Platform;

use crate::support::{require, require_engine, require_skopeo};

fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let o = Command::new(cmd).args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Removes the test's images however the test ends.
struct RemoveImage(String);
impl Drop for RemoveImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// A one-binary amd64 image: the host's static `ldconfig` as entrypoint (Debian ships it static).
fn static_binary_image(format: IndexFormat) -> Option<OciImage> {
    let bin = Path::new("/sbin/ldconfig");
    if !bin.is_file() {
        return None;
    }
    let opts = LayerOptions {
        source_date_epoch: Some(0),
        ..LayerOptions::default()
    };
    let layer = LayerBlob::build(
        &[
            LayerEntry::host_file("/bin/tool", bin, 0o755),
            LayerEntry::dir("/tmp", 0o1777),
        ],
        &opts,
    )
    .unwrap();
    let p = Platform::new("linux", "amd64", "");
    let mut cfg = ImageConfig::for_platform(&p, Some(0));
    cfg.config = Some(ContainerConfig {
        entrypoint: Some(vec!["/bin/tool".into()]),
        cmd: Some(vec!["--version".into()]),
        env: Some(vec!["PATH=/bin".into()]),
        ..ContainerConfig::default()
    });
    cfg.history = vec![History::instruction(
        "COPY ldconfig /bin/tool",
        Some(0),
        false,
    )];
    Some(OciImage::new(cfg, vec![layer], format).unwrap())
}

#[test]
fn docker_loads_and_runs_an_assembled_image_and_saves_it_back() {
    require_engine!();
    if std::env::consts::ARCH != "x86_64" {
        crate::support::skip(&format!(
            "the test image is amd64 and this host is {}",
            std::env::consts::ARCH
        ));
        return;
    }
    let Some(img) = static_binary_image(IndexFormat::Oci) else {
        crate::support::skip("/sbin/ldconfig (a static binary) is not on this host");
        return;
    };
    let tag = format!("xplat-oci-test/load:{}", std::process::id());
    let _cleanup = RemoveImage(tag.clone());
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("load.tar");
    let bytes = write_docker_archive(Vec::new(), &[(&img, vec![tag.clone()])]).unwrap();
    std::fs::write(&archive, bytes).unwrap();

    let (ok, out, err) = run("docker", &["load", "-i", archive.to_str().unwrap()]);
    assert!(ok, "docker load failed: {out}{err}");
    let (ok, out, err) = run("docker", &["run", "--rm", &tag]);
    assert!(ok, "docker run failed: {out}{err}");
    assert!(out.contains("ldconfig"), "unexpected output: {out}");

    let (ok, inspect, err) = run(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}} {{.Id}}",
            &tag,
        ],
    );
    assert!(ok, "{err}");
    assert!(
        inspect.contains(&img.layers()[0].diff_id().to_string()),
        "{inspect}"
    );
    assert!(
        inspect.contains(&img.config_blob().digest().to_string()),
        "graphdriver id = config digest: {inspect}"
    );

    // docker save (the engine's own format) reads back into the same layers.
    let saved_tar = tmp.path().join("saved.tar");
    let (ok, _, err) = run("docker", &["save", "-o", saved_tar.to_str().unwrap(), &tag]);
    assert!(ok, "{err}");
    let saved = read_docker_save(
        std::fs::File::open(&saved_tar).unwrap(),
        &tmp.path().join("x"),
    )
    .unwrap();
    assert_eq!(saved.len(), 1);
    let back = saved[0]
        .to_oci_image(IndexFormat::Oci, &LayerOptions::default(), tmp.path())
        .unwrap();
    assert_eq!(back.config().rootfs.diff_ids, img.config().rootfs.diff_ids);
    xplat::oci::validate::validate_image(&back).unwrap();
}

#[test]
fn skopeo_reads_the_oci_layout() {
    require_skopeo!();
    let Some(amd) = static_binary_image(IndexFormat::Oci) else {
        crate::support::skip("/sbin/ldconfig (a static binary) is not on this host");
        return;
    };
    // A second platform, labelled arm64 (content does not matter to skopeo).
    let arm = Platform::new("linux", "arm64", "");
    let mut cfg = amd.config().clone();
    cfg.architecture = "arm64".into();
    let arm_img = amd.with_config(cfg).unwrap();
    let amd_p = Platform::new("linux", "amd64", "");
    let index = ImageIndex::new(
        vec![(amd_p, amd.clone()), (arm, arm_img.clone())],
        IndexFormat::Oci,
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("layout");
    write_layout(&dir, &index, &[LayoutRef::parse("app:1.0")]).unwrap();
    let src = format!("oci:{}:1.0", dir.display());

    let (ok, raw, err) = run("skopeo", &["inspect", "--raw", &src]);
    assert!(ok, "{err}");
    assert_eq!(
        raw.as_bytes(),
        &index.blob().bytes()[..],
        "skopeo returns our index bytes"
    );
    for (arch, img) in [("amd64", &amd), ("arm64", &arm_img)] {
        let (ok, out, err) = run(
            "skopeo",
            &[
                "--override-arch",
                arch,
                "--override-os",
                "linux",
                "inspect",
                &src,
            ],
        );
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["Architecture"], arch);
        // skopeo 1.9 reports the digest the reference resolves to (the index), and the
        // chosen platform's layers.
        assert_eq!(v["Digest"], index.digest().to_string());
        assert_eq!(v["Layers"][0], img.layers()[0].digest().to_string());
    }
    // skopeo copies it out of the tar form too.
    let tar = tmp.path().join("out.tar");
    write_layout(&tar, &index, &[LayoutRef::parse("app:1.0")]).unwrap();
    let copy_dir = tmp.path().join("copy");
    let dst = format!("oci:{}:x", copy_dir.display());
    let src_tar = format!("oci-archive:{}:1.0", tar.display());
    let (ok, _, err) = run("skopeo", &["copy", "--all", &src_tar, &dst]);
    assert!(ok, "{err}");
}
