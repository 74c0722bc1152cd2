//! Step-cache checkpoints from a cache that travels (`--cache-from` of a `mode=max`
//! cache, [`crate::travel`]): the runner loads one into the engine only when a job would
//! start from it, so a fresh runner pays for what it uses and nothing else.

use futures::future::BoxFuture;

use crate::engine::TarBody;

/// A checkpoint made ready to `docker load`.
pub struct Archive {
    /// A docker-archive of the checkpoint's config and its own layer: the layers below
    /// it are its parent's, or the image its job starts from, which must be in the
    /// engine already (the engine loads only the layers it lacks).
    pub body: TarBody,
    /// The image id the engine gives it (the digest of its config).
    pub image_id: String,
}

/// Checkpoints another machine exported, by chain key.
pub trait Travelled: Send + Sync {
    /// `None` without an entry for `key`; else the key of the checkpoint the entry sits
    /// on (`None` inside: it sits on the image its job starts from).
    fn entry(&self, key: &str) -> Option<Option<String>>;

    /// The entry of `key`, fetched and checked against its digests.
    fn archive<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Archive, String>>;
}

/// No travelled cache.
pub struct NoTravel;

impl Travelled for NoTravel {
    fn entry(&self, _key: &str) -> Option<Option<String>> {
        None
    }

    fn archive<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Archive, String>> {
        Box::pin(async move { Err(format!("no travelled cache holds {key}")) })
    }
}
