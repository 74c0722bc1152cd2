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
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn run_spec() -> RunSpec {
        RunSpec {
            image: "xplat/job:linux-arm64".into(),
            platform: Some(Platform {
                os: "linux".into(),
                architecture: "arm64".into(),
                variant: String::new(),
                ..Platform::default()
            }),
            cmd: s(&["/bin/sh", "-c", "make all"]),
            env: s(&["PATH=/usr/bin:/bin", "GOOS=linux"]),
            build_args: BTreeMap::new(),
            user: Some("1000:1000".into()),
            workdir: Some("/src".into()),
            labels: BTreeMap::from([("xplat.step".to_string(), "3".to_string())]),
            network: Network::None,
            open_stdin: false,
            extra_hosts: Vec::new(),
            mounts: vec![
                MountSpec::Cache {
                    volume: "xplat-cache-go".into(),
                    target: "/root/.cache/go-build".into(),
                },
                MountSpec::Tmpfs {
                    target: "/tmp".into(),
                },
                MountSpec::Secret {
                    source: "/home/u/token".into(),
                    target: "/run/secrets/token".into(),
                },
                MountSpec::Bind {
                    source: "/ctx".into(),
                    target: "/mnt/ctx".into(),
                    rw: false,
                },
            ],
        }
    }

    #[test]
    fn container_config_field_by_field() {
        let body = container_config(&run_spec());
        assert_eq!(body.image.as_deref(), Some("xplat/job:linux-arm64"));
        assert_eq!(body.entrypoint, Some(s(&[""])));
        assert_eq!(body.cmd, Some(s(&["/bin/sh", "-c", "make all"])));
        assert_eq!(body.env, Some(s(&["PATH=/usr/bin:/bin", "GOOS=linux"])));
        assert_eq!(body.user.as_deref(), Some("1000:1000"));
        assert_eq!(body.working_dir.as_deref(), Some("/src"));
        let labels = body.labels.unwrap();
        assert_eq!(
            labels.get("xplat.managed").map(String::as_str),
            Some("true")
        );
        assert_eq!(labels.get("xplat.step").map(String::as_str), Some("3"));
        assert_eq!(labels.len(), 2);
        assert_eq!(body.tty, Some(false));
        assert_eq!(body.healthcheck, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[0].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[0].source.as_deref(), Some("xplat-cache-go"));
        assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache/go-build"));
        assert_eq!(mounts[0].read_only, Some(false));
        let vlabels = mounts[0]
            .volume_options
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        assert_eq!(vlabels.get("xplat.cache").map(String::as_str), Some("true"));
        // A new cache starts empty (BuildKit), not with the image's files at the target.
        assert_eq!(
            mounts[0].volume_options.as_ref().unwrap().no_copy,
            Some(true)
        );
        assert_eq!(mounts[1].typ, Some(MountType::TMPFS));
        assert_eq!(mounts[1].target.as_deref(), Some("/tmp"));
        assert_eq!(mounts[1].source, None);
        assert_eq!(mounts[2].typ, Some(MountType::BIND));
        assert_eq!(mounts[2].source.as_deref(), Some("/home/u/token"));
        assert_eq!(mounts[2].target.as_deref(), Some("/run/secrets/token"));
        assert_eq!(mounts[2].read_only, Some(true));
        assert_eq!(mounts[3].read_only, Some(true));
    }

    #[test]
    fn remote_secrets_are_one_tmpfs_per_folder_and_single_files_a_volume_subpath() {
        let body = container_config(&RunSpec {
            image: "i".into(),
            mounts: vec![
                MountSpec::SecretTmpfs {
                    source: "/home/u/a".into(),
                    target: "/run/secrets/a".into(),
                },
                MountSpec::SecretTmpfs {
                    source: "/home/u/b".into(),
                    target: "/run/secrets/b".into(),
                },
                MountSpec::VolumeFile {
                    volume: "xplat-ctx-1".into(),
                    file: "go.mod".into(),
                    target: "/src/go.mod".into(),
                    read_only: true,
                },
            ],
            ..Default::default()
        });
        let mounts = body.host_config.unwrap().mounts.unwrap();
        assert_eq!(mounts.len(), 2, "{mounts:?}");
        assert_eq!(mounts[0].typ, Some(MountType::TMPFS));
        assert_eq!(mounts[0].target.as_deref(), Some("/run/secrets"));
        assert_eq!(
            mounts[0].source, None,
            "nothing of the secret in the request"
        );
        assert_eq!(mounts[1].typ, Some(MountType::VOLUME));
        assert_eq!(mounts[1].target.as_deref(), Some("/src/go.mod"));
        assert_eq!(
            mounts[1]
                .volume_options
                .as_ref()
                .unwrap()
                .subpath
                .as_deref(),
            Some("go.mod")
        );
        assert_eq!(MountSpec::secret_dir("/token"), "/");
    }

    #[test]
    fn defaults_leave_user_workdir_to_the_image_and_use_default_network() {
        let body = container_config(&RunSpec {
            image: "i".into(),
            cmd: s(&["true"]),
            ..Default::default()
        });
        assert_eq!(body.user, None);
        assert_eq!(body.working_dir, None);
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("default"));
        assert_eq!(host.mounts, None);
    }

    #[test]
    fn a_copy_only_container_gets_a_placeholder_command() {
        let body = container_config(&RunSpec {
            image: "scratchy".into(),
            ..Default::default()
        });
        assert_eq!(body.cmd, Some(s(&[NO_COMMAND])));
    }

    #[test]
    fn build_args_reach_the_process_not_the_config() {
        let mut spec = run_spec();
        spec.build_args = BTreeMap::from([
            ("VERSION".to_string(), "1.0 'beta'".to_string()),
            ("GOOS".to_string(), "windows".to_string()),
        ]);
        let body = container_config(&spec);
        assert_eq!(body.env, Some(s(&["PATH=/usr/bin:/bin", "GOOS=linux"])));
        assert_eq!(
            body.cmd,
            Some(s(&[
                "/bin/sh",
                "-c",
                // GOOS: an ARG the planner passes was set after the ENV: it wins.
                r#"export GOOS='windows' VERSION='1.0 '\''beta'\'''; unset PWD SHLVL; exec "$@""#,
                "sh",
                "/bin/sh",
                "-c",
                "make all",
            ]))
        );
    }

    #[test]
    fn build_args_override_env_and_none_leave_the_argv_alone() {
        let argv = s(&["/app"]);
        let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let wrapped = wrap_build_args(&argv, &s(&["A=2"]), &args);
        assert!(wrapped[2].starts_with("export A='1';"), "{wrapped:?}");
        assert_eq!(wrap_build_args(&argv, &[], &BTreeMap::new()), argv);
    }

    #[test]
    fn wrapper_keeps_shell_variables_that_env_sets() {
        let args = BTreeMap::from([("A".to_string(), "1".to_string())]);
        let w = wrap_build_args(&s(&["/app"]), &s(&["SHLVL=5"]), &args);
        assert_eq!(w[2], r#"export A='1'; unset PWD; exec "$@""#);
    }

    #[test]
    fn shell_quote_table() {
        for (input, want) in [
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", r"'it'\''s'"),
            ("$HOME", "'$HOME'"),
        ] {
            assert_eq!(shell_quote(input), want);
        }
    }

    #[test]
    fn commit_config_round_trips_through_the_engine_shape() {
        let json = serde_json::json!({
            "User": "app", "Env": ["A=1"], "Cmd": ["serve"], "Entrypoint": ["/app"],
            "WorkingDir": "/srv", "Labels": {"k": "v"}, "ExposedPorts": {"8080/tcp": {}},
            "Volumes": {"/data": {}}, "StopSignal": "SIGINT",
            "Healthcheck": {"Test": ["CMD", "/app", "health"], "Interval": 30_000_000_000_i64,
                            "Timeout": 1, "StartPeriod": 2, "StartInterval": 4, "Retries": 3},
            "Shell": ["/bin/bash", "-c"], "OnBuild": ["RUN echo hi"]
        });
        let cfg: ContainerConfig = serde_json::from_value(json).unwrap();
        let body = commit_config(&cfg);
        assert_eq!(body.exposed_ports, Some(s(&["8080/tcp"])));
        let hc = body.healthcheck.as_ref().unwrap();
        assert_eq!(
            (hc.interval, hc.start_interval),
            (Some(30_000_000_000), Some(4))
        );
        let json = serde_json::to_value(&body).unwrap();
        let back: bollard::models::ImageConfig = serde_json::from_value(json).unwrap();
        assert_eq!(image_config(Some(&back)), cfg);
    }

    #[test]
    fn engine_noise_is_dropped() {
        let back: bollard::models::ImageConfig = serde_json::from_value(serde_json::json!({
            "Hostname": "abc", "AttachStdout": false, "Env": [], "User": "", "Cmd": ["sh"]
        }))
        .unwrap();
        let cfg = image_config(Some(&back));
        assert!(cfg.extra.is_empty(), "{:?}", cfg.extra);
        assert_eq!((cfg.user, cfg.env), (None, None));
        assert_eq!(cfg.cmd, Some(s(&["sh"])));
    }

    #[test]
    fn empty_config_commits_as_an_empty_body() {
        let json = serde_json::to_value(commit_config(&ContainerConfig::default())).unwrap();
        assert_eq!(json, serde_json::json!({}));
    }

    #[test]
    fn profiles_say_whether_commits_are_cheap() {
        let info = |driver: &str, status: &[(&str, &str)]| bollard::models::SystemInfo {
            driver: Some(driver.into()),
            driver_status: Some(
                status
                    .iter()
                    .map(|(k, v)| vec![k.to_string(), v.to_string()])
                    .collect(),
            ),
            ncpu: Some(2),
            ..Default::default()
        };
        let p = engine_profile(&info("fuse-overlayfs", &[]), "20.10");
        assert!(!p.native_diff);
        assert!(p.commit_seconds(1_090_000_000) > 2.0);
        let p = engine_profile(&info("overlay2", &[("Native Overlay Diff", "true")]), "");
        assert!(p.native_diff && p.commit_seconds(1_090_000_000) < 0.5);
        let p = engine_profile(&info("overlay2", &[("Native Overlay Diff", "false")]), "");
        assert!(!p.native_diff);
        let p = engine_profile(
            &info(
                "overlayfs",
                &[("driver-type", "io.containerd.snapshotter.v1")],
            ),
            "",
        );
        assert!(p.native_diff);
        assert!(!engine_profile(&info("vfs", &[]), "").native_diff);
        assert_eq!(engine_profile(&info("vfs", &[]), "").cpus, 2);
    }

    #[test]
    fn platforms_and_arches() {
        assert_eq!(
            engine_platform("linux", "x86_64"),
            Platform {
                os: "linux".into(),
                architecture: "amd64".into(),
                variant: "".into(),
                ..Platform::default()
            }
        );
        assert_eq!(engine_platform("linux", "aarch64").architecture, "arm64");
        assert_eq!(engine_platform("linux", "armv7l").variant, "v7");
        assert_eq!(engine_platform("linux", "armv7l").format(), "linux/arm/v7");
        assert_eq!(engine_platform("linux", "amd64").format(), "linux/amd64");
    }

    #[test]
    fn path_stat_decodes_go_file_modes() {
        let dir = path_stat("app", 4096, (1 << 31) | 0o755, None);
        assert_eq!((dir.kind, dir.mode), (PathKind::Dir, 0o755));
        let link = path_stat("sh", 7, (1 << 27) | 0o777, Some("/bin/busybox"));
        assert_eq!(
            link.kind,
            PathKind::Symlink {
                target: "/bin/busybox".into()
            }
        );
        let suid = path_stat("su", 10, (1 << 23) | 0o755, None);
        assert_eq!((suid.kind, suid.mode), (PathKind::File, 0o4755));
        let sticky = path_stat("tmp", 0, (1 << 31) | (1 << 20) | 0o777, None);
        assert_eq!(sticky.mode, 0o1777);
    }

    #[test]
    fn api_version_comparison() {
        assert!(api_at_least("1.41", "1.41"));
        assert!(api_at_least("1.53", "1.41"));
        assert!(api_at_least("2.0", "1.41"));
        assert!(!api_at_least("1.40", "1.41"));
        assert!(!api_at_least("1.9", "1.41"));
        assert!(!api_at_least("garbage", "1.41"));
    }
}
