//! The engines of the effective configuration (issue 12): `[engines.NAME]` tables in
//! `xplat.toml` (in the order written; the first is the default engine) and
//! `--engine NAME=HOST[,platforms=P[,P…]][,tls=DIR]` flags, which replace an engine of the
//! same name or add one at the end.
//!
//! ```toml
//! [engines.local]                      # no host: the engine the docker CLI would use
//!
//! [engines.arm]
//! host = "tcp://arm-builder.example:2376"
//! tls = { ca = "certs/ca.pem", cert = "certs/cert.pem", key = "certs/key.pem" }
//! platforms = ["linux/arm64", "linux/arm/v7"]
//! ```
//!
//! Cert paths are relative to the file's folder. `platforms` are the platforms the
//! engine runs natively; without it, the engine's own platform.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{ConfigError, Origin, Result};
use crate::engine::fleet::{self, EngineSpec};
use crate::engine::{EngineError, TlsFiles};
use crate::platform::{Catalog, Platform};

/// `[engines.NAME]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineEntry {
    /// `unix://…`, `tcp://host:port`, `ssh://user@host`; absent: the default engine.
    pub host: Option<Spanned<String>>,
    /// Client certificates for a tcp host.
    pub tls: Option<TlsEntry>,
    /// Platforms it runs natively.
    pub platforms: Option<Vec<Spanned<String>>>,
}

/// `tls = { ca = …, cert = …, key = … }`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsEntry {
    /// The CA certificate.
    pub ca: String,
    /// The client certificate.
    pub cert: String,
    /// The client key.
    pub key: String,
}

/// One engine of the effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineSetting {
    /// Its name (the table's key when serialized).
    #[serde(skip)]
    pub name: String,
    /// Its host as written; `None`: the default engine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Client certificates (absolute, or relative to the current folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsPaths>,
    /// Platforms it runs natively (empty: its own).
    #[serde(serialize_with = "super::platform_names")]
    pub platforms: Vec<Platform>,
    /// Where it was named.
    #[serde(skip)]
    pub origin: Origin,
}

/// The engines as `xplat.toml` writes them: a table per name (in order for JSON).
pub fn as_tables<S: serde::Serializer>(
    engines: &[EngineSetting],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(engines.len()))?;
    for e in engines {
        map.serialize_entry(&e.name, e)?;
    }
    map.end()
}

/// The PEM files, as paths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsPaths {
    /// The CA certificate.
    pub ca: PathBuf,
    /// The client certificate.
    pub cert: PathBuf,
    /// The client key.
    pub key: PathBuf,
}

impl EngineSetting {
    /// The engine as the library takes it.
    pub fn spec(&self) -> std::result::Result<EngineSpec, EngineError> {
        let endpoint = match &self.host {
            None => None,
            Some(h) => Some(fleet::endpoint(
                h,
                self.tls.as_ref().map(|t| TlsFiles {
                    ca: t.ca.clone(),
                    cert: t.cert.clone(),
                    key: t.key.clone(),
                }),
            )?),
        };
        Ok(EngineSpec {
            name: self.name.clone(),
            endpoint,
            platforms: self.platforms.clone(),
        })
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The engines of `[engines]`, in the order written. `dir` is the file's folder (cert
/// paths are relative to it); `at` makes an error pointing at a span of the file.
pub fn from_file(
    entries: &BTreeMap<String, Spanned<EngineEntry>>,
    dir: Option<&Path>,
    catalog: &Catalog,
    host: &Platform,
    at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
) -> Result<Vec<EngineSetting>> {
    let mut ordered: Vec<(&String, &Spanned<EngineEntry>)> = entries.iter().collect();
    ordered.sort_by_key(|(_, e)| e.span().start);
    let mut out = Vec::new();
    for (name, entry) in ordered {
        if !valid_name(name) {
            return Err(at(
                entry.span(),
                format!("engines.{name}: a name is letters, digits, '-', '_' or '.'"),
            ));
        }
        let e = entry.get_ref();
        let tls = e.tls.as_ref().map(|t| {
            let f = fleet::tls_in(dir.unwrap_or(Path::new("")), &t.ca, &t.cert, &t.key);
            TlsPaths {
                ca: f.ca,
                cert: f.cert,
                key: f.key,
            }
        });
        let mut platforms = Vec::new();
        for p in e.platforms.iter().flatten() {
            let resolved = catalog
                .resolve_with_host(p.get_ref(), host)
                .map_err(|err| at(p.span(), format!("engines.{name}.platforms: {err}")))?;
            platforms.push(resolved);
        }
        let setting = EngineSetting {
            name: name.clone(),
            host: e.host.as_ref().map(|h| h.get_ref().clone()),
            tls,
            platforms,
            origin: Origin::File,
        };
        if let Err(err) = setting.spec() {
            let span = e.host.as_ref().map_or(entry.span(), |h| h.span());
            return Err(at(span, format!("engines.{name}.host: {err}")));
        }
        out.push(setting);
    }
    Ok(out)
}

/// `--engine NAME=HOST[,platforms=P[,P…]][,tls=DIR]`: items after `platforms=` without
/// a `=` are more platforms; `tls=DIR` names a folder with ca.pem, cert.pem and key.pem.
pub fn parse_flag(value: &str, catalog: &Catalog, host: &Platform) -> Result<EngineSetting> {
    let bad = |message: String| ConfigError::BadFlag {
        flag: "--engine",
        value: value.to_string(),
        message,
    };
    let mut items = value.split(',');
    let first = items.next().unwrap_or("");
    let (name, engine_host) = first
        .split_once('=')
        .ok_or_else(|| bad("expected NAME=HOST[,platforms=P,…][,tls=DIR]".into()))?;
    if !valid_name(name) {
        return Err(bad("a name is letters, digits, '-', '_' or '.'".into()));
    }
    let mut platforms = Vec::new();
    let mut tls = None;
    let mut in_platforms = false;
    for item in items {
        let platform = match item.split_once('=') {
            Some(("platforms" | "platform", p)) => {
                in_platforms = true;
                p
            }
            Some(("tls", dir)) => {
                in_platforms = false;
                let f = TlsFiles::in_dir(Path::new(dir));
                tls = Some(TlsPaths {
                    ca: f.ca,
                    cert: f.cert,
                    key: f.key,
                });
                continue;
            }
            None if in_platforms => item,
            _ => {
                return Err(bad(format!(
                    "unknown {item:?}: expected platforms=P[,P…] or tls=DIR"
                )))
            }
        };
        let p = catalog
            .resolve_with_host(platform, host)
            .map_err(|e| bad(e.to_string()))?;
        platforms.push(p);
    }
    let setting = EngineSetting {
        name: name.to_string(),
        host: (!engine_host.is_empty()).then(|| engine_host.to_string()),
        tls,
        platforms,
        origin: Origin::Flag,
    };
    setting.spec().map_err(|e| bad(e.to_string()))?;
    Ok(setting)
}

/// The file's engines with the flags' laid over them by name.
pub fn merge(mut file: Vec<EngineSetting>, flags: Vec<EngineSetting>) -> Vec<EngineSetting> {
    for f in flags {
        match file.iter_mut().find(|e| e.name == f.name) {
            Some(slot) => *slot = f,
            None => file.push(f),
        }
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Endpoint;

    fn amd() -> Platform {
        Platform::parse("linux/amd64").unwrap()
    }

    #[test]
    fn flags_name_a_host_platforms_and_certs() {
        let c = Catalog::embedded();
        let e = parse_flag(
            "arm=tcp://arm:2376,platforms=linux/arm64,arm/v7,tls=/certs",
            &c,
            &amd(),
        )
        .unwrap();
        assert_eq!(e.name, "arm");
        assert_eq!(e.host.as_deref(), Some("tcp://arm:2376"));
        let names: Vec<String> = e.platforms.iter().map(Platform::format).collect();
        assert_eq!(names, ["linux/arm64", "linux/arm/v7"]);
        assert_eq!(e.tls.as_ref().unwrap().key, Path::new("/certs/key.pem"));
        assert!(matches!(
            e.spec().unwrap().endpoint,
            Some(Endpoint::TcpTlsFiles { .. })
        ));
        // No host: the default engine.
        let d = parse_flag("local=", &c, &amd()).unwrap();
        assert_eq!(d.spec().unwrap().endpoint, None);
        for bad in [
            "arm",
            "a b=tcp://h:1",
            "arm=h:2375",
            "arm=tcp://h:1,colour=red",
            "arm=tcp://h:1,platforms=linux/nope",
        ] {
            assert!(parse_flag(bad, &c, &amd()).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_replace_engines_of_the_same_name_and_add_others() {
        let c = Catalog::embedded();
        let file = vec![
            parse_flag("local=", &c, &amd()).unwrap(),
            parse_flag("arm=tcp://a:1", &c, &amd()).unwrap(),
        ];
        let flags = vec![
            parse_flag("arm=tcp://b:2", &c, &amd()).unwrap(),
            parse_flag("x=tcp://x:3", &c, &amd()).unwrap(),
        ];
        let merged = merge(file, flags);
        let hosts: Vec<(String, Option<String>)> = merged
            .iter()
            .map(|e| (e.name.clone(), e.host.clone()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("local".to_string(), None),
                ("arm".to_string(), Some("tcp://b:2".to_string())),
                ("x".to_string(), Some("tcp://x:3".to_string())),
            ]
        );
    }
}
