//! Base images for assembled jobs: a resolved base (PLAN.md's `ResolvedBase`) becomes an
//! `OciImage` whose layers stay where they are (a registry base's layers stay in the
//! registry; an engine-only base is exported from the engine once per image id), and any
//! layer's bytes are made local on demand (downloaded once into the cache) when the
//! assembler must read them (the base's filesystem index, `COPY --from` an image).
//!
//! `ResolvedBase`/`BaseOrigin`/`BaseInfo` mirror the types PLAN.md fixes for the lead's
//! resolver; when it lands they become re-exports of it.

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::{AssembleError, Result};
use super::layers::LayerCache;
use super::show;
use crate::engine::DockerEngine;
use crate::oci::config::History;
use crate::oci::docker_archive::{read_docker_save, SavedImage};
use crate::oci::{BlobSource, ImageConfig, IndexFormat, LayerBlob, OciImage};
use crate::once::OnceMap;
use crate::platform::Platform;
use crate::registry::{ImageRef, RegistryClient};

pub use crate::plan::{BaseInfo, BaseOrigin, ResolvedBase};

/// Resolves base images (the lead's resolver implements it; [`RegistryBases`] and
/// [`KnownBases`] are the two here).
pub trait BaseResolver: Send + Sync {
    /// The base `reference` for `platform`.
    fn resolve<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<ResolvedBase>>;
}

/// Resolves every base in a registry (what the assembler did before the one resolver).
pub struct RegistryBases<'a> {
    /// The registry client.
    pub client: &'a RegistryClient,
}

impl BaseResolver for RegistryBases<'_> {
    fn resolve<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<ResolvedBase>> {
        Box::pin(async move {
            crate::ops::resolve::resolve_in_registry(self.client, reference, platform)
                .await
                .map_err(|e| AssembleError::Resolve(Box::new(e)))
        })
    }
}

/// Bases resolved beforehand by the one resolver (`ops::resolve`).
pub struct KnownBases<'b>(pub &'b crate::plan::Bases);

impl BaseResolver for KnownBases<'_> {
    fn resolve<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
    ) -> BoxFuture<'a, Result<ResolvedBase>> {
        Box::pin(async move {
            self.0
                .get(&crate::plan::base_key(reference, platform))
                .cloned()
                .ok_or_else(|| AssembleError::MissingInput {
                    what: format!("the base image {reference} for {}", show(platform)),
                    needed_by: "assembling".into(),
                })
        })
    }
}

/// An engine-only base exported: its layers (compressed, in the cache) and its config.
type Exported = (Vec<LayerBlob>, ImageConfig);

/// What the assembler needs from an engine for engine-only bases: `docker save` of one image
/// into a folder. The lead's engine implements it; [`DockerEngine`] does here.
pub trait EngineImages: Send + Sync {
    /// Saves `image_id` into `dir` (an empty folder) and reads it.
    fn save<'a>(&'a self, image_id: &'a str, dir: &'a Path) -> BoxFuture<'a, Result<SavedImage>>;
}

impl EngineImages for DockerEngine {
    fn save<'a>(&'a self, image_id: &'a str, dir: &'a Path) -> BoxFuture<'a, Result<SavedImage>> {
        Box::pin(async move {
            let action = format!("exporting {image_id} from the engine");
            let tar_path = dir.with_extension("tar");
            std::fs::create_dir_all(dir).map_err(AssembleError::io("creating", dir))?;
            let stream = self
                .export_image(image_id)
                .map(|c| c.map_err(AssembleError::engine(action.clone())));
            to_file(stream, &tar_path).await?;
            let file =
                std::fs::File::open(&tar_path).map_err(AssembleError::io("opening", &tar_path))?;
            let saved = read_docker_save(std::io::BufReader::new(file), dir)
                .map_err(AssembleError::oci(action.clone()));
            let _ = std::fs::remove_file(&tar_path);
            saved?
                .into_iter()
                .next()
                .ok_or_else(|| AssembleError::MissingInput {
                    what: format!("image {image_id} in the engine's export"),
                    needed_by: action,
                })
        })
    }
}

/// Turns saved engine layers into gzip blobs without recompressing what is known: a layer
/// with the diff_id of one of `known` (e.g. the base's registry layers, which then stay in
/// the registry) or of a blob the cache has is reused; new ones are compressed and kept.
pub fn saved_layers(
    saved: &SavedImage,
    cache: &LayerCache,
    work_dir: &Path,
    known: &[LayerBlob],
) -> Result<Vec<LayerBlob>> {
    let expected = &saved.config.rootfs.diff_ids;
    if expected.len() != saved.layers.len() {
        return Err(AssembleError::Oci {
            action: "reading an engine export".into(),
            source: crate::oci::OciError::HistoryLayerCount {
                non_empty: expected.len(),
                layers: saved.layers.len(),
            },
        });
    }
    let mut out = Vec::with_capacity(expected.len());
    for (i, (path, diff_id)) in saved.layers.iter().zip(expected).enumerate() {
        if let Some(k) = known.iter().find(|k| k.diff_id() == *diff_id) {
            out.push(k.clone());
            continue;
        }
        if let Some(hit) = cache.by_diff_id(*diff_id) {
            out.push(hit);
            continue;
        }
        let action = format!("importing layer {}", path.display());
        let dest = work_dir.join(format!("layer-{i}-{}.tar.gz", &diff_id.hex()[..12]));
        let blob = LayerBlob::import_file(path, &dest, cache.options())
            .map_err(AssembleError::oci(action))?;
        if blob.diff_id() != *diff_id {
            return Err(AssembleError::Oci {
                action: format!("importing layer {}", path.display()),
                source: crate::oci::OciError::DigestMismatch {
                    what: "an exported layer".into(),
                    expected: diff_id.to_string(),
                    actual: blob.diff_id().to_string(),
                },
            });
        }
        out.push(cache.keep(blob));
    }
    Ok(out)
}

/// Makes resolved bases into images (engine exports memoized by image id) and layer bytes
/// local (registry downloads memoized by digest).
pub struct Bases<'a> {
    /// Resolves references.
    pub resolver: &'a dyn BaseResolver,
    /// For registry layers the assembler must read.
    pub registry: Option<&'a RegistryClient>,
    /// For engine-only bases.
    pub engine: Option<&'a dyn EngineImages>,
    /// One cell per image id: platforms assembled at once that share an engine-only base
    /// export it once, into one folder.
    exported: OnceMap<String, Exported>,
    /// One cell per blob path: platforms assembled at once that read the same registry blob
    /// download it once.
    downloads: OnceMap<PathBuf, ()>,
}

impl<'a> Bases<'a> {
    /// A base source.
    pub fn new(
        resolver: &'a dyn BaseResolver,
        registry: Option<&'a RegistryClient>,
        engine: Option<&'a dyn EngineImages>,
    ) -> Bases<'a> {
        Bases {
            resolver,
            registry,
            engine,
            exported: OnceMap::default(),
            downloads: OnceMap::default(),
        }
    }

    /// The image of `reference` for `platform`, in `format`.
    pub async fn image(
        &self,
        reference: &str,
        platform: &Platform,
        format: IndexFormat,
        cache: &LayerCache,
        work_dir: &Path,
    ) -> Result<OciImage> {
        let base = self.resolver.resolve(reference, platform).await?;
        let action = format!("using base image {reference} for {}", show(platform));
        let mut config = base.info.config.clone();
        let layers = match &base.origin {
            BaseOrigin::Registry {
                repository, layers, ..
            } => {
                if config.rootfs.diff_ids.len() != layers.len() {
                    return Err(AssembleError::Oci {
                        action,
                        source: crate::oci::OciError::HistoryLayerCount {
                            non_empty: config.rootfs.diff_ids.len(),
                            layers: layers.len(),
                        },
                    });
                }
                layers
                    .iter()
                    .zip(&config.rootfs.diff_ids)
                    .map(|(d, diff_id)| {
                        LayerBlob::from_registry(d.clone(), *diff_id, repository.clone())
                    })
                    .collect::<crate::oci::Result<Vec<_>>>()
                    .map_err(AssembleError::oci(action.clone()))?
            }
            BaseOrigin::Engine { image_id } => {
                let (layers, saved) = self.engine_layers(image_id, cache, work_dir).await?;
                // The saved config is the engine's whole config (history included).
                config = saved;
                layers
            }
        };
        clean_engine_noise(&mut config);
        // Some images (made by umoci or by hand) carry no history, or one that does not
        // match their layers: give every base layer one entry so ours can follow.
        if config.non_empty_history() != layers.len() {
            config.history = (0..layers.len())
                .map(|_| History {
                    created_by: Some(format!("layer of {reference}")),
                    ..History::default()
                })
                .collect();
        }
        // The index entry is the platform the user asked for (arm64 "v8" and none are one).
        config.os = platform.os.clone();
        config.architecture = platform.architecture.clone();
        config.variant = (!platform.variant.is_empty()).then(|| platform.variant.clone());
        OciImage::new(config, layers, format).map_err(AssembleError::oci(action))
    }

    async fn engine_layers(
        &self,
        image_id: &str,
        cache: &LayerCache,
        work_dir: &Path,
    ) -> Result<(Vec<LayerBlob>, ImageConfig)> {
        let cell = self.exported.cell(&image_id.to_string());
        let out = cell
            .get_or_try_init(|| async {
                let engine = self.engine.ok_or_else(|| AssembleError::MissingInput {
                    what: format!("an engine to export {image_id}"),
                    needed_by: "an engine-only base image".into(),
                })?;
                let dir = work_dir.join(format!(
                    "base-{}",
                    image_id
                        .trim_start_matches("sha256:")
                        .chars()
                        .take(16)
                        .collect::<String>()
                ));
                let saved = engine.save(image_id, &dir).await?;
                let layers = saved_layers(&saved, cache, &dir, &[])?;
                Ok::<_, AssembleError>((layers, saved.config.clone()))
            })
            .await?;
        Ok(out.clone())
    }

    /// `layers` with every registry blob downloaded (once, into `dir`/blobs/sha256).
    pub async fn local(&self, layers: &[LayerBlob], dir: &Path) -> Result<Vec<LayerBlob>> {
        let mut out = Vec::with_capacity(layers.len());
        for l in layers {
            let BlobSource::Registry { repository } = l.source() else {
                out.push(l.clone());
                continue;
            };
            let path = dir.join("blobs/sha256").join(l.digest().hex());
            self.downloads
                .cell(&path)
                .get_or_try_init(|| async {
                    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(l.size()) {
                        self.download(repository, l, &path).await?;
                    }
                    Ok::<_, AssembleError>(())
                })
                .await?;
            out.push(l.with_source(BlobSource::File(path)));
        }
        Ok(out)
    }

    async fn download(&self, repository: &str, l: &LayerBlob, path: &PathBuf) -> Result<()> {
        let action = format!("downloading layer {} from {repository}", l.digest());
        let client = self.registry.ok_or_else(|| AssembleError::MissingInput {
            what: "a registry client".into(),
            needed_by: action.clone(),
        })?;
        let r = ImageRef::parse(&format!("{repository}@{}", l.digest()))
            .map_err(AssembleError::registry(action.clone()))?;
        let stream = client
            .blob_stream(&r, &l.digest().to_string())
            .await
            .map_err(AssembleError::registry(action.clone()))?
            .map(|c| c.map_err(AssembleError::registry(action.clone())));
        let parent = path.parent().expect("has a parent");
        std::fs::create_dir_all(parent).map_err(AssembleError::io("creating", parent))?;
        // A name of its own per download: the finals of several platforms are assembled at
        // once and may fetch the same blob at the same time.
        let tmp = super::layers::tmp_name(path);
        to_file(stream, &tmp).await?;
        std::fs::rename(&tmp, path).map_err(AssembleError::io("renaming", &tmp))
    }
}

/// Streams `chunks` into a new file at `path` (never held whole in memory).
async fn to_file(
    mut chunks: impl futures::Stream<Item = Result<bytes::Bytes>> + Unpin,
    path: &Path,
) -> Result<()> {
    let mut f = tokio::fs::File::create(path)
        .await
        .map_err(AssembleError::io("creating", path))?;
    while let Some(chunk) = chunks.next().await {
        f.write_all(&chunk?)
            .await
            .map_err(AssembleError::io("writing", path))?;
    }
    f.flush().await.map_err(AssembleError::io("writing", path))
}

/// Drops engine-only fields a commit adds that no Dockerfile asked for.
pub fn clean_engine_noise(config: &mut ImageConfig) {
    for k in ["container", "container_config", "docker_version"] {
        config.extra.remove(k);
    }
    if let Some(c) = config.config.as_mut() {
        for k in [
            "Hostname",
            "Domainname",
            "Image",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
        ] {
            c.extra.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{LayerEntry, LayerOptions};

    /// A `docker save`-like image with two plain-tar layers on disk.
    fn saved(dir: &Path) -> (SavedImage, Vec<LayerBlob>) {
        let mut layers = Vec::new();
        let mut blobs = Vec::new();
        for (i, name) in ["a", "b"].iter().enumerate() {
            let blob = LayerBlob::build(
                &[LayerEntry::file(*name, &b"x"[..], 0o644)],
                &LayerOptions::default(),
            )
            .unwrap();
            let mut plain = Vec::new();
            std::io::copy(
                &mut flate2::read::GzDecoder::new(blob.open().unwrap()),
                &mut plain,
            )
            .unwrap();
            let p = dir.join(format!("layer{i}.tar"));
            std::fs::write(&p, plain).unwrap();
            layers.push(p);
            blobs.push(blob);
        }
        let mut config = ImageConfig::default();
        config.rootfs.diff_ids = blobs.iter().map(LayerBlob::diff_id).collect();
        let image = SavedImage {
            repo_tags: vec![],
            config_bytes: Default::default(),
            config,
            layers,
        };
        (image, blobs)
    }

    #[test]
    fn exported_layers_are_compressed_once_and_known_base_layers_stay_in_the_registry() {
        let work = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let (image, blobs) = saved(work.path());
        let cache = LayerCache::new(
            Some(cache_dir.path().into()),
            work.path(),
            LayerOptions::default(),
        );
        let base = LayerBlob::from_registry(
            blobs[0].descriptor().clone(),
            blobs[0].diff_id(),
            "reg/base",
        )
        .unwrap();
        let first = saved_layers(&image, &cache, work.path(), std::slice::from_ref(&base)).unwrap();
        assert!(
            matches!(first[0].source(), BlobSource::Registry { .. }),
            "the base layer is reused"
        );
        assert_eq!(
            first[1].digest(),
            blobs[1].digest(),
            "same bytes as xplat writes them"
        );
        // A second export finds the compressed blob by diff_id in the cache (no recompression:
        // the plain tar can even be gone).
        std::fs::remove_file(&image.layers[1]).unwrap();
        let again = saved_layers(&image, &cache, work.path(), &[base]).unwrap();
        assert_eq!(again[1].digest(), blobs[1].digest());
        let BlobSource::File(p) = again[1].source() else {
            panic!("a cached file")
        };
        assert!(p.starts_with(cache_dir.path()));
    }
}
