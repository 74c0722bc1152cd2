//! The Dockerfiles of the BuildKit differential suite, each with its build context,
//! build arguments, secrets and the platforms it is built for.
//!
//! Base images: `xplat-test/busybox:${TARGETARCH}${TARGETVARIANT}` names the engine's
//! per-architecture busybox (`amd64`, `arm64`, `armv7`); `@REGISTRY@/busybox:latest` is
//! the multi-platform busybox pushed to the loopback registry (`@REGISTRY@` is replaced
//! by `127.0.0.1:PORT` before either builder sees the file).
//!
//! The path each final takes in xplat follows from its text: a final with a RUN (its
//! own, or an ONBUILD trigger's) runs in the engine, natively for linux/amd64 and
//! emulated for the others; a RUN-free final is assembled.

use std::os::unix::fs::PermissionsExt;

pub(super) use crate::support::TestDir;

mod args;
mod copy;
mod meta;
mod run;

/// One Dockerfile built by both builders.
#[derive(Clone, Copy)]
pub struct Case {
    /// Short name, printed per case.
    pub name: &'static str,
    /// The Dockerfile.
    pub dockerfile: &'static str,
    /// Context files (path, content).
    pub files: &'static [(&'static str, &'static str)],
    /// Extra context preparation (modes, symlinks, archives, empty folders).
    pub setup: fn(&TestDir),
    /// `--build-arg` values.
    pub build_args: &'static [(&'static str, &'static str)],
    /// `--secret id=ID` with the secret's content.
    pub secrets: &'static [(&'static str, &'static str)],
    /// The platforms it is built for.
    pub platforms: &'static [&'static str],
}

/// linux/amd64, linux/arm64 and linux/arm/v7.
pub const ALL: &[&str] = &["linux/amd64", "linux/arm64", "linux/arm/v7"];

pub(super) fn nothing(_: &TestDir) {}

pub(super) fn chmod(dir: &TestDir, rel: &str, mode: u32) {
    std::fs::set_permissions(dir.join(rel), std::fs::Permissions::from_mode(mode))
        .expect("chmod a context file");
}

/// A case with no context preparation, build arguments or secrets, for every platform.
pub(super) const fn case(
    name: &'static str,
    dockerfile: &'static str,
    files: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        name,
        dockerfile,
        files,
        setup: nothing,
        build_args: &[],
        secrets: &[],
        platforms: ALL,
    }
}

pub(super) const A_TXT: &[(&str, &str)] = &[("a.txt", "a\n")];

pub(super) const TREE: &[(&str, &str)] = &[
    ("a.txt", "a\n"),
    ("b.txt", "b\n"),
    ("c.md", "c\n"),
    ("dir/x", "x\n"),
    ("dir/sub/y", "y\n"),
    ("dir/sub/z.sh", "#!/bin/sh\necho z\n"),
];

pub(super) fn tree_setup(d: &TestDir) {
    chmod(d, "dir/sub/z.sh", 0o755);
    chmod(d, "b.txt", 0o600);
    chmod(d, "dir/sub", 0o750);
    std::fs::create_dir_all(d.join("dir/empty")).unwrap();
    std::os::unix::fs::symlink("x", d.join("dir/link")).unwrap();
}

/// All cases, in the order they run.
pub fn all() -> Vec<Case> {
    let mut all = args::cases();
    all.extend(copy::cases());
    all.extend(run::cases());
    all.extend(meta::cases());
    all
}

/// `archive.tar.gz`: a folder, files with their own modes and owners, a symlink.
pub(super) fn write_archive(dir: &TestDir) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, uid: u64, data: &[u8], link| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid + 1);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    add("pkg/", tar::EntryType::Directory, 0o750, 0, b"", None);
    add("pkg/bin/", tar::EntryType::Directory, 0o755, 0, b"", None);
    let tool: &[u8] = b"#!/bin/sh\n";
    add(
        "pkg/bin/tool",
        tar::EntryType::Regular,
        0o755,
        0,
        tool,
        None,
    );
    let data: &[u8] = b"data\n";
    add(
        "pkg/data.txt",
        tar::EntryType::Regular,
        0o600,
        1000,
        data,
        None,
    );
    add(
        "pkg/link",
        tar::EntryType::Symlink,
        0o777,
        0,
        b"",
        Some("data.txt"),
    );
    let top: &[u8] = b"top\n";
    add("top.txt", tar::EntryType::Regular, 0o644, 33, top, None);
    let bytes = b.into_inner().unwrap().finish().unwrap();
    dir.write("archive.tar.gz", bytes);
}
