//! The typed level: stages, instructions and flags as the planner reads them,
//! and the errors (with locations) that `xplat check` prints.

use std::time::Duration;

use xplat::dockerfile::*;

const MULTI: &str = r#"# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG BASE="debian:bookworm"

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build
ARG TARGETOS TARGETARCH
ENV CGO_ENABLED=0 GOFLAGS="-mod=vendor -trimpath"
ENV LEGACY some value here
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache/go-build,sharing=locked \
    --mount=type=bind,source=.,target=/src,ro \
    --network=none \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .
RUN <<EOF bash -e
echo one
echo $HOME
EOF

FROM ${BASE}
COPY --from=build --chmod=0755 --link /out/app /usr/local/bin/app
COPY --exclude=*.md --exclude=docs --parents a/ b/ /dst/
COPY <<-'CONF' /etc/app.conf
	key = $NOT_EXPANDED
	CONF
ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y.tar.gz /opt/
HEALTHCHECK --interval=1m30s --timeout=3s --retries=5 CMD ["app", "health"]
ONBUILD COPY --from=build . /onbuild
EXPOSE 8080/tcp 9090
VOLUME ["/data"]
USER app:app
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-c"]
ENTRYPOINT ["app"]
CMD serve --port 8080
LABEL org.opencontainers.image.title="app" "quoted key"=v
"#;

#[test]
fn multi_stage_file_becomes_typed_stages() {
    let df = parse(MULTI).unwrap();
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.escape, '\\');
    let metas: Vec<(&str, Option<&str>, usize)> = df
        .meta_args
        .iter()
        .map(|a| {
            (
                a.node.name.as_str(),
                a.node.default.as_deref(),
                a.span.start_line,
            )
        })
        .collect();
    assert_eq!(
        metas,
        vec![
            ("GO_VERSION", Some("1.22"), 2),
            ("BASE", Some("\"debian:bookworm\""), 3)
        ]
    );
    assert_eq!(df.stages.len(), 2);
    let build = &df.stages[0];
    assert_eq!(build.name.as_deref(), Some("build"));
    assert_eq!(build.base, "golang:${GO_VERSION}");
    assert_eq!(build.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(
        build.span,
        Span {
            start_line: 5,
            end_line: 17
        }
    );
    assert!(std::ptr::eq(df.stage("BUILD").unwrap(), build));
    assert!(std::ptr::eq(df.stage("1").unwrap(), &df.stages[1]));

    let ins: Vec<&Instruction> = build.instructions.iter().map(|s| &s.node).collect();
    assert_eq!(
        ins[1],
        &Instruction::Env(vec![
            KeyValue {
                key: "CGO_ENABLED".into(),
                value: "0".into()
            },
            KeyValue {
                key: "GOFLAGS".into(),
                value: "\"-mod=vendor -trimpath\"".into()
            },
        ])
    );
    assert_eq!(
        ins[2],
        &Instruction::Env(vec![KeyValue {
            key: "LEGACY".into(),
            value: "some value here".into()
        }])
    );
    let Instruction::Run(run) = ins[4] else {
        panic!("{:?}", ins[4])
    };
    assert_eq!(
        build.instructions[4].span,
        Span {
            start_line: 10,
            end_line: 13
        }
    );
    assert_eq!(run.network, Some(NetworkMode::None));
    assert_eq!(run.mounts.len(), 2);
    assert_eq!(run.mounts[0].kind, MountType::Cache);
    assert_eq!(run.mounts[0].sharing, Some(CacheSharing::Locked));
    assert_eq!(run.mounts[1].kind, MountType::Bind);
    assert_eq!(run.mounts[1].readonly, Some(true));
    assert_eq!(
        run.command,
        Command::Shell("GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .".into())
    );
    let Instruction::Run(heredoc_run) = ins[5] else {
        panic!()
    };
    assert_eq!(heredoc_run.command, Command::Shell("<<EOF bash -e".into()));
    assert_eq!(heredoc_run.heredocs[0].content, "echo one\necho $HOME\n");
    assert!(heredoc_run.heredocs[0].expand);
    assert_eq!(
        build.instructions[5].span,
        Span {
            start_line: 14,
            end_line: 17
        }
    );

    let fin: Vec<&Instruction> = df.stages[1].instructions.iter().map(|s| &s.node).collect();
    let Instruction::Copy(c) = fin[0] else {
        panic!()
    };
    assert_eq!(
        (
            c.from.as_deref(),
            c.chmod.as_deref(),
            c.link,
            c.sources.as_slice(),
            c.dest.as_str()
        ),
        (
            Some("build"),
            Some("0755"),
            true,
            &["/out/app".to_string()][..],
            "/usr/local/bin/app"
        )
    );
    let Instruction::Copy(c) = fin[1] else {
        panic!()
    };
    assert_eq!(c.exclude, vec!["*.md", "docs"]);
    assert!(c.parents);
    let Instruction::Copy(c) = fin[2] else {
        panic!()
    };
    assert_eq!(c.sources, vec!["<<-'CONF'"]);
    let h = &c.heredocs[0];
    assert_eq!((h.name.as_str(), h.expand, h.chomp), ("CONF", false, true));
    assert_eq!(h.body(), "key = $NOT_EXPANDED\n");
    let Instruction::Add(a) = fin[3] else {
        panic!()
    };
    assert_eq!(
        (a.checksum.as_deref(), a.keep_git_dir, a.unpack),
        (Some("sha256:abc"), true, Some(false))
    );
    assert_eq!(
        fin[4],
        &Instruction::Healthcheck(Healthcheck::Cmd {
            test: Command::Exec(vec!["app".into(), "health".into()]),
            interval: Some(Duration::from_secs(90)),
            timeout: Some(Duration::from_secs(3)),
            start_period: None,
            start_interval: None,
            retries: Some(5),
        })
    );
    let Instruction::Onbuild(o) = fin[5] else {
        panic!()
    };
    assert_eq!(o.original, "COPY --from=build . /onbuild");
    assert!(matches!(&*o.instruction, Instruction::Copy(c) if c.from.as_deref() == Some("build")));
    assert_eq!(
        fin[6],
        &Instruction::Expose(vec!["8080/tcp".into(), "9090".into()])
    );
    assert_eq!(fin[7], &Instruction::Volume(vec!["/data".into()]));
    assert_eq!(fin[8], &Instruction::User("app:app".into()));
    assert_eq!(fin[9], &Instruction::Stopsignal("SIGTERM".into()));
    assert_eq!(
        fin[10],
        &Instruction::Shell(vec!["/bin/sh".into(), "-c".into()])
    );
    assert_eq!(
        fin[11],
        &Instruction::Entrypoint(Command::Exec(vec!["app".into()]))
    );
    assert_eq!(
        fin[12],
        &Instruction::Cmd(Command::Shell("serve --port 8080".into()))
    );
    assert_eq!(
        fin[13],
        &Instruction::Label(vec![
            KeyValue {
                key: "org.opencontainers.image.title".into(),
                value: "\"app\"".into()
            },
            KeyValue {
                key: "\"quoted key\"".into(),
                value: "v".into()
            },
        ])
    );
}

#[test]
fn backtick_escape_and_healthcheck_none() {
    let df = parse("# escape=`\nFROM a\nRUN dir `\n  c:\\\nHEALTHCHECK NONE\n").unwrap();
    assert_eq!(df.directives.escape, '`');
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].node,
        Instruction::Run(Run {
            command: Command::Shell("dir   c:\\".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })
    );
    assert_eq!(ins[1].node, Instruction::Healthcheck(Healthcheck::None));
}

fn err(text: &str) -> ParseError {
    parse(text).expect_err(text)
}

#[test]
fn unknown_instruction_suggests_and_points_at_the_keyword() {
    let e = err("FROM a\n   RUNN make\n");
    assert_eq!(
        e,
        ParseError::UnknownInstruction {
            name: "RUNN".into(),
            suggestion: Some("RUN".into()),
            location: Location { line: 2, column: 4 },
        }
    );
    let text = render_diagnostic("Dockerfile", "FROM a\n   RUNN make\n", &e);
    assert_eq!(
        text,
        "Dockerfile:2:4: unknown instruction: RUNN\n 2 |    RUNN make\n   |    ^\n  = hint: did you mean RUN?\n"
    );
    assert!(matches!(
        err("FROM a\nFOOBARBAZ x"),
        ParseError::UnknownInstruction {
            suggestion: None,
            ..
        }
    ));
}

#[test]
fn unknown_flag_names_the_flag_and_the_allowed_ones() {
    let src = "FROM a\nCOPY --chmod=644 \\\n  --form=build x y\n";
    let e = err(src);
    let ParseError::UnknownFlag {
        ref flag,
        ref allowed,
        ref suggestion,
        location,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(flag, "form");
    assert!(allowed.contains(&"from".to_string()) && allowed.contains(&"parents".to_string()));
    assert_eq!(suggestion.as_deref(), Some("from"));
    assert_eq!(location, Location { line: 3, column: 3 });
    assert!(e.to_string().contains("--from"), "{e}");
    let text = render_diagnostic("Dockerfile", src, &e);
    assert!(
        text.starts_with("Dockerfile:3:3: unknown flag: --form for COPY"),
        "{text}"
    );
    assert!(text.ends_with("  = hint: did you mean --from?\n"), "{text}");
    assert!(matches!(
        err("FROM a\nCMD --doit x"),
        ParseError::UnknownFlag { .. }
    ));
    assert!(matches!(
        err("FROM a\nRUN --mount=type=cache,sharing=sometimes x"),
        ParseError::InvalidFlagValue { .. }
    ));
    // No target= is valid: BuildKit mounts at the WORKDIR (the planner places it).
    assert!(parse("FROM a\nRUN --mount=type=cache x").is_ok());
    assert!(matches!(
        err("FROM a\nRUN --network=wifi x"),
        ParseError::InvalidFlagValue { .. }
    ));
    assert!(matches!(
        err("FROM a\nCOPY --from=a --from=b x y"),
        ParseError::DuplicateFlag { .. }
    ));
    assert!(matches!(
        err("FROM a\nHEALTHCHECK --interval=5 CMD x"),
        ParseError::InvalidFlagValue { .. }
    ));
    assert!(matches!(
        err("FROM a\nCOPY --link=maybe x y"),
        ParseError::InvalidFlagValue { .. }
    ));
}

type Check = fn(&ParseError) -> bool;

#[test]
fn structural_errors_have_locations() {
    let cases: Vec<(&str, Check, usize)> = vec![
        (
            "RUN x\nFROM a",
            |e| matches!(e, ParseError::InstructionBeforeFrom { .. }),
            1,
        ),
        ("ARG A\n", |e| matches!(e, ParseError::NoStage { .. }), 1),
        (
            "FROM a AS x\nFROM b AS X",
            |e| matches!(e, ParseError::DuplicateStageName { .. }),
            2,
        ),
        (
            "FROM a b",
            |e| matches!(e, ParseError::InvalidArguments { .. }),
            1,
        ),
        (
            "FROM a\nCOPY x",
            |e| matches!(e, ParseError::MissingArguments { .. }),
            2,
        ),
        (
            "FROM a\nSHELL sh -c",
            |e| matches!(e, ParseError::InvalidArguments { .. }),
            2,
        ),
        (
            "FROM a\nONBUILD FROM b",
            |e| matches!(e, ParseError::InvalidOnbuildTrigger { .. }),
            2,
        ),
        (
            "FROM a\nONBUILD RUNN b",
            |e| matches!(e, ParseError::UnknownInstruction { .. }),
            2,
        ),
        (
            "FROM a\nENV A",
            |e| matches!(e, ParseError::MissingArguments { .. }),
            2,
        ),
        (
            "FROM a\nLABEL a=b c",
            |e| matches!(e, ParseError::MissingEquals { .. }),
            2,
        ),
        (
            "FROM a\nCMD [\"a\", 1]",
            |e| matches!(e, ParseError::NotStringArray { .. }),
            2,
        ),
        (
            "FROM a\nHEALTHCHECK CONNECT x",
            |e| matches!(e, ParseError::InvalidArguments { .. }),
            2,
        ),
        (
            "\n\n# only a comment\n",
            |e| matches!(e, ParseError::NoInstructions { .. }),
            3,
        ),
        ("", |e| matches!(e, ParseError::NoInstructions { .. }), 1),
        (
            "FROM a\nRUN cat <<EOF\nline\n",
            |e| matches!(e, ParseError::UnterminatedHeredoc { .. }),
            2,
        ),
        (
            "# escape=\\\n# escape=`\nFROM a",
            |e| matches!(e, ParseError::DuplicateDirective { .. }),
            2,
        ),
    ];
    for (src, is_expected, line) in cases {
        let e = err(src);
        assert!(is_expected(&e), "{src:?} gave {e:?}");
        assert_eq!(e.location().line, line, "{src:?} gave {e:?}");
        let text = render_diagnostic("Dockerfile", src, &e);
        assert!(text.starts_with(&format!("Dockerfile:{line}:")), "{text}");
    }
}

#[test]
fn unterminated_json_array_stays_shell_form() {
    let df = parse("FROM a\nCMD [\"echo\", \"hi\"\nRUN [ \"x\"").unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].node,
        Instruction::Cmd(Command::Shell("[\"echo\", \"hi\"".into()))
    );
    assert!(
        matches!(&ins[1].node, Instruction::Run(r) if r.command == Command::Shell("[ \"x\"".into()))
    );
}

#[test]
fn bad_bytes_and_huge_input_fail_cleanly() {
    // Not UTF-8 is not an error: BuildKit reads such files, and the bytes become
    // U+FFFD (see `dockerfile::decode`), in a comment or in a value.
    let df =
        parse_bytes(b"# Maintainer: Jos\xe9\nFROM a\nLABEL who=\"Jos\xe9\"\nRUN \xff\xfe echo\n")
            .unwrap();
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].node,
        Instruction::Label(vec![KeyValue {
            key: "who".into(),
            value: "\"Jos\u{fffd}\"".into()
        }])
    );
    assert_eq!(
        ins[1].node,
        Instruction::Run(Run {
            command: Command::Shell("\u{fffd}\u{fffd} echo".into()),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None,
        })
    );
    // A BOM is fine.
    assert!(parse_bytes(b"\xEF\xBB\xBFFROM a\n").is_ok());

    // A 1 MB line.
    let long = format!("FROM a\nRUN echo {}\n", "x".repeat(1 << 20));
    let e = parse(&long).unwrap_err();
    assert!(
        matches!(e, ParseError::LineTooLong { len, location } if len > 1 << 20 && location.line == 2)
    );
    let text = render_diagnostic("Dockerfile", &long, &e);
    assert!(
        text.len() < 1000,
        "diagnostic must not print the whole line"
    );

    // 10 MB of printable garbage with newlines: rejected with a location, quickly.
    let mut state = 0x2545F4914F6CDD1Du64;
    let garbage: String = (0..10 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 40 {
                0 => '\n',
                1 => ' ',
                n => (b'!' + (n * 7 % 90) as u8) as char,
            }
        })
        .collect();
    let started = std::time::Instant::now();
    let e = parse(&garbage).unwrap_err();
    assert!(e.location().line >= 1);
    println!("10 MB garbage rejected in {:?}: {e}", started.elapsed());
}

#[test]
fn more_rejections() {
    let e = err("ARG A=1\nARG B\n");
    assert_eq!(
        e,
        ParseError::NoStage {
            location: Location::line(2)
        }
    );
    assert!(matches!(
        err("FROM a\nENV =x"),
        ParseError::InvalidArguments { .. }
    ));
    let src = "FROM a\nRUN --mount=type=cache,target=/a \\\n    --mount=type=tmpfs,size=lots x\n";
    let e = err(src);
    assert!(
        matches!(e, ParseError::InvalidFlagValue { ref flag, .. } if flag == "mount"),
        "{e:?}"
    );
    assert_eq!(e.location().line, 3, "points at the second --mount");
}

#[test]
fn warnings_reach_the_typed_level_and_crlf_is_handled() {
    let df = parse("FROM a\r\nRUN echo a \\\r\n\r\n  b\r\nWORKDIR /w\r\n").unwrap();
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.warnings[0].location.line, 4);
    let ins = &df.stages[0].instructions;
    assert!(
        matches!(&ins[0].node, Instruction::Run(r) if r.command == Command::Shell("echo a   b".into()))
    );
    assert_eq!(
        ins[0].span,
        Span {
            start_line: 2,
            end_line: 4
        }
    );
    assert_eq!(ins[1].node, Instruction::Workdir("/w".into()));
}

#[test]
fn onbuild_triggers_may_carry_heredocs() {
    let df = parse("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\nUSER x\n").unwrap();
    let ins = &df.stages[0].instructions;
    let Instruction::Onbuild(o) = &ins[0].node else {
        panic!("{:?}", ins[0])
    };
    assert_eq!(
        ins[0].span,
        Span {
            start_line: 2,
            end_line: 4
        }
    );
    assert!(matches!(&*o.instruction, Instruction::Run(r) if r.heredocs[0].content == "echo hi\n"));
    assert_eq!(o.original, "RUN <<EOF\necho hi\nEOF");
    assert_eq!(ins[1].node, Instruction::User("x".into()));
}

#[test]
fn parse_all_reports_every_instruction_error_in_line_order() {
    let text = "FROM busybox\nRUNN echo\nCOPY --chmown=1 a b\nRUN ok\nFROM x AS a\nFROM y AS a\n";
    let errors = xplat::dockerfile::parse_all(text).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.location().line).collect();
    assert_eq!(lines, [2, 3, 6], "{errors:?}");
    assert!(errors[0].to_string().contains("RUNN"), "{}", errors[0]);
    assert!(errors[1].to_string().contains("--chmown"), "{}", errors[1]);
    assert!(
        errors[2].to_string().contains("duplicate stage name"),
        "{}",
        errors[2]
    );
    // The one-error form agrees with the first of them.
    assert_eq!(
        xplat::dockerfile::parse(text).unwrap_err().to_string(),
        errors[0].to_string()
    );
    // A clean file parses the same either way.
    let clean = "FROM busybox\nRUN echo hi\n";
    assert_eq!(
        xplat::dockerfile::parse_all(clean).unwrap(),
        xplat::dockerfile::parse(clean).unwrap()
    );
}
