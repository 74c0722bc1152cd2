//! A recording fake of [`Engine`] for the executor's unit tests (DESIGN: a fake is fine
//! for a unit test of scheduling logic, never as the only test of a feature): containers,
//! RUN commands in order, concurrency, commits, cleanups; and an engine that dies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::engine::{
    ContainerConfig, ContainerId, Engine, EngineError, EngineProfile, ExecSpec, ImageInfo,
    ImageLookup, OutputSink, PathKind, PathLookup, PathStat, PullSink, Result as EngineResult,
    RunSpec, TarBody,
};
use crate::platform::Platform;

/// What the fake does when a container runs.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum OnRun {
    Succeed,
    /// Commands containing "fail" exit 3.
    FailMarked,
    /// Wait for the cancellation token, like a `sleep 60`.
    Hang,
}

pub(crate) struct FakeEngine {
    pub(crate) platform: Platform,
    pub(crate) on_run: OnRun,
    pub(crate) next: AtomicUsize,
    pub(crate) live: Mutex<BTreeSet<String>>,
    /// RUN commands (last argv word) in the order they started.
    pub(crate) runs: Mutex<Vec<String>>,
    pub(crate) running: AtomicUsize,
    pub(crate) peak: AtomicUsize,
    pub(crate) cleanups: AtomicUsize,
    pub(crate) specs: Mutex<BTreeMap<String, RunSpec>>,
    pub(crate) execs: Mutex<Vec<ExecSpec>>,
    pub(crate) commits: AtomicUsize,
    pub(crate) profile: EngineProfile,
    pub(crate) run_ms: u64,
    /// Set when the engine "dies": exec fails and ping fails from then on.
    pub(crate) dead: AtomicBool,
    /// Dies at its first exec (an engine killed mid-build).
    pub(crate) dies_on_exec: bool,
    /// Dies right after its first RUN succeeded (its results die with it).
    pub(crate) dies_after_exec: bool,
}

impl FakeEngine {
    pub(crate) fn new(on_run: OnRun) -> FakeEngine {
        FakeEngine {
            platform: Platform::new("linux", "amd64", ""),
            on_run,
            next: AtomicUsize::new(0),
            live: Mutex::new(BTreeSet::new()),
            runs: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            cleanups: AtomicUsize::new(0),
            specs: Mutex::new(BTreeMap::new()),
            execs: Mutex::new(Vec::new()),
            commits: AtomicUsize::new(0),
            profile: EngineProfile::default(),
            run_ms: 30,
            dead: AtomicBool::new(false),
            dies_on_exec: false,
            dies_after_exec: false,
        }
    }

    /// A native-diff engine (commits as cheap as [`crate::engine::EngineProfile::commit_seconds`]
    /// says) whose RUN steps take 0.2 s each.
    pub(crate) fn with_native_diff(mut self) -> FakeEngine {
        self.profile.native_diff = true;
        self.run_ms = 200;
        self
    }

    pub(crate) fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }
}

impl Engine for FakeEngine {
    fn platform(&self) -> &Platform {
        &self.platform
    }

    fn profile(&self) -> &EngineProfile {
        &self.profile
    }

    fn inspect_image<'a>(&'a self, r: &'a str) -> BoxFuture<'a, EngineResult<ImageLookup>> {
        let info = ImageInfo {
            id: r.to_string(),
            repo_tags: vec![],
            platform: self.platform.clone(),
            config: ContainerConfig::default(),
            diff_ids: vec![],
            size: 0,
        };
        async move { Ok(ImageLookup::Found(Box::new(info))) }.boxed()
    }

    fn pull_image<'a>(
        &'a self,
        reference: &'a str,
        _p: &'a Platform,
        _s: PullSink<'a>,
    ) -> BoxFuture<'a, EngineResult<()>> {
        async move {
            Err(EngineError::InvalidTag {
                reference: reference.into(),
            })
        }
        .boxed()
    }

    fn create_container<'a>(
        &'a self,
        spec: &'a RunSpec,
    ) -> BoxFuture<'a, EngineResult<ContainerId>> {
        async move {
            let id = format!("c{}", self.next.fetch_add(1, Ordering::SeqCst));
            self.live.lock().unwrap().insert(id.clone());
            self.specs.lock().unwrap().insert(id.clone(), spec.clone());
            Ok(ContainerId(id))
        }
        .boxed()
    }

    fn start_container<'a>(&'a self, _id: &'a ContainerId) -> BoxFuture<'a, EngineResult<()>> {
        async { Ok(()) }.boxed()
    }

    fn exec<'a>(
        &'a self,
        id: &'a ContainerId,
        spec: &'a ExecSpec,
        _output: OutputSink<'a>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, EngineResult<i64>> {
        async move {
            let cmd = spec.argv.last().cloned().unwrap_or_default();
            if self.dies_on_exec || self.dead.load(Ordering::SeqCst) {
                self.dead.store(true, Ordering::SeqCst);
                return Err(EngineError::NoExitCode { id: id.0.clone() });
            }
            self.runs.lock().unwrap().push(cmd.clone());
            self.execs.lock().unwrap().push(spec.clone());
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            let code = match self.on_run {
                OnRun::Hang => {
                    cancel.cancelled().await;
                    self.running.fetch_sub(1, Ordering::SeqCst);
                    self.live.lock().unwrap().remove(&id.0);
                    return Err(EngineError::Cancelled { id: id.0.clone() });
                }
                OnRun::FailMarked if cmd.contains("fail") => 3,
                _ => 0,
            };
            tokio::time::sleep(Duration::from_millis(self.run_ms)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.dies_after_exec {
                self.dead.store(true, Ordering::SeqCst);
            }
            Ok(code)
        }
        .boxed()
    }

    fn put_archive<'a>(
        &'a self,
        _id: &'a ContainerId,
        _d: &'a str,
        _t: TarBody,
    ) -> BoxFuture<'a, EngineResult<()>> {
        async { Ok(()) }.boxed()
    }

    fn get_archive<'a>(
        &'a self,
        _id: &'a ContainerId,
        _p: &'a str,
    ) -> BoxStream<'a, EngineResult<Bytes>> {
        Box::pin(futures::stream::empty())
    }

    fn stat_path<'a>(
        &'a self,
        _id: &'a ContainerId,
        p: &'a str,
    ) -> BoxFuture<'a, EngineResult<PathLookup>> {
        let found = PathLookup::Found(PathStat {
            name: "sh".into(),
            size: 1,
            mode: 0o755,
            kind: PathKind::File,
        });
        async move {
            Ok(if p == "/bin/sh" {
                found
            } else {
                PathLookup::Missing
            })
        }
        .boxed()
    }

    fn run_container<'a>(
        &'a self,
        _id: &'a ContainerId,
        _output: OutputSink<'a>,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, EngineResult<i64>> {
        async { Ok(0) }.boxed()
    }

    fn commit<'a>(
        &'a self,
        id: &'a ContainerId,
        _c: &'a ContainerConfig,
    ) -> BoxFuture<'a, EngineResult<String>> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        async move { Ok(format!("img-{}", id.0)) }.boxed()
    }

    fn remove_container<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, EngineResult<()>> {
        async move {
            self.live.lock().unwrap().remove(&id.0);
            Ok(())
        }
        .boxed()
    }

    fn find_image_by_label<'a>(
        &'a self,
        _k: &'a str,
        _v: &'a str,
    ) -> BoxFuture<'a, EngineResult<ImageLookup>> {
        async { Ok(ImageLookup::Missing) }.boxed()
    }

    fn images_by_label<'a>(
        &'a self,
        _k: &'a str,
    ) -> BoxFuture<'a, EngineResult<BTreeMap<String, String>>> {
        async { Ok(BTreeMap::new()) }.boxed()
    }

    fn load<'a>(&'a self, _t: TarBody) -> BoxFuture<'a, EngineResult<Vec<String>>> {
        async { Ok(vec![]) }.boxed()
    }

    fn create_volume<'a>(
        &'a self,
        _n: &'a str,
        _l: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, EngineResult<()>> {
        async { Ok(()) }.boxed()
    }

    fn remove_volume<'a>(&'a self, _n: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        async { Ok(()) }.boxed()
    }

    fn tag_image<'a>(&'a self, _i: &'a str, _t: &'a str) -> BoxFuture<'a, EngineResult<()>> {
        async { Ok(()) }.boxed()
    }

    fn ping(&self) -> BoxFuture<'_, EngineResult<()>> {
        let dead = self.dead.load(Ordering::SeqCst);
        async move {
            if dead {
                Err(EngineError::Unreachable {
                    endpoint: "fake".into(),
                    reason: "connection refused".into(),
                    hint: String::new(),
                })
            } else {
                Ok(())
            }
        }
        .boxed()
    }

    fn retire_container(&self, id: &ContainerId) {
        self.live.lock().unwrap().remove(&id.0);
    }

    fn cleanup_unretired(&self) -> BoxFuture<'_, EngineResult<usize>> {
        self.cleanup()
    }

    fn cleanup(&self) -> BoxFuture<'_, EngineResult<usize>> {
        async move {
            self.cleanups.fetch_add(1, Ordering::SeqCst);
            let mut live = self.live.lock().unwrap();
            let n = live.len();
            live.clear();
            Ok(n)
        }
        .boxed()
    }
}
