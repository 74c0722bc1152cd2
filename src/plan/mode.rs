//! How a job executes ([`Mode`]) and why ([`Reason`]). The scheduler asks the
//! mode's capabilities (`needs_binfmt`, `runs_containers`) instead of comparing
//! names.

use serde::Serialize;

use super::{BuildPlan, Job, JobId};
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
    /// The build platform, or another engine's platform, runs this platform natively
    /// (containerd's `Only` rules, or the platforms an engine is declared to run).
    CompatiblePlatform,
    /// The stage has no RUN and nothing the engine runs reads it: composed as OCI layers.
    NoRun,
    /// No RUN, but an engine job is built `FROM` it or reads its files, so it is made in
    /// the engine too (nothing of it executes: no emulation).
    EngineConsumer {
        /// The first engine job that needs it.
        consumer: usize,
    },
    /// No RUN, but a step the assembler cannot do.
    NotAssemblable {
        /// Line of the step.
        line: usize,
        /// What it does.
        what: String,
    },
    /// Everything runs in the engine (`--target STAGE -t NAME`).
    AllInEngine,
    /// Foreign platform and a RUN: the first RUN's line and how many RUNs the job has.
    RunOnForeignPlatform {
        /// Line of the first RUN.
        line: usize,
        /// Number of RUN steps in the job.
        runs: usize,
    },
}

/// The mode of a job running on `run` when the build platform is `build` and the
/// engines run `natives` natively (just `build` with one engine), given the lines of its
/// RUN steps. A job without RUN is assembled here; [`finalize`] moves it into the engine
/// when an engine job needs it.
pub fn decide(
    build: &Platform,
    natives: &[Platform],
    run: &Platform,
    run_lines: &[usize],
) -> (Mode, Reason) {
    if run_lines.is_empty() {
        (Mode::Assembled, Reason::NoRun)
    } else if run == build {
        (Mode::Native, Reason::BuildPlatform)
    } else if build.can_run(run) || natives.iter().any(|n| n.can_run(run)) {
        (Mode::Native, Reason::CompatiblePlatform)
    } else {
        (
            Mode::Emulated,
            Reason::RunOnForeignPlatform {
                line: run_lines[0],
                runs: run_lines.len(),
            },
        )
    }
}

/// What the assembler would refuse in a RUN-free job (it says what it can do:
/// [`crate::assemble::refusal`]): `(line, what)`.
pub fn not_assemblable(job: &Job) -> Option<(usize, String)> {
    job.steps
        .iter()
        .find_map(|s| crate::assemble::refusal(&s.instruction).map(|r| (s.line, r.to_string())))
}

/// Decides the modes once for the whole plan: a RUN-free job is assembled unless the
/// assembler cannot do one of its steps, an engine job consumes it (`FROM`, `COPY
/// --from`, `--mount from=`) or everything is to run in the engine. Jobs are walked from
/// the last, so every consumer is decided before what it consumes.
pub fn finalize(plan: &mut BuildPlan, all_in_engine: bool) {
    let n = plan.jobs.len();
    for i in (0..n).rev() {
        if plan.jobs[i].mode != Mode::Assembled {
            continue;
        }
        let consumer = (i + 1..n).find(|k| {
            let k = &plan.jobs[*k];
            k.mode != Mode::Assembled && k.deps.contains(&JobId(i))
        });
        let reason = if all_in_engine {
            Some(Reason::AllInEngine)
        } else if let Some(c) = consumer {
            Some(Reason::EngineConsumer { consumer: c })
        } else {
            not_assemblable(&plan.jobs[i]).map(|(line, what)| Reason::NotAssemblable { line, what })
        };
        if let Some(reason) = reason {
            plan.jobs[i].mode = Mode::Native;
            plan.jobs[i].reason = reason;
        }
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
            ("linux/amd64", &[], Mode::Assembled, Reason::NoRun),
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
                decide(&amd, std::slice::from_ref(&amd), &p(run), lines),
                (*mode, reason.clone()),
                "{run}"
            );
        }
    }

    #[test]
    fn an_engine_that_runs_a_platform_natively_makes_it_native() {
        let amd = p("linux/amd64");
        let natives = [amd.clone(), p("linux/arm64")];
        assert_eq!(
            decide(&amd, &natives, &p("linux/arm64"), &[3]),
            (Mode::Native, Reason::CompatiblePlatform)
        );
        // arm64 hosts run arm/v7 natively too; riscv64 no engine runs.
        assert_eq!(
            decide(&amd, &natives, &p("linux/arm/v7"), &[3]).0,
            Mode::Native
        );
        assert_eq!(
            decide(&amd, &natives, &p("linux/riscv64"), &[3]).0,
            Mode::Emulated
        );
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
