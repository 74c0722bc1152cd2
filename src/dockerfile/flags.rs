//! Instruction flags (`--name[=value]`) checked against what each
//! instruction accepts, plus the value parsers they need: `RUN --mount`
//! options, Go-style durations for HEALTHCHECK.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{Location, ParseError};
use super::instruction::{CacheSharing, Mount, MountType};

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    Text,
    /// `--mount=...`, any number of times.
    List,
}

/// The flags one instruction was given, by name, after validation.
#[derive(Debug, Default)]
pub(crate) struct FlagValues {
    values: BTreeMap<&'static str, Vec<String>>,
    bools: BTreeMap<&'static str, bool>,
}

impl FlagValues {
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.first().cloned())
    }
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }
    pub(crate) fn flag(&self, name: &str) -> Option<bool> {
        self.bools.get(name).copied()
    }
}

/// Closest candidate to `word`, when it is close enough to be a useful hint.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&word, &c.to_ascii_lowercase()), c))
        .filter(|&(d, c)| d > 0 && (d <= 2 || d * 3 <= c.len()) && d < word.len().max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c.to_string())
}

/// Validates `raw` flags (`--name=value`, as the raw parser left them)
/// against `allowed`. `locate` maps a flag text to its source location.
pub(crate) fn check_flags(
    instruction: &str,
    raw: &[String],
    allowed: &[(&'static str, Kind)],
    locate: &dyn Fn(&str) -> Location,
) -> Result<FlagValues, ParseError> {
    let mut out = FlagValues::default();
    for f in raw {
        let body = f.strip_prefix("--").unwrap_or(f);
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let location = locate(&format!("--{name}"));
        let Some(&(key, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
            return Err(ParseError::UnknownFlag {
                instruction: instruction.to_string(),
                flag: name.to_string(),
                allowed: allowed.iter().map(|(n, _)| n.to_string()).collect(),
                suggestion: suggest(name, allowed.iter().map(|(n, _)| *n)),
                location,
            });
        };
        let seen = out.values.contains_key(key) || out.bools.contains_key(key);
        if seen && kind != Kind::List {
            return Err(ParseError::DuplicateFlag {
                flag: key.to_string(),
                location,
            });
        }
        match (kind, value) {
            (Kind::Bool, None) => {
                out.bools.insert(key, true);
            }
            (Kind::Bool, Some(v)) => {
                let b = match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ParseError::InvalidFlagValue {
                            flag: key.to_string(),
                            reason: format!("expecting boolean value true or false, got {v:?}"),
                            location,
                        })
                    }
                };
                out.bools.insert(key, b);
            }
            (_, None) => {
                return Err(ParseError::InvalidFlagValue {
                    flag: key.to_string(),
                    reason: format!("missing a value (write --{key}=<value>)"),
                    location,
                })
            }
            (_, Some(v)) => out.values.entry(key).or_default().push(v.to_string()),
        }
    }
    Ok(out)
}

/// Splits a `--mount` value like a one-record CSV (BuildKit uses Go's
/// `encoding/csv`): commas separate fields, double quotes protect them.
fn csv_fields(s: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Parses one `--mount=` value.
///
/// Numeric keys (`mode`, `uid`, `gid`, `size`) must be literal numbers here:
/// a `$VAR` in them is rejected (BuildKit would expand it first).
pub(crate) fn parse_mount(value: &str, location: Location) -> Result<Mount, ParseError> {
    let bad = |reason: String| ParseError::InvalidFlagValue {
        flag: "mount".into(),
        reason,
        location,
    };
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        readonly: None,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: None,
        env: None,
        size: None,
    };
    let parse_bool = |k: &str, v: &str| match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(format!("invalid value for {k}: {v:?}"))),
    };
    let parse_u32 = |k: &str, v: &str, radix: u32| {
        u32::from_str_radix(v, radix).map_err(|_| bad(format!("invalid value for {k}: {v:?}")))
    };
    for field in csv_fields(value) {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        match (key.as_str(), val) {
            ("", None) => continue,
            ("readonly" | "ro", None) => m.readonly = Some(true),
            ("readwrite" | "rw", None) => m.readonly = Some(false),
            ("required", None) => m.required = Some(true),
            (k, None) => {
                return Err(bad(format!(
                    "unexpected key '{k}' without a value in '{value}'"
                )))
            }
            ("type", Some(v)) => {
                m.kind = match v.to_ascii_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    other => {
                        return Err(bad(format!(
                            "unsupported mount type {other:?} (bind, cache, tmpfs, secret, ssh)"
                        )))
                    }
                }
            }
            ("target" | "dst" | "destination", Some(v)) => m.target = Some(v),
            ("source" | "src", Some(v)) => m.source = Some(v),
            ("from", Some(v)) => m.from = Some(v),
            ("readonly" | "ro", Some(v)) => m.readonly = Some(parse_bool(&key, &v)?),
            ("readwrite" | "rw", Some(v)) => m.readonly = Some(!parse_bool(&key, &v)?),
            ("required", Some(v)) => m.required = Some(parse_bool(&key, &v)?),
            ("id", Some(v)) => m.id = Some(v),
            ("env", Some(v)) => m.env = Some(v),
            ("sharing", Some(v)) => {
                m.sharing = Some(match v.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    other => {
                        return Err(bad(format!(
                            "unsupported sharing value {other:?} (shared, private, locked)"
                        )))
                    }
                })
            }
            ("mode", Some(v)) => m.mode = Some(parse_u32(&key, &v, 8)?),
            ("uid", Some(v)) => m.uid = Some(parse_u32(&key, &v, 10)?),
            ("gid", Some(v)) => m.gid = Some(parse_u32(&key, &v, 10)?),
            ("size", Some(v)) => {
                m.size = Some(parse_size(&v).ok_or_else(|| bad(format!("invalid size {v:?}")))?)
            }
            (k, Some(_)) => return Err(bad(format!("unexpected key '{k}' in '{value}'"))),
        }
    }
    // No `target=` is fine: BuildKit mounts at the WORKDIR (the planner places it;
    // issue 10: `RUN --mount=from=binaries`, `--mount=type=bind`, `--mount=ro`
    // are in Docker's own Dockerfiles).
    Ok(m)
}

/// `size=` for tmpfs: bytes, optionally with a k/m/g suffix (binary units).
fn parse_size(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (num, mult) = match trimmed.chars().last()? {
        'k' => (&trimmed[..trimmed.len() - 1], 1u64 << 10),
        'm' => (&trimmed[..trimmed.len() - 1], 1 << 20),
        'g' => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

/// Why a duration (`--interval=90s`) is not one Go's `time.ParseDuration` takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// A minus sign (only `-0` is allowed).
    #[error("cannot be negative")]
    Negative,
    /// Nothing after the sign.
    #[error("empty duration")]
    Empty,
    /// A number that is not one, or a value out of range.
    #[error("invalid duration {text:?}")]
    Invalid {
        /// The value given.
        text: String,
    },
    /// A number without its unit.
    #[error("missing unit in duration {text:?}")]
    MissingUnit {
        /// The value given.
        text: String,
    },
    /// A unit Go does not know.
    #[error("unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit {
        /// The unit found.
        unit: String,
        /// The value given.
        text: String,
    },
}

/// Go's `time.ParseDuration` for non-negative values (`90s`, `1m30s`,
/// `1.5h`, `300ms`, `0`).
pub(crate) fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid { text: s.into() };
    if s == "0" || s == "+0" || s == "-0" {
        return Ok(Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(DurationError::MissingUnit { text: s.into() }),
            u => {
                return Err(DurationError::UnknownUnit {
                    unit: u.into(),
                    text: s.into(),
                })
            }
        };
        rest = &rest[unit_len..];
        let n: f64 = num.parse().map_err(|_| invalid())?;
        total_nanos += n * scale;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total_nanos.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_go() {
        let ok = [
            ("0", 0u64),
            ("5s", 5_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300ms", 300_000_000),
            ("2us", 2_000),
        ];
        for (s, nanos) in ok {
            assert_eq!(parse_go_duration(s), Ok(Duration::from_nanos(nanos)), "{s}");
        }
        for bad in ["", "5", "-1s", "1x", "s", "1..2s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_parse_every_key() {
        let loc = Location::line(1);
        let m = parse_mount(
            "type=cache,target=/root/.cache,id=go,sharing=locked,mode=0755,uid=1000,gid=1000,ro",
            loc,
        )
        .unwrap();
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!(
            (m.mode, m.uid, m.gid, m.readonly),
            (Some(0o755), Some(1000), Some(1000), Some(true))
        );
        let s = parse_mount("type=secret,id=tok,env=TOKEN,required", loc).unwrap();
        assert_eq!(
            (s.kind, s.env.as_deref(), s.required),
            (MountType::Secret, Some("TOKEN"), Some(true))
        );
        for no_target in [
            "from=binaries",
            "type=bind",
            "ro",
            "type=cache,id=x",
            "type=tmpfs",
        ] {
            let m = parse_mount(no_target, loc).unwrap();
            assert_eq!(
                m.target, None,
                "{no_target}: the planner puts it at the WORKDIR"
            );
        }
        let b = parse_mount("target=/src,from=build,source=/out,rw", loc).unwrap();
        assert_eq!(
            (b.kind, b.from.as_deref(), b.readonly),
            (MountType::Bind, Some("build"), Some(false))
        );
        assert_eq!(
            parse_mount("type=tmpfs,dst=/t,size=64m", loc).unwrap().size,
            Some(64 << 20)
        );
        assert_eq!(
            parse_mount("\"target=/a,b\"", loc)
                .unwrap()
                .target
                .as_deref(),
            Some("/a,b")
        );
        for bad in [
            "type=nfs,target=/x",
            "target=/x,colour=red",
            "target=/x,uid=me",
            "target=/x,ro=maybe",
        ] {
            assert!(parse_mount(bad, loc).is_err(), "{bad}");
        }
    }

    #[test]
    fn suggestions_are_close_or_absent() {
        assert_eq!(suggest("RUNN", ["run", "copy"]).as_deref(), Some("run"));
        assert_eq!(suggest("xyzzy", ["run", "copy"]), None);
    }
}
