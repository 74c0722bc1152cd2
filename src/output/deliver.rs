//! Every output of a build, in any combination, from the per-target images:
//! `--push` (per repository of the `-t` tags; blobs and manifests first, the index last),
//! `--output type=oci,dest=PATH` (a folder, or a tar when PATH ends in `.tar`), `--load`
//! (one platform into the engine, as a docker-archive; the only platform when one was
//! built), `type=docker,dest=FILE` (that archive as a file), `type=local`/`type=tar` (the
//! filesystem, see `rootfs`), `--metadata-file`, `--iidfile`, and the default OCI layout
//! in `./xplat-out/<name>/` when no output was asked for.
//!
//! Base-image layers that stay in a registry are downloaded only when a local output
//! (layout, load) needs their bytes: a push mounts or streams them registry to registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::{OutputError, Result};
pub use super::summary::{BuildSummary, PlatformSummary};
use crate::assemble::show;
use crate::engine::{DockerEngine, Engine as _};
use crate::oci::layout::{write_layout, LayoutRef};
use crate::oci::{
    BlobSource as OciSource, ImageIndex, IndexFormat, LayerBlob, LayerOptions, OciImage,
};
use crate::platform::Platform;
use crate::registry::{
    Blob, BlobSource, ImageRef, PlatformImage, PushEvent, PushOptions, PushRequest, PushSummary,
    RawManifest, RegistryClient,
};

/// Which outputs a build writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutputOptions {
    /// `-t` values, in order.
    pub tags: Vec<String>,
    /// `--push`.
    pub push: bool,
    /// `--output type=oci,dest=PATH`.
    pub oci_dest: Option<PathBuf>,
    /// `--load`.
    pub load: bool,
    /// `--load-platform` (default: the engine's platform).
    pub load_platform: Option<Platform>,
    /// `--metadata-file`.
    pub metadata_file: Option<PathBuf>,
    /// Where the layout goes when no output is asked for (`./xplat-out/<name>`).
    pub default_dir: Option<PathBuf>,
    /// `--output type=local,dest=DIR` (or `-o DIR`): the filesystem, split by platform.
    pub local_dest: Option<PathBuf>,
    /// `--output type=tar,dest=FILE`: the filesystem as one tar, split by platform.
    pub tar_dest: Option<PathBuf>,
    /// `--output type=docker,dest=FILE`: a docker-archive of the `--load` platform's image.
    pub docker_dest: Option<PathBuf>,
    /// `--iidfile FILE`: the index digest.
    pub iidfile: Option<PathBuf>,
    /// The plan the build ran: the `--metadata-file` records it.
    pub plan: Option<crate::plan::BuildPlan>,
}

impl OutputOptions {
    /// No push, no `--output`, no load: the default layout is written.
    pub fn wants_default_layout(&self) -> bool {
        !self.push
            && self.oci_dest.is_none()
            && !self.load
            && self.local_dest.is_none()
            && self.tar_dest.is_none()
            && self.docker_dest.is_none()
    }

    /// Whether an output needs every layer's bytes on this machine.
    fn needs_local_layers(&self, layout: bool) -> bool {
        layout
            || self.load
            || self.local_dest.is_some()
            || self.tar_dest.is_some()
            || self.docker_dest.is_some()
    }
}

/// Checks every `-t` value before any work starts; tags with a digest are refused.
pub fn validate_tags(tags: &[String]) -> Result<Vec<ImageRef>> {
    tags.iter()
        .map(|t| {
            let r = ImageRef::parse(t).map_err(|e| OutputError::InvalidTag {
                tag: t.clone(),
                reason: e.to_string(),
            })?;
            if r.digest.is_some() {
                return Err(OutputError::InvalidTag {
                    tag: t.clone(),
                    reason: "a tag cannot carry a digest".into(),
                });
            }
            Ok(r)
        })
        .collect()
}

/// What [`deliver`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Delivered {
    /// One push summary per target repository.
    pub pushed: Vec<(String, PushSummary)>,
    /// Layouts written (the `--output` one or the default one).
    pub layouts: Vec<PathBuf>,
    /// The engine's `Loaded image` lines.
    pub loaded: Vec<String>,
    /// The one-line hint printed when the default layout was written.
    pub hint: Option<String>,
}

/// The engine side `deliver` needs, when `--load` is asked.
pub struct LoadTarget<'a> {
    /// The engine.
    pub engine: &'a DockerEngine,
    /// Tags for the loaded image when no `-t` was given.
    pub fallback_tag: String,
}

/// Writes every output asked for in `opts` for `index`.
pub async fn deliver(
    index: &ImageIndex,
    opts: &OutputOptions,
    client: &RegistryClient,
    load: Option<&LoadTarget<'_>>,
    work_dir: &Path,
    on_push: &(dyn Fn(&PushEvent) + Send + Sync),
) -> Result<Delivered> {
    let refs = validate_tags(&opts.tags)?;
    let mut done = Delivered::default();
    if opts.push {
        if refs.is_empty() {
            return Err(OutputError::PushWithoutTag);
        }
        for (target, tags) in group_by_repository(&refs) {
            let name = format!("{}/{}", target.registry, target.repository);
            let req = push_request(index, &target, tags)?;
            let summary = client
                .push(&req, &PushOptions::default(), on_push)
                .await
                .map_err(OutputError::registry(format!("pushing {name}")))?;
            done.pushed.push((name, summary));
        }
    }
    let layout_dest = match (&opts.oci_dest, &opts.default_dir) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(d)) if opts.wants_default_layout() => Some(d.clone()),
        _ => None,
    };
    let local = if opts.needs_local_layers(layout_dest.is_some()) {
        Some(materialize(index, client, work_dir).await?)
    } else {
        None
    };
    if let (Some(dest), Some(local)) = (&layout_dest, &local) {
        let layout_refs: Vec<LayoutRef> = opts.tags.iter().map(|t| LayoutRef::parse(t)).collect();
        if !dest.extension().is_some_and(|e| e == "tar") {
            std::fs::create_dir_all(dest).map_err(OutputError::io("creating", dest))?;
        }
        write_layout(dest, local, &layout_refs).map_err(OutputError::oci(format!(
            "writing the OCI layout {}",
            dest.display()
        )))?;
        done.layouts.push(dest.clone());
        if opts.oci_dest.is_none() {
            done.hint = Some(format!(
                "wrote the OCI layout to {} (push with --push -t REGISTRY/REPOSITORY:TAG, load into Docker with --load)",
                dest.display()
            ));
        }
    }
    if let (Some(dest), Some(local)) = (&opts.local_dest, &local) {
        super::rootfs::write_local(local, dest)?;
    }
    if let (Some(dest), Some(local)) = (&opts.tar_dest, &local) {
        super::rootfs::write_tar_file(local, dest)?;
    }
    if opts.load || opts.docker_dest.is_some() {
        let local = local.as_ref().expect("materialized for --load");
        let wanted = load_platform(local, opts, load.map(|t| t.engine.platform()));
        let tags = if opts.tags.is_empty() {
            vec![load.map_or_else(|| "image:latest".into(), |t| t.fallback_tag.clone())]
        } else {
            opts.tags.clone()
        };
        if let Some(dest) = &opts.docker_dest {
            write_docker_archive_file(local, &wanted, &tags, dest)?;
        }
        if opts.load {
            let target = load.ok_or_else(|| OutputError::MissingInput {
                what: "an engine".into(),
                needed_by: "--load".into(),
            })?;
            done.loaded = load_image(local, &wanted, &tags, target.engine, work_dir).await?;
        }
    }
    if let Some(path) = &opts.iidfile {
        std::fs::write(path, index.digest().to_string())
            .map_err(OutputError::io("writing", path))?;
    }
    if let Some(path) = &opts.metadata_file {
        let summary = BuildSummary {
            plan: opts.plan.clone(),
            ..BuildSummary::of(index, &opts.tags)
        };
        let doc = serde_json::to_vec_pretty(&summary).map_err(|source| OutputError::Json {
            action: "serializing the metadata file",
            source,
        })?;
        std::fs::write(path, doc).map_err(OutputError::io("writing", path))?;
    }
    Ok(done)
}

/// Tags grouped by repository, in first-seen order.
fn group_by_repository(refs: &[ImageRef]) -> Vec<(ImageRef, Vec<String>)> {
    let mut out: Vec<(ImageRef, Vec<String>)> = Vec::new();
    for r in refs {
        let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
        match out
            .iter_mut()
            .find(|(t, _)| t.registry == r.registry && t.repository == r.repository)
        {
            Some((_, tags)) => {
                if !tags.contains(&tag) {
                    tags.push(tag)
                }
            }
            None => out.push((r.clone(), vec![tag])),
        }
    }
    out
}

/// The push of `index` to `target` under `tags`: per platform the config, the layers and
/// the manifest as the exact bytes hashed, then the index.
pub fn push_request(
    index: &ImageIndex,
    target: &ImageRef,
    tags: Vec<String>,
) -> Result<PushRequest> {
    let mut images = Vec::with_capacity(index.images().len());
    for (p, image) in index.images() {
        let cfg = image.config_blob();
        let mut blobs = vec![Blob {
            digest: cfg.digest().to_string(),
            size: cfg.size(),
            source: BlobSource::Bytes(cfg.bytes().clone()),
        }];
        for l in image.layers() {
            let source = match l.source() {
                OciSource::Bytes(b) => BlobSource::Bytes(b.clone()),
                OciSource::File(f) => BlobSource::File(f.clone()),
                OciSource::Registry { repository } => {
                    let r = ImageRef::parse(repository).map_err(OutputError::registry(format!(
                        "naming the source of layer {}",
                        l.digest()
                    )))?;
                    BlobSource::Remote(r.with_digest(&l.digest().to_string()))
                }
            };
            blobs.push(Blob {
                digest: l.digest().to_string(),
                size: l.size(),
                source,
            });
        }
        images.push(PlatformImage {
            platform: show(p),
            manifest: RawManifest::new(
                image.format().manifest_type(),
                image.manifest_blob().bytes().clone(),
            ),
            blobs,
        });
    }
    Ok(PushRequest {
        target: target.clone(),
        tags,
        images,
        index: RawManifest::new(index.format().index_type(), index.blob().bytes().clone()),
    })
}

/// The same index with every registry-only layer downloaded into `work_dir` (gzip blobs are
/// kept byte for byte, so digests do not change).
pub async fn materialize(
    index: &ImageIndex,
    client: &RegistryClient,
    work_dir: &Path,
) -> Result<ImageIndex> {
    let blob_dir = work_dir.join("blobs");
    std::fs::create_dir_all(&blob_dir).map_err(OutputError::io("creating", &blob_dir))?;
    let mut fetched: BTreeMap<String, LayerBlob> = BTreeMap::new();
    let mut images = Vec::with_capacity(index.images().len());
    let mut changed = false;
    for (p, image) in index.images() {
        let mut layers = Vec::with_capacity(image.layers().len());
        for l in image.layers() {
            let OciSource::Registry { repository } = l.source() else {
                layers.push(l.clone());
                continue;
            };
            changed = true;
            let key = l.digest().to_string();
            if let Some(done) = fetched.get(&key) {
                layers.push(done.clone());
                continue;
            }
            let action = format!("downloading a base-image layer from {repository}");
            let r = ImageRef::parse(repository).map_err(OutputError::registry(action.clone()))?;
            let mut stream = client
                .blob_stream(&r, &key)
                .await
                .map_err(OutputError::registry(action.clone()))?;
            let path = blob_dir.join(l.digest().hex());
            let mut f = tokio::fs::File::create(&path)
                .await
                .map_err(OutputError::io("creating", &path))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(OutputError::registry(action.clone()))?;
                f.write_all(&chunk)
                    .await
                    .map_err(OutputError::io("writing", &path))?;
            }
            f.flush().await.map_err(OutputError::io("writing", &path))?;
            let blob = LayerBlob::import_file(
                &path,
                &blob_dir.join(format!("{}.gz", l.digest().hex())),
                &LayerOptions::default(),
            )
            .map_err(OutputError::oci(action))?;
            fetched.insert(key, blob.clone());
            layers.push(blob);
        }
        let rebuilt = OciImage::with_annotations(
            image.config().clone(),
            layers,
            image.format(),
            image.manifest().annotations.clone().unwrap_or_default(),
        )
        .map_err(OutputError::oci("rebuilding an image with local layers"))?;
        images.push((p.clone(), rebuilt));
    }
    if !changed {
        return Ok(index.clone());
    }
    ImageIndex::with_annotations(
        images,
        index.format(),
        index.document().annotations.clone().unwrap_or_default(),
    )
    .map_err(OutputError::oci("rebuilding the index with local layers"))
}

/// The image of `index` for `wanted` (arm64 `v8` and none are the same).
pub fn image_for<'a>(index: &'a ImageIndex, wanted: &Platform) -> Result<&'a OciImage> {
    index
        .images()
        .iter()
        .find(|(p, _)| wanted.matches(p))
        .map(|(_, i)| i)
        .ok_or_else(|| OutputError::NoImageForPlatform {
            wanted: show(wanted),
            available: index
                .images()
                .iter()
                .map(|(p, _)| show(p))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The platform `--load` (and `type=docker`) takes: `--load-platform`; else the only image
/// when one platform was built (whatever the engine's platform is, as buildx loads it);
/// else the engine's platform.
pub fn load_platform(
    index: &ImageIndex,
    opts: &OutputOptions,
    engine: Option<&Platform>,
) -> Platform {
    if let Some(p) = &opts.load_platform {
        return p.clone();
    }
    match (index.images(), engine) {
        ([(only, _)], _) => only.clone(),
        (_, Some(e)) => e.clone(),
        (images, None) => images
            .first()
            .map(|(p, _)| p.clone())
            .unwrap_or_else(Platform::host),
    }
}

/// Writes the image of `index` for `wanted` as a docker-archive (`docker load`'s input).
fn write_docker_archive_file(
    index: &ImageIndex,
    wanted: &Platform,
    tags: &[String],
    path: &Path,
) -> Result<()> {
    let image = image_for(index, wanted)?;
    // The engine's docker-archive loader wants Docker-family media types to be optional;
    // it reads manifest.json, so the OCI documents are fine as they are.
    let f = std::fs::File::create(path).map_err(OutputError::io("creating", path))?;
    let repo_tags: Vec<String> = tags.iter().map(|t| docker_tag(t)).collect();
    let mut w = crate::oci::docker_archive::write_docker_archive(
        std::io::BufWriter::new(f),
        &[(image, repo_tags)],
    )
    .map_err(OutputError::oci(format!(
        "writing the image for {} as a docker archive",
        show(wanted)
    )))?;
    std::io::Write::flush(&mut w).map_err(OutputError::io("writing", path))?;
    Ok(())
}

async fn load_image(
    index: &ImageIndex,
    wanted: &Platform,
    tags: &[String],
    engine: &DockerEngine,
    work_dir: &Path,
) -> Result<Vec<String>> {
    let path = work_dir.join(format!("load-{}.tar", show(wanted).replace('/', "-")));
    write_docker_archive_file(index, wanted, tags, &path)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(OutputError::io("opening", &path))?;
    let body = tokio_util::io::ReaderStream::new(file).boxed();
    let loaded = engine
        .load_image(body)
        .await
        .map_err(OutputError::engine(format!(
            "loading the {} image into the engine",
            show(wanted)
        )))?;
    let _ = std::fs::remove_file(&path);
    Ok(loaded)
}

/// `repo:tag` with `:latest` added when no tag is given (docker-archive RepoTags need one).
fn docker_tag(t: &str) -> String {
    match t.rsplit_once(':') {
        Some((_, tag)) if !tag.contains('/') => t.to_string(),
        _ => format!("{t}:latest"),
    }
}

/// The format an index should be pushed in, from `--index-format`.
pub fn index_format(value: &str) -> Option<IndexFormat> {
    match value {
        "oci" => Some(IndexFormat::Oci),
        "docker" => Some(IndexFormat::Docker),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_takes_the_only_platform_built_whatever_the_engine_is() {
        use crate::oci::{ImageConfig, OciImage};
        let p = |s: &str| Platform::parse(s).unwrap();
        let image = |plat: &Platform| {
            OciImage::new(
                ImageConfig::for_platform(plat, Some(0)),
                vec![],
                IndexFormat::Oci,
            )
            .unwrap()
        };
        let one = ImageIndex::new(
            vec![(p("linux/arm64"), image(&p("linux/arm64")))],
            IndexFormat::Oci,
        )
        .unwrap();
        let two = ImageIndex::new(
            vec![
                (p("linux/arm64"), image(&p("linux/arm64"))),
                (p("linux/amd64"), image(&p("linux/amd64"))),
            ],
            IndexFormat::Oci,
        )
        .unwrap();
        let engine = p("linux/amd64");
        let opts = OutputOptions::default();
        assert_eq!(load_platform(&one, &opts, Some(&engine)), p("linux/arm64"));
        assert_eq!(load_platform(&two, &opts, Some(&engine)), p("linux/amd64"));
        let chosen = OutputOptions {
            load_platform: Some(p("linux/arm64")),
            ..OutputOptions::default()
        };
        assert_eq!(
            load_platform(&two, &chosen, Some(&engine)),
            p("linux/arm64")
        );
    }

    #[test]
    fn tags_group_by_repository_in_order() {
        let refs = validate_tags(&[
            "127.0.0.1:5000/app:1.0".into(),
            "127.0.0.1:5000/other:x".into(),
            "127.0.0.1:5000/app:latest".into(),
            "127.0.0.1:5000/app:1.0".into(),
        ])
        .unwrap();
        let g = group_by_repository(&refs);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].0.repository, "app");
        assert_eq!(g[0].1, ["1.0", "latest"]);
        assert_eq!(g[1].1, ["x"]);
    }

    #[test]
    fn invalid_tags_are_refused_before_any_work() {
        for bad in [
            "reg/App:1.0",
            "reg/app:bad tag",
            "reg/app@sha256:abc",
            "reg/app:-x",
        ] {
            assert!(
                validate_tags(&[bad.to_string()]).is_err(),
                "{bad} must be refused"
            );
        }
        assert!(validate_tags(&["localhost:5000/a/b:1.0-rc_1".into()]).is_ok());
    }

    #[test]
    fn docker_tags_get_latest() {
        assert_eq!(
            docker_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(docker_tag("app:1"), "app:1");
    }
}
