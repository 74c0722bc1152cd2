//! The engine: the only module that talks to the Docker Engine API (through bollard).
//!
//! [`Engine`] is the narrow trait the scheduler (`exec`) runs a plan on; [`DockerEngine`]
//! implements it for a real engine and adds what `xplat prune`, the outputs and the
//! test fixtures need (volumes, save/load/import). `request` builds bollard request
//! bodies from plain values and is tested without Docker; `guard` tracks every
//! container xplat creates so none outlives a build.
//!
//! # Getting exactly the image config you want from a commit
//!
//! `POST /commit` merges the container's config into the body it is sent: it can add
//! Env keys, Labels, ExposedPorts and Volumes, and fills an empty User, WorkingDir,
//! StopSignal, Cmd or Healthcheck from the container, but it never removes anything.
//! So this module keeps the container's config as close as possible to the image
//! config the caller wants, and [`Engine::commit`] sends the wanted config in full:
//! - build arguments ([`RunSpec::build_args`]) never enter the container's `Env`: the
//!   command is wrapped in `/bin/sh -c 'export K=V…; exec "$@"'` so they reach the
//!   process only (this needs `/bin/sh` in the image when there are build args);
//! - the container's labels are the caller's plus `xplat.managed=true`, which the
//!   committed image therefore also carries (prune finds images by it);
//! - if the wanted config has neither `Cmd` nor `Entrypoint`, the container's `Cmd`
//!   (the RUN command) is filled in by the daemon. Callers that need an image
//!   without a command must keep the authoritative config themselves (DESIGN: the
//!   image config lives in xplat's state; engine images are filesystem snapshots).

mod config;
pub mod context;
mod df;
mod docker;
mod error;
pub mod fleet;
pub mod guard;
mod images;
mod output;
pub mod request;

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::platform::Platform;

pub use config::{Endpoint, EngineConfig, TlsFiles, DEFAULT_SOCKET};
pub use docker::{DockerEngine, MIN_API_VERSION};
pub use error::{EngineError, Result};
pub use images::{parse_rfc3339, CacheVolume, ContainerEntry, DiskUsage, ImageEntry, Removal};
pub use output::{LineSplitter, OutputLine, OutputStream};

/// Label put on every container (and so on every committed image) xplat creates.
pub const MANAGED_LABEL: &str = "xplat.managed";
/// Label on the named volumes that back `RUN --mount=type=cache`.
pub const CACHE_VOLUME_LABEL: &str = "xplat.cache";
/// Label on committed images holding a step-cache key: `xplat.cache.key=<hash>`.
pub const CACHE_KEY_LABEL: &str = "xplat.cache.key";
/// Label on every container (and committed image) of a build: the canonical path of the
/// build context, so `xplat prune --project` finds one project's cache.
pub const PROJECT_LABEL: &str = "xplat.project";

/// A container id as the engine returned it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ContainerId(pub String);

impl std::fmt::Display for ContainerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Network for a RUN step (`RUN --network=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Network {
    /// The engine's default network.
    #[default]
    Default,
    /// No network at all.
    None,
    /// The engine host's network (`RUN --network=host`, `--network host`).
    Host,
}

/// A mount for a RUN step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSpec {
    /// `--mount=type=cache`: a named volume labelled `xplat.cache=true`, kept between builds.
    Cache {
        /// Volume name (the caller derives it from the cache id and platform).
        volume: String,
        /// Mount point in the container.
        target: String,
    },
    /// `--mount=type=tmpfs`: an empty tmpfs.
    Tmpfs {
        /// Mount point in the container.
        target: String,
    },
    /// `--mount=type=bind` of a host path (the engine must be local), read-only unless `rw`.
    Bind {
        /// Absolute host path.
        source: String,
        /// Mount point in the container.
        target: String,
        /// Whether writes are allowed.
        rw: bool,
    },
    /// A named volume this build made and filled (bind mounts of the context or of another
    /// stage's files, heredoc scripts).
    Volume {
        /// Volume name.
        volume: String,
        /// Mount point in the container.
        target: String,
        /// Read-only.
        read_only: bool,
    },
    /// `--mount=type=secret`: a host file bind-mounted read-only; never committed
    /// (mounts are not part of the container's layer). Needs a local engine.
    Secret {
        /// Absolute host path of the secret file.
        source: String,
        /// Path in the container, e.g. `/run/secrets/<id>`.
        target: String,
    },
    /// `--mount=type=secret` on an engine on another machine: a tmpfs at the target's
    /// folder (`/run/secrets`), into which the executor writes the file through `exec`
    /// before the RUN. A tmpfs is never part of a layer and never touches a disk.
    SecretTmpfs {
        /// Path of the secret file on xplat's machine.
        source: String,
        /// Path in the container, e.g. `/run/secrets/<id>`.
        target: String,
    },
    /// One file of a named volume mounted at a file path (`VolumeOptions.Subpath`, API
    /// 1.45+): a single-file bind mount on an engine on another machine.
    VolumeFile {
        /// Volume name.
        volume: String,
        /// The file's path inside the volume.
        file: String,
        /// Mount point in the container.
        target: String,
        /// Read-only.
        read_only: bool,
    },
}

impl MountSpec {
    /// The folder a [`MountSpec::SecretTmpfs`] mounts its tmpfs at.
    pub fn secret_dir(target: &str) -> &str {
        match target.rsplit_once('/') {
            Some(("", _)) | None => "/",
            Some((dir, _)) => dir,
        }
    }
}

/// Everything needed to create the container of one step.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunSpec {
    /// Image reference or id to start from (per-platform reference, DESIGN decision 2).
    pub image: String,
    /// Platform to create the container for; `None` lets the engine choose.
    pub platform: Option<Platform>,
    /// Full argv: `SHELL + [cmd]` for the shell form, the array for the exec form.
    /// Empty for a container made only to copy files in or out.
    pub cmd: Vec<String>,
    /// The image's `ENV` (`K=V`), in order; becomes the container's and the committed image's Env.
    pub env: Vec<String>,
    /// ARG values in scope: given to the process only, never stored in a config.
    /// Keys that `env` already sets are dropped (ENV wins over ARG).
    pub build_args: BTreeMap<String, String>,
    /// `USER`; `None` keeps the image's.
    pub user: Option<String>,
    /// `WORKDIR`; `None` keeps the image's.
    pub workdir: Option<String>,
    /// Extra container labels (besides `xplat.managed=true`).
    pub labels: BTreeMap<String, String>,
    /// `RUN --network`.
    pub network: Network,
    /// `RUN --mount`s.
    pub mounts: Vec<MountSpec>,
    /// Keep standard input open: with `cmd` a shell, the container stays up (the shell
    /// waits on its input) and its steps run through [`Engine::exec`].
    pub open_stdin: bool,
    /// `--add-host NAME:IP` entries for the container's `/etc/hosts`.
    pub extra_hosts: Vec<String>,
}

/// The image config type of the engine's edge: xplat's own `oci::ContainerConfig` (the
/// one config type; `stage` interprets instructions over it).
pub use crate::oci::ContainerConfig;

/// What the engine says about itself, read once at connect: what placement and the
/// executor's commit policy need.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EngineProfile {
    /// The engine host's name (`docker info` Name).
    pub name: String,
    /// The engine's version (`docker version` Server Version).
    pub server_version: String,
    /// The negotiated API version (`1.41`).
    pub api_version: String,
    /// Storage driver (`overlay2`, `fuse-overlayfs`, `vfs`, `btrfs`, ...).
    pub storage_driver: String,
    /// Whether a commit computes its diff natively (overlay2 with native diff, btrfs, zfs,
    /// the containerd snapshotter). Without it the engine walks the whole image tree on
    /// every commit: seconds per commit on a 1 GB image.
    pub native_diff: bool,
    /// CPUs.
    pub cpus: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// The engine host's operating system description.
    pub operating_system: String,
    /// The engine runs on this machine and sees its files (a unix socket, and the engine
    /// says this machine's host name): host paths may be bind-mounted. Nothing else
    /// assumes it.
    pub shares_filesystem: bool,
    /// Commits are made from the container's upper directory instead of the engine's
    /// tree walk (fuse-overlayfs, an engine on this machine, not rootless).
    #[serde(default)]
    pub commits_upper_dirs: bool,
}

impl EngineProfile {
    /// Estimated seconds to commit a container whose image holds `image_bytes`: a full
    /// tree walk at about 400 MB/s without native diff (3.1 s measured for 1.09 GB on a
    /// loaded 2-core machine with fuse-overlayfs; 5 to 6 s on another), a fixed small
    /// cost with it (0.08 s measured on overlay2, under 0.05 s for the goping-mod prefix).
    /// A commit from the upper directory (fuse-overlayfs, see `commits_upper_dirs`) costs
    /// what its layer costs to write and load: 0.08 s for a busybox container's changes,
    /// 0.1 s for goping-mod's prefix checkpoint, both on fuse-overlayfs here.
    /// The estimate decides whether a checkpoint before `COPY . .` pays, so it is the
    /// measured figure, not a margin above it: with 0.15 the 0.15 s prefix of goping-mod
    /// (WORKDIR, COPY go.mod, `go mod download`) was replayed after every change.
    pub fn commit_seconds(&self, image_bytes: i64) -> f64 {
        if self.native_diff {
            0.08
        } else if self.commits_upper_dirs {
            0.1
        } else {
            0.3 + image_bytes.max(0) as f64 / 400e6
        }
    }
}

/// One command run inside a running container (`RUN` through exec): the environment is
/// added to (and overrides) the container's, user and working directory are per command.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Full argv.
    pub argv: Vec<String>,
    /// `K=V` entries set for this command only (ENV, then the ARGs in effect).
    pub env: Vec<String>,
    /// `USER`, when set.
    pub user: Option<String>,
    /// `WORKDIR`, when set.
    pub workdir: Option<String>,
    /// Bytes written to the command's standard input, which stays open: the command
    /// must read exactly these (`head -c N`; a secret written into a tmpfs). Never
    /// serialized, never shown by `Debug`.
    #[serde(skip)]
    pub stdin: Option<StdinBytes>,
}

/// Bytes for a command's standard input: may be a secret, so `Debug` shows only the size.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct StdinBytes(pub Vec<u8>);

impl std::fmt::Debug for StdinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

/// What the engine knows of a local image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// The engine's id (config digest with the graphdriver store).
    pub id: String,
    /// Tags pointing at it.
    pub repo_tags: Vec<String>,
    /// Its platform (architecture normalized: x86_64 → amd64, aarch64 → arm64).
    pub platform: Platform,
    /// Its config (engine noise such as Hostname or AttachStdout dropped).
    pub config: ContainerConfig,
    /// Its size in bytes, all layers.
    pub size: i64,
    /// Layer diff_ids (sha256 of the uncompressed layer tars), base first.
    pub diff_ids: Vec<String>,
}

/// The outcome of looking an image up.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageLookup {
    /// The image is in the engine.
    Found(Box<ImageInfo>),
    /// No such image.
    Missing,
}

/// The kind of a path inside a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PathKind {
    /// A regular file (or anything that is neither a directory nor a symlink).
    File,
    /// A directory.
    Dir,
    /// A symlink; `target` is the engine's fully resolved target path.
    Symlink {
        /// Resolved target, absolute in the container.
        target: String,
    },
}

/// What the engine reports about a path inside a container (`HEAD …/archive`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Permission bits (with setuid/setgid/sticky as 0o4000/0o2000/0o1000).
    pub mode: u32,
    /// File, directory or symlink.
    pub kind: PathKind,
}

/// The outcome of looking a path up in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathLookup {
    /// The path exists.
    Found(PathStat),
    /// No such path (or no such container).
    Missing,
}

/// One progress report while pulling.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullProgress {
    /// Layer id, when the report is about a layer.
    pub layer: Option<String>,
    /// The engine's status text (`Downloading`, `Pull complete`, …).
    pub status: String,
    /// Bytes done, when known.
    pub current: Option<i64>,
    /// Bytes total, when known.
    pub total: Option<i64>,
}

/// A tar archive sent to the engine, streamed so a large COPY is never held in memory.
/// Build one from bytes with [`tar_body`].
pub type TarBody = BoxStream<'static, std::io::Result<Bytes>>;

/// A [`TarBody`] of bytes already in memory.
pub fn tar_body(tar: Bytes) -> TarBody {
    Box::pin(futures::stream::once(async move { Ok(tar) }))
}

/// A callback for container output lines.
pub type OutputSink<'a> = &'a (dyn Fn(OutputLine) + Send + Sync);
/// A callback for pull progress.
pub type PullSink<'a> = &'a (dyn Fn(PullProgress) + Send + Sync);

/// What the scheduler needs from an engine. Object-safe (`&dyn Engine`), so a
/// recording fake can stand in for it in scheduler unit tests.
///
/// Every container created through [`Engine::create_container`] is tracked until
/// [`Engine::remove_container`]; [`Engine::cleanup`] removes whatever is left and
/// must be called on every exit path of a build (success, error, cancellation).
pub trait Engine: Send + Sync {
    /// The engine's own platform (the plan's build platform).
    fn platform(&self) -> &Platform;

    /// What the engine said about itself at connect.
    fn profile(&self) -> &EngineProfile;

    /// Looks up a local image by reference or id.
    fn inspect_image<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<ImageLookup>>;

    /// Pulls `reference` for `platform`, reporting progress.
    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        platform: &'a Platform,
        progress: PullSink<'a>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Creates (does not start) the container for a step; see [`request::container_config`].
    fn create_container<'a>(&'a self, spec: &'a RunSpec) -> BoxFuture<'a, Result<ContainerId>>;

    /// Extracts a tar into directory `dest` of the container (which must exist), refusing
    /// to replace a directory by a file or the reverse. Owners and modes come from the headers.
    fn put_archive<'a>(
        &'a self,
        id: &'a ContainerId,
        dest: &'a str,
        tar: TarBody,
    ) -> BoxFuture<'a, Result<()>>;

    /// A tar of `path` in the container: a directory's entries are rooted at its basename,
    /// `dir/.` gives its contents only, a symlink is archived as the link.
    fn get_archive<'a>(
        &'a self,
        id: &'a ContainerId,
        path: &'a str,
    ) -> BoxStream<'a, Result<Bytes>>;

    /// Stats `path` in the container without following a final symlink (COPY needs
    /// this to follow source symlinks and to see whether a destination is a directory).
    fn stat_path<'a>(
        &'a self,
        id: &'a ContainerId,
        path: &'a str,
    ) -> BoxFuture<'a, Result<PathLookup>>;

    /// Attaches, starts, streams output lines to `output`, waits, and returns the exit
    /// code (non-zero is a value, not an error). If `cancel` fires, the container is
    /// killed and removed and [`EngineError::Cancelled`] is returned.
    fn run_container<'a>(
        &'a self,
        id: &'a ContainerId,
        output: OutputSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<i64>>;

    /// Starts a created container (one made with [`RunSpec::open_stdin`] and a shell stays up).
    fn start_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<()>>;

    /// Runs a command in a running container, streaming its output lines to `output`, and
    /// returns its exit code (non-zero is a value, not an error). If `cancel` fires the
    /// container is killed and removed and [`EngineError::Cancelled`] is returned.
    fn exec<'a>(
        &'a self,
        id: &'a ContainerId,
        spec: &'a ExecSpec,
        output: OutputSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<i64>>;

    /// Commits the container's filesystem as an image with `config` (see the module doc
    /// for what the daemon adds) and returns the new image id.
    fn commit<'a>(
        &'a self,
        id: &'a ContainerId,
        config: &'a ContainerConfig,
    ) -> BoxFuture<'a, Result<String>>;

    /// Creates a named volume with labels (`xplat.managed=true` added); an existing one is kept.
    fn create_volume<'a>(
        &'a self,
        name: &'a str,
        labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Removes a named volume; a missing one is not an error.
    fn remove_volume<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Removes a container (force, with its anonymous volumes) and stops tracking it.
    /// Removing a container that is already gone is not an error.
    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<()>>;

    /// The newest image carrying label `key=value` (the step cache's lookup),
    /// intermediate images (those with children) included.
    fn find_image_by_label<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<ImageLookup>>;

    /// Every image carrying label `key`, as label value → image id (the newest per value):
    /// one call for the whole step cache.
    fn images_by_label<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, String>>>;

    /// Loads a `docker save`-format tar (`docker load`); returns what the engine said.
    fn load<'a>(&'a self, tar: TarBody) -> BoxFuture<'a, Result<Vec<String>>>;

    /// Tags `image` as `target` (`repo:tag`).
    fn tag_image<'a>(&'a self, image: &'a str, target: &'a str) -> BoxFuture<'a, Result<()>>;

    /// Starts removing a container whose work is done and returns at once; the removal
    /// goes on beside the build, and [`Engine::cleanup`] waits for it (see `guard.rs`).
    fn retire_container(&self, id: &ContainerId);

    /// Waits for every retired container's removal, then removes every container still
    /// tracked; returns how many were removed.
    fn cleanup(&self) -> BoxFuture<'_, Result<usize>>;

    /// Removes every container still tracked but those being retired, without waiting
    /// for their removal; returns how many were removed.
    fn cleanup_unretired(&self) -> BoxFuture<'_, Result<usize>>;

    /// Whether the engine still answers (a short `/_ping`): after a failed call, tells an
    /// engine that went away from a step that failed.
    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
