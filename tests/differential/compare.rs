//! What the differential suite compares, as plain data: a filesystem snapshot read
//! from a `docker export` tar, the image-config fields read from `docker image
//! inspect` (or from xplat's own [`ImageConfig`]), and readable diffs of both.
//! Pure: unit-tested here without an engine.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use xplat::engine::ContainerConfig as ImageConfig;

/// Files up to this size are kept verbatim so a diff can show them.
const INLINE_MAX: usize = 256;

/// One path of an exported filesystem: everything compared except times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo` or `other`.
    pub kind: &'static str,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Symlink or hard-link target, as stored.
    pub link: Option<String>,
    /// File size.
    pub size: u64,
    /// Small files verbatim, larger ones as `sha256:<hex>`.
    pub content: Content,
}

/// A file's content as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Not a regular file.
    None,
    /// The bytes of a small file.
    Inline(Vec<u8>),
    /// The sha256 of a larger file.
    Digest(String),
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Content::None => write!(f, "-"),
            Content::Inline(b) => write!(f, "{:?}", String::from_utf8_lossy(b)),
            Content::Digest(d) => write!(f, "{}", &d[..19.min(d.len())]),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if let Some(l) = &self.link {
            write!(f, " -> {l}")?;
        }
        if self.kind == "file" {
            write!(f, " {}B {}", self.size, self.content)?;
        }
        Ok(())
    }
}

/// Absolute path → entry.
pub type FsSnapshot = BTreeMap<String, Entry>;

/// Reads a `docker export` tar into a snapshot (paths made absolute, `/` is left out).
pub fn snapshot(tar_bytes: &[u8]) -> std::io::Result<FsSnapshot> {
    let mut out = FsSnapshot::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.to_string_lossy().into_owned();
        let path = normalize_path(&raw);
        if path == "/" {
            continue;
        }
        let header = entry.header().clone();
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            _ => "other",
        };
        let link = entry.link_name()?.map(|l| l.to_string_lossy().into_owned());
        let content = if kind == "file" {
            let mut buf = Vec::new();
            entry.read_to_end(&mut buf)?;
            if buf.len() <= INLINE_MAX {
                Content::Inline(buf)
            } else {
                Content::Digest(format!("sha256:{}", hex::encode(Sha256::digest(&buf))))
            }
        } else {
            Content::None
        };
        out.insert(
            path,
            Entry {
                kind,
                mode: header.mode()? & 0o7777,
                uid: header.uid()?,
                gid: header.gid()?,
                link,
                size: if kind == "file" { header.size()? } else { 0 },
                content,
            },
        );
    }
    Ok(out)
}

/// `./a/b/` → `/a/b`.
pub fn normalize_path(raw: &str) -> String {
    let trimmed = raw.trim_start_matches("./").trim_matches('/');
    format!("/{trimmed}")
}

/// One difference between the oracle and xplat, keyed by path or config field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `fs:/path` or `config:Field` (or `xplat-config:Field` for xplat's authoritative config).
    pub key: String,
    /// What the classic builder produced (`(absent)` when missing).
    pub classic: String,
    /// What xplat produced.
    pub xplat: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n      classic: {}\n      xplat:   {}",
            self.key, self.classic, self.xplat
        )
    }
}

const ABSENT: &str = "(absent)";

/// Every path whose entry differs, or that exists on one side only.
pub fn diff_fs(classic: &FsSnapshot, xplat: &FsSnapshot) -> Vec<Mismatch> {
    let mut keys: Vec<&String> = classic.keys().chain(xplat.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (classic.get(k), xplat.get(k));
            (a != b).then(|| Mismatch {
                key: format!("fs:{k}"),
                classic: a.map_or(ABSENT.to_string(), |e| e.to_string()),
                xplat: b.map_or(ABSENT.to_string(), |e| e.to_string()),
            })
        })
        .collect()
}

/// The config fields compared, as named in the image JSON.
pub const CONFIG_FIELDS: [&str; 12] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
];

/// Labels xplat itself puts on the engine images it commits (not part of the user's
/// image): the build id, the managed marker, the step-cache key and the project.
pub const XPLAT_OWN_LABELS: [&str; 4] = [
    "xplat.build",
    "xplat.managed",
    "xplat.cache.key",
    "xplat.project",
];

/// The compared fields of an image config: field → normalized value. Empty values
/// (`null`, `""`, `[]`, `{}`, zero durations) are left out, so "unset" and "empty"
/// compare equal: the engine itself reports both for the same image.
pub type ConfigView = BTreeMap<String, Value>;

/// The view of a `docker image inspect` `.Config` object.
pub fn config_view(config: &Value) -> ConfigView {
    let mut out = ConfigView::new();
    for field in CONFIG_FIELDS {
        let v = config.get(field).cloned().unwrap_or(Value::Null);
        let v = match field {
            // `{"80/tcp": {}}` → `["80/tcp"]`, sorted.
            "ExposedPorts" | "Volumes" => match v {
                Value::Object(m) => Value::Array(m.keys().map(|k| json!(k)).collect()),
                other => other,
            },
            "Labels" => match v {
                Value::Object(m) => Value::Object(
                    m.into_iter()
                        .filter(|(k, _)| !XPLAT_OWN_LABELS.contains(&k.as_str()))
                        .collect(),
                ),
                other => other,
            },
            "Healthcheck" => match v {
                Value::Object(m) => Value::Object(
                    m.into_iter()
                        .filter(|(_, v)| !is_empty(v) && v != &json!(0))
                        .collect::<Map<_, _>>(),
                ),
                other => other,
            },
            _ => v,
        };
        if !is_empty(&v) {
            out.insert(field.to_string(), v);
        }
    }
    out
}

/// The same view of xplat's authoritative [`ImageConfig`] (what its final images get).
pub fn xplat_config_view(c: &ImageConfig) -> ConfigView {
    let raw = serde_json::to_value(c).expect("a config serializes");
    config_view(&raw)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Every compared field that differs; `prefix` names the side (`config` or `xplat-config`).
pub fn diff_config(prefix: &str, classic: &ConfigView, xplat: &ConfigView) -> Vec<Mismatch> {
    CONFIG_FIELDS
        .iter()
        .filter_map(|f| {
            let (a, b) = (classic.get(*f), xplat.get(*f));
            (a != b).then(|| Mismatch {
                key: format!("{prefix}:{f}"),
                classic: a.map_or(ABSENT.to_string(), Value::to_string),
                xplat: b.map_or(ABSENT.to_string(), Value::to_string),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (path, type, mode, uid and gid, content, link target)
    type TarEntry<'a> = (&'a str, tar::EntryType, u32, u64, &'a [u8], Option<&'a str>);

    fn tar_of(entries: &[TarEntry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, mode, uid, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(*mode);
            h.set_uid(*uid);
            h.set_gid(*uid);
            h.set_size(data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn snapshot_reads_kind_mode_owner_link_and_content() {
        let big = vec![7u8; 1000];
        let t = tar_of(&[
            ("./", tar::EntryType::Directory, 0o755, 0, b"", None),
            ("etc/", tar::EntryType::Directory, 0o4755, 0, b"", None),
            ("etc/a", tar::EntryType::Regular, 0o640, 1000, b"hi", None),
            ("big", tar::EntryType::Regular, 0o644, 0, &big, None),
            ("l", tar::EntryType::Symlink, 0o777, 0, b"", Some("etc/a")),
        ]);
        let s = snapshot(&t).unwrap();
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            vec!["/big", "/etc", "/etc/a", "/l"]
        );
        assert_eq!(s["/etc"].mode, 0o4755);
        assert_eq!(s["/etc/a"].uid, 1000);
        assert_eq!(s["/etc/a"].content, Content::Inline(b"hi".to_vec()));
        assert!(matches!(&s["/big"].content, Content::Digest(d) if d.starts_with("sha256:")));
        assert_eq!(s["/l"].link.as_deref(), Some("etc/a"));
    }

    #[test]
    fn diff_fs_names_changed_and_one_sided_paths() {
        let a = snapshot(&tar_of(&[
            ("x", tar::EntryType::Regular, 0o644, 0, b"1", None),
            ("y", tar::EntryType::Regular, 0o644, 0, b"1", None),
        ]))
        .unwrap();
        let b = snapshot(&tar_of(&[
            ("x", tar::EntryType::Regular, 0o600, 0, b"1", None),
            ("z", tar::EntryType::Regular, 0o644, 0, b"1", None),
        ]))
        .unwrap();
        let d = diff_fs(&a, &b);
        let keys: Vec<_> = d.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, vec!["fs:/x", "fs:/y", "fs:/z"]);
        assert!(d[0].classic.contains("0644") && d[0].xplat.contains("0600"));
        assert_eq!(d[2].classic, ABSENT);
        assert!(diff_fs(&a, &a).is_empty());
    }

    #[test]
    fn config_view_normalizes_empty_values_and_strips_xplat_labels() {
        let inspect = json!({
            "Env": ["A=1"], "Cmd": null, "Entrypoint": [], "WorkingDir": "",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Labels": {"k": "v", "xplat.build": "b", "xplat.cache.key": "c", "xplat.fixture.recipe": "r"},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 0, "Retries": 3},
        });
        let v = config_view(&inspect);
        assert_eq!(v.get("Cmd"), None);
        assert_eq!(v.get("Entrypoint"), None);
        assert_eq!(v["ExposedPorts"], json!(["53/udp", "80/tcp"]));
        assert_eq!(v["Labels"], json!({"k": "v", "xplat.fixture.recipe": "r"}));
        assert_eq!(
            v["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Retries": 3})
        );
        let x = xplat_config_view(
            &serde_json::from_value::<ImageConfig>(json!({
                "Env": ["A=1"],
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "Labels": {"k": "v", "xplat.fixture.recipe": "r"},
                "Healthcheck": {"Test": ["CMD", "true"], "Retries": 3}
            }))
            .unwrap(),
        );
        assert!(
            diff_config("config", &v, &x).is_empty(),
            "{:?}",
            diff_config("config", &v, &x)
        );
        let mut y = x.clone();
        y.insert("User".into(), json!("app"));
        let d = diff_config("config", &v, &y);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "config:User");
        assert_eq!(d[0].classic, ABSENT);
    }
}
