//! One stage's instructions, expanded with the ARG and ENV values each can see,
//! the way BuildKit expands them:
//! - ADD, COPY (sources, dest, `--from`, `--chown`, `--chmod`, `--exclude`,
//!   unquoted heredoc bodies), ENV and LABEL (keys and values), ARG defaults,
//!   EXPOSE (split into words), STOPSIGNAL, USER, VOLUME, WORKDIR and the
//!   string keys of `RUN --mount` are expanded;
//! - RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD and MAINTAINER are not:
//!   the shell (or a child build) does that later;
//! - words see the stage's state env ([`super::start`]): ENV and ARG values
//!   in one namespace, the later setter winning; all pairs of one ENV line are
//!   expanded with the values from before that line, each ARG of one line sees
//!   the ones before it;
//! - `RUN --mount` targets that are missing or relative are put at or under the
//!   WORKDIR (BuildKit's `path.Join("/", workdir, target)`, `/` refused).
//!
//! The base's ONBUILD triggers run first, at the FROM line, like any other step.
//! Stage references (`COPY --from`, `--mount from=`) are returned by name for
//! the graph to resolve.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Heredoc, Instruction, KeyValue, Location, MountType, Stage};

use super::args::stage_arg_value;
use super::error::{PlanError, Result};
use super::start::{workdir, End, Setter, Start, StateEnv};
use super::Step;

/// What a stage can see when it starts.
pub(super) struct StageCtx<'a> {
    /// The global scope for this target (predefined + global ARGs).
    pub global: &'a BTreeMap<String, String>,
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// The Dockerfile's escape token.
    pub escape: char,
    /// What the stage starts from (state env, WORKDIR, triggers).
    pub start: Start,
}

/// Where in a step a stage reference sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// `COPY --from=`
    CopyFrom,
    /// The n-th `RUN --mount` (`from=`).
    Mount(usize),
}

/// A `--from` reference, expanded, not yet resolved.
#[derive(Debug, Clone)]
pub(super) struct RefUse {
    pub step: usize,
    pub slot: Slot,
    pub name: String,
    pub location: Location,
}

/// A stage, expanded.
#[derive(Debug, Clone)]
pub(super) struct Body {
    /// Steps with `from`/`mount_from` left empty.
    pub steps: Vec<Step>,
    /// References to fill in.
    pub refs: Vec<RefUse>,
    /// What a stage built FROM this one starts from.
    pub end: End,
    /// ARG names declared in the stage.
    pub declared: BTreeSet<String>,
    /// Lines of RUN steps.
    pub run_lines: Vec<usize>,
}

struct Words {
    ex: Expander,
    env: BTreeMap<String, String>,
    keyword: &'static str,
    location: Location,
    unresolved: BTreeSet<String>,
}

impl Words {
    fn word(&mut self, w: &str) -> Result<String> {
        let out = self
            .ex
            .expand_word_with_matches(w, &self.env)
            .map_err(|source| PlanError::Expand {
                keyword: self.keyword,
                word: w.to_string(),
                source,
                location: self.location,
            })?;
        self.unresolved.extend(out.unmatched);
        Ok(out.value)
    }

    fn split(&mut self, w: &str) -> Result<Vec<String>> {
        let out = self
            .ex
            .expand_word_with_matches(w, &self.env)
            .map_err(|source| PlanError::Expand {
                keyword: self.keyword,
                word: w.to_string(),
                source,
                location: self.location,
            })?;
        self.unresolved.extend(out.unmatched);
        Ok(out.words)
    }

    fn opt(&mut self, w: &Option<String>) -> Result<Option<String>> {
        w.as_deref().map(|w| self.word(w)).transpose()
    }

    fn all(&mut self, ws: &[String]) -> Result<Vec<String>> {
        ws.iter().map(|w| self.word(w)).collect()
    }

    fn kvs(&mut self, kvs: &[KeyValue]) -> Result<Vec<KeyValue>> {
        kvs.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: self.word(&kv.key)?,
                    value: self.word(&kv.value)?,
                })
            })
            .collect()
    }

    /// Heredoc bodies of COPY/ADD: only `$` expands, quotes are file content.
    fn heredocs(&mut self, hs: &[Heredoc]) -> Result<Vec<Heredoc>> {
        let saved = self.ex;
        self.ex = Expander::new('\\').with_skip_process_quotes(true);
        let out = hs
            .iter()
            .map(|h| {
                let mut h = h.clone();
                if h.expand {
                    h.content = self.word(&h.content)?;
                }
                Ok(h)
            })
            .collect();
        self.ex = saved;
        out
    }
}

/// Expands the base's triggers, then every instruction of `stage`, in order.
pub(super) fn resolve_stage(stage: &Stage, ctx: StageCtx<'_>) -> Result<Body> {
    let from_line = stage.span.start_line;
    let Start {
        env: mut state,
        complete,
        workdir: mut dir,
        triggers,
    } = ctx.start;
    let mut body = Body {
        steps: Vec::new(),
        refs: Vec::new(),
        end: End {
            env: StateEnv::default(),
            complete,
            workdir: None,
            onbuild: Vec::new(),
        },
        declared: BTreeSet::new(),
        run_lines: Vec::new(),
    };
    let all = triggers.iter().map(|t| (from_line, t)).chain(
        stage
            .instructions
            .iter()
            .map(|i| (i.span.start_line, &i.node)),
    );
    for (i, (line, raw)) in all.enumerate() {
        let args_before = state.args();
        let mut w = Words {
            ex: Expander::new(ctx.escape),
            env: state.values(),
            keyword: raw.keyword(),
            location: Location::line(line),
            unresolved: BTreeSet::new(),
        };
        let mut mounts_at_workdir = Vec::new();
        let instruction = match raw {
            Instruction::Env(kvs) => {
                let kvs = w.kvs(kvs)?;
                for kv in &kvs {
                    state.set(&kv.key, kv.value.clone(), Setter::Env);
                }
                Instruction::Env(kvs)
            }
            Instruction::Arg(decls) => {
                let mut out = Vec::new();
                for d in decls {
                    // Each ARG of one line sees the ones before it.
                    w.env = state.values();
                    let default = w.opt(&d.default)?;
                    let value =
                        stage_arg_value(&d.name, default.clone(), ctx.global, ctx.build_args);
                    body.declared.insert(d.name.clone());
                    // No value: the name keeps what it had (an inherited ARG, an ENV).
                    if let Some(v) = value {
                        state.set(&d.name, v, Setter::Arg);
                    }
                    out.push(crate::dockerfile::ArgDecl {
                        name: d.name.clone(),
                        default,
                    });
                }
                Instruction::Arg(out)
            }
            Instruction::Label(kvs) => Instruction::Label(w.kvs(kvs)?),
            Instruction::Workdir(s) => {
                let s = w.word(s)?;
                dir = workdir(dir.as_deref(), &s);
                Instruction::Workdir(s)
            }
            Instruction::User(s) => Instruction::User(w.word(s)?),
            Instruction::Stopsignal(s) => Instruction::Stopsignal(w.word(s)?),
            Instruction::Volume(vs) => Instruction::Volume(w.all(vs)?),
            Instruction::Expose(ps) => {
                let mut out = Vec::new();
                for p in ps {
                    out.extend(w.split(p)?);
                }
                Instruction::Expose(out)
            }
            Instruction::Copy(c) => {
                let mut c = c.clone();
                c.sources = w.all(&c.sources)?;
                c.dest = w.word(&c.dest)?;
                c.from = w.opt(&c.from)?;
                c.chown = w.opt(&c.chown)?;
                c.chmod = w.opt(&c.chmod)?;
                c.exclude = w.all(&c.exclude)?;
                c.heredocs = w.heredocs(&c.heredocs)?;
                if let Some(from) = &c.from {
                    body.refs.push(RefUse {
                        step: i,
                        slot: Slot::CopyFrom,
                        name: from.clone(),
                        location: Location::line(line),
                    });
                }
                Instruction::Copy(c)
            }
            Instruction::Add(a) => {
                let mut a = a.clone();
                a.sources = w.all(&a.sources)?;
                a.dest = w.word(&a.dest)?;
                a.chown = w.opt(&a.chown)?;
                a.chmod = w.opt(&a.chmod)?;
                a.exclude = w.all(&a.exclude)?;
                a.checksum = w.opt(&a.checksum)?;
                a.heredocs = w.heredocs(&a.heredocs)?;
                Instruction::Add(a)
            }
            Instruction::Run(r) => {
                let mut r = r.clone();
                for (m, mount) in r.mounts.iter_mut().enumerate() {
                    mount.target = w.opt(&mount.target)?;
                    mount.source = w.opt(&mount.source)?;
                    mount.from = w.opt(&mount.from)?;
                    mount.id = w.opt(&mount.id)?;
                    mount.env = w.opt(&mount.env)?;
                    if let Some(from) = &mount.from {
                        body.refs.push(RefUse {
                            step: i,
                            slot: Slot::Mount(m),
                            name: from.clone(),
                            location: Location::line(line),
                        });
                    }
                    if !place_mount(mount, dir.as_deref(), m, line)? {
                        mounts_at_workdir.push(m);
                    }
                }
                body.run_lines.push(line);
                Instruction::Run(r)
            }
            Instruction::Onbuild(o) => {
                body.end.onbuild.push(o.original.clone());
                raw.clone()
            }
            other => other.clone(),
        };
        let mount_from = match &instruction {
            Instruction::Run(r) if r.mounts.iter().any(|m| m.from.is_some()) => {
                vec![None; r.mounts.len()]
            }
            _ => Vec::new(),
        };
        // With a known base, a name unset at plan time is unset: it expands to "".
        let unresolved: Vec<String> = if complete {
            Vec::new()
        } else {
            w.unresolved.into_iter().collect()
        };
        let template = (!unresolved.is_empty()).then(|| raw.clone());
        // RUN gets the ARGs in its environment; a step with a template needs them
        // to be expanded again with the base image's ENV.
        let step_args = if matches!(instruction, Instruction::Run(_)) || template.is_some() {
            args_before
        } else {
            BTreeMap::new()
        };
        body.steps.push(Step {
            line,
            instruction,
            args: step_args,
            from: None,
            mount_from,
            unresolved,
            template,
            mounts_at_workdir,
        });
    }
    body.end.env = state;
    body.end.workdir = dir;
    Ok(body)
}

/// Puts a bind, cache or tmpfs mount with no target, or a relative one, at or
/// under the WORKDIR `dir` (as BuildKit; engine: `WORKDIR /src` then
/// `RUN --mount=type=bind ls /src` listed the context, `target=rel` mounted at
/// `/src/rel`, and with no WORKDIR the build failed with `invalid mount target
/// "/"`). Returns false when it depends on a WORKDIR the planner does not know.
/// Secret and ssh mounts keep their own defaults (`/run/secrets/<id>`, ...).
/// One difference, on purpose: BuildKit compares an absolute target with `/` as
/// written, so `target=/a/..` passes its check and the RUN then fails (engine: a tmpfs
/// there made `ls /` exit 1); here it is refused at plan time like `/`.
fn place_mount(
    mount: &mut crate::dockerfile::Mount,
    dir: Option<&str>,
    index: usize,
    line: usize,
) -> Result<bool> {
    if !matches!(
        mount.kind,
        MountType::Bind | MountType::Cache | MountType::Tmpfs
    ) {
        return Ok(true);
    }
    let target = mount.target.clone().unwrap_or_default();
    let resolved = if target.starts_with('/') {
        crate::context::clean_path(&target)
    } else {
        match dir {
            Some(dir) => crate::context::clean_path(&format!("/{dir}/{target}")),
            None => return Ok(false),
        }
    };
    if resolved == "/" {
        return Err(PlanError::InvalidMountTarget {
            target: resolved,
            mount: index + 1,
            location: Location::line(line),
        });
    }
    if !target.starts_with('/') {
        mount.target = Some(resolved);
    }
    Ok(true)
}

/// Expands one instruction the way [`resolve_stage`] does, with `vars` as everything
/// it can see: the config Env overridden by the step's [`Step::args`] (the later
/// setter wins). For the executor: ONBUILD triggers of a base image the plan did not
/// know, and [`Step::template`]s. An `ARG` keeps its expanded default (the executor
/// does not scope ARGs); mount targets left relative are the caller's to place.
pub fn expand_instruction(
    instruction: &Instruction,
    line: usize,
    vars: &BTreeMap<String, String>,
    escape: char,
) -> Result<Instruction> {
    let stage = Stage {
        index: 0,
        name: None,
        base: "scratch".into(),
        platform: None,
        span: crate::dockerfile::Span {
            start_line: line,
            end_line: line,
        },
        instructions: vec![crate::dockerfile::Spanned {
            node: instruction.clone(),
            span: crate::dockerfile::Span {
                start_line: line,
                end_line: line,
            },
        }],
    };
    let empty = BTreeMap::new();
    let mut env = StateEnv::default();
    for (k, v) in vars {
        env.set(k, v.clone(), Setter::Env);
    }
    let body = resolve_stage(
        &stage,
        StageCtx {
            global: &empty,
            build_args: &empty,
            escape,
            start: Start {
                env,
                complete: true,
                workdir: None,
                triggers: Vec::new(),
            },
        },
    )?;
    Ok(body
        .steps
        .into_iter()
        .next()
        .map(|s| s.instruction)
        .unwrap_or_else(|| instruction.clone()))
}
