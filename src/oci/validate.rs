//! The validation oracle: checks manifest, index, config, descriptor and `oci-layout`
//! documents against the rules of the image-spec JSON schemas
//! (`../shared/peer/oci/image-spec-schema/`, draft-04), plus the few checks the upstream
//! Go validator adds (lowercase hex for sha256/sha512 digests, `KEY=value` Env entries,
//! strict base64 in `data`). `validate_image` and `validate_index` add referential checks
//! for what xplat builds (digests and sizes match the bytes, diff_ids match the layers,
//! one media-type family throughout).
//!
//! Hand-written rather than a JSON-schema crate: the schemas are small and fixed, the
//! crates that implement draft-04 pull in a regex engine and an HTTP resolver for `$ref`s,
//! and here each broken rule gets a JSON pointer and a sentence.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::{OciError, Result};
use super::image::OciImage;
use super::index::ImageIndex;
use super::media_type::{Compression, IndexFormat};

mod syntax;
use syntax::is_uri;
pub use syntax::{check_digest, is_date_time, is_media_type};

/// Which schema a document is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    /// `image-manifest-schema.json`.
    Manifest,
    /// `image-index-schema.json`.
    Index,
    /// `config-schema.json`.
    Config,
    /// `content-descriptor.json`.
    Descriptor,
    /// `image-layout-schema.json` (the `oci-layout` file).
    Layout,
}

impl DocumentKind {
    fn name(self) -> &'static str {
        match self {
            DocumentKind::Manifest => "image manifest",
            DocumentKind::Index => "image index",
            DocumentKind::Config => "image config",
            DocumentKind::Descriptor => "descriptor",
            DocumentKind::Layout => "oci-layout",
        }
    }
}

/// One broken rule, at a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as a JSON pointer (`/layers/0/size`); empty for the document itself.
    pub pointer: String,
    /// What rule.
    pub rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.rule)
    }
}

/// Validates a document's bytes; `OciError::Invalid` lists every broken rule.
pub fn validate(kind: DocumentKind, bytes: &[u8]) -> Result<()> {
    let violations = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => validate_value(kind, &v),
        Err(e) => vec![Violation {
            pointer: String::new(),
            rule: format!("not JSON: {e}"),
        }],
    };
    into_result(kind.name(), violations)
}

fn into_result(kind: &'static str, violations: Vec<Violation>) -> Result<()> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(OciError::Invalid { kind, violations })
    }
}

/// Validates a parsed document; returns the broken rules (empty when valid).
pub fn validate_value(kind: DocumentKind, v: &Value) -> Vec<Violation> {
    let mut c = Checker::default();
    match kind {
        DocumentKind::Manifest => c.manifest(v),
        DocumentKind::Index => c.index(v),
        DocumentKind::Config => c.config(v),
        DocumentKind::Descriptor => c.descriptor("", v),
        DocumentKind::Layout => c.layout(v),
    }
    c.out
}

/// Validates every document of an image and how they refer to each other.
pub fn validate_image(image: &OciImage) -> Result<()> {
    let mut c = Checker::default();
    for (kind, bytes, at) in [
        (
            DocumentKind::Manifest,
            image.manifest_blob().bytes(),
            "manifest",
        ),
        (DocumentKind::Config, image.config_blob().bytes(), "config"),
    ] {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => {
                for mut viol in validate_value(kind, &v) {
                    viol.pointer = format!("{at}{}", viol.pointer);
                    c.out.push(viol);
                }
            }
            Err(e) => c.fail(at, format!("not JSON: {e}")),
        }
    }
    let m = image.manifest();
    let family = image.format();
    if m.config.digest != image.config_blob().digest()
        || m.config.size != image.config_blob().size()
    {
        c.fail(
            "manifest/config",
            "digest or size does not match the config bytes",
        );
    }
    if m.media_type.as_deref() != Some(family.manifest_type())
        || m.config.media_type != family.config_type()
    {
        c.fail("manifest/mediaType", format!("not the {family:?} family"));
    }
    for (i, (d, l)) in m.layers.iter().zip(image.layers()).enumerate() {
        let ok = family.layer_type(l.compression()) == Some(d.media_type.as_str());
        if !ok || Compression::of_layer_media_type(&d.media_type).is_none() {
            c.fail(
                &format!("manifest/layers/{i}/mediaType"),
                format!("not a {family:?} layer type"),
            );
        }
        if d.digest != l.digest() || d.size != l.size() {
            c.fail(
                &format!("manifest/layers/{i}"),
                "descriptor does not match the layer blob",
            );
        }
    }
    let diff_ids: Vec<_> = image.layers().iter().map(|l| l.diff_id()).collect();
    if image.config().rootfs.diff_ids != diff_ids || m.layers.len() != diff_ids.len() {
        c.fail("config/rootfs/diff_ids", "do not match the layers");
    }
    let non_empty = image.config().non_empty_history();
    if !image.config().history.is_empty() && non_empty != diff_ids.len() {
        c.fail(
            "config/history",
            format!(
                "{non_empty} non-empty entries for {} layers",
                diff_ids.len()
            ),
        );
    }
    if Some(image.digest()) != Some(super::digest::Digest::of(image.manifest_blob().bytes())) {
        c.fail("manifest", "digest does not match the bytes");
    }
    into_result("image", c.out)
}

/// Validates an index, every image in it, and that the entries point at those images.
pub fn validate_index(index: &ImageIndex) -> Result<()> {
    let mut c = Checker::default();
    match serde_json::from_slice::<Value>(index.blob().bytes()) {
        Ok(v) => c.out.extend(validate_value(DocumentKind::Index, &v)),
        Err(e) => c.fail("", format!("not JSON: {e}")),
    }
    let doc = index.document();
    if doc.media_type.as_deref() != Some(index.format().index_type()) {
        c.fail("/mediaType", format!("not the {:?} family", index.format()));
    }
    if doc.manifests.len() != index.images().len() {
        c.fail("/manifests", "entry count differs from the image count");
    }
    for (i, (d, (platform, image))) in doc.manifests.iter().zip(index.images()).enumerate() {
        if d.digest != image.digest() || d.size != image.manifest_blob().size() {
            c.fail(
                &format!("/manifests/{i}"),
                "does not point at the image manifest",
            );
        }
        if IndexFormat::of_media_type(&d.media_type) != Some(index.format()) {
            c.fail(
                &format!("/manifests/{i}/mediaType"),
                "mixes media-type families",
            );
        }
        if d.platform.as_ref().map(|p| p.to_platform()).as_ref() != Some(platform) {
            c.fail(
                &format!("/manifests/{i}/platform"),
                "differs from the image's platform",
            );
        }
        if let Err(OciError::Invalid { violations, .. }) = validate_image(image) {
            for mut viol in violations {
                viol.pointer = format!("/manifests/{i}->{}", viol.pointer);
                c.out.push(viol);
            }
        }
    }
    into_result("image index", c.out)
}

#[derive(Default)]
struct Checker {
    out: Vec<Violation>,
}

type Obj = Map<String, Value>;

impl Checker {
    fn fail(&mut self, pointer: &str, rule: impl Into<String>) {
        self.out.push(Violation {
            pointer: pointer.to_string(),
            rule: rule.into(),
        });
    }

    fn object<'v>(&mut self, at: &str, v: &'v Value) -> Option<&'v Obj> {
        let o = v.as_object();
        if o.is_none() {
            self.fail(at, "must be an object");
        }
        o
    }

    fn required(&mut self, at: &str, o: &Obj, keys: &[&str]) {
        for k in keys {
            if !o.contains_key(*k) {
                self.fail(at, format!("missing required field {k:?}"));
            }
        }
    }

    fn string(&mut self, at: &str, o: &Obj, key: &str) -> Option<String> {
        let v = o.get(key)?;
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.fail(&format!("{at}/{key}"), "must be a string");
                None
            }
        }
    }

    fn boolean(&mut self, at: &str, o: &Obj, key: &str) {
        if o.get(key).is_some_and(|v| !v.is_boolean()) {
            self.fail(&format!("{at}/{key}"), "must be a boolean");
        }
    }

    fn strings(&mut self, at: &str, v: &Value) -> Option<Vec<String>> {
        let Some(a) = v.as_array() else {
            self.fail(at, "must be an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in a.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_string()),
                None => self.fail(&format!("{at}/{i}"), "must be a string"),
            }
        }
        Some(out)
    }

    fn opt_strings(&mut self, at: &str, o: &Obj, key: &str, nullable: bool) -> Option<Vec<String>> {
        match o.get(key) {
            None => None,
            Some(Value::Null) if nullable => None,
            Some(v) => self.strings(&format!("{at}/{key}"), v),
        }
    }

    /// `mapStringString` (string values) or `mapStringObject` (object values), for keys of length ≥ 1.
    fn map_of(&mut self, at: &str, v: &Value, objects: bool) {
        let Some(o) = self.object(at, v) else { return };
        for (k, item) in o {
            let ok = if objects {
                item.is_object()
            } else {
                item.is_string()
            };
            if !k.is_empty() && !ok {
                let want = if objects { "an object" } else { "a string" };
                self.fail(&format!("{at}/{}", escape(k)), format!("must be {want}"));
            }
        }
    }

    fn integer(&mut self, at: &str, v: &Value, min: i128, max: i128) {
        let n = v
            .as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from));
        match n {
            None => self.fail(at, "must be an integer"),
            Some(n) if n < min || n > max => self.fail(at, format!("must be in {min}..={max}")),
            Some(_) => {}
        }
    }

    fn media_type(&mut self, at: &str, o: &Obj, key: &str) {
        if let Some(s) = self.string(at, o, key) {
            if !is_media_type(&s) {
                self.fail(
                    &format!("{at}/{key}"),
                    format!("{s:?} is not a media type (type/subtype)"),
                );
            }
        }
    }

    fn digest(&mut self, at: &str, o: &Obj) {
        if let Some(s) = self.string(at, o, "digest") {
            if let Err(why) = check_digest(&s) {
                self.fail(&format!("{at}/digest"), format!("{s:?}: {why}"));
            }
        }
    }

    fn annotations(&mut self, at: &str, o: &Obj) {
        if let Some(v) = o.get("annotations") {
            self.map_of(&format!("{at}/annotations"), v, false);
        }
    }

    fn urls(&mut self, at: &str, o: &Obj) {
        if let Some(v) = o.get("urls") {
            let at = format!("{at}/urls");
            for (i, u) in self.strings(&at, v).unwrap_or_default().iter().enumerate() {
                if !is_uri(u) {
                    self.fail(
                        &format!("{at}/{i}"),
                        format!("{u:?} is not an absolute URI"),
                    );
                }
            }
        }
    }

    /// `content-descriptor.json`.
    fn descriptor(&mut self, at: &str, v: &Value) {
        let Some(o) = self.object(at, v) else { return };
        self.required(at, o, &["mediaType", "size", "digest"]);
        self.media_type(at, o, "mediaType");
        if let Some(size) = o.get("size") {
            self.integer(&format!("{at}/size"), size, 0, i64::MAX.into());
        }
        self.digest(at, o);
        self.urls(at, o);
        if let Some(data) = self.string(at, o, "data") {
            if base64::engine::general_purpose::STANDARD
                .decode(&data)
                .is_err()
            {
                self.fail(&format!("{at}/data"), "is not padded standard base64");
            }
        }
        self.media_type(at, o, "artifactType");
        self.annotations(at, o);
    }

    fn schema_version(&mut self, o: &Obj) {
        if let Some(v) = o.get("schemaVersion") {
            self.integer("/schemaVersion", v, 2, 2);
        }
    }

    /// `image-manifest-schema.json`.
    fn manifest(&mut self, v: &Value) {
        let Some(o) = self.object("", v) else { return };
        self.required("", o, &["schemaVersion", "config", "layers"]);
        self.schema_version(o);
        self.media_type("", o, "mediaType");
        self.media_type("", o, "artifactType");
        if let Some(c) = o.get("config") {
            self.descriptor("/config", c);
        }
        if let Some(s) = o.get("subject") {
            self.descriptor("/subject", s);
        }
        match o.get("layers") {
            Some(Value::Array(layers)) => {
                if layers.is_empty() {
                    self.fail("/layers", "must have at least one layer");
                }
                for (i, l) in layers.iter().enumerate() {
                    self.descriptor(&format!("/layers/{i}"), l);
                }
            }
            Some(_) => self.fail("/layers", "must be an array"),
            None => {}
        }
        self.annotations("", o);
    }

    /// `image-index-schema.json`.
    fn index(&mut self, v: &Value) {
        let Some(o) = self.object("", v) else { return };
        self.required("", o, &["schemaVersion", "manifests"]);
        self.schema_version(o);
        self.media_type("", o, "mediaType");
        self.media_type("", o, "artifactType");
        if let Some(s) = o.get("subject") {
            self.descriptor("/subject", s);
        }
        match o.get("manifests") {
            Some(Value::Array(ms)) => {
                for (i, m) in ms.iter().enumerate() {
                    self.index_entry(&format!("/manifests/{i}"), m);
                }
            }
            Some(_) => self.fail("/manifests", "must be an array"),
            None => {}
        }
        self.annotations("", o);
    }

    fn index_entry(&mut self, at: &str, v: &Value) {
        let Some(o) = self.object(at, v) else { return };
        self.required(at, o, &["mediaType", "size", "digest"]);
        self.media_type(at, o, "mediaType");
        if let Some(size) = o.get("size") {
            self.integer(
                &format!("{at}/size"),
                size,
                i64::MIN.into(),
                i64::MAX.into(),
            );
        }
        self.digest(at, o);
        self.urls(at, o);
        if let Some(p) = o.get("platform") {
            let at = format!("{at}/platform");
            if let Some(p) = self.object(&at, p) {
                self.required(&at, p, &["architecture", "os"]);
                for k in ["architecture", "os", "os.version", "variant"] {
                    self.string(&at, p, k);
                }
                self.opt_strings(&at, p, "os.features", false);
            }
        }
        self.annotations(at, o);
    }

    /// `config-schema.json`, plus Env entries must be `KEY=value`.
    fn config(&mut self, v: &Value) {
        let Some(o) = self.object("", v) else { return };
        self.required("", o, &["architecture", "os", "rootfs"]);
        for k in ["author", "architecture", "variant", "os", "os.version"] {
            self.string("", o, k);
        }
        if let Some(t) = self.string("", o, "created") {
            if !is_date_time(&t) {
                self.fail("/created", format!("{t:?} is not an RFC 3339 date-time"));
            }
        }
        self.opt_strings("", o, "os.features", false);
        if let Some(c) = o.get("config") {
            self.container_config(c);
        }
        if let Some(r) = o.get("rootfs") {
            if let Some(r) = self.object("/rootfs", r) {
                self.required("/rootfs", r, &["diff_ids", "type"]);
                self.opt_strings("/rootfs", r, "diff_ids", false);
                if let Some(t) = self.string("/rootfs", r, "type") {
                    if t != "layers" {
                        self.fail("/rootfs/type", "must be \"layers\"");
                    }
                }
            }
        }
        match o.get("history") {
            Some(Value::Array(hs)) => {
                for (i, h) in hs.iter().enumerate() {
                    let at = format!("/history/{i}");
                    let Some(h) = self.object(&at, h) else {
                        continue;
                    };
                    for k in ["author", "created_by", "comment"] {
                        self.string(&at, h, k);
                    }
                    if let Some(t) = self.string(&at, h, "created") {
                        if !is_date_time(&t) {
                            self.fail(
                                &format!("{at}/created"),
                                format!("{t:?} is not an RFC 3339 date-time"),
                            );
                        }
                    }
                    self.boolean(&at, h, "empty_layer");
                }
            }
            Some(_) => self.fail("/history", "must be an array"),
            None => {}
        }
    }

    fn container_config(&mut self, v: &Value) {
        let at = "/config";
        let Some(c) = self.object(at, v) else { return };
        for k in ["User", "WorkingDir", "StopSignal"] {
            self.string(at, c, k);
        }
        if let Some(p) = c.get("ExposedPorts") {
            self.map_of("/config/ExposedPorts", p, true);
        }
        match c.get("Volumes") {
            None | Some(Value::Null) => {}
            Some(vol) => self.map_of("/config/Volumes", vol, true),
        }
        match c.get("Labels") {
            None | Some(Value::Null) => {}
            Some(l) => self.map_of("/config/Labels", l, false),
        }
        if let Some(env) = self.opt_strings(at, c, "Env", false) {
            for (i, e) in env.iter().enumerate() {
                // The Go validator's `^[^=]+=.*$`: a non-empty name, then `=`.
                if !e.split_once('=').is_some_and(|(k, _)| !k.is_empty()) {
                    self.fail(
                        &format!("/config/Env/{i}"),
                        format!("{e:?} is not KEY=value"),
                    );
                }
            }
        }
        self.opt_strings(at, c, "Entrypoint", true);
        self.opt_strings(at, c, "Cmd", true);
        self.boolean(at, c, "ArgsEscaped");
    }

    /// `image-layout-schema.json`.
    fn layout(&mut self, v: &Value) {
        let Some(o) = self.object("", v) else { return };
        self.required("", o, &["imageLayoutVersion"]);
        if let Some(s) = self.string("", o, "imageLayoutVersion") {
            if s != "1.0.0" {
                self.fail("/imageLayoutVersion", "must be \"1.0.0\"");
            }
        }
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
#[path = "validate/syntax_tests.rs"]
mod tests;
