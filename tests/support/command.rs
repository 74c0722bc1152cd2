//! Running the `xplat` binary, `docker` and other programs from tests.

use std::process::{Command, Output};

/// The `xplat` binary built by cargo for this test run.
pub fn xplat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_xplat"))
}

/// A `docker` command (the CLI; tests use it as an independent check on the engine).
pub fn docker<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = Command::new("docker");
    c.args(args);
    c
}

/// The result of a finished command, as text.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for CmdOutput {
    fn from(o: Output) -> Self {
        CmdOutput {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `cmd` to the end: its output when it exits 0, else `Err` naming the
/// command and its trimmed stderr (for helpers that report rather than panic).
pub fn try_run(cmd: &mut Command) -> Result<CmdOutput, String> {
    let out: CmdOutput = cmd
        .output()
        .map_err(|e| format!("could not run {cmd:?}: {e}"))?
        .into();
    if out.code == Some(0) {
        Ok(out)
    } else {
        Err(format!("{cmd:?} failed: {}", out.stderr.trim()))
    }
}

/// Runs `cmd` to the end; panics (showing both outputs) unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> CmdOutput {
    let out: CmdOutput = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"))
        .into();
    assert_eq!(
        out.code,
        Some(0),
        "{cmd:?} failed\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
    out
}

/// `docker ARGS` that must succeed; returns its output.
pub fn docker_ok(args: &[&str]) -> CmdOutput {
    run_ok(&mut docker(args))
}
