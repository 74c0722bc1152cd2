//! What `xplat prune` removes, decided from an image listing without touching the
//! engine: xplat's step-cache images, never a result the user tagged (`-t`) nor the
//! cache images it is built on. Children come before parents so the engine accepts
//! each removal.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::engine::{ImageEntry, MANAGED_LABEL};

/// The repository the first executor pass tagged step images with (`xplat-cache:<key>`);
/// such tags are the cache's own, not the user's.
pub const LEGACY_CACHE_REPO: &str = "xplat-cache";

/// Step-cache images to remove, children first, and what stays.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PruneSelection {
    /// Image ids to remove, every child before its parent, each with the bytes of
    /// its own layer (its size minus its parent's).
    pub remove: Vec<(String, i64)>,
    /// xplat images kept because a user tag points at them or at a child of theirs.
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
    let by_id: BTreeMap<&str, &ImageEntry> = images.iter().map(|i| (i.id.as_str(), i)).collect();
    let parent = |i: &ImageEntry| i.parent.as_deref().and_then(|p| by_id.get(p).copied());
    // A tagged image keeps its whole ancestry: the engine would refuse anyway.
    let mut keep: BTreeSet<&str> = BTreeSet::new();
    for i in images.iter().filter(|i| is_managed(i) && user_tagged(i)) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        }
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
        let ids: Vec<&str> = s.remove.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["d", "c", "e"]);
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
    }
}
