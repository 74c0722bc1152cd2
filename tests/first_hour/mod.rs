//! Issue 13, "the first hour", through the real binary: docker contexts, checks before
//! work, buildx's vocabulary, the README's exit codes, progress events and prune filters.

mod buildx;
mod contexts;
mod errors;
mod exit_codes;
mod preflight;
mod progress;
mod prune;
mod quickstart;

use std::path::Path;

use crate::support::{xplat, CmdOutput};

/// `xplat ARGS` in `cwd` with a clean environment for what xplat reads: no user Docker
/// config or context (`HOME` and `DOCKER_CONFIG` point into `cwd` unless `envs` says
/// otherwise), no `DOCKER_HOST`/`DOCKER_CONTEXT`, no colour, no `XPLAT_*`; then `envs`.
pub fn run(cwd: &Path, args: &[&str], envs: &[(&str, &str)]) -> CmdOutput {
    let mut cmd = xplat();
    cmd.current_dir(cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("XPLAT_") || k.starts_with("RUST_") || k.starts_with("DOCKER_") {
            cmd.env_remove(k);
        }
    }
    cmd.env_remove("REGISTRY_AUTH_FILE")
        .env("HOME", cwd)
        .env("DOCKER_CONFIG", cwd.join(".docker"))
        .env("NO_COLOR", "1")
        .args(args);
    cmd.envs(envs.iter().copied());
    cmd.output().expect("run xplat").into()
}

/// The `--progress json` events of one kind, from stderr.
pub fn events(out: &CmdOutput, kind: &str) -> Vec<serde_json::Value> {
    out.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == kind)
        .collect()
}
