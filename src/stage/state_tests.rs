//! Unit tables for `State`: one row per rule, each checked against BuildKit (see `super`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::dockerfile::{ArgDecl, Onbuild};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}

fn cc(st: &State) -> &ContainerConfig {
    st.config.config.as_ref().unwrap()
}

fn apply_all(st: &mut State, instrs: &[Instruction]) -> Vec<Effect> {
    instrs.iter().map(|i| st.apply(i).unwrap()).collect()
}

#[test]
fn scratch_and_bases_get_buildkits_defaults() {
    let s = State::scratch(&amd64());
    assert_eq!(s.env(), [format!("PATH={DEFAULT_PATH}")]);
    assert_eq!(cc(&s).working_dir.as_deref(), Some("/"));
    // An image with no PATH (an imported rootfs): PATH appended, WorkingDir left unset.
    let mut base = ImageConfig::for_platform(&amd64(), None);
    base.config = Some(ContainerConfig {
        env: Some(vec!["A=1".into()]),
        on_build: Some(vec!["RUN x".into()]),
        cmd: Some(vec!["sh".into()]),
        ..ContainerConfig::default()
    });
    let s = State::from_base(&base);
    assert_eq!(s.env(), ["A=1".to_string(), format!("PATH={DEFAULT_PATH}")]);
    assert_eq!(cc(&s).working_dir, None);
    assert_eq!(s.workdir(), "/");
    assert_eq!(cc(&s).on_build, None, "the base's ONBUILD is not inherited");
    assert_eq!(cc(&s).cmd.as_deref(), Some(&["sh".to_string()][..]));
    // A PATH of its own is kept as is.
    base.config.as_mut().unwrap().env = Some(vec!["PATH=/x".into()]);
    assert_eq!(State::from_base(&base).env(), ["PATH=/x"]);
    // Windows: no Linux PATH.
    let win = Platform::new("windows", "amd64", "");
    assert!(State::scratch(&win).env().is_empty());
    assert_eq!(State::scratch(&win).shell(), ["cmd", "/S", "/C"]);
}

#[test]
fn env_replaces_in_place_and_values_are_not_expanded_again() {
    let mut s = State::scratch(&amd64());
    apply_all(
        &mut s,
        &[
            Instruction::Env(vec![kv("A", "1"), kv("B", "$HOME")]),
            Instruction::Env(vec![kv("A", "2")]),
        ],
    );
    assert_eq!(s.env()[1..], ["A=2".to_string(), "B=$HOME".into()]);
    assert_eq!(s.env_map()["B"], "$HOME");
}

#[test]
fn run_env_is_config_env_with_step_args_over_it() {
    // PLAN.md "ARG semantics": ENV Y=a, then ARG Y with --build-arg Y=b → RUN sees b.
    let mut s = State::scratch(&amd64());
    s.apply(&Instruction::Env(vec![kv("Y", "a"), kv("Z", "z")]))
        .unwrap();
    let args = BTreeMap::from([("Y".to_string(), "b".to_string()), ("N".into(), "n".into())]);
    assert_eq!(
        s.run_env(&args),
        [
            format!("PATH={DEFAULT_PATH}"),
            "Y=b".into(),
            "Z=z".into(),
            "N=n".into()
        ]
    );
    assert!(
        !s.env().iter().any(|e| e == "N=n"),
        "ARG never stored in the config"
    );
}

#[test]
fn every_metadata_instruction_edits_the_config() {
    let mut s = State::scratch(&amd64());
    let effects = apply_all(
        &mut s,
        &[
            Instruction::Label(vec![kv("k", "v w")]),
            Instruction::User("app".into()),
            Instruction::Expose(vec!["80".into(), "53/UDP 8000-8010".into()]),
            Instruction::Volume(vec!["/data".into()]),
            Instruction::Shell(vec!["/bin/bash".into(), "-xc".into()]),
            Instruction::Cmd(Command::Shell("echo hi".into())),
            Instruction::Stopsignal("SIGTERM".into()),
            Instruction::Maintainer("me".into()),
            Instruction::Arg(vec![ArgDecl {
                name: "A".into(),
                default: Some("1".into()),
            }]),
            Instruction::Onbuild(Onbuild {
                instruction: Box::new(Instruction::User("x".into())),
                original: "USER x".into(),
            }),
        ],
    );
    assert!(effects.iter().all(|e| *e == Effect::Config));
    let c = cc(&s);
    assert_eq!(c.labels.as_ref().unwrap()["k"], "v w");
    assert_eq!(s.user(), Some("app"));
    let ports: Vec<_> = c.exposed_ports.as_ref().unwrap().keys().cloned().collect();
    // A range is each of its ports, as BuildKit records it (the differential suite).
    let mut want = vec!["53/udp".to_string(), "80/tcp".to_string()];
    want.extend((8000..=8010).map(|p| format!("{p}/tcp")));
    assert_eq!(ports, want);
    assert!(c.volumes.as_ref().unwrap().contains_key("/data"));
    assert_eq!(c.cmd.as_ref().unwrap(), &["/bin/bash", "-xc", "echo hi"]);
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(s.config.author.as_deref(), Some("me"));
    assert_eq!(c.on_build.as_ref().unwrap(), &["USER x"]);
    assert_eq!(s.env().len(), 1, "ARG is not in the config");
}

#[test]
fn entrypoint_clears_an_inherited_cmd_but_not_one_set_in_the_stage() {
    let mut base = ImageConfig::for_platform(&amd64(), None);
    base.config = Some(ContainerConfig {
        cmd: Some(vec!["sh".into()]),
        ..ContainerConfig::default()
    });
    let mut s = State::from_base(&base);
    s.apply(&Instruction::Entrypoint(Command::Exec(vec![
        "/bin/echo".into()
    ])))
    .unwrap();
    assert_eq!(cc(&s).cmd, None);
    let mut s = State::from_base(&base);
    s.apply(&Instruction::Cmd(Command::Exec(vec!["--help".into()])))
        .unwrap();
    s.apply(&Instruction::Entrypoint(Command::Shell("app".into())))
        .unwrap();
    assert_eq!(cc(&s).cmd.as_ref().unwrap(), &["--help"]);
    assert_eq!(
        cc(&s).entrypoint.as_ref().unwrap(),
        &["/bin/sh", "-c", "app"]
    );
}

#[test]
fn healthcheck_keeps_every_flag_including_start_interval() {
    let mut s = State::scratch(&amd64());
    s.apply(&Instruction::Healthcheck(HealthcheckInstr::Cmd {
        test: Command::Shell("curl -f localhost".into()),
        interval: Some(Duration::from_secs(10)),
        timeout: Some(Duration::from_secs(3)),
        start_period: Some(Duration::from_secs(1)),
        start_interval: Some(Duration::from_millis(500)),
        retries: Some(4),
    }))
    .unwrap();
    let h = cc(&s).healthcheck.clone().unwrap();
    assert_eq!(h.test.unwrap(), ["CMD-SHELL", "curl -f localhost"]);
    assert_eq!(
        (
            h.interval,
            h.timeout,
            h.start_period,
            h.start_interval,
            h.retries
        ),
        (
            Some(10_000_000_000),
            Some(3_000_000_000),
            Some(1_000_000_000),
            Some(500_000_000),
            Some(4)
        )
    );
    s.apply(&Instruction::Healthcheck(HealthcheckInstr::None))
        .unwrap();
    assert_eq!(
        cc(&s).healthcheck.as_ref().unwrap().test.as_ref().unwrap(),
        &["NONE"]
    );
}

#[test]
fn workdir_joins_and_asks_for_its_directory_with_the_current_user() {
    let mut s = State::scratch(&amd64());
    let e = s.apply(&Instruction::Workdir("/app/sub".into())).unwrap();
    assert_eq!(
        e,
        Effect::MakeDir {
            path: "/app/sub".into(),
            user: None
        }
    );
    s.apply(&Instruction::User("5:6".into())).unwrap();
    let e = s.apply(&Instruction::Workdir("rel/../x".into())).unwrap();
    assert_eq!(
        e,
        Effect::MakeDir {
            path: "/app/sub/x".into(),
            user: Some("5:6".into())
        }
    );
    assert_eq!(s.workdir(), "/app/sub/x");
    let h = s.history(&Instruction::Workdir("rel/../x".into()), Some(0), false);
    assert_eq!(h.created_by.as_deref(), Some("WORKDIR /app/sub/x"));
    assert_eq!(h.comment.as_deref(), Some(HISTORY_COMMENT));
}

#[test]
fn bad_values_are_named_errors_and_fs_instructions_are_effects() {
    let mut s = State::scratch(&amd64());
    assert!(matches!(
        s.apply(&Instruction::Expose(vec!["abc".into()])),
        Err(StageError::InvalidPort { .. })
    ));
    assert!(matches!(
        s.apply(&Instruction::Volume(vec!["".into()])),
        Err(StageError::EmptyVolume)
    ));
    let run = crate::dockerfile::parse("FROM scratch\nRUN true\n").unwrap();
    assert_eq!(
        s.apply(&run.stages[0].instructions[0].node).unwrap(),
        Effect::Run
    );
}

#[test]
fn history_text_for_each_kind() {
    let s = State::scratch(&amd64());
    let table = [
        (Instruction::Expose(vec!["80".into()]), "EXPOSE 80"),
        (
            Instruction::Arg(vec![ArgDecl {
                name: "FOO".into(),
                default: Some("1".into()),
            }]),
            "ARG FOO=1",
        ),
        (Instruction::Maintainer("me".into()), "MAINTAINER me"),
        (Instruction::Env(vec![kv("A", "b")]), "ENV A=b"),
        (
            Instruction::Cmd(Command::Exec(vec!["a".into(), "b".into()])),
            "CMD [\"a\",\"b\"]",
        ),
    ];
    for (i, want) in table {
        let h = s.history(&i, None, true);
        assert_eq!(h.created_by.as_deref(), Some(want));
        assert!(h.empty_layer);
    }
}

/// EXPOSE of a range exposes each port of it, as the engine's BuildKit records it.
#[test]
fn an_exposed_range_is_each_of_its_ports() {
    assert_eq!(
        normalize_port("8000-8002"),
        Some(vec![
            "8000/tcp".into(),
            "8001/tcp".into(),
            "8002/tcp".into()
        ])
    );
    assert_eq!(normalize_port("53/UDP"), Some(vec!["53/udp".into()]));
    assert_eq!(normalize_port("080"), Some(vec!["80/tcp".into()]));
    assert_eq!(normalize_port("9-8"), None);
    assert_eq!(normalize_port("70000"), None);
    assert_eq!(normalize_port("80/icmp"), None);
}
