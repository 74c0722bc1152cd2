//! The command line: clap arguments (`args`), turned into options, handed to one
//! library call each. Thin by design: every command is a library function the
//! tests call too. Errors become one readable message and an exit code:
//! 0 ok, 1 build or check failure, 2 usage error, 130 interrupted.

pub mod args;
pub mod build;
pub mod buildx;
pub mod engines;
pub mod options;
pub mod output_args;
pub mod preflight;
pub mod project;
pub mod prune;
pub mod render_error;
pub mod session;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

pub use args::Cli;
use args::{Command, Format};

use crate::ops::Session;
use crate::platform::{catalog, render, Catalog, Platform};

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
    // clap prints its own usage errors and exits 2 (help and version exit 0).
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
            stdout.write_all(text.as_bytes())?;
        }
        Command::Init(args) => project::init_command(&args, &mut stdout)?,
        Command::Completions(args) => project::completions_command(&args, &mut stdout),
        Command::Config(args) => {
            let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
            let cwd = std::env::current_dir().context("finding the current folder")?;
            let catalog = load_catalog(&cli.platforms_dir)?;
            project::config_command(&args, &env, &cwd, &catalog, &mut stdout)?
        }
        Command::Inspect(args) => output_args::inspect_command(&args, &mut stdout)?,
        Command::Check(args) => return check(&args, &load_catalog(&cli.platforms_dir)?),
        Command::Plan(args) => return plan(&args, &load_catalog(&cli.platforms_dir)?, &mut stdout),
        Command::Build(args) => {
            let catalog = load_catalog(&cli.platforms_dir)?;
            return build::build_command(
                &args,
                cli.quiet,
                cli.docker_context.as_deref(),
                &catalog,
                &mut stdout,
            );
        }
        Command::Prune(args) => {
            return prune::prune_command(
                &args,
                cli.quiet,
                cli.docker_context.as_deref(),
                &mut stdout,
            )
        }
        Command::Engines(args) => {
            let catalog = load_catalog(&cli.platforms_dir)?;
            return engines::engines_command(
                &args,
                &catalog,
                cli.docker_context.as_deref(),
                &mut stdout,
            );
        }
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

/// How stderr is written by this process: `-v`, and colour unless `NO_COLOR` or not a terminal.
pub fn stderr_style(verbose: bool) -> render_error::Style {
    use std::io::IsTerminal;
    render_error::Style {
        verbose,
        backtrace: verbose,
        color: render_error::color_enabled(
            std::env::var_os("NO_COLOR").as_deref(),
            std::io::stderr().is_terminal(),
        ),
    }
}

/// Prints an error for people and picks the exit code (see [`render_error`]).
fn report(err: &anyhow::Error, verbose: bool) -> ExitCode {
    // `xplat plan | head` closing the pipe early is not a failure.
    if render_error::is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    eprint!("{}", render_error::render(err, stderr_style(verbose)));
    ExitCode::from(render_error::exit_code(err))
}

/// The session of `xplat plan` and `xplat check`: `xplat.toml`, `XPLAT_*` and the
/// planner's flags merged as `xplat build` merges them, the catalog and the Dockerfile.
fn plan_session(
    source: &args::SourceArgs,
    plan: &args::PlanInputArgs,
    catalog: &Catalog,
) -> anyhow::Result<(options::Config, Session)> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().context("finding the current folder")?;
    let config = project::load_plan_config(source, plan, &env, &cwd, catalog)?;
    let session = session::load(&config, catalog)?;
    Ok((config, session))
}

/// `xplat plan`: which work runs where, before anything runs.
fn plan(args: &args::PlanArgs, catalog: &Catalog, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let (_, session) = plan_session(&args.source, &args.plan, catalog)?;
    let plan = session
        .plan()
        .map_err(|e| preflight::plan_failed(&session.dockerfile, &session.text, e))?;
    match args.format {
        Format::Text => out.write_all(crate::plan::render_text(&plan).as_bytes())?,
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The platforms `xplat check` lints for when nobody chose any (not the flags, not
/// `XPLAT_PLATFORMS`, not `xplat.toml`): the two a multi-platform build usually targets.
const CHECK_DEFAULT_TARGETS: [(&str, &str); 2] = [("linux", "amd64"), ("linux", "arm64")];

/// `xplat check`: syntax errors with a caret, then the planner's lints with their fixes.
fn check(args: &args::CheckArgs, catalog: &Catalog) -> anyhow::Result<ExitCode> {
    let (config, session) = plan_session(&args.source, &args.plan, catalog)?;
    let chosen = config.origins.get("platforms") != Some(&options::Origin::Default);
    let targets = if chosen {
        session.options.targets.clone()
    } else {
        CHECK_DEFAULT_TARGETS
            .iter()
            .map(|(os, arch)| Platform::new(os, arch, ""))
            .collect()
    };
    let shown = session.dockerfile.display().to_string();
    // The parser's warnings are among the findings, and `# check=` applies to all of them.
    let diags = session.lint(Some(targets.clone()));
    eprint!(
        "{}",
        crate::plan::render_diagnostics(&shown, &session.text, &diags)
    );
    let failed = crate::plan::fails(&diags, args.strict);
    let targets = Platform::format_list(&targets);
    eprintln!(
        "{shown}: {} for {targets}: {} findings",
        if failed { "failed" } else { "ok" },
        diags.len()
    );
    if failed {
        return Err(Exit::Failed.into());
    }
    Ok(ExitCode::SUCCESS)
}
