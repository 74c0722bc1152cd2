//! A commit without the engine's tree walk, for fuse-overlayfs.
//!
//! fuse-overlayfs has no native diff: `POST /commit` mounts the container's layer and
//! its parent and compares the two whole trees (5 to 6 s for the 1.1 GB builder image on
//! this project's machines, against a 0.4 s `go mod download` it would save). Yet every
//! change a container made is in its upper directory, as overlayfs keeps it: new and
//! copied-up files, whiteouts (character devices 0/0) and opaque directories. When the
//! engine runs on this machine as root, that directory is readable, so the commit is done
//! here instead, the way the overlay2 driver does it natively:
//! - the upper directory becomes one layer tar in Docker's format (whiteouts as `.wh.`
//!   files, opaque directories as `.wh..wh..opq`, hard links as links, file capabilities
//!   as `security.capability`, the only xattr Docker's own layers carry);
//! - the image config is the container's image's config (read from the engine's image
//!   store, where its bytes are named by their digest) with the committed config, the
//!   new layer and a history entry, as the engine's commit writes them;
//! - `docker load` of an archive that names every layer but holds only the new one
//!   registers it; the engine reads no layer it has already.
//!
//! Like the engine's commit, the layer holds everything the container changed since it
//! was created from its image, so commits of one container do not stack.
//!
//! Written here because no crate reads an overlay upper directory into a Docker layer.

use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use futures::StreamExt;

use super::DockerEngine;
use crate::engine::error::{EngineError, Result};
use crate::engine::request::merge_commit_config;
use crate::engine::{ContainerConfig, ContainerId};
use crate::oci::digest::HashingWriter;
use crate::oci::docker_archive::PartialLoad;
use crate::registry::sha256_digest;

/// Docker's whiteout prefix, and its opaque-directory marker.
const WHITEOUT: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// What fuse-overlayfs puts beside the marker in an opaque directory: a whiteout device.
const FUSE_OPAQUE_DEVICE: &str = ".wh..opq";
/// The xattrs that say a directory is opaque (kernel overlayfs, unprivileged overlayfs,
/// fuse-overlayfs).
const OPAQUE_XATTRS: [&str; 3] = [
    "trusted.overlay.opaque",
    "user.overlay.opaque",
    "user.fuseoverlayfs.opaque",
];
/// The one xattr Docker's layer tars carry.
const CAPABILITY_XATTR: &str = "security.capability";

/// Where the engine keeps a container's layers, from its inspect.
struct Layout {
    upper: PathBuf,
    merged: PathBuf,
    lowers: Vec<PathBuf>,
    image: String,
    cmd: Vec<String>,
    container_config: ContainerConfig,
}

impl DockerEngine {
    /// Commits `id` from its upper directory when this engine allows it (see the module
    /// doc); `None` when it does not, and the caller asks the engine. [`Engine::commit`]
    /// calls it; public so tests can tell which commit they got.
    ///
    /// [`Engine::commit`]: crate::engine::Engine::commit
    pub async fn commit_from_upper(
        &self,
        id: &ContainerId,
        config: &ContainerConfig,
    ) -> Result<Option<String>> {
        let Some(store) = self.image_store.clone() else {
            return Ok(None);
        };
        let fail = |reason: String| EngineError::CommitLayer {
            id: id.0.clone(),
            reason,
        };
        let Some(layout) = self.layout(id).await? else {
            return Ok(None);
        };
        let Some(hex) = layout.image.strip_prefix("sha256:") else {
            return Ok(None);
        };
        let parent = match fs::read(store.join(hex)) {
            Ok(bytes) if sha256_digest(&bytes) == layout.image => bytes,
            _ => return Ok(None),
        };
        let merged = merge_commit_config(config, &layout.container_config);
        let docker_version = self.profile.server_version.clone();
        let container = id.0.clone();
        let (file, image_id) = tokio::task::spawn_blocking(move || {
            sync_filesystem(&layout.merged);
            let meta = ChildMeta {
                created: now_rfc3339(),
                created_by: layout.cmd.join(" "),
                container,
                docker_version,
            };
            write_archive(&layout, &parent, &merged, &meta)
        })
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))?;
        let body = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)).boxed();
        let said = self.load_image(body).await?;
        if !said.iter().any(|l| l.contains(&image_id)) {
            return Err(fail(format!("the engine loaded {said:?}, not {image_id}")));
        }
        Ok(Some(image_id))
    }

    async fn layout(&self, id: &ContainerId) -> Result<Option<Layout>> {
        let c = self
            .docker
            .inspect_container(&id.0, None)
            .await
            .map_err(|e| EngineError::CommitLayer {
                id: id.0.clone(),
                reason: format!("inspecting it: {e}"),
            })?;
        let Some(driver) = c.graph_driver else {
            return Ok(None);
        };
        if driver.name != "fuse-overlayfs" {
            return Ok(None);
        }
        let data = driver.data;
        let (Some(upper), Some(merged), Some(image)) =
            (data.get("UpperDir"), data.get("MergedDir"), c.image.clone())
        else {
            return Ok(None);
        };
        let lowers = data
            .get("LowerDir")
            .map(|l| l.split(':').map(PathBuf::from).collect())
            .unwrap_or_default();
        let container_config = c
            .config
            .as_ref()
            .and_then(|cc| serde_json::to_value(cc).ok())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let cmd = c.config.and_then(|cc| cc.cmd).unwrap_or_default();
        if !Path::new(upper).is_dir() {
            return Ok(None);
        }
        Ok(Some(Layout {
            upper: upper.into(),
            merged: merged.into(),
            lowers,
            image,
            cmd,
            container_config,
        }))
    }
}

/// The image store's config folder when commits can be made from upper directories:
/// fuse-overlayfs, an engine on this machine, not rootless (its files would be owned by
/// mapped ids), and the folder readable.
pub(super) fn image_store(
    info: &bollard::models::SystemInfo,
    shares_filesystem: bool,
) -> Option<PathBuf> {
    let driver = info.driver.as_deref()?;
    let rootless = info
        .security_options
        .iter()
        .flatten()
        .any(|o| o.contains("rootless"));
    if driver != "fuse-overlayfs" || !shares_filesystem || rootless {
        return None;
    }
    let dir = Path::new(info.docker_root_dir.as_deref()?)
        .join("image")
        .join(driver)
        .join("imagedb/content/sha256");
    fs::read_dir(&dir).ok().map(|_| dir)
}

/// Writes back what the kernel holds for the mount (a FUSE mount may cache writes), so
/// the upper directory has every byte. Best effort: a mount that is gone has nothing.
fn sync_filesystem(merged: &Path) {
    if let Ok(dir) = File::open(merged) {
        // SAFETY: syncfs on a file descriptor this function owns.
        unsafe {
            libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir));
        }
    }
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let whole = crate::oci::time::rfc3339(now.as_secs() as i64);
    format!("{}.{:09}Z", whole.trim_end_matches('Z'), now.subsec_nanos())
}

/// What the engine's commit writes into the child's config besides the filesystem.
struct ChildMeta {
    created: String,
    created_by: String,
    container: String,
    docker_version: String,
}

/// A temporary file with no name: created in `$TMPDIR` and unlinked at once, so nothing is
/// left behind however the process ends.
fn unnamed_file() -> io::Result<File> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("xplat-commit-{}-{n}.tar", std::process::id()));
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    fs::remove_file(&path)?;
    Ok(file)
}

/// Writes the `docker load` archive into an unnamed file: the layer first (its header
/// written last, once its size is known), then the config and `manifest.json`. Returns the
/// file, at its start, and the image id.
fn write_archive(
    layout: &Layout,
    parent: &[u8],
    config: &ContainerConfig,
    meta: &ChildMeta,
) -> io::Result<(File, String)> {
    let mut file = unnamed_file()?;
    file.write_all(&[0u8; 512])?;
    let hashing = HashingWriter::new(io::BufWriter::new(file));
    let (hashing, entries) = write_layer(&layout.upper, &layout.lowers, hashing)?;
    let (buffered, diff_id, size) = hashing.finish();
    let mut file = buffered.into_inner().map_err(|e| e.into_error())?;
    let diff_id = diff_id.to_string();
    let new_layer = (entries > 0).then_some(diff_id.as_str());
    let (config_bytes, count) = child_config(parent, config, new_layer, meta)?;
    let names = PartialLoad::new(&config_bytes, count);
    if new_layer.is_some() {
        file.write_all(&vec![0u8; padding(size)])?;
    } else {
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
    }
    let mut tar = tar::Builder::new(io::BufWriter::new(file));
    for (name, bytes) in [
        (names.config_name.as_str(), &config_bytes),
        ("manifest.json", &names.manifest),
    ] {
        tar.append_data(
            &mut PartialLoad::header(bytes.len() as u64),
            name,
            &bytes[..],
        )?;
    }
    let mut file = tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    if let Some(top) = names.layers.last().filter(|_| new_layer.is_some()) {
        let mut h = PartialLoad::header(size);
        h.set_path(top)?;
        h.set_cksum();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(h.as_bytes())?;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok((file, sha256_digest(&config_bytes)))
}

fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// The child image's config, as the engine's commit writes it: the parent's, with the
/// committed config, the new layer (none when the container changed nothing) and one
/// history entry. Returns it and the number of layers it lists.
fn child_config(
    parent: &[u8],
    config: &ContainerConfig,
    new_layer: Option<&str>,
    meta: &ChildMeta,
) -> io::Result<(Vec<u8>, usize)> {
    let bad = |e: serde_json::Error| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut c: serde_json::Value = serde_json::from_slice(parent).map_err(bad)?;
    let obj = c
        .as_object_mut()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a config not an object"))?;
    for k in ["author", "comment", "container_config", "id", "parent"] {
        obj.remove(k);
    }
    obj.insert("config".into(), serde_json::to_value(config).map_err(bad)?);
    obj.insert("container".into(), meta.container.clone().into());
    obj.insert("created".into(), meta.created.clone().into());
    obj.insert("docker_version".into(), meta.docker_version.clone().into());
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| serde_json::json!({"type": "layers", "diff_ids": []}));
    if rootfs["diff_ids"].as_array().is_none() {
        rootfs["diff_ids"] = serde_json::json!([]);
    }
    let ids = rootfs["diff_ids"].as_array_mut().expect("an array now");
    ids.extend(new_layer.map(serde_json::Value::from));
    let count = ids.len();
    let mut entry = serde_json::json!({"created": meta.created, "created_by": meta.created_by});
    if new_layer.is_none() {
        entry["empty_layer"] = true.into();
    }
    match obj.get_mut("history").and_then(|h| h.as_array_mut()) {
        Some(h) => h.push(entry),
        None => {
            obj.insert("history".into(), serde_json::json!([entry]));
        }
    }
    Ok((serde_json::to_vec(&c).map_err(bad)?, count))
}

/// Writes the upper directory `upper` as a Docker layer tar into `out`; `lowers` are
/// the layers below it (an opaque directory is marked only where one of them has that
/// directory: fuse-overlayfs marks every directory it creates). Returns the writer and
/// the number of entries written.
fn write_layer<W: Write>(upper: &Path, lowers: &[PathBuf], out: W) -> io::Result<(W, usize)> {
    let mut w = LayerWriter {
        tar: tar::Builder::new(out),
        lowers,
        links: HashMap::new(),
        entries: 0,
    };
    w.tar.mode(tar::HeaderMode::Complete);
    w.walk(upper, Path::new(""), true)?;
    Ok((w.tar.into_inner()?, w.entries))
}

struct LayerWriter<'l, W: Write> {
    tar: tar::Builder<W>,
    lowers: &'l [PathBuf],
    /// (device, inode) of each hard-linked file written, and its name in the layer.
    links: HashMap<(u64, u64), PathBuf>,
    entries: usize,
}

impl<W: Write> LayerWriter<'_, W> {
    /// Writes the entries of `dir` (at `rel` in the layer); `in_lower`: whether a layer
    /// below has the directory (none has what is under a directory none has).
    fn walk(&mut self, dir: &Path, rel: &Path, in_lower: bool) -> io::Result<()> {
        let mut names: Vec<OsString> = fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path)?;
            let ft = meta.file_type();
            let name_rel = rel.join(&name);
            if name == OPAQUE_MARKER {
                continue;
            }
            // A whiteout: a device 0/0, or fuse-overlayfs's `.wh.` file where it cannot make
            // devices. fuse-overlayfs also leaves one for every name removed that only it had
            // (runc's `.pivot_root` folder, a compiler's temporary files): only a whiteout of
            // a name a layer below has changes the image; the engine's tree walk sees no
            // others, and neither do these layers.
            let hidden = if ft.is_char_device() && meta.rdev() == 0 {
                Some(name.clone())
            } else if ft.is_file() && meta.len() == 0 {
                name.as_bytes()
                    .strip_prefix(WHITEOUT.as_bytes())
                    .map(|n| OsStr::from_bytes(n).to_os_string())
            } else {
                None
            };
            if let Some(hidden) = hidden {
                if name == FUSE_OPAQUE_DEVICE || !(in_lower && self.lower_has(&rel.join(&hidden))) {
                    continue;
                }
                let mut wh = OsString::from(WHITEOUT);
                wh.push(&hidden);
                let mut h = self.header(&meta);
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o600);
                h.set_size(0);
                self.append(h, &rel.join(wh), io::empty())?;
                continue;
            }
            if ft.is_socket() {
                continue;
            }
            self.capability(&path)?;
            let mut h = self.header(&meta);
            if ft.is_dir() {
                let mut named = name_rel.clone().into_os_string();
                named.push("/");
                h.set_size(0);
                self.append(h, Path::new(&named), io::empty())?;
                let below = in_lower && self.lower_has_dir(&name_rel);
                if below && self.is_opaque(&path) {
                    let mut m = self.header(&meta);
                    m.set_entry_type(tar::EntryType::Regular);
                    m.set_mode(meta.mode() & 0o777);
                    m.set_size(0);
                    self.append(m, &name_rel.join(OPAQUE_MARKER), io::empty())?;
                }
                self.walk(&path, &name_rel, below)?;
            } else if ft.is_symlink() {
                h.set_size(0);
                let target = fs::read_link(&path)?;
                self.tar.append_link(&mut h, &name_rel, target)?;
                self.entries += 1;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = self.links.get(&key).cloned() {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        self.tar.append_link(&mut h, &name_rel, first)?;
                        self.entries += 1;
                        continue;
                    }
                    self.links.insert(key, name_rel.clone());
                }
                let f = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)?;
                // The size stat gave: a file that shrank since is an error, not a short entry.
                let mut data = f.take(meta.len());
                self.append(h, &name_rel, &mut data)?;
                if data.limit() > 0 {
                    return Err(io::Error::other(format!(
                        "{} shrank while it was read",
                        path.display()
                    )));
                }
            } else {
                // Devices and FIFOs: the header says it all.
                if ft.is_char_device() || ft.is_block_device() {
                    let (major, minor) = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
                    h.set_device_major(major)?;
                    h.set_device_minor(minor)?;
                }
                h.set_size(0);
                self.append(h, &name_rel, io::empty())?;
            }
        }
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        h.set_mode(meta.mode() & 0o7777);
        h
    }

    fn append(&mut self, mut h: tar::Header, path: &Path, data: impl Read) -> io::Result<()> {
        self.tar.append_data(&mut h, path, data)?;
        self.entries += 1;
        Ok(())
    }

    /// A file's capabilities, as a PAX record before its header.
    fn capability(&mut self, path: &Path) -> io::Result<()> {
        if let Some(v) = lgetxattr(path, CAPABILITY_XATTR) {
            let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
            self.tar
                .append_pax_extensions([(key.as_str(), v.as_slice())])?;
        }
        Ok(())
    }

    fn is_opaque(&self, dir: &Path) -> bool {
        OPAQUE_XATTRS
            .iter()
            .any(|x| lgetxattr(dir, x).as_deref() == Some(b"y"))
            || dir.join(OPAQUE_MARKER).exists()
    }

    fn lower_has(&self, rel: &Path) -> bool {
        self.lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
    }

    fn lower_has_dir(&self, rel: &Path) -> bool {
        self.lowers.iter().any(|l| {
            fs::symlink_metadata(l.join(rel))
                .map(|m| m.is_dir())
                .unwrap_or(false)
        })
    }
}

/// An xattr of `path` itself (not a link's target), if set.
fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: both strings are NUL-terminated and live; the buffer's length is passed.
        let got =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if got >= 0 {
            buf.truncate(got as usize);
            return Some(buf);
        }
        if io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE) && buf.len() < 65536 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar_bytes: &[u8]) -> Vec<String> {
        tar::Archive::new(tar_bytes)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let kind = match h.entry_type() {
                    tar::EntryType::Directory => "dir".to_string(),
                    tar::EntryType::Regular => format!("file {}", h.size().unwrap()),
                    tar::EntryType::Symlink => {
                        format!("symlink {}", e.link_name().unwrap().unwrap().display())
                    }
                    tar::EntryType::Link => {
                        format!("link {}", e.link_name().unwrap().unwrap().display())
                    }
                    other => format!("{other:?}"),
                };
                format!("{} {kind}", e.path().unwrap().display())
            })
            .collect()
    }

    #[test]
    fn an_upper_directory_becomes_a_docker_layer() {
        let t = tempfile::tempdir().unwrap();
        let (upper, lower) = (t.path().join("upper"), t.path().join("lower"));
        fs::create_dir_all(upper.join("kept/sub")).unwrap();
        fs::create_dir_all(upper.join("new")).unwrap();
        fs::create_dir_all(lower.join("kept")).unwrap();
        // fuse-overlayfs marks every directory it makes opaque: only `kept`, which a
        // lower layer has, needs Docker's marker.
        for d in ["kept", "new"] {
            fs::write(upper.join(d).join(OPAQUE_MARKER), b"").unwrap();
        }
        fs::write(upper.join("kept/f"), b"four").unwrap();
        fs::hard_link(upper.join("kept/f"), upper.join("kept/sub/g")).unwrap();
        std::os::unix::fs::symlink("kept/f", upper.join("l")).unwrap();
        // fuse-overlayfs's whiteout where it cannot make a device: already Docker's form.
        // One of a name no lower layer has (runc's `.pivot_root` folder, say) is dropped.
        fs::write(upper.join(".wh.gone"), b"").unwrap();
        fs::write(lower.join("gone"), b"x").unwrap();
        fs::write(upper.join(".wh..pivot_root123"), b"").unwrap();
        fs::write(upper.join("new/.wh.absent"), b"").unwrap();
        let (out, n) = write_layer(&upper, &[lower], Vec::new()).unwrap();
        let got = entries(&out);
        assert_eq!(
            got,
            [
                ".wh.gone file 0",
                "kept/ dir",
                "kept/.wh..wh..opq file 0",
                "kept/f file 4",
                "kept/sub/ dir",
                "kept/sub/g link kept/f",
                "l symlink kept/f",
                "new/ dir",
            ]
        );
        assert_eq!(n, got.len());
        let (_, none) = write_layer(&upper.join("new"), &[], Vec::new()).unwrap();
        assert_eq!(none, 0, "a directory with only a marker changes nothing");
    }

    fn meta() -> ChildMeta {
        ChildMeta {
            created: "2026-11-28T01:02:03.000000004Z".into(),
            created_by: "/bin/sh".into(),
            container: "c0ffee".into(),
            docker_version: "20.10.24".into(),
        }
    }

    #[test]
    fn the_child_config_adds_one_layer_and_one_history_entry() {
        let parent = br#"{"architecture":"arm64","os":"linux","variant":"v8","author":"someone",
            "config":{"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
            "history":[{"created_by":"base"}]}"#;
        let config = ContainerConfig {
            env: Some(vec!["B=2".into()]),
            ..ContainerConfig::default()
        };
        let (bytes, count) = child_config(parent, &config, Some("sha256:bb"), &meta()).unwrap();
        assert_eq!(count, 2);
        let child: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            child["rootfs"]["diff_ids"],
            serde_json::json!(["sha256:aa", "sha256:bb"])
        );
        assert_eq!(child["config"], serde_json::json!({"Env": ["B=2"]}));
        assert_eq!(child["variant"], "v8");
        assert!(child.get("author").is_none());
        assert_eq!(
            child["history"][1],
            serde_json::json!({"created": meta().created, "created_by": "/bin/sh"})
        );
        let (bytes, count) = child_config(parent, &config, None, &meta()).unwrap();
        assert_eq!(count, 1);
        let empty: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            empty["rootfs"]["diff_ids"],
            serde_json::json!(["sha256:aa"])
        );
        assert_eq!(empty["history"][1]["empty_layer"], true);
    }
}
