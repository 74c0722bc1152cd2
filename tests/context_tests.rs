//! The `context` module against real directories: walking, escapes, COPY/ADD resolution
//! (expectations from the Dockerfile reference's COPY and ADD sections), hashing and tar.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use xplat::context::copy::{without_existing, PasswdNames, UnknownImage};
use xplat::context::{
    hash_sources, write_tar, BuildContext, ContextError, CopyEntry, CopySpec, EntryKind, Origin,
};

/// A context directory built from (path, content) pairs; a path ending in '/' is a dir.
struct Ctx {
    dir: tempfile::TempDir,
}

impl Ctx {
    fn new(files: &[(&str, &str)]) -> Ctx {
        let dir = tempfile::tempdir().unwrap();
        for (p, content) in files {
            let full = dir.path().join(p);
            if p.ends_with('/') {
                fs::create_dir_all(&full).unwrap();
            } else {
                fs::create_dir_all(full.parent().unwrap()).unwrap();
                fs::write(&full, content).unwrap();
            }
        }
        Ctx { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn link(&self, at: &str, target: &str) {
        symlink(target, self.path().join(at)).unwrap();
    }
    fn open(&self) -> BuildContext {
        BuildContext::open(self.path(), &self.path().join("Dockerfile")).unwrap()
    }
}

fn spec(sources: &[&str], dest: &str) -> CopySpec {
    CopySpec {
        sources: sources.iter().map(|s| s.to_string()).collect(),
        dest: dest.to_string(),
        workdir: "/".to_string(),
        ..Default::default()
    }
}

fn copy(ctx: &BuildContext, s: &CopySpec) -> Result<Vec<CopyEntry>, ContextError> {
    ctx.resolve_copy(s, &UnknownImage)
}

/// Image paths of the non-created entries (what the copy itself writes).
fn written(entries: &[CopyEntry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.origin != Origin::Created)
        .map(|e| e.path.clone())
        .collect()
}

fn all_paths(entries: &[CopyEntry]) -> Vec<String> {
    entries.iter().map(|e| e.path.clone()).collect()
}

// ---- walking and .dockerignore ----

#[test]
fn walk_respects_dockerignore_with_exceptions() {
    let c = Ctx::new(&[
        ("Dockerfile", "FROM scratch\n"),
        (
            ".dockerignore",
            "Dockerfile\n*.log\ndocs\n!docs/README.md\nnode_modules\n",
        ),
        ("a.log", "x"),
        ("src/main.go", "package main"),
        ("docs/README.md", "readme"),
        ("docs/internal.md", "secret"),
        ("node_modules/x/index.js", "js"),
    ]);
    let ctx = c.open();
    let paths: Vec<String> = ctx
        .listing()
        .unwrap()
        .iter()
        .map(|e| e.path.clone())
        .collect();
    assert_eq!(
        paths,
        vec![
            ".dockerignore",
            "docs",
            "docs/README.md",
            "src",
            "src/main.go"
        ]
    );
    // The Dockerfile is excluded from COPY but still readable by xplat.
    assert_eq!(ctx.read_dockerfile().unwrap(), "FROM scratch\n");
    assert!(matches!(
        copy(&ctx, &spec(&["Dockerfile"], "/x")),
        Err(ContextError::NoSourceMatch { .. })
    ));
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let c = Ctx::new(&[
        ("Dockerfile", "FROM scratch\n"),
        ("Dockerfile.dockerignore", "b\n"),
        (".dockerignore", "a\n"),
        ("a", "1"),
        ("b", "2"),
    ]);
    let ctx = c.open();
    assert!(ctx.listing().unwrap().get("a").is_some());
    assert!(ctx.listing().unwrap().get("b").is_none());
}

#[test]
fn symlinks_are_listed_not_followed() {
    let c = Ctx::new(&[("Dockerfile", ""), ("data/f.txt", "f")]);
    c.link("etc", "/etc");
    c.link("data/up", "../..");
    let ctx = c.open();
    let l = ctx.listing().unwrap();
    assert!(
        matches!(&l.get("etc").unwrap().kind, xplat::context::SourceKind::Symlink { target } if target == "/etc")
    );
    // Nothing below the links was walked.
    assert!(l
        .iter()
        .all(|e| !e.path.starts_with("etc/") && !e.path.starts_with("data/up/")));
}

// ---- escapes ----

#[test]
fn escape_attempts_are_refused_with_the_path() {
    let c = Ctx::new(&[("Dockerfile", ""), ("in/file", "x")]);
    c.link("etc", "/etc");
    c.link("passwd", "/etc/passwd");
    c.link("outdir", "../");
    c.link("in/deep", "../../..");
    let ctx = c.open();
    for src in [
        "../x",
        "in/../../x",
        "etc/passwd",
        "passwd",
        "outdir/anything",
        "in/deep/etc",
        "etc",
    ] {
        let err = copy(&ctx, &spec(&[src], "/dst/")).unwrap_err();
        assert!(
            matches!(err, ContextError::EscapesContext { .. }),
            "{src}: {err}"
        );
        assert!(err.to_string().contains(src), "error names the path: {err}");
    }
    // A wildcard that matches an escaping link is refused too.
    assert!(matches!(
        copy(&ctx, &spec(&["pass*"], "/dst/")),
        Err(ContextError::EscapesContext { .. })
    ));
}

#[test]
fn symlinks_inside_the_context() {
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("real/a.txt", "a"),
        ("real/sub/b.txt", "b"),
    ]);
    c.link("alias", "real");
    c.link("real/link.txt", "a.txt");
    c.link("top.txt", "real/a.txt");
    let ctx = c.open();
    // A named symlink to a directory is followed inside the context: its contents are copied.
    let e = copy(&ctx, &spec(&["alias"], "/d/")).unwrap();
    assert_eq!(
        written(&e),
        vec!["/d/a.txt", "/d/link.txt", "/d/sub", "/d/sub/b.txt"]
    );
    // Symlinks inside a copied directory stay symlinks.
    let link = e.iter().find(|x| x.path == "/d/link.txt").unwrap();
    assert_eq!(
        link.kind,
        EntryKind::Symlink {
            target: "a.txt".into()
        }
    );
    // A named symlink to a file copies the file under the link's name.
    let e = copy(&ctx, &spec(&["top.txt"], "/d/")).unwrap();
    assert_eq!(written(&e), vec!["/d/top.txt"]);
    assert_eq!(
        e.last().unwrap().origin,
        Origin::Context("real/a.txt".into())
    );
    // Through a symlinked directory that stays inside.
    let e = copy(&ctx, &spec(&["alias/sub/b.txt"], "/x")).unwrap();
    assert_eq!(written(&e), vec!["/x"]);
}

#[test]
fn reading_refuses_a_file_swapped_for_a_symlink() {
    let c = Ctx::new(&[("Dockerfile", ""), ("f", "x")]);
    let ctx = c.open();
    ctx.listing().unwrap();
    fs::remove_file(c.path().join("f")).unwrap();
    c.link("f", "/etc/passwd");
    assert!(matches!(
        ctx.open_file("f"),
        Err(ContextError::ChangedDuringBuild { .. })
    ));
}

// ---- COPY/ADD resolution (Dockerfile reference) ----

#[test]
fn destination_rules() {
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("test.txt", "t"),
        ("file1.txt", "1"),
        ("file2.txt", "2"),
    ]);
    let ctx = c.open();
    // "COPY test.txt /abs/ creates /abs/test.txt"; "COPY test.txt /abs creates a file at /abs".
    assert_eq!(
        written(&copy(&ctx, &spec(&["test.txt"], "/abs/")).unwrap()),
        vec!["/abs/test.txt"]
    );
    assert_eq!(
        written(&copy(&ctx, &spec(&["test.txt"], "/abs")).unwrap()),
        vec!["/abs"]
    );
    // "WORKDIR /usr/src/app; COPY test.txt rel/ creates /usr/src/app/rel/test.txt".
    let mut s = spec(&["test.txt"], "rel/");
    s.workdir = "/usr/src/app".into();
    let e = copy(&ctx, &s).unwrap();
    assert_eq!(written(&e), vec!["/usr/src/app/rel/test.txt"]);
    // Missing parents are created, 0755, root-owned.
    assert_eq!(
        all_paths(&e),
        vec![
            "/usr",
            "/usr/src",
            "/usr/src/app",
            "/usr/src/app/rel",
            "/usr/src/app/rel/test.txt"
        ]
    );
    assert!(e
        .iter()
        .filter(|x| x.origin == Origin::Created)
        .all(|x| x.mode == 0o755 && x.uid == 0));
    // "COPY test.txt ." lands in WORKDIR.
    let mut s = spec(&["test.txt"], ".");
    s.workdir = "/app".into();
    assert_eq!(written(&copy(&ctx, &s).unwrap()), vec!["/app/test.txt"]);
    // Several sources: dest must end with '/'.
    assert_eq!(
        written(&copy(&ctx, &spec(&["file1.txt", "file2.txt"], "/usr/src/things/")).unwrap()),
        vec!["/usr/src/things/file1.txt", "/usr/src/things/file2.txt"]
    );
    assert!(matches!(
        copy(&ctx, &spec(&["file1.txt", "file2.txt"], "/things")),
        Err(ContextError::DestNotDirectory { .. })
    ));
    // Leading '/' and trailing '/' on a source are disregarded.
    assert_eq!(
        written(&copy(&ctx, &spec(&["/test.txt/"], "/o")).unwrap()),
        vec!["/o"]
    );
}

#[test]
fn wildcards_follow_go_filepath_match() {
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("a.png", ""),
        ("b.png", ""),
        ("sub/c.png", ""),
        ("index.js", ""),
        ("index.ts", ""),
        ("index.tsx", ""),
        ("arr[0].txt", ""),
    ]);
    let ctx = c.open();
    assert_eq!(
        written(&copy(&ctx, &spec(&["*.png"], "/dest/")).unwrap()),
        vec!["/dest/a.png", "/dest/b.png"]
    );
    assert_eq!(
        written(&copy(&ctx, &spec(&["index.?s"], "/dest/")).unwrap()),
        vec!["/dest/index.js", "/dest/index.ts"]
    );
    assert_eq!(
        written(&copy(&ctx, &spec(&["arr[[]0].txt"], "/dest/")).unwrap()),
        vec!["/dest/arr[0].txt"]
    );
    assert_eq!(
        written(&copy(&ctx, &spec(&["*/*.png"], "/dest/")).unwrap()),
        vec!["/dest/c.png"]
    );
    // A wildcard matching several files needs a directory destination.
    assert!(matches!(
        copy(&ctx, &spec(&["*.png"], "/dest")),
        Err(ContextError::DestNotDirectory { .. })
    ));
    // One match and no slash: a file at dest.
    assert_eq!(
        written(&copy(&ctx, &spec(&["a.p?g"], "/dest")).unwrap()),
        vec!["/dest"]
    );
    // A wildcard matching nothing copies nothing (BuildKit's AllowEmptyWildcard); with
    // another source beside it, that one is copied alone.
    let none = copy(&ctx, &spec(&["*.gif"], "/dest/")).unwrap();
    assert!(
        none.iter()
            .all(|e| !matches!(e.kind, EntryKind::File { .. })),
        "{none:?}"
    );
    assert_eq!(
        written(&copy(&ctx, &spec(&["a.p?g", "*.gif"], "/dest/")).unwrap())
            .iter()
            .filter(|p| p.starts_with("/dest/"))
            .count(),
        1
    );
}

#[test]
fn directory_sources_copy_contents() {
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("something/x.txt", "x"),
        ("something/d/y.txt", "y"),
        ("empty/", ""),
    ]);
    let ctx = c.open();
    let e = copy(&ctx, &spec(&["something/"], "/something")).unwrap();
    assert_eq!(
        all_paths(&e),
        vec![
            "/something",
            "/something/d",
            "/something/d/y.txt",
            "/something/x.txt"
        ]
    );
    // An empty directory still creates the destination.
    assert_eq!(
        all_paths(&copy(&ctx, &spec(&["empty"], "/e")).unwrap()),
        vec!["/e"]
    );
    // "." copies the whole (filtered) context.
    let e = copy(&ctx, &spec(&["."], "/all/")).unwrap();
    assert!(written(&e).contains(&"/all/something/d/y.txt".to_string()));
}

#[test]
fn parents_and_exclude() {
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("x/a.txt", ""),
        ("y/a.txt", ""),
        ("x/y/a.txt", ""),
        ("x/y/b.txt", ""),
        ("src/a.txt", ""),
        ("src/x/b.txt", ""),
        ("src/x/y/c.txt", ""),
        ("src/x/y/c.go", ""),
        ("home.txt", ""),
        ("home.md", ""),
        ("homer", ""),
    ]);
    let ctx = c.open();
    let e = copy(&ctx, &spec(&["./x/a.txt", "./y/a.txt"], "/no_parents/")).unwrap();
    assert_eq!(written(&e), vec!["/no_parents/a.txt"]);
    let mut s = spec(&["./x/a.txt", "./y/a.txt"], "/parents/");
    s.parents = true;
    assert_eq!(
        written(&copy(&ctx, &s).unwrap()),
        vec!["/parents/x/a.txt", "/parents/y/a.txt"]
    );
    let mut s = spec(&["./x/./y/*.txt"], "/parents/");
    s.parents = true;
    assert_eq!(
        written(&copy(&ctx, &s).unwrap()),
        vec!["/parents/y/a.txt", "/parents/y/b.txt"]
    );
    let mut s = spec(&["./src/**/*.txt"], "/parents/");
    s.parents = true;
    assert_eq!(
        written(&copy(&ctx, &s).unwrap()),
        vec![
            "/parents/src/a.txt",
            "/parents/src/x/b.txt",
            "/parents/src/x/y/c.txt"
        ]
    );
    let mut s = spec(&["hom*"], "/mydir/");
    s.excludes = vec!["*.txt".into()];
    assert_eq!(
        written(&copy(&ctx, &s).unwrap()),
        vec!["/mydir/home.md", "/mydir/homer"]
    );
    s.excludes.push("*.md".into());
    assert_eq!(written(&copy(&ctx, &s).unwrap()), vec!["/mydir/homer"]);
    // Excludes apply inside a copied directory too.
    let mut s = spec(&["src"], "/s/");
    s.excludes = vec!["**/*.go".into()];
    assert!(!written(&copy(&ctx, &s).unwrap())
        .iter()
        .any(|p| p.ends_with(".go")));
}

#[test]
fn chown_and_chmod() {
    let c = Ctx::new(&[("Dockerfile", ""), ("files1", "1"), ("run.sh", "#!/bin/sh")]);
    fs::set_permissions(c.path().join("run.sh"), fs::Permissions::from_mode(0o750)).unwrap();
    let ctx = c.open();
    let names = PasswdNames::parse(
        "root:x:0:0::/root:/bin/sh\nbin:x:2:2::/bin:/sbin/nologin\napp:x:1000:1000::/app:/bin/sh\n",
        "root:x:0:\nmygroup:x:4242:\n",
    );
    let cases: &[(&str, (u32, u32))] = &[
        ("55:mygroup", (55, 4242)),
        ("bin", (2, 2)),
        ("1", (1, 1)),
        ("10:11", (10, 11)),
        ("app:mygroup", (1000, 4242)),
    ];
    for (flag, want) in cases {
        let mut s = spec(&["files1"], "/somedir/");
        s.chown = Some(flag.to_string());
        let e = ctx.resolve_copy(&s, &names).unwrap();
        // Every entry, including the created parent, gets the owner.
        assert!(e.iter().all(|x| (x.uid, x.gid) == *want), "{flag}: {e:?}");
    }
    let mut s = spec(&["files1"], "/somedir/");
    s.chown = Some("nobody".into());
    assert!(matches!(
        ctx.resolve_copy(&s, &names),
        Err(ContextError::UnknownUser { .. })
    ));
    s.chown = Some("app:nogroup".into());
    assert!(matches!(
        ctx.resolve_copy(&s, &names),
        Err(ContextError::UnknownGroup { .. })
    ));
    s.chown = Some("bin".into());
    assert!(matches!(
        ctx.resolve_copy(&s, &UnknownImage),
        Err(ContextError::UnknownUser { .. })
    ));
    // Mode is preserved without --chmod, replaced with it; non-octal is refused.
    let e = copy(&ctx, &spec(&["run.sh"], "/app/")).unwrap();
    assert_eq!(e.last().unwrap().mode, 0o750);
    let mut s = spec(&["run.sh"], "/app/");
    s.chmod = Some("644".into());
    assert_eq!(copy(&ctx, &s).unwrap().last().unwrap().mode, 0o644);
    for bad in ["+x", "u=rwX", "999", "12345", ""] {
        s.chmod = Some(bad.into());
        assert!(
            matches!(copy(&ctx, &s), Err(ContextError::InvalidChmod { .. })),
            "{bad}"
        );
    }
}

#[test]
fn existing_parents_are_left_alone() {
    let c = Ctx::new(&[("Dockerfile", ""), ("f", "")]);
    let ctx = c.open();
    let mut s = spec(&["f"], "/usr/local/app/");
    s.chown = Some("1000".into());
    let e = copy(&ctx, &s).unwrap();
    let kept = without_existing(e, |p| p == "/usr" || p == "/usr/local");
    assert_eq!(all_paths(&kept), vec!["/usr/local/app", "/usr/local/app/f"]);
}

#[test]
fn url_sources_are_not_context_paths() {
    let c = Ctx::new(&[("Dockerfile", "")]);
    let ctx = c.open();
    assert!(matches!(
        copy(&ctx, &spec(&["https://example.com/x"], "/")),
        Err(ContextError::UrlSource { .. })
    ));
}

// ---- ADD archives ----

fn tar_bytes(members: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, ty, data, link) in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*ty);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        h.set_size(data.len() as u64);
        // Write the raw name so hostile paths are kept as-is.
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if !link.is_empty() {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn add_extracts_plain_and_gzip_tars() {
    use tar::EntryType as T;
    let plain = tar_bytes(&[
        ("dir/", T::Directory, b"", ""),
        ("dir/a.txt", T::Regular, b"hello", ""),
        ("/abs.txt", T::Regular, b"abs", ""),
        ("dir/hl", T::Link, b"", "dir/a.txt"),
    ]);
    let c = Ctx::new(&[("Dockerfile", ""), ("notatar.tar.gz", "")]);
    fs::write(c.path().join("a.tar"), &plain).unwrap();
    fs::write(c.path().join("a.tgz"), gzip(&plain)).unwrap();
    let ctx = c.open();
    for name in ["a.tar", "a.tgz"] {
        let mut s = spec(&[name], "/opt/x");
        s.unpack = true;
        let e = copy(&ctx, &s).unwrap();
        assert_eq!(
            written(&e),
            vec![
                "/opt/x/abs.txt",
                "/opt/x/dir",
                "/opt/x/dir/a.txt",
                "/opt/x/dir/hl"
            ],
            "{name}"
        );
        let a = e.iter().find(|x| x.path == "/opt/x/dir/a.txt").unwrap();
        assert_eq!((a.uid, a.gid, a.mode), (7, 8, 0o640));
        // `--chown` owns the destination folder; the members keep the archive's owners.
        let mut chowned = s.clone();
        chowned.chown = Some("1:2".into());
        let e = copy(&ctx, &chowned).unwrap();
        let a = e.iter().find(|x| x.path == "/opt/x/dir/a.txt").unwrap();
        assert_eq!((a.uid, a.gid), (7, 8));
        let x = e.iter().find(|x| x.path == "/opt/x").unwrap();
        assert_eq!((x.uid, x.gid), (1, 2));
        let hl = e.iter().find(|x| x.path == "/opt/x/dir/hl").unwrap();
        assert_eq!(hl.kind, EntryKind::File { size: 5 });
        // COPY does not extract.
        assert_eq!(
            written(&copy(&ctx, &spec(&[name], "/opt/")).unwrap()),
            vec![format!("/opt/{name}")]
        );
    }
    // Detection is by content: an empty file named .tar.gz is copied as a file.
    let mut s = spec(&["notatar.tar.gz"], "/o/");
    s.unpack = true;
    assert_eq!(written(&copy(&ctx, &s).unwrap()), vec!["/o/notatar.tar.gz"]);
}

#[test]
fn add_refuses_hostile_archives() {
    use tar::EntryType as T;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", tar_bytes(&[("../evil", T::Regular, b"x", "")])),
        (
            "deep-dotdot",
            tar_bytes(&[("a/../../evil", T::Regular, b"x", "")]),
        ),
        (
            "through-symlink",
            tar_bytes(&[
                ("l", T::Symlink, b"", "/etc"),
                ("l/passwd", T::Regular, b"x", ""),
            ]),
        ),
        (
            "hardlink-out",
            tar_bytes(&[("h", T::Link, b"", "../../etc/passwd")]),
        ),
    ];
    for (name, bytes) in cases {
        let c = Ctx::new(&[("Dockerfile", "")]);
        fs::write(c.path().join("x.tar"), &bytes).unwrap();
        let ctx = c.open();
        let mut s = spec(&["x.tar"], "/dst/");
        s.unpack = true;
        let err = copy(&ctx, &s).unwrap_err();
        assert!(
            matches!(err, ContextError::UnsafeArchivePath { .. }),
            "{name}: {err}"
        );
    }
}

// ---- hashing ----

#[test]
fn hash_is_stable_and_sensitive() {
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("app/main.go", "package main\n"),
        ("app/go.mod", "module x\n"),
    ]);
    c.link("app/link", "main.go");
    let s = spec(&["app"], "/src/");
    let h1 = {
        let ctx = c.open();
        hash_sources(&copy(&ctx, &s).unwrap(), &ctx).unwrap()
    };
    let h2 = {
        let ctx = c.open();
        hash_sources(&copy(&ctx, &s).unwrap(), &ctx).unwrap()
    };
    assert_eq!(h1, h2);
    assert!(h1.starts_with("sha256:") && h1.len() == 71);
    // mtime is not part of the key.
    let f = fs::File::options()
        .write(true)
        .open(c.path().join("app/main.go"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345))
        .unwrap();
    drop(f);
    let ctx = c.open();
    assert_eq!(hash_sources(&copy(&ctx, &s).unwrap(), &ctx).unwrap(), h1);
    // One byte changed: a different key.
    fs::write(c.path().join("app/main.go"), "package mainX").unwrap();
    let ctx = c.open();
    let h3 = hash_sources(&copy(&ctx, &s).unwrap(), &ctx).unwrap();
    assert_ne!(h3, h1);
    // Mode, owner and link target count.
    fs::write(c.path().join("app/main.go"), "package main\n").unwrap();
    let ctx = c.open();
    let base = copy(&ctx, &s).unwrap();
    assert_eq!(hash_sources(&base, &ctx).unwrap(), h1);
    let mut chowned = s.clone();
    chowned.chown = Some("1".into());
    assert_ne!(
        hash_sources(&copy(&ctx, &chowned).unwrap(), &ctx).unwrap(),
        h1
    );
    let mut chmodded = s.clone();
    chmodded.chmod = Some("600".into());
    assert_ne!(
        hash_sources(&copy(&ctx, &chmodded).unwrap(), &ctx).unwrap(),
        h1
    );
    fs::remove_file(c.path().join("app/link")).unwrap();
    c.link("app/link", "go.mod");
    let ctx = c.open();
    assert_ne!(hash_sources(&copy(&ctx, &s).unwrap(), &ctx).unwrap(), h1);
}

// ---- tar stream ----

fn read_tar(bytes: &[u8]) -> BTreeMap<String, (tar::EntryType, u32, u64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        out.insert(
            name,
            (
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                data,
            ),
        );
    }
    out
}

#[test]
fn tar_stream_carries_decided_metadata() {
    let long = format!("{}/f.txt", "d".repeat(120));
    let c = Ctx::new(&[
        ("Dockerfile", ""),
        ("app/main.go", "package main\n"),
        (long.as_str(), "long"),
    ]);
    c.link("app/l", "main.go");
    let ctx = c.open();
    let mut s = spec(&["."], "/srv/");
    s.chown = Some("1000:1001".into());
    let e = copy(&ctx, &s).unwrap();
    let bytes = write_tar(Vec::new(), &e, &ctx).unwrap();
    let t = read_tar(&bytes);
    let main = &t["srv/app/main.go"];
    assert_eq!((main.2, main.3), (1000, 1001));
    assert_eq!(main.4, b"package main\n");
    assert_eq!(t["srv/"].0, tar::EntryType::Directory);
    assert_eq!(t["srv/"].1, 0o755);
    assert_eq!(t["srv/app/l"].0, tar::EntryType::Symlink);
    assert_eq!(t[&format!("srv/{long}")].4, b"long");
    // Parents come before children.
    let names: Vec<&String> = t.keys().collect();
    assert!(
        names.iter().position(|n| *n == "srv/app/").unwrap()
            < names.iter().position(|n| *n == "srv/app/main.go").unwrap()
    );
}

#[test]
fn tar_path_guards() {
    let c = Ctx::new(&[("Dockerfile", "")]);
    let ctx = c.open();
    let entry = |path: &str, kind: EntryKind| CopyEntry {
        path: path.into(),
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        origin: Origin::Created,
    };
    let link = entry(
        "/a",
        EntryKind::Symlink {
            target: "/etc".into(),
        },
    );
    let cases = vec![
        vec![entry("/x/../etc/passwd", EntryKind::Dir)],
        vec![entry("relative", EntryKind::Dir)],
        vec![entry("/a//b", EntryKind::Dir)],
        vec![entry("/", EntryKind::Dir)],
        vec![link.clone(), entry("/a/passwd", EntryKind::Dir)],
    ];
    for entries in cases {
        let err = write_tar(Vec::new(), &entries, &ctx).unwrap_err();
        assert!(
            matches!(err, ContextError::UnsafeTarPath { .. }),
            "{entries:?}: {err}"
        );
    }
}

#[test]
fn tar_refuses_a_file_that_changed_size() {
    let c = Ctx::new(&[("Dockerfile", ""), ("f", "12345")]);
    let ctx = c.open();
    let e = copy(&ctx, &spec(&["f"], "/f")).unwrap();
    fs::write(c.path().join("f"), "123").unwrap();
    // Same inode, shorter content: refused, not padded.
    assert!(matches!(
        write_tar(Vec::new(), &e, &ctx),
        Err(ContextError::ChangedDuringBuild { .. })
    ));
}
