//! [`DockerEngine`]: the bollard implementation of [`Engine`], and the connection.
//!
//! Flow of a RUN step (what the classic builder does): create with `Entrypoint:[""]`
//! → attach (before start, or the first output is lost) → start → drain output →
//! wait → commit → remove (force, v=true).
//!
//! Split: `connect` (endpoints, API negotiation, unreachable-engine errors), `attach`
//! (attach, start, drain output, wait; kill and remove on cancel).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::errors::Error as Bollard;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, ContainerArchiveInfoOptionsBuilder,
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    ListImagesOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::config::Endpoint;
use super::error::{EngineError, Result};
use super::guard::Containers;
use super::request;
use super::{
    ContainerConfig, ContainerId, Engine, EngineProfile, ExecSpec, ImageInfo, ImageLookup,
    OutputSink, PathLookup, PullProgress, PullSink, RunSpec, TarBody, MANAGED_LABEL,
};
use crate::platform::Platform;

mod attach;
mod connect;
mod upper;
use connect::root_cause;

/// The oldest engine API xplat works with (Docker 20.10).
pub const MIN_API_VERSION: &str = "1.41";

/// A connected Docker engine. Cheap to clone; clones share the set of live containers.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    pub(super) docker: Docker,
    endpoint: String,
    pub(super) target: Endpoint,
    api_version: String,
    platform: Platform,
    profile: EngineProfile,
    pub(super) containers: Arc<Containers>,
    /// The image store's config folder, when commits are made from upper directories
    /// (see `upper`).
    image_store: Option<std::path::PathBuf>,
}

impl DockerEngine {
    /// The endpoint, as shown to users.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The negotiated API version.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The engine's own commit (`POST /commit`), never the one from the upper directory
    /// that [`Engine::commit`] makes where it can: the two are compared in the tests.
    pub async fn commit_by_engine(
        &self,
        id: &ContainerId,
        config: &ContainerConfig,
    ) -> Result<String> {
        let opts = CommitContainerOptionsBuilder::default()
            .container(&id.0)
            .pause(false)
            .build();
        let res = self
            .docker
            .commit_container(opts, request::commit_config(config))
            .await
            .map_err(|source| EngineError::Commit {
                id: id.0.clone(),
                source,
            })?;
        Ok(res.id)
    }

    /// Ids of containers created through this engine and not removed yet.
    pub fn live_containers(&self) -> Vec<ContainerId> {
        self.containers.snapshot()
    }

    async fn force_remove(&self, id: &ContainerId) -> Result<()> {
        force_remove(&self.docker, &self.containers, id).await
    }

    /// Force-removes every recorded container (but those being retired, with
    /// `skip_retiring`); returns how many.
    async fn remove_live(&self, skip_retiring: bool) -> Result<usize> {
        let ids: Vec<ContainerId> = self
            .containers
            .snapshot()
            .into_iter()
            .filter(|id| !(skip_retiring && self.containers.is_retiring(id)))
            .collect();
        let mut first_err = None;
        for id in &ids {
            if let Err(e) = self.force_remove(id).await {
                first_err.get_or_insert(e);
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(ids.len()),
        }
    }

    /// Every image matching the label filter `filter` (`KEY` or `KEY=VALUE`). all=true: a
    /// step image with children is an "intermediate" image, which the engine leaves out of
    /// a plain listing (found by the first exec pass).
    async fn images_labelled(&self, filter: &str) -> Result<Vec<bollard::models::ImageSummary>> {
        let filters = HashMap::from([("label", vec![filter])]);
        let opts = ListImagesOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_images(Some(opts))
            .await
            .map_err(|source| EngineError::ListImages {
                label: filter.to_string(),
                source,
            })
    }

    async fn inspect(&self, reference: &str) -> Result<ImageLookup> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => Ok(ImageLookup::Found(Box::new(image_info(img)))),
            Err(Bollard::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(ImageLookup::Missing),
            Err(source) => Err(EngineError::InspectImage {
                reference: reference.into(),
                source,
            }),
        }
    }
}

/// Removes a container (force, with its anonymous volumes) and forgets it; one already
/// gone, or already being removed, is fine.
async fn force_remove(docker: &Docker, containers: &Containers, id: &ContainerId) -> Result<()> {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(&id.0, Some(opts)).await {
        Ok(()) => {}
        // Already gone, or its removal is already under way: both fine.
        Err(Bollard::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }) => {}
        Err(source) => {
            return Err(EngineError::RemoveContainer {
                id: id.0.clone(),
                source,
            })
        }
    }
    containers.remove(id);
    Ok(())
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        // Only the last clone cleans up; see guard.rs for why this is a best effort.
        if Arc::strong_count(&self.containers) != 1 || self.containers.is_empty() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (docker, containers) = (self.docker.clone(), self.containers.clone());
        handle.spawn(async move {
            for id in containers.snapshot() {
                let _ = force_remove(&docker, &containers, &id).await;
            }
        });
    }
}

impl Engine for DockerEngine {
    fn platform(&self) -> &Platform {
        &self.platform
    }

    fn profile(&self) -> &EngineProfile {
        &self.profile
    }

    fn start_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<()>> {
        async move {
            self.docker
                .start_container(&id.0, None::<StartContainerOptions>)
                .await
                .map_err(|source| EngineError::Start {
                    id: id.0.clone(),
                    source,
                })
        }
        .boxed()
    }

    fn exec<'a>(
        &'a self,
        id: &'a ContainerId,
        spec: &'a ExecSpec,
        output: OutputSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<i64>> {
        let work = async move {
            let err = |source| EngineError::Exec {
                id: id.0.clone(),
                source,
            };
            let created = self
                .docker
                .create_exec(&id.0, request::exec_config(spec))
                .await
                .map_err(err)?;
            let started = self
                .docker
                .start_exec(&created.id, None::<StartExecOptions>)
                .await
                .map_err(err)?;
            if let StartExecResults::Attached {
                output: out,
                mut input,
            } = started
            {
                if let Some(bytes) = &spec.stdin {
                    use tokio::io::AsyncWriteExt;
                    let io = |e: std::io::Error| EngineError::ExecInput {
                        id: id.0.clone(),
                        reason: e.to_string(),
                    };
                    // Not shut down: over TLS the daemon answers a half-close by dropping
                    // the connection without close_notify, which rustls reports as an
                    // error. The command reads exactly the bytes it is given.
                    input.write_all(&bytes.0).await.map_err(io)?;
                    input.flush().await.map_err(io)?;
                }
                self.drain(id, out, output).await?;
            }
            let inspected = self.docker.inspect_exec(&created.id).await.map_err(err)?;
            inspected
                .exit_code
                .ok_or_else(|| EngineError::NoExitCode { id: id.0.clone() })
        };
        async move {
            tokio::select! {
                res = work => res,
                _ = cancel.cancelled() => self.abandon(id).await,
            }
        }
        .boxed()
    }

    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut labels: HashMap<String, String> =
                labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
            let req = bollard::models::VolumeCreateRequest {
                name: Some(name.into()),
                labels: Some(labels),
                ..Default::default()
            };
            self.docker
                .create_volume(req)
                .await
                .map(|_| ())
                .map_err(|source| EngineError::CreateVolume {
                    name: name.into(),
                    source,
                })
        }
        .boxed()
    }

    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        self.delete_volume(name).boxed()
    }

    fn inspect_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<ImageLookup>> {
        self.inspect(reference).boxed()
    }

    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
        progress: PullSink<'a>,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let p = platform.format();
            let opts = CreateImageOptionsBuilder::default()
                .from_image(reference)
                .platform(&p)
                .build();
            let pull_err = |message: String| EngineError::Pull {
                reference: reference.into(),
                platform: p.clone(),
                message,
            };
            let mut stream = self.docker.create_image(Some(opts), None, None);
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| pull_err(e.to_string()))?;
                if let Some(detail) = info.error_detail {
                    return Err(pull_err(detail.message.unwrap_or_default()));
                }
                let detail = info.progress_detail.unwrap_or_default();
                progress(PullProgress {
                    layer: info.id,
                    status: info.status.unwrap_or_default(),
                    current: detail.current,
                    total: detail.total,
                });
            }
            Ok(())
        }
        .boxed()
    }

    fn create_container<'a>(&'a self, spec: &'a RunSpec) -> BoxFuture<'a, Result<ContainerId>> {
        async move {
            let options = spec.platform.as_ref().map(|p| {
                CreateContainerOptionsBuilder::default()
                    .platform(&p.format())
                    .build()
            });
            let created = self
                .docker
                .create_container(options, request::container_config(spec))
                .await
                .map_err(|source| EngineError::CreateContainer {
                    image: spec.image.clone(),
                    source,
                })?;
            let id = ContainerId(created.id);
            self.containers.insert(id.clone());
            Ok(id)
        }
        .boxed()
    }

    fn put_archive<'a>(
        &'a self,
        id: &'a ContainerId,
        dest: &'a str,
        tar: TarBody,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let opts = UploadToContainerOptionsBuilder::default()
                .path(dest)
                .no_overwrite_dir_non_dir("true")
                .build();
            self.docker
                .upload_to_container(&id.0, Some(opts), bollard::body_try_stream(tar))
                .await
                .map_err(|source| EngineError::PutArchive {
                    id: id.0.clone(),
                    path: dest.into(),
                    source,
                })
        }
        .boxed()
    }

    fn get_archive<'a>(
        &'a self,
        id: &'a ContainerId,
        path: &'a str,
    ) -> BoxStream<'a, Result<Bytes>> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        self.docker
            .download_from_container(&id.0, Some(opts))
            .map_err(move |source| EngineError::GetArchive {
                id: id.0.clone(),
                path: path.into(),
                source,
            })
            .boxed()
    }

    fn stat_path<'a>(
        &'a self,
        id: &'a ContainerId,
        path: &'a str,
    ) -> BoxFuture<'a, Result<PathLookup>> {
        async move {
            let opts = ContainerArchiveInfoOptionsBuilder::default()
                .path(path)
                .build();
            match self
                .docker
                .get_container_archive_info(&id.0, Some(opts))
                .await
            {
                Ok(st) => Ok(PathLookup::Found(request::path_stat(
                    &st.name,
                    st.size,
                    st.file_mode,
                    Some(st.link_target.as_str()).filter(|t| !t.is_empty()),
                ))),
                Err(Bollard::DockerResponseServerError {
                    status_code: 404, ..
                }) => Ok(PathLookup::Missing),
                Err(source) => Err(EngineError::StatPath {
                    id: id.0.clone(),
                    path: path.into(),
                    source,
                }),
            }
        }
        .boxed()
    }

    fn run_container<'a>(
        &'a self,
        id: &'a ContainerId,
        output: OutputSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<i64>> {
        self.run(id, output, cancel).boxed()
    }

    fn commit<'a>(
        &'a self,
        id: &'a ContainerId,
        config: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<String>> {
        async move {
            if let Some(image) = self.commit_from_upper(id, config).await? {
                return Ok(image);
            }
            self.commit_by_engine(id, config).await
        }
        .boxed()
    }

    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<()>> {
        self.force_remove(id).boxed()
    }

    fn find_image_by_label<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<ImageLookup>> {
        async move {
            let mut images = self.images_labelled(&format!("{key}={value}")).await?;
            // Newest first; the id breaks ties so the choice is stable.
            images.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
            match images.first() {
                Some(img) => self.inspect(&img.id).await,
                None => Ok(ImageLookup::Missing),
            }
        }
        .boxed()
    }

    fn images_by_label<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>>> {
        async move {
            let mut images = self.images_labelled(key).await?;
            // Oldest first, so the newest image per value wins.
            images.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
            Ok(images
                .into_iter()
                .filter_map(|img| img.labels.get(key).map(|v| (v.clone(), img.id.clone())))
                .collect())
        }
        .boxed()
    }

    fn load<'a>(&'a self, tar: TarBody) -> BoxFuture<'a, Result<Vec<String>>> {
        self.load_image(tar).boxed()
    }

    fn tag_image<'a>(&'a self, image: &'a str, target: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let (repo, tag) = split_tag(target).ok_or_else(|| EngineError::InvalidTag {
                reference: target.into(),
            })?;
            let opts = TagImageOptionsBuilder::default()
                .repo(repo)
                .tag(tag)
                .build();
            self.docker
                .tag_image(image, Some(opts))
                .await
                .map_err(|source| EngineError::Tag {
                    image: image.into(),
                    target: target.into(),
                    source,
                })
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let gone = |reason: String| EngineError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason,
                hint: "the engine stopped answering during the build".into(),
            };
            match tokio::time::timeout(std::time::Duration::from_secs(5), self.docker.ping()).await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(gone(root_cause(&e))),
                Err(_) => Err(gone("no answer within 5 s".into())),
            }
        }
        .boxed()
    }

    fn retire_container(&self, id: &ContainerId) {
        let (docker, containers, gone) = (self.docker.clone(), self.containers.clone(), id.clone());
        let removal = tokio::spawn(async move { force_remove(&docker, &containers, &gone).await });
        self.containers.retiring(id.clone(), removal);
    }

    fn cleanup(&self) -> BoxFuture<'_, Result<usize>> {
        async move {
            let mut first_err = None;
            let mut n = 0;
            for (id, removal) in self.containers.take_retiring() {
                n += 1;
                let res = match removal.await {
                    Ok(res) => res,
                    // The task did not finish (the runtime is going down): remove it here.
                    Err(_) => self.force_remove(&id).await,
                };
                if let Err(e) = res {
                    first_err.get_or_insert(e);
                }
            }
            match (self.remove_live(false).await, first_err) {
                (_, Some(e)) | (Err(e), None) => Err(e),
                (Ok(live), None) => Ok(n + live),
            }
        }
        .boxed()
    }

    fn cleanup_unretired(&self) -> BoxFuture<'_, Result<usize>> {
        self.remove_live(true).boxed()
    }
}

/// `repo[:tag]` → (repo, tag), the tag defaulting to `latest`; a `:` before the last
/// `/` belongs to a registry port.
pub(super) fn split_tag(reference: &str) -> Option<(&str, &str)> {
    if reference.is_empty() || reference.contains('@') {
        return None;
    }
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => {
            let (repo, tag) = (&reference[..slash + i], &reference[slash + i + 1..]);
            (!repo.is_empty() && !tag.is_empty()).then_some((repo, tag))
        }
        None => Some((reference, "latest")),
    }
}

fn image_info(img: bollard::models::ImageInspect) -> ImageInfo {
    ImageInfo {
        id: img.id.unwrap_or_default(),
        repo_tags: img.repo_tags.unwrap_or_default(),
        platform: Platform {
            os: img.os.unwrap_or_default(),
            architecture: request::normalize_arch(img.architecture.as_deref().unwrap_or("")),
            variant: img.variant.unwrap_or_default(),
            ..Platform::default()
        },
        config: request::image_config(img.config.as_ref()),
        diff_ids: img.root_fs.and_then(|r| r.layers).unwrap_or_default(),
        size: img.size.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_tag_table() {
        let cases = [
            ("app", Some(("app", "latest"))),
            ("app:1.0", Some(("app", "1.0"))),
            ("reg:5000/app", Some(("reg:5000/app", "latest"))),
            ("reg:5000/ns/app:v2", Some(("reg:5000/ns/app", "v2"))),
            ("app@sha256:abc", None),
            ("", None),
            ("app:", None),
        ];
        for (input, want) in cases {
            assert_eq!(split_tag(input), want, "{input}");
        }
    }
}
