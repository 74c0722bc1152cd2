//! Media types, and the two families xplat can publish (`IndexFormat`).

use serde::{Deserialize, Serialize};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker foreign (non-distributable) gzip layer.
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd (recognised when read, never produced).
    Zstd,
}

impl Compression {
    /// Sniffs the first bytes of a blob (`1f8b` gzip, `28b52ffd` zstd).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The compression a layer media type says, if it is a layer type at all.
    pub fn of_layer_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            OCI_LAYER_TAR => Some(Compression::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER_GZIP => {
                Some(Compression::Gzip)
            }
            OCI_LAYER_ZSTD => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Which family of documents to publish: the OCI image index (default) or the
/// Docker manifest list v2 schema 2. A family is never mixed within one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexFormat {
    /// OCI image index, manifests, configs and layers.
    #[default]
    Oci,
    /// Docker manifest list, v2s2 manifests, Docker configs and layers.
    Docker,
}

impl IndexFormat {
    /// Media type of an image manifest of this family.
    pub fn manifest_type(self) -> &'static str {
        match self {
            IndexFormat::Oci => OCI_MANIFEST,
            IndexFormat::Docker => DOCKER_MANIFEST,
        }
    }

    /// Media type of an index (manifest list) of this family.
    pub fn index_type(self) -> &'static str {
        match self {
            IndexFormat::Oci => OCI_INDEX,
            IndexFormat::Docker => DOCKER_MANIFEST_LIST,
        }
    }

    /// Media type of an image config of this family.
    pub fn config_type(self) -> &'static str {
        match self {
            IndexFormat::Oci => OCI_CONFIG,
            IndexFormat::Docker => DOCKER_CONFIG,
        }
    }

    /// Media type of a layer with `compression` in this family; `None` where the family has none
    /// (Docker v2s2 defines only gzip layers).
    pub fn layer_type(self, compression: Compression) -> Option<&'static str> {
        match (self, compression) {
            (IndexFormat::Oci, Compression::None) => Some(OCI_LAYER_TAR),
            (IndexFormat::Oci, Compression::Gzip) => Some(OCI_LAYER_GZIP),
            (IndexFormat::Oci, Compression::Zstd) => Some(OCI_LAYER_ZSTD),
            (IndexFormat::Docker, Compression::Gzip) => Some(DOCKER_LAYER_GZIP),
            (IndexFormat::Docker, _) => None,
        }
    }

    /// The family a manifest or index media type belongs to.
    pub fn of_media_type(media_type: &str) -> Option<IndexFormat> {
        match media_type {
            OCI_MANIFEST | OCI_INDEX | OCI_CONFIG => Some(IndexFormat::Oci),
            DOCKER_MANIFEST | DOCKER_MANIFEST_LIST | DOCKER_CONFIG => Some(IndexFormat::Docker),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_do_not_mix() {
        for f in [IndexFormat::Oci, IndexFormat::Docker] {
            assert_eq!(IndexFormat::of_media_type(f.manifest_type()), Some(f));
            assert_eq!(IndexFormat::of_media_type(f.index_type()), Some(f));
            assert_eq!(IndexFormat::of_media_type(f.config_type()), Some(f));
        }
        assert_eq!(IndexFormat::Docker.layer_type(Compression::None), None);
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
    }
}
