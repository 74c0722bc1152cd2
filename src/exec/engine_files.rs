//! The files the engine puts into every container and BuildKit's snapshots never hold:
//! `/.dockerenv`, `/dev/console`, `/dev/pts`, `/dev/shm` and `/etc/mtab` (its init layer)
//! and `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` (mounted over whatever the image
//! has while the container runs). A commit leaves them out, but a `GET /archive` of a
//! container has them; so a recording of a job's files (what `COPY --from` reads) drops
//! them. `COPY --from=build / /` in BuildKit copies the stage's own files only.
//!
//! Trade-off: an image that ships its own `/etc/hosts` (an imported rootfs can) loses it
//! in a recording. While the container runs, the engine's file is all the archive shows
//! there, and copying the build host's network settings into an image is worse.

/// Absolute paths the engine adds: dropped with everything under them.
const ADDED: [&str; 7] = [
    "/.dockerenv",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

/// The link the engine's `/etc/mtab` has (an image's own, e.g. Debian's
/// `../proc/self/mounts`, is kept).
const MTAB: (&str, &str) = ("/etc/mtab", "/proc/mounts");

/// The absolute path of a member of a `GET /archive` tar of `root`: its members start with
/// the root's base name; for `/` they are absolute (`/etc/hosts`), or `./etc/hosts`.
fn absolute(root: &str, member: &str) -> String {
    let member = member.trim_end_matches('/');
    let root = root.trim_end_matches('/');
    let rel = if root.is_empty() {
        let m = member.strip_prefix("./").unwrap_or(member);
        let m = m.trim_start_matches('/');
        if m == "." {
            ""
        } else {
            m
        }
    } else {
        member.split_once('/').map_or("", |(_, r)| r)
    };
    match (root.is_empty(), rel.is_empty()) {
        (true, true) => "/".to_string(),
        (true, false) => format!("/{rel}"),
        (false, true) => root.to_string(),
        (false, false) => format!("{root}/{rel}"),
    }
}

fn is_engine_file(path: &str, link: Option<&str>) -> bool {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    ADDED.iter().any(|p| under(p)) || (path == MTAB.0 && link == Some(MTAB.1))
}

/// `tar` (an archive of `root` from a container) without the engine's files. The members
/// kept are copied byte for byte (extension headers included), so names stay exactly as
/// the engine wrote them.
pub fn without_engine_files(root: &str, tar: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut kept: Vec<std::ops::Range<usize>> = Vec::new();
    let mut dropped = false;
    let mut prev_end = 0usize;
    for e in tar::Archive::new(tar).entries()? {
        let e = e?;
        let path = absolute(root, &String::from_utf8_lossy(&e.path_bytes()));
        let link = e.link_name()?.map(|l| l.to_string_lossy().into_owned());
        let data = e.raw_file_position() as usize;
        let end = data + (e.size() as usize).div_ceil(512) * 512;
        if is_engine_file(&path, link.as_deref()) {
            dropped = true;
        } else {
            kept.push(prev_end..end);
        }
        prev_end = end;
    }
    if !dropped {
        return Ok(tar.to_vec());
    }
    let mut out = Vec::with_capacity(tar.len());
    for r in kept {
        out.extend_from_slice(&tar[r]);
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o755);
            h.set_size(0);
            match link {
                Some(l) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, name, l).unwrap();
                }
                None => {
                    let dir = name.ends_with('/');
                    h.set_entry_type(if dir {
                        tar::EntryType::Directory
                    } else {
                        tar::EntryType::Regular
                    });
                    b.append_data(&mut h, name, std::io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn names(tar: &[u8]) -> Vec<String> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
            .collect()
    }

    #[test]
    fn members_are_placed_under_the_root() {
        assert_eq!(absolute("/", "./etc/hosts"), "/etc/hosts");
        assert_eq!(absolute("/", "./"), "/");
        assert_eq!(absolute("/", "etc/hosts"), "/etc/hosts");
        assert_eq!(absolute("/", "/etc/hosts"), "/etc/hosts");
        assert_eq!(absolute("/", "/"), "/");
        assert_eq!(absolute("/etc", "etc/hosts"), "/etc/hosts");
        assert_eq!(absolute("/src/out", "out/"), "/src/out");
    }

    #[test]
    fn the_engine_files_go_and_the_image_files_stay() {
        let tar = tar_of(&[
            ("./", None),
            ("./.dockerenv", None),
            ("./dev/", None),
            ("./dev/pts/", None),
            ("./dev/console", None),
            ("./etc/", None),
            ("./etc/hosts", None),
            ("./etc/passwd", None),
            ("./etc/mtab", Some("/proc/mounts")),
            ("./proc/", None),
        ]);
        let got = without_engine_files("/", &tar).unwrap();
        // (The tar crate writes `./x` as `x`; both forms are read, see above.)
        assert_eq!(names(&got), ["./", "dev/", "etc/", "etc/passwd", "proc/"]);
        let debian = tar_of(&[("etc/", None), ("etc/mtab", Some("../proc/self/mounts"))]);
        assert_eq!(without_engine_files("/etc", &debian).unwrap(), debian);
        let sub = tar_of(&[("out/", None), ("out/x", None)]);
        assert_eq!(without_engine_files("/src/out", &sub).unwrap(), sub);
    }
}
