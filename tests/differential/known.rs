//! The deliberate differences from BuildKit: each names the case, the platforms (none:
//! all of the case's), the compared key (`fs:/path` or `config:Field`) and why xplat
//! differs on purpose. The suite fails on any difference not listed here, and on an
//! entry here that no longer occurs.

/// One listed difference.
pub struct Known {
    /// The case's name.
    pub case: &'static str,
    /// The platforms it occurs on; empty: every platform of the case.
    pub platforms: &'static [&'static str],
    /// `fs:/path` or `config:Field`.
    pub key: &'static str,
    /// Why it is deliberate.
    pub reason: &'static str,
}

impl Known {
    /// Whether the entry covers `platform`.
    pub fn applies_to(&self, platform: &str) -> bool {
        self.platforms.is_empty() || self.platforms.contains(&platform)
    }
}

/// The entry that lists `key` for `case` on `platform`, if any.
pub fn find(case: &str, platform: &str, key: &str) -> Option<&'static Known> {
    KNOWN
        .iter()
        .find(|k| k.case == case && k.key == key && k.applies_to(platform))
}

/// The engine's exec API gives a process the user's primary group as a supplementary
/// group too (`groups=1500(appg)`); BuildKit's runc executor gives only the groups
/// `/etc/group` lists the user in (none here). `ExecConfig` has no field for it
/// (`HostConfig.GroupAdd` only adds), so xplat cannot ask for BuildKit's list. The
/// permissions a RUN gets are the same: the group is the process's gid either way.
const EXEC_GROUPS: &str = "engine limit: the engine's exec adds the primary gid to the \
    supplementary groups (`id` prints `groups=1500(appg)`), BuildKit's runc does not; the \
    Engine API has no way to leave it out. Same permissions (it is the process's gid)";

/// An engine container mounts a file (a secret) on an empty file it makes in the
/// container's layer. xplat drops those stubs from the images it exports, but a later
/// RUN in another container of the same stage still sees the stub (`ls /run/secrets`):
/// the Engine API can neither unmount nor delete a path of a container.
const STUB_SEEN_LATER: &str = "engine limit: the empty mount-point file the engine made for \
    the first RUN's secret is still there for a later RUN of the stage in a new container \
    (`ls /run/secrets` lists `token`); the Engine API cannot delete a container's file, and \
    the final image has no stub (xplat drops it when exporting)";

/// Every deliberate difference.
pub const KNOWN: &[Known] = &[
    Known {
        case: "copy-chown-names-run",
        platforms: &[],
        key: "fs:/tmp/id.txt",
        reason: EXEC_GROUPS,
    },
    Known {
        case: "mount-secret",
        platforms: &[],
        key: "fs:/secrets-list.txt",
        reason: STUB_SEEN_LATER,
    },
];
