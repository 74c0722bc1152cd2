//! [`DockerEngine`]: the bollard implementation of [`Engine`], and the connection.
//!
//! Flow of a RUN step (what the classic builder does): create with `Entrypoint:[""]`
//! → attach (before start, or the first output is lost) → start → drain output →
//! wait → commit → remove (force, v=true).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::errors::Error as Bollard;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CommitContainerOptionsBuilder,
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, KillContainerOptions, ListImagesOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, TagImageOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::{Docker, API_DEFAULT_VERSION};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::config::{Endpoint, EngineConfig};
use super::error::{EngineError, Result};
use super::guard::Containers;
use super::output::{LineSplitter, OutputStream};
use super::request::{self, api_at_least, engine_platform};
use super::{
    ContainerConfig, ContainerId, Engine, EngineProfile, ExecSpec, ImageInfo, ImageLookup,
    OutputSink, PathLookup, PullProgress, PullSink, RunSpec, TarBody, MANAGED_LABEL,
};
use crate::platform::Platform;

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
}

impl DockerEngine {
    /// Connects to the engine `config` names, negotiates the API version (1.41 or newer
    /// required) and reads the engine's platform.
    pub async fn connect(config: &EngineConfig) -> Result<DockerEngine> {
        let endpoint = config.endpoint.to_string();
        let first = config.connect_timeout.as_secs().max(1);
        let docker = match &config.endpoint {
            Endpoint::Unix(path) => {
                if !path.exists() {
                    return Err(unreachable(config, "no such socket".into()));
                }
                Docker::connect_with_unix(&path.to_string_lossy(), first, API_DEFAULT_VERSION)
                    .map_err(|e| unreachable(config, root_cause(&e)))?
            }
            Endpoint::Tcp(addr) => Docker::connect_with_http(addr, first, API_DEFAULT_VERSION)
                .map_err(|e| unreachable(config, root_cause(&e)))?,
            Endpoint::TcpTls { addr, cert_dir } => Docker::connect_with_ssl(
                addr,
                &cert_dir.join("key.pem"),
                &cert_dir.join("cert.pem"),
                &cert_dir.join("ca.pem"),
                first,
                API_DEFAULT_VERSION,
            )
            .map_err(|source| EngineError::Tls {
                endpoint: endpoint.clone(),
                cert_dir: cert_dir.display().to_string(),
                source,
            })?,
            Endpoint::TcpTlsFiles { addr, files } => Docker::connect_with_ssl(
                addr,
                &files.key,
                &files.cert,
                &files.ca,
                first,
                API_DEFAULT_VERSION,
            )
            .map_err(|source| EngineError::Tls {
                endpoint: endpoint.clone(),
                cert_dir: files.ca.parent().unwrap_or(&files.ca).display().to_string(),
                source,
            })?,
            // bollard starts `ssh -M` per connection and talks to `docker system dial-stdio`
            // on the host; the connect timeout is its request timeout until replaced below.
            Endpoint::Ssh(dest) => {
                Docker::connect_with_ssh(&format!("ssh://{dest}"), first, API_DEFAULT_VERSION, None)
                    .map_err(|e| unreachable(config, root_cause(&e)))?
            }
        };
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(config, root_cause(&e)))?;
        let version = docker
            .version()
            .await
            .map_err(|e| unreachable(config, root_cause(&e)))?;
        let api_version = version.api_version.clone().unwrap_or_default();
        if !api_at_least(&api_version, MIN_API_VERSION) {
            return Err(EngineError::ApiTooOld {
                endpoint,
                found: api_version,
                required: MIN_API_VERSION.into(),
            });
        }
        let platform = engine_platform(
            version.os.as_deref().unwrap_or("linux"),
            version.arch.as_deref().unwrap_or(""),
        );
        let info = docker
            .info()
            .await
            .map_err(|e| unreachable(config, root_cause(&e)))?;
        let mut profile = request::engine_profile(&info, version.version.as_deref().unwrap_or(""));
        profile.api_version = api_version.clone();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        profile.shares_filesystem = matches!(config.endpoint, Endpoint::Unix(_))
            && !host.trim().is_empty()
            && host.trim() == profile.name;
        Ok(DockerEngine {
            docker: docker.with_timeout(config.request_timeout),
            endpoint,
            target: config.endpoint.clone(),
            api_version,
            platform,
            profile,
            containers: Arc::new(Containers::new()),
        })
    }

    /// Connects to the engine the docker CLI would use from the process environment
    /// (`DOCKER_HOST`, `DOCKER_CONTEXT`, the Docker config's current context).
    pub async fn connect_from_process_env() -> Result<DockerEngine> {
        Self::connect_with_context(None).await
    }

    /// [`Self::connect_from_process_env`] with `--context NAME` (which, as in the docker
    /// CLI, wins over `DOCKER_HOST`); see [`super::context`].
    pub async fn connect_with_context(context: Option<&str>) -> Result<DockerEngine> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::connect(&super::context::resolve(&env, context)?).await
    }

    /// The endpoint, as shown to users.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The negotiated API version.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// Ids of containers created through this engine and not removed yet.
    pub fn live_containers(&self) -> Vec<ContainerId> {
        self.containers.snapshot()
    }

    async fn force_remove(&self, id: &ContainerId) -> Result<()> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let res = self.docker.remove_container(&id.0, Some(opts)).await;
        match res {
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
        self.containers.remove(id);
        Ok(())
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

    /// Reads a container's or an exec's multiplexed output into lines.
    async fn drain(
        &self,
        id: &ContainerId,
        mut out: std::pin::Pin<
            Box<dyn futures::Stream<Item = std::result::Result<LogOutput, Bollard>> + Send>,
        >,
        output: OutputSink<'_>,
    ) -> Result<()> {
        let mut stdout = LineSplitter::new(OutputStream::Stdout);
        let mut stderr = LineSplitter::new(OutputStream::Stderr);
        while let Some(item) = out.next().await {
            let lines = match item.map_err(|source| EngineError::Output {
                id: id.0.clone(),
                source,
            })? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.push(&message)
                }
                LogOutput::StdErr { message } => stderr.push(&message),
                LogOutput::StdIn { .. } => Vec::new(),
            };
            lines.into_iter().for_each(output);
        }
        stdout.finish().into_iter().for_each(output);
        stderr.finish().into_iter().for_each(output);
        Ok(())
    }

    async fn run(
        &self,
        id: &ContainerId,
        output: OutputSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<i64> {
        let work = async {
            let opts = AttachContainerOptionsBuilder::default()
                .stream(true)
                .stdout(true)
                .stderr(true)
                .build();
            let attached = self
                .docker
                .attach_container(&id.0, Some(opts))
                .await
                .map_err(|source| EngineError::Attach {
                    id: id.0.clone(),
                    source,
                })?;
            self.docker
                .start_container(&id.0, None::<StartContainerOptions>)
                .await
                .map_err(|source| EngineError::Start {
                    id: id.0.clone(),
                    source,
                })?;
            self.drain(id, attached.output, output).await?;
            let mut wait = self
                .docker
                .wait_container(&id.0, None::<WaitContainerOptions>);
            match wait.next().await {
                Some(Ok(resp)) => Ok(resp.status_code),
                // bollard reports a non-zero exit as an error: it is a result here.
                Some(Err(Bollard::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(source)) => Err(EngineError::Wait {
                    id: id.0.clone(),
                    source,
                }),
                None => Err(EngineError::NoExitCode { id: id.0.clone() }),
            }
        };
        tokio::select! {
            res = work => res,
            _ = cancel.cancelled() => {
                // Kill first so a process ignoring SIGTERM does not hold removal up;
                // errors are fine (it may have exited), removal below is what counts.
                let _ = self.docker.kill_container(&id.0, None::<KillContainerOptions>).await;
                self.force_remove(id).await?;
                Err(EngineError::Cancelled { id: id.0.clone() })
            }
        }
    }
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
        let docker = self.docker.clone();
        let ids = self.containers.snapshot();
        handle.spawn(async move {
            for id in ids {
                let opts = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                let _ = docker.remove_container(&id.0, Some(opts)).await;
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
                _ = cancel.cancelled() => {
                    let _ = self.docker.kill_container(&id.0, None::<KillContainerOptions>).await;
                    self.force_remove(id).await?;
                    Err(EngineError::Cancelled { id: id.0.clone() })
                }
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
            let label = format!("{key}={value}");
            let filters = HashMap::from([("label", vec![label.as_str()])]);
            // all=true: a step image with children is an "intermediate" image, which
            // the engine leaves out of a plain listing (found by the first exec pass).
            let opts = ListImagesOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let mut images = self
                .docker
                .list_images(Some(opts))
                .await
                .map_err(|source| EngineError::ListImages {
                    label: label.clone(),
                    source,
                })?;
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
            let filters = HashMap::from([("label", vec![key])]);
            let opts = ListImagesOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let mut images = self
                .docker
                .list_images(Some(opts))
                .await
                .map_err(|source| EngineError::ListImages {
                    label: key.to_string(),
                    source,
                })?;
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

    fn cleanup(&self) -> BoxFuture<'_, Result<usize>> {
        async move {
            let ids = self.containers.snapshot();
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
        .boxed()
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

fn unreachable(config: &EngineConfig, reason: String) -> EngineError {
    let endpoint = &config.endpoint;
    if let Some(name) = &config.context {
        return EngineError::Unreachable {
            endpoint: format!("{endpoint} (docker context {name})"),
            reason,
            hint: format!(
                "check the engine of docker context {name} (docker context inspect {name}), \
                 or choose another with --context NAME or DOCKER_CONTEXT"
            ),
        };
    }
    let hint = match endpoint {
        Endpoint::Unix(_) if reason.contains("permission denied") => {
            "run as a member of the docker group, or set DOCKER_HOST"
        }
        Endpoint::Unix(_) => "start dockerd or set DOCKER_HOST",
        Endpoint::Tcp(_) | Endpoint::TcpTls { .. } | Endpoint::TcpTlsFiles { .. } => {
            "check that the engine listens there, or set DOCKER_HOST to one that does"
        }
        Endpoint::Ssh(_) => {
            "check `ssh HOST docker version` works without a password (a key or an agent), \
             with the docker CLI installed on the host"
        }
    };
    EngineError::Unreachable {
        endpoint: endpoint.to_string(),
        reason,
        hint: hint.into(),
    }
}

/// The innermost cause in a few words: an io error's kind ("connection refused")
/// rather than hyper's wrapping text.
fn root_cause(err: &Bollard) -> String {
    if matches!(err, Bollard::RequestTimeoutError) {
        return "no answer in time".into();
    }
    let mut cur: &(dyn std::error::Error + 'static) = err;
    let mut last = err.to_string();
    loop {
        if let Some(io) = cur.downcast_ref::<std::io::Error>() {
            return io_reason(io);
        }
        match cur.source() {
            Some(next) => {
                last = next.to_string();
                cur = next;
            }
            None => return last,
        }
    }
}

fn io_reason(io: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match io.kind() {
        ConnectionRefused => "connection refused".into(),
        PermissionDenied => "permission denied".into(),
        NotFound => "no such socket".into(),
        TimedOut => "connection timed out".into(),
        _ => io.to_string(),
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

    #[test]
    fn refused_unix_socket_message_says_what_and_how() {
        let mut config = EngineConfig::from_env(&HashMap::new()).unwrap();
        let err = unreachable(&config, "connection refused".into());
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker engine at unix:///var/run/docker.sock: connection refused"
        );
        // The advice is a field; the CLI prints it as a `hint:` line.
        match err {
            EngineError::Unreachable { hint, .. } => {
                assert_eq!(hint, "start dockerd or set DOCKER_HOST")
            }
            other => panic!("{other:?}"),
        }
        // Chosen by a docker context: the message and the hint name it.
        config.context = Some("colima".into());
        let err = unreachable(&config, "no such socket".into());
        assert!(err.to_string().contains("(docker context colima)"), "{err}");
        match err {
            EngineError::Unreachable { hint, .. } => {
                assert!(hint.contains("docker context inspect colima"), "{hint}")
            }
            other => panic!("{other:?}"),
        }
    }
}
