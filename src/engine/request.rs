//! Pure builders of bollard request bodies from xplat's plain values, and the
//! reverse mapping of what the engine reports. No I/O; tested field by field.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, MountVolumeOptions};

use super::{
    ContainerConfig, EngineProfile, ExecSpec, MountSpec, Network, PathKind, PathStat, RunSpec,
    CACHE_VOLUME_LABEL, MANAGED_LABEL,
};
use crate::platform::Platform;

/// Argv used for a container that only receives or gives files and never runs:
/// the daemon refuses to create a container without a command, but never checks that
/// the binary exists.
pub const NO_COMMAND: &str = "/.xplat-no-command";

/// The body of `POST /containers/create` for a step.
///
/// - `Entrypoint` is `[""]` (the daemon turns it into none) so the image's
///   ENTRYPOINT does not wrap the RUN command; `Cmd` is the argv as given.
/// - `Env` is exactly `spec.env`; build args go into the argv (see [`wrap_build_args`]).
/// - labels: the caller's plus `xplat.managed=true`.
/// - cache mounts are named volumes, secrets and binds are bind mounts (read-only
///   unless a bind says `rw`), tmpfs mounts are tmpfs.
pub fn container_config(spec: &RunSpec) -> ContainerCreateBody {
    let argv = if spec.cmd.is_empty() {
        vec![NO_COMMAND.to_string()]
    } else {
        wrap_build_args(&spec.cmd, &spec.env, &spec.build_args)
    };
    let mut labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
    let mut mounts: Vec<Mount> = Vec::new();
    for m in spec.mounts.iter().map(mount) {
        // Secrets in one folder share its tmpfs.
        if !mounts
            .iter()
            .any(|k| k.typ == m.typ && k.target == m.target && m.typ == Some(MountType::TMPFS))
        {
            mounts.push(m);
        }
    }
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: Some(vec![String::new()]),
        cmd: Some(argv),
        env: Some(spec.env.clone()),
        user: spec.user.clone(),
        working_dir: spec.workdir.clone(),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(spec.open_stdin),
        stdin_once: Some(false),
        host_config: Some(HostConfig {
            network_mode: Some(network_mode(spec.network).to_string()),
            extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
            mounts: if mounts.is_empty() {
                None
            } else {
                Some(mounts)
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The engine's name for a network choice.
pub fn network_mode(network: Network) -> &'static str {
    match network {
        Network::Default => "default",
        Network::None => "none",
        Network::Host => "host",
    }
}

fn mount(spec: &MountSpec) -> Mount {
    match spec {
        MountSpec::Cache { volume, target } => Mount {
            typ: Some(MountType::VOLUME),
            source: Some(volume.clone()),
            target: Some(target.clone()),
            read_only: Some(false),
            volume_options: Some(MountVolumeOptions {
                labels: Some(HashMap::from([(
                    CACHE_VOLUME_LABEL.to_string(),
                    "true".to_string(),
                )])),
                // A new volume starts empty, as a BuildKit cache does: the engine would
                // otherwise copy in what the image has at the target.
                no_copy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
        MountSpec::Volume {
            volume,
            target,
            read_only,
        } => Mount {
            typ: Some(MountType::VOLUME),
            source: Some(volume.clone()),
            target: Some(target.clone()),
            read_only: Some(*read_only),
            // Only what xplat put in it: never what the image has at the target.
            volume_options: Some(MountVolumeOptions {
                no_copy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
        MountSpec::Tmpfs { target } => Mount {
            typ: Some(MountType::TMPFS),
            target: Some(target.clone()),
            ..Default::default()
        },
        MountSpec::Bind { source, target, rw } => Mount {
            typ: Some(MountType::BIND),
            source: Some(source.clone()),
            target: Some(target.clone()),
            read_only: Some(!rw),
            ..Default::default()
        },
        MountSpec::Secret { source, target } => Mount {
            typ: Some(MountType::BIND),
            source: Some(source.clone()),
            target: Some(target.clone()),
            read_only: Some(true),
            ..Default::default()
        },
        MountSpec::SecretTmpfs { target, .. } => Mount {
            typ: Some(MountType::TMPFS),
            target: Some(MountSpec::secret_dir(target).to_string()),
            tmpfs_options: Some(bollard::models::MountTmpfsOptions {
                mode: Some(0o755),
                ..Default::default()
            }),
            ..Default::default()
        },
        MountSpec::VolumeFile {
            volume,
            file,
            target,
            read_only,
        } => Mount {
            typ: Some(MountType::VOLUME),
            source: Some(volume.clone()),
            target: Some(target.clone()),
            read_only: Some(*read_only),
            volume_options: Some(MountVolumeOptions {
                subpath: Some(file.clone()),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// Variables a POSIX shell exports on its own at startup; [`wrap_build_args`] unsets them.
const SHELL_EXPORTED: [&str; 2] = ["PWD", "SHLVL"];

/// The argv that gives `build_args` to the process without putting them in the
/// container's config: `/bin/sh -c 'export K='\''v'\''…; exec "$@"' sh ARGV…`.
/// They override `env`: the planner passes only names whose latest setter was an
/// ARG (BuildKit's order). Without build args, `argv` is returned unchanged.
pub fn wrap_build_args(
    argv: &[String],
    env: &[String],
    build_args: &BTreeMap<String, String>,
) -> Vec<String> {
    let env_keys: Vec<&str> = env
        .iter()
        .map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k))
        .collect();
    let exports: Vec<String> = build_args
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    if exports.is_empty() {
        return argv.to_vec();
    }
    // The wrapper shell exports PWD and SHLVL on its own (busybox ash, bash): unset them
    // unless ENV sets them, so the process sees the environment the classic builder
    // gives it (found by the differential suite: SHLVL=2 in a RUN with build args).
    let shell_own: Vec<&str> = SHELL_EXPORTED
        .iter()
        .copied()
        .filter(|k| !env_keys.contains(k))
        .collect();
    let unset = if shell_own.is_empty() {
        String::new()
    } else {
        format!("unset {}; ", shell_own.join(" "))
    };
    let mut wrapped = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        format!("export {}; {unset}exec \"$@\"", exports.join(" ")),
        "sh".to_string(),
    ];
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// Quotes a value for a POSIX shell: `'…'` with each `'` written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The body of `POST /commit`: the full wanted config (see the module doc of `engine`
/// for what the daemon merges in). Both shapes are Docker's JSON, so the mapping is a
/// serde round trip.
pub fn commit_config(config: &ContainerConfig) -> bollard::models::ContainerConfig {
    let mut clean = config.clone();
    clean.extra.clear();
    let json = serde_json::to_value(&clean).expect("a config serializes");
    serde_json::from_value(json).expect("Docker's config shape")
}

/// The config `POST /commit` gives an image when sent `wanted` for a container whose own
/// config is `container`: the engine fills what `wanted` leaves empty and adds what it
/// lacks, never removing anything (Docker's `daemon/commit.go` `merge`; a HEALTHCHECK is
/// taken whole). The commit from an upper directory writes this, so both commits give one
/// config.
pub fn merge_commit_config(
    wanted: &ContainerConfig,
    container: &ContainerConfig,
) -> ContainerConfig {
    let mut out = wanted.clone();
    out.extra.clear();
    let empty = |s: &Option<String>| s.as_deref().map_or(true, str::is_empty);
    if empty(&out.user) {
        out.user = container.user.clone().filter(|u| !u.is_empty());
    }
    if let Some(theirs) = &container.exposed_ports {
        let ours = out.exposed_ports.get_or_insert_with(BTreeMap::new);
        for (k, v) in theirs {
            ours.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(theirs) = &container.env {
        let ours = out.env.get_or_insert_with(Vec::new);
        let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
        for e in theirs {
            if !ours.iter().any(|o| key(o) == key(e)) {
                ours.push(e.clone());
            }
        }
    }
    let labels = out.labels.get_or_insert_with(BTreeMap::new);
    for (k, v) in container.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let none = |v: &Option<Vec<String>>| v.as_ref().map_or(true, Vec::is_empty);
    if none(&out.entrypoint) {
        if none(&out.cmd) {
            out.cmd = container.cmd.clone();
            out.args_escaped = container.args_escaped;
        }
        if out.entrypoint.is_none() {
            out.entrypoint = container.entrypoint.clone();
        }
    }
    if out.healthcheck.is_none() {
        out.healthcheck = container.healthcheck.clone();
    }
    if empty(&out.working_dir) {
        out.working_dir = container.working_dir.clone().filter(|w| !w.is_empty());
    }
    if let Some(theirs) = &container.volumes {
        let ours = out.volumes.get_or_insert_with(BTreeMap::new);
        for (k, v) in theirs {
            ours.insert(k.clone(), v.clone());
        }
    }
    if empty(&out.stop_signal) {
        out.stop_signal = container.stop_signal.clone().filter(|s| !s.is_empty());
    }
    out
}

/// Fields of an engine's config that describe the container it was committed from, not
/// the image: dropped so they never reach a config xplat writes.
const CONTAINER_NOISE: [&str; 10] = [
    "Hostname",
    "Domainname",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "Image",
    "NetworkDisabled",
];

/// xplat's view of an image config the engine reported (empty values dropped, container
/// noise dropped).
pub fn image_config(config: Option<&bollard::models::ImageConfig>) -> ContainerConfig {
    let Some(c) = config else {
        return ContainerConfig::default();
    };
    let json = serde_json::to_value(c).expect("an engine config serializes");
    let mut out: ContainerConfig = serde_json::from_value(json).unwrap_or_default();
    for k in CONTAINER_NOISE {
        out.extra.remove(k);
    }
    out.extra.retain(|_, v| !v.is_null());
    let empty = |s: &Option<String>| s.as_deref().map_or(true, str::is_empty);
    if empty(&out.user) {
        out.user = None;
    }
    if empty(&out.working_dir) {
        out.working_dir = None;
    }
    if empty(&out.stop_signal) {
        out.stop_signal = None;
    }
    if out.env.as_ref().is_some_and(Vec::is_empty) {
        out.env = None;
    }
    if out.on_build.as_ref().is_some_and(Vec::is_empty) {
        out.on_build = None;
    }
    if out.labels.as_ref().is_some_and(|l| l.is_empty()) {
        out.labels = None;
    }
    out
}

/// The body of `POST /containers/{id}/exec`: output attached, no TTY, no input.
pub fn exec_config(spec: &ExecSpec) -> bollard::models::ExecConfig {
    bollard::models::ExecConfig {
        cmd: Some(spec.argv.clone()),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        user: spec.user.clone(),
        working_dir: spec.workdir.clone(),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(spec.stdin.is_some()),
        tty: Some(false),
        ..Default::default()
    }
}

/// What `/info` and `/version` say that placement and the commit policy need. Native
/// diff: overlay2 says so in its driver status ("Native Overlay Diff"); btrfs and zfs
/// diff natively; the containerd snapshotter computes diffs from snapshots; vfs and
/// fuse-overlayfs walk the whole tree.
pub fn engine_profile(info: &bollard::models::SystemInfo, server_version: &str) -> EngineProfile {
    let driver = info.driver.clone().unwrap_or_default();
    let status: Vec<(String, String)> = info
        .driver_status
        .iter()
        .flatten()
        .filter_map(|kv| match kv.as_slice() {
            [k, v] => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect();
    let says = |key: &str| {
        status
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    };
    let snapshotter = says("driver-type") == Some("io.containerd.snapshotter.v1");
    let native_diff = snapshotter
        || match driver.as_str() {
            "overlay2" | "overlay" => says("Native Overlay Diff") != Some("false"),
            "btrfs" | "zfs" => true,
            _ => false,
        };
    EngineProfile {
        name: info.name.clone().unwrap_or_default(),
        server_version: server_version.to_string(),
        api_version: String::new(),
        storage_driver: driver,
        native_diff,
        cpus: info.ncpu.unwrap_or(0),
        memory: info.mem_total.unwrap_or(0),
        operating_system: info.operating_system.clone().unwrap_or_default(),
        shares_filesystem: false,
        commits_upper_dirs: false,
    }
}

/// Go's `os.FileMode` bits the engine uses in path stats.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// xplat's view of the engine's path stat (a Go `os.FileMode` plus a resolved link target).
pub fn path_stat(name: &str, size: i64, go_mode: u32, link_target: Option<&str>) -> PathStat {
    let kind = if go_mode & GO_MODE_SYMLINK != 0 {
        PathKind::Symlink {
            target: link_target.unwrap_or_default().to_string(),
        }
    } else if go_mode & GO_MODE_DIR != 0 {
        PathKind::Dir
    } else {
        PathKind::File
    };
    let mut mode = go_mode & 0o777;
    for (go, unix) in [
        (GO_MODE_SETUID, 0o4000),
        (GO_MODE_SETGID, 0o2000),
        (GO_MODE_STICKY, 0o1000),
    ] {
        if go_mode & go != 0 {
            mode |= unix;
        }
    }
    PathStat {
        name: name.to_string(),
        size,
        mode,
        kind,
    }
}

/// GOARCH spelling of the architecture names engines report (`uname -m` style).
pub fn normalize_arch(arch: &str) -> String {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "armhf" | "armv7l" => "arm",
        "i386" | "i686" => "386",
        other => other,
    }
    .to_string()
}

/// The engine's platform from `/version`'s os and arch (arm reports `armv7l`, so
/// its variant is `v7`).
pub fn engine_platform(os: &str, arch: &str) -> Platform {
    let variant = match arch {
        "armv7l" | "armhf" => "v7",
        "armv6l" => "v6",
        _ => "",
    };
    Platform {
        os: os.to_string(),
        architecture: normalize_arch(arch),
        variant: variant.to_string(),
        ..Platform::default()
    }
}

/// Whether `found` (an API version like `1.41`) is at least `required`.
pub fn api_at_least(found: &str, required: &str) -> bool {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let (a, b) = v.trim().split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    match (parse(found), parse(required)) {
        (Some(f), Some(r)) => f >= r,
        _ => false,
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
