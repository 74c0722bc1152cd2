//! The stage graph: stage lookup, per-target stage instances, references,
//! cycles, dedup of identical instances into one [`Job`], topological order.
//!
//! For each target platform (in `--platform` order) the target stage is
//! instantiated depth first: a stage's base and the stages it copies from are
//! instantiated before it, so jobs come out in dependency order. An instance
//! whose stage and cache key equal an existing job's *is* that job (it then
//! serves one more platform): a `FROM --platform=$BUILDPLATFORM` stage that
//! declares no `TARGET*` ARG resolves the same for every target.
//!
//! Lookups follow BuildKit: `FROM name` matches an *earlier* stage by name
//! (else it is an image); `COPY --from` / `--mount from=` take a number as a
//! stage index and a name as any stage's name, else an image.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Dockerfile, Instruction, Location};
use crate::platform::{Catalog, Platform};

use super::args::{global_names, global_scope, is_predefined, predefined};
use super::error::{PlanError, Result};
use super::key::CacheKey;
use super::mode::decide;
use super::resolve::{resolve_stage, Slot, StageCtx};
use super::start::{End, Start};
use super::{Base, BuildPlan, Job, JobId, PlanOptions, Source, StageRef, Step, TargetPlan};

/// A stage's FROM line, resolved for one target.
#[derive(Debug, Clone)]
enum BaseName {
    Stage(usize),
    Image(String),
    Scratch,
}

#[derive(Debug, Clone)]
struct Header {
    base: BaseName,
    platform: Option<Platform>,
}

/// What the key of a step hashes: no line numbers, sources by key.
#[derive(Serialize)]
struct KeyStep<'a> {
    instruction: &'a Instruction,
    /// Two templates can expand alike offline and differ with the image's Env.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'a Instruction>,
    args: &'a BTreeMap<String, String>,
    from: Option<KeySource<'a>>,
    mount_from: Vec<Option<KeySource<'a>>>,
}

#[derive(Serialize)]
enum KeySource<'a> {
    Stage(&'a CacheKey),
    Image(&'a str),
}

#[derive(Serialize)]
struct KeyInput<'a> {
    run_platform: &'a Platform,
    base: KeySource<'a>,
    steps: Vec<KeyStep<'a>>,
    /// The ARG values the stage ends with, which a stage built FROM it inherits.
    /// A stage with `ARG TARGETPLATFORM` and no RUN has the same steps for every
    /// target: without these, one job would serve all targets and its children
    /// would all see the first target's value (issue 10: an amd64 binary in the
    /// arm64 image).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    end_args: BTreeMap<String, String>,
}

struct Planner<'a> {
    df: &'a Dockerfile,
    opts: &'a PlanOptions,
    jobs: Vec<Job>,
    /// What each job ends with (what a stage built FROM it starts from).
    ends: Vec<End>,
    /// (stage index, key) → job: the dedup table.
    by_key: BTreeMap<(usize, CacheKey), JobId>,
    /// ARG names declared in planned stages.
    declared: BTreeSet<String>,
}

/// One target's walk.
struct TargetWalk<'a> {
    target: &'a Platform,
    global: BTreeMap<String, String>,
    headers: Vec<Header>,
    memo: BTreeMap<usize, JobId>,
    visiting: Vec<usize>,
}

pub(super) fn build(df: &Dockerfile, opts: &PlanOptions, catalog: &Catalog) -> Result<BuildPlan> {
    if opts.targets.is_empty() {
        return Err(PlanError::NoTargets);
    }
    let mut targets: Vec<Platform> = Vec::new();
    for t in &opts.targets {
        let t = t.normalized();
        if targets.contains(&t) {
            return Err(PlanError::DuplicateTarget {
                platform: t.format_all(),
            });
        }
        targets.push(t);
    }
    let build_platform = opts.build_platform.normalized();
    let natives = opts.native_platforms();
    let final_stage = target_stage(df, opts.target_stage.as_deref())?;
    let target_stage_name = match (&opts.target_stage, &df.stages[final_stage].name) {
        (Some(t), _) => t.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => "default".to_string(),
    };
    let mut planner = Planner {
        df,
        opts,
        jobs: Vec::new(),
        ends: Vec::new(),
        by_key: BTreeMap::new(),
        declared: global_names(&df.meta_args),
    };
    let mut plans = Vec::new();
    for target in &targets {
        let build = opts.build_platform_for(target);
        let pre = predefined(&build, target, &target_stage_name, catalog);
        let global = global_scope(&df.meta_args, &pre, &opts.build_args, df.directives.escape)?;
        let headers = df
            .stages
            .iter()
            .map(|s| header(df, s.index, &global))
            .collect::<Result<Vec<_>>>()?;
        let mut walk = TargetWalk {
            target,
            global,
            headers,
            memo: BTreeMap::new(),
            visiting: Vec::new(),
        };
        let loc = Location::line(df.stages[final_stage].span.start_line);
        let job = planner.instance(&mut walk, &build, &natives, final_stage, loc)?;
        plans.push(TargetPlan {
            platform: target.clone(),
            final_job: job,
            build_platform: (build != build_platform).then_some(build),
        });
    }
    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| !planner.declared.contains(*k) && !is_predefined(k))
        .cloned()
        .collect();
    let stage = &df.stages[final_stage];
    Ok(BuildPlan {
        build_platform,
        target_stage: StageRef {
            index: stage.index,
            name: stage.name.clone(),
        },
        targets: plans,
        jobs: planner.jobs,
        unused_build_args,
    })
}

/// The stage `--target` names (name, case-insensitive, or index), else the last.
pub(super) fn target_stage(df: &Dockerfile, name: Option<&str>) -> Result<usize> {
    match name {
        None => Ok(df.stages.len() - 1),
        Some(n) => df.stage(n).map(|s| s.index).ok_or_else(|| {
            let lower = n.to_ascii_lowercase();
            let suggestion = df
                .stages
                .iter()
                .filter_map(|s| s.name.clone())
                .map(|s| (strsim::levenshtein(&s, &lower), s))
                .filter(|(d, s)| *d <= 2.max(s.len() / 3))
                .min()
                .map(|(_, s)| s);
            PlanError::UnknownTarget {
                name: n.to_string(),
                suggestion,
            }
        }),
    }
}

/// Resolves stage `i`'s FROM line with the global scope.
fn header(df: &Dockerfile, i: usize, global: &BTreeMap<String, String>) -> Result<Header> {
    let stage = &df.stages[i];
    let location = Location::line(stage.span.start_line);
    let ex = Expander::new(df.directives.escape);
    let base = ex
        .expand_word(&stage.base, global)
        .map_err(|source| PlanError::Expand {
            keyword: "FROM",
            word: stage.base.clone(),
            source,
            location,
        })?;
    if base.is_empty() {
        return Err(PlanError::BlankBaseName {
            expr: stage.base.clone(),
            location,
        });
    }
    let lower = base.to_ascii_lowercase();
    let base = if let Some(s) = df.stages[..i]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        BaseName::Stage(s.index)
    } else if base == "scratch" {
        BaseName::Scratch
    } else {
        BaseName::Image(base)
    };
    let platform = match &stage.platform {
        None => None,
        Some(expr) => {
            let out = ex
                .expand_word_with_matches(expr, global)
                .map_err(|source| PlanError::Expand {
                    keyword: "FROM",
                    word: expr.clone(),
                    source,
                    location,
                })?;
            if out.value.is_empty() {
                let suggestion = out.unmatched.iter().find_map(|u| {
                    global
                        .keys()
                        .map(|k| (strsim::levenshtein(k, u), k))
                        .filter(|(d, _)| *d <= 2)
                        .min()
                        .map(|(_, k)| k.clone())
                });
                return Err(PlanError::EmptyPlatform {
                    expr: expr.clone(),
                    suggestion,
                    location,
                });
            }
            let p = Platform::parse(&out.value).map_err(|source| PlanError::InvalidPlatform {
                expr: expr.clone(),
                value: out.value.clone(),
                source: Box::new(source),
                location,
            })?;
            Some(p.normalized())
        }
    };
    Ok(Header { base, platform })
}

impl Planner<'_> {
    /// The job of stage `idx` for this walk's target; `location` is the reference
    /// that asked for it (for cycle errors).
    fn instance(
        &mut self,
        walk: &mut TargetWalk<'_>,
        build: &Platform,
        natives: &[Platform],
        idx: usize,
        location: Location,
    ) -> Result<JobId> {
        if let Some(&id) = walk.memo.get(&idx) {
            return Ok(id);
        }
        if let Some(pos) = walk.visiting.iter().position(|&s| s == idx) {
            let mut cycle: Vec<String> = walk.visiting[pos..]
                .iter()
                .map(|&s| self.stage_ref(s).to_string())
                .collect();
            cycle.push(self.stage_ref(idx).to_string());
            return Err(PlanError::Cycle { cycle, location });
        }
        walk.visiting.push(idx);
        let stage = &self.df.stages[idx];
        let header = walk.headers[idx].clone();
        let from_line = Location::line(stage.span.start_line);
        let (base, run_platform, start) = match header.base {
            BaseName::Stage(b) => {
                let job = self.instance(walk, build, natives, b, from_line)?;
                let j = &self.jobs[job.0];
                (
                    Base::Stage { job },
                    j.run_platform.clone(),
                    Start::stage(&self.ends[job.0], from_line)?,
                )
            }
            BaseName::Image(reference) => {
                let run_platform = header.platform.unwrap_or_else(|| walk.target.clone());
                let key = (reference.clone(), run_platform.format_all());
                match self.opts.bases.get(&key) {
                    Some(info) => (
                        Base::Image {
                            reference,
                            pinned: Some(info.pinned.clone()),
                        },
                        run_platform.clone(),
                        Start::image(info, &run_platform, from_line)?,
                    ),
                    None => (
                        Base::Image {
                            reference,
                            pinned: None,
                        },
                        run_platform,
                        Start::unknown_image(),
                    ),
                }
            }
            BaseName::Scratch => {
                let run_platform = header.platform.unwrap_or_else(|| walk.target.clone());
                let start = Start::scratch(&run_platform);
                (Base::Scratch, run_platform, start)
            }
        };
        let body = resolve_stage(
            stage,
            StageCtx {
                global: &walk.global,
                build_args: &self.opts.build_args,
                escape: self.df.directives.escape,
                start,
            },
        )?;
        self.declared.extend(body.declared.iter().cloned());
        let mut steps = body.steps;
        let mut deps = BTreeSet::new();
        if let Base::Stage { job } = &base {
            deps.insert(*job);
        }
        for r in &body.refs {
            let source = match self.lookup_ref(&r.name, &r.step, &steps, r.location)? {
                Some(s) => {
                    let job = self.instance(walk, build, natives, s, r.location)?;
                    deps.insert(job);
                    Source::Stage { job }
                }
                None => Source::Image {
                    reference: r.name.clone(),
                },
            };
            match r.slot {
                Slot::CopyFrom => steps[r.step].from = Some(source),
                Slot::Mount(m) => steps[r.step].mount_from[m] = Some(source),
            }
        }
        let key = self.key(&run_platform, &base, &steps, body.end.env.args());
        let id = match self.by_key.get(&(idx, key.clone())) {
            Some(&id) => {
                let job = &mut self.jobs[id.0];
                if !job.platforms.contains(walk.target) {
                    job.platforms.push(walk.target.clone());
                }
                id
            }
            None => {
                let id = JobId(self.jobs.len());
                let (mode, reason) = decide(build, natives, &run_platform, &body.run_lines);
                self.jobs.push(Job {
                    id,
                    stage: self.stage_ref(idx),
                    platforms: vec![walk.target.clone()],
                    run_platform,
                    mode,
                    reason,
                    base,
                    steps,
                    deps: deps.into_iter().collect(),
                    key: key.clone(),
                    engine: None,
                });
                self.ends.push(body.end);
                self.by_key.insert((idx, key), id);
                id
            }
        };
        walk.visiting.pop();
        walk.memo.insert(idx, id);
        Ok(id)
    }

    fn stage_ref(&self, idx: usize) -> StageRef {
        StageRef {
            index: idx,
            name: self.df.stages[idx].name.clone(),
        }
    }

    /// A `--from` value: a stage index (all digits), a stage name, else an image.
    fn lookup_ref(
        &self,
        name: &str,
        step: &usize,
        steps: &[Step],
        location: Location,
    ) -> Result<Option<usize>> {
        if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
            let stages = self.df.stages.len();
            return match name.parse::<usize>() {
                Ok(i) if i < stages => Ok(Some(i)),
                _ => Err(PlanError::InvalidStageIndex {
                    index: name.parse().unwrap_or(usize::MAX),
                    keyword: steps[*step].instruction.keyword(),
                    stages,
                    location,
                }),
            };
        }
        let lower = name.to_ascii_lowercase();
        Ok(self
            .df
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map(|s| s.index))
    }

    fn key(
        &self,
        run_platform: &Platform,
        base: &Base,
        steps: &[Step],
        end_args: BTreeMap<String, String>,
    ) -> CacheKey {
        fn src<'k>(jobs: &'k [Job], s: &'k Source) -> KeySource<'k> {
            match s {
                Source::Stage { job } => KeySource::Stage(&jobs[job.0].key),
                Source::Image { reference } => KeySource::Image(reference),
            }
        }
        let base = match base {
            Base::Stage { job } => KeySource::Stage(&self.jobs[job.0].key),
            Base::Image { reference, pinned } => {
                KeySource::Image(pinned.as_deref().unwrap_or(reference))
            }
            Base::Scratch => KeySource::Image("scratch"),
        };
        let input = KeyInput {
            run_platform,
            base,
            steps: steps
                .iter()
                .map(|s| KeyStep {
                    instruction: &s.instruction,
                    template: s.template.as_ref(),
                    args: &s.args,
                    from: s.from.as_ref().map(|f| src(&self.jobs, f)),
                    mount_from: s
                        .mount_from
                        .iter()
                        .map(|m| m.as_ref().map(|f| src(&self.jobs, f)))
                        .collect(),
                })
                .collect(),
            end_args,
        };
        CacheKey::of(&input)
    }
}
