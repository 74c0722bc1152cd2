//! Raw command-line arguments: only what the user typed, no validation and no
//! defaults from `xplat.toml` (those are merged in `options.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Build one Dockerfile for many platforms at once, natively, and publish one
/// multi-platform image.
#[derive(Debug, Parser)]
#[command(
    name = "xplat",
    version,
    about,
    after_help = "Example:\n  xplat build --platform linux/amd64,linux/arm64 -t registry.example/app:1.0 --push ."
)]
pub struct Cli {
    /// Say more: every step, and error chains in full.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Say less: only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The docker context whose engine to use (as `docker --context`; wins over DOCKER_HOST).
    #[arg(
        long = "context",
        id = "docker_context",
        global = true,
        value_name = "NAME"
    )]
    pub docker_context: Option<String>,
    /// Extra folder of platform definitions (`*.toml`) that add to or override the catalog.
    #[arg(long, global = true, value_name = "DIR")]
    pub platforms_dir: Vec<PathBuf>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// xplat's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the Dockerfile for every target platform and write, push or load the result.
    #[command(after_help = "Examples:\n  \
        xplat build --platform linux/amd64,linux/arm64 -t registry.example/app:1.0 --push .\n  \
        xplat build --platform linux/amd64,linux/arm64 --target build -t app .")]
    Build(BuildArgs),
    /// Print which work runs where, before anything runs (no engine needed).
    #[command(
        after_help = "Example:\n  xplat plan --platform linux/amd64,linux/arm64,linux/arm/v7 ."
    )]
    Plan(PlanArgs),
    /// Check a Dockerfile: syntax errors, and what would be emulated and how to avoid it.
    #[command(
        after_help = "Example:\n  xplat check --platform linux/amd64,linux/arm64 -f Dockerfile ."
    )]
    Check(CheckArgs),
    /// List the platforms xplat knows and what a cross build for each needs.
    #[command(after_help = "Example:\n  xplat platforms --format json")]
    Platforms(PlatformsArgs),
    /// Write a starter Dockerfile, .dockerignore and xplat.toml for a project.
    #[command(after_help = "Examples:\n  \
        xplat init                     # detect the language from the files here\n  \
        xplat init --template go app/  # write the Go template into app/\n  \
        xplat init --list")]
    Init(InitArgs),
    /// Print the effective configuration: xplat.toml, XPLAT_* variables and flags merged.
    #[command(after_help = "Example:\n  xplat config --set version=1.2.3 --platform linux/arm64")]
    Config(ConfigArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        xplat completions bash > /etc/bash_completion.d/xplat\n  \
        xplat completions zsh > \"${fpath[1]}/_xplat\"\n  \
        xplat completions fish > ~/.config/fish/completions/xplat.fish")]
    Completions(CompletionsArgs),
    /// Show an image or index from a registry or an OCI layout: platforms, digests, sizes, config.
    #[command(after_help = "Examples:\n  \
        xplat inspect registry.example/app:1.0\n  \
        xplat inspect oci:xplat-out/app\n  \
        xplat inspect --raw registry.example/app:1.0")]
    Inspect(super::output_args::InspectArgs),
    /// List the engines builds run on: reachable or not, API version, native and emulated
    /// platforms, storage driver, CPUs and memory.
    #[command(after_help = "Examples:\n  \
        xplat engines\n  \
        xplat engines --engine arm=tcp://arm-builder:2376,platforms=linux/arm64,tls=certs --format json")]
    Engines(EnginesArgs),
    /// Remove xplat's step-cache images and cache volumes (results tagged with -t stay).
    #[command(after_help = "Examples:\n  \
        xplat prune --dry-run\n  \
        xplat prune --project --older-than 7d")]
    Prune(PruneArgs),
}

/// `xplat prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only what was made more than DURATION ago (e.g. 90m, 24h, 7d, 1h30m).
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Only what builds of the context DIR made (default DIR: the current folder).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub project: Option<PathBuf>,
    /// docker's prune filters: until=DURATION, label=KEY[=VALUE] (repeatable).
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `xplat engines`.
#[derive(Debug, Clone, Args)]
pub struct EnginesArgs {
    /// An engine, NAME=HOST[,platforms=P,…][,tls=DIR] (repeatable; adds to or replaces
    /// xplat.toml's [engines]).
    #[arg(long = "engine", value_name = "NAME=HOST")]
    pub engines: Vec<String>,
    /// xplat.toml.
    #[command(flatten)]
    pub config: ConfigFileArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Output format of a listing command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// One JSON document, for programs.
    Json,
}

/// What every command that reads a Dockerfile takes.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// The build context folder (default: xplat.toml's `context`, else `.`).
    #[arg(value_name = "CONTEXT")]
    pub context: Option<PathBuf>,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub dockerfile: Option<PathBuf>,
}

/// What the planner needs besides the Dockerfile.
#[derive(Debug, Clone, Args)]
pub struct PlanInputArgs {
    /// Target platforms, comma-separated (e.g. linux/amd64,linux/arm64).
    #[arg(long, value_delimiter = ',', value_name = "PLATFORMS")]
    pub platform: Vec<String>,
    /// Build only up to this stage.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// A build argument, NAME=VALUE (repeatable).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// The platform build stages run on (default: the engine's, or the host's when planning).
    #[arg(long, value_name = "PLATFORM")]
    pub build_platform: Option<String>,
    /// An engine to build on, NAME=HOST[,platforms=P,…][,tls=DIR] (repeatable; adds to or
    /// replaces xplat.toml's [engines]).
    #[arg(long = "engine", value_name = "NAME=HOST")]
    pub engines: Vec<String>,
}

/// `xplat build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Where the Dockerfile and context are.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Targets, stage and build arguments.
    #[command(flatten)]
    pub plan: PlanInputArgs,
    /// Image name and tag (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME:TAG")]
    pub tags: Vec<String>,
    /// Where the result goes: --push, --output, --load, --metadata-file, --index-format.
    #[command(flatten)]
    pub output: super::output_args::OutputArgs,
    /// Do not use the step cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Export the build's cache: type=local,dest=DIR or type=registry,ref=REF (mode=min;
    /// ignore-error=false to fail the build when the export fails).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Option<String>,
    /// Take cache entries from type=local,src=DIR or type=registry,ref=REF (repeatable;
    /// a source that cannot be read is a warning).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// How many jobs run at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The id put on every container and committed step of this build as the label
    /// `xplat.build` (default: made from the time and the process id). For scripts that
    /// clean up after themselves (the benchmarks).
    #[arg(long, value_name = "ID", hide = true)]
    pub build_id: Option<String>,
    /// How progress is shown (auto: tty on a terminal, plain otherwise).
    #[arg(long, value_enum, value_name = "MODE")]
    pub progress: Option<ProgressMode>,
    /// A secret for `RUN --mount=type=secret`: id=ID,src=FILE or id=ID,env=VARIABLE (repeatable).
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// When an engine stops answering mid-build: run its jobs again on another engine
    /// that can run their platform (emulated if none runs it natively), or fail.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = EngineLoss::Rerun)]
    pub on_engine_loss: EngineLoss,
    /// Resolve every base image again instead of using the engine's copy.
    #[arg(long)]
    pub pull: bool,
    /// The network of RUN containers.
    #[arg(long, value_enum, value_name = "MODE")]
    pub network: Option<super::buildx::NetworkArg>,
    /// An /etc/hosts entry for RUN containers, NAME:IP (repeatable; IP may be host-gateway).
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_hosts: Vec<String>,
    /// Run this stage's steps without the step cache (repeatable, or comma-separated).
    #[arg(long = "no-cache-filter", value_delimiter = ',', value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,
    /// buildx flags xplat refuses with the reason.
    #[command(flatten)]
    pub buildx: super::buildx::UnsupportedBuildxArgs,
    /// xplat.toml, variables, labels and annotations.
    #[command(flatten)]
    pub config: ConfigFileArgs,
}

/// The settings that complete or override `xplat.toml`.
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFileArgs {
    /// The config file (default: ./xplat.toml when it exists).
    #[arg(long = "config", value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Ignore ./xplat.toml.
    #[arg(long, conflicts_with = "config_file")]
    pub no_config: bool,
    /// A value for `{NAME}` placeholders in tags, labels and annotations (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// An image label, KEY=VALUE (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// A manifest and index annotation, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
}

/// `xplat init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// The folder to write into (created if missing).
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// The template (default: detected from DIR's files; see --list).
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,
    /// List the templates and exit.
    #[arg(long, conflicts_with_all = ["template", "force"])]
    pub list: bool,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// `xplat config`.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// The same flags `xplat build` takes.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `xplat completions`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `--on-engine-loss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineLoss {
    /// Run the lost engine's jobs again on another engine.
    Rerun,
    /// Fail the build, naming the engine.
    Fail,
}

/// How build progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// tty on a terminal, plain otherwise (the default).
    Auto,
    /// Nothing but errors and the result.
    Quiet,
    /// Live bars, one line per running job.
    Tty,
    /// One line per step, RUN output prefixed by job.
    Plain,
    /// One JSON event per line.
    Json,
}

/// `xplat plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Where the Dockerfile and context are.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Targets, stage and build arguments.
    #[command(flatten)]
    pub plan: PlanInputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `xplat check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// Where the Dockerfile and context are.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Targets, stage and build arguments.
    #[command(flatten)]
    pub plan: PlanInputArgs,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
}

/// `xplat platforms`.
#[derive(Debug, Clone, Args)]
pub struct PlatformsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn platform_lists_split_on_commas() {
        let cli = Cli::try_parse_from([
            "xplat",
            "plan",
            "--platform",
            "linux/amd64,linux/arm64",
            "--build-arg",
            "A=1",
            "ctx",
        ])
        .unwrap();
        let Command::Plan(plan) = cli.command else {
            panic!("expected plan")
        };
        assert_eq!(plan.plan.platform, ["linux/amd64", "linux/arm64"]);
        assert_eq!(plan.plan.build_args, ["A=1"]);
        assert_eq!(plan.source.context, Some(PathBuf::from("ctx")));
    }

    #[test]
    fn build_takes_repeated_tags() {
        let cli = Cli::try_parse_from(["xplat", "build", "-t", "a:1", "-t", "b:2", "--no-cache"])
            .unwrap();
        let Command::Build(build) = cli.command else {
            panic!("expected build")
        };
        assert_eq!(build.tags, ["a:1", "b:2"]);
        assert!(build.no_cache);
    }
}
