//! The pull side: resolve a reference for one target platform (manifest or
//! index, then containerd's platform match), returning the config bytes and
//! the layer descriptors **without** downloading layer bytes; stream a blob
//! (digest-verified) when an output needs it; inspect a reference.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::client::{describe, unexpected, Access, RegistryClient};
use super::error::{RegistryError, Result};
use super::reference::ImageRef;
use super::{sha256_digest, Blob, BlobSource, Descriptor, RawManifest};
use super::{DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::platform::Platform;

/// A base image resolved for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference as asked.
    pub reference: ImageRef,
    /// Digest of the index the manifest was picked from, if it came from one.
    pub index_digest: Option<String>,
    /// The platform manifest, exact bytes.
    pub manifest: RawManifest,
    /// Config descriptor.
    pub config: Descriptor,
    /// Config bytes (digest verified).
    pub config_bytes: Bytes,
    /// Layer descriptors in order (bytes not downloaded).
    pub layers: Vec<Descriptor>,
}

impl ResolvedImage {
    /// The layers as blobs to push, sourced from this image's repository
    /// (mounted when the push target is on the same registry).
    pub fn layer_blobs(&self) -> Vec<Blob> {
        self.layers
            .iter()
            .map(|d| Blob {
                digest: d.digest.clone(),
                size: d.size,
                source: BlobSource::Remote(self.reference.with_digest(&d.digest)),
            })
            .collect()
    }
}

/// What `xplat inspect REF` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    /// The reference as asked.
    pub reference: ImageRef,
    /// The top-level document, exact bytes.
    pub manifest: RawManifest,
    /// For an index: its entries with platform strings; empty for an image.
    pub entries: Vec<IndexEntry>,
    /// For an image: config and layers.
    pub image: Option<(Descriptor, Vec<Descriptor>)>,
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexEntry {
    /// The child manifest.
    pub descriptor: Descriptor,
    /// `os/arch[/variant]`, or `None` when the entry has no platform.
    pub platform: Option<String>,
    /// True for BuildKit attestation manifests and `unknown/unknown` entries.
    pub is_attestation: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    media_type: Option<String>,
    config: Option<DocDescriptor>,
    layers: Option<Vec<DocDescriptor>>,
    manifests: Option<Vec<DocEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocDescriptor {
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocEntry {
    #[serde(flatten)]
    descriptor: DocDescriptor,
    platform: Option<DocPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct DocPlatform {
    os: String,
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

impl From<DocDescriptor> for Descriptor {
    fn from(d: DocDescriptor) -> Self {
        Descriptor {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
        }
    }
}

fn parse_doc(reference: &ImageRef, bytes: &[u8]) -> Result<Doc> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::InvalidDocument {
        reference: reference.to_string(),
        reason: e.to_string(),
    })
}

fn entries_of(doc_entries: Vec<DocEntry>) -> Vec<IndexEntry> {
    doc_entries
        .into_iter()
        .map(|e| {
            let platform = e.platform.map(|p| {
                Platform::new(&p.os, &p.architecture, p.variant.as_deref().unwrap_or("")).format()
            });
            let is_attestation = e.annotations.contains_key("vnd.docker.reference.type")
                || platform.as_deref() == Some("unknown/unknown");
            IndexEntry {
                descriptor: e.descriptor.into(),
                platform,
                is_attestation,
            }
        })
        .collect()
}

/// Picks the first entry of an index for `wanted` (attestations skipped;
/// [`Platform::matches`], containerd's matcher), or returns the platforms the
/// index has.
pub fn select_platform<'a>(
    entries: &'a [IndexEntry],
    wanted: &Platform,
) -> Result<&'a IndexEntry, Vec<String>> {
    let usable = || entries.iter().filter(|e| !e.is_attestation);
    usable()
        .find(|e| {
            e.platform.as_deref().is_some_and(|p| {
                let mut it = p.splitn(3, '/');
                let (os, arch, variant) = (
                    it.next().unwrap_or(""),
                    it.next().unwrap_or(""),
                    it.next().unwrap_or(""),
                );
                wanted.matches(&Platform::new(os, arch, variant))
            })
        })
        .ok_or_else(|| usable().filter_map(|e| e.platform.clone()).collect())
}

fn media_type_of(doc: &Doc, header: Option<&str>) -> String {
    doc.media_type
        .clone()
        .or_else(|| header.map(|h| h.split(';').next().unwrap_or(h).trim().to_string()))
        .unwrap_or_else(|| {
            if doc.manifests.is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        })
}

fn no_events(_: &super::PushEvent) {}

impl RegistryClient {
    /// Fetches a manifest or index by tag or digest, exact bytes (digest checked when the reference has one).
    pub async fn fetch_manifest(&self, r: &ImageRef) -> Result<RawManifest> {
        let url = self.url(r, &format!("manifests/{}", r.manifest_reference()));
        // Callers name the image (`resolving base image R for P`, `inspecting R`); this
        // step names only what it fetches.
        let op = match (&r.digest, &r.tag) {
            (Some(d), _) => format!("fetching manifest {d}"),
            (None, Some(t)) => format!("fetching the manifest of tag {t}"),
            (None, None) => "fetching the manifest of tag latest".to_string(),
        };
        let accept = [
            OCI_INDEX,
            OCI_MANIFEST,
            DOCKER_MANIFEST_LIST,
            DOCKER_MANIFEST,
        ]
        .join(", ");
        let resp = self
            .send(r, Access::Pull, &op, &no_events, &|c| {
                c.get(&url).header(ACCEPT, accept.as_str())
            })
            .await?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::ManifestNotFound {
                    reference: r.to_string(),
                })
            }
            _ => return Err(unexpected(&op, resp).await),
        }
        let header = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Unreachable {
            operation: op.clone(),
            attempts: 1,
            reason: describe(&e),
        })?;
        let digest = sha256_digest(&bytes);
        if let Some(want) = &r.digest {
            if *want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {r}"),
                    expected: want.clone(),
                    actual: digest,
                });
            }
        }
        let doc = parse_doc(r, &bytes)?;
        Ok(RawManifest {
            media_type: media_type_of(&doc, header.as_deref()),
            bytes,
            digest,
        })
    }

    /// Resolves `r` for `wanted`: the matching manifest, its config bytes and
    /// its layer descriptors. No layer bytes are downloaded.
    pub async fn resolve(&self, r: &ImageRef, wanted: &Platform) -> Result<ResolvedImage> {
        let top = self.fetch_manifest(r).await?;
        let doc = parse_doc(r, &top.bytes)?;
        let (index_digest, manifest, doc, from_index) = if let Some(list) = doc.manifests {
            let entries = entries_of(list);
            let chosen = select_platform(&entries, wanted).map_err(|available| {
                RegistryError::PlatformNotFound {
                    reference: r.to_string(),
                    wanted: wanted.format(),
                    available,
                }
            })?;
            let child_ref = r.with_digest(&chosen.descriptor.digest);
            let child = self.fetch_manifest(&child_ref).await?;
            let child_doc = parse_doc(&child_ref, &child.bytes)?;
            (Some(top.digest.clone()), child, child_doc, true)
        } else {
            (None, top, doc, false)
        };
        if ![OCI_MANIFEST, DOCKER_MANIFEST].contains(&manifest.media_type.as_str()) {
            return Err(RegistryError::UnsupportedMediaType {
                reference: r.to_string(),
                media_type: manifest.media_type,
            });
        }
        let config: Descriptor = doc
            .config
            .ok_or_else(|| RegistryError::InvalidDocument {
                reference: r.to_string(),
                reason: "image manifest has no config".into(),
            })?
            .into();
        let layers: Vec<Descriptor> = doc
            .layers
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect();
        let config_bytes = self.fetch_blob(r, &config.digest).await?;
        if !from_index {
            #[derive(Deserialize)]
            struct ConfigPlatform {
                #[serde(default)]
                os: String,
                #[serde(default)]
                architecture: String,
                #[serde(default)]
                variant: Option<String>,
            }
            let p: ConfigPlatform = serde_json::from_slice(&config_bytes).map_err(|e| {
                RegistryError::InvalidDocument {
                    reference: r.to_string(),
                    reason: format!("image config: {e}"),
                }
            })?;
            let variant = p.variant.unwrap_or_default();
            let actual = Platform::new(&p.os, &p.architecture, &variant);
            if !wanted.matches(&actual) {
                return Err(RegistryError::PlatformMismatch {
                    reference: r.to_string(),
                    wanted: wanted.format(),
                    actual: actual.format(),
                });
            }
        }
        Ok(ResolvedImage {
            reference: r.clone(),
            index_digest,
            manifest,
            config,
            config_bytes,
            layers,
        })
    }

    /// Shows an index (entries with platforms) or an image (config and layers).
    pub async fn inspect(&self, r: &ImageRef) -> Result<Inspected> {
        let manifest = self.fetch_manifest(r).await?;
        let doc = parse_doc(r, &manifest.bytes)?;
        let (entries, image) = match doc.manifests {
            Some(list) => (entries_of(list), None),
            None => {
                let config =
                    doc.config
                        .map(Into::into)
                        .ok_or_else(|| RegistryError::InvalidDocument {
                            reference: r.to_string(),
                            reason: "image manifest has no config".into(),
                        })?;
                let layers = doc
                    .layers
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect();
                (Vec::new(), Some((config, layers)))
            }
        };
        Ok(Inspected {
            reference: r.clone(),
            manifest,
            entries,
            image,
        })
    }

    /// Downloads a (small) blob into memory and checks its digest.
    pub async fn fetch_blob(&self, r: &ImageRef, digest: &str) -> Result<Bytes> {
        let mut stream = self.blob_stream(r, digest).await?;
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// Streams a blob; the stream ends with a `DigestMismatch` error if the
    /// bytes do not hash to `digest`.
    pub async fn blob_stream(
        &self,
        r: &ImageRef,
        digest: &str,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let url = self.url(r, &format!("blobs/{digest}"));
        let op = format!("fetching blob {digest}");
        let resp = self
            .send(r, Access::Pull, &op, &no_events, &|c| c.get(&url))
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(unexpected(&op, resp).await);
        }
        let hasher = Arc::new(Mutex::new(sha2::Sha256::new()));
        let h = hasher.clone();
        let op2 = op.clone();
        let body = resp.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(|e| RegistryError::Unreachable {
                operation: op2.clone(),
                attempts: 1,
                reason: describe(&e),
            })?;
            h.lock().expect("hasher lock").update(&chunk);
            Ok(Some(chunk))
        });
        let expected = digest.to_string();
        let check = futures::stream::once(async move {
            let actual = format!(
                "sha256:{}",
                hex::encode(hasher.lock().expect("hasher lock").clone().finalize())
            );
            if actual == expected {
                Ok(None)
            } else {
                Err(RegistryError::DigestMismatch {
                    what: op,
                    expected,
                    actual,
                })
            }
        });
        Ok(body
            .chain(check)
            .filter_map(|item: Result<Option<Bytes>>| async move { item.transpose() })
            .boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(os: &str, arch: &str, variant: &str) -> Platform {
        Platform::new(os, arch, variant)
    }

    fn entry(platform: Option<&str>, digest: &str, attestation: bool) -> IndexEntry {
        IndexEntry {
            descriptor: Descriptor {
                media_type: OCI_MANIFEST.into(),
                digest: digest.into(),
                size: 1,
            },
            platform: platform.map(Into::into),
            is_attestation: attestation,
        }
    }

    #[test]
    fn containerd_normalization() {
        let same = [
            (("linux", "arm64", "v8"), ("linux", "arm64", "")),
            (("linux", "aarch64", ""), ("linux", "arm64", "v8")),
            (("linux", "arm", ""), ("linux", "arm", "v7")),
            (("linux", "armhf", ""), ("linux", "arm", "v7")),
            (("linux", "x86_64", ""), ("linux", "amd64", "")),
            (("Linux", "amd64", "v1"), ("linux", "amd64", "")),
        ];
        // Both ways: the platform module's matcher normalizes both sides.
        for (a, b) in same {
            let (a, b) = (p(a.0, a.1, a.2), p(b.0, b.1, b.2));
            assert!(a.matches(&b) && b.matches(&a), "{a:?} vs {b:?}");
        }
        assert!(!p("linux", "arm", "v6").matches(&p("linux", "arm", "v7")));
        assert!(!p("linux", "arm64", "").matches(&p("linux", "amd64", "")));
    }

    #[test]
    fn selects_first_match_and_skips_attestations() {
        let entries = vec![
            entry(Some("unknown/unknown"), "sha256:att", true),
            entry(Some("linux/amd64"), "sha256:amd", false),
            entry(Some("linux/arm64/v8"), "sha256:arm64", false),
            entry(Some("linux/arm/v7"), "sha256:armv7", false),
            entry(Some("linux/arm64"), "sha256:arm64-second", false),
        ];
        let pick =
            |pl: Platform| select_platform(&entries, &pl).map(|e| e.descriptor.digest.clone());
        assert_eq!(pick(p("linux", "arm64", "")), Ok("sha256:arm64".into()));
        assert_eq!(pick(p("linux", "arm", "")), Ok("sha256:armv7".into()));
        assert_eq!(pick(p("linux", "amd64", "")), Ok("sha256:amd".into()));
        assert_eq!(
            pick(p("linux", "s390x", "")),
            Err(vec![
                "linux/amd64".into(),
                "linux/arm64/v8".into(),
                "linux/arm/v7".into(),
                "linux/arm64".into()
            ])
        );
        assert!(pick(p("linux", "arm", "v6")).is_err());
    }

    #[test]
    fn index_entries_mark_attestations() {
        let json = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:a","size":10,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
          {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:b","size":11,"platform":{"os":"unknown","architecture":"unknown"},
           "annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}"#;
        let r = ImageRef::parse("localhost:1/x").unwrap();
        let doc = parse_doc(&r, json).unwrap();
        assert_eq!(media_type_of(&doc, None), OCI_INDEX);
        let entries = entries_of(doc.manifests.unwrap());
        assert_eq!(entries[0].platform.as_deref(), Some("linux/arm/v7"));
        assert!(!entries[0].is_attestation && entries[1].is_attestation);
        let err = RegistryError::PlatformNotFound {
            reference: "r".into(),
            wanted: "linux/s390x".into(),
            available: vec!["linux/amd64".into(), "linux/arm64".into()],
        };
        assert_eq!(
            err.to_string(),
            "no image for linux/s390x; it has: linux/amd64, linux/arm64"
        );
    }
}
