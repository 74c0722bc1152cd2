//! What RUN steps leave in an image that the engine and BuildKit leave differently, made
//! BuildKit's when an engine-built image is exported (`export`):
//! - the mount points `/dev`, `/proc`, `/sys` ([`MOUNT_POINTS`]): BuildKit's RUN layer has
//!   them where the image has none; the engine keeps its own in the init layer;
//! - the empty file the engine makes to mount a file on (a secret, a bind of one file):
//!   BuildKit removes these stubs; the engine's commit keeps them ([`drop_mount_stubs`]).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::{AssembleError, Result};
use super::layers::LayerCache;
use crate::oci::LayerBlob;

/// What the RUN steps that made an image did, as far as the export needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTraces {
    /// A RUN made the image.
    pub ran: bool,
    /// Absolute targets of the RUNs' bind and secret mounts (`/run/secrets/ID` for a
    /// secret without one).
    pub mount_targets: BTreeSet<String>,
}

/// The folders a RUN leaves in BuildKit's image: runc makes `/dev`, `/proc` and `/sys` in
/// the rootfs to mount on when the image has none, so they land in the RUN's layer (0755,
/// root). The engine makes its own in a container's init layer, which a commit leaves out.
pub const MOUNT_POINTS: [&str; 3] = ["dev", "proc", "sys"];

/// Which of [`MOUNT_POINTS`] the stacked layers (base first; plain tar or gzip) lack.
/// Read from the top down, headers only, until each is decided.
pub fn missing_mount_points(layers: &[PathBuf]) -> Result<Vec<&'static str>> {
    // name -> present?
    let mut decided: Vec<(&'static str, bool)> = Vec::new();
    for path in layers.iter().rev() {
        if decided.len() == MOUNT_POINTS.len() {
            break;
        }
        let mut f = std::fs::File::open(path).map_err(AssembleError::io("opening", path))?;
        let mut magic = [0u8; 2];
        let gzip = f
            .read(&mut magic)
            .map_err(AssembleError::io("reading", path))?
            == 2
            && magic == [0x1f, 0x8b];
        let f = std::fs::File::open(path).map_err(AssembleError::io("opening", path))?;
        let names = if gzip {
            top_names(tar::Archive::new(flate2::read::GzDecoder::new(f)).entries())
        } else {
            top_names(tar::Archive::new(f).entries_with_seek())
        }
        .map_err(AssembleError::io("reading", path))?;
        let opaque_root = names.iter().any(|n| n == ".wh..wh..opq");
        for p in MOUNT_POINTS {
            if decided.iter().any(|(d, _)| *d == p) {
                continue;
            }
            if names.iter().any(|n| n == p) {
                decided.push((p, true));
            } else if opaque_root || names.iter().any(|n| n.strip_prefix(".wh.") == Some(p)) {
                decided.push((p, false));
            }
        }
    }
    Ok(MOUNT_POINTS
        .into_iter()
        .filter(|p| !decided.contains(&(*p, true)))
        .collect())
}

/// The first component of every path in a layer tar (`./proc/x` -> `proc`).
fn top_names<R: Read>(
    entries: std::io::Result<tar::Entries<'_, R>>,
) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries? {
        let e = e?;
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let trimmed = raw.trim_start_matches("./").trim_start_matches('/');
        if let Some(first) = trimmed
            .split('/')
            .next()
            .filter(|s| !s.is_empty() && *s != ".")
        {
            if out.last().map(String::as_str) != Some(first) {
                out.push(first.to_string());
            }
        }
    }
    Ok(out)
}

/// Whether a layer entry is a mount stub: an empty regular file, mode 0755 (as runc makes
/// it), at one of `targets`. An image's own file there would not have been replaced by a
/// stub, so only a file of exactly that shape is taken for one (a trade-off: an image that
/// ships an empty 0755 file at a mount target loses it).
fn is_stub(path: &str, header: &tar::Header, targets: &BTreeSet<String>) -> bool {
    let p = format!("/{}", path.trim_start_matches("./").trim_matches('/'));
    header.entry_type() == tar::EntryType::Regular
        && header.size().ok() == Some(0)
        && header.mode().ok().map(|m| m & 0o7777) == Some(0o755)
        && targets.contains(&p)
}

/// The layers with the engine's mount stubs at `targets` left out: each saved (plain tar)
/// layer holding one is written again without it and replaces its blob. Layers are read
/// headers only; the rest are returned as they are.
pub fn drop_mount_stubs(
    mut layers: Vec<LayerBlob>,
    saved: &[PathBuf],
    targets: &BTreeSet<String>,
    work_dir: &Path,
    cache: &LayerCache,
) -> Result<Vec<LayerBlob>> {
    if targets.is_empty() {
        return Ok(layers);
    }
    for (i, path) in saved.iter().enumerate() {
        if i >= layers.len() || is_gzip(path)? {
            continue;
        }
        let f = std::fs::File::open(path).map_err(AssembleError::io("opening", path))?;
        let mut archive = tar::Archive::new(f);
        let mut found = false;
        for e in archive
            .entries_with_seek()
            .map_err(AssembleError::io("reading", path))?
        {
            let e = e.map_err(AssembleError::io("reading", path))?;
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            if is_stub(&name, e.header(), targets) {
                found = true;
                break;
            }
        }
        if !found {
            continue;
        }
        let filtered = work_dir.join(format!("layer-{i}-without-stubs.tar"));
        write_without_stubs(path, &filtered, targets)?;
        let dest = work_dir.join(format!("layer-{i}-without-stubs.tar.gz"));
        layers[i] = LayerBlob::import_file(&filtered, &dest, cache.options()).map_err(
            AssembleError::oci("compressing a layer without mount stubs"),
        )?;
    }
    Ok(layers)
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut f = std::fs::File::open(path).map_err(AssembleError::io("opening", path))?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .map_err(AssembleError::io("reading", path))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

fn write_without_stubs(from: &Path, to: &Path, targets: &BTreeSet<String>) -> Result<()> {
    let f = std::fs::File::open(from).map_err(AssembleError::io("opening", from))?;
    let out = std::fs::File::create(to).map_err(AssembleError::io("creating", to))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(out));
    let mut archive = tar::Archive::new(f);
    for e in archive
        .entries()
        .map_err(AssembleError::io("reading", from))?
    {
        let mut e = e.map_err(AssembleError::io("reading", from))?;
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        if is_stub(&name, e.header(), targets) {
            continue;
        }
        let mut h = e.header().clone();
        // PAX records other than names (xattrs such as file capabilities) are kept; long
        // names and links are written again by the builder's own name handling.
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if let Some(exts) = e
            .pax_extensions()
            .map_err(AssembleError::io("reading", from))?
        {
            for ext in exts {
                let ext = ext.map_err(AssembleError::io("reading", from))?;
                let key = ext.key().unwrap_or_default();
                if key != "path" && key != "linkpath" && !key.is_empty() {
                    pax.push((key.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
        if !pax.is_empty() {
            builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(AssembleError::io("writing", to))?;
        }
        let link = e.link_name_bytes().map(|l| l.into_owned());
        match link {
            Some(l) if !l.is_empty() => builder
                .append_link(&mut h, &name, String::from_utf8_lossy(&l).as_ref())
                .map_err(AssembleError::io("writing", to))?,
            _ => builder
                .append_data(&mut h, &name, &mut e)
                .map_err(AssembleError::io("writing", to))?,
        }
    }
    builder
        .into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(AssembleError::io("writing", to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(dir: &Path, name: &str, paths: &[&str]) -> PathBuf {
        let mut b = tar::Builder::new(Vec::new());
        for p in paths {
            let mut h = tar::Header::new_gnu();
            let is_dir = p.ends_with('/');
            h.set_entry_type(if is_dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, p, std::io::empty()).unwrap();
        }
        let path = dir.join(name);
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        path
    }

    #[test]
    fn mount_points_missing_from_every_layer_are_the_ones_added() {
        let d = tempfile::tempdir().unwrap();
        let busybox = layer(d.path(), "0", &["bin/", "bin/sh", "etc/"]);
        let debian = layer(d.path(), "1", &["dev/", "proc/", "sys/", "usr/"]);
        let run = layer(d.path(), "2", &["tmp/", "tmp/x"]);
        let gone = layer(d.path(), "3", &[".wh.sys"]);
        assert_eq!(
            missing_mount_points(&[busybox.clone(), run.clone()]).unwrap(),
            MOUNT_POINTS
        );
        assert!(missing_mount_points(&[debian.clone(), run.clone()])
            .unwrap()
            .is_empty());
        assert_eq!(missing_mount_points(&[debian, run, gone]).unwrap(), ["sys"]);
        assert_eq!(missing_mount_points(&[]).unwrap(), MOUNT_POINTS);
    }

    #[test]
    fn only_empty_0755_files_at_mount_targets_are_dropped() {
        let d = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (p, mode, data) in [
            ("run/", 0o755, &b""[..]),
            ("run/secrets/", 0o755, b""),
            ("run/secrets/token", 0o755, b""),
            ("mnt/a.txt", 0o644, b""),
            ("etc/app/token", 0o755, b"real"),
            ("keep", 0o755, b""),
        ] {
            let mut h = tar::Header::new_gnu();
            let dir = p.ends_with('/');
            h.set_entry_type(if dir {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            });
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, p, data).unwrap();
        }
        let path = d.path().join("l.tar");
        std::fs::write(&path, b.into_inner().unwrap()).unwrap();
        let targets: BTreeSet<String> = ["/run/secrets/token", "/mnt/a.txt", "/etc/app/token"]
            .map(String::from)
            .into();
        let out = d.path().join("out.tar");
        write_without_stubs(&path, &out, &targets).unwrap();
        let names: Vec<String> = tar::Archive::new(std::fs::File::open(&out).unwrap())
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect();
        assert_eq!(
            names,
            ["run/", "run/secrets/", "mnt/a.txt", "etc/app/token", "keep"]
        );
    }
}
