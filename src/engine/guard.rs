//! The set of live containers xplat created, so that none outlives a build.
//!
//! `Drop` cannot await, so the guarantee is explicit and in three layers:
//! 1. [`super::Engine::run_container`] kills and removes its own container when the
//!    cancellation token fires;
//! 2. every container id is recorded here on create and forgotten on remove, and the
//!    caller calls [`super::Engine::cleanup`] in its finally path (success, error and
//!    cancellation all reach it), which force-removes whatever is left;
//! 3. as a best effort only, dropping a [`super::DockerEngine`] with ids still recorded
//!    spawns their removal on the current tokio runtime (it may not finish if the
//!    runtime is shutting down; layer 2 is the one to rely on).
//!
//! A container whose work is done is *retired*: its removal starts at once in a task of
//! its own and the build goes on (removing a container is half a second of unmounting,
//! network teardown and deleting its layer, which would otherwise sit between the last
//! step and the push). The ids stay recorded until the removal ends, and
//! [`super::Engine::cleanup`] waits for every retirement before it removes what is left.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::task::JoinHandle;

use super::error::Result;
use super::ContainerId;

/// Live container ids, shared by the engine and its clones.
#[derive(Debug, Default)]
pub struct Containers {
    ids: Mutex<BTreeSet<ContainerId>>,
    retiring: Mutex<Vec<(ContainerId, JoinHandle<Result<()>>)>>,
}

impl Containers {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a created container.
    pub fn insert(&self, id: ContainerId) {
        self.lock().insert(id);
    }

    /// Forgets a removed container; returns whether it was recorded.
    pub fn remove(&self, id: &ContainerId) -> bool {
        self.lock().remove(id)
    }

    /// The ids recorded now, sorted.
    pub fn snapshot(&self) -> Vec<ContainerId> {
        self.lock().iter().cloned().collect()
    }

    /// Whether no container is recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Records the task removing a retired container.
    pub fn retiring(&self, id: ContainerId, removal: JoinHandle<Result<()>>) {
        self.retirements().push((id, removal));
    }

    /// Whether a removal of `id` was started and not waited for.
    pub fn is_retiring(&self, id: &ContainerId) -> bool {
        self.retirements().iter().any(|(r, _)| r == id)
    }

    /// The removals started and not waited for yet; the caller waits.
    pub fn take_retiring(&self) -> Vec<(ContainerId, JoinHandle<Result<()>>)> {
        std::mem::take(&mut *self.retirements())
    }

    fn retirements(&self) -> std::sync::MutexGuard<'_, Vec<(ContainerId, JoinHandle<Result<()>>)>> {
        self.retiring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<ContainerId>> {
        // A panic while holding the lock leaves a valid set: keep using it.
        self.ids.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_forgets() {
        let c = Containers::new();
        assert!(c.is_empty());
        c.insert(ContainerId("b".into()));
        c.insert(ContainerId("a".into()));
        assert_eq!(
            c.snapshot(),
            vec![ContainerId("a".into()), ContainerId("b".into())]
        );
        assert!(c.remove(&ContainerId("a".into())));
        assert!(!c.remove(&ContainerId("a".into())));
        assert_eq!(c.snapshot(), vec![ContainerId("b".into())]);
    }
}
