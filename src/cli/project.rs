//! The project commands: `xplat init`, `xplat config` and `xplat completions`,
//! plus [`load_config`], which every command that builds uses to turn flags,
//! `XPLAT_*` variables and `xplat.toml` into one [`Config`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::CommandFactory;

use super::args::{
    BuildArgs, Cli, CompletionsArgs, ConfigArgs, Format, InitArgs, PlanInputArgs, SourceArgs,
};
use super::options::{self, Config, ConfigError, ConfigFile, Flags, GitFacts, Sources};
use super::render_error::Advice;
use super::Exit;
use crate::init::{self, InitError};
use crate::platform::{Catalog, Platform};

/// The config file's default name, looked up in the current folder.
pub const CONFIG_FILE: &str = "xplat.toml";

/// `xplat init`: lists templates, or writes one and says what it wrote.
pub fn init_command(args: &InitArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if args.list {
        out.write_all(init::render_list().as_bytes())?;
        return Ok(());
    }
    let outcome =
        init::init(&args.dir, args.template.as_deref(), args.force).map_err(|e| match e {
            InitError::Io { .. } => anyhow::Error::new(e),
            other => Exit::Usage(other.to_string()).into(),
        })?;
    if let Some(d) = &outcome.detected {
        writeln!(
            out,
            "found {}: using the {} template",
            d.because_of, d.template
        )?;
    }
    for path in &outcome.written {
        writeln!(out, "wrote {}", path.display())?;
    }
    writeln!(
        out,
        "next: xplat check {}   (then: xplat build --set version=0.1.0 {})",
        args.dir.display(),
        args.dir.display()
    )?;
    Ok(())
}

/// `xplat config`: prints the effective configuration.
pub fn config_command(
    args: &ConfigArgs,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    catalog: &Catalog,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let config = load_config_for_context(&args.build, env, cwd, catalog)?;
    let text = match args.format {
        Format::Text => options::render::toml(&config),
        Format::Json => options::render::json(&config),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `xplat completions SHELL`: the completion script on `out`.
pub fn completions_command(args: &CompletionsArgs, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "xplat", out);
}

/// Reads `xplat.toml` (from `--config`, else `cwd/xplat.toml` when present,
/// unless `--no-config`) and merges it with `env` and the flags. A bad file
/// or value is a usage error (exit 2) whose message points at the line.
pub fn load_config(
    build: &BuildArgs,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    git: &GitFacts,
    catalog: &Catalog,
) -> anyhow::Result<Config> {
    load_with(&build.config, &flags_of(build), env, cwd, git, catalog)
}

/// [`load_config`] with the git facts of the build context's checkout, as buildx reads
/// them: `{git_sha}` and the `org.opencontainers.image.{revision,source,created}`
/// annotations describe the source being built, not the folder xplat runs from (a context
/// outside any checkout gets none). The folder's checkout is read first, since the context
/// may come from `xplat.toml`; when the context's differs, the config is read again with it.
pub fn load_config_for_context(
    build: &BuildArgs,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    catalog: &Catalog,
) -> anyhow::Result<Config> {
    let here = options::git::probe(cwd);
    let config = load_config(build, env, cwd, &here, catalog)?;
    let there = options::git::probe(&cwd.join(&config.context));
    if there == here {
        return Ok(config);
    }
    load_config(build, env, cwd, &there, catalog)
}

/// [`load_config`] for the commands that take only the planner's flags (`xplat plan`,
/// `xplat check`): the same `xplat.toml` (in `cwd`), `XPLAT_*` variables and flags, so they
/// plan exactly what `xplat build` with those flags would.
pub fn load_plan_config(
    source: &SourceArgs,
    plan: &PlanInputArgs,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    catalog: &Catalog,
) -> anyhow::Result<Config> {
    let flags = Flags {
        platforms: plan.platform.clone(),
        dockerfile: source.dockerfile.clone(),
        context: source.context.clone(),
        target: plan.target.clone(),
        build_platform: plan.build_platform.clone(),
        build_args: plan.build_args.clone(),
        engines: plan.engines.clone(),
        ..Flags::default()
    };
    let git = GitFacts::default();
    load_with(
        &super::args::ConfigFileArgs::default(),
        &flags,
        env,
        cwd,
        &git,
        catalog,
    )
}

/// The engines of `xplat.toml` (per `config`) and `--engine` flags, for the commands that
/// take only those (`xplat engines`, `xplat plan`).
pub fn load_engines(
    config: &super::args::ConfigFileArgs,
    engine_flags: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    catalog: &Catalog,
) -> anyhow::Result<Vec<options::engines::EngineSetting>> {
    let flags = Flags {
        engines: engine_flags.to_vec(),
        ..Flags::default()
    };
    Ok(load_with(config, &flags, env, cwd, &GitFacts::default(), catalog)?.engines)
}

fn load_with(
    config: &super::args::ConfigFileArgs,
    flags: &Flags,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    git: &GitFacts,
    catalog: &Catalog,
) -> anyhow::Result<Config> {
    let path: Option<PathBuf> = match (&config.config_file, config.no_config) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => None,
        (None, false) => {
            let default = cwd.join(CONFIG_FILE);
            default.is_file().then_some(default)
        }
    };
    let text = match &path {
        Some(p) => {
            Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => None,
    };
    let shown = path
        .as_ref()
        .map(|p| p.strip_prefix(cwd).unwrap_or(p).display().to_string());
    let dir = path
        .as_ref()
        .and_then(|p| p.parent())
        .map(|d| d.strip_prefix(cwd).unwrap_or(d).to_path_buf())
        .unwrap_or_default();
    let file = match (&text, &shown) {
        (Some(text), Some(name)) => Some(ConfigFile {
            name,
            dir: &dir,
            text,
        }),
        _ => None,
    };
    let src = Sources {
        file,
        env,
        flags,
        git,
    };
    options::resolve(&src, catalog, &Platform::host()).map_err(|e| match e {
        ConfigError::NamelessBuildArg { .. } => anyhow::Error::new(Advice::new(
            e.to_string(),
            "write --build-arg NAME=VALUE, or --build-arg NAME to take the value from the environment",
        ))
        .context(Exit::Usage("--build-arg".into())),
        e => Exit::Usage(e.to_string()).into(),
    })
}

/// The config-relevant part of `xplat build`'s flags.
pub fn flags_of(build: &BuildArgs) -> Flags {
    Flags {
        platforms: build.plan.platform.clone(),
        tags: build.tags.clone(),
        dockerfile: build.source.dockerfile.clone(),
        context: build.source.context.clone(),
        target: build.plan.target.clone(),
        build_platform: build.plan.build_platform.clone(),
        build_args: build.plan.build_args.clone(),
        labels: build.config.labels.clone(),
        annotations: build.config.annotations.clone(),
        set: build.config.set.clone(),
        push: false,
        no_cache: build.no_cache,
        engines: build.plan.engines.clone(),
    }
}
