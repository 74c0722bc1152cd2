//! Helpers shared by every integration test: what the machine offers
//! ([`Fixtures`], the `require_*!` macros that print `SKIPPED: <why>`), the
//! library's engine handle ([`connect_engine`]), the one loopback registry
//! ([`Registry`]), a temporary build context ([`TestDir`]) and command runners
//! ([`xplat`], [`docker`], [`run_ok`], [`try_run`]).
//!
//! The fixtures themselves are made by `tests/fixtures/setup.sh` (run by
//! `tests/run.sh`), which writes `$XPLAT_FIXTURES/env`; without that file the
//! machine is probed instead.
// Not every test module uses every helper.
#![allow(dead_code, unused_imports, unused_macros)]

pub mod command;
pub mod engine;
pub mod engine2;
pub mod fixtures;
pub mod registry;
pub mod tally;
pub mod testdir;

pub use command::{docker, docker_ok, run_ok, try_run, xplat, CmdOutput};
pub use engine::{busybox_engine, connect_engine};
pub use fixtures::{peer_dir, samples_dir, skip, Fixtures};
pub use registry::{push_fixture_busybox, skopeo_inspect_raw, Registry};
pub use testdir::{tree, TestDir};

/// Unwraps `Ok(v)` to `v`; on `Err(why)` prints `SKIPPED: <test>: <why>` and returns from the test.
macro_rules! require {
    ($check:expr) => {
        match $check {
            Ok(v) => v,
            Err(why) => {
                $crate::support::skip(&why);
                return;
            }
        }
    };
}

/// Returns from the test with `SKIPPED` unless a Docker engine answers.
macro_rules! require_engine {
    () => {
        require!($crate::support::Fixtures::get().engine())
    };
}

/// Gives a connected `DockerEngine` (async tests), or returns from the test with `SKIPPED`.
macro_rules! require_engine_client {
    () => {
        require!($crate::support::connect_engine().await)
    };
}

/// Gives a connected `DockerEngine` that holds the busybox images (async
/// tests), or returns from the test with `SKIPPED`.
macro_rules! require_busybox_engine {
    () => {
        require!($crate::support::busybox_engine().await)
    };
}

/// Returns from the test with `SKIPPED` unless the engine can run arm64 containers (binfmt).
macro_rules! require_binfmt_arm64 {
    () => {
        require!($crate::support::Fixtures::get().binfmt_arm64())
    };
}

/// Gives the path of `qemu-aarch64-static`, or returns from the test with `SKIPPED`.
macro_rules! require_qemu_aarch64 {
    () => {
        require!($crate::support::Fixtures::get().qemu_aarch64())
    };
}

/// Gives the builder image name, or returns from the test with `SKIPPED`.
macro_rules! require_builder {
    () => {
        require!($crate::support::Fixtures::get().builder_image())
    };
}

/// Returns from the test with `SKIPPED` unless the per-arch busybox engine images exist.
macro_rules! require_busybox_images {
    () => {
        require!($crate::support::Fixtures::get().busybox_images())
    };
}

/// Starts a loopback [`Registry`], or returns from the test with `SKIPPED` when
/// `docker-registry` is not installed. A registry that is installed but fails to
/// start is a test failure, not a skip.
macro_rules! require_registry {
    () => {{
        require!($crate::support::Fixtures::get().registry_bin());
        $crate::support::Registry::start().expect("start the loopback registry")
    }};
}

/// Gives the path of `skopeo`, or returns from the test with `SKIPPED`.
macro_rules! require_skopeo {
    () => {
        require!($crate::support::Fixtures::get().skopeo())
    };
}

/// Gives the shared second engine (`&'static Engine2`), or returns from the test with
/// `SKIPPED` (a failure under `CI=true`).
macro_rules! require_engine2 {
    () => {
        match $crate::support::engine2::shared() {
            Ok(e) => e,
            Err(why) => {
                $crate::support::engine2::skip_or_fail(&why);
                return;
            }
        }
    };
}

pub(crate) use {
    require, require_binfmt_arm64, require_builder, require_busybox_engine, require_busybox_images,
    require_engine, require_engine2, require_engine_client, require_qemu_aarch64, require_registry,
    require_skopeo,
};
