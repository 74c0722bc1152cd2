//! Owners and modes: `--chown=user[:group]` (and a WORKDIR's USER) resolved against the
//! destination's own `/etc/passwd` and `/etc/group`, and `--chmod`.

use std::collections::BTreeMap;

use super::error::{Result, StageError};
use super::fs::DestFs;

/// Parses `--chmod` (octal only, up to `7777`).
pub fn parse_chmod(value: &str) -> Result<u32> {
    let ok =
        !value.is_empty() && value.len() <= 4 && value.bytes().all(|b| (b'0'..=b'7').contains(&b));
    ok.then(|| u32::from_str_radix(value, 8).ok())
        .flatten()
        .ok_or_else(|| StageError::InvalidChmod {
            value: value.to_string(),
        })
}

/// Users and groups of a destination's `/etc/passwd` and `/etc/group`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passwd {
    users: BTreeMap<String, (u32, u32)>,
    groups: BTreeMap<String, u32>,
}

impl Passwd {
    /// Parses `name:x:uid:gid:...` and `name:x:gid:...` lines; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> Passwd {
        let users = passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((
                    f.first()?.to_string(),
                    (f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?),
                ))
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
            })
            .collect();
        Passwd { users, groups }
    }

    /// Reads both files from `fs` (a missing file is empty).
    pub async fn read(fs: &dyn DestFs) -> Result<Passwd> {
        let mut texts = Vec::new();
        for path in ["/etc/passwd", "/etc/group"] {
            let data = fs.read_file(path).await.map_err(|source| StageError::Fs {
                action: format!("reading {path} of the destination"),
                source,
            })?;
            texts.push(String::from_utf8_lossy(&data.unwrap_or_default()).into_owned());
        }
        Ok(Passwd::parse(&texts[0], &texts[1]))
    }

    /// `user[:group]` → `(uid, gid)`, BuildKit's rules: a lone number is also the gid, a
    /// lone name takes its primary group from passwd.
    pub fn owner(&self, value: &str) -> Result<(u32, u32)> {
        let (user, group) = match value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (value, None),
        };
        if user.is_empty() || group == Some("") {
            return Err(StageError::InvalidChown {
                value: value.into(),
            });
        }
        let (uid, primary) = match user.parse::<u32>() {
            Ok(id) => (id, id),
            Err(_) => *self
                .users
                .get(user)
                .ok_or_else(|| StageError::UnknownUser {
                    name: user.to_string(),
                })?,
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(id) => id,
                Err(_) => *self.groups.get(g).ok_or_else(|| StageError::UnknownGroup {
                    name: g.to_string(),
                })?,
            },
        };
        Ok((uid, gid))
    }
}

/// Whether resolving `value` needs the destination's passwd/group files.
pub fn needs_names(value: &str) -> bool {
    value.split(':').any(|p| p.parse::<u32>().is_err())
}

/// `--chown` (or a WORKDIR's USER) as numbers, reading names from `fs` only when needed.
pub async fn resolve_chown(value: &str, fs: &dyn DestFs) -> Result<(u32, u32)> {
    if needs_names(value) {
        Passwd::read(fs).await?.owner(value)
    } else {
        Passwd::default().owner(value)
    }
}
