//! How a job executes ([`Mode`]) and why ([`Reason`]). The scheduler asks the
//! mode's capabilities (`needs_binfmt`, `runs_containers`) instead of comparing
//! names.

use serde::Serialize;

use crate::platform::Platform;

/// How a job is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Runs on the engine at its own speed: the run platform is the build
    /// platform, or one the build platform runs natively (amd64 runs 386).
    Native,
    /// A foreign platform and no RUN: composed as OCI layers, nothing executed.
    Assembled,
    /// A foreign platform with a RUN: needs QEMU user emulation (binfmt).
    Emulated,
}

impl Mode {
    /// Whether executing the job needs binfmt/QEMU registered on the engine host.
    pub fn needs_binfmt(self) -> bool {
        self == Mode::Emulated
    }

    /// Whether the job starts containers at all (assembled jobs never do).
    pub fn runs_containers(self) -> bool {
        self != Mode::Assembled
    }

    /// The lowercase name printed by `xplat plan`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Assembled => "assembled",
            Mode::Emulated => "emulated",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job has its mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The run platform is the build platform.
    BuildPlatform,
    /// The build platform runs this platform natively (containerd's `Only` rules).
    CompatiblePlatform,
    /// Foreign platform, but the stage has no RUN.
    NoRun,
    /// Foreign platform and a RUN: the first RUN's line and how many RUNs the job has.
    RunOnForeignPlatform {
        /// Line of the first RUN.
        line: usize,
        /// Number of RUN steps in the job.
        runs: usize,
    },
}

/// The mode of a job running on `run` when the engine is `build`, given the
/// lines of its RUN steps.
pub fn decide(build: &Platform, run: &Platform, run_lines: &[usize]) -> (Mode, Reason) {
    if run == build {
        (Mode::Native, Reason::BuildPlatform)
    } else if build.can_run(run) {
        (Mode::Native, Reason::CompatiblePlatform)
    } else if let Some(&line) = run_lines.first() {
        (
            Mode::Emulated,
            Reason::RunOnForeignPlatform {
                line,
                runs: run_lines.len(),
            },
        )
    } else {
        (Mode::Assembled, Reason::NoRun)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap().normalized()
    }

    #[test]
    fn modes_by_platform_and_runs() {
        let amd = p("linux/amd64");
        let cases: &[(&str, &[usize], Mode, Reason)] = &[
            ("linux/amd64", &[3], Mode::Native, Reason::BuildPlatform),
            ("linux/amd64", &[], Mode::Native, Reason::BuildPlatform),
            ("linux/386", &[4], Mode::Native, Reason::CompatiblePlatform),
            ("linux/arm64", &[], Mode::Assembled, Reason::NoRun),
            (
                "linux/arm64",
                &[5, 9],
                Mode::Emulated,
                Reason::RunOnForeignPlatform { line: 5, runs: 2 },
            ),
            (
                "linux/arm/v7",
                &[2],
                Mode::Emulated,
                Reason::RunOnForeignPlatform { line: 2, runs: 1 },
            ),
        ];
        for (run, lines, mode, reason) in cases {
            assert_eq!(
                decide(&amd, &p(run), lines),
                (*mode, reason.clone()),
                "{run}"
            );
        }
    }

    #[test]
    fn capabilities() {
        assert!(Mode::Emulated.needs_binfmt());
        assert!(!Mode::Native.needs_binfmt());
        assert!(!Mode::Assembled.needs_binfmt());
        assert!(!Mode::Assembled.runs_containers());
        assert!(Mode::Native.runs_containers());
        assert!(Mode::Emulated.runs_containers());
    }
}
