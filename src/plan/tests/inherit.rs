//! ARG and ENV across stages, ONBUILD of a stage base, and `RUN --mount` targets,
//! each rule as the engine's BuildKit showed it (see `plan::start` and `resolve`).

use super::*;

/// The job of `stage` that serves `platform`.
fn job<'p>(p: &'p BuildPlan, stage: usize, platform: &str) -> &'p Job {
    let platform = Platform::parse(platform).unwrap().normalized();
    p.jobs
        .iter()
        .find(|j| j.stage.index == stage && j.platforms.contains(&platform))
        .unwrap()
}

fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The engine's BuildKit on `FROM base AS child` where `base` declares
/// `ARG TARGETPLATFORM` and `ARG FOO=bar`: the child's RUN printed
/// `tp=[linux/amd64] foo=[bar]` with and without re-declaring them, and its
/// `WORKDIR /w-$TARGETPLATFORM-$FOO` made `/w-linux/amd64-bar`.
#[test]
fn a_child_stage_inherits_the_parents_arg_values() {
    let src = "FROM scratch AS base\nARG TARGETPLATFORM\nARG FOO=bar\nARG USER=app\nENV E1=env1\n\
               FROM base AS child\nRUN echo $TARGETPLATFORM $FOO\nWORKDIR /w-$TARGETPLATFORM-$FOO\n\
               COPY --chown=${USER} a /a\n\
               FROM child AS grandchild\nARG FOO\nRUN x\n\
               FROM base AS other\nARG FOO=other\nRUN y\n";
    for target in ["linux/amd64", "linux/arm64"] {
        let o = PlanOptions {
            target_stage: Some("child".into()),
            ..both()
        };
        let p = plan_of(src, &o).unwrap();
        let child = job(&p, 1, target);
        assert_eq!(
            child.steps[0].args,
            kv(&[("FOO", "bar"), ("TARGETPLATFORM", target), ("USER", "app")]),
            "{target}: RUN sees the parent's ARGs (not E1: ENV is in the config)"
        );
        assert_eq!(
            child.steps[1].instruction,
            Instruction::Workdir(format!("/w-{target}-bar"))
        );
        match &child.steps[2].instruction {
            Instruction::Copy(c) => assert_eq!(c.chown.as_deref(), Some("app")),
            other => panic!("{other:?}"),
        }
    }
    let p = plan_of(
        src,
        &PlanOptions {
            target_stage: Some("grandchild".into()),
            ..both()
        },
    )
    .unwrap();
    // A re-declaration without a value keeps the inherited one...
    assert_eq!(run_args(&p, 2, "linux/arm64")["FOO"], "bar");
    // ...and the child's jobs differ per target, so no arm64 image gets amd64's.
    assert_ne!(job(&p, 1, "linux/amd64").id, job(&p, 1, "linux/arm64").id);
    let p = plan_of(
        src,
        &PlanOptions {
            target_stage: Some("other".into()),
            ..both()
        },
    )
    .unwrap();
    assert_eq!(
        run_args(&p, 3, "linux/amd64")["FOO"],
        "other",
        "a default wins"
    );
    let mut o = both();
    o.target_stage = Some("other".into());
    o.build_args.insert("FOO".into(), "cli".into());
    let p = plan_of(src, &o).unwrap();
    assert_eq!(
        run_args(&p, 3, "linux/amd64")["FOO"],
        "cli",
        "a --build-arg wins"
    );
}

/// The engine's BuildKit, one stage, `--build-arg Y=b`: `ENV Y=a` + `ARG Y` gave RUN
/// and WORKDIR `b`; `ENV Z=z` + `ARG Z=zdefault` gave `zdefault`; `ARG Q=qarg` +
/// `ENV Q=qenv-$Q` gave `qenv-qarg`; `ENV N=n` + `ARG N` gave `n`. The image config
/// Env had only `Y=a` and `Z=z` (ENV), which is the executor's business.
#[test]
fn the_later_of_env_and_arg_wins() {
    let src = "FROM scratch\nENV Y=a\nARG Y\nRUN y\nWORKDIR /w1-$Y\n\
               ENV Z=z\nARG Z=zdefault\nRUN z\nWORKDIR /w2-$Z\n\
               ARG Q=qarg\nENV Q=qenv-$Q\nRUN q\n\
               ENV N=n\nARG N\nRUN n\nWORKDIR /w3-$N\n";
    let mut o = opts(&["linux/amd64"]);
    o.build_args.insert("Y".into(), "b".into());
    let p = plan_of(src, &o).unwrap();
    let steps = &p.jobs[0].steps;
    let run = |line: usize| {
        steps
            .iter()
            .find(|s| s.line == line && matches!(s.instruction, Instruction::Run(_)))
            .unwrap()
            .args
            .clone()
    };
    assert_eq!(run(4), kv(&[("Y", "b")]));
    assert_eq!(steps[3].instruction, Instruction::Workdir("/w1-b".into()));
    assert_eq!(run(8), kv(&[("Y", "b"), ("Z", "zdefault")]));
    assert_eq!(
        steps[7].instruction,
        Instruction::Workdir("/w2-zdefault".into())
    );
    assert_eq!(
        run(12),
        kv(&[("Y", "b"), ("Z", "zdefault")]),
        "Q was last set by ENV: the config has it"
    );
    match &steps[9].instruction {
        Instruction::Env(kvs) => assert_eq!(kvs[0].value, "qenv-qarg"),
        other => panic!("{other:?}"),
    }
    assert!(
        !run(15).contains_key("N"),
        "ARG N without a value keeps ENV's n"
    );
    assert_eq!(steps[14].instruction, Instruction::Workdir("/w3-n".into()));
}

/// The engine's BuildKit: `FROM base` where `base` has `ONBUILD RUN ...` and
/// `ONBUILD WORKDIR /ob-$V` ran both first in the child (its config then had no
/// OnBuild); a grandchild did not run them again.
#[test]
fn a_stage_bases_onbuild_triggers_run_first_in_the_child() {
    let src = "FROM scratch AS base\nENV V=val\nONBUILD RUN echo fired\nONBUILD WORKDIR /ob-$V\nCOPY b /b\n\
               FROM base AS child\nCOPY c /c\n\
               FROM child\nCOPY d /d\n";
    let p = plan_of(src, &both()).unwrap();
    let child = job(&p, 1, "linux/arm64");
    let lines: Vec<(usize, &str)> = child
        .steps
        .iter()
        .map(|s| (s.line, s.instruction.keyword()))
        .collect();
    assert_eq!(lines, [(6, "RUN"), (6, "WORKDIR"), (7, "COPY")]);
    assert_eq!(
        child.steps[1].instruction,
        Instruction::Workdir("/ob-val".into()),
        "triggers expand with the child's state"
    );
    assert_eq!(child.mode, Mode::Emulated, "a trigger RUN is a RUN");
    assert_eq!(
        child.reason,
        Reason::RunOnForeignPlatform { line: 6, runs: 1 }
    );
    let grandchild = job(&p, 2, "linux/arm64");
    assert_eq!(grandchild.steps.len(), 1, "fired once, not again");
    assert_eq!(grandchild.mode, Mode::Assembled);
    // The base itself keeps its ONBUILD instructions as steps (its config's OnBuild).
    assert_eq!(
        job(&p, 0, "linux/arm64").steps[1].instruction.keyword(),
        "ONBUILD"
    );
}

/// The engine's BuildKit: `WORKDIR /src` then `RUN --mount=type=bind ls /src` listed
/// the context; `--mount=from=bins`, `type=tmpfs`, `type=cache` and `--mount=ro`
/// without a target mounted at /src; `target=rel` at /src/rel, `target=cc` at
/// /src/cc; a secret with no target at /run/secrets/<id>. With WORKDIR / (none
/// given on a base without one), and with `target=..` from /a, the build failed:
/// `invalid mount target "/"`.
#[test]
fn mounts_without_a_target_go_to_the_workdir() {
    let src = "FROM scratch AS bins\nCOPY t /t\nFROM scratch\nWORKDIR /src\n\
               RUN --mount=type=bind --mount=from=bins --mount=type=bind,target=rel \
               --mount=type=cache,target=cc --mount=type=tmpfs --mount=ro \
               --mount=type=cache,target=/abs --mount=type=secret,id=s x\n";
    let p = plan_of(src, &opts(&["linux/amd64"])).unwrap();
    let run = p.jobs[1].steps.last().unwrap();
    let Instruction::Run(r) = &run.instruction else {
        panic!()
    };
    let targets: Vec<Option<&str>> = r.mounts.iter().map(|m| m.target.as_deref()).collect();
    assert_eq!(
        targets,
        [
            Some("/src"),
            Some("/src"),
            Some("/src/rel"),
            Some("/src/cc"),
            Some("/src"),
            Some("/src"),
            Some("/abs"),
            None
        ]
    );
    assert!(run.mounts_at_workdir.is_empty());
    assert_eq!(run.mount_from[1], Some(Source::Stage { job: JobId(0) }));

    for (src, line) in [
        ("FROM scratch\nRUN --mount=type=bind ls\n", 2),
        (
            "FROM scratch\nWORKDIR /a\nRUN --mount=type=bind,target=.. ls\n",
            3,
        ),
        ("FROM scratch\nRUN --mount=type=cache,target=/ ls\n", 2),
    ] {
        let e = plan_of(src, &opts(&["linux/amd64"])).unwrap_err();
        assert!(
            matches!(&e, PlanError::InvalidMountTarget { target, .. } if target == "/"),
            "{src}: {e}"
        );
        assert_eq!(e.location().map(|l| l.line), Some(line), "{src}");
        assert!(
            e.to_string().starts_with("invalid mount target \"/\""),
            "{e}"
        );
    }

    // An image the plan does not know: its WORKDIR is the executor's to apply...
    let p = plan_of(
        "FROM golang\nRUN --mount=type=bind --mount=type=cache,target=/c --mount=target=rel x\n\
         WORKDIR /app\nRUN --mount=type=bind y\n",
        &opts(&["linux/amd64"]),
    )
    .unwrap();
    let steps = &p.jobs[0].steps;
    assert_eq!(steps[0].mounts_at_workdir, vec![0, 2]);
    assert!(
        steps[2].mounts_at_workdir.is_empty(),
        "...until a WORKDIR /abs"
    );
    let Instruction::Run(r) = &steps[2].instruction else {
        panic!()
    };
    assert_eq!(r.mounts[0].target.as_deref(), Some("/app"));
}

/// `xplat check` no longer calls an inherited ARG undeclared (issue 10).
#[test]
fn inherited_args_are_declared_for_the_lint() {
    let src = "FROM --platform=$BUILDPLATFORM golang AS base\nARG TARGETPLATFORM TARGETARCH\n\
               FROM base AS build\nRUN GOARCH=$TARGETARCH go build\n\
               FROM build AS more\nRUN echo $TARGETPLATFORM\n\
               FROM --platform=$BUILDPLATFORM golang AS other\nRUN echo $TARGETARCH\n\
               FROM scratch\nCOPY --from=more /a /a\nCOPY --from=other /b /b\n";
    let df = parse(src).unwrap();
    let d = lint(&df, &both(), &Catalog::embedded());
    let found: Vec<(usize, &str)> = d.iter().map(|d| (d.location.line, d.rule)).collect();
    assert_eq!(found, [(8, "UndeclaredPlatformArg")]);
}

/// The catalog-name rule (`plan::args`): a `--build-arg` wins, else the Dockerfile's
/// own default, else the catalog value; FROM sees catalog values undeclared.
#[test]
fn catalog_names_declared_by_the_dockerfile() {
    let src = "ARG TARGET_GOOS=linux\nFROM golang:$TARGET_GOARCH AS b\n\
               ARG TARGET_GOOS TARGET_GOARCH TARGET_GOARM=6 TARGET_RUST_TRIPLE\nRUN x\n";
    let o = opts(&["linux/arm/v7"]);
    let p = plan_of(src, &o).unwrap();
    assert_eq!(
        p.jobs[0].base,
        Base::Image {
            reference: "golang:arm".into(),
            pinned: None
        }
    );
    assert_eq!(
        run_args(&p, 0, "linux/arm/v7"),
        kv(&[
            ("TARGET_GOARCH", "arm"),
            ("TARGET_GOARM", "6"),
            ("TARGET_GOOS", "linux"),
            ("TARGET_RUST_TRIPLE", "armv7-unknown-linux-gnueabihf"),
        ])
    );
    let mut o = o;
    o.build_args.insert("TARGET_GOARM".into(), "7".into());
    o.build_args.insert("TARGET_GOARCH".into(), "arm64".into());
    let p = plan_of(src, &o).unwrap();
    assert_eq!(run_args(&p, 0, "linux/arm/v7")["TARGET_GOARM"], "7");
    assert_eq!(
        p.jobs[0].base,
        Base::Image {
            reference: "golang:arm64".into(),
            pinned: None
        },
        "a --build-arg reaches FROM too"
    );
    assert!(p.unused_build_args.is_empty());
}
