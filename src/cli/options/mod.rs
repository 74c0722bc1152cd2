//! `xplat.toml`, `XPLAT_*` environment variables and flags, merged into one
//! effective [`Config`]: file < environment < flags, key by key.
//!
//! Pure: the caller reads the file, the environment and git ([`git::probe`])
//! and passes them in as values; nothing here looks at the process.
//!
//! | setting | `xplat.toml` key | environment | flag |
//! |---|---|---|---|
//! | target platforms | `platforms` | `XPLAT_PLATFORMS` (comma list) | `--platform` |
//! | tags | `tags` | `XPLAT_TAGS` (comma list) | `-t/--tag` |
//! | Dockerfile | `dockerfile` | `XPLAT_DOCKERFILE` | `-f/--file` |
//! | context | `context` | `XPLAT_CONTEXT` | `CONTEXT` |
//! | stage | `target` | `XPLAT_TARGET` | `--target` |
//! | build platform | `build_platform` | `XPLAT_BUILD_PLATFORM` | `--build-platform` |
//! | build args | `[build_args]` | | `--build-arg` |
//! | labels, annotations | `[labels]`, `[annotations]` | | `--label`, `--annotation` |
//! | `{var}` values | `[vars]` | `XPLAT_VAR_<NAME>`, `XPLAT_VERSION` | `--set NAME=VALUE` |
//! | push | `[output] push` | `XPLAT_PUSH` | `--push` |
//! | no step cache | `[cache] disabled` | `XPLAT_NO_CACHE` | `--no-cache` |
//! | engines | `[engines.NAME]` | | `--engine NAME=HOST[,platforms=…]` |
//!
//! Lists replace (flags' platforms replace the file's, they are not added);
//! tables merge key by key. Paths in the file are relative to its folder.
//! `{var}` placeholders in tags, labels and annotations take `[vars]`, then
//! `git_sha`/`git_short_sha` from git. Other `XPLAT_*` variables are ignored.

pub mod engines;
pub mod file;
pub mod git;
pub mod render;
pub mod subst;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::platform::{Catalog, Platform};

pub use file::{CacheConfig, FileConfig, OutputConfig};
pub use git::GitFacts;

use subst::SubstError;

/// Why the configuration could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("reading {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A problem at a place in `xplat.toml`: bad syntax, unknown key, bad value.
    #[error("{file}:{line}:{column}: {message}\n{snippet}")]
    InFile {
        /// The file as the user knows it.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and, where it helps, what to write instead.
        message: String,
        /// The line with a caret under the problem.
        snippet: String,
    },
    /// A flag's value is unusable.
    #[error("{flag} {value:?}: {message}")]
    BadFlag {
        /// The flag, e.g. `--platform`.
        flag: &'static str,
        /// What was given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// `--build-arg =VALUE`: a value without a name.
    #[error("{value:?} has no name")]
    NamelessBuildArg {
        /// What was given.
        value: String,
    },
    /// An `XPLAT_*` environment variable's value is unusable.
    #[error("environment variable {name}={value:?}: {message}")]
    BadEnv {
        /// The variable's name.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
}

/// This module's result type.
pub type Result<T> = std::result::Result<T, ConfigError>;

/// What the user typed on the command line, for the settings a config file can hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--platform` (already split on commas).
    pub platforms: Vec<String>,
    /// `-t/--tag`.
    pub tags: Vec<String>,
    /// `-f/--file`.
    pub dockerfile: Option<PathBuf>,
    /// The `CONTEXT` argument.
    pub context: Option<PathBuf>,
    /// `--target`.
    pub target: Option<String>,
    /// `--build-platform`.
    pub build_platform: Option<String>,
    /// `--build-arg NAME=VALUE` (or `NAME`, taking the value from the environment).
    pub build_args: Vec<String>,
    /// `--label KEY=VALUE`.
    pub labels: Vec<String>,
    /// `--annotation KEY=VALUE`.
    pub annotations: Vec<String>,
    /// `--set NAME=VALUE`.
    pub set: Vec<String>,
    /// `--push`.
    pub push: bool,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--engine NAME=HOST[,platforms=…]` (repeatable).
    pub engines: Vec<String>,
}

/// The config file: what the user calls it, its folder, and its text.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFile<'a> {
    /// Shown in errors (`xplat.toml`).
    pub name: &'a str,
    /// Relative paths in the file are joined to this folder.
    pub dir: &'a Path,
    /// The file's contents.
    pub text: &'a str,
}

/// Everything the effective configuration is made from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// `xplat.toml`, when there is one.
    pub file: Option<ConfigFile<'a>>,
    /// The process environment (or a test's map).
    pub env: &'a BTreeMap<String, String>,
    /// The command line.
    pub flags: &'a Flags,
    /// Facts about the git checkout.
    pub git: &'a GitFacts,
}

/// Where a setting's value came from; `xplat config` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Nobody set it.
    Default,
    /// `xplat.toml`.
    File,
    /// An `XPLAT_*` variable.
    Env,
    /// A command-line flag.
    Flag,
}

/// The merged, validated configuration a build uses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Target platforms, in the user's order (canonical catalog names).
    #[serde(serialize_with = "platform_names")]
    pub platforms: Vec<Platform>,
    /// The platform build stages run on, when the user chose one.
    #[serde(serialize_with = "optional_platform_name")]
    pub build_platform: Option<Platform>,
    /// Tags, with `{var}` substituted.
    pub tags: Vec<String>,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// The build context.
    pub context: PathBuf,
    /// Stage to stop at.
    pub target: Option<String>,
    /// Build arguments.
    pub build_args: BTreeMap<String, String>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest and index annotations (git's OCI set, then the user's).
    pub annotations: BTreeMap<String, String>,
    /// `{var}` values in effect.
    pub vars: BTreeMap<String, String>,
    /// Where results go.
    pub output: OutputConfig,
    /// Step cache.
    pub cache: CacheConfig,
    /// The engines to build on, the default one first (empty: the engine the docker CLI
    /// would use). Serialized as `[engines.NAME]` tables, as xplat.toml writes them.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "engines::as_tables"
    )]
    pub engines: Vec<engines::EngineSetting>,
    /// Where each top-level setting came from.
    pub origins: BTreeMap<&'static str, Origin>,
}

fn platform_names<S: serde::Serializer>(
    platforms: &[Platform],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(platforms.iter().map(Platform::format))
}

fn optional_platform_name<S: serde::Serializer>(
    platform: &Option<Platform>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match platform {
        Some(p) => s.serialize_some(&p.format()),
        None => s.serialize_none(),
    }
}

/// Merges file < environment < flags into a [`Config`]. `host` is the platform
/// used when nobody names one, and for one-word platform names.
pub fn resolve(src: &Sources, catalog: &Catalog, host: &Platform) -> Result<Config> {
    let parsed = match &src.file {
        Some(f) => file::parse(f.name, f.text)?,
        None => FileConfig::default(),
    };
    let at = |span: std::ops::Range<usize>, message: String| match &src.file {
        Some(f) => file::located(f.name, f.text, span, message),
        None => unreachable!("spans only come from a file"),
    };
    let file_dir = src.file.map(|f| f.dir);
    let env = |name: &str| src.env.get(name).filter(|v| !v.is_empty());
    let mut origins = BTreeMap::new();

    // Platforms.
    let mut platforms = Vec::new();
    let mut origin = Origin::Default;
    if let Some(list) = &parsed.platforms {
        platforms = resolve_file_platforms(list, catalog, host, &at)?;
        origin = Origin::File;
    }
    if let Some(v) = env("XPLAT_PLATFORMS") {
        platforms = catalog
            .resolve_list_with_host(v, host)
            .map_err(|e| bad_env("XPLAT_PLATFORMS", v, e.to_string()))?;
        origin = Origin::Env;
    }
    if !src.flags.platforms.is_empty() {
        let list = src.flags.platforms.join(",");
        platforms = catalog
            .resolve_list_with_host(&list, host)
            .map_err(|e| bad_flag("--platform", &list, e.to_string()))?;
        origin = Origin::Flag;
    }
    if platforms.is_empty() {
        platforms.push(host.clone());
    }
    origins.insert("platforms", origin);

    // Build platform.
    let mut build_platform = None;
    let mut origin = Origin::Default;
    if let Some(p) = &parsed.build_platform {
        let resolved = catalog
            .resolve_with_host(p.get_ref(), host)
            .map_err(|e| at(p.span(), format!("build_platform: {e}")))?;
        build_platform = Some(resolved);
        origin = Origin::File;
    }
    if let Some(v) = env("XPLAT_BUILD_PLATFORM") {
        let p = catalog
            .resolve_with_host(v, host)
            .map_err(|e| bad_env("XPLAT_BUILD_PLATFORM", v, e.to_string()))?;
        build_platform = Some(p);
        origin = Origin::Env;
    }
    if let Some(v) = &src.flags.build_platform {
        let p = catalog
            .resolve_with_host(v, host)
            .map_err(|e| bad_flag("--build-platform", v, e.to_string()))?;
        build_platform = Some(p);
        origin = Origin::Flag;
    }
    origins.insert("build_platform", origin);

    // Context, Dockerfile, target.
    let in_file_dir = |p: &str| match file_dir {
        Some(d) if !Path::new(p).is_absolute() && d != Path::new("") => d.join(p),
        _ => PathBuf::from(p),
    };
    let (context, origin) = layered(
        parsed.context.as_deref().map(in_file_dir),
        env("XPLAT_CONTEXT").map(PathBuf::from),
        src.flags.context.clone(),
    );
    // xplat.toml's folder; "" (a file named without a folder) is the current one.
    let context = context.unwrap_or_else(|| {
        file_dir
            .filter(|d| *d != Path::new(""))
            .map_or_else(|| ".".into(), Path::to_path_buf)
    });
    origins.insert("context", origin);
    let (dockerfile, origin) = layered(
        parsed.dockerfile.as_deref().map(in_file_dir),
        env("XPLAT_DOCKERFILE").map(PathBuf::from),
        src.flags.dockerfile.clone(),
    );
    let dockerfile = dockerfile.unwrap_or_else(|| context.join("Dockerfile"));
    origins.insert("dockerfile", origin);
    let (target, origin) = layered(
        parsed.target.clone(),
        env("XPLAT_TARGET").cloned(),
        src.flags.target.clone(),
    );
    origins.insert("target", origin);

    // Outputs and cache.
    let mut output = parsed.output.clone().unwrap_or_default();
    let (push, origin) = layered(
        parsed.output.as_ref().map(|o| o.push),
        env_bool(src.env, "XPLAT_PUSH")?,
        src.flags.push.then_some(true),
    );
    output.push = push.unwrap_or(false);
    origins.insert("push", origin);
    let mut cache = parsed.cache.clone().unwrap_or_default();
    let (disabled, origin) = layered(
        parsed.cache.as_ref().map(|c| c.disabled),
        env_bool(src.env, "XPLAT_NO_CACHE")?,
        src.flags.no_cache.then_some(true),
    );
    cache.disabled = disabled.unwrap_or(false);
    origins.insert("no_cache", origin);

    // Variables: git < file < environment < --set.
    let mut vars = git::vars(src.git);
    vars.extend(parsed.vars.clone());
    for (name, value) in src.env {
        let var = if name == "XPLAT_VERSION" {
            Some("version".to_string())
        } else {
            name.strip_prefix("XPLAT_VAR_").map(str::to_lowercase)
        };
        if let Some(var) = var.filter(|v| !v.is_empty()) {
            vars.insert(var, value.clone());
        }
    }
    for item in &src.flags.set {
        let (k, v) = split_pair(item).ok_or_else(|| bad_flag("--set", item, pair_hint()))?;
        vars.insert(k.to_string(), v.to_string());
    }

    // Tags.
    let (tags, origin) = if !src.flags.tags.is_empty() {
        let tags = src.flags.tags.iter().map(|t| {
            subst::substitute(t, &vars).map_err(|e| bad_flag("--tag", t, subst_message(&e, &vars)))
        });
        (tags.collect::<Result<Vec<_>>>()?, Origin::Flag)
    } else if let Some(v) = env("XPLAT_TAGS") {
        let tags = v
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                subst::substitute(t, &vars)
                    .map_err(|e| bad_env("XPLAT_TAGS", v, subst_message(&e, &vars)))
            });
        (tags.collect::<Result<Vec<_>>>()?, Origin::Env)
    } else if let Some(list) = &parsed.tags {
        let tags = list.iter().map(|t| substitute_spanned(t, &vars, &at));
        (tags.collect::<Result<Vec<_>>>()?, Origin::File)
    } else {
        (Vec::new(), Origin::Default)
    };
    for tag in &tags {
        if tag.is_empty() || tag.chars().any(char::is_whitespace) {
            return Err(bad_flag(
                "--tag",
                tag,
                "a tag is NAME[:TAG] with no spaces".into(),
            ));
        }
    }
    origins.insert("tags", origin);

    // Build args: file < flags.
    let mut build_args = parsed.build_args.clone();
    for item in &src.flags.build_args {
        match split_pair(item) {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            // `--build-arg NAME` takes NAME's value from the environment, as docker does.
            None if !item.is_empty() && !item.contains('=') => match src.env.get(item) {
                Some(v) => build_args.insert(item.clone(), v.clone()),
                None => None,
            },
            None if item.starts_with('=') => {
                return Err(ConfigError::NamelessBuildArg {
                    value: item.clone(),
                })
            }
            None => return Err(bad_flag("--build-arg", item, pair_hint())),
        };
    }

    // Labels and annotations: (git's OCI set <) file < flags.
    let mut labels = BTreeMap::new();
    for (k, v) in &parsed.labels {
        labels.insert(k.clone(), substitute_spanned(v, &vars, &at)?);
    }
    for item in &src.flags.labels {
        let (k, v) = split_pair(item).ok_or_else(|| bad_flag("--label", item, pair_hint()))?;
        let v = subst::substitute(v, &vars)
            .map_err(|e| bad_flag("--label", item, subst_message(&e, &vars)))?;
        labels.insert(k.to_string(), v);
    }
    let mut annotations = BTreeMap::new();
    if parsed.annotate_from_git.unwrap_or(true) {
        let epoch = match env("SOURCE_DATE_EPOCH") {
            Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
                bad_env(
                    "SOURCE_DATE_EPOCH",
                    v,
                    "expected whole seconds since 1970".into(),
                )
            })?),
            None => None,
        };
        annotations = git::annotations(src.git, epoch);
    }
    for (k, v) in &parsed.annotations {
        annotations.insert(k.clone(), substitute_spanned(v, &vars, &at)?);
    }
    for item in &src.flags.annotations {
        let (k, v) = split_pair(item).ok_or_else(|| bad_flag("--annotation", item, pair_hint()))?;
        let v = subst::substitute(v, &vars)
            .map_err(|e| bad_flag("--annotation", item, subst_message(&e, &vars)))?;
        annotations.insert(k.to_string(), v);
    }

    // Engines: the file's, in its order, then the flags' by name.
    let file_engines = match &src.file {
        Some(_) => engines::from_file(&parsed.engines, file_dir, catalog, host, &at)?,
        None => Vec::new(),
    };
    let flag_engines = src
        .flags
        .engines
        .iter()
        .map(|v| engines::parse_flag(v, catalog, host))
        .collect::<Result<Vec<_>>>()?;
    let origin = match (flag_engines.is_empty(), file_engines.is_empty()) {
        (false, _) => Origin::Flag,
        (true, false) => Origin::File,
        (true, true) => Origin::Default,
    };
    origins.insert("engines", origin);
    let engines = engines::merge(file_engines, flag_engines);

    Ok(Config {
        config_file: src.file.map(|f| PathBuf::from(f.name)),
        platforms,
        build_platform,
        tags,
        dockerfile,
        context,
        target,
        build_args,
        labels,
        annotations,
        vars,
        output,
        cache,
        engines,
        origins,
    })
}

/// The last of file, environment and flag that is set, and which it was.
fn layered<T>(file: Option<T>, env: Option<T>, flag: Option<T>) -> (Option<T>, Origin) {
    match (file, env, flag) {
        (_, _, Some(v)) => (Some(v), Origin::Flag),
        (_, Some(v), None) => (Some(v), Origin::Env),
        (Some(v), None, None) => (Some(v), Origin::File),
        (None, None, None) => (None, Origin::Default),
    }
}

fn resolve_file_platforms(
    list: &[toml::Spanned<String>],
    catalog: &Catalog,
    host: &Platform,
    at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> = Vec::new();
    for item in list {
        let p = catalog
            .resolve_with_host(item.get_ref(), host)
            .map_err(|e| at(item.span(), format!("platforms: {e}")))?;
        if out.contains(&p) {
            let message = format!("platforms: {} is listed twice", p.format());
            return Err(at(item.span(), message));
        }
        out.push(p);
    }
    Ok(out)
}

fn substitute_spanned(
    value: &toml::Spanned<String>,
    vars: &BTreeMap<String, String>,
    at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<String> {
    subst::substitute(value.get_ref(), vars).map_err(|e| {
        // +1 skips the opening quote; exact for strings without escapes.
        let offset = match &e {
            SubstError::Unset { at, .. } | SubstError::Malformed { at } => *at,
        };
        let start = value.span().start + 1 + offset;
        let len = match &e {
            SubstError::Unset { name, .. } => name.len() + 2,
            SubstError::Malformed { .. } => 1,
        };
        at(start..start + len, subst_message(&e, vars))
    })
}

fn subst_message(err: &SubstError, vars: &BTreeMap<String, String>) -> String {
    match err {
        SubstError::Unset { name, .. } => {
            let env = if name == "version" {
                "XPLAT_VERSION".to_string()
            } else {
                format!("XPLAT_VAR_{}", name.to_uppercase())
            };
            let known = if vars.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = vars.keys().map(String::as_str).collect();
                format!(" (known: {})", names.join(", "))
            };
            format!(
                "{{{name}}} has no value{known}; pass --set {name}=VALUE, set {env}, \
                 or add it under [vars] in xplat.toml"
            )
        }
        SubstError::Malformed { .. } => {
            "unbalanced brace: write {name} for a variable, {{ or }} for a literal brace".into()
        }
    }
}

fn split_pair(item: &str) -> Option<(&str, &str)> {
    item.split_once('=').filter(|(k, _)| !k.is_empty())
}

fn pair_hint() -> String {
    "expected KEY=VALUE".to_string()
}

fn env_bool(env: &BTreeMap<String, String>, name: &str) -> Result<Option<bool>> {
    match env.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(bad_env(name, &v, "expected true or false (1 or 0)".into())),
        },
    }
}

fn bad_flag(flag: &'static str, value: &str, message: String) -> ConfigError {
    ConfigError::BadFlag {
        flag,
        value: value.to_string(),
        message,
    }
}

fn bad_env(name: &str, value: &str, message: String) -> ConfigError {
    ConfigError::BadEnv {
        name: name.to_string(),
        value: value.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests;
