//! `stage`: THE interpreter of instruction meaning, for both paths (the executor's engine
//! jobs and the assembler's OCI images). Pure: it owns no I/O; what it must know of a
//! filesystem it asks through [`DestFs`]/[`SourceFs`], and downloads arrive as values.
//!
//! - [`State`] / [`State::apply`]: metadata instructions as edits of an `oci::ImageConfig`
//!   (ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT, SHELL, STOPSIGNAL,
//!   HEALTHCHECK, ONBUILD, MAINTAINER, ARG), BuildKit's defaults for scratch and for bases
//!   without PATH, history entries, and the helpers an executor needs (`shell`, `argv`,
//!   `env_map`, `run_env`, `workdir`, `user`).
//! - [`copy::files`]: COPY/ADD as the list of `oci::LayerEntry` they write (destinations,
//!   `--chown` by number or by name from the destination's own passwd/group, `--chmod`,
//!   created parents, `--from` directories, wildcards, symlinks, heredocs, URLs);
//!   [`copy::workdir_files`]: the directories a WORKDIR creates.
//! - [`url`]: the one rule for URL and git sources.
//!
//! Checked against the engine's BuildKit (`DOCKER_BUILDKIT=1 /usr/bin/docker build`, base
//! `xplat-test/busybox:amd64`, `-o type=tar` for owners and modes, `docker save` for the
//! history), 2026-11-27:
//! - `FROM scratch`: Env `[PATH=/usr/local/sbin:…:/bin]`, WorkingDir `/`; an imported image
//!   with an empty config: the same PATH, WorkingDir unset;
//! - `USER 1000:1000` + `WORKDIR /w/x`: `/w` and `/w/x` 0755 1000:1000; `USER app2` (passwd
//!   2000, primary group 3000): 2000:3000; the WORKDIR history entry has a layer;
//! - `COPY f /tmp/a/b/f` over a 1777 `/tmp`: `/tmp` stays 1777, `/tmp/a` and `/tmp/a/b`
//!   0755 0:0; `COPY --chown=7:8 f /new/deep/f`: `/new`, `/new/deep` 0755 7:8;
//! - `COPY --from=src /out /dst` with `/out` 0700 1001:1002: `/dst` 0755 0:0, contents keep
//!   their modes and owners; with `--chown=9:9` all 9:9;
//! - `--chown=app2` → 2000:3000 (primary group), `--chown=2000` → 2000:2000,
//!   `--chown=app2:0` → 2000:0;
//! - `COPY --from=src /o/*.txt /w/`: matched files, a matched symlink followed, a matched
//!   directory's contents merged into `/w`;
//! - ARG and MAINTAINER get history entries (empty layer); ENTRYPOINT clears the base's CMD.

pub mod copy;
mod copy_from;
mod error;
pub mod fs;
mod owner;
mod state;
pub mod url;

pub use copy::{files, workdir_files, CopyInputs, Download, Files, Passwd, SourceKind};
pub use error::{FsError, Result, StageError};
pub use fs::{DestFs, FsKind, FsStat, MemFs, SourceFs};
pub use state::{
    created_by, join_workdir, normalize_port, set_env, split_env, Effect, State, DEFAULT_PATH,
    DEFAULT_SHELL, HISTORY_COMMENT,
};
