//! `OciImage`: one platform's image (config + layers + manifest), immutable, with every
//! digest computed at construction. Edits return new values (`with_config`, `with_layer`).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::config::ImageConfig;
use super::digest::Digest;
use super::error::{OciError, Result};
use super::layer::LayerBlob;
use super::manifest::{Descriptor, ImageManifest};
use super::media_type::IndexFormat;
use crate::platform::Platform;

/// A serialized JSON document: the exact bytes and their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    bytes: Bytes,
    digest: Digest,
}

impl Blob {
    /// Wraps bytes, hashing them.
    pub fn new(bytes: impl Into<Bytes>) -> Blob {
        let bytes = bytes.into();
        let digest = Digest::of(&bytes);
        Blob { bytes, digest }
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// sha256 of the bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Length in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// One platform's image.
#[derive(Debug, Clone, PartialEq)]
pub struct OciImage {
    format: IndexFormat,
    config: ImageConfig,
    config_blob: Blob,
    layers: Vec<LayerBlob>,
    manifest: ImageManifest,
    manifest_blob: Blob,
}

impl OciImage {
    /// Assembles an image. `config.rootfs.diff_ids` is set from `layers`; the history must not
    /// have more non-empty entries than there are layers (Docker rejects that), and when it has
    /// any it must have exactly as many.
    pub fn new(
        config: ImageConfig,
        layers: Vec<LayerBlob>,
        format: IndexFormat,
    ) -> Result<OciImage> {
        OciImage::with_annotations(config, layers, format, BTreeMap::new())
    }

    /// Like `new`, with manifest annotations (OCI only; refused for the Docker family).
    pub fn with_annotations(
        mut config: ImageConfig,
        layers: Vec<LayerBlob>,
        format: IndexFormat,
        annotations: BTreeMap<String, String>,
    ) -> Result<OciImage> {
        if format == IndexFormat::Docker && !annotations.is_empty() {
            return Err(OciError::MixedFamilies {
                detail: "Docker v2s2 manifests have no annotations".into(),
            });
        }
        config.rootfs.diff_ids = layers.iter().map(LayerBlob::diff_id).collect();
        let non_empty = config.non_empty_history();
        if !config.history.is_empty() && non_empty != layers.len() {
            return Err(OciError::HistoryLayerCount {
                non_empty,
                layers: layers.len(),
            });
        }
        let config_blob = Blob::new(config.to_bytes()?);
        let layer_descriptors = layers
            .iter()
            .map(|l| l.descriptor_for(format))
            .collect::<Result<Vec<_>>>()?;
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(format.manifest_type().to_string()),
            artifact_type: None,
            config: Descriptor::new(
                format.config_type(),
                config_blob.digest(),
                config_blob.size(),
            ),
            layers: layer_descriptors,
            subject: None,
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        let manifest_blob = Blob::new(
            serde_json::to_vec(&manifest).map_err(OciError::json("serializing image manifest"))?,
        );
        Ok(OciImage {
            format,
            config,
            config_blob,
            layers,
            manifest,
            manifest_blob,
        })
    }

    /// The same layers with another config.
    pub fn with_config(&self, config: ImageConfig) -> Result<OciImage> {
        let annotations = self.manifest.annotations.clone().unwrap_or_default();
        OciImage::with_annotations(config, self.layers.clone(), self.format, annotations)
    }

    /// The same image with one more layer on top and its history entry appended.
    pub fn with_layer(
        &self,
        layer: LayerBlob,
        history: super::config::History,
    ) -> Result<OciImage> {
        let mut config = self.config.clone();
        config.history.push(history);
        let mut layers = self.layers.clone();
        layers.push(layer);
        let annotations = self.manifest.annotations.clone().unwrap_or_default();
        OciImage::with_annotations(config, layers, self.format, annotations)
    }

    /// The same image in the other family (media types change, so digests do).
    pub fn in_format(&self, format: IndexFormat) -> Result<OciImage> {
        let annotations = if format == IndexFormat::Docker {
            BTreeMap::new()
        } else {
            self.manifest.annotations.clone().unwrap_or_default()
        };
        OciImage::with_annotations(
            self.config.clone(),
            self.layers.clone(),
            format,
            annotations,
        )
    }

    /// Which family the documents belong to.
    pub fn format(&self) -> IndexFormat {
        self.format
    }

    /// The config as a value.
    pub fn config(&self) -> &ImageConfig {
        &self.config
    }

    /// The config's exact bytes and digest.
    pub fn config_blob(&self) -> &Blob {
        &self.config_blob
    }

    /// The layers, base first.
    pub fn layers(&self) -> &[LayerBlob] {
        &self.layers
    }

    /// The manifest as a value.
    pub fn manifest(&self) -> &ImageManifest {
        &self.manifest
    }

    /// The manifest's exact bytes and digest.
    pub fn manifest_blob(&self) -> &Blob {
        &self.manifest_blob
    }

    /// Digest of the manifest (what a registry names this image by).
    pub fn digest(&self) -> Digest {
        self.manifest_blob.digest()
    }

    /// A descriptor of the manifest, without platform.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.format.manifest_type(),
            self.digest(),
            self.manifest_blob.size(),
        )
    }

    /// The platform the config names.
    pub fn platform(&self) -> Platform {
        self.config.platform()
    }
}
