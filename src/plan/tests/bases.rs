//! Planning with base images resolved beforehand ([`BaseInfo`]): the config's Env,
//! WorkingDir and OnBuild are used as BuildKit uses them, and the pinned id is
//! what the cache key holds.

use super::*;
use crate::oci::{ContainerConfig, ImageConfig};

fn base(pinned: &str, env: &[&str], workdir: Option<&str>, onbuild: &[&str]) -> BaseInfo {
    BaseInfo {
        pinned: pinned.into(),
        platform: Platform::new("linux", "amd64", ""),
        config: ImageConfig {
            config: Some(ContainerConfig {
                env: Some(env.iter().map(|s| s.to_string()).collect()),
                working_dir: workdir.map(String::from),
                on_build: (!onbuild.is_empty())
                    .then(|| onbuild.iter().map(|s| s.to_string()).collect()),
                ..ContainerConfig::default()
            }),
            ..ImageConfig::default()
        },
    }
}

/// `opts` with `info` as the base `reference` for every target.
fn with_base(mut o: PlanOptions, reference: &str, info: &BaseInfo) -> PlanOptions {
    for t in o.targets.clone() {
        o.bases
            .insert((reference.to_string(), t.format_all()), info.clone());
    }
    o
}

const GOLANG_ENV: &[&str] = &[
    "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "GOPATH=/go",
];

#[test]
fn expansion_starts_from_the_base_config_env() {
    let src = "FROM golang:1.22\nENV PATH=/app/bin:$PATH GP=$GOPATH NOPE=x$NOPE\n";
    let info = base("sha256:1111", GOLANG_ENV, None, &[]);
    let p = plan_of(
        src,
        &with_base(opts(&["linux/amd64"]), "golang:1.22", &info),
    )
    .unwrap();
    let step = &p.jobs[0].steps[0];
    assert_eq!(
        step.instruction,
        Instruction::Env(vec![
            KeyValue {
                key: "PATH".into(),
                value: format!("/app/bin:{}", &GOLANG_ENV[0][5..]),
            },
            KeyValue {
                key: "GP".into(),
                value: "/go".into()
            },
            KeyValue {
                key: "NOPE".into(),
                value: "x".into()
            },
        ])
    );
    assert!(
        step.unresolved.is_empty() && step.template.is_none(),
        "nothing is unknown with the base's config: NOPE is simply unset"
    );
    assert_eq!(
        p.jobs[0].base,
        Base::Image {
            reference: "golang:1.22".into(),
            pinned: Some("sha256:1111".into())
        }
    );
    // A config without PATH gets BuildKit's default.
    let info = base("sha256:2", &[], None, &[]);
    let p = plan_of(
        src,
        &with_base(opts(&["linux/amd64"]), "golang:1.22", &info),
    )
    .unwrap();
    match &p.jobs[0].steps[0].instruction {
        Instruction::Env(kvs) => assert_eq!(
            kvs[0].value,
            "/app/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ),
        other => panic!("{other:?}"),
    }
    // Without it: the template, for the executor.
    let p = plan_of(src, &opts(&["linux/amd64"])).unwrap();
    let step = &p.jobs[0].steps[0];
    assert_eq!(step.unresolved, ["GOPATH", "NOPE", "PATH"]);
    assert!(step.template.is_some());
}

#[test]
fn onbuild_triggers_of_the_image_are_the_first_steps() {
    let src = "FROM scratch AS assets\nCOPY a /a\n\
               FROM node:onbuild\nCOPY b /b\n";
    let info = base(
        "sha256:3333",
        &["NODE_ENV=production"],
        Some("/usr/src/app"),
        &[
            "COPY package.json /usr/src/app/",
            "RUN npm install --$NODE_ENV",
            "COPY --from=assets /a ./a",
        ],
    );
    let o = both();
    let mut o2 = o.clone();
    // Resolved for arm64 only: amd64 plans offline.
    o2.bases
        .insert(("node:onbuild".into(), "linux/arm64".into()), info.clone());
    let p = plan_of(src, &o2).unwrap();
    let arm = p
        .jobs
        .iter()
        .find(|j| j.stage.index == 1 && j.run_platform.architecture == "arm64")
        .unwrap();
    let steps: Vec<(usize, &str)> = arm
        .steps
        .iter()
        .map(|s| (s.line, s.instruction.keyword()))
        .collect();
    assert_eq!(steps, [(3, "COPY"), (3, "RUN"), (3, "COPY"), (4, "COPY")]);
    assert_eq!(
        arm.steps[2].from,
        Some(Source::Stage {
            job: p
                .jobs
                .iter()
                .find(|j| j.stage.index == 0 && j.run_platform.architecture == "arm64")
                .unwrap()
                .id
        }),
        "a trigger's COPY --from names a stage of this Dockerfile"
    );
    assert_eq!(arm.mode, Mode::Emulated);
    assert_eq!(
        arm.reason,
        Reason::RunOnForeignPlatform { line: 3, runs: 1 }
    );
    let amd = p
        .jobs
        .iter()
        .find(|j| j.stage.index == 1 && j.run_platform.architecture == "amd64")
        .unwrap();
    assert_eq!(amd.steps.len(), 1, "unknown triggers are the executor's");
    assert_eq!(
        amd.base,
        Base::Image {
            reference: "node:onbuild".into(),
            pinned: None
        }
    );

    let bad = base("sha256:4", &[], None, &["RUN a\nRUN b"]);
    let e = plan_of(src, &with_base(o, "node:onbuild", &bad)).unwrap_err();
    assert!(matches!(e, PlanError::InvalidTrigger { .. }), "{e}");
    assert_eq!(e.location().map(|l| l.line), Some(3));
}

#[test]
fn the_base_workdir_places_mounts() {
    let src = "FROM golang\nRUN --mount=type=bind --mount=type=cache,target=.cache go build\n";
    let info = base("sha256:5", GOLANG_ENV, Some("/go/src/app"), &[]);
    let p = plan_of(src, &with_base(opts(&["linux/amd64"]), "golang", &info)).unwrap();
    let step = &p.jobs[0].steps[0];
    let Instruction::Run(r) = &step.instruction else {
        panic!()
    };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/go/src/app"));
    assert_eq!(r.mounts[1].target.as_deref(), Some("/go/src/app/.cache"));
    assert!(step.mounts_at_workdir.is_empty());
    // A base without WorkingDir is at /: a bind mount without target is refused.
    let info = base("sha256:6", GOLANG_ENV, None, &[]);
    let e = plan_of(src, &with_base(opts(&["linux/amd64"]), "golang", &info)).unwrap_err();
    assert!(matches!(e, PlanError::InvalidMountTarget { .. }), "{e}");
}

#[test]
fn the_cache_key_holds_the_pinned_id_not_the_tag() {
    let key = |src: &str, reference: &str, pinned: &str| {
        let info = base(pinned, GOLANG_ENV, None, &[]);
        plan_of(src, &with_base(opts(&["linux/amd64"]), reference, &info))
            .unwrap()
            .jobs[0]
            .key
            .clone()
    };
    let a = key("FROM golang:1.22\nRUN x\n", "golang:1.22", "sha256:aaaa");
    assert_eq!(
        a,
        key(
            "FROM golang:1.22.5\nRUN x\n",
            "golang:1.22.5",
            "sha256:aaaa"
        )
    );
    assert_ne!(
        a,
        key("FROM golang:1.22\nRUN x\n", "golang:1.22", "sha256:bbbb")
    );
    let offline = plan_of("FROM golang:1.22\nRUN x\n", &opts(&["linux/amd64"])).unwrap();
    assert_ne!(a, offline.jobs[0].key);
    // The plan JSON shows what was used.
    let json = serde_json::to_value(
        plan_of(
            "FROM golang:1.22\nRUN x\n",
            &with_base(
                opts(&["linux/amd64"]),
                "golang:1.22",
                &base("sha256:aaaa", &[], None, &[]),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(json["jobs"][0]["base"]["pinned"], "sha256:aaaa");
    assert_eq!(
        offline.jobs[0].base,
        Base::Image {
            reference: "golang:1.22".into(),
            pinned: None
        }
    );
}
