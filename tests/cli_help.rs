//! Every command's `--help` renders with an example, and completion scripts
//! generate for every supported shell.

use std::process::Command;

use clap::CommandFactory;
use xplat::cli::Cli;

#[test]
fn every_subcommand_help_renders_with_an_example() {
    let cli = Cli::command();
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(names.len() >= 7, "{names:?}");
    for name in &names {
        let err = Cli::command()
            .try_get_matches_from(["xplat", name.as_str(), "--help"])
            .expect_err("--help stops parsing");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{name}");
        let text = err.render().to_string();
        assert!(
            text.contains(&format!("Usage: xplat {name}")),
            "{name}:\n{text}"
        );
        assert!(
            text.contains("Example"),
            "{name} --help has an example:\n{text}"
        );
    }
    let mut top = Cli::command();
    let text = top.render_long_help().to_string();
    for name in &names {
        assert!(text.contains(name.as_str()), "top-level help lists {name}");
    }
}

#[test]
fn every_flag_has_a_help_line() {
    fn walk(cmd: &clap::Command, path: &str) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            assert!(arg.get_help().is_some(), "{path} {id} has no help");
        }
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "{path} {} has no about",
                sub.get_name()
            );
            walk(sub, &format!("{path} {}", sub.get_name()));
        }
    }
    walk(&Cli::command(), "xplat");
}

#[test]
fn completions_generate_for_every_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef xplat"),
        ("fish", "complete -c xplat"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_xplat"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(marker), "{shell} script has {marker:?}");
        for sub in ["build", "init", "config", "completions"] {
            assert!(text.contains(sub), "{shell} completes {sub}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_xplat"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "unknown shell is a usage error");
}
