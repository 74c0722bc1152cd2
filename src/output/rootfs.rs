//! The `local` and `tar` outputs: an image's filesystem as a folder or as one tar, made
//! from its layers applied in order, as an engine would unpack them, with whiteouts.
//!
//! Two passes over the layers. The first computes the merged view: for every path, the
//! entry (layer, position) that wins. A whiteout `.wh.NAME` hides `NAME` and what is under
//! it in *lower* layers; an opaque whiteout `.wh..wh..opq` hides its folder's lower
//! content; a non-folder replacing a folder hides what was under it. The second pass
//! writes only the winners, so nothing is written and then deleted.
//!
//! Paths are guarded: an entry whose path has `..`, or is absolute after trimming, is
//! refused; when a folder is written, each of its parent components that is a symlink is
//! followed *inside the destination* (an absolute target starts again at the destination,
//! `..` stops there), as containerd's `fs.RootPath` does, so no entry and no symlink of
//! the image can make xplat write outside the destination. Symlinks themselves are
//! written as they are (their targets are data).
//!
//! What is not kept in a folder: ownership (files belong to the user running xplat, as
//! with `docker buildx build -o type=local`), extended attributes, device nodes and fifos
//! (counted in [`RootfsSummary::skipped`]). The tar keeps every header as the layer has it.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde::Serialize;
use tar::EntryType;

use super::error::{OutputError, Result};
use crate::oci::layer::{OPAQUE_WHITEOUT, WHITEOUT_PREFIX};
use crate::oci::media_type::Compression;
use crate::oci::LayerBlob;

/// How many symlinks one path may go through before it is refused (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RootfsSummary {
    /// Regular files (hard links included).
    pub files: u64,
    /// Folders.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Entries a folder cannot hold (devices, fifos): not written.
    pub skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Hardlink,
    Other,
}

impl Kind {
    fn of(t: EntryType) -> Kind {
        match t {
            EntryType::Directory => Kind::Dir,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Link => Kind::Hardlink,
            _ => Kind::Other,
        }
    }
}

/// The entry a path comes from in the merged view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Winner {
    layer: usize,
    index: usize,
    kind: Kind,
}

/// An entry's path inside the image: `./a/b/` → `a/b`; `None` for the root itself.
/// `..` anywhere and NUL are refused.
fn clean(raw: &[u8], layer: usize) -> Result<Option<String>> {
    let unsafe_path = |why: &'static str| OutputError::UnsafeLayerPath {
        path: String::from_utf8_lossy(raw).into_owned(),
        layer,
        why,
    };
    let text = std::str::from_utf8(raw).map_err(|_| unsafe_path("it is not UTF-8"))?;
    if text.contains('\0') {
        return Err(unsafe_path("it holds a NUL byte"));
    }
    let mut parts = Vec::new();
    for c in text.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(unsafe_path("it climbs out with `..`")),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

fn name_of(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, n)| n)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Paths strictly under `dir` ("" is the root) whose entry comes from a layer below `layer`
/// (or from any layer when `layer` is `None`).
fn descendants(view: &BTreeMap<String, Winner>, dir: &str, layer: Option<usize>) -> Vec<String> {
    let below = |w: &Winner| layer.map_or(true, |l| w.layer < l);
    if dir.is_empty() {
        return view
            .iter()
            .filter(|(_, w)| below(w))
            .map(|(k, _)| k.clone())
            .collect();
    }
    let prefix = format!("{dir}/");
    view.range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, w)| below(w))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Opens a layer's tar stream, decompressed.
fn open_layer(layer: &LayerBlob) -> Result<Box<dyn Read + '_>> {
    let raw = layer.open().map_err(OutputError::oci(format!(
        "reading layer {}",
        layer.digest()
    )))?;
    match layer.compression() {
        Compression::Gzip => Ok(Box::new(GzDecoder::new(raw))),
        Compression::None => Ok(raw),
        Compression::Zstd => Err(OutputError::UnsupportedLayer {
            digest: layer.digest().to_string(),
            why: "zstd layers cannot be unpacked yet",
        }),
    }
}

fn bad_archive(layer: &LayerBlob) -> impl Fn(io::Error) -> OutputError + '_ {
    move |e| OutputError::BadLayer {
        digest: layer.digest().to_string(),
        reason: e.to_string(),
    }
}

/// Pass one: the merged view of `layers`.
fn merged_view(layers: &[LayerBlob]) -> Result<BTreeMap<String, Winner>> {
    let mut view: BTreeMap<String, Winner> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        let mut archive = tar::Archive::new(open_layer(layer)?);
        let bad = bad_archive(layer);
        for (j, entry) in archive.entries().map_err(&bad)?.enumerate() {
            let entry = entry.map_err(&bad)?;
            let Some(path) = clean(&entry.path_bytes(), i)? else {
                continue;
            };
            let name = name_of(&path);
            if name == OPAQUE_WHITEOUT {
                for k in descendants(&view, parent_of(&path), Some(i)) {
                    view.remove(&k);
                }
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                // `.wh..wh.*` other than the opaque marker is aufs bookkeeping.
                if hidden.is_empty() || hidden.starts_with(".wh.") {
                    continue;
                }
                let hidden = join(parent_of(&path), hidden);
                if view.get(&hidden).is_some_and(|w| w.layer < i) {
                    view.remove(&hidden);
                }
                for k in descendants(&view, &hidden, Some(i)) {
                    view.remove(&k);
                }
                continue;
            }
            let kind = Kind::of(entry.header().entry_type());
            // A parent that is a file in a lower layer becomes a folder.
            let mut dir = parent_of(&path);
            while !dir.is_empty() {
                if view
                    .get(dir)
                    .is_some_and(|w| !matches!(w.kind, Kind::Dir | Kind::Symlink))
                {
                    view.remove(dir);
                }
                dir = parent_of(dir);
            }
            // A non-folder replacing a folder takes what was under it away.
            if kind != Kind::Dir && view.get(&path).is_some_and(|w| w.kind == Kind::Dir) {
                for k in descendants(&view, &path, None) {
                    view.remove(&k);
                }
            }
            view.insert(
                path,
                Winner {
                    layer: i,
                    index: j,
                    kind,
                },
            );
        }
    }
    Ok(view)
}

/// Writes the filesystem of `layers` (base first) into the folder `dest` (made if missing).
pub fn write_rootfs(layers: &[LayerBlob], dest: &Path) -> Result<RootfsSummary> {
    let view = merged_view(layers)?;
    fs::create_dir_all(dest).map_err(OutputError::io("creating", dest))?;
    let mut summary = RootfsSummary::default();
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let mut archive = tar::Archive::new(open_layer(layer)?);
        let bad = bad_archive(layer);
        for (j, entry) in archive.entries().map_err(&bad)?.enumerate() {
            let mut entry = entry.map_err(&bad)?;
            let Some(path) = clean(&entry.path_bytes(), i)? else {
                continue;
            };
            let Some(w) = view.get(&path).filter(|w| w.layer == i && w.index == j) else {
                continue;
            };
            let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
            if w.kind == Kind::Other {
                summary.skipped += 1;
                continue;
            }
            let parent = resolve_dir(dest, parent_of(&path))?;
            let at = parent.join(name_of(&path));
            match w.kind {
                Kind::Dir => {
                    match fs::symlink_metadata(&at) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => {
                            fs::remove_file(&at).map_err(OutputError::io("replacing", &at))?;
                            fs::create_dir(&at).map_err(OutputError::io("creating", &at))?;
                        }
                        Err(_) => fs::create_dir(&at).map_err(OutputError::io("creating", &at))?,
                    }
                    dir_modes.push((at, mode));
                    summary.dirs += 1;
                }
                Kind::File => {
                    clear(&at)?;
                    let mut f = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&at)
                        .map_err(OutputError::io("creating", &at))?;
                    io::copy(&mut entry, &mut f).map_err(OutputError::io("writing", &at))?;
                    if let Ok(mtime) = entry.header().mtime() {
                        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
                        let _ = f.set_modified(t);
                    }
                    f.set_permissions(fs::Permissions::from_mode(mode))
                        .map_err(OutputError::io("setting the mode of", &at))?;
                    summary.files += 1;
                }
                Kind::Symlink => {
                    let target = entry
                        .link_name()
                        .map_err(&bad)?
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    clear(&at)?;
                    std::os::unix::fs::symlink(&target, &at)
                        .map_err(OutputError::io("creating the symlink", &at))?;
                    summary.symlinks += 1;
                }
                Kind::Hardlink => {
                    let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
                    let target = clean(&raw, i)?.ok_or_else(|| OutputError::UnsafeLayerPath {
                        path: path.clone(),
                        layer: i,
                        why: "it is a hard link to the root",
                    })?;
                    let from = resolve_dir(dest, parent_of(&target))?.join(name_of(&target));
                    clear(&at)?;
                    fs::hard_link(&from, &at).map_err(OutputError::io("hard-linking", &at))?;
                    summary.files += 1;
                }
                Kind::Other => unreachable!("skipped above"),
            }
        }
    }
    // Folder modes last, deepest first: a read-only folder must not stop its own content.
    dir_modes.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (p, mode) in dir_modes {
        fs::set_permissions(&p, fs::Permissions::from_mode(mode))
            .map_err(OutputError::io("setting the mode of", &p))?;
    }
    Ok(summary)
}

/// Removes whatever is at `at` (not following a symlink there).
fn clear(at: &Path) -> Result<()> {
    match fs::symlink_metadata(at) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(at).map_err(OutputError::io("replacing", at)),
        Ok(_) => fs::remove_file(at).map_err(OutputError::io("replacing", at)),
        Err(_) => Ok(()),
    }
}

/// The real folder for `rel` under `root`: each component that is a symlink is followed
/// inside `root` (absolute targets restart at `root`, `..` stops at it); missing folders
/// are made; a file in the way is replaced by a folder.
fn resolve_dir(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut stack: Vec<String> = Vec::new();
    let mut todo: VecDeque<String> = rel.split('/').map(String::from).collect();
    let mut hops = 0;
    let here = |stack: &[String]| stack.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let p = here(&stack).join(&c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(OutputError::UnsafeLayerPath {
                        path: rel.to_string(),
                        layer: 0,
                        why: "its symlinks loop",
                    });
                }
                let target = fs::read_link(&p).map_err(OutputError::io("reading", &p))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    stack.clear();
                }
                for part in target.split('/').rev() {
                    todo.push_front(part.to_string());
                }
            }
            Ok(m) if m.is_dir() => stack.push(c),
            Ok(_) => {
                fs::remove_file(&p).map_err(OutputError::io("replacing", &p))?;
                fs::create_dir(&p).map_err(OutputError::io("creating", &p))?;
                stack.push(c);
            }
            Err(_) => {
                fs::create_dir(&p).map_err(OutputError::io("creating", &p))?;
                stack.push(c);
            }
        }
    }
    Ok(here(&stack))
}

/// Writes the filesystems of `images` into one tar: each under `prefix/` when a prefix is
/// given (the platform split: `linux_amd64/`, ...), at the top otherwise. Headers (owner,
/// mode, mtime) are kept as the layers have them.
pub fn write_rootfs_tar<W: Write>(
    images: &[(Option<String>, &[LayerBlob])],
    out: W,
) -> Result<(W, RootfsSummary)> {
    let mut builder = tar::Builder::new(out);
    let mut summary = RootfsSummary::default();
    let tar_err = |e: io::Error| OutputError::Io {
        action: "writing",
        path: PathBuf::from("the tar output"),
        source: e,
    };
    for (prefix, layers) in images {
        let view = merged_view(layers)?;
        let at = |p: &str| match prefix {
            Some(pre) => format!("{pre}/{p}"),
            None => p.to_string(),
        };
        if let Some(pre) = prefix {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            builder
                .append_data(&mut h, format!("{pre}/"), io::empty())
                .map_err(tar_err)?;
        }
        for (i, layer) in layers.iter().enumerate() {
            let mut archive = tar::Archive::new(open_layer(layer)?);
            let bad = bad_archive(layer);
            for (j, entry) in archive.entries().map_err(&bad)?.enumerate() {
                let entry = entry.map_err(&bad)?;
                let Some(path) = clean(&entry.path_bytes(), i)? else {
                    continue;
                };
                let Some(w) = view.get(&path).filter(|w| w.layer == i && w.index == j) else {
                    continue;
                };
                let mut h = entry.header().clone();
                match w.kind {
                    Kind::Hardlink => {
                        let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
                        let target = clean(&raw, i)?.unwrap_or_default();
                        builder
                            .append_link(&mut h, at(&path), at(&target))
                            .map_err(tar_err)?;
                        summary.files += 1;
                    }
                    Kind::Symlink => {
                        let target = entry
                            .link_name()
                            .map_err(&bad)?
                            .map(|t| t.into_owned())
                            .unwrap_or_default();
                        builder
                            .append_link(&mut h, at(&path), target)
                            .map_err(tar_err)?;
                        summary.symlinks += 1;
                    }
                    Kind::Dir => {
                        builder
                            .append_data(&mut h, format!("{}/", at(&path)), io::empty())
                            .map_err(tar_err)?;
                        summary.dirs += 1;
                    }
                    Kind::File => {
                        builder
                            .append_data(&mut h, at(&path), entry)
                            .map_err(tar_err)?;
                        summary.files += 1;
                    }
                    // A tar can hold devices and fifos: they are kept as the layer has them.
                    Kind::Other => {
                        builder
                            .append_data(&mut h, at(&path), entry)
                            .map_err(tar_err)?;
                    }
                }
            }
        }
    }
    let out = builder.into_inner().map_err(tar_err)?;
    Ok((out, summary))
}

/// `--output type=local,dest=DIR`: the filesystem of every image of `index` (its layers
/// must be local, see `deliver::materialize`), in `DIR/<os>_<arch>[_<variant>]/` when
/// there are several, in `DIR` itself when there is one (buildx's platform split).
pub fn write_local(index: &crate::oci::ImageIndex, dest: &Path) -> Result<RootfsSummary> {
    let images = index.images();
    let mut total = RootfsSummary::default();
    for (p, image) in images {
        let dir = if images.len() > 1 {
            dest.join(platform_dir(p))
        } else {
            dest.to_path_buf()
        };
        let s = write_rootfs(image.layers(), &dir)?;
        total.files += s.files;
        total.dirs += s.dirs;
        total.symlinks += s.symlinks;
        total.skipped += s.skipped;
    }
    Ok(total)
}

/// `--output type=tar,dest=FILE`: one tar of every image's filesystem, split by platform
/// as [`write_local`] splits folders.
pub fn write_tar_file(index: &crate::oci::ImageIndex, dest: &Path) -> Result<RootfsSummary> {
    let images = index.images();
    let split = images.len() > 1;
    let list: Vec<(Option<String>, &[LayerBlob])> = images
        .iter()
        .map(|(p, i)| (split.then(|| platform_dir(p)), i.layers()))
        .collect();
    let f = fs::File::create(dest).map_err(OutputError::io("creating", dest))?;
    let (w, summary) = write_rootfs_tar(&list, io::BufWriter::new(f))?;
    w.into_inner()
        .map_err(|e| OutputError::Io {
            action: "writing",
            path: dest.to_path_buf(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(OutputError::io("writing", dest))?;
    Ok(summary)
}

/// The folder (or tar prefix) of one platform when several are written: buildx's
/// platform-split name, `linux/arm/v7` → `linux_arm_v7`.
pub fn platform_dir(platform: &crate::platform::Platform) -> String {
    crate::assemble::show(platform).replace('/', "_")
}

#[cfg(test)]
#[path = "rootfs_tests.rs"]
mod tests;
