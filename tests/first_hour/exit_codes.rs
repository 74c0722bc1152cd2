//! The README's exit-code table, held against the binary: every code of the table, and
//! every case a row lists after its colon, has a command here that must exit with it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::run;
use crate::support::{require, require_busybox_images, require_engine, xplat, Fixtures, TestDir};

/// A command run in a fresh folder holding `files`, and the code it must exit with.
struct Case {
    /// The README's words for it (an item of the row), or "" for the row itself.
    readme: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// Needs a Docker engine.
    engine: bool,
}

const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/engine.sock");
const ONE_STAGE: (&str, &str) = ("Dockerfile", "FROM scratch\nCOPY a /a\n");
const FILE_A: (&str, &str) = ("a", "a\n");

fn cases(code: u8) -> Vec<Case> {
    let c = |readme, files, args, env, engine| Case {
        readme,
        files,
        args,
        env,
        engine,
    };
    match code {
        0 => vec![
            c("success", &[ONE_STAGE], &["plan", "."], &[], false),
            c(
                "success",
                &[],
                &["platforms", "--format", "json"],
                &[],
                false,
            ),
        ],
        1 => vec![
            c(
                "a Dockerfile error",
                &[("Dockerfile", "FROM scratch\nRUNN x\n")],
                &["plan", "."],
                &[],
                false,
            ),
            c(
                "a failing `RUN`",
                &[("Dockerfile", "FROM xplat-test/busybox:amd64\nRUN exit 3\n")],
                &[
                    "build",
                    "--no-config",
                    "--no-cache",
                    "--platform",
                    "linux/amd64",
                    "-o",
                    "out",
                    ".",
                ],
                &[],
                true,
            ),
            c(
                "an unreachable engine or registry",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unreachable engine or registry",
                &[ONE_STAGE, FILE_A],
                &[
                    "build",
                    "--no-config",
                    "--push",
                    "-t",
                    "127.0.0.1:9/app:1",
                    ".",
                ],
                &[NO_ENGINE],
                false,
            ),
            c(
                "`xplat check` findings",
                &[(
                    "Dockerfile",
                    "FROM --platform=linux/amd64 scratch\nCOPY a /a\n",
                )],
                &["check", "--strict", "."],
                &[],
                false,
            ),
        ],
        2 => vec![
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE],
                &["plan", "--platfrom", "x", "."],
                &[],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "-o", "type=foo,dest=x", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--output", "type=local", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--progress", "fancy", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--network", "bridge", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--add-host", "db", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--secret", "id=x,bogus=1", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--push", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &[
                    "build",
                    "--no-config",
                    "--load",
                    "--load-platform",
                    "linux//",
                    ".",
                ],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--ssh", "default", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown flag or a bad value for it",
                &[],
                &["inspect", "Not A/Reference"],
                &[],
                false,
            ),
            c(
                "a missing Dockerfile or context folder",
                &[],
                &["plan", "app"],
                &[],
                false,
            ),
            c(
                "a missing Dockerfile or context folder",
                &[],
                &["build", "--no-config", "src"],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an unknown platform",
                &[ONE_STAGE],
                &["plan", "--platform", "linux/arm46", "."],
                &[],
                false,
            ),
            c(
                "an unknown platform",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "--platform", "linux/arm46", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "`--target` naming no stage",
                &[ONE_STAGE],
                &["plan", "--target", "nope", "."],
                &[],
                false,
            ),
            c(
                "a bad `xplat.toml`",
                &[ONE_STAGE, ("xplat.toml", "tagz = []\n")],
                &["config"],
                &[],
                false,
            ),
            c(
                "a bad `xplat.toml`",
                &[
                    ONE_STAGE,
                    FILE_A,
                    ("xplat.toml", "platforms = \"linux/amd64\"\n"),
                ],
                &["build", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "an invalid `-t` name",
                &[ONE_STAGE, FILE_A],
                &["build", "--no-config", "-t", "Bad Name:1", "."],
                &[NO_ENGINE],
                false,
            ),
            c(
                "`xplat init` refusing to overwrite",
                &[("app/Dockerfile", "FROM scratch\n")],
                &["init", "--template", "go", "app"],
                &[],
                false,
            ),
        ],
        _ => vec![],
    }
}

/// The README's exit-code rows: (code, the items it lists after its first colon).
fn readme_rows() -> Vec<(u8, Vec<String>)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let table = readme
        .split("## Exit codes")
        .nth(1)
        .expect("an Exit codes section")
        .split("\n\n")
        .find(|b| b.trim_start().starts_with('|'))
        .expect("a table");
    table
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(" | ").map(|c| c.trim_matches(['|', ' '])).collect();
            let code: u8 = cells.first()?.parse().ok()?;
            let meaning = cells.get(1..)?.join(" | ");
            let items = match meaning.split_once(": ") {
                Some((_, list)) => list.split(", ").map(String::from).collect(),
                None => Vec::new(),
            };
            Some((code, items))
        })
        .collect()
}

#[test]
fn every_row_of_the_readme_table_has_cases() {
    let rows = readme_rows();
    assert_eq!(
        rows.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        [0, 1, 2, 130],
        "the README's codes"
    );
    for (code, items) in rows.iter().filter(|(c, _)| *c != 130) {
        let cases = cases(*code);
        assert!(!cases.is_empty(), "no case for exit {code}");
        for item in items {
            assert!(
                cases.iter().any(|c| c.readme == item),
                "exit {code}: the README lists {item:?} and no case runs it"
            );
        }
    }
}

fn check_code(code: u8, engine: bool) {
    for case in cases(code).iter().filter(|c| c.engine == engine) {
        let dir = TestDir::new(case.files);
        let mut env: Vec<(&str, String)> =
            case.env.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if engine {
            if let Ok(h) = std::env::var("DOCKER_HOST") {
                env.push(("DOCKER_HOST", h));
            }
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = run(dir.path(), case.args, &env);
        assert_eq!(
            out.code,
            Some(i32::from(code)),
            "xplat {} ({}): stderr:\n{}",
            case.args.join(" "),
            case.readme,
            out.stderr
        );
    }
}

#[test]
fn exit_0_1_and_2_as_the_readme_says() {
    for code in [0, 1, 2] {
        check_code(code, false);
    }
}

#[test]
fn a_failing_run_exits_1() {
    require_busybox_images!();
    check_code(1, true);
}

#[test]
fn a_closed_stdout_is_success() {
    let dir = TestDir::new(&[ONE_STAGE]);
    let bin = env!("CARGO_BIN_EXE_xplat");
    let status = Command::new("bash")
        .args([
            "-c",
            &format!(
                "set -o pipefail; {bin} plan --format json --platform linux/amd64,linux/arm64,linux/arm/v7 . | head -c 1 >/dev/null"
            ),
        ])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// `xplat build` of a long RUN, stopped by `signal` once the RUN runs: exit 130.
fn interrupted_by(signal: &str) {
    let image = Fixtures::get().busybox_image("amd64");
    let dir = TestDir::new(&[(
        "Dockerfile",
        &format!("FROM {image}\nRUN echo sleeping-{signal} && sleep 60\n"),
    )]);
    let mut child = xplat()
        .current_dir(dir.path())
        .args([
            "build",
            "--no-config",
            "--no-cache",
            "--progress",
            "json",
            "--platform",
            "linux/amd64",
            "-o",
            "out",
            ".",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep reading stderr to the end: a closed pipe would fail xplat's last words.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"output\"") && line.contains("sleeping-") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the RUN started within 60 s");
    let started = Instant::now();
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "after SIG{signal}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stopped promptly"
    );
}

#[test]
fn ctrl_c_and_sigterm_exit_130() {
    require_engine!();
    require_busybox_images!();
    let rows = readme_rows();
    assert!(rows.iter().any(|(c, _)| *c == 130));
    interrupted_by("INT");
    interrupted_by("TERM");
}
