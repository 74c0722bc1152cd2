//! The `xplat.toml` schema as serde reads it, and errors that point at the
//! offending key with its line, column and a caret under it.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ConfigError;

/// `xplat.toml` exactly as written. Every table rejects unknown keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Target platforms, e.g. `["linux/amd64", "linux/arm64"]`.
    pub platforms: Option<Vec<Spanned<String>>>,
    /// Image references to tag; `{var}` placeholders are substituted.
    pub tags: Option<Vec<Spanned<String>>>,
    /// The Dockerfile, relative to this file's folder.
    pub dockerfile: Option<String>,
    /// The build context, relative to this file's folder.
    pub context: Option<String>,
    /// Build only up to this stage.
    pub target: Option<String>,
    /// The platform build stages run on.
    pub build_platform: Option<Spanned<String>>,
    /// Build arguments.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Image config labels; values may use `{var}`.
    #[serde(default)]
    pub labels: BTreeMap<String, Spanned<String>>,
    /// Manifest and index annotations; values may use `{var}`.
    #[serde(default)]
    pub annotations: BTreeMap<String, Spanned<String>>,
    /// Fill `org.opencontainers.image.{revision,source,created}` from git (default true).
    pub annotate_from_git: Option<bool>,
    /// Default values of `{var}` placeholders.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Where results go.
    pub output: Option<OutputConfig>,
    /// Step cache settings.
    pub cache: Option<CacheConfig>,
    /// `[engines.NAME]`: the engines to build on (see `engines.rs`).
    #[serde(default)]
    pub engines: BTreeMap<String, Spanned<super::engines::EngineEntry>>,
}

/// `[output]`: where the images go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Push every tag to its registry.
    #[serde(default)]
    pub push: bool,
    /// Load the image for the engine's own platform into the engine.
    #[serde(default)]
    pub load: bool,
    /// Write an OCI image layout into this folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_layout: Option<String>,
}

/// `[cache]`: the step cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Do not use the step cache.
    #[serde(default)]
    pub disabled: bool,
    /// `--cache-to`: where the build's cache goes (`type=local,dest=DIR`,
    /// `type=registry,ref=REF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `--cache-from`: caches to take entries from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<String>,
}

/// Every key the top level accepts, for "did you mean".
const TOP_KEYS: &[&str] = &[
    "platforms",
    "tags",
    "dockerfile",
    "context",
    "target",
    "build_platform",
    "build_args",
    "labels",
    "annotations",
    "annotate_from_git",
    "vars",
    "output",
    "cache",
    "engines",
];
const OUTPUT_KEYS: &[&str] = &["push", "load", "oci_layout"];
const CACHE_KEYS: &[&str] = &["disabled", "to", "from"];

/// Parses `text` (the contents of `file`) into the schema.
pub fn parse(file: &str, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|err| {
        let span = err.span().unwrap_or(0..0);
        let message = friendly_message(err.message());
        located(file, text, span, message)
    })
}

/// Builds a [`ConfigError::InFile`] for the bytes `span` of `text`.
pub fn located(file: &str, text: &str, span: Range<usize>, message: String) -> ConfigError {
    let (line, column) = line_col(text, span.start);
    ConfigError::InFile {
        file: file.to_string(),
        line,
        column,
        message,
        snippet: snippet(text, span),
    }
}

/// serde's "unknown field `x`, expected one of ..." becomes "unknown key `x`; did you mean `y`?".
fn friendly_message(message: &str) -> String {
    let message = message.trim_end();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((key, _)) = rest.split_once('`') else {
        return message.to_string();
    };
    let known: &[&str] = if message.contains("`oci_layout`") {
        OUTPUT_KEYS
    } else if message.contains("expected `disabled`") {
        CACHE_KEYS
    } else {
        TOP_KEYS
    };
    let suggestion = known
        .iter()
        .map(|k| (strsim::levenshtein(key, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))
        .min();
    match suggestion {
        Some((_, k)) => format!("unknown key `{key}`; did you mean `{k}`?"),
        None => format!("unknown key `{key}`; known keys: {}", known.join(", ")),
    }
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

/// The source line holding `span`, with carets under the span (on that line).
fn snippet(text: &str, span: Range<usize>) -> String {
    let start = span.start.min(text.len());
    let (line, column) = line_col(text, start);
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let source = text[line_start..line_end].trim_end_matches('\r');
    let end = span.end.clamp(start, line_end);
    let width = text[start..end].chars().count().max(1);
    let gutter = line.to_string();
    let pad = " ".repeat(gutter.len());
    format!(
        " {gutter} | {source}\n {pad} | {}{}",
        " ".repeat(column - 1),
        "^".repeat(width)
    )
}
