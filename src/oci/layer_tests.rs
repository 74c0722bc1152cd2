//! Layer tars: deterministic bytes, implicit parents, whiteouts, path normalization.

use super::*;
use flate2::read::GzDecoder;

fn list(blob: &LayerBlob) -> Vec<(String, u8, u32, u64, u64, String)> {
    let BlobSource::Bytes(b) = blob.source() else {
        panic!("in memory")
    };
    let mut ar = tar::Archive::new(GzDecoder::new(&b[..]));
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                String::from_utf8(e.path_bytes().to_vec()).unwrap(),
                h.entry_type().as_byte(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
                link,
            )
        })
        .collect()
}

#[test]
fn entries_are_sorted_with_parents_and_modes_kept() {
    let entries = vec![
        LayerEntry::file("/usr/bin/app", &b"bin"[..], 0o4755)
            .owned_by(1000, 1000)
            .modified_at(50),
        LayerEntry::dir("etc", 0o700).modified_at(10),
        LayerEntry::file("etc/secret", &b"s"[..], 0o600),
        LayerEntry::whiteout("etc/old"),
        LayerEntry::symlink("bin", "usr/bin"),
    ];
    let blob = LayerBlob::build(&entries, &LayerOptions::default()).unwrap();
    let got = list(&blob);
    let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "bin",
            "etc/",
            "etc/.wh.old",
            "etc/secret",
            "usr/",
            "usr/bin/",
            "usr/bin/app"
        ]
    );
    assert_eq!(got[1].2, 0o700);
    assert_eq!(got[3].2, 0o600);
    assert_eq!((got[6].2, got[6].3, got[6].4), (0o4755, 1000, 50));
    assert_eq!((got[0].1, got[0].5.as_str()), (b'2', "usr/bin"));
    assert_eq!(got[4].2, 0o755, "implicit parent");
}

#[test]
fn mtime_is_clamped_to_source_date_epoch() {
    let entries = vec![LayerEntry::file("a", &b"x"[..], 0o644).modified_at(2_000_000_000)];
    let opts = LayerOptions {
        source_date_epoch: Some(1_000),
        ..Default::default()
    };
    let blob = LayerBlob::build(&entries, &opts).unwrap();
    assert_eq!(list(&blob)[0].4, 1_000);
    let unclamped = LayerBlob::build(&entries, &LayerOptions::default()).unwrap();
    assert_eq!(list(&unclamped)[0].4, 2_000_000_000);
}

#[test]
fn hardlinks_point_to_the_first_in_order() {
    let entries = vec![
        LayerEntry::file("z/file", &b"data"[..], 0o644),
        LayerEntry::hardlink("a/link", "z/file"),
    ];
    let got = list(&LayerBlob::build(&entries, &LayerOptions::default()).unwrap());
    let a = got.iter().find(|g| g.0 == "a/link").unwrap();
    let z = got.iter().find(|g| g.0 == "z/file").unwrap();
    assert_eq!(a.1, b'0', "first occurrence is the regular file");
    assert_eq!((z.1, z.5.as_str()), (b'1', "a/link"));
    let missing = vec![LayerEntry::hardlink("l", "nope")];
    assert!(matches!(
        LayerBlob::build(&missing, &LayerOptions::default()),
        Err(OciError::HardlinkTarget { .. })
    ));
}

#[test]
fn unsafe_paths_are_rejected() {
    for p in ["../x", "a/../../b", "a\0b", "/", "", "./.."] {
        let r = LayerBlob::build(
            &[LayerEntry::file(p, &b""[..], 0o644)],
            &LayerOptions::default(),
        );
        assert!(matches!(r, Err(OciError::UnsafePath { .. })), "{p:?}");
    }
    let dup = [LayerEntry::dir("a", 0o755), LayerEntry::dir("/a/", 0o755)];
    assert!(matches!(
        LayerBlob::build(&dup, &LayerOptions::default()),
        Err(OciError::DuplicateEntry { .. })
    ));
    let under_file = [
        LayerEntry::file("a", &b""[..], 0o644),
        LayerEntry::file("a/b", &b""[..], 0o644),
    ];
    assert!(LayerBlob::build(&under_file, &LayerOptions::default()).is_err());
}

#[test]
fn empty_layer_has_the_well_known_diff_id_and_is_stable() {
    let a = LayerBlob::build(&[], &LayerOptions::default()).unwrap();
    let b = LayerBlob::build(&[], &LayerOptions::default()).unwrap();
    assert_eq!(
        a.diff_id().to_string(),
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
    assert_eq!(a, b);
}

#[test]
fn host_files_are_streamed_and_symlinks_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, b"hello").unwrap();
    let from_host = LayerBlob::build(
        &[LayerEntry::host_file("f", &f, 0o644)],
        &LayerOptions::default(),
    )
    .unwrap();
    let from_mem = LayerBlob::build(
        &[LayerEntry::file("f", &b"hello"[..], 0o644)],
        &LayerOptions::default(),
    )
    .unwrap();
    assert_eq!(from_host.digest(), from_mem.digest());
    #[cfg(unix)]
    {
        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let r = LayerBlob::build(
            &[LayerEntry::host_file("f", &l, 0o644)],
            &LayerOptions::default(),
        );
        assert!(matches!(r, Err(OciError::HostFile { .. })));
    }
}

#[test]
fn import_file_agrees_with_build() {
    let entries = vec![LayerEntry::file("x", &b"1234"[..], 0o644)];
    let opts = LayerOptions::default();
    let built = LayerBlob::build(&entries, &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tar, _) = write_plain_tar(&entries);
    let plain = dir.path().join("layer.tar");
    std::fs::write(&plain, &tar).unwrap();
    let imported = LayerBlob::import_file(&plain, &dir.path().join("out.gz"), &opts).unwrap();
    assert_eq!(imported.diff_id(), built.diff_id());
    assert_eq!(imported.digest(), built.digest());
    let gz = dir.path().join("layer.gz");
    let BlobSource::Bytes(b) = built.source() else {
        panic!()
    };
    std::fs::write(&gz, b).unwrap();
    let again = LayerBlob::import_file(&gz, &dir.path().join("unused"), &opts).unwrap();
    assert_eq!(
        (again.diff_id(), again.digest()),
        (built.diff_id(), built.digest())
    );
}

#[test]
fn a_plain_tar_lists_no_parent_the_caller_did_not() {
    // Extracted over a folder `COPY --chown=7:8` made, an implicit root-owned `owned/`
    // would take it back to root (issue 9); a layer still lists it.
    let entries = vec![LayerEntry::file("owned/b", &b"b"[..], 0o644)];
    let tar = super::write_plain_tar(&entries, &LayerOptions::default(), Vec::new()).unwrap();
    let names = |tar: &[u8]| -> Vec<String> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    };
    assert_eq!(names(&tar), ["owned/b"]);
    let (layer, _) = write_plain_tar(&entries);
    assert_eq!(names(&layer), ["owned/", "owned/b"]);
}

fn write_plain_tar(entries: &[LayerEntry]) -> (Vec<u8>, Digest) {
    let blob = LayerBlob::build(entries, &LayerOptions::default()).unwrap();
    let BlobSource::Bytes(b) = blob.source() else {
        panic!()
    };
    let mut out = Vec::new();
    GzDecoder::new(&b[..]).read_to_end(&mut out).unwrap();
    (out, blob.diff_id())
}
