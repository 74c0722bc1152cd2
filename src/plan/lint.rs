//! The planner's lints for `xplat check`: what will be emulated and why, and
//! ARG/platform mistakes, each with a location, an explanation and a one-line
//! fix, plus [`render_diagnostics`], the text `xplat check` prints.
//!
//! Rules (names are stable; BuildKit's own check names where one exists, and
//! `# check=skip=<name>` takes either name where two are listed):
//!
//! | rule | BuildKit's name | what |
//! |---|---|---|
//! | `EmulatedStage` | (xplat's own) | a RUN in a stage whose run platform the engine cannot run |
//! | `UndeclaredPlatformArg` | `UndefinedVar` (in part) | `$TARGETARCH` (or another predefined ARG) used in a stage where neither it nor a stage it is built FROM declared `ARG TARGETARCH` before: it is empty there |
//! | `FromPlatformFlagConstDisallowed` | same | `FROM --platform=linux/amd64` (no warning when the stage name contains the platform, os or arch, as BuildKit) |
//! | `RedundantTargetPlatform` | same | `FROM --platform=$TARGETPLATFORM` |
//! | `UnusedStage` | (xplat's own) | a stage no build reaches |
//! | `UndefinedArgInFrom` | same | a name in FROM that no global ARG declares |
//! | `NoEmptyContinuation` | same | an empty line inside a continued instruction (the parser's warning) |
//! | `UnknownStage` | (xplat's own; error) | `COPY --from=biuld` / `--mount from=biuld` where no stage is `biuld` but one is close (`build`): it would pull an image |
//! | `PlanError` | (the build error) | the plan itself fails; never skipped |
//!
//! The `# check=` directive applies ([`CheckDirective`]): `skip=` leaves rules out,
//! `skip=all` all of them (`PlanError` stays), `error=true` makes every finding an
//! error, as BuildKit fails the build on any lint finding then.
//!
//! Columns: the Dockerfile AST keeps lines, not columns, so locations point
//! at column 1 of the instruction's first line.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dockerfile::expand::Expander;
use crate::dockerfile::{CheckDirective, Command, Dockerfile, Instruction, Location, Stage};
use crate::platform::{Catalog, Platform};

use super::args::{global_names, is_predefined, AUTOMATIC};
use super::{plan, Base, BuildPlan, PlanError, PlanOptions, Reason, Source};

mod platform_args;
#[cfg(test)]
use platform_args::referenced_names;
use platform_args::{parent_stage, undeclared_platform_args};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth fixing; the build still works.
    Warning,
    /// The build cannot be planned.
    Error,
}

impl Severity {
    /// `warning` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One finding of `xplat check`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Diagnostic {
    /// Where it points.
    pub location: Location,
    /// Warning or error.
    pub severity: Severity,
    /// A stable rule name (`EmulatedStage`, `UndeclaredPlatformArg`, …).
    pub rule: &'static str,
    /// What is wrong, one line.
    pub message: String,
    /// Why it matters.
    pub explanation: String,
    /// The one-line fix.
    pub fix: String,
}

/// Lints `df` for the targets in `opts`, sorted by location. A plan error is
/// one `PlanError` diagnostic (and the lints that need a plan are skipped).
pub fn lint(df: &Dockerfile, opts: &PlanOptions, catalog: &Catalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    parser_warnings(df, &mut out);
    from_lints(df, &mut out);
    // What each stage has declared by its end: a stage built FROM it inherits it.
    let mut ends: Vec<BTreeSet<String>> = Vec::new();
    for stage in &df.stages {
        let inherited = parent_stage(df, stage.index)
            .map(|p| ends[p].clone())
            .unwrap_or_default();
        ends.push(undeclared_platform_args(stage, inherited, &mut out));
    }
    match plan(df, opts, catalog) {
        Ok(p) => {
            emulated(df, &p, &mut out);
            unknown_stages(df, &p, &mut out);
            let mut reached: BTreeSet<usize> = p.jobs.iter().map(|j| j.stage.index).collect();
            if opts.target_stage.is_some() {
                let mut default = opts.clone();
                default.target_stage = None;
                if let Ok(d) = plan(df, &default, catalog) {
                    reached.extend(d.jobs.iter().map(|j| j.stage.index));
                }
            }
            unused_stages(df, &reached, &mut out);
        }
        Err(e) => out.push(plan_error(df, &e)),
    }
    apply_check_directive(&df.directives.check, &mut out);
    out.sort();
    out.dedup();
    out
}

/// BuildKit's name for a rule of ours, where one corresponds (`# check=skip=` takes both).
fn buildkit_alias(rule: &str) -> Option<&'static str> {
    match rule {
        "UndeclaredPlatformArg" => Some("UndefinedVar"),
        _ => None,
    }
}

/// `# check=skip=...` leaves rules out (never `PlanError`); `error=true` makes the
/// rest errors.
fn apply_check_directive(check: &CheckDirective, out: &mut Vec<Diagnostic>) {
    out.retain(|d| {
        d.rule == "PlanError"
            || !(check.skips(d.rule) || buildkit_alias(d.rule).is_some_and(|a| check.skips(a)))
    });
    if check.error {
        for d in out.iter_mut() {
            d.severity = Severity::Error;
        }
    }
}

/// The parser's own findings (empty continuation lines), as diagnostics.
fn parser_warnings(df: &Dockerfile, out: &mut Vec<Diagnostic>) {
    for w in &df.warnings {
        out.push(Diagnostic {
            location: w.location,
            severity: Severity::Warning,
            rule: w.rule,
            message: w.short.clone(),
            explanation: format!("{} ({})", w.detail, w.url),
            fix: "remove the empty line, or end the instruction before it".into(),
        });
    }
}

fn at(line: usize) -> Location {
    Location::line(line)
}

fn stage_label(stage: &Stage) -> String {
    match &stage.name {
        Some(n) => format!("`{n}`"),
        // "stage 1": the index, as `COPY --from=1` would name it.
        None => format!("{}", stage.index),
    }
}

fn emulated(df: &Dockerfile, p: &super::BuildPlan, out: &mut Vec<Diagnostic>) {
    // (stage, line of the first RUN) → platforms
    let mut groups: BTreeMap<(usize, usize), Vec<Platform>> = BTreeMap::new();
    for job in &p.jobs {
        if let Reason::RunOnForeignPlatform { line, .. } = job.reason {
            groups
                .entry((job.stage.index, line))
                .or_default()
                .push(job.run_platform.clone());
        }
    }
    let chain = final_chain(p);
    for ((idx, line), platforms) in groups {
        let stage = &df.stages[idx];
        let list = Platform::format_list(&platforms);
        // A stage the final image is built FROM must stay on the target platform:
        // `--platform=$BUILDPLATFORM` there would put build-platform files (an x86-64
        // busybox, libc, ...) into the target image (issue 10).
        let fix = if chain.contains(&idx) {
            format!(
                "this stage is in the final image's FROM chain, so it must stay {list}: move \
                 the RUN's work into a `FROM --platform=$BUILDPLATFORM` stage that \
                 cross-compiles with `ARG TARGETOS TARGETARCH` (or TARGET_GNU_TRIPLE, \
                 TARGET_RUST_TRIPLE) and COPY --from that stage, or build {list} on an \
                 engine that runs it natively"
            )
        } else {
            format!(
                "use `FROM --platform=$BUILDPLATFORM {}` at line {} and cross-compile with \
                 `ARG TARGETOS TARGETARCH` (or TARGET_GNU_TRIPLE, TARGET_RUST_TRIPLE)",
                stage.base, stage.span.start_line
            )
        };
        out.push(Diagnostic {
            location: at(line),
            severity: Severity::Warning,
            rule: "EmulatedStage",
            message: format!(
                "stage {} will be emulated for {list} because of RUN at line {line}",
                stage_label(stage)
            ),
            explanation: format!(
                "the stage runs as {list}, which the build platform {} cannot execute, \
                 so its RUN steps run under QEMU user emulation, several times slower",
                p.build_platform
            ),
            fix,
        });
    }
}

/// The stages the targets' images are built FROM: each final job and its stage bases.
fn final_chain(p: &BuildPlan) -> BTreeSet<usize> {
    let mut chain = BTreeSet::new();
    for t in &p.targets {
        let mut job = p.job(t.final_job);
        loop {
            chain.insert(job.stage.index);
            match &job.base {
                Base::Stage { job: b } => job = p.job(*b),
                Base::Image { .. } | Base::Scratch => break,
            }
        }
    }
    chain
}

/// The stage name `reference` is a likely typo of: no stage has that name (the
/// plan made it an image), but one is one edit away (two for names of 8 or more
/// characters; a swap of two letters is one edit). References that look like image
/// names (a registry, a path, a tag or a digest) are left alone.
fn typo_of<'a>(reference: &str, names: &[&'a str]) -> Option<&'a str> {
    if reference.contains(['/', ':', '@', '.']) {
        return None;
    }
    let lower = reference.to_ascii_lowercase();
    let limit = if lower.len() >= 8 { 2 } else { 1 };
    names
        .iter()
        .map(|n| (strsim::osa_distance(&lower, n), *n))
        .filter(|(d, _)| *d > 0 && *d <= limit)
        .min()
        .map(|(_, n)| n)
}

/// `COPY --from=biuld` / `--mount from=biuld` with a stage `build`: it would be
/// pulled as the image `biuld` (issue 10), an error unless skipped.
fn unknown_stages(df: &Dockerfile, p: &BuildPlan, out: &mut Vec<Diagnostic>) {
    let names: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    for job in &p.jobs {
        for step in &job.steps {
            let sources = step.from.iter().map(|s| ("COPY --from", s)).chain(
                step.mount_from
                    .iter()
                    .flatten()
                    .map(|s| ("RUN --mount from", s)),
            );
            for (flag, source) in sources {
                let Source::Image { reference } = source else {
                    continue;
                };
                let Some(stage) = typo_of(reference, &names) else {
                    continue;
                };
                out.push(Diagnostic {
                    location: at(step.line),
                    severity: Severity::Error,
                    rule: "UnknownStage",
                    message: format!(
                        "no stage is named `{reference}`: {flag}={reference} would pull the \
                         image `{reference}` (did you mean {stage}?)"
                    ),
                    explanation: "a --from value that names no stage is an image reference, \
                                  so the build pulls it from a registry instead of using the \
                                  stage, and fails or copies the wrong files"
                        .into(),
                    fix: format!(
                        "write `{flag}={stage}`, or `# check=skip=UnknownStage` if you mean \
                         the image"
                    ),
                });
            }
        }
    }
}

fn unused_stages(df: &Dockerfile, reached: &BTreeSet<usize>, out: &mut Vec<Diagnostic>) {
    let last = df.stages.len() - 1;
    for stage in &df.stages {
        if stage.index == last || reached.contains(&stage.index) {
            continue;
        }
        let fix = match &stage.name {
            Some(n) => format!("remove the stage, or build it with `--target {n}`"),
            None => "remove the stage, or name it (`AS name`) and build it with --target".into(),
        };
        out.push(Diagnostic {
            location: at(stage.span.start_line),
            severity: Severity::Warning,
            rule: "UnusedStage",
            message: format!("stage {} is never used", stage_label(stage)),
            explanation: "it is not the target, and no planned stage builds FROM it or \
                          copies/mounts from it, so it is never built"
                .into(),
            fix,
        });
    }
}

/// FROM lints: constant or redundant `--platform`, names not declared globally.
fn from_lints(df: &Dockerfile, out: &mut Vec<Diagnostic>) {
    let globals = global_names(&df.meta_args);
    let known: BTreeMap<String, String> = globals
        .iter()
        .cloned()
        .chain(AUTOMATIC.iter().map(|s| s.to_string()))
        .map(|k| (k, String::new()))
        .collect();
    let ex = Expander::new(df.directives.escape);
    for stage in &df.stages {
        let line = stage.span.start_line;
        let mut words = vec![stage.base.as_str()];
        if let Some(p) = &stage.platform {
            words.push(p);
            let trimmed = p.trim();
            if !p.contains('$') {
                let name = stage.name.clone().unwrap_or_default();
                let named_after = Platform::parse(trimmed).ok().is_some_and(|pl| {
                    [&pl.format(), &pl.os, &pl.architecture]
                        .iter()
                        .any(|part| !part.is_empty() && name.contains(part.as_str()))
                });
                if !named_after {
                    out.push(Diagnostic {
                        location: at(line),
                        severity: Severity::Warning,
                        rule: "FromPlatformFlagConstDisallowed",
                        message: format!(
                            "FROM --platform flag should not use constant value {trimmed:?}"
                        ),
                        explanation: format!(
                            "every target gets this stage built as {trimmed}; on another \
                             engine it is emulated, and for other targets it is the wrong \
                             platform unless it only produces platform-independent files"
                        ),
                        fix: "use `--platform=$BUILDPLATFORM` (and cross-compile with the \
                              TARGET ARGs), or drop the flag to build per target"
                            .into(),
                    });
                }
            } else if matches!(trimmed, "$TARGETPLATFORM" | "${TARGETPLATFORM}") {
                out.push(Diagnostic {
                    location: at(line),
                    severity: Severity::Warning,
                    rule: "RedundantTargetPlatform",
                    message: format!(
                        "setting platform to predefined {trimmed} in FROM is redundant as this \
                         is the default behavior"
                    ),
                    explanation: "a stage without --platform already runs as the target \
                                  platform"
                        .into(),
                    fix: format!("remove `--platform={trimmed}`"),
                });
            }
        }
        let mut unknown = BTreeSet::new();
        for w in words {
            if let Ok(e) = ex.expand_word_with_matches(w, &known) {
                unknown.extend(
                    e.unmatched
                        .into_iter()
                        .filter(|n| !globals.contains(n) && !is_predefined(n)),
                );
            }
        }
        for name in unknown {
            let suggestion = known
                .keys()
                .map(|k| (strsim::levenshtein(k, &name), k))
                .filter(|(d, _)| *d <= 2)
                .min()
                .map(|(_, k)| k.clone());
            let (msg_hint, fix) = match &suggestion {
                Some(s) => (
                    format!(" (did you mean {s}?)"),
                    format!("write ${s}, or declare `ARG {name}=<value>` before the first FROM"),
                ),
                None => (
                    String::new(),
                    format!("declare `ARG {name}=<value>` before the first FROM"),
                ),
            };
            out.push(Diagnostic {
                location: at(line),
                severity: Severity::Warning,
                rule: "UndefinedArgInFrom",
                message: format!("FROM argument '{name}' is not declared{msg_hint}"),
                explanation: "FROM sees only ARGs declared before the first FROM and the \
                              automatic platform ARGs; this name expands to an empty string"
                    .into(),
                fix,
            });
        }
    }
}

fn plan_error(df: &Dockerfile, e: &PlanError) -> Diagnostic {
    let fix = match e {
        PlanError::UnknownTarget {
            suggestion: Some(s),
            ..
        } => format!("use `--target {s}`"),
        PlanError::UnknownTarget { .. } => format!(
            "use one of the stage names: {}",
            df.stages
                .iter()
                .filter_map(|s| s.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        PlanError::Cycle { .. } => "make one of these stages stop depending on the next".into(),
        PlanError::InvalidStageIndex { .. } => {
            "refer to the stage by its `AS` name instead of an index".into()
        }
        PlanError::EmptyPlatform { .. } | PlanError::BlankBaseName { .. } => {
            "declare the ARG before the first FROM with a value, or pass --build-arg".into()
        }
        PlanError::InvalidPlatform { .. } => {
            "use an os/arch[/variant] value such as $BUILDPLATFORM or linux/arm64".into()
        }
        PlanError::Expand { .. } => "fix the variable reference".into(),
        PlanError::InvalidTrigger { .. } => {
            "rebuild the base image with a valid ONBUILD instruction, or use another base".into()
        }
        PlanError::InvalidMountTarget { .. } => {
            "give the mount a target= path, or set a WORKDIR other than / before this RUN".into()
        }
        PlanError::NoTargets | PlanError::DuplicateTarget { .. } => {
            "pass a list of distinct platforms to --platform".into()
        }
    };
    Diagnostic {
        location: e.location().unwrap_or(Location::line(1)),
        severity: Severity::Error,
        rule: "PlanError",
        message: e.to_string(),
        explanation: "xplat cannot plan this build".into(),
        fix,
    }
}

/// Whether `xplat check` must fail: any error, or any warning under `--strict`.
pub fn fails(diags: &[Diagnostic], strict: bool) -> bool {
    diags
        .iter()
        .any(|d| d.severity == Severity::Error || (strict && d.severity == Severity::Warning))
}

/// Renders diagnostics as `file:line:col: warning: message [Rule]`, the source
/// line with a caret, the explanation and `fix: ...`; then a count line.
pub fn render_diagnostics(file_name: &str, source: &str, diags: &[Diagnostic]) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let mut out = String::new();
    for d in diags {
        let loc = d.location;
        out.push_str(&format!(
            "{file_name}:{}:{}: {}: {} [{}]\n",
            loc.line,
            loc.column,
            d.severity.as_str(),
            d.message,
            d.rule
        ));
        if let Some(text) = lines.get(loc.line.saturating_sub(1)) {
            let text = text.strip_suffix('\r').unwrap_or(text).replace('\t', " ");
            let shown: String = text.chars().take(120).collect();
            let more = if text.chars().count() > 120 {
                "…"
            } else {
                ""
            };
            let gutter = loc.line.to_string();
            let pad = " ".repeat(gutter.len());
            let col = loc.column.max(1) - 1;
            out.push_str(&format!(" {gutter} | {shown}{more}\n"));
            out.push_str(&format!(" {pad} | {}^\n", " ".repeat(col.min(120))));
        }
        out.push_str(&format!("  = why: {}\n", d.explanation));
        out.push_str(&format!("  = fix: {}\n", d.fix));
    }
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    if !diags.is_empty() {
        out.push_str(&format!(
            "{warnings} warning{}, {errors} error{}\n",
            if warnings == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" }
        ));
    }
    out
}

#[cfg(test)]
mod tests;
