//! `xplat prune` as a library function: xplat's step-cache images and cache volumes on
//! one engine, filtered, removed or (with `--dry-run`) only listed.

use serde::Serialize;

use crate::engine::{DockerEngine, Engine, Removal};
use crate::exec::{ExecError, Result};

/// What `prune` may remove and whether it only says so.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneOptions {
    /// `--older-than`, `--project`, `--filter label=`.
    pub filter: crate::exec::prune::PruneFilter,
    /// `--dry-run`: list, remove nothing.
    pub dry_run: bool,
}

/// One thing a prune removed (or, with `--dry-run`, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneItem {
    /// `container`, `image` or `volume`.
    pub kind: &'static str,
    /// Its id or name.
    pub id: String,
    /// Its own bytes, when known.
    pub bytes: Option<i64>,
}

/// What `prune` removed (or would remove, with `--dry-run`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct PruneOutcome {
    /// Nothing was removed: the counts say what would be.
    pub dry_run: bool,
    /// Step-cache images removed.
    pub images: usize,
    /// Bytes of the removed images' own layers.
    pub image_bytes: i64,
    /// xplat images kept: user-tagged results (`-t`), what they build on, what the
    /// filters leave, and images the engine reported in use.
    pub kept: usize,
    /// Cache volumes removed.
    pub volumes: usize,
    /// Bytes of the removed volumes the engine reported.
    pub volume_bytes: i64,
    /// Leftover xplat containers removed.
    pub containers: usize,
    /// Everything removed, in the order it went.
    pub items: Vec<PruneItem>,
}

/// Removes xplat's leftover containers, step-cache images and cache volumes that
/// `options.filter` selects (all of them by default); results a user tagged (`-t`) stay,
/// with the cache images under them (see [`exec::prune`]). With `dry_run` nothing is
/// removed and the outcome says what would be.
///
/// [`exec::prune`]: crate::exec::prune
pub async fn prune(engine: &DockerEngine, options: &PruneOptions) -> Result<PruneOutcome> {
    use crate::exec::prune::{select_containers, select_filtered, select_volumes};
    let op = |action: &str| {
        let action = action.to_string();
        move |source| ExecError::EngineOp {
            action,
            source: Box::new(source),
        }
    };
    let dry = options.dry_run;
    let mut out = PruneOutcome {
        dry_run: dry,
        ..PruneOutcome::default()
    };
    let containers = engine
        .list_managed_container_entries()
        .await
        .map_err(op("listing xplat's containers"))?;
    for c in select_containers(&containers, &options.filter) {
        if !dry {
            engine
                .remove_container(&c.id)
                .await
                .map_err(op("removing a container"))?;
        }
        out.containers += 1;
        out.items.push(PruneItem {
            kind: "container",
            id: c.id.0.clone(),
            bytes: None,
        });
    }
    let images = engine.list_images().await.map_err(op("listing images"))?;
    let selection = select_filtered(&images, &options.filter);
    out.kept = selection.kept;
    for (id, bytes) in &selection.remove {
        let removed = dry
            || engine
                .remove_unused_image(id)
                .await
                .map_err(op("removing a cached image"))?
                == Removal::Removed;
        if removed {
            out.images += 1;
            out.image_bytes += bytes;
            out.items.push(PruneItem {
                kind: "image",
                id: id.clone(),
                bytes: Some(*bytes),
            });
        } else {
            out.kept += 1;
        }
    }
    let vols = if options.filter.spares_volumes() {
        Vec::new()
    } else {
        engine
            .list_cache_volumes()
            .await
            .map_err(op("listing cache volumes"))?
    };
    for v in select_volumes(&vols, &options.filter) {
        if !dry {
            engine
                .remove_volume(&v.name)
                .await
                .map_err(op("removing a cache volume"))?;
        }
        out.volumes += 1;
        out.volume_bytes += v.size.unwrap_or(0);
        out.items.push(PruneItem {
            kind: "volume",
            id: v.name.clone(),
            bytes: v.size,
        });
    }
    Ok(out)
}
