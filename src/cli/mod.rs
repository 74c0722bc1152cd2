//! The command line: clap arguments (`args`), turned into options, handed to one
//! library call each. Thin by design: every command is a library function the
//! tests call too. Errors become one readable message and an exit code:
//! 0 ok, 1 build or check failure, 2 usage error, 130 interrupted.

pub mod args;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

pub use args::Cli;
use args::{Command, Format};

use crate::dockerfile::{self, Dockerfile};
use crate::platform::{catalog, render, Catalog};

/// How a command ended, when it did not simply succeed.
#[derive(Debug, thiserror::Error)]
pub enum Exit {
    /// The user asked for something that cannot be done as asked (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The build or check failed; the reason was already printed (exit 1).
    #[error("failed")]
    Failed,
    /// Interrupted by SIGINT or SIGTERM (exit 130).
    #[error("interrupted")]
    Interrupted,
}

/// Parses the process arguments, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose > 0;
    match run(cli) {
        Ok(code) => code,
        Err(err) => report(&err, verbose),
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(&cli.platforms_dir)?;
    match cli.command {
        Command::Platforms(args) => {
            let text = match args.format {
                Format::Text => render::table(&catalog),
                Format::Json => render::json(&catalog),
            };
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check(args) => check(&args),
        other => Err(Exit::Usage(format!("{other:?} is not available yet")).into()),
    }
}

/// The embedded catalog, plus the user's folder and `--platforms-dir` folders (later wins).
fn load_catalog(extra: &[PathBuf]) -> anyhow::Result<Catalog> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut dirs: Vec<PathBuf> = catalog::user_config_dir(xdg.as_deref(), home.as_deref())
        .into_iter()
        .collect();
    dirs.extend(extra.iter().cloned());
    Catalog::load(&dirs).context("loading the platform catalog")
}

/// Prints an error for people and picks the exit code.
fn report(err: &anyhow::Error, verbose: bool) -> ExitCode {
    let code = match err.downcast_ref::<Exit>() {
        Some(Exit::Failed) => return ExitCode::from(1),
        Some(Exit::Interrupted) => {
            eprintln!("xplat: interrupted");
            return ExitCode::from(130);
        }
        Some(Exit::Usage(_)) => 2,
        None => 1,
    };
    if verbose {
        eprintln!("error: {err:?}");
    } else {
        eprintln!("error: {err:#}");
    }
    ExitCode::from(code)
}

/// The Dockerfile named by `-f`, else `CONTEXT/Dockerfile`.
fn dockerfile_path(source: &args::SourceArgs) -> PathBuf {
    source
        .dockerfile
        .clone()
        .unwrap_or_else(|| source.context.join("Dockerfile"))
}

/// Reads and parses the Dockerfile; a syntax error is printed with its location and ends the command.
fn load_dockerfile(source: &args::SourceArgs) -> anyhow::Result<(PathBuf, String, Dockerfile)> {
    let path = dockerfile_path(source);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "reading {}: pass the Dockerfile with -f, or the context folder that holds it",
            path.display()
        )
    })?;
    let shown = path.display().to_string();
    match dockerfile::parse_bytes(&bytes) {
        Ok(df) => Ok((path, String::from_utf8_lossy(&bytes).into_owned(), df)),
        Err(err) => {
            eprint!(
                "{}",
                dockerfile::render_diagnostic(&shown, &String::from_utf8_lossy(&bytes), &err)
            );
            Err(Exit::Failed.into())
        }
    }
}

/// `xplat check`: syntax errors with a caret, then BuildKit's warnings.
fn check(args: &args::CheckArgs) -> anyhow::Result<ExitCode> {
    let (path, _text, df) = load_dockerfile(&args.source)?;
    for warning in &df.warnings {
        eprintln!(
            "{}:{}: warning: {}",
            path.display(),
            warning.location.line,
            warning.short
        );
    }
    let instructions: usize = df.stages.iter().map(|s| s.instructions.len()).sum();
    eprintln!(
        "{}: ok: {} stages, {} instructions, {} warnings",
        path.display(),
        df.stages.len(),
        instructions,
        df.warnings.len()
    );
    if args.strict && !df.warnings.is_empty() {
        return Err(Exit::Failed.into());
    }
    Ok(ExitCode::SUCCESS)
}
