//! The engine module's error type: one variant per operation that can fail, each
//! naming what was being done and to what, with bollard's error as the source.

use bollard::errors::Error as Bollard;

/// Result alias for the engine module.
pub type Result<T> = std::result::Result<T, EngineError>;

/// What went wrong while talking to the Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine could not be reached at all (no socket, connection refused, timeout).
    #[error("cannot reach the Docker engine at {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint that was tried, e.g. `unix:///var/run/docker.sock`.
        endpoint: String,
        /// The root cause in a few words, e.g. `connection refused`.
        reason: String,
        /// What the user can do about it (not in the message: the CLI prints it as a `hint:` line).
        hint: String,
    },
    /// `DOCKER_HOST` names a scheme xplat cannot use.
    #[error("DOCKER_HOST={value} is not supported: {why}")]
    UnsupportedHost {
        /// The value of DOCKER_HOST.
        value: String,
        /// Why it is refused.
        why: String,
    },
    /// A docker context was named (by `--context`, `DOCKER_CONTEXT` or the Docker
    /// config's `currentContext`) that the Docker config does not hold.
    #[error("docker context {name:?} (from {source_of_name}) does not exist in {}", .config_dir.display())]
    ContextNotFound {
        /// The context's name.
        name: String,
        /// Where the name came from.
        source_of_name: String,
        /// The Docker config folder searched.
        config_dir: std::path::PathBuf,
    },
    /// The Docker config file (which may name the current context) cannot be read.
    #[error("reading the docker context from {}: {reason}", .path.display())]
    DockerConfigInvalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A docker context cannot be read or used.
    #[error("docker context {name:?} in {}: {reason}", .path.display())]
    ContextInvalid {
        /// The context's name.
        name: String,
        /// The file read.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A docker context's host names a scheme xplat cannot use.
    #[error("docker context {name:?} has host {value}, which is not supported: {why}")]
    UnsupportedContextHost {
        /// The context's name.
        name: String,
        /// Its `Endpoints.docker.Host`.
        value: String,
        /// Why it is refused.
        why: String,
    },
    /// The TLS client certificates could not be loaded.
    #[error("loading the TLS certificates for {endpoint} from {cert_dir}: {source}")]
    Tls {
        /// The tcp endpoint.
        endpoint: String,
        /// The folder holding ca.pem, cert.pem, key.pem.
        cert_dir: String,
        /// bollard's error.
        source: Bollard,
    },
    /// The engine is older than the API xplat needs.
    #[error("the Docker engine at {endpoint} speaks API {found}; xplat needs API {required} or newer (Docker 20.10+)")]
    ApiTooOld {
        /// The endpoint.
        endpoint: String,
        /// The API version the engine reported.
        found: String,
        /// The minimum xplat needs.
        required: String,
    },
    /// Pulling an image failed. The message is the engine's alone: the caller says
    /// "pulling REFERENCE for PLATFORM" (issue 13: it was said twice).
    #[error("{message}")]
    Pull {
        /// The image reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The engine's message.
        message: String,
    },
    /// Inspecting an image failed (other than "not found", which is an outcome).
    #[error("inspecting image {reference}: {source}")]
    InspectImage {
        /// The image reference.
        reference: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Listing images failed.
    #[error("listing images labelled {label}: {source}")]
    ListImages {
        /// The label filter.
        label: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Creating a container failed.
    #[error("creating a container from {image}: {source}")]
    CreateContainer {
        /// The image the container was created from.
        image: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Attaching to a container's output failed.
    #[error("attaching to container {id}: {source}")]
    Attach {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Starting a container failed (e.g. `exec format error` without binfmt).
    #[error("starting container {id}: {source}")]
    Start {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Running a command inside a running container failed.
    #[error("running a command in container {id}: {source}")]
    Exec {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Reading a container's output failed.
    #[error("reading the output of container {id}: {source}")]
    Output {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Waiting for a container to exit failed.
    #[error("waiting for container {id}: {source}")]
    Wait {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Writing a command's standard input failed.
    #[error("writing the input of a command in container {id}: {reason}")]
    ExecInput {
        /// Container id.
        id: String,
        /// The I/O error.
        reason: String,
    },
    /// The listing of the engine host's binfmt_misc folder could not be read.
    #[error("reading the binfmt handlers of the engine's host: {reason}")]
    BinfmtListing {
        /// What failed.
        reason: String,
    },
    /// The wait stream ended without reporting an exit code.
    #[error("container {id} ended without an exit code")]
    NoExitCode {
        /// Container id.
        id: String,
    },
    /// Copying a tar archive into a container failed.
    #[error("copying an archive into {path} of container {id}: {source}")]
    PutArchive {
        /// Container id.
        id: String,
        /// Destination directory in the container.
        path: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Reading a path out of a container failed.
    #[error("reading {path} from container {id}: {source}")]
    GetArchive {
        /// Container id.
        id: String,
        /// Path in the container.
        path: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Stat-ing a path in a container failed.
    #[error("looking up {path} in container {id}: {source}")]
    StatPath {
        /// Container id.
        id: String,
        /// Path in the container.
        path: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Committing a container to an image failed.
    #[error("committing container {id}: {source}")]
    Commit {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Committing a container from its upper directory (fuse-overlayfs) failed.
    #[error("committing container {id} from its upper directory: {reason}")]
    CommitLayer {
        /// Container id.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// Removing a container failed.
    #[error("removing container {id}: {source}")]
    RemoveContainer {
        /// Container id.
        id: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Listing containers failed.
    #[error("listing xplat's containers: {source}")]
    ListContainers {
        /// bollard's error.
        source: Bollard,
    },
    /// Tagging an image failed.
    #[error("tagging {image} as {target}: {source}")]
    Tag {
        /// Source image.
        image: String,
        /// The new reference.
        target: String,
        /// bollard's error.
        source: Bollard,
    },
    /// A tag reference could not be split into repository and tag.
    #[error("{reference:?} is not a valid image reference to tag with")]
    InvalidTag {
        /// The reference given.
        reference: String,
    },
    /// Removing an image failed.
    #[error("removing image {reference}: {source}")]
    RemoveImage {
        /// Image reference or id.
        reference: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Creating a named volume failed.
    #[error("creating volume {name}: {source}")]
    CreateVolume {
        /// Volume name.
        name: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Listing volumes or their sizes failed.
    #[error("listing xplat's cache volumes: {source}")]
    ListVolumes {
        /// bollard's error.
        source: Bollard,
    },
    /// Removing a named volume failed.
    #[error("removing volume {name}: {source}")]
    RemoveVolume {
        /// Volume name.
        name: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Exporting (`docker save`) an image failed.
    #[error("exporting image {reference}: {source}")]
    ExportImage {
        /// Image reference.
        reference: String,
        /// bollard's error.
        source: Bollard,
    },
    /// Loading (`docker load`) an archive failed.
    #[error("loading an image archive into the engine: {message}")]
    LoadImage {
        /// The engine's message.
        message: String,
    },
    /// Importing a rootfs tar (`docker import`) failed.
    #[error("importing a root filesystem as {reference}: {message}")]
    ImportRootfs {
        /// The reference the image was to get.
        reference: String,
        /// The engine's message.
        message: String,
    },
    /// The operation was cancelled (Ctrl-C); its container was killed and removed.
    #[error("cancelled; container {id} was stopped and removed")]
    Cancelled {
        /// The container that was running.
        id: String,
    },
}
