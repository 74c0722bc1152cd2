//! Unit tables for `plan()`: ARG scoping, dedup, modes, keys, errors.

use super::*;
use crate::dockerfile::{parse, KeyValue};

/// Options for `targets`, built on linux/amd64 (also used by the lint tables).
pub(crate) fn opts(targets: &[&str]) -> PlanOptions {
    PlanOptions {
        targets: targets
            .iter()
            .map(|t| Platform::parse(t).unwrap().normalized())
            .collect(),
        build_platform: Platform::new("linux", "amd64", ""),
        build_args: BTreeMap::new(),
        target_stage: None,
        ..Default::default()
    }
}

fn plan_of(src: &str, o: &PlanOptions) -> Result<BuildPlan> {
    plan(&parse(src).unwrap(), o, &Catalog::embedded())
}

fn both() -> PlanOptions {
    opts(&["linux/amd64", "linux/arm64"])
}

/// The RUN args of the first RUN of the job for `stage` serving `platform`.
fn run_args(p: &BuildPlan, stage: usize, platform: &str) -> BTreeMap<String, String> {
    let platform = Platform::parse(platform).unwrap().normalized();
    let job = p
        .jobs
        .iter()
        .find(|j| j.stage.index == stage && j.platforms.contains(&platform))
        .unwrap();
    job.steps
        .iter()
        .find(|s| matches!(s.instruction, Instruction::Run(_)))
        .unwrap()
        .args
        .clone()
}

#[test]
fn arg_scoping_table() {
    // (dockerfile, build args, expected RUN args of stage 0 for linux/arm64)
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(&str, Pairs, Pairs)] = &[
        ("FROM a\nRUN x\n", &[], &[]),
        ("ARG V=1\nFROM a\nRUN x\n", &[], &[]),
        ("ARG V=1\nFROM a\nARG V\nRUN x\n", &[], &[("V", "1")]),
        ("ARG V=1\nFROM a\nARG V=2\nRUN x\n", &[], &[("V", "2")]),
        (
            "ARG V=1\nFROM a\nARG V=2\nRUN x\n",
            &[("V", "3")],
            &[("V", "3")],
        ),
        ("FROM a\nARG V\nRUN x\n", &[], &[]),
        (
            "FROM a\nARG TARGETARCH\nRUN x\n",
            &[],
            &[("TARGETARCH", "arm64")],
        ),
        (
            "FROM a\nARG TARGETOS TARGETPLATFORM\nRUN x\n",
            &[("TARGETOS", "freebsd")],
            &[("TARGETOS", "freebsd"), ("TARGETPLATFORM", "linux/arm64")],
        ),
        (
            "FROM a\nARG BUILDARCH TARGET_RUST_TRIPLE\nRUN x\n",
            &[],
            &[
                ("BUILDARCH", "amd64"),
                ("TARGET_RUST_TRIPLE", "aarch64-unknown-linux-gnu"),
            ],
        ),
        (
            "FROM a\nARG A=1 B=$A-2\nRUN x\n",
            &[],
            &[("A", "1"), ("B", "1-2")],
        ),
        ("FROM a\nENV E=env\nARG A=$E\nRUN x\n", &[], &[("A", "env")]),
    ];
    for (src, ba, want) in cases {
        let mut o = both();
        o.build_args = ba
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = plan_of(src, &o).unwrap();
        let want: BTreeMap<String, String> = want
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(run_args(&p, 0, "linux/arm64"), want, "{src}");
    }
}

#[test]
fn expansion_sees_env_over_arg_and_previous_env_line() {
    let p = plan_of(
        "FROM a\nARG X=arg\nENV X=env Y=$X\nWORKDIR /$X/$Y\n",
        &opts(&["linux/amd64"]),
    )
    .unwrap();
    let steps = &p.jobs[0].steps;
    assert_eq!(
        steps[2].instruction,
        Instruction::Workdir("/env/arg".into())
    );
}

#[test]
fn dedup_table() {
    // (dockerfile, jobs for amd64+arm64)
    let cases: &[(&str, usize)] = &[
        ("FROM --platform=$BUILDPLATFORM a\nRUN x\n", 1),
        ("FROM --platform=$BUILDPLATFORM a\nARG TARGETARCH\nRUN x\n", 2),
        // declared and unused still differs: RUN sees it in its environment...
        ("FROM --platform=$BUILDPLATFORM a\nARG TARGETOS TARGETARCH\nRUN x\n", 2),
        // ...but only when the values differ: TARGETVARIANT is "" for both.
        ("FROM --platform=$BUILDPLATFORM a\nARG TARGETVARIANT\nRUN x\n", 1),
        ("FROM --platform=$BUILDPLATFORM a\nARG BUILDARCH\nRUN x\n", 1),
        ("FROM --platform=$BUILDPLATFORM a\nARG TARGETOS\nRUN x\n", 1),
        ("FROM a\nRUN x\n", 2),
        ("FROM --platform=linux/amd64 a\nCOPY x /x\n", 1),
        // A RUN-less stage that declares a TARGET ARG differs per target: a child
        // inherits the value (one shared job would give arm64 amd64's).
        (
            "FROM --platform=$BUILDPLATFORM a AS s\nARG TARGETARCH\nFROM s\nRUN x\n",
            4,
        ),
        (
            "FROM --platform=$BUILDPLATFORM a AS s\nRUN x\nFROM s AS t\nARG TARGETARCH\nRUN y\nFROM scratch\nCOPY --from=t / /\n",
            5,
        ),
    ];
    for (src, jobs) in cases {
        let p = plan_of(src, &both()).unwrap();
        assert_eq!(p.jobs.len(), *jobs, "{src}");
    }
}

#[test]
fn keys_are_stable_and_ignore_line_numbers() {
    let a = plan_of("FROM a\nRUN x\n", &both()).unwrap();
    let b = plan_of("FROM a\n# comment\n\nRUN x\n", &both()).unwrap();
    let c = plan_of("FROM a\nRUN y\n", &both()).unwrap();
    assert_eq!(a, plan_of("FROM a\nRUN x\n", &both()).unwrap());
    assert_eq!(a.jobs[0].key, b.jobs[0].key);
    assert_ne!(a.jobs[0].key, c.jobs[0].key);
    assert_ne!(a.jobs[0].key, a.jobs[1].key, "run platform is an input");
    // A dependency's change changes its dependents' keys.
    let d1 = plan_of("FROM a AS s\nRUN x\nFROM b\nCOPY --from=s / /\n", &both()).unwrap();
    let d2 = plan_of("FROM a AS s\nRUN z\nFROM b\nCOPY --from=s / /\n", &both()).unwrap();
    assert_ne!(d1.jobs[1].key, d2.jobs[1].key);
}

#[test]
fn stage_platform_rules() {
    let p = plan_of(
        "FROM --platform=$BUILDPLATFORM a AS tools\nFROM --platform=linux/arm64 tools AS t\nRUN x\nFROM scratch\nCOPY --from=t / /\n",
        &opts(&["linux/arm/v7"]),
    )
    .unwrap();
    // A stage FROM another stage inherits its platform, even with --platform (BuildKit).
    assert_eq!(p.jobs[1].run_platform, Platform::new("linux", "amd64", ""));
    assert_eq!(p.jobs[1].mode, Mode::Native);
    assert_eq!(p.jobs[2].run_platform, Platform::new("linux", "arm", "v7"));
    assert_eq!(p.jobs[2].mode, Mode::Assembled);
    assert_eq!(p.targets[0].final_job, JobId(2));
}

#[test]
fn references_resolve_by_name_index_or_image() {
    let p = plan_of(
        "FROM a AS one\nCOPY x /x\nFROM b\nCOPY --from=ONE /x /1\nCOPY --from=0 /x /2\nCOPY --from=img:1 /x /3\nRUN --mount=from=one,target=/m --mount=type=cache,target=/c x\n",
        &opts(&["linux/amd64"]),
    )
    .unwrap();
    let s = &p.jobs[1].steps;
    assert_eq!(s[0].from, Some(Source::Stage { job: JobId(0) }));
    assert_eq!(s[1].from, Some(Source::Stage { job: JobId(0) }));
    assert_eq!(
        s[2].from,
        Some(Source::Image {
            reference: "img:1".into()
        })
    );
    assert_eq!(
        s[3].mount_from,
        vec![Some(Source::Stage { job: JobId(0) }), None]
    );
    assert_eq!(p.jobs[1].deps, vec![JobId(0)]);
}

#[test]
fn from_matches_only_earlier_stages() {
    // `FROM later` names a stage defined after it: an image, as in BuildKit.
    let p = plan_of(
        "FROM later\nCOPY a /a\nFROM a AS later\n",
        &opts(&["linux/amd64"]),
    );
    let p = p.unwrap();
    assert_eq!(
        p.jobs[0].base,
        Base::Image {
            reference: "a".into(),
            pinned: None,
        }
    );
    let p = plan_of(
        "FROM x AS later\nFROM scratch AS z\nFROM later\n",
        &PlanOptions {
            target_stage: Some("0".into()),
            ..opts(&["linux/amd64"])
        },
    )
    .unwrap();
    assert_eq!(p.target_stage.index, 0);
}

#[test]
fn errors_with_locations() {
    let one = opts(&["linux/amd64"]);
    let cases: &[(&str, Option<&str>, &str, Option<usize>)] = &[
        (
            "FROM a AS x\nCOPY --from=y / /\nFROM b AS y\nCOPY --from=x / /\n",
            None,
            "circular dependency between stages: y -> x -> y",
            Some(2),
        ),
        (
            "FROM a AS x\nCOPY --from=x / /\n",
            None,
            "circular dependency between stages: x -> x",
            Some(2),
        ),
        (
            "FROM a\nCOPY --from=3 / /\n",
            None,
            "invalid stage index 3 in COPY (the file has 1 stages)",
            Some(2),
        ),
        (
            "FROM a AS build\n",
            Some("biuld"),
            "target stage \"biuld\" not found (did you mean build?)",
            None,
        ),
        (
            "FROM ${NOPE}\n",
            None,
            "base name (${NOPE}) should not be blank",
            Some(1),
        ),
        (
            "ARG P=linux/arm64/v8/x\nFROM --platform=$P a\n",
            None,
            "failed to parse platform $P",
            Some(2),
        ),
        (
            "FROM a\nWORKDIR ${X:?must be set}\n",
            None,
            "X: must be set",
            Some(2),
        ),
    ];
    for (src, target, msg, line) in cases {
        let o = PlanOptions {
            target_stage: target.map(String::from),
            ..one.clone()
        };
        let e = plan_of(src, &o).unwrap_err();
        assert!(e.to_string().contains(msg), "{src}: {e}");
        assert_eq!(e.location().map(|l| l.line), *line, "{src}");
    }
    let dup = opts(&["linux/arm64", "linux/arm64/v8"]);
    assert!(matches!(
        plan_of("FROM a\n", &dup),
        Err(PlanError::DuplicateTarget { .. })
    ));
    assert!(matches!(
        plan_of("FROM a\n", &opts(&[])),
        Err(PlanError::NoTargets)
    ));
}

#[test]
fn unused_build_args_are_reported() {
    let mut o = both();
    for k in ["USED", "UNUSED", "TARGETOS", "GLOBAL"] {
        o.build_args.insert(k.into(), "v".into());
    }
    let p = plan_of("ARG GLOBAL\nFROM a\nARG USED\n", &o).unwrap();
    assert_eq!(p.unused_build_args, vec!["UNUSED".to_string()]);
}

#[test]
fn target_stage_arg_value() {
    let p = plan_of(
        "FROM a AS first\nARG TARGETSTAGE\nRUN x\nFROM b\n",
        &PlanOptions {
            target_stage: Some("FIRST".into()),
            ..opts(&["linux/amd64"])
        },
    )
    .unwrap();
    assert_eq!(run_args(&p, 0, "linux/amd64")["TARGETSTAGE"], "FIRST");
}

/// BuildKit's testPlatformArgsExplicit (../shared/peer/shell/PLATFORM_ARGS.md): a
/// `--build-arg TARGETOS` overrides that one value; TARGETPLATFORM is unchanged; the
/// build stage runs on the build platform.
#[test]
fn buildkit_platform_args_explicit() {
    let mut o = opts(&["darwin/ppc64le"]);
    o.build_args.insert("TARGETOS".into(), "freebsd".into());
    let p = plan_of(
        "FROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETPLATFORM\nARG TARGETOS\nRUN echo\nFROM scratch\nCOPY --from=build out .\n",
        &o,
    )
    .unwrap();
    let args = run_args(&p, 0, "darwin/ppc64le");
    assert_eq!(args["TARGETPLATFORM"], "darwin/ppc64le");
    assert_eq!(args["TARGETOS"], "freebsd");
    assert_eq!(p.jobs[0].mode, Mode::Native);
    assert_eq!(p.jobs[1].mode, Mode::Assembled);
}

#[test]
fn unresolved_steps_carry_their_args_and_template() {
    let src = "FROM golang\nARG V=1\nENV P=$GOPATH/v$V\nLABEL l=$V\n";
    let p = plan_of(src, &opts(&["linux/amd64"])).unwrap();
    let steps = &p.jobs[0].steps;
    assert_eq!(steps[1].unresolved, vec!["GOPATH".to_string()]);
    assert_eq!(steps[1].args.get("V").map(String::as_str), Some("1"));
    let df = parse(src).unwrap();
    assert_eq!(
        steps[1].template.as_ref(),
        Some(&df.stages[0].instructions[1].node),
        "the raw instruction, for the executor"
    );
    assert!(
        steps[2].args.is_empty() && steps[2].template.is_none(),
        "resolved non-RUN steps carry no args and no template"
    );
    // What the executor does with the base image's ENV: config Env, then the args.
    let mut vars = BTreeMap::from([
        ("V".to_string(), "from-env".to_string()),
        ("GOPATH".to_string(), "/go".to_string()),
    ]);
    vars.extend(steps[1].args.clone());
    let again = expand_instruction(steps[1].template.as_ref().unwrap(), 3, &vars, '\\').unwrap();
    match again {
        Instruction::Env(kvs) => assert_eq!(kvs[0].value, "/go/v1"),
        other => panic!("{other:?}"),
    }
    // From scratch nothing is unknown: an unset name is empty, no template.
    let p = plan_of("FROM scratch\nENV P=$GOPATH/x\n", &opts(&["linux/amd64"])).unwrap();
    let step = &p.jobs[0].steps[0];
    assert!(step.unresolved.is_empty() && step.template.is_none());
    assert_eq!(
        step.instruction,
        Instruction::Env(vec![KeyValue {
            key: "P".into(),
            value: "/x".into()
        }])
    );
}

mod bases;
mod inherit;
