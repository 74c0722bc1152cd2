//! The engines of a build, connected (issue 12): every engine of `[engines]` and
//! `--engine` at once, what each runs natively and can emulate, the planner's
//! [`EngineSlot`]s, the executor's [`FleetEngine`]s, the rows of `xplat engines`, and the
//! report on engines that cannot be reached at the start (before anything runs: what they
//! would have run, and whether another engine can take it).
//!
//! Without `[engines]` a build has one unnamed engine, the one the Docker CLI would use,
//! and nothing is placed: exactly the one-engine behaviour.

use std::time::Duration;

use futures::future::join_all;

use crate::engine::fleet::{self, binfmt_handlers, connect_all, EngineSpec, Survey};
use crate::engine::{DockerEngine, Engine, EngineError};
use crate::exec::fleet::{FleetEngine, OnLoss};
use crate::exec::{ExecError, Result};
use crate::plan::{place, BuildPlan, EngineSlot};
use crate::platform::{Catalog, Platform};

/// How long connecting to one engine may take before it counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// One connected engine of a build.
pub struct BuildEngine {
    /// Its name; `None` for the one engine of a build without `[engines]`.
    pub name: Option<String>,
    /// The connection.
    pub engine: DockerEngine,
    /// Platforms it runs natively (declared, else its own).
    pub native: Vec<Platform>,
    /// Platforms it can emulate, when its binfmt handlers were read.
    pub emulated: Option<Vec<Platform>>,
}

/// The engines of a build: those that answered, and those that did not.
pub struct Engines {
    /// Connected, in the user's order.
    pub live: Vec<BuildEngine>,
    /// Listed but not reachable, with why.
    pub dead: Vec<(EngineSpec, EngineError)>,
}

impl Engines {
    /// The one engine of a build without `[engines]`.
    pub fn single(engine: DockerEngine) -> Engines {
        Engines {
            live: vec![BuildEngine {
                name: None,
                native: vec![engine.platform().normalized()],
                engine,
                emulated: None,
            }],
            dead: Vec::new(),
        }
    }

    /// Whether engines were named (placement applies).
    pub fn named(&self) -> bool {
        self.live.iter().any(|e| e.name.is_some()) || !self.dead.is_empty()
    }

    /// The first live engine: the default one (`--load`, what assembled jobs resolve with).
    pub fn first(&self) -> &DockerEngine {
        &self.live[0].engine
    }

    /// The engine an output names ([`crate::exec::JobOutput::engine`]).
    pub fn by_label(&self, label: &str) -> &DockerEngine {
        self.live
            .iter()
            .find(|e| e.name.as_deref().unwrap_or("default") == label)
            .map_or_else(|| self.first(), |e| &e.engine)
    }

    /// The engine named `name` (`None`: the first).
    pub fn by_name(&self, name: Option<&str>) -> &DockerEngine {
        name.map_or_else(|| self.first(), |n| self.by_label(n))
    }

    /// What the planner places jobs on: none without `[engines]`.
    pub fn slots(&self) -> Vec<EngineSlot> {
        if !self.named() {
            return Vec::new();
        }
        self.live
            .iter()
            .map(|e| EngineSlot {
                name: e.name.clone().unwrap_or_default(),
                native: e.native.clone(),
                emulated: e.emulated.clone(),
                cpus: e.engine.profile().cpus.clamp(0, u32::MAX as i64) as u32,
            })
            .collect()
    }

    /// What the executor runs jobs on.
    pub fn fleet(&self) -> Vec<FleetEngine<'_>> {
        self.live
            .iter()
            .map(|e| FleetEngine {
                name: e.name.clone(),
                engine: &e.engine as &dyn Engine,
                native: e.native.clone(),
                emulated: e.emulated.clone(),
            })
            .collect()
    }

    /// The default build platform: the first engine's first native platform.
    pub fn build_platform(&self) -> Platform {
        self.live[0].native[0].clone()
    }

    /// Waits for the removal of the containers a build retired (they are removed beside
    /// the build's last steps, its export and its push), then removes any left: call it
    /// when the build's outputs are written, whatever the outcome. An engine gets at
    /// most two minutes; one that no longer answers is let go, as the executor lets it go
    /// (what it held went with it). Returns the first error of an engine that answers.
    pub async fn settle(&self) -> std::result::Result<(), EngineError> {
        let all = self.live.iter().map(|e| async {
            let res = match tokio::time::timeout(Duration::from_secs(120), e.engine.cleanup()).await
            {
                Ok(res) => res.map(|_| ()),
                Err(_) => Err(EngineError::Unreachable {
                    endpoint: e.engine.endpoint().to_string(),
                    reason: "no answer within 120 s while removing the build's containers".into(),
                    hint: "`xplat prune` removes what a build left behind".into(),
                }),
            };
            match res {
                Err(_) if e.engine.ping().await.is_err() => Ok(()),
                res => res,
            }
        });
        join_all(all).await.into_iter().collect()
    }

    /// At most this many jobs at once: the engines' CPUs together (at least one each).
    pub fn job_limit(&self) -> usize {
        self.live
            .iter()
            .map(|e| e.engine.profile().cpus.max(1) as usize)
            .sum()
    }
}

/// The empty image's platform for an engine: its own.
async fn handlers_of(engine: &DockerEngine) -> Option<Vec<String>> {
    let image = crate::exec::empty::empty_image(engine, engine.platform())
        .await
        .ok()?;
    binfmt_handlers(engine, &image).await.ok()
}

/// Connects to every engine of `specs` at once; with several that answer, reads each
/// one's binfmt handlers (what it can emulate). An empty list: the default engine.
/// `context` is `--context`: the default engine is resolved as the docker CLI would.
pub async fn connect(
    specs: &[EngineSpec],
    catalog: &Catalog,
    context: Option<&str>,
) -> Result<Engines> {
    if specs.is_empty() {
        let engine = DockerEngine::connect_with_context(context)
            .await
            .map_err(|source| ExecError::EngineOp {
                action: "connecting to the Docker engine".into(),
                source: Box::new(source),
            })?;
        return Ok(Engines::single(engine));
    }
    let mut live = Vec::new();
    let mut dead = Vec::new();
    for c in connect_all(specs, CONNECT_TIMEOUT, context).await {
        match c.engine {
            Ok(engine) => live.push(BuildEngine {
                name: Some(c.spec.name.clone()),
                native: fleet::native_platforms(&c.spec, &engine),
                engine,
                emulated: None,
            }),
            Err(e) => dead.push((c.spec, e)),
        }
    }
    if live.len() > 1 {
        let handlers = join_all(live.iter().map(|e| handlers_of(&e.engine))).await;
        for (e, handlers) in live.iter_mut().zip(handlers) {
            e.emulated = handlers.map(|h| fleet::emulated_platforms(&h, &e.native, catalog));
        }
    }
    if live.is_empty() {
        return Err(ExecError::EnginesUnreachable {
            message: unreachable_lines(&dead, &[]).join("\n"),
        });
    }
    Ok(Engines { live, dead })
}

/// The planner's slots of engines that did not answer: their declared platforms, no CPUs.
pub fn dead_slots(engines: &Engines) -> Vec<EngineSlot> {
    engines
        .dead
        .iter()
        .map(|(spec, _)| EngineSlot {
            name: spec.name.clone(),
            native: spec.platforms.clone(),
            emulated: Some(Vec::new()),
            cpus: 0,
        })
        .collect()
}

fn unreachable_lines(dead: &[(EngineSpec, EngineError)], rest: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = dead
        .iter()
        .map(|(spec, e)| format!("engine {} cannot be reached: {e}", spec.name))
        .collect();
    lines.extend(rest.iter().cloned());
    lines
}

/// Before anything runs: says which engines cannot be reached, the jobs each would have
/// run in `would` (planned with them), and whether the engines that answered can take
/// them. `Ok(notes)` when the build goes on without them; an error when `on_loss` is
/// [`OnLoss::Fail`] or some job has no engine left.
pub fn check_unreachable(
    engines: &Engines,
    would: &BuildPlan,
    on_loss: OnLoss,
) -> Result<Vec<String>> {
    let live = engines.slots();
    let mut rest = Vec::new();
    let mut stranded = false;
    for (spec, _) in &engines.dead {
        let jobs: Vec<&crate::plan::Job> = would
            .jobs
            .iter()
            .filter(|j| j.engine.as_deref() == Some(spec.name.as_str()))
            .collect();
        if jobs.is_empty() {
            let platforms = if spec.platforms.is_empty() {
                "its platforms are not declared".to_string()
            } else {
                Platform::format_list(&spec.platforms)
            };
            rest.push(format!(
                "  {} would have run no job of this build ({platforms})",
                spec.name
            ));
            continue;
        }
        for j in jobs {
            let takers = place::candidates(&live, &j.run_platform);
            let taker = takers
                .first()
                .map(|i| &live[*i])
                .filter(|s| s.runs_natively(&j.run_platform) || s.can_emulate(&j.run_platform));
            let how = match taker {
                Some(s) if s.runs_natively(&j.run_platform) => format!("{} can take it", s.name),
                Some(s) => format!("{} can take it, emulated", s.name),
                None => {
                    stranded = true;
                    format!("no engine left can run {}", j.run_platform)
                }
            };
            rest.push(format!(
                "  {} would have run {} ({}, {}): {how}",
                spec.name, j.id, j.stage, j.run_platform
            ));
        }
    }
    let lines = unreachable_lines(&engines.dead, &rest);
    if stranded || on_loss == OnLoss::Fail {
        let mut lines = lines;
        lines.push(if stranded {
            "nothing was run".to_string()
        } else {
            "nothing was run (--on-engine-loss fail; `rerun` goes on without them)".to_string()
        });
        return Err(ExecError::EnginesUnreachable {
            message: lines.join("\n"),
        });
    }
    Ok(lines)
}

/// The rows of `xplat engines`: every engine, reachable or not (an empty list: the
/// default engine, named `default`).
pub async fn survey(specs: &[EngineSpec], catalog: &Catalog, context: Option<&str>) -> Vec<Survey> {
    let specs: Vec<EngineSpec> = if specs.is_empty() {
        vec![EngineSpec {
            name: "default".into(),
            endpoint: None,
            platforms: Vec::new(),
        }]
    } else {
        specs.to_vec()
    };
    let connected = connect_all(&specs, CONNECT_TIMEOUT, context).await;
    let rows = connected.iter().map(|c| async move {
        match &c.engine {
            Ok(engine) => {
                let handlers = handlers_of(engine).await;
                Survey::of(&c.spec, engine, handlers, catalog)
            }
            Err(e) => Survey::unreachable(&c.spec, e),
        }
    });
    join_all(rows).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan, PlanOptions};

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap().normalized()
    }

    #[test]
    fn unreachable_engines_are_reported_with_what_they_would_have_run() {
        // No live engine can be made without Docker; the report is built from a plan
        // placed with the dead engine's declared platforms, and an empty live list.
        let df = crate::dockerfile::parse("FROM alpine\nRUN true\n").unwrap();
        let slots = vec![EngineSlot {
            name: "arm".into(),
            native: vec![p("linux/arm64")],
            emulated: Some(vec![]),
            cpus: 0,
        }];
        let opts = PlanOptions {
            targets: vec![p("linux/arm64")],
            build_platform: p("linux/amd64"),
            engines: slots,
            ..Default::default()
        };
        let would = plan(&df, &opts, &Catalog::embedded()).unwrap();
        let engines = Engines {
            live: Vec::new(),
            dead: vec![(
                EngineSpec {
                    name: "arm".into(),
                    endpoint: None,
                    platforms: vec![p("linux/arm64")],
                },
                EngineError::Unreachable {
                    endpoint: "tcp://arm:2376 (TLS)".into(),
                    reason: "connection refused".into(),
                    hint: String::new(),
                },
            )],
        };
        let err = check_unreachable(&engines, &would, OnLoss::Rerun).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("engine arm cannot be reached"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("arm would have run #0"), "{text}");
        assert!(
            text.contains("no engine left can run linux/arm64"),
            "{text}"
        );
        assert!(text.ends_with("nothing was run"), "{text}");
    }
}
