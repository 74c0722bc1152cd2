use super::*;
use crate::dockerfile::parse;
use crate::plan::tests::opts;

fn rules(src: &str, targets: &[&str]) -> Vec<(usize, &'static str)> {
    let df = parse(src).unwrap();
    lint(&df, &opts(targets), &Catalog::embedded())
        .iter()
        .map(|d| (d.location.line, d.rule))
        .collect()
}

#[test]
fn lint_table() {
    let both = &["linux/amd64", "linux/arm64"][..];
    /// (what, Dockerfile, expected (line, rule) findings)
    type Case<'a> = (&'a str, &'a str, &'a [(usize, &'a str)]);
    let cases: &[Case] = &[
        (
            "clean cross build",
            "FROM --platform=$BUILDPLATFORM golang AS b\nARG TARGETARCH\nRUN GOARCH=$TARGETARCH go build\nFROM scratch\nCOPY --from=b /app /app\n",
            &[],
        ),
        (
            "emulated certs stage",
            "FROM alpine AS certs\nRUN apk add ca-certificates\nFROM scratch\nCOPY --from=certs /etc/ssl /etc/ssl\n",
            &[(2, "EmulatedStage")],
        ),
        (
            "TARGETARCH used, not declared",
            "FROM --platform=$BUILDPLATFORM golang AS b\nRUN GOARCH=$TARGETARCH go build\nARG TARGETARCH\nRUN echo ${TARGETARCH}\nFROM scratch\nCOPY --from=b /app /app\n",
            &[(2, "UndeclaredPlatformArg")],
        ),
        (
            "catalog ARG used, not declared",
            "FROM --platform=$BUILDPLATFORM gcc AS b\nRUN ${TARGET_GNU_TRIPLE}-gcc x.c\nFROM scratch\nCOPY --from=b /a /a\n",
            &[(2, "UndeclaredPlatformArg")],
        ),
        (
            "constant platform",
            "FROM --platform=linux/amd64 node AS web\nRUN npm ci\nFROM scratch\nCOPY --from=web /d /d\n",
            &[(1, "FromPlatformFlagConstDisallowed")],
        ),
        (
            "constant platform named after it is fine",
            "FROM --platform=linux/amd64 node AS web_amd64\nRUN npm ci\nFROM scratch\nCOPY --from=web_amd64 /d /d\n",
            &[],
        ),
        (
            "redundant $TARGETPLATFORM",
            "FROM --platform=$TARGETPLATFORM scratch\nCOPY a /a\n",
            &[(1, "RedundantTargetPlatform")],
        ),
        (
            "unused stage",
            "FROM alpine AS old\nCOPY a /a\nFROM scratch\nCOPY b /b\n",
            &[(1, "UnusedStage")],
        ),
        (
            "ARG in FROM not declared globally",
            "FROM alpine:${VERSION:-3.20}\nCOPY a /a\n",
            &[(1, "UndefinedArgInFrom")],
        ),
        (
            "global ARG without value is declared",
            "ARG VERSION\nFROM alpine:${VERSION:-3.20}\nCOPY a /a\n",
            &[],
        ),
        (
            "typo in BUILDPLATFORM: warning and plan error",
            "FROM --platform=$BULIDPLATFORM scratch\nCOPY a /a\n",
            &[(1, "PlanError"), (1, "UndefinedArgInFrom")],
        ),
        (
            "final stage RUN",
            "FROM debian\nCOPY a /a\nRUN useradd app\n",
            &[(3, "EmulatedStage")],
        ),
    ];
    for (what, src, want) in cases {
        let mut got = rules(src, both);
        got.sort();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn emulated_message_names_platform_and_line_and_fix() {
    let src = "FROM alpine AS certs\nRUN apk add ca-certificates\nFROM scratch\nCOPY --from=certs /etc/ssl /etc/ssl\n";
    let df = parse(src).unwrap();
    let d = lint(
        &df,
        &opts(&["linux/amd64", "linux/arm64", "linux/arm/v7"]),
        &Catalog::embedded(),
    );
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].message,
        "stage `certs` will be emulated for linux/arm64,linux/arm/v7 because of RUN at line 2"
    );
    assert!(d[0].fix.contains("FROM --platform=$BUILDPLATFORM alpine"));
    let text = render_diagnostics("Dockerfile", src, &d);
    assert_eq!(
        text.lines().take(3).collect::<Vec<_>>(),
        [
            "Dockerfile:2:1: warning: stage `certs` will be emulated for linux/arm64,linux/arm/v7 because of RUN at line 2 [EmulatedStage]",
            " 2 | RUN apk add ca-certificates",
            "   | ^",
        ]
    );
    assert!(text.contains("  = fix: use `FROM --platform=$BUILDPLATFORM alpine` at line 1"));
    assert!(text.ends_with("1 warning, 0 errors\n"));
}

#[test]
fn typo_suggests_the_automatic_name() {
    let df = parse("FROM --platform=$BULIDPLATFORM scratch\nCOPY a /a\n").unwrap();
    let d = lint(&df, &opts(&["linux/amd64"]), &Catalog::embedded());
    let w = d.iter().find(|d| d.rule == "UndefinedArgInFrom").unwrap();
    assert_eq!(
        w.message,
        "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)"
    );
    let e = d.iter().find(|d| d.rule == "PlanError").unwrap();
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(
        e.message,
        "empty platform value from expression $BULIDPLATFORM (did you mean BUILDPLATFORM?)"
    );
}

#[test]
fn target_flag_does_not_make_other_stages_unused() {
    let src = "FROM alpine AS test\nCOPY a /a\nFROM scratch AS release\nCOPY b /b\n";
    let df = parse(src).unwrap();
    let mut o = opts(&["linux/amd64"]);
    o.target_stage = Some("test".into());
    assert!(lint(&df, &o, &Catalog::embedded()).is_empty());
}

#[test]
fn referenced_names_scan() {
    assert_eq!(
        referenced_names("a $X ${Y:-z} $$ ${} $1A_B"),
        ["X", "Y", "1A_B"]
    );
}

#[test]
fn exit_policy() {
    let df = parse("FROM alpine AS old\nCOPY a /a\nFROM scratch\nCOPY b /b\n").unwrap();
    let warn = lint(&df, &opts(&["linux/amd64"]), &Catalog::embedded());
    assert_eq!(warn.len(), 1);
    assert!(!fails(&warn, false));
    assert!(fails(&warn, true));
    let df = parse("FROM a\nCOPY --from=7 / /\n").unwrap();
    let err = lint(&df, &opts(&["linux/amd64"]), &Catalog::embedded());
    assert!(fails(&err, false));
    assert!(!fails(&[], true));
}

#[test]
fn check_directive_skips_rules_and_turns_findings_into_errors() {
    let body = "FROM alpine AS old\nCOPY a /a\nFROM --platform=linux/amd64 node AS web\nRUN npm ci \\\n\n  && true\nFROM scratch\nCOPY --from=web /d /d\nRUN echo $TARGETARCH\n";
    let all = rules(body, &["linux/amd64", "linux/arm64"]);
    assert_eq!(
        all,
        [
            (1, "UnusedStage"),
            (3, "FromPlatformFlagConstDisallowed"),
            (6, "NoEmptyContinuation"),
            (9, "EmulatedStage"),
            (9, "UndeclaredPlatformArg"),
        ]
    );
    // (directive, rules left, all errors?)
    let cases: &[(&str, &[&str], bool)] = &[
        (
            "# check=skip=UnusedStage,NoEmptyContinuation\n",
            &[
                "FromPlatformFlagConstDisallowed",
                "EmulatedStage",
                "UndeclaredPlatformArg",
            ],
            false,
        ),
        // BuildKit's name for our rule works too.
        (
            "# check=skip=UndefinedVar, EmulatedStage\n",
            &[
                "UnusedStage",
                "FromPlatformFlagConstDisallowed",
                "NoEmptyContinuation",
            ],
            false,
        ),
        ("# check=skip=all\n", &[], false),
        ("# check=skip=all;error=true\n", &[], true),
        (
            "#check=error=true\n",
            &[
                "UnusedStage",
                "FromPlatformFlagConstDisallowed",
                "NoEmptyContinuation",
                "EmulatedStage",
                "UndeclaredPlatformArg",
            ],
            true,
        ),
    ];
    for (directive, left, errors) in cases {
        let src = format!("{directive}{body}");
        let df = parse(&src).unwrap();
        let d = lint(
            &df,
            &opts(&["linux/amd64", "linux/arm64"]),
            &Catalog::embedded(),
        );
        let got: Vec<&str> = d.iter().map(|d| d.rule).collect();
        assert_eq!(&got, left, "{directive}");
        assert!(
            d.iter().all(|d| (d.severity == Severity::Error) == *errors),
            "{directive}"
        );
        assert_eq!(fails(&d, false), *errors && !d.is_empty(), "{directive}");
    }
    // A plan that cannot be made is never skipped.
    let df = parse("# check=skip=all\nFROM a\nCOPY --from=7 / /\n").unwrap();
    let d = lint(&df, &opts(&["linux/amd64"]), &Catalog::embedded());
    assert_eq!(d.iter().map(|d| d.rule).collect::<Vec<_>>(), ["PlanError"]);
}

#[test]
fn a_from_that_names_no_stage_but_is_close_to_one_is_an_error() {
    let src = "FROM --platform=$BUILDPLATFORM golang AS build\nRUN go build -o /app\n\
               FROM scratch\nCOPY --from=biuld /app /app\n\
               RUN --mount=from=BIULD,target=/m --mount=from=alpine:3,target=/a \
               --mount=from=golang,target=/g true\n";
    let df = parse(src).unwrap();
    let d = lint(&df, &opts(&["linux/amd64"]), &Catalog::embedded());
    let found: Vec<(usize, &str)> = d.iter().map(|d| (d.location.line, d.rule)).collect();
    assert_eq!(
        found,
        [(1, "UnusedStage"), (4, "UnknownStage"), (5, "UnknownStage")]
    );
    let copy = &d[1];
    assert_eq!(copy.severity, Severity::Error);
    assert_eq!(
        copy.message,
        "no stage is named `biuld`: COPY --from=biuld would pull the image `biuld` (did you mean build?)"
    );
    assert!(
        d[2].message.contains("RUN --mount from=BIULD"),
        "{}",
        d[2].message
    );
    assert!(fails(&d, false));
    // The escape hatch for an image that really has such a name.
    let df = parse(&format!("# check=skip=UnknownStage\n{src}")).unwrap();
    let d = lint(&df, &opts(&["linux/amd64"]), &Catalog::embedded());
    assert!(d.iter().all(|d| d.rule != "UnknownStage"));

    assert_eq!(typo_of("biuld", &["build"]), Some("build"));
    assert_eq!(typo_of("buidler", &["builder", "build"]), Some("builder"));
    assert_eq!(typo_of("builder2", &["builder"]), Some("builder"));
    assert_eq!(typo_of("alpine", &["build"]), None);
    assert_eq!(typo_of("buil:d", &["build"]), None, "a tag: an image");
    assert_eq!(typo_of("b", &["a"]), Some("a"));
    assert_eq!(typo_of("ab", &["cd"]), None);
}

#[test]
fn emulated_advice_never_puts_build_platform_files_into_the_final_image() {
    // `base` is in the final image's FROM chain; `certs` is only copied from.
    let src = "FROM alpine AS base\nRUN apk add tzdata\n\
               FROM alpine AS certs\nRUN apk add ca-certificates\n\
               FROM base\nCOPY --from=certs /etc/ssl /etc/ssl\n";
    let df = parse(src).unwrap();
    let d = lint(
        &df,
        &opts(&["linux/amd64", "linux/arm64"]),
        &Catalog::embedded(),
    );
    let emulated: Vec<&Diagnostic> = d.iter().filter(|d| d.rule == "EmulatedStage").collect();
    assert_eq!(emulated.len(), 2);
    let (chain, copied) = (emulated[0], emulated[1]);
    assert_eq!((chain.location.line, copied.location.line), (2, 4));
    assert!(
        !chain.fix.contains("--platform=$BUILDPLATFORM alpine"),
        "{}",
        chain.fix
    );
    assert!(
        chain.fix.contains("final image's FROM chain"),
        "{}",
        chain.fix
    );
    assert!(
        chain.fix.contains("COPY --from that stage"),
        "{}",
        chain.fix
    );
    assert!(
        chain.fix.contains("engine that runs it natively"),
        "{}",
        chain.fix
    );
    assert!(copied
        .fix
        .starts_with("use `FROM --platform=$BUILDPLATFORM alpine` at line 3"));
    // The final stage itself is in the chain too.
    let df = parse("FROM debian\nCOPY a /a\nRUN useradd app\n").unwrap();
    let d = lint(&df, &opts(&["linux/arm64"]), &Catalog::embedded());
    assert!(
        d[0].fix.contains("final image's FROM chain"),
        "{}",
        d[0].fix
    );
}
