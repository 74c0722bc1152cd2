//! The build's `--label`/`xplat.toml` labels and annotations added to finished images and
//! their index. (Instruction meaning, which lived here too, is `stage`'s.)

use std::collections::BTreeMap;

use crate::oci::ContainerConfig;

/// The build's `--label`/`xplat.toml` labels added to every image's config (a Dockerfile
/// LABEL of the same name is overridden, as `docker build --label` does), and its
/// annotations put on every manifest and on the index. The Docker family has no
/// annotations: there they are left out, and the caller says so.
pub fn with_labels_and_annotations(
    index: &crate::oci::ImageIndex,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> crate::oci::Result<crate::oci::ImageIndex> {
    use crate::oci::{ImageIndex, IndexFormat, OciImage};
    if labels.is_empty() && annotations.is_empty() {
        return Ok(index.clone());
    }
    let format = index.format();
    let annotations = match format {
        IndexFormat::Oci => annotations.clone(),
        IndexFormat::Docker => BTreeMap::new(),
    };
    let mut images = Vec::with_capacity(index.images().len());
    for (platform, image) in index.images() {
        let mut config = image.config().clone();
        if !labels.is_empty() {
            let container = config.config.get_or_insert_with(ContainerConfig::default);
            let merged = container.labels.get_or_insert_with(BTreeMap::new);
            merged.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let image = OciImage::with_annotations(
            config,
            image.layers().to_vec(),
            format,
            annotations.clone(),
        )?;
        images.push((platform.clone(), image));
    }
    ImageIndex::with_annotations(images, format, annotations)
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use crate::oci::ImageConfig;
    use crate::oci::{ImageIndex, IndexFormat, LayerBlob, LayerEntry, LayerOptions, OciImage};
    use crate::platform::Platform;

    fn index(format: IndexFormat) -> ImageIndex {
        let p = Platform::new("linux", "amd64", "");
        let layer = LayerBlob::build(
            &[LayerEntry::file("/a", b"a".to_vec(), 0o644)],
            &LayerOptions::default(),
        )
        .unwrap();
        let mut config = ImageConfig::for_platform(&p, Some(0));
        config.config = Some(ContainerConfig {
            labels: Some(BTreeMap::from([("from".into(), "dockerfile".into())])),
            ..ContainerConfig::default()
        });
        let image = OciImage::new(config, vec![layer], format).unwrap();
        ImageIndex::new(vec![(p, image)], format).unwrap()
    }

    #[test]
    fn labels_reach_every_config_and_annotations_every_manifest_and_the_index() {
        let labels = BTreeMap::from([
            ("from".to_string(), "flag".to_string()),
            (
                "org.opencontainers.image.version".to_string(),
                "1.2.3".to_string(),
            ),
        ]);
        let annotations = BTreeMap::from([(
            "org.opencontainers.image.revision".to_string(),
            "abc".to_string(),
        )]);
        let before = index(IndexFormat::Oci);
        let after = with_labels_and_annotations(&before, &labels, &annotations).unwrap();
        let (_, image) = &after.images()[0];
        let got = image
            .config()
            .config
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(got["from"], "flag");
        assert_eq!(got["org.opencontainers.image.version"], "1.2.3");
        let manifest: serde_json::Value =
            serde_json::from_slice(image.manifest_blob().bytes()).unwrap();
        assert_eq!(
            manifest["annotations"]["org.opencontainers.image.revision"],
            "abc"
        );
        assert_eq!(
            after.document().annotations.as_ref().unwrap()["org.opencontainers.image.revision"],
            "abc"
        );
        assert_ne!(after.digest(), before.digest());
        // Nothing asked, nothing changed.
        let same =
            with_labels_and_annotations(&before, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(same.digest(), before.digest());
    }

    #[test]
    fn the_docker_family_gets_labels_but_no_annotations() {
        let labels = BTreeMap::from([("l".to_string(), "v".to_string())]);
        let annotations = BTreeMap::from([("a".to_string(), "b".to_string())]);
        let after = with_labels_and_annotations(&index(IndexFormat::Docker), &labels, &annotations)
            .unwrap();
        assert!(after.document().annotations.is_none());
        let (_, image) = &after.images()[0];
        assert_eq!(
            image
                .config()
                .config
                .as_ref()
                .unwrap()
                .labels
                .as_ref()
                .unwrap()["l"],
            "v"
        );
    }
}
