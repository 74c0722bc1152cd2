//! `--cache-to` and `--cache-from` values, in buildx's words: `type=local,dest=DIR`,
//! `type=local,src=DIR`, `type=registry,ref=REF`, with `mode=min|max` and `ignore-error`; a
//! bare `REF` is `type=registry,ref=REF`.

use std::path::PathBuf;

use crate::registry::ImageRef;

/// Where a cache is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An OCI layout folder.
    Local(PathBuf),
    /// A tag in a registry.
    Registry(ImageRef),
}

/// What `--cache-to` keeps (buildx's `mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// What final images read: the recordings of the jobs they come from.
    #[default]
    Min,
    /// Also the engine's step-cache checkpoints of every job, so a fresh runner starts a
    /// changed job at its latest checkpoint rather than at its first step.
    Max,
}

/// `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    /// Where it goes.
    pub at: Location,
    /// `mode=min` (default) or `mode=max`.
    pub mode: Mode,
    /// `ignore-error=false`: a failed export fails the build (default: a warning).
    pub ignore_error: bool,
}

/// A `--cache-from`/`--cache-to` value xplat does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value:?}: {reason}")]
pub struct SpecError {
    /// `--cache-to` or `--cache-from`.
    pub flag: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

struct Fields<'a> {
    kind: Option<&'a str>,
    pairs: Vec<(&'a str, &'a str)>,
}

fn fields<'a>(flag: &'static str, value: &'a str) -> Result<Fields<'a>, SpecError> {
    let bad = |reason: String| SpecError {
        flag,
        value: value.to_string(),
        reason,
    };
    if !value.contains('=') {
        return Ok(Fields {
            kind: Some("registry"),
            pairs: vec![("ref", value)],
        });
    }
    let mut kind = None;
    let mut pairs = Vec::new();
    for part in value.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
        if k == "type" {
            kind = Some(v);
        } else {
            pairs.push((k, v));
        }
    }
    Ok(Fields { kind, pairs })
}

fn location(
    flag: &'static str,
    value: &str,
    f: &Fields<'_>,
    dir_key: &str,
) -> Result<Location, SpecError> {
    let bad = |reason: String| SpecError {
        flag,
        value: value.to_string(),
        reason,
    };
    let get = |k: &str| f.pairs.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
    match f.kind {
        Some("local") => get(dir_key)
            .filter(|d| !d.is_empty())
            .map(|d| Location::Local(PathBuf::from(d)))
            .ok_or_else(|| bad(format!("type=local needs {dir_key}=DIR"))),
        Some("registry") => {
            let r = get("ref").ok_or_else(|| bad("type=registry needs ref=REF".into()))?;
            ImageRef::parse(r)
                .map(Location::Registry)
                .map_err(|e| bad(e.to_string()))
        }
        Some(other) => Err(bad(format!(
            "type={other} is not supported (type=local or type=registry)"
        ))),
        None => Err(bad("type=local or type=registry is missing".into())),
    }
}

/// Parses a `--cache-to` value.
pub fn parse_to(value: &str) -> Result<CacheTo, SpecError> {
    const FLAG: &str = "--cache-to";
    let f = fields(FLAG, value)?;
    let at = location(FLAG, value, &f, "dest")?;
    let mut ignore_error = true;
    let mut mode = Mode::Min;
    for (k, v) in &f.pairs {
        let bad = |reason: String| SpecError {
            flag: FLAG,
            value: value.to_string(),
            reason,
        };
        match (*k, *v) {
            ("dest", _) | ("ref", _) => {}
            ("mode", "min") => mode = Mode::Min,
            ("mode", "max") => mode = Mode::Max,
            ("ignore-error", "true") => ignore_error = true,
            ("ignore-error", "false") => ignore_error = false,
            ("mode" | "ignore-error", other) => {
                return Err(bad(format!("{k}={other} is not a value it takes")))
            }
            (other, _) => return Err(bad(format!("{other}= is not supported"))),
        }
    }
    Ok(CacheTo {
        at,
        mode,
        ignore_error,
    })
}

/// Parses a `--cache-from` value.
pub fn parse_from(value: &str) -> Result<Location, SpecError> {
    const FLAG: &str = "--cache-from";
    let f = fields(FLAG, value)?;
    let at = location(FLAG, value, &f, "src")?;
    if let Some((k, _)) = f.pairs.iter().find(|(k, _)| !matches!(*k, "src" | "ref")) {
        return Err(SpecError {
            flag: FLAG,
            value: value.to_string(),
            reason: format!("{k}= is not supported"),
        });
    }
    Ok(at)
}
