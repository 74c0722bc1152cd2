//! `COPY --from` a stage the engine built: the [`StageFiles`] trait the assembler reads such
//! stages through (the build gives the files the executor recorded for this build's
//! consumers). Stages the assembler made, and images, are read from their layers
//! instead (`job.rs`).

use futures::future::BoxFuture;

use super::error::{AssembleError, Result};
use crate::plan::JobId;
use crate::stage::SourceFs;

/// Opens the results of jobs the engine ran, for `COPY --from`.
pub trait StageFiles: Send + Sync {
    /// A filesystem over `job`'s result, valid while it lives. Jobs are assembled
    /// concurrently: an implementation must not share one open handle between calls.
    fn open<'a>(&'a self, job: JobId) -> BoxFuture<'a, Result<Box<dyn SourceFs + 'a>>>;
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
}
