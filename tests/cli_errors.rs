//! Snapshot tests of what people read when a command fails: the exact stderr
//! (temporary paths replaced by `$DIR`) and the exit code, through the real binary.
//! Snapshots live in `tests/data/errors/<case>.txt`; `XPLAT_BLESS=1` rewrites them.

use std::path::{Path, PathBuf};

use crate::support::{require, require_engine, xplat, TestDir};

/// One failing command line, run in a fresh folder holding `files`.
struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// Run from this sub-folder of the test folder ("" for the folder itself).
    cwd: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const ONE_STAGE: (&str, &str) = ("Dockerfile", "FROM scratch\nCOPY a /a\n");

fn snapshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/errors")
        .join(format!("{name}.txt"))
}

/// Runs the case and returns the text its snapshot holds.
fn run(case: &Case) -> String {
    let dir = TestDir::new(case.files);
    let cwd = dir.join(case.cwd);
    std::fs::create_dir_all(&cwd).expect("make the working folder");
    let mut cmd = xplat();
    cmd.args(case.args).current_dir(&cwd);
    // Only what the case says: no backtraces, no colour choice, no user config.
    for (k, _) in std::env::vars() {
        if k.starts_with("XPLAT_") || k.starts_with("RUST_") || k == "NO_COLOR" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.join(".config"));
    cmd.envs(case.env.iter().copied());
    let out = cmd.output().expect("run xplat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains('\x1b'),
        "{}: ANSI escape on a non-terminal stderr:\n{stderr}",
        case.name
    );
    let root = dir.path().display().to_string();
    let stderr = stderr.replace(&root, "$DIR");
    format!(
        "$ xplat {}\nexit: {}\n{stderr}",
        case.args.join(" "),
        out.status
            .code()
            .map_or("signal".to_string(), |c| c.to_string())
    )
}

/// Compares with the snapshot, or writes it under `XPLAT_BLESS=1`.
fn check(case: &Case) {
    let got = run(case);
    let path = snapshot_path(case.name);
    if std::env::var_os("XPLAT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with XPLAT_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        got == want,
        "{} differs from its snapshot {}\n--- want\n{want}--- got\n{got}",
        case.name,
        path.display()
    );
}

const CASES: &[Case] = &[
    Case {
        name: "dockerfile_unknown_instruction",
        files: &[("Dockerfile", "FROM scratch\nRUNN echo hi\n")],
        cwd: "",
        args: &["plan", "."],
        env: &[],
    },
    Case {
        name: "dockerfile_unknown_flag",
        files: &[("Dockerfile", "FROM scratch\nCOPY --chmown=1 a /a\n")],
        cwd: "",
        args: &["check", "."],
        env: &[],
    },
    Case {
        name: "dockerfile_missing",
        files: &[],
        cwd: "",
        args: &["plan", "app"],
        env: &[],
    },
    Case {
        name: "dockerfile_missing_with_f",
        files: &[("app/Dockerfile", "FROM scratch\n")],
        cwd: "",
        args: &["plan", "-f", "Dockerfile.release", "app"],
        env: &[],
    },
    Case {
        name: "unknown_platform",
        files: &[ONE_STAGE],
        cwd: "",
        args: &["plan", "--platform", "linux/amd64,linux/arm46", "."],
        env: &[],
    },
    Case {
        name: "target_names_no_stage",
        files: &[(
            "Dockerfile",
            "FROM scratch AS build\nCOPY a /a\nFROM scratch AS final\nCOPY --from=build /a /a\n",
        )],
        cwd: "",
        args: &["plan", "--target", "biuld", "."],
        env: &[],
    },
    Case {
        name: "stage_cycle",
        files: &[(
            "Dockerfile",
            "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY --from=a /x /x\n",
        )],
        cwd: "",
        args: &["plan", "."],
        env: &[],
    },
    Case {
        name: "build_arg_without_name",
        files: &[ONE_STAGE],
        cwd: "",
        args: &["plan", "--build-arg", "=1", "."],
        env: &[],
    },
    Case {
        name: "config_unknown_key",
        files: &[
            ONE_STAGE,
            (
                "xplat.toml",
                "platforms = [\"linux/amd64\"]\ntagz = [\"r.example/app:1\"]\n",
            ),
        ],
        cwd: "",
        args: &["config"],
        env: &[],
    },
    Case {
        name: "config_wrong_type",
        files: &[ONE_STAGE, ("xplat.toml", "platforms = \"linux/amd64\"\n")],
        cwd: "",
        args: &["build", "."],
        env: &[],
    },
    Case {
        name: "init_unknown_template",
        files: &[],
        cwd: "",
        args: &["init", "--template", "haskell", "app"],
        env: &[],
    },
    Case {
        name: "init_refuses_to_overwrite",
        files: &[("app/Dockerfile", "FROM scratch\n")],
        cwd: "",
        args: &["init", "--template", "go", "app"],
        env: &[],
    },
    Case {
        name: "build_engine_unreachable",
        files: &[ONE_STAGE, ("a", "a\n")],
        cwd: "",
        args: &["build", "--no-config", "."],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "build_engine_unreachable_verbose",
        files: &[ONE_STAGE, ("a", "a\n")],
        cwd: "",
        args: &["build", "-v", "--no-config", "."],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "build_invalid_tag",
        files: &[ONE_STAGE, ("a", "a\n")],
        cwd: "",
        args: &[
            "build",
            "--no-config",
            "-t",
            "Registry.example/My App:1.0",
            ".",
        ],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "build_uppercase_repository",
        files: &[ONE_STAGE, ("a", "a\n")],
        cwd: "",
        args: &[
            "build",
            "--no-config",
            "-t",
            "registry.example/MyApp:1.0",
            ".",
        ],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "build_syntax_error_needs_no_engine",
        files: &[("Dockerfile", "FROM scratch\nCOPY a\nRUNN make\n")],
        cwd: "",
        args: &["build", "--no-config", "."],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "build_malformed_build_arg",
        files: &[ONE_STAGE, ("a", "a\n")],
        cwd: "",
        args: &["build", "--no-config", "--build-arg", "=1", "."],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "build_context_missing",
        files: &[],
        cwd: "",
        args: &["build", "--no-config", "src"],
        env: &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    },
    Case {
        name: "clap_unknown_flag",
        files: &[ONE_STAGE],
        cwd: "",
        args: &["plan", "--platfrom", "linux/arm64", "."],
        env: &[],
    },
];

#[test]
fn common_failures_render_as_in_their_snapshots() {
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "case names are unique");
    for case in CASES {
        check(case);
    }
}

#[test]
fn no_rust_type_names_or_os_error_numbers_reach_users() {
    for case in CASES {
        let text = run(case);
        for bad in [
            "Os {",
            "kind:",
            "(os error",
            "Error {",
            "ParseError",
            "Some(",
            "None",
        ] {
            assert!(!text.contains(bad), "{}: {bad:?} in\n{text}", case.name);
        }
    }
}

#[test]
fn copy_source_outside_the_context_is_refused() {
    require_engine!();
    check(&Case {
        name: "build_copy_outside_context",
        files: &[
            ("secret", "s3cret\n"),
            ("ctx/Dockerfile", "FROM scratch\nCOPY ../secret /secret\n"),
        ],
        cwd: "ctx",
        args: &["build", "-q", "--no-config", "."],
        env: &[],
    });
}

/// Runs `xplat plan missing` under a pseudo-terminal (`script`), so that stderr is a tty.
fn on_a_terminal(no_color: Option<&str>) -> Result<String, String> {
    let dir = TestDir::new(&[]);
    let bin = env!("CARGO_BIN_EXE_xplat");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &format!("{bin} plan missing"), "/dev/null"])
        .current_dir(dir.path())
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("no `script` to make a terminal: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let coloured = require!(on_a_terminal(None));
    assert!(
        coloured.contains("\x1b[1;31merror\x1b[0m: no Dockerfile"),
        "{coloured:?}"
    );
    let plain = require!(on_a_terminal(Some("1")));
    assert!(plain.contains("error: no Dockerfile"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
    // An empty NO_COLOR does not count (no-color.org).
    let empty = require!(on_a_terminal(Some("")));
    assert!(empty.contains('\x1b'), "{empty:?}");
}
