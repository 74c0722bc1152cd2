//! Conformance of the `oci` validation oracle and document types against the peer data in
//! `../shared/peer/oci/`: image-spec schema fixtures and examples, Docker schema2 documents
//! with known digests, and distribution's canonical serializations.

use std::path::{Path, PathBuf};

use crate::support::tally::tally;
use serde::Serialize;
use xplat::oci::digest::Digest;
use xplat::oci::manifest::{ImageManifest, IndexDocument};
use xplat::oci::validate::{validate, DocumentKind};
use xplat::oci::{ImageConfig, OciError};

fn peer(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/peer/oci")
        .join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(peer(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Rows of a TSV file with a header, as maps from column name to value.
fn tsv(rel: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = String::from_utf8(read(rel)).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split('\t').map(str::to_string))
                .collect()
        })
        .collect()
}

fn kind_of_field(field: &str) -> DocumentKind {
    match field {
        "imageIndex" => DocumentKind::Index,
        "manifest" => DocumentKind::Manifest,
        "config" => DocumentKind::Config,
        "descriptor" => DocumentKind::Descriptor,
        "imageLayout" => DocumentKind::Layout,
        other => panic!("unknown fixture field {other}"),
    }
}

/// What upstream's backwards-compatibility test does before validating a Docker document.
fn docker_to_oci(text: &str) -> String {
    text.replace(
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    )
    .replace(
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
    .replace(
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    )
    .replace(
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    )
}

#[test]
fn every_schema_fixture_gives_its_expected_result() {
    let rows = tsv("image-spec-schema-fixtures/INDEX.tsv");
    let mut agree = 0;
    let mut wrong = Vec::new();
    let mut digests_checked = 0;
    for row in &rows {
        let file = &row["file"];
        let bytes = read(&format!("image-spec-schema-fixtures/{file}"));
        let expected_digest = row
            .get("expected_sha256_of_exact_bytes")
            .filter(|s| !s.is_empty());
        if let Some(want) = expected_digest {
            assert_eq!(
                Digest::of(&bytes).to_string(),
                *want,
                "{file}: digest of exact bytes"
            );
            digests_checked += 1;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let input = if file.starts_with("backwards_compatibility") {
            docker_to_oci(&text)
        } else {
            text
        };
        let result = validate(kind_of_field(&row["field"]), input.as_bytes());
        let want_pass = row["expected_schema_validation"] == "pass";
        if result.is_ok() == want_pass {
            agree += 1;
        } else {
            wrong.push(format!(
                "{file}: expected {} got {result:?}",
                row["expected_schema_validation"]
            ));
        }
        if let Err(e) = &result {
            assert!(matches!(e, OciError::Invalid { .. }), "{file}: {e}");
        }
    }
    tally!("oci schema fixtures: {agree}/{}", rows.len());
    assert_eq!(rows.len(), 71, "fixture count");
    assert!(
        wrong.is_empty(),
        "fixtures disagreeing:\n{}",
        wrong.join("\n")
    );
    assert_eq!(digests_checked, 4);
}

#[test]
fn every_image_spec_example_validates() {
    let rows = tsv("image-spec-examples/INDEX.tsv");
    let mut ok = 0;
    for row in &rows {
        let kind = match row["mediatype"].as_str() {
            "application/vnd.oci.image.config.v1+json" => DocumentKind::Config,
            "application/vnd.oci.descriptor.v1+json" => DocumentKind::Descriptor,
            "application/vnd.oci.image.index.v1+json" => DocumentKind::Index,
            "application/vnd.oci.layout.header.v1+json" => DocumentKind::Layout,
            "application/vnd.oci.image.manifest.v1+json" => DocumentKind::Manifest,
            other => panic!("unexpected media type {other}"),
        };
        let bytes = read(&format!("image-spec-examples/{}", row["file"]));
        validate(kind, &bytes).unwrap_or_else(|e| panic!("{}: {e}", row["file"]));
        ok += 1;
    }
    tally!("oci image-spec examples: {ok}/{}", rows.len());
    assert_eq!(ok, 10);
}

#[test]
fn the_spec_example_config_parses_and_keeps_its_content() {
    let bytes = read("image-spec-examples/config--01-image-json.json");
    let cfg = ImageConfig::parse(&bytes).unwrap();
    assert_eq!(
        (cfg.architecture.as_str(), cfg.os.as_str()),
        ("amd64", "linux")
    );
    assert_eq!(cfg.rootfs.diff_ids.len(), 2);
    let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let again: serde_json::Value = serde_json::from_slice(&cfg.to_bytes().unwrap()).unwrap();
    assert_eq!(
        original, again,
        "every field survives a parse and re-serialize"
    );
    validate(DocumentKind::Config, &cfg.to_bytes().unwrap()).unwrap();
}

#[test]
fn docker_schema2_documents_hash_to_their_names_and_parse() {
    let mut checked = 0;
    for entry in std::fs::read_dir(peer("docker-schema2")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(prefix) = name
            .strip_suffix(".json")
            .and_then(|n| n.rsplit_once("--sha256-"))
            .map(|(_, p)| p.to_string())
        else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let digest = Digest::of(&bytes);
        assert!(digest.hex().starts_with(&prefix), "{name}: {digest}");
        if name.contains("manifest-list") {
            let doc: IndexDocument = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(doc.manifests.len(), 5);
            let arm = doc
                .manifests
                .iter()
                .find(|m| m.platform.as_ref().unwrap().architecture == "arm")
                .unwrap();
            assert_eq!(
                arm.platform.as_ref().unwrap().variant.as_deref(),
                Some("v7")
            );
            validate(DocumentKind::Index, &bytes).unwrap();
        } else if name.contains("image-manifest") {
            let m: ImageManifest = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                m.media_type.as_deref(),
                Some("application/vnd.docker.distribution.manifest.v2+json")
            );
            assert!(!m.layers.is_empty());
            validate(DocumentKind::Manifest, &bytes).unwrap();
        } else {
            ImageConfig::parse(&bytes).unwrap();
            validate(DocumentKind::Config, &bytes).unwrap();
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
    let list = read("docker-schema2/manifest-list-example.json");
    validate(DocumentKind::Index, &list).unwrap();
    let doc: IndexDocument = serde_json::from_slice(&list).unwrap();
    assert!(doc
        .manifests
        .iter()
        .any(|m| m.platform.as_ref().unwrap().features.is_some()));
    validate(
        DocumentKind::Manifest,
        &read("docker-schema2/image-manifest-example.json"),
    )
    .unwrap();
}

/// Go's `json.MarshalIndent(v, "", "   ")`.
fn go_indent<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut out,
        serde_json::ser::PrettyFormatter::with_indent(b"   "),
    );
    v.serialize(&mut ser).unwrap();
    out
}

#[test]
fn distribution_serializations_round_trip_byte_for_byte() {
    let rows = tsv("distribution-serializations/INDEX.tsv");
    for row in &rows {
        let file = &row["file"];
        let bytes = read(&format!("distribution-serializations/{file}"));
        assert_eq!(bytes.len().to_string(), row["bytes"], "{file}");
        assert_eq!(
            Digest::of(&bytes).to_string(),
            row["sha256_computed_by_collector(no trailing newline)"]
        );
        let again = if file.contains("manifest-list") || file.contains("index") {
            let doc: IndexDocument = serde_json::from_slice(&bytes).unwrap();
            validate(DocumentKind::Index, &bytes).unwrap();
            go_indent(&doc)
        } else {
            let doc: ImageManifest = serde_json::from_slice(&bytes).unwrap();
            validate(DocumentKind::Manifest, &bytes).unwrap();
            go_indent(&doc)
        };
        assert_eq!(
            String::from_utf8(again).unwrap(),
            String::from_utf8(bytes).unwrap(),
            "{file}"
        );
    }
    assert_eq!(rows.len(), 4);
}
