//! The registry module against a real registry process (Debian's
//! `docker-registry`, distribution v2.8) on 127.0.0.1: push an index of two
//! images and read it back, zero bytes on a second push, chunked upload,
//! cross-repo mount, and a registry killed mid-push.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use xplat::platform::Platform;
use xplat::registry::{
    sha256_digest, Blob, BlobSource, ClientOptions, ImageRef, PlatformImage, PushEvent,
    PushOptions, PushRequest, RawManifest, RegistryClient, RegistryError, RetryPolicy, OCI_INDEX,
    OCI_MANIFEST,
};

use crate::support::{require, require_registry};

/// Deterministic bytes that do not compress away.
pub fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut state = u64::from_str_radix(&sha256_digest(seed.as_bytes())[7..23], 16).unwrap() | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// A blob held in memory.
pub fn mem_blob(bytes: Vec<u8>) -> Blob {
    Blob {
        digest: sha256_digest(&bytes),
        size: bytes.len() as u64,
        source: BlobSource::Bytes(Bytes::from(bytes)),
    }
}

/// One platform image: a config naming the platform plus `layers`.
pub fn image(os_arch: &str, layers: Vec<Blob>) -> PlatformImage {
    let (os, arch) = os_arch.split_once('/').unwrap();
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": os,
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let config = mem_blob(config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": layers.iter().map(|l| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.digest, "size": l.size})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let mut blobs = vec![config];
    blobs.extend(layers);
    PlatformImage {
        platform: os_arch.to_string(),
        manifest: RawManifest::new(OCI_MANIFEST, manifest),
        blobs,
    }
}

/// An index over `images` pushed to `target` under `tags`.
pub fn request(target: &str, tags: &[&str], images: Vec<PlatformImage>) -> PushRequest {
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": images.iter().map(|i| {
            let (os, arch) = i.platform.split_once('/').unwrap();
            json!({"mediaType": OCI_MANIFEST, "digest": i.manifest.digest, "size": i.manifest.bytes.len(),
                   "platform": {"os": os, "architecture": arch}})
        }).collect::<Vec<_>>(),
    }))
    .unwrap();
    PushRequest {
        target: ImageRef::parse(target).unwrap(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        images,
        index: RawManifest::new(OCI_INDEX, index),
    }
}

/// Two platforms sharing one layer, each with its own layer too.
pub fn two_platforms(target: &str, seed: &str) -> PushRequest {
    let shared = mem_blob(noise(&format!("{seed} shared"), 20_000));
    request(
        target,
        &["1.0"],
        vec![
            image(
                "linux/amd64",
                vec![
                    shared.clone(),
                    mem_blob(noise(&format!("{seed} amd64"), 30_000)),
                ],
            ),
            image(
                "linux/arm64",
                vec![shared, mem_blob(noise(&format!("{seed} arm64"), 40_000))],
            ),
        ],
    )
}

/// A client with fast retries, so failure tests do not wait long.
pub fn client() -> RegistryClient {
    RegistryClient::new(ClientOptions {
        retry: RetryPolicy {
            attempts: 3,
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        },
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(10),
        ..Default::default()
    })
    .unwrap()
}

/// Collects events for assertions.
#[derive(Clone, Default)]
pub struct Events(pub Arc<Mutex<Vec<PushEvent>>>);

impl Events {
    pub fn sink(&self) -> impl Fn(&PushEvent) + Send + Sync + 'static {
        let v = self.0.clone();
        move |e: &PushEvent| v.lock().unwrap().push(e.clone())
    }
    pub fn all(&self) -> Vec<PushEvent> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn push_index_read_back_and_second_push_sends_zero_bytes() {
    let reg = require_registry!();
    let target = format!("{}/team/app", reg.host());
    let req = two_platforms(&target, "a");
    let client = client();
    let events = Events::default();
    let first = client
        .push(&req, &PushOptions::default(), &events.sink())
        .await
        .unwrap();
    assert_eq!(first.index_digest, req.index.digest);
    assert_eq!(
        (
            first.blobs_uploaded,
            first.blobs_skipped,
            first.blobs_mounted
        ),
        (5, 0, 0)
    );
    assert_eq!(
        first.bytes_uploaded,
        req.images
            .iter()
            .flat_map(|i| &i.blobs)
            .map(|b| b.size)
            .sum::<u64>()
            - 20_000
    );
    // The index is the last thing pushed.
    assert!(
        matches!(events.all().last(), Some(PushEvent::IndexPushed { tag, .. }) if tag == "1.0")
    );

    // Read back: exact index bytes, both platforms.
    let tag = ImageRef::parse(&format!("{target}:1.0")).unwrap();
    let seen = client.inspect(&tag).await.unwrap();
    assert_eq!(seen.manifest.bytes, req.index.bytes);
    assert_eq!(seen.manifest.media_type, OCI_INDEX);
    let platforms: Vec<_> = seen
        .entries
        .iter()
        .filter_map(|e| e.platform.clone())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);

    // An independent reader agrees: skopeo sees the exact index bytes, and can
    // copy every platform (verifying every blob digest) into an OCI layout.
    skopeo_agrees(&format!("{target}:1.0"), &req.index.bytes);

    // Resolve per platform: config bytes and layer descriptors, "v8" normalized away.
    let arm = client
        .resolve(&tag, &Platform::new("linux", "arm64", "v8"))
        .await
        .unwrap();
    assert_eq!(arm.index_digest.as_deref(), Some(req.index.digest.as_str()));
    assert_eq!(arm.manifest.bytes, req.images[1].manifest.bytes);
    let want_config = &req.images[1].blobs[0];
    assert_eq!(arm.config.digest, want_config.digest);
    assert_eq!(
        BlobSource::Bytes(arm.config_bytes.clone()),
        want_config.source
    );
    let layer_digests: Vec<_> = arm.layers.iter().map(|l| l.digest.clone()).collect();
    assert_eq!(
        layer_digests,
        [
            req.images[1].blobs[1].digest.clone(),
            req.images[1].blobs[2].digest.clone()
        ]
    );
    // A layer streams back intact.
    let layer = client
        .fetch_blob(&tag, &arm.layers[1].digest)
        .await
        .unwrap();
    assert_eq!(layer.as_ref(), noise("a arm64", 40_000).as_slice());

    // A platform the index lacks: the error lists what it has.
    let err = client
        .resolve(&tag, &Platform::new("linux", "s390x", ""))
        .await
        .unwrap_err();
    match &err {
        RegistryError::PlatformNotFound { available, .. } => {
            assert_eq!(available, &["linux/amd64", "linux/arm64"])
        }
        other => panic!("expected PlatformNotFound, got {other}"),
    }
    assert!(
        err.to_string().contains("it has: linux/amd64, linux/arm64"),
        "{err}"
    );

    // The same push again uploads nothing.
    let events = Events::default();
    let second = client
        .push(&req, &PushOptions::default(), &events.sink())
        .await
        .unwrap();
    assert_eq!(
        (
            second.bytes_uploaded,
            second.blobs_uploaded,
            second.blobs_skipped
        ),
        (0, 0, 5)
    );
    assert!(!events.all().iter().any(|e| matches!(
        e,
        PushEvent::BlobUploaded { .. } | PushEvent::BlobProgress { .. }
    )));

    // An unknown tag is a clear error.
    let missing = ImageRef::parse(&format!("{target}:nope")).unwrap();
    assert!(matches!(
        client.inspect(&missing).await,
        Err(RegistryError::ManifestNotFound { .. })
    ));
}

fn skopeo_agrees(reference: &str, index: &[u8]) {
    let Ok(out) = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
    else {
        println!("note: skopeo not installed; independent check not run");
        return;
    };
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, index, "skopeo sees other index bytes");
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .arg(format!("oci:{}:t", dir.path().join("layout").display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn large_blob_goes_up_in_chunks_from_a_file() {
    let reg = require_registry!();
    let dir = tempfile::tempdir().unwrap();
    let bytes = noise("big", 300_000);
    let path = dir.path().join("layer.bin");
    std::fs::write(&path, &bytes).unwrap();
    let layer = Blob {
        digest: sha256_digest(&bytes),
        size: bytes.len() as u64,
        source: BlobSource::File(path),
    };
    let target = format!("{}/chunky", reg.host());
    let req = request(
        &target,
        &["v1"],
        vec![image("linux/amd64", vec![layer.clone()])],
    );
    let options = PushOptions {
        monolithic_max: 1024,
        chunk_size: 64 * 1024,
        ..Default::default()
    };
    let events = Events::default();
    let client = client();
    let summary = client.push(&req, &options, &events.sink()).await.unwrap();
    let offsets: Vec<u64> = events
        .all()
        .iter()
        .filter_map(|e| match e {
            PushEvent::BlobProgress { digest, offset, .. } if *digest == layer.digest => {
                Some(*offset)
            }
            _ => None,
        })
        .collect();
    assert_eq!(offsets, [65536, 131072, 196608, 262144, 300000]);
    assert_eq!(
        summary.bytes_uploaded,
        300_000 + req.images[0].blobs[0].size
    );
    let back = client
        .fetch_blob(&ImageRef::parse(&target).unwrap(), &layer.digest)
        .await
        .unwrap();
    assert_eq!(back.as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn base_layers_are_mounted_from_another_repository() {
    let reg = require_registry!();
    let client = client();
    let base = request(
        &format!("{}/base", reg.host()),
        &["1"],
        vec![image(
            "linux/arm64",
            vec![mem_blob(noise("base layer", 50_000))],
        )],
    );
    client
        .push(&base, &PushOptions::default(), &|_: &PushEvent| {})
        .await
        .unwrap();

    // Resolve the base for arm64 and build an app image on its layers.
    let base_ref = ImageRef::parse(&format!("{}/base:1", reg.host())).unwrap();
    let resolved = client
        .resolve(&base_ref, &Platform::new("linux", "arm64", ""))
        .await
        .unwrap();
    // The platform manifest by digest is a single image: inspect shows it,
    // and resolving it for another platform says what it is for.
    let single = base_ref.with_digest(&resolved.manifest.digest);
    let seen = client.inspect(&single).await.unwrap();
    assert!(seen.entries.is_empty());
    assert_eq!(
        seen.image
            .as_ref()
            .map(|(c, l)| (c.digest.clone(), l.len())),
        Some((resolved.config.digest.clone(), 1))
    );
    let err = client
        .resolve(&single, &Platform::new("linux", "amd64", ""))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::PlatformMismatch { actual, .. } if actual == "linux/arm64"),
        "{err}"
    );
    assert!(client
        .resolve(&single, &Platform::new("linux", "aarch64", ""))
        .await
        .is_ok());

    let mut layers = resolved.layer_blobs();
    layers.push(mem_blob(noise("app layer", 10_000)));
    let app = request(
        &format!("{}/app", reg.host()),
        &["1"],
        vec![image("linux/arm64", layers)],
    );
    let events = Events::default();
    let summary = client
        .push(&app, &PushOptions::default(), &events.sink())
        .await
        .unwrap();
    assert_eq!((summary.blobs_mounted, summary.blobs_uploaded), (1, 2));
    assert!(events
        .all()
        .iter()
        .any(|e| matches!(e, PushEvent::BlobMounted { from, .. } if from == "base")));
    assert_eq!(summary.bytes_uploaded, 10_000 + app.images[0].blobs[0].size);
    let app_ref = ImageRef::parse(&format!("{}/app:1", reg.host())).unwrap();
    let mounted = client
        .fetch_blob(&app_ref, &resolved.layers[0].digest)
        .await
        .unwrap();
    assert_eq!(mounted.len(), 50_000);
}

#[tokio::test]
async fn registry_killed_mid_push_leaves_no_index_and_rerun_sends_only_missing_blobs() {
    let reg = Arc::new(Mutex::new(require_registry!()));
    let host = reg.lock().unwrap().host();
    let target = format!("{host}/killed");
    let layers: Vec<Blob> = (0..6)
        .map(|i| mem_blob(noise(&format!("k{i}"), 100_000)))
        .collect();
    let req = request(
        &target,
        &["1.0"],
        vec![
            image("linux/amd64", layers[..3].to_vec()),
            image("linux/arm64", layers[3..].to_vec()),
        ],
    );
    let total: u64 = req
        .images
        .iter()
        .flat_map(|i| &i.blobs)
        .map(|b| b.size)
        .sum();
    let options = PushOptions {
        concurrency: 1,
        ..Default::default()
    };
    let client = client();
    let killer = reg.clone();
    let kill_after_first = move |e: &PushEvent| {
        if matches!(e, PushEvent::BlobUploaded { .. }) {
            killer.lock().unwrap().stop();
        }
    };
    let err = client
        .push(&req, &options, &kill_after_first)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RegistryError::PushAborted { .. }), "{msg}");
    assert!(
        msg.contains("index not pushed") && msg.contains("unreachable"),
        "{msg}"
    );
    println!("error as the user sees it: {msg}");

    reg.lock().unwrap().restart().unwrap();
    let tag = ImageRef::parse(&format!("{target}:1.0")).unwrap();
    assert!(
        matches!(
            client.inspect(&tag).await,
            Err(RegistryError::ManifestNotFound { .. })
        ),
        "no index after failure"
    );

    let summary = client
        .push(&req, &options, &|_: &PushEvent| {})
        .await
        .unwrap();
    assert_eq!(summary.blobs_skipped, 1, "{summary:?}");
    assert_eq!(summary.blobs_uploaded, 7);
    assert!(
        summary.bytes_uploaded < total,
        "{} < {total}",
        summary.bytes_uploaded
    );
    assert_eq!(
        client.inspect(&tag).await.unwrap().manifest.bytes,
        req.index.bytes
    );
}
