//! Unit tables for COPY/ADD rules over in-memory filesystems; each row is a case seen with
//! the engine's BuildKit (see `super::super` for the list).

use super::*;
use crate::dockerfile::{Add, Copy};
use crate::platform::Platform;
use crate::stage::fs::MemFs;

fn state() -> State {
    State::scratch(&Platform::new("linux", "amd64", ""))
}

fn copy(sources: &[&str], dest: &str) -> Copy {
    Copy {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.into(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        exclude: vec![],
        heredocs: vec![],
    }
}

fn from(sources: &[&str], dest: &str) -> Copy {
    Copy {
        from: Some("src".into()),
        ..copy(sources, dest)
    }
}

/// (path, kind char, mode, uid, gid) of every entry.
fn rows(f: &Files) -> Vec<(String, char, u32, u64, u64)> {
    f.entries
        .iter()
        .map(|e| {
            let k = match e.kind {
                EntryKind::Dir => 'd',
                EntryKind::File { .. } => 'f',
                EntryKind::Symlink { .. } => 'l',
                EntryKind::Hardlink { .. } => 'h',
            };
            (
                e.path.trim_start_matches('/').to_string(),
                k,
                e.mode,
                e.uid,
                e.gid,
            )
        })
        .collect()
}

fn row(p: &str, k: char, mode: u32, uid: u64, gid: u64) -> (String, char, u32, u64, u64) {
    (p.to_string(), k, mode, uid, gid)
}

fn run(st: &State, i: Instruction, src: &MemFs, dest: &MemFs) -> Result<Files> {
    let inputs = CopyInputs {
        context: None,
        source: Some(src),
        dest,
        downloads: &[],
        created_mtime: 7,
    };
    futures::executor::block_on(files(st, &i, &inputs))
}

/// The source stage of the `fromdir` case: `/out` 0700 1001:1002.
fn out_stage() -> MemFs {
    MemFs::new()
        .dir("/out", 0o700, 1001, 1002)
        .file("/out/a", "1", 0o600, 1001, 1002)
        .dir("/out/sub", 0o755, 1001, 1002)
        .file("/out/sub/b", "2", 0o644, 1001, 1002)
}

#[test]
fn from_a_directory_creates_the_destination_0755_root_or_chown_never_the_sources() {
    let src = out_stage();
    let dest = MemFs::new();
    let f = run(
        &state(),
        Instruction::Copy(from(&["/out"], "/dst")),
        &src,
        &dest,
    )
    .unwrap();
    assert_eq!(
        rows(&f),
        [
            row("dst", 'd', 0o755, 0, 0),
            row("dst/a", 'f', 0o600, 1001, 1002),
            row("dst/sub", 'd', 0o755, 1001, 1002),
            row("dst/sub/b", 'f', 0o644, 1001, 1002),
        ]
    );
    assert_eq!(f.created, BTreeSet::from(["dst".to_string()]));
    let mut c = from(&["/out"], "/dst3");
    c.chown = Some("9:9".into());
    let f = run(&state(), Instruction::Copy(c), &src, &dest).unwrap();
    assert!(
        rows(&f).iter().all(|r| (r.3, r.4) == (9, 9)),
        "{:?}",
        rows(&f)
    );
    assert_eq!(rows(&f)[0], row("dst3", 'd', 0o755, 9, 9));
    // An existing destination directory is left alone (not listed).
    let dest = MemFs::new().dir("/dst", 0o700, 5, 5);
    let f = run(
        &state(),
        Instruction::Copy(from(&["/out/sub/"], "/dst")),
        &src,
        &dest,
    )
    .unwrap();
    assert_eq!(rows(&f), [row("dst/b", 'f', 0o644, 1001, 1002)]);
    assert!(f.created.is_empty());
}

#[test]
fn a_file_goes_to_dest_or_into_a_directory_and_parents_are_created() {
    let src = out_stage();
    let dest = MemFs::new().dir("/usr/bin", 0o755, 0, 0);
    type Row<'a> = (&'a str, char, u32, u64, u64);
    let table: &[(&str, &str, &[Row])] = &[
        (
            "/out/a",
            "/x/y/",
            &[
                ("x", 'd', 0o755, 0, 0),
                ("x/y", 'd', 0o755, 0, 0),
                ("x/y/a", 'f', 0o600, 1001, 1002),
            ],
        ),
        ("/out/a", "/renamed", &[("renamed", 'f', 0o600, 1001, 1002)]),
        // An existing directory without a trailing slash: into it.
        (
            "/out/a",
            "/usr/bin",
            &[("usr/bin/a", 'f', 0o600, 1001, 1002)],
        ),
    ];
    for (s, d, want) in table {
        let f = run(&state(), Instruction::Copy(from(&[s], d)), &src, &dest).unwrap();
        let want: Vec<_> = want.iter().map(|w| row(w.0, w.1, w.2, w.3, w.4)).collect();
        assert_eq!(rows(&f), want, "{s} -> {d}");
    }
}

#[test]
fn created_parents_take_the_chown_owner_and_existing_ones_keep_theirs() {
    // The `tmp` case: /tmp is 1777 in the base and must not be listed (a layer sink writes
    // it with the base's metadata); /new and /new/deep are created 0755 7:8.
    let src = MemFs::new().file("/f", "x", 0o644, 0, 0);
    let dest = MemFs::new().dir("/tmp", 0o1777, 0, 0);
    let f = run(
        &state(),
        Instruction::Copy(from(&["/f"], "/tmp/a/b/f")),
        &src,
        &dest,
    )
    .unwrap();
    assert_eq!(
        rows(&f),
        [
            row("tmp/a", 'd', 0o755, 0, 0),
            row("tmp/a/b", 'd', 0o755, 0, 0),
            row("tmp/a/b/f", 'f', 0o644, 0, 0)
        ]
    );
    assert_eq!(
        f.created,
        BTreeSet::from(["tmp/a".into(), "tmp/a/b".into()])
    );
    let mut c = from(&["/f"], "/new/deep/f");
    c.chown = Some("7:8".into());
    let f = run(&state(), Instruction::Copy(c), &src, &dest).unwrap();
    assert_eq!(
        rows(&f),
        [
            row("new", 'd', 0o755, 7, 8),
            row("new/deep", 'd', 0o755, 7, 8),
            row("new/deep/f", 'f', 0o644, 7, 8)
        ]
    );
}

#[test]
fn chown_names_come_from_the_destinations_passwd_and_group() {
    let passwd = "root:x:0:0::/:/bin/sh\napp2:x:2000:3000::/:/bin/sh\n";
    let group = "root:x:0:\ngrp3:x:3000:\nstaff:x:50:\n";
    let dest = MemFs::new().file("/etc/passwd", passwd, 0o644, 0, 0).file(
        "/etc/group",
        group,
        0o644,
        0,
        0,
    );
    let src = MemFs::new().file("/a", "a", 0o644, 0, 0);
    let table = [
        ("app2", (2000, 3000)),
        ("2000", (2000, 2000)),
        ("app2:0", (2000, 0)),
        ("app2:staff", (2000, 50)),
        ("1:2", (1, 2)),
    ];
    for (chown, (u, g)) in table {
        let mut c = from(&["/a"], "/a");
        c.chown = Some(chown.into());
        let f = run(&state(), Instruction::Copy(c), &src, &dest).unwrap();
        assert_eq!(rows(&f), [row("a", 'f', 0o644, u, g)], "{chown}");
    }
    for (chown, want) in [
        ("nobody", "user"),
        ("app2:nogroup", "group"),
        (":1", "invalid"),
    ] {
        let mut c = from(&["/a"], "/a");
        c.chown = Some(chown.into());
        let err = run(&state(), Instruction::Copy(c), &src, &dest).unwrap_err();
        let ok = match want {
            "user" => matches!(err, StageError::UnknownUser { .. }),
            "group" => matches!(err, StageError::UnknownGroup { .. }),
            _ => matches!(err, StageError::InvalidChown { .. }),
        };
        assert!(ok, "{chown}: {err}");
    }
}

#[test]
fn chmod_applies_to_files_and_dirs_and_must_be_octal() {
    let mut c = from(&["/out"], "/d");
    c.chmod = Some("750".into());
    let f = run(&state(), Instruction::Copy(c), &out_stage(), &MemFs::new()).unwrap();
    assert_eq!(rows(&f)[0].2, 0o755, "the created destination stays 0755");
    assert!(rows(&f)[1..].iter().all(|r| r.2 == 0o750));
    for bad in ["rwx", "8", "77777", ""] {
        assert!(
            matches!(parse_chmod(bad), Err(StageError::InvalidChmod { .. })),
            "{bad}"
        );
    }
}

#[test]
fn wildcards_match_per_component_follow_links_and_merge_directories() {
    // The `wild` case.
    let src = MemFs::new()
        .file("/o/a.txt", "1", 0o644, 0, 0)
        .file("/o/b.txt", "2", 0o644, 0, 0)
        .file("/o/c.bin", "3", 0o644, 0, 0)
        .symlink("/o/l.txt", "a.txt")
        .file("/o/d.txt/in", "4", 0o644, 0, 0);
    let f = run(
        &state(),
        Instruction::Copy(from(&["/o/*.txt"], "/w/")),
        &src,
        &MemFs::new(),
    )
    .unwrap();
    let paths: Vec<_> = rows(&f).into_iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(
        paths,
        [
            ("w".into(), 'd'),
            ("w/a.txt".into(), 'f'),
            ("w/b.txt".into(), 'f'),
            ("w/in".into(), 'f'),
            ("w/l.txt".into(), 'f'),
        ]
    );
    // A pattern in a middle component, and one that matches nothing (copies nothing).
    let f = run(
        &state(),
        Instruction::Copy(from(&["/*/in"], "/m/")),
        &src,
        &MemFs::new(),
    );
    assert!(
        f.unwrap().entries.is_empty(),
        "/*/in matches nothing at depth 2"
    );
    let f = run(
        &state(),
        Instruction::Copy(from(&["/o/*/in"], "/m/")),
        &src,
        &MemFs::new(),
    )
    .unwrap();
    assert_eq!(rows(&f).last().unwrap().0, "m/in");
    // Several matches need a directory destination.
    let err = run(
        &state(),
        Instruction::Copy(from(&["/o/*.txt"], "/file")),
        &src,
        &MemFs::new(),
    );
    assert!(matches!(err, Err(StageError::DestNotDirectory { .. })));
}

#[test]
fn symlink_sources_are_followed_and_missing_ones_are_named() {
    // The `symsrc` case.
    let src = MemFs::new()
        .file("/real/f", "r", 0o644, 0, 0)
        .symlink("/link", "/real")
        .symlink("/flink", "real/f")
        .dir("/d", 0o755, 0, 0)
        .symlink("/d/inner", "../real/f");
    let f = run(
        &state(),
        Instruction::Copy(from(&["/link"], "/L")),
        &src,
        &MemFs::new(),
    )
    .unwrap();
    assert_eq!(
        rows(&f),
        [row("L", 'd', 0o755, 0, 0), row("L/f", 'f', 0o644, 0, 0)]
    );
    let f = run(
        &state(),
        Instruction::Copy(from(&["/flink"], "/F")),
        &src,
        &MemFs::new(),
    )
    .unwrap();
    assert_eq!(rows(&f), [row("F", 'f', 0o644, 0, 0)]);
    let f = run(
        &state(),
        Instruction::Copy(from(&["/flink"], "/x/")),
        &src,
        &MemFs::new(),
    )
    .unwrap();
    assert_eq!(rows(&f)[1].0, "x/flink", "named after the written source");
    // Symlinks inside a copied directory stay symlinks.
    let f = run(
        &state(),
        Instruction::Copy(from(&["/d"], "/D")),
        &src,
        &MemFs::new(),
    )
    .unwrap();
    assert_eq!(rows(&f)[1], row("D/inner", 'l', 0o777, 0, 0));
    let err = run(
        &state(),
        Instruction::Copy(from(&["/nope"], "/n")),
        &src,
        &MemFs::new(),
    );
    assert!(matches!(err, Err(StageError::SourceNotFound { .. })));
    let looped = MemFs::new().symlink("/a", "/b").symlink("/b", "/a");
    let err = run(
        &state(),
        Instruction::Copy(from(&["/a"], "/n")),
        &looped,
        &MemFs::new(),
    );
    assert!(matches!(err, Err(StageError::SymlinkLoop { .. })));
}

#[test]
fn destinations_resolve_against_workdir() {
    let src = MemFs::new().file("/a", "a", 0o644, 0, 0);
    let mut st = state();
    st.apply(&Instruction::Workdir("/app".into())).unwrap();
    let dest = MemFs::new().dir("/app", 0o755, 0, 0);
    for (d, want) in [
        (".", "app/a"),
        ("sub/", "app/sub/a"),
        ("x", "app/x"),
        ("/abs", "abs"),
    ] {
        let f = run(&st, Instruction::Copy(from(&["/a"], d)), &src, &dest).unwrap();
        assert_eq!(rows(&f).last().unwrap().0, want, "{d}");
    }
}

#[test]
fn heredocs_and_urls_are_files_with_their_modes() {
    let df =
        crate::dockerfile::parse("FROM scratch\nCOPY <<one <<two /etc/\n1\none\n2\ntwo\n").unwrap();
    let i = df.stages[0].instructions[0].node.clone();
    let f = run(
        &state(),
        i,
        &MemFs::new(),
        &MemFs::new().dir("/etc", 0o755, 0, 0),
    )
    .unwrap();
    assert_eq!(
        rows(&f),
        [
            row("etc/one", 'f', 0o644, 0, 0),
            row("etc/two", 'f', 0o644, 0, 0)
        ]
    );
    let add = Add {
        sources: vec!["https://example.com/dl/tool.tgz?x=1".into()],
        dest: "/opt/".into(),
        chown: None,
        chmod: None,
        link: false,
        exclude: vec![],
        checksum: None,
        keep_git_dir: false,
        unpack: None,
        heredocs: vec![],
    };
    let downloads = [Download {
        url: add.sources[0].clone(),
        data: Bytes::from_static(b"gz"),
        mtime: 99,
    }];
    let dest = MemFs::new();
    let inputs = CopyInputs {
        context: None,
        source: None,
        dest: &dest,
        downloads: &downloads,
        created_mtime: 0,
    };
    let f = futures::executor::block_on(files(&state(), &Instruction::Add(add.clone()), &inputs))
        .unwrap();
    assert_eq!(
        rows(&f),
        [
            row("opt", 'd', 0o755, 0, 0),
            row("opt/tool.tgz", 'f', 0o600, 0, 0)
        ]
    );
    assert_eq!(f.entries[1].mtime, 99);
    let mut git = add.clone();
    git.sources = vec!["git://host/repo".into()];
    let err = futures::executor::block_on(files(&state(), &Instruction::Add(git), &inputs));
    assert!(matches!(err, Err(StageError::GitSource { .. })));
    let mut missing = add;
    missing.sources = vec!["https://example.com/other".into()];
    let err = futures::executor::block_on(files(&state(), &Instruction::Add(missing), &inputs));
    assert!(matches!(err, Err(StageError::MissingDownload { .. })));
}

#[test]
fn workdir_creates_missing_directories_owned_by_the_user() {
    let passwd = "app2:x:2000:3000::/:/bin/sh\n";
    let dest = MemFs::new()
        .dir("/w", 0o700, 0, 0)
        .file("/etc/passwd", passwd, 0o644, 0, 0);
    let f = futures::executor::block_on(workdir_files("/w/x/y", Some("app2"), &dest, 0)).unwrap();
    assert_eq!(
        rows(&f),
        [
            row("w/x", 'd', 0o755, 2000, 3000),
            row("w/x/y", 'd', 0o755, 2000, 3000)
        ]
    );
    let f = futures::executor::block_on(workdir_files("/w", Some("1000:1000"), &dest, 0)).unwrap();
    assert!(f.entries.is_empty(), "an existing WORKDIR is left alone");
    let f = futures::executor::block_on(workdir_files("/a", None, &MemFs::new(), 0)).unwrap();
    assert_eq!(rows(&f), [row("a", 'd', 0o755, 0, 0)]);
}

#[test]
fn context_copies_resolve_names_and_skip_existing_parents() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    std::fs::write(dir.path().join("a"), "a").unwrap();
    let ctx = BuildContext::open(dir.path(), &dir.path().join("Dockerfile")).unwrap();
    let dest = MemFs::new().dir("/tmp", 0o1777, 0, 0).file(
        "/etc/passwd",
        "app:x:1234:1234::/:/bin/sh\n",
        0o644,
        0,
        0,
    );
    let mut c = copy(&["a"], "/tmp/x/a");
    c.chown = Some("app".into());
    let inputs = CopyInputs {
        context: Some(&ctx),
        source: None,
        dest: &dest,
        downloads: &[],
        created_mtime: 0,
    };
    let f = futures::executor::block_on(files(&state(), &Instruction::Copy(c), &inputs)).unwrap();
    assert_eq!(
        rows(&f),
        [
            row("tmp/x", 'd', 0o755, 1234, 1234),
            row("tmp/x/a", 'f', 0o644, 1234, 1234)
        ]
    );
    assert!(matches!(
        &f.entries[1].kind,
        EntryKind::File {
            source: crate::oci::FileSource::Host(_)
        }
    ));
    assert_eq!(
        source_kind(&Instruction::Copy(copy(&["a"], "/"))),
        Some(SourceKind::Context)
    );
}

/// A destination or WORKDIR through a symlink lands where the link points (BuildKit
/// resolves them in the rootfs), never as a folder written over the link.
#[test]
fn destinations_and_workdirs_follow_symlinks_in_the_destination() {
    let src = MemFs::new().file("/a", "a", 0o644, 0, 0);
    let dest = MemFs::new()
        .dir("/real", 0o755, 0, 0)
        .dir("/real/sub", 0o755, 0, 0)
        .symlink("/lnk", "/real")
        .symlink("/real/rel", "sub")
        .symlink("/up", "real/../real/sub");
    let f = run(
        &state(),
        Instruction::Copy(from(&["/a"], "/lnk/")),
        &src,
        &dest,
    )
    .unwrap();
    assert_eq!(rows(&f), [row("real/a", 'f', 0o644, 0, 0)]);
    let f = run(
        &state(),
        Instruction::Copy(from(&["/a"], "/lnk/rel/new/")),
        &src,
        &dest,
    )
    .unwrap();
    assert_eq!(
        rows(&f),
        [
            row("real/sub/new", 'd', 0o755, 0, 0),
            row("real/sub/new/a", 'f', 0o644, 0, 0)
        ]
    );
    let f = futures::executor::block_on(workdir_files("/lnk/wd", None, &dest, 0)).unwrap();
    assert_eq!(rows(&f), [row("real/wd", 'd', 0o755, 0, 0)]);
    let r = |p: &str| futures::executor::block_on(resolve_in(&dest, p)).unwrap();
    assert_eq!(r("/up/x"), "/real/sub/x");
    assert_eq!(r("/"), "/");
    assert_eq!(r("/missing/lnk"), "/missing/lnk");
    let looped = MemFs::new().symlink("/a", "/b").symlink("/b", "/a");
    assert!(matches!(
        futures::executor::block_on(resolve_in(&looped, "/a/x")),
        Err(StageError::SymlinkLoop { .. })
    ));
}
