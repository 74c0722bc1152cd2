//! The OCI `org.opencontainers.image.{revision,source,created}` annotations,
//! computed from facts about the git checkout that the caller gathers
//! ([`probe`] does it by running `git`; tests pass values in).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// What xplat knows about the checkout the build runs from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitFacts {
    /// `git rev-parse HEAD`.
    pub revision: Option<String>,
    /// `git config --get remote.origin.url`, as written (may hold credentials).
    pub remote_url: Option<String>,
    /// Committer time of HEAD, seconds since the epoch.
    pub commit_time: Option<i64>,
}

/// OCI annotation keys this module fills.
pub const REVISION: &str = "org.opencontainers.image.revision";
/// See [`REVISION`].
pub const SOURCE: &str = "org.opencontainers.image.source";
/// See [`REVISION`].
pub const CREATED: &str = "org.opencontainers.image.created";

/// The annotations git facts give. `created` is `SOURCE_DATE_EPOCH` when set,
/// else the commit time (never the wall clock, so rebuilding a commit gives the
/// same image). The source URL loses any user or token it carries.
pub fn annotations(git: &GitFacts, source_date_epoch: Option<i64>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(rev) = &git.revision {
        out.insert(REVISION.to_string(), rev.clone());
    }
    if let Some(url) = git.remote_url.as_deref().and_then(public_source_url) {
        out.insert(SOURCE.to_string(), url);
    }
    if let Some(t) = source_date_epoch.or(git.commit_time) {
        out.insert(CREATED.to_string(), rfc3339(t));
    }
    out
}

/// The `{var}` values git facts give: `git_sha` and `git_short_sha`.
pub fn vars(git: &GitFacts) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(rev) = &git.revision {
        out.insert("git_sha".to_string(), rev.clone());
        out.insert("git_short_sha".to_string(), rev.chars().take(7).collect());
    }
    out
}

/// A browsable URL for a remote: `git@host:o/r.git` and `ssh://git@host/o/r`
/// become `https://host/o/r`; credentials in `https://user:token@host/...`
/// are dropped. Local paths and unknown schemes give `None`.
pub fn public_source_url(remote: &str) -> Option<String> {
    let remote = remote.trim();
    let (host, path) = if let Some(rest) = remote
        .strip_prefix("https://")
        .or_else(|| remote.strip_prefix("http://"))
        .or_else(|| remote.strip_prefix("ssh://"))
        .or_else(|| remote.strip_prefix("git://"))
    {
        let (authority, path) = rest.split_once('/')?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // ssh://git@host:22/o/r: the port is for ssh, not for a browser.
        let host = if remote.starts_with("ssh://") {
            host.split_once(':').map_or(host, |(h, _)| h)
        } else {
            host
        };
        (host, path)
    } else if let Some((user_host, path)) = remote.split_once(':') {
        // scp-like `git@github.com:owner/repo.git`
        if user_host.len() < 2 || user_host.contains('/') || path.starts_with("//") {
            return None;
        }
        let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
        (host, path)
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("https://{host}/{path}"))
}

/// Seconds since the epoch as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-from-civil inverse; a date crate for one line is not worth it.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Asks `git` about the checkout holding `dir`. Anything git cannot answer
/// (no git, not a checkout, no remote) is left `None`; this never fails. The two
/// questions go to two `git` processes at once (every build asks them, before anything
/// else can start).
pub fn probe(dir: &Path) -> GitFacts {
    let spawn = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()
    };
    let answer = |child: Option<std::process::Child>| -> Option<String> {
        let out = child?.wait_with_output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let head = spawn(&["log", "-1", "--format=%H%n%ct"]);
    let remote = spawn(&["config", "--get", "remote.origin.url"]);
    let head = answer(head);
    let mut lines = head.as_deref().unwrap_or_default().lines();
    GitFacts {
        revision: lines.next().map(str::to_string),
        commit_time: lines.next().and_then(|t| t.parse().ok()),
        remote_url: answer(remote),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls_are_browsable_and_carry_no_credentials() {
        let cases = [
            (
                "git@github.com:owner/repo.git",
                Some("https://github.com/owner/repo"),
            ),
            (
                "https://github.com/owner/repo.git",
                Some("https://github.com/owner/repo"),
            ),
            (
                "https://user:s3cret@gitlab.example/g/r",
                Some("https://gitlab.example/g/r"),
            ),
            (
                "ssh://git@host.example:2222/o/r.git",
                Some("https://host.example/o/r"),
            ),
            ("/srv/git/repo.git", None),
            ("file:///srv/git/repo", None),
        ];
        for (remote, want) in cases {
            assert_eq!(public_source_url(remote).as_deref(), want, "{remote}");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn created_prefers_source_date_epoch_over_the_commit_time() {
        let git = GitFacts {
            revision: Some("0123456789abcdef".into()),
            remote_url: Some("https://tok@github.com/o/r".into()),
            commit_time: Some(0),
        };
        let a = annotations(&git, Some(86_400));
        assert_eq!(a[CREATED], "1970-01-02T00:00:00Z");
        assert_eq!(a[SOURCE], "https://github.com/o/r");
        assert_eq!(a[REVISION], "0123456789abcdef");
        assert_eq!(annotations(&git, None)[CREATED], "1970-01-01T00:00:00Z");
        assert!(annotations(&GitFacts::default(), None).is_empty());
        assert_eq!(vars(&git)["git_short_sha"], "0123456");
    }
}
