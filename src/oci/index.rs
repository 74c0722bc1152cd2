//! `ImageIndex`: the multi-platform document (OCI image index or Docker manifest list)
//! over per-platform `OciImage`s, in the order given (the user's `--platform` order).

use std::collections::BTreeMap;

use super::digest::Digest;
use super::error::{OciError, Result};
use super::image::{Blob, OciImage};
use super::manifest::{Descriptor, IndexDocument, PlatformSpec};
use super::media_type::IndexFormat;
use crate::platform::Platform;

/// An index over one image per platform.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageIndex {
    format: IndexFormat,
    images: Vec<(Platform, OciImage)>,
    document: IndexDocument,
    blob: Blob,
}

impl ImageIndex {
    /// Builds the index. Every image must be of `format`'s family, and its config must name the
    /// platform it is listed under ([`Platform::matches`]: containerd's normalization, so
    /// arm64's `v8` and an empty variant count as the same).
    pub fn new(images: Vec<(Platform, OciImage)>, format: IndexFormat) -> Result<ImageIndex> {
        ImageIndex::with_annotations(images, format, BTreeMap::new())
    }

    /// Like `new`, with index annotations (OCI only).
    pub fn with_annotations(
        images: Vec<(Platform, OciImage)>,
        format: IndexFormat,
        annotations: BTreeMap<String, String>,
    ) -> Result<ImageIndex> {
        if format == IndexFormat::Docker && !annotations.is_empty() {
            return Err(OciError::MixedFamilies {
                detail: "Docker manifest lists have no annotations".into(),
            });
        }
        let mut manifests = Vec::with_capacity(images.len());
        for (platform, image) in &images {
            if image.format() != format {
                return Err(OciError::MixedFamilies {
                    detail: format!(
                        "a {:?} index cannot list the {:?} manifest for {}",
                        format,
                        image.format(),
                        platform
                    ),
                });
            }
            let config_platform = image.platform();
            if !platform.matches(&config_platform) {
                return Err(OciError::PlatformMismatch {
                    config: config_platform.to_string(),
                    platform: platform.to_string(),
                });
            }
            let mut d = image.descriptor();
            d.platform = Some(PlatformSpec::from(platform));
            manifests.push(d);
        }
        let document = IndexDocument {
            schema_version: 2,
            media_type: Some(format.index_type().to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: (!annotations.is_empty()).then_some(annotations),
        };
        let blob = Blob::new(
            serde_json::to_vec(&document).map_err(OciError::json("serializing image index"))?,
        );
        Ok(ImageIndex {
            format,
            images,
            document,
            blob,
        })
    }

    /// The family.
    pub fn format(&self) -> IndexFormat {
        self.format
    }

    /// The images, in index order.
    pub fn images(&self) -> &[(Platform, OciImage)] {
        &self.images
    }

    /// The index document as a value.
    pub fn document(&self) -> &IndexDocument {
        &self.document
    }

    /// The exact bytes and digest.
    pub fn blob(&self) -> &Blob {
        &self.blob
    }

    /// Digest of the index.
    pub fn digest(&self) -> Digest {
        self.blob.digest()
    }

    /// A descriptor of the index itself.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(self.format.index_type(), self.digest(), self.blob.size())
    }
}
