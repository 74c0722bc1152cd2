//! Unit tests of `rootfs`: layers with whiteouts, and hostile layers (made byte by byte,
//! past the guards of xplat's own layer writer).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::*;
use crate::oci::LayerOptions;

enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a str, u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
}

/// A raw header with `path` and `link` written as given (no `..` check).
fn header(kind: EntryType, path: &str, link: &str, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_mtime(1_700_000_000);
    let old = h.as_old_mut();
    old.name[..path.len()].copy_from_slice(path.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    h
}

/// A gzip layer of `entries`, in order, in `dir`.
fn layer(dir: &Path, n: usize, entries: &[E]) -> LayerBlob {
    let tar_path = dir.join(format!("layer{n}.tar"));
    let mut b = tar::Builder::new(fs::File::create(&tar_path).unwrap());
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            E::Dir(p, m) => (header(EntryType::Directory, p, "", 0, *m), b""),
            E::File(p, c, m) => (
                header(EntryType::Regular, p, "", c.len() as u64, *m),
                c.as_bytes(),
            ),
            E::Symlink(p, t) => (header(EntryType::Symlink, p, t, 0, 0o777), b""),
            E::Hardlink(p, t) => (header(EntryType::Link, p, t, 0, 0o644), b""),
            E::Fifo(p) => (header(EntryType::Fifo, p, "", 0, 0o644), b""),
        };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap();
    LayerBlob::import_file(
        &tar_path,
        &dir.join(format!("layer{n}.tar.gz")),
        &LayerOptions::default(),
    )
    .unwrap()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

#[test]
fn layers_apply_in_order_with_whiteouts_and_opaque_folders() {
    let t = tempfile::tempdir().unwrap();
    let base = layer(
        t.path(),
        0,
        &[
            E::Dir("etc/", 0o755),
            E::File("etc/a", "a0", 0o644),
            E::File("etc/b", "b0", 0o644),
            E::Dir("var/", 0o755),
            E::File("var/x", "x", 0o644),
            E::Dir("keep/", 0o755),
            E::File("keep/k", "k", 0o644),
            E::Dir("gone/", 0o755),
            E::File("gone/g", "g", 0o644),
        ],
    );
    let top = layer(
        t.path(),
        1,
        &[
            E::File("etc/.wh.a", "", 0o644),
            // A whiteout hides lower layers only: `b` of this layer stays.
            E::File("etc/.wh.b", "", 0o644),
            E::File("etc/b", "b1", 0o600),
            E::File("etc/c", "c1", 0o644),
            E::File("var/.wh..wh..opq", "", 0o644),
            E::File("var/y", "y", 0o644),
            E::File(".wh.gone", "", 0o644),
        ],
    );
    let dest = t.path().join("out");
    let s = write_rootfs(&[base, top], &dest).unwrap();
    assert!(!dest.join("etc/a").exists());
    assert_eq!(read(&dest.join("etc/b")), "b1");
    assert_eq!(
        fs::metadata(dest.join("etc/b"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert_eq!(read(&dest.join("etc/c")), "c1");
    assert!(!dest.join("var/x").exists(), "the opaque folder hid x");
    assert_eq!(read(&dest.join("var/y")), "y");
    assert_eq!(read(&dest.join("keep/k")), "k");
    assert!(!dest.join("gone").exists());
    for entry in walk(&dest) {
        assert!(!entry.contains(".wh."), "whiteout written: {entry}");
    }
    assert_eq!(
        (s.files, s.dirs),
        (4, 3),
        "etc/b, etc/c, var/y, keep/k; etc, var, keep: {s:?}"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&p));
        }
    }
    out
}

#[test]
fn a_file_replacing_a_folder_takes_its_content_away() {
    let t = tempfile::tempdir().unwrap();
    let base = layer(
        t.path(),
        0,
        &[
            E::Dir("d/", 0o755),
            E::File("d/f", "f", 0o644),
            E::File("f", "x", 0o644),
        ],
    );
    // ... and a file becomes a folder when a later layer puts something under it.
    let top = layer(
        t.path(),
        1,
        &[
            E::File("d", "now a file", 0o644),
            E::File("f/inner", "i", 0o644),
        ],
    );
    let dest = t.path().join("out");
    write_rootfs(&[base, top], &dest).unwrap();
    assert_eq!(read(&dest.join("d")), "now a file");
    assert_eq!(read(&dest.join("f/inner")), "i");
}

#[test]
fn symlinks_hard_links_and_read_only_folders_are_kept() {
    let t = tempfile::tempdir().unwrap();
    let l = layer(
        t.path(),
        0,
        &[
            E::Dir("bin/", 0o555),
            E::File("bin/busybox", "#!bb", 0o755),
            E::Symlink("bin/sh", "busybox"),
            E::Symlink("bin/abs", "/bin/busybox"),
            E::Hardlink("bin/ls", "bin/busybox"),
            E::Fifo("bin/pipe"),
        ],
    );
    let dest = t.path().join("out");
    let s = write_rootfs(&[l], &dest).unwrap();
    assert_eq!(
        fs::read_link(dest.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(dest.join("bin/abs")).unwrap(),
        Path::new("/bin/busybox")
    );
    let a = fs::metadata(dest.join("bin/busybox")).unwrap();
    let b = fs::metadata(dest.join("bin/ls")).unwrap();
    assert_eq!(a.ino(), b.ino(), "a hard link");
    assert_eq!(a.permissions().mode() & 0o777, 0o755);
    assert_eq!(
        fs::metadata(dest.join("bin")).unwrap().permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(a.mtime(), 1_700_000_000);
    assert_eq!(s.skipped, 1, "the fifo");
    assert!(!dest.join("bin/pipe").exists());
    // Let the temporary folder be removed.
    fs::set_permissions(dest.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn entries_that_climb_out_are_refused_and_write_nothing_outside() {
    for hostile in ["../escape", "a/../../escape", "./../escape"] {
        let t = tempfile::tempdir().unwrap();
        let l = layer(t.path(), 0, &[E::File(hostile, "pwned", 0o644)]);
        let dest = t.path().join("out");
        let err = write_rootfs(&[l], &dest).unwrap_err();
        assert!(
            matches!(&err, OutputError::UnsafeLayerPath { path, .. } if path == hostile),
            "{hostile}: {err}"
        );
        assert!(!t.path().join("escape").exists());
    }
    // An absolute entry path is inside the image: it lands inside the destination.
    let t = tempfile::tempdir().unwrap();
    let l = layer(t.path(), 0, &[E::File("/abs/x", "in", 0o644)]);
    let dest = t.path().join("out");
    write_rootfs(&[l], &dest).unwrap();
    assert_eq!(read(&dest.join("abs/x")), "in");
}

#[test]
fn symlinks_are_followed_inside_the_destination_only() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let outside_abs = outside.display().to_string();
    let base = layer(
        t.path(),
        0,
        &[
            E::Symlink("abs", &outside_abs),
            E::Symlink("up", "../../../.."),
            E::Symlink("loop1", "loop2"),
            E::Symlink("loop2", "loop1"),
        ],
    );
    let top = layer(
        t.path(),
        1,
        &[
            E::File("abs/pwned", "1", 0o644),
            E::File("up/pwned2", "2", 0o644),
        ],
    );
    let dest = t.path().join("out");
    write_rootfs(&[base.clone(), top], &dest).unwrap();
    assert!(
        !outside.join("pwned").exists(),
        "written through an absolute symlink"
    );
    assert!(
        !t.path().join("pwned2").exists(),
        "written through a relative symlink"
    );
    // Both landed inside, where an engine chrooted at the destination would put them.
    let inside = dest.join(outside_abs.trim_start_matches('/')).join("pwned");
    assert_eq!(read(&inside), "1");
    assert_eq!(read(&dest.join("pwned2")), "2");
    // A symlink planted in the destination beforehand is followed inside it too.
    let dest2 = t.path().join("out2");
    fs::create_dir_all(&dest2).unwrap();
    std::os::unix::fs::symlink(&outside, dest2.join("etc")).unwrap();
    let l = layer(t.path(), 2, &[E::File("etc/passwd", "x", 0o644)]);
    write_rootfs(&[l], &dest2).unwrap();
    assert!(!outside.join("passwd").exists());
    // A loop is refused.
    let l = layer(t.path(), 3, &[E::File("loop1/x", "x", 0o644)]);
    let err = write_rootfs(&[base, l], &t.path().join("out3")).unwrap_err();
    assert!(err.to_string().contains("loop"), "{err}");
}

#[test]
fn a_hard_link_out_of_the_image_is_refused() {
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("secret"), "s3cret").unwrap();
    let l = layer(t.path(), 0, &[E::Hardlink("stolen", "../secret")]);
    let err = write_rootfs(&[l], &t.path().join("out")).unwrap_err();
    assert!(matches!(err, OutputError::UnsafeLayerPath { .. }), "{err}");
    assert!(!t.path().join("out/stolen").exists());
}

#[test]
fn the_tar_output_splits_by_platform_and_keeps_headers() {
    let t = tempfile::tempdir().unwrap();
    let base = layer(
        t.path(),
        0,
        &[
            E::Dir("etc/", 0o755),
            E::File("etc/a", "a", 0o640),
            E::File("etc/b", "b", 0o644),
            E::File("bin", "x", 0o755),
        ],
    );
    let top = layer(
        t.path(),
        1,
        &[
            E::File("etc/.wh.b", "", 0o644),
            E::Hardlink("etc/link", "etc/a"),
        ],
    );
    let layers = [base, top];
    let images: Vec<(Option<String>, &[LayerBlob])> = vec![
        (Some("linux_amd64".into()), &layers[..]),
        (Some("linux_arm64".into()), &layers[..1]),
    ];
    let (bytes, s) = write_rootfs_tar(&images, Vec::new()).unwrap();
    assert_eq!(s.files, 3 + 3, "{s:?}");
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(&bytes[..]);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        if name == "linux_amd64/etc/a" {
            assert_eq!(e.header().uid().unwrap(), 1000);
            assert_eq!(e.header().mode().unwrap() & 0o777, 0o640);
        }
        if name == "linux_amd64/etc/link" {
            assert_eq!(
                e.link_name().unwrap().unwrap().display().to_string(),
                "linux_amd64/etc/a"
            );
        }
        names.push(name);
    }
    for want in [
        "linux_amd64/",
        "linux_amd64/etc/",
        "linux_amd64/etc/a",
        "linux_amd64/etc/link",
        "linux_arm64/etc/b",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "linux_amd64/etc/b"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");
    // One platform: no prefix.
    let (bytes, _) = write_rootfs_tar(&[(None, &layers[..])], Vec::new()).unwrap();
    let mut ar = tar::Archive::new(&bytes[..]);
    let first: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(first.contains(&"etc/a".to_string()), "{first:?}");
}

#[test]
fn platform_folders_are_named_as_buildx_names_them() {
    use crate::platform::Platform;
    assert_eq!(
        platform_dir(&Platform::parse("linux/amd64").unwrap()),
        "linux_amd64"
    );
    assert_eq!(
        platform_dir(&Platform::parse("linux/arm/v7").unwrap()),
        "linux_arm_v7"
    );
}
