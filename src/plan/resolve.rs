//! One stage's instructions, expanded with the ARG and ENV values each can see,
//! the way BuildKit expands them:
//! - ADD, COPY (sources, dest, `--from`, `--chown`, `--chmod`, `--exclude`,
//!   unquoted heredoc bodies), ENV and LABEL (keys and values), ARG defaults,
//!   EXPOSE (split into words), STOPSIGNAL, USER, VOLUME, WORKDIR and the
//!   string keys of `RUN --mount` are expanded;
//! - RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD and MAINTAINER are not:
//!   the shell (or a child build) does that later;
//! - ENV wins over an ARG of the same name; all pairs of one ENV line are
//!   expanded with the values from before that line.
//!
//! Stage references (`COPY --from`, `--mount from=`) are returned by name for
//! the graph to resolve.

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::expand::Expander;
use crate::dockerfile::{Heredoc, Instruction, KeyValue, Location, Stage};

use super::args::stage_arg_value;
use super::error::{PlanError, Result};
use super::Step;

/// What a stage can see when it starts.
pub(super) struct StageCtx<'a> {
    /// The global scope for this target (predefined + global ARGs).
    pub global: &'a BTreeMap<String, String>,
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// The Dockerfile's escape token.
    pub escape: char,
    /// ENV inherited from a base stage (empty for an image or scratch).
    pub env_in: Vec<(String, String)>,
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
    /// ENV at the end of the stage (what a child stage inherits).
    pub env_out: Vec<(String, String)>,
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

/// Expands every instruction of `stage` in order.
pub(super) fn resolve_stage(stage: &Stage, ctx: StageCtx<'_>) -> Result<Body> {
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    let mut env = ctx.env_in;
    let mut body = Body {
        steps: Vec::new(),
        refs: Vec::new(),
        env_out: Vec::new(),
        declared: BTreeSet::new(),
        run_lines: Vec::new(),
    };
    for (i, spanned) in stage.instructions.iter().enumerate() {
        let line = spanned.span.start_line;
        let args_before = args.clone();
        // What this instruction sees: ARGs, then ENV on top (ENV wins).
        let mut visible = args.clone();
        visible.extend(env.iter().cloned());
        let mut w = Words {
            ex: Expander::new(ctx.escape),
            env: visible,
            keyword: spanned.node.keyword(),
            location: Location::line(line),
            unresolved: BTreeSet::new(),
        };
        let instruction = match &spanned.node {
            Instruction::Env(kvs) => {
                let kvs = w.kvs(kvs)?;
                for kv in &kvs {
                    env.retain(|(k, _)| k != &kv.key);
                    env.push((kv.key.clone(), kv.value.clone()));
                }
                Instruction::Env(kvs)
            }
            Instruction::Arg(decls) => {
                let mut out = Vec::new();
                for d in decls {
                    // Each ARG of one line sees the ones before it.
                    let mut seen = args.clone();
                    seen.extend(env.iter().cloned());
                    w.env = seen;
                    let default = w.opt(&d.default)?;
                    let value =
                        stage_arg_value(&d.name, default.clone(), ctx.global, ctx.build_args);
                    body.declared.insert(d.name.clone());
                    match &value {
                        Some(v) => args.insert(d.name.clone(), v.clone()),
                        None => args.remove(&d.name),
                    };
                    out.push(crate::dockerfile::ArgDecl {
                        name: d.name.clone(),
                        default,
                    });
                }
                Instruction::Arg(out)
            }
            Instruction::Label(kvs) => Instruction::Label(w.kvs(kvs)?),
            Instruction::Workdir(s) => Instruction::Workdir(w.word(s)?),
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
                }
                body.run_lines.push(line);
                Instruction::Run(r)
            }
            other => other.clone(),
        };
        let mount_from = match &instruction {
            Instruction::Run(r) if r.mounts.iter().any(|m| m.from.is_some()) => {
                vec![None; r.mounts.len()]
            }
            _ => Vec::new(),
        };
        // RUN gets the ARGs in its environment; a step with names unset at plan
        // time gets them so the executor can re-expand it with the base image's ENV.
        let step_args = if matches!(instruction, Instruction::Run(_)) || !w.unresolved.is_empty() {
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
            unresolved: w.unresolved.into_iter().collect(),
        });
    }
    body.env_out = env;
    Ok(body)
}

/// Expands one instruction the way [`resolve_stage`] does, with `vars` as everything
/// it can see (ARGs and ENV merged, ENV already winning). For the executor: ONBUILD
/// triggers of a base image, and steps whose names only the base image's ENV defines.
/// An `ARG` keeps its expanded default (the executor does not scope ARGs).
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
    let body = resolve_stage(
        &stage,
        StageCtx {
            global: &empty,
            build_args: &empty,
            escape,
            env_in: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        },
    )?;
    Ok(body
        .steps
        .into_iter()
        .next()
        .map(|s| s.instruction)
        .unwrap_or_else(|| instruction.clone()))
}
