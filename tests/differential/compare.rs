//! What the differential suite compares, as plain data: a filesystem snapshot made by
//! applying an image's layers in order (whiteouts included), the image-config fields of
//! the image's config document, and readable diffs of both. Pure: unit-tested here
//! without an engine.
//!
//! The layers are stacked here, not by xplat's own `output::rootfs`, so that a bug in
//! xplat's flattening cannot hide the same bug on both sides.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Files up to this size are kept verbatim so a diff can show them.
const INLINE_MAX: usize = 256;

/// One path of an image's filesystem: everything compared except times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `file`, `dir`, `symlink`, `char`, `block`, `fifo` or `other` (a hard link is
    /// read as the file it links to: both builders may store the same inode either way).
    pub kind: &'static str,
    /// Permission bits with setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Symlink target, as stored.
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

/// Absolute path → entry (`/` itself is left out).
pub type FsSnapshot = BTreeMap<String, Entry>;

/// One entry of a layer before it is applied.
enum Change {
    /// `.wh..wh..opq` in this folder: the lower layers' children go.
    Opaque(String),
    /// `.wh.NAME`: the lower layers' path and everything under it go.
    Whiteout(String),
    /// A hard link to the path given (resolved once the layer is read).
    Hardlink(String, String),
    /// A path with its entry.
    Put(String, Entry),
}

/// Applies one uncompressed or gzip layer tar on top of `fs`, as an OCI runtime
/// would: whiteouts first (they hide only lower layers), then the entries in order.
pub fn apply_layer(fs: &mut FsSnapshot, layer: &[u8]) -> std::io::Result<()> {
    let gzip = layer.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::GzDecoder::new(layer))
    } else {
        Box::new(layer)
    };
    let mut changes = Vec::new();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = normalize_path(&entry.path()?.to_string_lossy());
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
        let dir = if dir.is_empty() { "/" } else { dir };
        if name == ".wh..wh..opq" {
            changes.push(Change::Opaque(dir.to_string()));
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            changes.push(Change::Whiteout(join(dir, hidden)));
            continue;
        }
        if path == "/" {
            continue;
        }
        let header = entry.header().clone();
        let link = entry.link_name()?.map(|l| l.to_string_lossy().into_owned());
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => {
                changes.push(Change::Hardlink(
                    path,
                    normalize_path(&link.unwrap_or_default()),
                ));
                continue;
            }
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            _ => "other",
        };
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
        let e = Entry {
            kind,
            mode: header.mode()? & 0o7777,
            uid: header.uid()?,
            gid: header.gid()?,
            link: link.filter(|_| kind == "symlink"),
            size: if kind == "file" { header.size()? } else { 0 },
            content,
        };
        changes.push(Change::Put(path, e));
    }
    for c in &changes {
        match c {
            Change::Opaque(dir) => remove_under(fs, dir),
            Change::Whiteout(p) => {
                fs.remove(p);
                remove_under(fs, p);
            }
            _ => {}
        }
    }
    for c in changes {
        match c {
            Change::Put(path, e) => {
                if e.kind != "dir" {
                    remove_under(fs, &path);
                }
                fs.insert(path, e);
            }
            Change::Hardlink(path, target) => {
                if let Some(e) = fs.get(&target).cloned() {
                    fs.insert(path, e);
                }
            }
            Change::Opaque(_) | Change::Whiteout(_) => {}
        }
    }
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Removes everything strictly under `dir`.
fn remove_under(fs: &mut FsSnapshot, dir: &str) {
    let prefix = if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = fs
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        fs.remove(&k);
    }
}

/// The filesystem of an image: its layers applied in order.
pub fn stack<'a>(layers: impl IntoIterator<Item = &'a [u8]>) -> std::io::Result<FsSnapshot> {
    let mut fs = FsSnapshot::new();
    for l in layers {
        apply_layer(&mut fs, l)?;
    }
    Ok(fs)
}

/// `./a/b/` → `/a/b`.
pub fn normalize_path(raw: &str) -> String {
    let trimmed = raw.trim_start_matches("./").trim_matches('/');
    format!("/{trimmed}")
}

/// One difference between BuildKit and xplat, keyed by path or config field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `fs:/path` or `config:Field`.
    pub key: String,
    /// What BuildKit produced (`(absent)` when missing).
    pub buildkit: String,
    /// What xplat produced.
    pub xplat: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n      buildkit: {}\n      xplat:    {}",
            self.key, self.buildkit, self.xplat
        )
    }
}

const ABSENT: &str = "(absent)";

/// Every path whose entry differs, or that exists on one side only.
pub fn diff_fs(buildkit: &FsSnapshot, xplat: &FsSnapshot) -> Vec<Mismatch> {
    let mut keys: Vec<&String> = buildkit.keys().chain(xplat.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (a, b) = (buildkit.get(k), xplat.get(k));
            (a != b).then(|| Mismatch {
                key: format!("fs:{k}"),
                buildkit: a.map_or(ABSENT.to_string(), |e| e.to_string()),
                xplat: b.map_or(ABSENT.to_string(), |e| e.to_string()),
            })
        })
        .collect()
}

/// The config fields compared, as named in the image config's `config` object, and
/// `Platform` (`os/architecture[/variant]` of the config document, see [`platform_of`]).
pub const CONFIG_FIELDS: [&str; 13] = [
    "Platform",
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

/// The compared fields of an image config: field → normalized value. Empty values
/// (`null`, `""`, `[]`, `{}`, zero durations) are left out, so "unset" and "empty"
/// compare equal: a config document may write either for the same meaning.
pub type ConfigView = BTreeMap<String, Value>;

/// The view of an image config's `config` object.
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

/// `os/architecture[/variant]` of an image config document; arm64's `v8` is left out
/// (the same platform with or without it).
pub fn platform_of(document: &Value) -> String {
    let field = |k: &str| document.get(k).and_then(Value::as_str).unwrap_or_default();
    let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
    match variant {
        "" => format!("{os}/{arch}"),
        "v8" if arch == "arm64" => format!("{os}/{arch}"),
        v => format!("{os}/{arch}/{v}"),
    }
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

/// Every compared field that differs.
pub fn diff_config(buildkit: &ConfigView, xplat: &ConfigView) -> Vec<Mismatch> {
    CONFIG_FIELDS
        .iter()
        .filter_map(|f| {
            let (a, b) = (buildkit.get(*f), xplat.get(*f));
            (a != b).then(|| Mismatch {
                key: format!("config:{f}"),
                buildkit: a.map_or(ABSENT.to_string(), Value::to_string),
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

    fn file<'a>(path: &'a str, data: &'a [u8]) -> TarEntry<'a> {
        (path, tar::EntryType::Regular, 0o644, 0, data, None)
    }

    #[test]
    fn a_layer_gives_kind_mode_owner_link_and_content() {
        let big = vec![7u8; 1000];
        let t = tar_of(&[
            ("./", tar::EntryType::Directory, 0o755, 0, b"", None),
            ("etc/", tar::EntryType::Directory, 0o4755, 0, b"", None),
            ("etc/a", tar::EntryType::Regular, 0o640, 1000, b"hi", None),
            ("big", tar::EntryType::Regular, 0o644, 0, &big, None),
            ("l", tar::EntryType::Symlink, 0o777, 0, b"", Some("etc/a")),
            ("h", tar::EntryType::Link, 0o644, 0, b"", Some("etc/a")),
        ]);
        let s = stack([t.as_slice()]).unwrap();
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            vec!["/big", "/etc", "/etc/a", "/h", "/l"]
        );
        assert_eq!(s["/etc"].mode, 0o4755);
        assert_eq!(s["/etc/a"].uid, 1000);
        assert_eq!(s["/etc/a"].content, Content::Inline(b"hi".to_vec()));
        assert!(matches!(&s["/big"].content, Content::Digest(d) if d.starts_with("sha256:")));
        assert_eq!(s["/l"].link.as_deref(), Some("etc/a"));
        assert_eq!(s["/h"], s["/etc/a"], "a hard link reads as its file");
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let lower = tar_of(&[
            file("d/a", b"1"),
            file("d/b", b"1"),
            file("e/x", b"1"),
            file("gone", b"1"),
        ]);
        let upper = tar_of(&[
            file("d/new", b"2"),
            file("d/.wh..wh..opq", b""),
            file(".wh.gone", b""),
            file("e", b"now a file"),
        ]);
        let s = stack([lower.as_slice(), upper.as_slice()]).unwrap();
        assert_eq!(s.keys().collect::<Vec<_>>(), vec!["/d/new", "/e"]);
    }

    #[test]
    fn diff_fs_names_changed_and_one_sided_paths() {
        let a = stack([tar_of(&[file("x", b"1"), file("y", b"1")]).as_slice()]).unwrap();
        let b = stack([tar_of(&[
            ("x", tar::EntryType::Regular, 0o600, 0, b"1", None),
            file("z", b"1"),
        ])
        .as_slice()])
        .unwrap();
        let d = diff_fs(&a, &b);
        let keys: Vec<_> = d.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(keys, vec!["fs:/x", "fs:/y", "fs:/z"]);
        assert!(d[0].buildkit.contains("0644") && d[0].xplat.contains("0600"));
        assert_eq!(d[2].buildkit, ABSENT);
        assert!(diff_fs(&a, &a).is_empty());
    }

    #[test]
    fn config_view_normalizes_empty_values() {
        let bk = json!({
            "Env": ["A=1"], "Cmd": null, "Entrypoint": [], "WorkingDir": "",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Labels": {"k": "v"},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 0, "Retries": 3},
        });
        let v = config_view(&bk);
        assert_eq!(v.get("Cmd"), None);
        assert_eq!(v.get("Entrypoint"), None);
        assert_eq!(v["ExposedPorts"], json!(["53/udp", "80/tcp"]));
        assert_eq!(
            v["Healthcheck"],
            json!({"Test": ["CMD", "true"], "Retries": 3})
        );
        let x = config_view(&json!({
            "Env": ["A=1"],
            "ExposedPorts": {"53/udp": {}, "80/tcp": {}},
            "Labels": {"k": "v"},
            "Healthcheck": {"Test": ["CMD", "true"], "Retries": 3}
        }));
        assert!(diff_config(&v, &x).is_empty(), "{:?}", diff_config(&v, &x));
        let mut y = x.clone();
        y.insert("User".into(), json!("app"));
        let d = diff_config(&v, &y);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].key, "config:User");
        assert_eq!(d[0].buildkit, ABSENT);
    }
}
