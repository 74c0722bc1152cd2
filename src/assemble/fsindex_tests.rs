//! The merged view of layers: whiteouts, opaque directories, metadata, contents, the cache.

use super::*;
use crate::oci::LayerOptions;

fn layer(entries: &[LayerEntry]) -> LayerBlob {
    LayerBlob::build(entries, &LayerOptions::default()).unwrap()
}

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    futures::executor::block_on(f)
}

fn base_layers() -> Vec<LayerBlob> {
    vec![
        layer(&[
            LayerEntry::dir("tmp", 0o1777),
            LayerEntry::dir("etc", 0o755),
            LayerEntry::file("etc/passwd", &b"app:x:1000:1001::/:/bin/sh\n"[..], 0o644),
            LayerEntry::dir("old", 0o755),
            LayerEntry::file("old/a", &b"a"[..], 0o644),
            LayerEntry::dir("opq", 0o700).owned_by(5, 6),
            LayerEntry::file("opq/lower", &b"l"[..], 0o644),
            LayerEntry::symlink("bin", "usr/bin"),
            LayerEntry::file("usr/bin/sh", &b"#!"[..], 0o755),
        ]),
        layer(&[
            LayerEntry::whiteout("old"),
            // A layer lists the parents it writes under with their metadata (as BuildKit's
            // diffs and the assembler's layers do).
            LayerEntry::dir("opq", 0o700).owned_by(5, 6),
            LayerEntry::opaque("opq"),
            LayerEntry::file("opq/upper", &b"u"[..], 0o600),
            LayerEntry::file("big", &b"content of big"[..], 0o640).owned_by(7, 8),
        ]),
    ]
}

#[test]
fn layers_merge_with_whiteouts_and_keep_metadata() {
    let view = FsView::from_layers(&base_layers(), None).unwrap();
    let tmp = view.stat_path("/tmp").unwrap();
    assert_eq!((tmp.kind, tmp.mode), (FsKind::Dir, 0o1777));
    assert!(
        view.stat_path("/old").is_none(),
        "whiteout removes the tree"
    );
    assert!(view.stat_path("/old/a").is_none());
    assert!(
        view.stat_path("/opq/lower").is_none(),
        "opaque hides the lower layer"
    );
    assert!(
        view.stat_path("/opq/upper").is_some(),
        "but not its own layer"
    );
    assert_eq!(view.stat_path("/opq").unwrap().owner, Some((5, 6)));
    // Intermediate symlinks are followed, the last one is not.
    assert_eq!(view.stat_path("/bin/sh").unwrap().mode, 0o755);
    assert!(matches!(
        view.stat_path("/bin").unwrap().kind,
        FsKind::Symlink { .. }
    ));
    let passwd = block(DestFs::read_file(&view, "/etc/passwd"))
        .unwrap()
        .unwrap();
    assert!(passwd.starts_with(b"app:"));
    assert_eq!(
        block(DestFs::read_file(&view, "/big")).unwrap().unwrap(),
        &b"content of big"[..],
        "read back from the layer"
    );
}

#[test]
fn archive_is_like_get_archive_and_listing_is_sorted() {
    let view = FsView::from_layers(&base_layers(), None).unwrap();
    assert_eq!(
        block(view.read_dir("/")).unwrap(),
        ["big", "bin", "etc", "opq", "tmp", "usr"]
    );
    let tar = block(view.archive("/opq")).unwrap();
    let mut names = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let mut d = String::new();
        e.read_to_string(&mut d).unwrap();
        names.push((
            e.path().unwrap().display().to_string(),
            e.header().mode().unwrap(),
            d,
        ));
    }
    assert_eq!(
        names,
        [
            ("opq/".into(), 0o700, String::new()),
            ("opq/upper".into(), 0o600, "u".into())
        ]
    );
}

#[test]
fn entries_written_later_are_seen_and_the_index_is_cached_by_digest() {
    let cache = tempfile::tempdir().unwrap();
    let layers = base_layers();
    let mut view = FsView::from_layers(&layers, Some(cache.path())).unwrap();
    view.apply_entries(&[LayerEntry::file("/new/dir/f", &b"x"[..], 0o600).owned_by(3, 3)]);
    assert_eq!(view.stat_path("/new").unwrap().mode, 0o755);
    assert_eq!(view.stat_path("/new/dir/f").unwrap().owner, Some((3, 3)));
    let index = cache
        .path()
        .join("fsindex")
        .join(format!("{}-{INDEX_VERSION}.json", layers[0].digest().hex()));
    assert!(index.exists());
    // A second view reads the cached index (the blob is not needed for headers, only bytes).
    let again = FsView::from_layers(&layers, Some(cache.path())).unwrap();
    assert_eq!(again.stat_path("/tmp").unwrap().mode, 0o1777);
    let registry_only = LayerBlob::from_registry(
        layers[0].descriptor().clone(),
        layers[0].diff_id(),
        "example.com/x",
    )
    .unwrap();
    assert!(FsView::from_layers(std::slice::from_ref(&registry_only), Some(cache.path())).is_ok());
    let no_cache = FsView::from_layers(&[registry_only], None).unwrap_err();
    assert!(no_cache.to_string().contains("example.com/x"), "{no_cache}");
}
