//! `COPY --from` a stage the engine built (and did not export): a [`SourceFs`] over a
//! container created from the stage's image (never started), removed when the step is done.
//! Stages the assembler made, and images, are read from their layers instead (`job.rs`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::TryStreamExt;

use super::error::{AssembleError, Result};
use crate::engine::{ContainerId, Engine, PathKind, PathLookup, RunSpec};
use crate::plan::JobId;
use crate::platform::Platform;
use crate::stage::fs::FsResult;
use crate::stage::{FsKind, FsStat, SourceFs};

/// Opens the results of jobs the engine ran, for `COPY --from`.
pub trait StageFiles: Send + Sync {
    /// A filesystem over `job`'s result, valid until [`StageFiles::release`].
    fn open<'a>(&'a self, job: JobId) -> BoxFuture<'a, Result<Box<dyn SourceFs + 'a>>>;
    /// Releases everything `open` made (called after every step that opened something).
    fn release(&self) -> BoxFuture<'_, ()>;
    /// Whether `job`'s result is in the engine (then it is read there, not assembled).
    fn has(&self, _job: JobId) -> bool {
        false
    }
}

/// A [`StageFiles`] for builds where no engine-built stage is copied from.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStages;

impl StageFiles for NoStages {
    fn open<'a>(&'a self, job: JobId) -> BoxFuture<'a, Result<Box<dyn SourceFs + 'a>>> {
        Box::pin(async move {
            Err(AssembleError::MissingInput {
                what: format!("job {job}"),
                needed_by: "COPY --from".into(),
            })
        })
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

/// Reads stage results that live in the engine, by job id.
pub struct EngineStageFiles<'a> {
    /// The engine.
    pub engine: &'a dyn Engine,
    /// Each finished job's engine image and platform.
    pub images: BTreeMap<JobId, (String, Platform)>,
    /// Containers opened and not yet removed.
    pub open: Mutex<Vec<ContainerId>>,
}

impl<'a> EngineStageFiles<'a> {
    /// Stage files over `images`.
    pub fn new(engine: &'a dyn Engine, images: BTreeMap<JobId, (String, Platform)>) -> Self {
        EngineStageFiles {
            engine,
            images,
            open: Mutex::new(Vec::new()),
        }
    }
}

impl StageFiles for EngineStageFiles<'_> {
    fn open<'a>(&'a self, job: JobId) -> BoxFuture<'a, Result<Box<dyn SourceFs + 'a>>> {
        Box::pin(async move {
            let (image, platform) =
                self.images
                    .get(&job)
                    .ok_or_else(|| AssembleError::MissingInput {
                        what: format!("job {job}"),
                        needed_by: "COPY --from".into(),
                    })?;
            let spec = RunSpec {
                image: image.clone(),
                platform: Some(platform.clone()),
                ..RunSpec::default()
            };
            let id = self
                .engine
                .create_container(&spec)
                .await
                .map_err(AssembleError::engine(format!(
                    "creating a container to read job {job}"
                )))?;
            self.open.lock().expect("open lock").push(id.clone());
            Ok(Box::new(ContainerFs {
                engine: self.engine,
                id,
            }) as Box<dyn SourceFs + 'a>)
        })
    }

    fn has(&self, job: JobId) -> bool {
        self.images.contains_key(&job)
    }

    fn release(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let ids: Vec<ContainerId> = std::mem::take(&mut *self.open.lock().expect("open lock"));
            for id in ids {
                // Best effort: the engine's cleanup removes whatever is left on exit.
                let _ = self.engine.remove_container(&id).await;
            }
        })
    }
}

/// A container's filesystem through `HEAD`/`GET /archive`.
struct ContainerFs<'a> {
    engine: &'a dyn Engine,
    id: ContainerId,
}

impl SourceFs for ContainerFs<'_> {
    fn stat<'b>(&'b self, path: &'b str) -> BoxFuture<'b, FsResult<Option<FsStat>>> {
        Box::pin(async move {
            Ok(match self.engine.stat_path(&self.id, path).await? {
                PathLookup::Missing => None,
                PathLookup::Found(s) => Some(FsStat {
                    kind: match s.kind {
                        PathKind::Dir => FsKind::Dir,
                        PathKind::File => FsKind::File,
                        PathKind::Symlink { target } => FsKind::Symlink { target },
                    },
                    mode: s.mode,
                    owner: None,
                    mtime: 0,
                }),
            })
        })
    }

    fn read_dir<'b>(&'b self, path: &'b str) -> BoxFuture<'b, FsResult<Vec<String>>> {
        Box::pin(async move {
            let dir = format!("{}/.", path.trim_end_matches('/'));
            let tar = self.archive(&dir).await?;
            let mut names = Vec::new();
            for entry in tar::Archive::new(&tar[..]).entries()? {
                let entry = entry?;
                let member = entry.path()?.to_string_lossy().into_owned();
                let rel = member.trim_start_matches("./").trim_end_matches('/');
                if !rel.is_empty() && rel != "." && !rel.contains('/') {
                    names.push(rel.to_string());
                }
            }
            names.sort();
            names.dedup();
            Ok(names)
        })
    }

    fn archive<'b>(&'b self, path: &'b str) -> BoxFuture<'b, FsResult<Bytes>> {
        Box::pin(async move {
            let chunks: Vec<Bytes> = self
                .engine
                .get_archive(&self.id, path)
                .try_collect()
                .await?;
            Ok(chunks.concat().into())
        })
    }
}
