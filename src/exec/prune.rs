//! What `xplat prune` removes, decided from listings without touching the engine:
//! xplat's step-cache images, never a result the user tagged (`-t`) nor the cache images
//! it is built on; children come before parents so the engine accepts each removal.
//!
//! Filters narrow the selection (`--older-than`, `--project`, `--filter label=`): an
//! image is removed only when it matches *and* every xplat image built on it is removed
//! too (the engine refuses to remove a parent with children, and a kept child must keep
//! its parent). Cache volumes are shared by every project that names the same cache id,
//! so a project filter keeps them all; containers are matched like images.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::engine::{CacheVolume, ContainerEntry, ImageEntry, MANAGED_LABEL, PROJECT_LABEL};

/// The repository the first executor pass tagged step images with (`xplat-cache:<key>`);
/// such tags are the cache's own, not the user's.
pub const LEGACY_CACHE_REPO: &str = "xplat-cache";

/// Which of xplat's things a prune may remove. The default matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PruneFilter {
    /// Only what was made before this time (Unix seconds): `now - --older-than`.
    pub created_before: Option<i64>,
    /// Only what carries `xplat.project=<this>` (the canonical context folder).
    pub project: Option<String>,
    /// Only what carries every one of these labels (`None`: the key with any value).
    pub labels: Vec<(String, Option<String>)>,
}

impl PruneFilter {
    fn matches(&self, labels: &BTreeMap<String, String>, created: Option<i64>) -> bool {
        let old_enough = match (self.created_before, created) {
            (None, _) => true,
            (Some(cut), Some(t)) => t < cut,
            // Age unknown: not provably old enough.
            (Some(_), None) => false,
        };
        let in_project = self
            .project
            .as_ref()
            .map_or(true, |p| labels.get(PROJECT_LABEL) == Some(p));
        let labelled = self.labels.iter().all(|(k, v)| match v {
            Some(v) => labels.get(k) == Some(v),
            None => labels.contains_key(k),
        });
        old_enough && in_project && labelled
    }

    /// Whether a project or label filter is set: cache volumes carry neither, so they
    /// all stay (and need not be listed, which costs a `system df`).
    pub fn spares_volumes(&self) -> bool {
        self.project.is_some() || !self.labels.is_empty()
    }
}

/// Step-cache images to remove, children first, and what stays.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PruneSelection {
    /// Image ids to remove, every child before its parent, each with the bytes of
    /// its own layer (its size minus its parent's).
    pub remove: Vec<(String, i64)>,
    /// xplat images kept: under a user tag, not matching the filter, or under one that is kept.
    pub kept: usize,
}

fn is_managed(i: &ImageEntry) -> bool {
    i.labels.get(MANAGED_LABEL).map(String::as_str) == Some("true")
}

fn user_tagged(i: &ImageEntry) -> bool {
    i.repo_tags
        .iter()
        .any(|t| !t.starts_with(&format!("{LEGACY_CACHE_REPO}:")))
}

/// Chooses what to remove from `images` (every local image, intermediate ones included).
pub fn select(images: &[ImageEntry]) -> PruneSelection {
    select_filtered(images, &PruneFilter::default())
}

/// [`select`] narrowed by `filter`.
pub fn select_filtered(images: &[ImageEntry], filter: &PruneFilter) -> PruneSelection {
    let by_id: BTreeMap<&str, &ImageEntry> = images.iter().map(|i| (i.id.as_str(), i)).collect();
    let parent = |i: &ImageEntry| i.parent.as_deref().and_then(|p| by_id.get(p).copied());
    // What stays keeps its whole ancestry: a tagged result, and a cache image the filter
    // leaves (the engine would refuse to remove their parents anyway).
    let mut keep: BTreeSet<&str> = BTreeSet::new();
    let stays = |i: &ImageEntry| user_tagged(i) || !filter.matches(&i.labels, Some(i.created));
    for i in images.iter().filter(|i| is_managed(i) && stays(i)) {
        let mut cur = Some(i);
        while let Some(c) = cur {
            if !keep.insert(c.id.as_str()) {
                break;
            }
            cur = parent(c);
        }
    }
    let depth = |i: &ImageEntry| {
        let (mut d, mut cur) = (0usize, parent(i));
        while let Some(c) = cur {
            d += 1;
            cur = parent(c);
        }
        d
    };
    let mut remove: Vec<(usize, &ImageEntry)> = images
        .iter()
        .filter(|i| is_managed(i) && !keep.contains(i.id.as_str()))
        .map(|i| (depth(i), i))
        .collect();
    // Deepest first (children before parents); the id breaks ties for a stable order.
    remove.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    PruneSelection {
        remove: remove
            .into_iter()
            .map(|(_, i)| {
                let own = i.size - parent(i).map(|p| p.size).unwrap_or(0);
                (i.id.clone(), own.max(0))
            })
            .collect(),
        kept: images
            .iter()
            .filter(|i| is_managed(i) && keep.contains(i.id.as_str()))
            .count(),
    }
}

/// The cache volumes `filter` lets go: none when it names a project or labels (volumes
/// belong to no project), else those old enough.
pub fn select_volumes<'a>(
    volumes: &'a [CacheVolume],
    filter: &PruneFilter,
) -> Vec<&'a CacheVolume> {
    if filter.spares_volumes() {
        return Vec::new();
    }
    volumes
        .iter()
        .filter(|v| filter.matches(&v.labels, v.created))
        .collect()
}

/// The leftover containers `filter` lets go.
pub fn select_containers<'a>(
    containers: &'a [ContainerEntry],
    filter: &PruneFilter,
) -> Vec<&'a ContainerEntry> {
    containers
        .iter()
        .filter(|c| filter.matches(&c.labels, Some(c.created)))
        .collect()
}

/// A `--older-than` or `until=` value that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration (e.g. 90s, 30m, 24h, 7d, 1h30m)")]
pub struct NotADuration {
    /// The value given.
    pub text: String,
}

/// `--older-than` values: `90s`, `30m`, `24h`, `7d`, `2w`, and sums such as `1h30m`
/// (Go's `h`/`m`/`s` as docker's `until=` takes, plus days and weeks). Seconds.
pub fn parse_duration(text: &str) -> Result<i64, NotADuration> {
    let bad = || NotADuration { text: text.into() };
    let mut total: i64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: i64 = number.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        number.clear();
    }
    if !number.is_empty() || total == 0 && text.trim().is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ContainerId;

    fn img(id: &str, parent: Option<&str>, tags: &[&str], managed: bool, size: i64) -> ImageEntry {
        let mut labels = BTreeMap::new();
        if managed {
            labels.insert(MANAGED_LABEL.to_string(), "true".to_string());
        }
        ImageEntry {
            id: id.into(),
            parent: parent.map(String::from),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            labels,
            size,
            created: 1000,
        }
    }

    fn in_project(mut i: ImageEntry, project: &str, created: i64) -> ImageEntry {
        i.labels.insert(PROJECT_LABEL.into(), project.into());
        i.created = created;
        i
    }

    fn ids(s: &PruneSelection) -> Vec<&str> {
        s.remove.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn keeps_user_tags_and_their_ancestors_removes_the_rest_children_first() {
        let images = vec![
            img("base", None, &["debian:12"], false, 100),
            img("a", Some("base"), &[], true, 110),
            img("b", Some("a"), &["me/app:t-linux-amd64"], true, 130),
            img("c", Some("a"), &["xplat-cache:abc"], true, 115),
            img("d", Some("c"), &[], true, 125),
            img("e", Some("base"), &[], true, 101),
        ];
        let s = select(&images);
        assert_eq!(ids(&s), vec!["d", "c", "e"]);
        assert_eq!(s.kept, 2, "b (tagged) and a (its parent)");
        let bytes: Vec<i64> = s.remove.iter().map(|(_, b)| *b).collect();
        assert_eq!(bytes, vec![10, 5, 1]);
    }

    #[test]
    fn foreign_images_are_never_selected() {
        let images = vec![
            img("x", None, &[], false, 1),
            img("y", Some("x"), &["other:1"], false, 2),
        ];
        assert_eq!(select(&images), PruneSelection::default());
        let any = PruneFilter {
            created_before: Some(i64::MAX),
            ..PruneFilter::default()
        };
        assert_eq!(select_filtered(&images, &any), PruneSelection::default());
    }

    #[test]
    fn older_than_removes_old_chains_and_keeps_the_parents_of_new_images() {
        // old1 <- old2 <- new3 (a rebuild added a step on top), old4 alone.
        let images = vec![
            in_project(img("old1", None, &[], true, 10), "/p", 100),
            in_project(img("old2", Some("old1"), &[], true, 20), "/p", 200),
            in_project(img("new3", Some("old2"), &[], true, 30), "/p", 5000),
            in_project(img("old4", None, &[], true, 5), "/p", 300),
        ];
        let f = PruneFilter {
            created_before: Some(1000),
            ..PruneFilter::default()
        };
        let s = select_filtered(&images, &f);
        assert_eq!(ids(&s), vec!["old4"], "old1 and old2 carry new3");
        assert_eq!(s.kept, 3);
    }

    #[test]
    fn a_project_filter_touches_only_that_project() {
        let images = vec![
            in_project(img("mine", None, &[], true, 10), "/home/me/app", 1),
            in_project(img("mine2", Some("mine"), &[], true, 15), "/home/me/app", 2),
            in_project(img("theirs", None, &[], true, 10), "/home/you/svc", 1),
            img("unlabelled", None, &[], true, 10),
        ];
        let f = PruneFilter {
            project: Some("/home/me/app".into()),
            ..PruneFilter::default()
        };
        let s = select_filtered(&images, &f);
        assert_eq!(ids(&s), vec!["mine2", "mine"]);
        assert_eq!(s.kept, 2);
        let label = PruneFilter {
            labels: vec![(PROJECT_LABEL.into(), Some("/home/you/svc".into()))],
            ..PruneFilter::default()
        };
        assert_eq!(ids(&select_filtered(&images, &label)), vec!["theirs"]);
    }

    #[test]
    fn volumes_go_only_without_an_owner_filter_and_when_old_enough() {
        let v = |name: &str, created| CacheVolume {
            name: name.into(),
            labels: BTreeMap::new(),
            size: None,
            created,
        };
        let vols = vec![v("old", Some(10)), v("new", Some(5000)), v("unknown", None)];
        let names = |f: &PruneFilter| -> Vec<String> {
            select_volumes(&vols, f)
                .iter()
                .map(|v| v.name.clone())
                .collect()
        };
        assert_eq!(names(&PruneFilter::default()), ["old", "new", "unknown"]);
        let old = PruneFilter {
            created_before: Some(1000),
            ..PruneFilter::default()
        };
        assert_eq!(names(&old), ["old"]);
        let project = PruneFilter {
            project: Some("/p".into()),
            ..PruneFilter::default()
        };
        assert!(names(&project).is_empty());
    }

    #[test]
    fn containers_match_like_images() {
        let c = |id: &str, project: &str, created| ContainerEntry {
            id: ContainerId(id.into()),
            labels: BTreeMap::from([(PROJECT_LABEL.to_string(), project.to_string())]),
            created,
        };
        let cs = vec![c("a", "/p", 10), c("b", "/q", 10), c("c", "/p", 9999)];
        let f = PruneFilter {
            created_before: Some(1000),
            project: Some("/p".into()),
            ..PruneFilter::default()
        };
        let picked: Vec<&str> = select_containers(&cs, &f)
            .iter()
            .map(|c| c.id.0.as_str())
            .collect();
        assert_eq!(picked, ["a"]);
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90s", 90),
            ("30m", 1800),
            ("24h", 86_400),
            ("7d", 604_800),
            ("2w", 1_209_600),
            ("1h30m", 5400),
        ] {
            assert_eq!(parse_duration(text), Ok(secs), "{text}");
        }
        for bad in ["", "10", "h", "1y", "-1h", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
