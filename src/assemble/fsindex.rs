//! A metadata index of an image's filesystem, from its layers' tar headers (each layer read
//! once and its index cached by layer digest), merged with whiteouts into one view. The
//! assembler asks it what BuildKit would see in the base: existing directories and their
//! mode and owner (so a COPY layer writes `/tmp` as the base has it, 1777), `/etc/passwd`
//! and `/etc/group` for `--chown` by name, and, for `COPY --from` an image or an assembled
//! stage, the files themselves (read back from the layers on demand).
//!
//! Entries written by the job so far are laid over it ([`FsView::apply_entries`]), so a later
//! step sees what an earlier one wrote (`COPY passwd /etc/` then `COPY --chown=app`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::oci::layer::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::oci::media_type::Compression;
use crate::oci::{EntryKind, FileSource, LayerBlob, LayerEntry};
use crate::stage::fs::{resolve_parents, FsResult};
use crate::stage::{DestFs, FsKind, FsStat, SourceFs};

/// Files whose bytes the index keeps (what `--chown` by name and USER need).
const INLINE: [&str; 2] = ["etc/passwd", "etc/group"];
/// Bump when the record format changes: old cache files are then ignored.
const INDEX_VERSION: &str = "v1";

/// One tar header of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rec {
    /// Normalized path (no leading `/`).
    path: String,
    /// `d` dir, `f` file, `l` symlink, `h` hardlink, `w` whiteout, `o` opaque whiteout.
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    /// Symlink or hardlink target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    link: String,
    /// The bytes of small well-known files (`INLINE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Vec<u8>>,
}

/// Where a file's bytes are.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    None,
    /// In layer `n` of the view, under this member path.
    Layer(usize, String),
    Bytes(Bytes),
    Host(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    stat: FsStat,
    content: Content,
}

/// The merged filesystem of a list of layers (plus entries laid over them).
#[derive(Debug, Clone, Default)]
pub struct FsView {
    nodes: BTreeMap<String, Node>,
    layers: Vec<LayerBlob>,
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> crate::stage::FsError {
    move |e| format!("{what}: {e}").into()
}

/// Opens a local layer blob's uncompressed tar stream.
fn open_tar(layer: &LayerBlob) -> FsResult<Box<dyn Read + '_>> {
    let raw = layer
        .open()
        .map_err(|e| -> crate::stage::FsError { e.into() })?;
    match layer.compression() {
        Compression::Gzip => Ok(Box::new(flate2::read::GzDecoder::new(raw))),
        Compression::None => Ok(raw),
        Compression::Zstd => Err(format!(
            "layer {}: zstd layers cannot be read by the assembler",
            layer.digest()
        )
        .into()),
    }
}

/// Reads (or loads from `cache`) the header index of one local layer.
fn layer_index(layer: &LayerBlob, cache: Option<&Path>) -> FsResult<Vec<Rec>> {
    let cached = cache.map(|c| {
        c.join("fsindex")
            .join(format!("{}-{INDEX_VERSION}.json", layer.digest().hex()))
    });
    if let Some(p) = &cached {
        if let Some(recs) = std::fs::read(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            return Ok(recs);
        }
    }
    let what = format!("reading the headers of layer {}", layer.digest());
    let mut ar = tar::Archive::new(open_tar(layer)?);
    let mut recs = Vec::new();
    for entry in ar.entries().map_err(io_err(what.clone()))? {
        let mut e = entry.map_err(io_err(what.clone()))?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Ok(path) = crate::oci::layer::normalize_path(&raw) else {
            continue; // the root itself, or an unsafe name: nothing to index
        };
        let h = e.header().clone();
        let name = path.rsplit('/').next().unwrap_or("");
        let t = h.entry_type();
        let kind = if name == OPAQUE_WHITEOUT {
            'o'
        } else if name.starts_with(WHITEOUT_PREFIX) {
            'w'
        } else if t.is_dir() {
            'd'
        } else if t.is_symlink() {
            'l'
        } else if t.is_hard_link() {
            'h'
        } else if t.is_file() || t == tar::EntryType::Continuous {
            'f'
        } else {
            continue; // devices and fifos
        };
        let link = e
            .link_name()
            .ok()
            .flatten()
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let data = if kind == 'f' && INLINE.contains(&path.as_str()) {
            let mut d = Vec::new();
            e.read_to_end(&mut d).map_err(io_err(what.clone()))?;
            Some(d)
        } else {
            None
        };
        recs.push(Rec {
            path,
            kind,
            mode: h.mode().unwrap_or(0) & 0o7777,
            uid: h.uid().unwrap_or(0) as u32,
            gid: h.gid().unwrap_or(0) as u32,
            mtime: h.mtime().unwrap_or(0) as i64,
            link,
            data,
        });
    }
    if let Some(p) = cached {
        // The cache is an optimisation: a failed write only costs a re-read next time.
        let _ = std::fs::create_dir_all(p.parent().expect("has a parent"))
            .and_then(|_| std::fs::write(&p, serde_json::to_vec(&recs).unwrap_or_default()));
    }
    Ok(recs)
}

impl FsView {
    /// The view of `layers` (their blobs must be local: see [`super::base::BlobFetcher`]),
    /// reading each layer's headers once (cached by digest under `cache`).
    pub fn from_layers(layers: &[LayerBlob], cache: Option<&Path>) -> FsResult<FsView> {
        let mut view = FsView::default();
        for layer in layers {
            let recs = layer_index(layer, cache)?;
            let n = view.layers.len();
            view.layers.push(layer.clone());
            view.apply_recs(n, recs);
        }
        Ok(view)
    }

    fn remove_tree(&mut self, abs: &str) {
        self.nodes.remove(abs);
        self.remove_children(abs);
    }

    fn remove_children(&mut self, abs: &str) {
        let prefix = format!("{}/", abs.trim_end_matches('/'));
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
    }

    fn apply_recs(&mut self, layer: usize, recs: Vec<Rec>) {
        let parent_of = |p: &str| {
            p.rsplit_once('/')
                .map_or(String::new(), |(d, _)| d.to_string())
        };
        for r in recs.iter().filter(|r| matches!(r.kind, 'w' | 'o')) {
            let dir = parent_of(&r.path);
            if r.kind == 'o' {
                self.remove_children(&format!("/{dir}"));
            } else {
                let name = &r.path.rsplit('/').next().unwrap_or("")[WHITEOUT_PREFIX.len()..];
                let gone = if dir.is_empty() {
                    format!("/{name}")
                } else {
                    format!("/{dir}/{name}")
                };
                self.remove_tree(&gone);
            }
        }
        for r in recs.into_iter().filter(|r| !matches!(r.kind, 'w' | 'o')) {
            let abs = format!("/{}", r.path);
            let (kind, content) = match r.kind {
                'd' => (FsKind::Dir, Content::None),
                'l' => (
                    FsKind::Symlink {
                        target: r.link.clone(),
                    },
                    Content::None,
                ),
                'h' => {
                    let target = crate::oci::layer::normalize_path(&r.link).unwrap_or_default();
                    (FsKind::File, Content::Layer(layer, target))
                }
                _ => match r.data {
                    Some(d) => (FsKind::File, Content::Bytes(d.into())),
                    None => (FsKind::File, Content::Layer(layer, r.path.clone())),
                },
            };
            if kind != FsKind::Dir {
                self.remove_children(&abs);
            }
            let stat = FsStat {
                kind,
                mode: r.mode,
                owner: Some((r.uid, r.gid)),
                mtime: r.mtime,
            };
            self.nodes.insert(abs, Node { stat, content });
        }
    }

    /// Lays entries a step wrote over the view (missing parents as 0755 root directories,
    /// as an unpacker makes them).
    pub fn apply_entries(&mut self, entries: &[LayerEntry]) {
        for e in entries {
            let Ok(path) = crate::oci::layer::normalize_path(&e.path) else {
                continue;
            };
            let mut parent = path.as_str();
            while let Some((d, _)) = parent.rsplit_once('/') {
                self.nodes.entry(format!("/{d}")).or_insert_with(|| Node {
                    stat: FsStat::dir(0o755, 0, 0),
                    content: Content::None,
                });
                parent = d;
            }
            let (kind, content) = match &e.kind {
                EntryKind::Dir => (FsKind::Dir, Content::None),
                EntryKind::Symlink { target } => (
                    FsKind::Symlink {
                        target: target.clone(),
                    },
                    Content::None,
                ),
                EntryKind::File {
                    source: FileSource::Bytes(b),
                } => (FsKind::File, Content::Bytes(b.clone())),
                EntryKind::File {
                    source: FileSource::Host(p),
                } => (FsKind::File, Content::Host(p.clone())),
                EntryKind::Hardlink { target } => {
                    let t = format!(
                        "/{}",
                        crate::oci::layer::normalize_path(target).unwrap_or_default()
                    );
                    let content = self
                        .nodes
                        .get(&t)
                        .map_or(Content::None, |n| n.content.clone());
                    (FsKind::File, content)
                }
            };
            let abs = format!("/{path}");
            if kind != FsKind::Dir {
                self.remove_children(&abs);
            }
            let stat = FsStat {
                kind,
                mode: e.mode,
                owner: Some((e.uid as u32, e.gid as u32)),
                mtime: e.mtime,
            };
            self.nodes.insert(abs, Node { stat, content });
        }
    }

    fn resolve(&self, path: &str) -> String {
        resolve_parents(path, |p| self.nodes.get(p).map(|n| n.stat.kind.clone()))
    }

    /// lstat with intermediate symlinks followed.
    pub fn stat_path(&self, path: &str) -> Option<FsStat> {
        let p = self.resolve(path);
        if p == "/" {
            return Some(FsStat::dir(0o755, 0, 0));
        }
        self.nodes.get(&p).map(|n| n.stat.clone())
    }

    /// The bytes of the files at these absolute paths, reading each needed layer once.
    fn contents(&self, paths: &BTreeSet<String>) -> FsResult<BTreeMap<String, Bytes>> {
        let mut out = BTreeMap::new();
        let mut by_layer: BTreeMap<usize, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for p in paths {
            match self.nodes.get(p).map(|n| &n.content) {
                Some(Content::Bytes(b)) => {
                    out.insert(p.clone(), b.clone());
                }
                Some(Content::Host(h)) => {
                    let data =
                        std::fs::read(h).map_err(io_err(format!("reading {}", h.display())))?;
                    out.insert(p.clone(), data.into());
                }
                Some(Content::Layer(n, member)) => by_layer
                    .entry(*n)
                    .or_default()
                    .entry(member.clone())
                    .or_default()
                    .push(p.clone()),
                _ => {}
            }
        }
        for (n, wanted) in by_layer {
            let layer = &self.layers[n];
            let what = format!("reading layer {}", layer.digest());
            let mut ar = tar::Archive::new(open_tar(layer)?);
            for entry in ar.entries().map_err(io_err(what.clone()))? {
                let mut e = entry.map_err(io_err(what.clone()))?;
                let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let Ok(member) = crate::oci::layer::normalize_path(&raw) else {
                    continue;
                };
                if let Some(targets) = wanted.get(&member) {
                    let mut d = Vec::new();
                    e.read_to_end(&mut d).map_err(io_err(what.clone()))?;
                    let d = Bytes::from(d);
                    for t in targets {
                        out.insert(t.clone(), d.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    fn tar_of(&self, path: &str) -> FsResult<Bytes> {
        let real = self.resolve(path);
        let root = self
            .stat_path(&real)
            .ok_or_else(|| -> crate::stage::FsError { format!("{path}: not found").into() })?;
        let base = real.rsplit('/').next().unwrap_or("").to_string();
        let mut members: Vec<(String, FsStat, String)> =
            vec![(base.clone(), root.clone(), real.clone())];
        if root.kind == FsKind::Dir {
            let prefix = if real == "/" {
                "/".to_string()
            } else {
                format!("{real}/")
            };
            for (k, n) in self.nodes.range(prefix.clone()..) {
                let Some(rest) = k.strip_prefix(&prefix) else {
                    break;
                };
                members.push((format!("{base}/{rest}"), n.stat.clone(), k.clone()));
            }
        }
        let files: BTreeSet<String> = members
            .iter()
            .filter(|m| m.1.kind == FsKind::File)
            .map(|m| m.2.clone())
            .collect();
        let data = self.contents(&files)?;
        let mut b = tar::Builder::new(Vec::new());
        let what = format!("archiving {path}");
        for (name, stat, abs) in members {
            let mut h = tar::Header::new_gnu();
            h.set_mode(stat.mode);
            let (uid, gid) = stat.owner.unwrap_or((0, 0));
            h.set_uid(uid.into());
            h.set_gid(gid.into());
            h.set_mtime(stat.mtime.max(0) as u64);
            let name = if name.is_empty() {
                ".".to_string()
            } else {
                name
            };
            let r = match &stat.kind {
                FsKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, format!("{name}/"), std::io::empty())
                }
                FsKind::Symlink { target } => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, &name, target)
                }
                FsKind::File => {
                    let d = data.get(&abs).cloned().unwrap_or_default();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    b.append_data(&mut h, &name, &d[..])
                }
            };
            r.map_err(io_err(what.clone()))?;
        }
        Ok(b.into_inner().map_err(io_err(what))?.into())
    }

    fn children(&self, path: &str) -> Vec<String> {
        let real = self.resolve(path);
        let prefix = if real == "/" {
            "/".to_string()
        } else {
            format!("{real}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| k.strip_prefix(&prefix))
            .filter(|rest| !rest.contains('/'))
            .map(str::to_string)
            .collect()
    }
}

impl DestFs for FsView {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        Box::pin(async move { Ok(self.stat_path(path)) })
    }

    fn read_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<Bytes>>> {
        Box::pin(async move {
            let mut p = self.resolve(path);
            for _ in 0..40 {
                match self.nodes.get(&p).map(|n| &n.stat.kind) {
                    Some(FsKind::Symlink { target }) => {
                        p = self.resolve(&crate::stage::fs::link_target(&p, target))
                    }
                    Some(FsKind::File) => {
                        let set = BTreeSet::from([p.clone()]);
                        return Ok(self.contents(&set)?.remove(&p));
                    }
                    _ => return Ok(None),
                }
            }
            Ok(None)
        })
    }
}

impl SourceFs for FsView {
    fn stat<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Option<FsStat>>> {
        Box::pin(async move { Ok(self.stat_path(path)) })
    }

    fn read_dir<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Vec<String>>> {
        Box::pin(async move { Ok(self.children(path)) })
    }

    fn archive<'a>(&'a self, path: &'a str) -> BoxFuture<'a, FsResult<Bytes>> {
        Box::pin(async move { self.tar_of(path) })
    }
}

#[cfg(test)]
#[path = "fsindex_tests.rs"]
mod tests;
