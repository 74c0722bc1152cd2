//! Work done once per key by however many tasks ask at the same time: the base pulls, empty
//! images and volumes of the executor, the layers, base exports and blob downloads of the
//! assembler. Each key has one [`OnceCell`]; the first caller runs the work, the others wait
//! for its result (a failure leaves the cell empty, so a later caller tries again).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

/// One cell per key.
#[derive(Debug)]
pub struct OnceMap<K, V> {
    cells: Mutex<BTreeMap<K, Arc<OnceCell<V>>>>,
}

impl<K, V> Default for OnceMap<K, V> {
    fn default() -> Self {
        OnceMap {
            cells: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord + Clone, V> OnceMap<K, V> {
    /// The cell of `key` (made empty on first use): `get_or_try_init` on it does the work
    /// once.
    pub fn cell(&self, key: &K) -> Arc<OnceCell<V>> {
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.entry(key.clone()).or_default().clone()
    }

    /// The keys asked for so far.
    pub fn keys(&self) -> Vec<K> {
        let cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        cells.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_of_one_key_run_the_work_once_and_a_failure_is_retried() {
        let map: OnceMap<String, u32> = OnceMap::default();
        let runs = std::sync::atomic::AtomicU32::new(0);
        let work = || async {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<u32, ()>(7)
        };
        let (a, b) = tokio::join!(
            async { *map.cell(&"k".into()).get_or_try_init(work).await.unwrap() },
            async { *map.cell(&"k".into()).get_or_try_init(work).await.unwrap() }
        );
        assert_eq!(
            (a, b, runs.load(std::sync::atomic::Ordering::SeqCst)),
            (7, 7, 1)
        );
        let failing = map.cell(&"e".into());
        let failed = failing
            .get_or_try_init(|| async { Err::<u32, ()>(()) })
            .await;
        assert!(failed.is_err());
        let retried = map.cell(&"e".into());
        assert_eq!(*retried.get_or_try_init(work).await.unwrap(), 7);
        assert_eq!(map.keys(), vec!["e".to_string(), "k".to_string()]);
    }
}
