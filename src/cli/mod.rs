//! The command line: clap arguments (`args`), turned into options, handed to one
//! library call each. Thin by design: every command is a library function the
//! tests call too. Errors become one readable message and an exit code:
//! 0 ok, 1 build or check failure, 2 usage error, 130 interrupted.

pub mod args;
pub mod options;
pub mod project;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

pub use args::Cli;
use args::{Command, Format};

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
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Platforms(args) => {
            let catalog = load_catalog(&cli.platforms_dir)?;
            let text = match args.format {
                Format::Text => render::table(&catalog),
                Format::Json => render::json(&catalog),
            };
            print!("{text}");
        }
        Command::Init(args) => project::init_command(&args, &mut stdout)?,
        Command::Completions(args) => project::completions_command(&args, &mut stdout),
        Command::Config(args) => {
            let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
            let cwd = std::env::current_dir().context("finding the current folder")?;
            let catalog = load_catalog(&cli.platforms_dir)?;
            project::config_command(&args, &env, &cwd, &catalog, &mut stdout)?
        }
        other => return Err(Exit::Usage(format!("{other:?} is not available yet")).into()),
    }
    Ok(ExitCode::SUCCESS)
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
