//! Field-by-field tests of the pure request builders and the engine-report mappings.

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

#[test]
fn the_commit_merge_fills_what_the_wanted_config_leaves_empty_and_removes_nothing() {
    let container = ContainerConfig {
        env: Some(vec!["A=2".into(), "B=3".into()]),
        cmd: Some(vec!["/bin/sh".into()]),
        working_dir: Some("/x".into()),
        labels: Some(BTreeMap::from([
            ("xplat.managed".to_string(), "true".to_string()),
            ("k".to_string(), "theirs".to_string()),
        ])),
        ..ContainerConfig::default()
    };
    let wanted = ContainerConfig {
        env: Some(vec!["A=1".into()]),
        labels: Some(BTreeMap::from([("k".to_string(), "ours".to_string())])),
        ..ContainerConfig::default()
    };
    let got = merge_commit_config(&wanted, &container);
    assert_eq!(got.env, Some(vec!["A=1".to_string(), "B=3".to_string()]));
    assert_eq!(got.cmd, container.cmd);
    assert_eq!(got.working_dir.as_deref(), Some("/x"));
    let labels = got.labels.unwrap();
    assert_eq!(labels["k"], "ours");
    assert_eq!(labels["xplat.managed"], "true");
    // An ENTRYPOINT keeps the container's command out.
    let with_entrypoint = ContainerConfig {
        entrypoint: Some(vec!["/app".into()]),
        ..wanted
    };
    assert_eq!(merge_commit_config(&with_entrypoint, &container).cmd, None);
}
