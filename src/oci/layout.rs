//! The OCI image layout: write one (a folder, or a single tar when the path ends in
//! `.tar`) and read one back into its index, manifests and configs (for `xplat inspect`).
//!
//! `index.json` lists the image index once per reference, annotated with both
//! `org.opencontainers.image.ref.name` (the tag) and `io.containerd.image.name` (the full
//! name), which is what containerd and Docker's containerd store read (ENGINE-AND-REGISTRY §1.7).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use bytes::Bytes;

use super::blob::BlobSource;
use super::digest::Digest;
use super::error::{OciError, Result};
use super::image::OciImage;
use super::index::ImageIndex;
use super::layer::LayerBlob;
use super::manifest::{Descriptor, ImageManifest, IndexDocument};
use super::media_type::{self, IndexFormat};
use super::tar_writer::{Header, TarWriter, TypeFlag};

/// Content of the `oci-layout` file.
pub const OCI_LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Annotation holding the tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation holding the full image name (containerd).
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Largest JSON document read from a layout (containerd's import limit).
const JSON_LIMIT: u64 = 20 << 20;

/// A name to record in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    /// Full normalised name, e.g. `docker.io/library/foo:v1`.
    pub name: String,
    /// The tag, e.g. `v1`.
    pub tag: String,
}

impl LayoutRef {
    /// From a reference as a user types it (`foo:v1`, `reg:5000/app:1.0`); no tag means `latest`.
    pub fn parse(reference: &str) -> LayoutRef {
        let (repo, tag) = match reference.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, t),
            _ => (reference, "latest"),
        };
        let first = repo.split('/').next().unwrap_or("");
        let has_domain = repo.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        let full_repo = if has_domain {
            repo.to_string()
        } else if repo.contains('/') {
            format!("docker.io/{repo}")
        } else {
            format!("docker.io/library/{repo}")
        };
        LayoutRef {
            name: format!("{full_repo}:{tag}"),
            tag: tag.to_string(),
        }
    }

    fn annotate(&self, mut d: Descriptor) -> Descriptor {
        let mut a = BTreeMap::new();
        a.insert(CONTAINERD_NAME.to_string(), self.name.clone());
        a.insert(REF_NAME.to_string(), self.tag.clone());
        d.annotations = Some(a);
        d
    }
}

/// A blob to write: JSON bytes or a layer.
pub(crate) enum BlobData<'a> {
    Json(&'a Bytes),
    Layer(&'a LayerBlob),
}

impl BlobData<'_> {
    fn size(&self) -> u64 {
        match self {
            BlobData::Json(b) => b.len() as u64,
            BlobData::Layer(l) => l.size(),
        }
    }
}

/// Every blob of an image, by digest (deduplicated, sorted).
pub(crate) fn image_blobs<'a>(image: &'a OciImage, out: &mut BTreeMap<Digest, BlobData<'a>>) {
    out.insert(
        image.digest(),
        BlobData::Json(image.manifest_blob().bytes()),
    );
    out.insert(
        image.config_blob().digest(),
        BlobData::Json(image.config_blob().bytes()),
    );
    for l in image.layers() {
        out.insert(l.digest(), BlobData::Layer(l));
    }
}

fn index_json(index: &ImageIndex, refs: &[LayoutRef]) -> Result<Vec<u8>> {
    let manifests = if refs.is_empty() {
        vec![index.descriptor()]
    } else {
        refs.iter()
            .map(|r| r.annotate(index.descriptor()))
            .collect()
    };
    layout_index_json(manifests)
}

pub(crate) fn layout_index_json(manifests: Vec<Descriptor>) -> Result<Vec<u8>> {
    let doc = IndexDocument {
        schema_version: 2,
        media_type: Some(media_type::OCI_INDEX.to_string()),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: None,
    };
    serde_json::to_vec(&doc).map_err(OciError::json("serializing index.json"))
}

/// Writes the layout of `index` to `path`: a tar when `path` ends in `.tar`, else a folder.
/// Registry-only layers give `BlobNotLocal`: fetch them first.
pub fn write_layout(path: &Path, index: &ImageIndex, refs: &[LayoutRef]) -> Result<()> {
    let mut blobs = BTreeMap::new();
    blobs.insert(index.digest(), BlobData::Json(index.blob().bytes()));
    for (_, image) in index.images() {
        image_blobs(image, &mut blobs);
    }
    let index_json = index_json(index, refs)?;
    if path.extension().is_some_and(|e| e == "tar") {
        let f = File::create(path).map_err(OciError::io(format!("creating {}", path.display())))?;
        let mut w = write_tar(BufWriter::new(f), &index_json, &blobs, None)?;
        w.flush()
            .map_err(OciError::io(format!("writing {}", path.display())))
    } else {
        write_dir(path, &index_json, &blobs)
    }
}

/// Writes the layout of `index` as a tar stream to `out`.
pub fn write_layout_tar<W: Write>(out: W, index: &ImageIndex, refs: &[LayoutRef]) -> Result<W> {
    let mut blobs = BTreeMap::new();
    blobs.insert(index.digest(), BlobData::Json(index.blob().bytes()));
    for (_, image) in index.images() {
        image_blobs(image, &mut blobs);
    }
    write_tar(out, &index_json(index, refs)?, &blobs, None)
}

fn write_dir(dir: &Path, index_json: &[u8], blobs: &BTreeMap<Digest, BlobData<'_>>) -> Result<()> {
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir)
        .map_err(OciError::io(format!("creating {}", blob_dir.display())))?;
    for (digest, data) in blobs {
        let p = blob_dir.join(digest.hex());
        if let BlobData::Layer(l) = data {
            // Content-addressed and immutable: a blob already there (a re-export) stays,
            // and a local blob file (the layer cache) is hard-linked rather than copied
            // (issue 11: a warm rebuild of a 300 MB layer must not copy 300 MB).
            if fs::metadata(&p).is_ok_and(|m| m.len() == l.size()) {
                continue;
            }
            if let BlobSource::File(src) = l.source() {
                if fs::hard_link(src, &p).is_ok() {
                    continue;
                }
            }
        }
        let what = format!("writing {}", p.display());
        let mut f = BufWriter::new(File::create(&p).map_err(OciError::io(what.clone()))?);
        copy_blob(digest, data, &mut f)?;
        f.flush().map_err(OciError::io(what))?;
    }
    fs::write(dir.join("oci-layout"), OCI_LAYOUT_FILE)
        .map_err(OciError::io("writing oci-layout"))?;
    fs::write(dir.join("index.json"), index_json).map_err(OciError::io("writing index.json"))
}

fn copy_blob(digest: &Digest, data: &BlobData<'_>, out: &mut impl Write) -> Result<()> {
    let what = || format!("writing blob {digest}");
    match data {
        BlobData::Json(b) => out.write_all(b).map_err(OciError::io(what())),
        BlobData::Layer(l) => {
            let n = io::copy(&mut l.open()?.take(l.size()), out).map_err(OciError::io(what()))?;
            if n != l.size() {
                return Err(OciError::MalformedArchive {
                    what: "layer blob",
                    reason: format!("{digest} has {n} bytes, its descriptor says {}", l.size()),
                });
            }
            Ok(())
        }
    }
}

/// Writes `oci-layout`, `index.json`, optional `manifest.json` and the blobs as one tar;
/// fixed headers (root, 0644/0755, mtime 0), so the same content gives the same bytes.
pub(crate) fn write_tar<W: Write>(
    out: W,
    index_json: &[u8],
    blobs: &BTreeMap<Digest, BlobData<'_>>,
    docker_manifest: Option<&[u8]>,
) -> Result<W> {
    let mut t = TarWriter::new(out);
    let io_err = OciError::io("writing layout tar");
    let file = |t: &mut TarWriter<W>, name: &str, body: &[u8]| -> io::Result<()> {
        t.header(&file_header(name, body.len() as u64))?;
        t.write_content(body)?;
        t.pad(body.len() as u64)
    };
    for dir in ["blobs/", "blobs/sha256/"] {
        let h = Header {
            name: dir,
            link: "",
            flag: TypeFlag::Directory,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
        };
        t.header(&h).map_err(OciError::io("writing layout tar"))?;
    }
    for (digest, data) in blobs {
        let name = digest.blob_path();
        t.header(&file_header(&name, data.size()))
            .map_err(OciError::io("writing layout tar"))?;
        copy_blob(digest, data, t.content_writer())?;
        t.pad(data.size())
            .map_err(OciError::io("writing layout tar"))?;
    }
    file(&mut t, "index.json", index_json).map_err(OciError::io("writing layout tar"))?;
    if let Some(m) = docker_manifest {
        file(&mut t, "manifest.json", m).map_err(OciError::io("writing layout tar"))?;
    }
    file(&mut t, "oci-layout", OCI_LAYOUT_FILE).map_err(OciError::io("writing layout tar"))?;
    t.finish().map_err(io_err)
}

fn file_header(name: &str, size: u64) -> Header<'_> {
    Header {
        name,
        link: "",
        flag: TypeFlag::Regular,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        mtime: 0,
    }
}

/// What `read_layout` found: `index.json` and every manifest, index and config reachable
/// from it, each checked against its digest. Layer blobs are not read.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutContents {
    /// The `index.json` document.
    pub index_json: IndexDocument,
    /// Indexes (OCI or Docker lists) by digest.
    pub indexes: BTreeMap<Digest, (Bytes, IndexDocument)>,
    /// Image manifests by digest.
    pub manifests: BTreeMap<Digest, (Bytes, ImageManifest)>,
    /// Config blobs by digest.
    pub configs: BTreeMap<Digest, Bytes>,
}

/// Reads a layout folder, or a layout tar (path ending in `.tar`).
pub fn read_layout(path: &Path) -> Result<LayoutContents> {
    if path.is_dir() {
        let get = |name: &str| -> Result<Bytes> {
            let p = path.join(name);
            let f = File::open(&p).map_err(OciError::io(format!("reading {}", p.display())))?;
            let mut buf = Vec::new();
            f.take(JSON_LIMIT + 1)
                .read_to_end(&mut buf)
                .map_err(OciError::io(format!("reading {}", p.display())))?;
            Ok(buf.into())
        };
        resolve(&get)
    } else {
        let f = File::open(path).map_err(OciError::io(format!("opening {}", path.display())))?;
        read_layout_tar(io::BufReader::new(f))
    }
}

/// Reads a layout from a tar stream (keeps only entries small enough to be JSON documents).
pub fn read_layout_tar<R: Read>(input: R) -> Result<LayoutContents> {
    let mut files: BTreeMap<String, Bytes> = BTreeMap::new();
    let mut ar = tar::Archive::new(input);
    for entry in ar.entries().map_err(OciError::io("reading layout tar"))? {
        let mut e = entry.map_err(OciError::io("reading layout tar"))?;
        if e.header().entry_type() != tar::EntryType::Regular || e.size() > JSON_LIMIT {
            continue;
        }
        let name = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let mut buf = Vec::with_capacity(e.size() as usize);
        e.read_to_end(&mut buf)
            .map_err(OciError::io(format!("reading {name} from layout tar")))?;
        files.insert(name, buf.into());
    }
    let get = |name: &str| -> Result<Bytes> {
        files
            .get(name)
            .cloned()
            .ok_or_else(|| OciError::MalformedArchive {
                what: "OCI layout",
                reason: format!("{name} is missing (or larger than 20 MiB)"),
            })
    };
    resolve(&get)
}

fn resolve(get: &dyn Fn(&str) -> Result<Bytes>) -> Result<LayoutContents> {
    let layout = get("oci-layout")?;
    super::validate::validate(super::validate::DocumentKind::Layout, &layout)?;
    let index_json: IndexDocument = serde_json::from_slice(&get("index.json")?)
        .map_err(OciError::json("parsing index.json"))?;
    let mut out = LayoutContents {
        index_json: index_json.clone(),
        indexes: BTreeMap::new(),
        manifests: BTreeMap::new(),
        configs: BTreeMap::new(),
    };
    let mut todo: Vec<Descriptor> = index_json.manifests;
    while let Some(d) = todo.pop() {
        if out.indexes.contains_key(&d.digest) || out.manifests.contains_key(&d.digest) {
            continue;
        }
        let bytes = get(&d.digest.blob_path())?;
        d.digest.verify(&bytes, &d.digest.blob_path())?;
        match d.media_type.as_str() {
            media_type::OCI_INDEX | media_type::DOCKER_MANIFEST_LIST => {
                let doc: IndexDocument = serde_json::from_slice(&bytes)
                    .map_err(OciError::json(format!("parsing index {}", d.digest)))?;
                todo.extend(doc.manifests.iter().cloned());
                out.indexes.insert(d.digest, (bytes, doc));
            }
            media_type::OCI_MANIFEST | media_type::DOCKER_MANIFEST => {
                let m: ImageManifest = serde_json::from_slice(&bytes)
                    .map_err(OciError::json(format!("parsing manifest {}", d.digest)))?;
                let cfg = get(&m.config.digest.blob_path())?;
                m.config.digest.verify(&cfg, &m.config.digest.blob_path())?;
                out.configs.insert(m.config.digest, cfg);
                out.manifests.insert(d.digest, (bytes, m));
            }
            other => {
                return Err(OciError::UnsupportedMediaType {
                    media_type: other.to_string(),
                    what: "an index.json entry",
                })
            }
        }
    }
    Ok(out)
}

impl LayoutContents {
    /// The family of a manifest or index in the layout, from its media type.
    pub fn format_of(&self, digest: &Digest) -> Option<IndexFormat> {
        let mt = match (self.indexes.get(digest), self.manifests.get(digest)) {
            (Some((_, i)), _) => i.media_type.clone(),
            (_, Some((_, m))) => m.media_type.clone(),
            _ => None,
        };
        mt.as_deref().and_then(IndexFormat::of_media_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ImageConfig, LayerEntry, LayerOptions};
    use crate::platform::Platform;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn file_layers_are_hard_linked_into_a_folder_layout_and_kept_on_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("layer.tar.gz");
        let built = LayerBlob::build_to_file(
            &[LayerEntry::file("/a", &b"a"[..], 0o644)],
            &LayerOptions::default(),
            &src,
        )
        .unwrap();
        let p = Platform::new("linux", "amd64", "");
        let config = ImageConfig::for_platform(&p, Some(0));
        let image = OciImage::new(config, vec![built.clone()], IndexFormat::Oci).unwrap();
        let index = ImageIndex::new(vec![(p, image)], IndexFormat::Oci).unwrap();
        let out = dir.path().join("layout");
        write_layout(&out, &index, &[]).unwrap();
        let blob = out.join("blobs/sha256").join(built.digest().hex());
        assert_eq!(
            fs::metadata(&blob).unwrap().ino(),
            fs::metadata(&src).unwrap().ino(),
            "linked, not copied"
        );
        write_layout(&out, &index, &[]).unwrap();
        assert!(read_layout(&out)
            .unwrap()
            .indexes
            .contains_key(&index.digest()));
    }
}
