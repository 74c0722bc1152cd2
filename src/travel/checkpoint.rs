//! `mode=max`: the engine's step-cache checkpoints travel too.
//!
//! A checkpoint is an engine image the executor committed: the image its container
//! started from plus one layer. Its entry holds that one layer and the image's config
//! (which lists every layer's diff_id), as an OCI image manifest with artifactType
//! [`CHECKPOINT_TYPE`]; the entry it sits on, when it sits on another checkpoint, is
//! named in [`PARENT_ANNOTATION`]. Loading an entry needs its parent (or the job's start
//! image) in the engine first: `docker load` then reads only the layer the engine lacks.
//!
//! Export reads the layer from `docker save` of the checkpoint, taking the one layer
//! whose v1 `json` carries the image config (the top layer; Docker writes a bare one for
//! every layer below). The engine streams every layer of the image, so a new entry costs
//! a read of the whole image; an entry the destination holds already is not exported
//! again.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};

use super::{io, short, Source, TravelError, KEY_ANNOTATION};
use crate::engine::DockerEngine;
use crate::exec::travelled::{Archive, Travelled};
use crate::oci::digest::{HashingReader, HashingWriter};
use crate::oci::docker_archive::PartialLoad;
use crate::oci::LayerOptions;
use crate::registry::{sha256_digest, RawManifest, RegistryClient, OCI_MANIFEST};

/// The `artifactType` of a checkpoint entry.
pub const CHECKPOINT_TYPE: &str = "application/vnd.xplat.cache.checkpoint.v1";
/// The annotation saying what an entry is: `checkpoint` (absent: recordings).
pub const KIND_ANNOTATION: &str = "dev.xplat.cache.kind";
/// The annotation naming the key of the checkpoint an entry sits on.
pub const PARENT_ANNOTATION: &str = "dev.xplat.cache.parent";
/// The annotation on the layer descriptor: its diff_id.
const DIFF_ID_ANNOTATION: &str = "dev.xplat.cache.diff-id";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

type Result<T> = std::result::Result<T, TravelError>;

/// A checkpoint of the build, to export.
#[derive(Debug, Clone)]
pub struct CheckpointImage {
    /// Its chain key.
    pub key: String,
    /// Its engine image id.
    pub image: String,
    /// Its layers' diff_ids, base first.
    pub diff_ids: Vec<String>,
    /// The engine that holds it.
    pub engine: DockerEngine,
}

/// A checkpoint entry written into `work`: its config, its layer and its manifest.
pub(super) struct Packed {
    pub key: String,
    pub config: Bytes,
    pub layer: PathBuf,
    pub layer_digest: String,
    pub layer_size: u64,
    pub manifest: RawManifest,
}

/// The key of the checkpoint `c` sits on: the one among `all` whose layers are all of
/// `c`'s but its last.
pub fn parent_of<'c>(c: &CheckpointImage, all: &'c [CheckpointImage]) -> Option<&'c str> {
    sits_on(
        &c.diff_ids,
        all.iter().map(|p| (p.key.as_str(), p.diff_ids.as_slice())),
    )
}

/// The key among `all` (key, diff_ids) whose layers are all of `diff_ids` but the last.
fn sits_on<'c>(
    diff_ids: &[String],
    mut all: impl Iterator<Item = (&'c str, &'c [String])>,
) -> Option<&'c str> {
    let below = diff_ids.split_last()?.1;
    all.find(|(_, d)| *d == below).map(|(k, _)| k)
}

/// The annotations of a checkpoint entry, on its manifest and on its index entry alike.
pub(super) fn annotations(key: &str, parent: Option<&str>) -> serde_json::Value {
    let mut a = serde_json::json!({
        KEY_ANNOTATION: key,
        KIND_ANNOTATION: "checkpoint",
    });
    if let Some(p) = parent {
        a[PARENT_ANNOTATION] = p.into();
    }
    a
}

/// The manifest of a checkpoint entry.
pub(super) fn manifest(
    key: &str,
    parent: Option<&str>,
    config: &[u8],
    diff_id: &str,
    layer_digest: &str,
    layer_size: u64,
) -> RawManifest {
    let doc = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": CHECKPOINT_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256_digest(config), "size": config.len()},
        "layers": [{
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": layer_digest,
            "size": layer_size,
            "annotations": {DIFF_ID_ANNOTATION: diff_id},
        }],
        "annotations": annotations(key, parent),
    });
    RawManifest::new(OCI_MANIFEST, serde_json::to_vec(&doc).expect("json"))
}

/// Exports checkpoint `c` from its engine into `work` (`docker save`, keeping the top
/// layer, compressed, and the config).
pub(super) async fn pack(c: &CheckpointImage, parent: Option<&str>, work: &Path) -> Result<Packed> {
    std::fs::create_dir_all(work).map_err(io("creating", work))?;
    let hex = c.image.trim_start_matches("sha256:").to_string();
    let layer = work.join(format!("checkpoint-{}.tar.gz", &hex[..hex.len().min(16)]));
    // The engine's stream feeds a blocking tar reader through a small channel.
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(8);
    let engine = c.engine.clone();
    let image = c.image.clone();
    let feed = async move {
        let mut stream = engine.export_image(&image);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
            let failed = chunk.is_err();
            if tx.send(chunk).await.is_err() || failed {
                break;
            }
        }
    };
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(rx));
    let out = layer.clone();
    let config_name = format!("{hex}.json");
    let read = tokio::task::spawn_blocking(move || read_save(reader, &config_name, &out));
    let (_, read) = tokio::join!(feed, read);
    let (config, digests) = read
        .map_err(|e| TravelError::Corrupt(format!("reading the engine's export: {e}")))?
        .map_err(io("reading the engine's export of", &layer))?;
    let fail = |why: String| {
        let _ = std::fs::remove_file(&layer);
        Err(TravelError::Corrupt(format!(
            "checkpoint {}: {why}",
            short(&c.key)
        )))
    };
    let (Some(config), Some(d)) = (config, digests) else {
        return fail("the engine's export holds no config or no top layer".into());
    };
    if sha256_digest(&config) != c.image {
        return fail("the exported config is not the image's".into());
    }
    let diff_id = d.diff_id.to_string();
    if c.diff_ids.last() != Some(&diff_id) {
        return fail(format!(
            "the exported top layer is {diff_id}, not the image's last layer"
        ));
    }
    let layer_digest = d.digest.to_string();
    Ok(Packed {
        key: c.key.clone(),
        manifest: manifest(&c.key, parent, &config, &diff_id, &layer_digest, d.size),
        config: config.into(),
        layer,
        layer_digest,
        layer_size: d.size,
    })
}

/// Reads a `docker save` stream: the config named `config_name`, and the top layer
/// (the one whose v1 `json`, which comes before its `layer.tar`, holds a `config`)
/// compressed into `out`. Everything else is read past.
fn read_save(
    input: impl Read,
    config_name: &str,
    out: &Path,
) -> std::io::Result<(Option<Vec<u8>>, Option<crate::oci::layer::LayerDigests>)> {
    let mut archive = tar::Archive::new(input);
    let mut config = None;
    let mut top_dir: Option<String> = None;
    let mut digests = None;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = name.trim_start_matches("./");
        if name == config_name {
            let mut b = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut b)?;
            config = Some(b);
        } else if let Some(dir) = name.strip_suffix("/json") {
            let mut b = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut b)?;
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap_or_default();
            if v.get("config").is_some_and(|c| !c.is_null()) {
                top_dir = Some(dir.to_string());
            }
        } else if let Some(dir) = name.strip_suffix("/layer.tar") {
            if top_dir.as_deref() == Some(dir) && digests.is_none() {
                let f = std::fs::File::create(out)?;
                let (w, d) = crate::oci::layer::compress_tar(
                    &mut entry,
                    &LayerOptions::default(),
                    std::io::BufWriter::new(f),
                )?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                digests = Some(d);
            }
        }
    }
    Ok((config, digests))
}

/// One checkpoint entry of a travelled cache.
#[derive(Debug, Clone)]
struct Remote {
    /// The source (index in `Checkpoints::sources`).
    source: usize,
    /// Its manifest's digest.
    manifest: String,
    /// The key of the checkpoint it sits on.
    parent: Option<String>,
}

/// The checkpoint entries of every `--cache-from`, loaded on demand
/// ([`crate::exec::travelled`]).
pub struct Checkpoints {
    sources: Vec<super::Location>,
    entries: BTreeMap<String, Remote>,
    client: RegistryClient,
    work: PathBuf,
}

impl Checkpoints {
    /// No entries yet; fetched blobs go through `work`.
    pub fn new(client: RegistryClient, work: PathBuf) -> Checkpoints {
        Checkpoints {
            sources: Vec::new(),
            entries: BTreeMap::new(),
            client,
            work,
        }
    }

    /// Adds the checkpoint entries of index `entries` of `at` (the first source to hold a
    /// key keeps it). Returns how many were new.
    pub fn add(
        &mut self,
        at: &super::Location,
        entries: Vec<(String, String, Option<String>)>,
    ) -> usize {
        let source = self.sources.len();
        self.sources.push(at.clone());
        let mut added = 0;
        for (key, manifest, parent) in entries {
            if let std::collections::btree_map::Entry::Vacant(v) = self.entries.entry(key) {
                v.insert(Remote {
                    source,
                    manifest,
                    parent,
                });
                added += 1;
            }
        }
        added
    }

    async fn fetch(&self, key: &str) -> Result<Archive> {
        let remote = self
            .entries
            .get(key)
            .ok_or_else(|| TravelError::Corrupt("no entry".into()))?;
        let source = Source {
            at: &self.sources[remote.source],
            client: &self.client,
        };
        let manifest = source.blob(&remote.manifest, true).await?;
        let doc: serde_json::Value = serde_json::from_slice(&manifest)
            .map_err(|e| TravelError::Corrupt(format!("its manifest is not JSON: {e}")))?;
        if doc["annotations"][KEY_ANNOTATION].as_str() != Some(key)
            || doc["artifactType"].as_str() != Some(CHECKPOINT_TYPE)
        {
            return Err(TravelError::Corrupt(
                "its manifest is not this key's checkpoint".into(),
            ));
        }
        let field = |v: &serde_json::Value, name: &str| {
            v[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| TravelError::Corrupt(format!("its manifest has no {name}")))
        };
        let config_digest = field(&doc["config"], "digest")?;
        let layer = &doc["layers"][0];
        let layer_digest = field(layer, "digest")?;
        let diff_id = field(&layer["annotations"], DIFF_ID_ANNOTATION)?;
        let config = source.blob(&config_digest, false).await?;
        let cfg: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| TravelError::Corrupt(format!("its config is not JSON: {e}")))?;
        let diff_ids: Vec<String> = cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.last() != Some(&diff_id) {
            return Err(TravelError::Corrupt(
                "its layer is not its config's last".into(),
            ));
        }
        std::fs::create_dir_all(&self.work).map_err(io("creating", &self.work))?;
        let stem = self
            .work
            .join(format!("load-{}-{}", std::process::id(), short(key)));
        let fetched = stem.with_extension("tar.gz");
        let gz = source.blob_file(&layer_digest, &fetched).await?;
        let tar = stem.with_extension("tar");
        let (g, t) = (gz.clone(), tar.clone());
        let layer_digest_c = layer_digest.clone();
        let written = tokio::task::spawn_blocking(move || {
            write_load_archive(&g, &layer_digest_c, &diff_id, &config, &diff_ids, &t)
        })
        .await
        .map_err(|e| TravelError::Corrupt(e.to_string()))
        .and_then(|r| r);
        if gz == fetched {
            let _ = std::fs::remove_file(&gz);
        }
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tar);
            return Err(e);
        }
        let file = tokio::fs::File::open(&tar)
            .await
            .map_err(io("opening", &tar))?;
        // Open: the name can go now, and nothing is left behind whatever happens next.
        let _ = std::fs::remove_file(&tar);
        Ok(Archive {
            body: tokio_util::io::ReaderStream::new(file).boxed(),
            image_id: config_digest,
        })
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

impl Travelled for Checkpoints {
    fn entry(&self, key: &str) -> Option<Option<String>> {
        self.entries.get(key).map(|r| r.parent.clone())
    }

    fn archive<'a>(&'a self, key: &'a str) -> BoxFuture<'a, std::result::Result<Archive, String>> {
        Box::pin(async move { self.fetch(key).await.map_err(|e| e.to_string()) })
    }
}

/// Writes a `docker load` archive of a checkpoint: its config, every layer named in
/// `manifest.json`, and only the top one's file (decompressed from `gz`, whose digest and
/// diff_id are checked): the engine reads a layer's file only when it lacks the layer.
fn write_load_archive(
    gz: &Path,
    digest: &str,
    diff_id: &str,
    config: &[u8],
    diff_ids: &[String],
    out: &Path,
) -> Result<()> {
    let plain = out.with_extension("layer");
    let res = (|| {
        let f = std::fs::File::open(gz).map_err(io("reading", gz))?;
        let mut compressed = HashingReader::new(std::io::BufReader::new(f));
        let mut w = HashingWriter::new(std::io::BufWriter::new(
            std::fs::File::create(&plain).map_err(io("writing", &plain))?,
        ));
        {
            let mut dec = flate2::read::GzDecoder::new(&mut compressed);
            std::io::copy(&mut dec, &mut w).map_err(io("decompressing", gz))?;
        }
        std::io::copy(&mut compressed, &mut std::io::sink()).map_err(io("reading", gz))?;
        let (got_digest, _) = compressed.finish();
        let (w, got_diff_id, size) = w.finish();
        w.into_inner()
            .map_err(|e| e.into_error())
            .map_err(io("writing", &plain))?;
        if got_digest.to_string() != digest || got_diff_id.to_string() != diff_id {
            return Err(TravelError::Corrupt(format!(
                "{digest} does not match its content"
            )));
        }
        let names = PartialLoad::new(config, diff_ids.len());
        let file = std::fs::File::create(out).map_err(io("writing", out))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
        let mut add = |name: &str, size: u64, data: &mut dyn Read| {
            tar.append_data(&mut PartialLoad::header(size), name, data)
                .map_err(io("writing", out))
        };
        add(&names.config_name, config.len() as u64, &mut &config[..])?;
        let mut layer = std::fs::File::open(&plain).map_err(io("reading", &plain))?;
        let top = names.layers.last().expect("a checkpoint has a layer");
        add(top, size, &mut layer)?;
        let manifest = &names.manifest;
        add("manifest.json", manifest.len() as u64, &mut &manifest[..])?;
        let mut w = tar.into_inner().map_err(io("writing", out))?;
        w.flush().map_err(io("writing", out))
    })();
    let _ = std::fs::remove_file(&plain);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn digest(b: &[u8]) -> String {
        sha256_digest(b)
    }

    #[test]
    fn a_save_gives_its_config_and_only_the_layer_whose_json_has_the_config() {
        let base = tar_of(&[("etc/base", b"base")]);
        let top = tar_of(&[("src/top", b"top")]);
        let config = br#"{"rootfs":{"diff_ids":[]}}"#;
        let config_name = format!("{}.json", digest(config).trim_start_matches("sha256:"));
        // Lexical order, as the engine writes it: the top layer's folder may come first.
        let save = tar_of(&[
            ("0aa/VERSION", b"1.0"),
            (
                "0aa/json",
                br#"{"id":"0aa","parent":"1bb","config":{"Env":[]}}"#,
            ),
            ("0aa/layer.tar", &top),
            ("1bb/VERSION", b"1.0"),
            (
                "1bb/json",
                br#"{"id":"1bb","created":"1970-01-01T00:00:00Z"}"#,
            ),
            ("1bb/layer.tar", &base),
            (&config_name, config),
            ("manifest.json", b"[]"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("top.tar.gz");
        let (got_config, digests) = read_save(&save[..], &config_name, &out).unwrap();
        assert_eq!(got_config.as_deref(), Some(&config[..]));
        let d = digests.expect("the top layer");
        assert_eq!(d.diff_id.to_string(), digest(&top));
        assert_eq!(d.digest.to_string(), digest(&std::fs::read(&out).unwrap()));
    }

    #[test]
    fn a_load_archive_holds_the_config_every_layer_name_and_only_the_top_file() {
        let top = tar_of(&[("src/top", b"top")]);
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("top.tar.gz");
        let (_, d) = crate::oci::layer::compress_tar(
            &top[..],
            &LayerOptions::default(),
            std::fs::File::create(&gz).unwrap(),
        )
        .unwrap();
        let diff_ids = vec![digest(b"base layer"), d.diff_id.to_string()];
        let config =
            serde_json::to_vec(&serde_json::json!({"rootfs": {"diff_ids": diff_ids}})).unwrap();
        let out = dir.path().join("load.tar");
        write_load_archive(
            &gz,
            &d.digest.to_string(),
            &d.diff_id.to_string(),
            &config,
            &diff_ids,
            &out,
        )
        .unwrap();
        let mut names = BTreeMap::new();
        let data = std::fs::read(&out).unwrap();
        for e in tar::Archive::new(&data[..]).entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut b = Vec::new();
            e.read_to_end(&mut b).unwrap();
            names.insert(name, b);
        }
        let config_name = format!("{}.json", digest(&config).trim_start_matches("sha256:"));
        assert_eq!(names.get(&config_name), Some(&config));
        assert_eq!(names.get("1/layer.tar"), Some(&top));
        assert!(!names.contains_key("0/layer.tar"), "the engine has it");
        let m: serde_json::Value = serde_json::from_slice(&names["manifest.json"]).unwrap();
        assert_eq!(
            m[0]["Layers"],
            serde_json::json!(["0/layer.tar", "1/layer.tar"])
        );
        assert_eq!(m[0]["Config"], config_name);

        // A layer that does not match its digest is refused, and leaves nothing.
        let mut bad = std::fs::read(&gz).unwrap();
        let at = bad.len() / 2;
        bad[at] ^= 0x55;
        std::fs::write(&gz, bad).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert!(write_load_archive(
            &gz,
            &d.digest.to_string(),
            &d.diff_id.to_string(),
            &config,
            &diff_ids,
            &out
        )
        .is_err());
        assert!(!out.with_extension("layer").exists());
    }

    #[test]
    fn a_checkpoint_sits_on_the_one_whose_layers_are_all_of_its_own_but_the_last() {
        let layers = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = [
            ("a", layers(&["b0", "a1"])),
            ("b", layers(&["b0", "a1", "b2"])),
            ("x", layers(&["x0", "x1"])),
        ];
        let on = |d: &[String]| sits_on(d, all.iter().map(|(k, d)| (*k, d.as_slice())));
        assert_eq!(on(&all[1].1), Some("a"));
        assert_eq!(on(&all[0].1), None, "it sits on its job's start image");
        assert_eq!(on(&all[2].1), None);
        assert_eq!(on(&[]), None);
    }
}
