//! The one engine-availability check of the tests: [`Fixtures::engine`] says
//! whether there is a Docker engine (`require_engine!`); [`connect_engine`] and
//! [`busybox_engine`] hand the library's [`DockerEngine`] to tests that drive it
//! (`require_engine_client!`, `require_busybox_engine!`).

use xplat::engine::DockerEngine;

use super::fixtures::Fixtures;

/// The engine of the process environment (`DOCKER_HOST` or the default socket)
/// once the fixtures report one; `Err(why)` for `require!` when they do not.
/// An engine the fixtures report that then refuses the connection is a test
/// failure, not a skip.
pub async fn connect_engine() -> Result<DockerEngine, String> {
    Fixtures::get().engine()?;
    match DockerEngine::connect_from_process_env().await {
        Ok(engine) => Ok(engine),
        Err(e) => panic!(
            "the fixtures ({}) report a Docker engine, but connecting failed: {e}",
            Fixtures::get().source
        ),
    }
}

/// Like [`connect_engine`], and the engine holds the per-arch busybox images
/// (`Fixtures::busybox_image`).
pub async fn busybox_engine() -> Result<DockerEngine, String> {
    Fixtures::get().busybox_images()?;
    connect_engine().await
}
