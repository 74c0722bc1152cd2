//! `UndeclaredPlatformArg`: references to predefined ARGs (`$TARGETARCH`, the catalog's
//! `TARGET_*`) in a stage that has not declared them, counting what a stage it is built
//! FROM declared, as BuildKit does.

use super::*;

/// The earlier stage that stage `i` is built FROM, if any: its base expanded with
/// the global ARG defaults (as the planner does without build args).
pub(super) fn parent_stage(df: &Dockerfile, i: usize) -> Option<usize> {
    let ex = Expander::new(df.directives.escape);
    let mut globals: BTreeMap<String, String> = BTreeMap::new();
    for arg in &df.meta_args {
        if let Some(v) = arg
            .node
            .default
            .as_ref()
            .and_then(|d| ex.expand_word(d, &globals).ok())
        {
            globals.insert(arg.node.name.clone(), v);
        }
    }
    let base = ex
        .expand_word(&df.stages[i].base, &globals)
        .ok()?
        .to_ascii_lowercase();
    df.stages[..i]
        .iter()
        .find(|s| s.name.as_deref() == Some(base.as_str()))
        .map(|s| s.index)
}

/// `$NAME` / `${NAME...}` references to predefined ARGs in the stage's words,
/// before the stage (or a stage it is built FROM, whose ARG values it inherits, as
/// in BuildKit) declares them. Returns the names declared by the stage's end.
pub(super) fn undeclared_platform_args(
    stage: &Stage,
    inherited: BTreeSet<String>,
    out: &mut Vec<Diagnostic>,
) -> BTreeSet<String> {
    let mut declared = inherited;
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for ins in &stage.instructions {
        let line = ins.span.start_line;
        match &ins.node {
            Instruction::Arg(decls) => {
                for d in decls {
                    if let Some(v) = &d.default {
                        report_refs(v, &declared, &mut reported, stage, line, out);
                    }
                    declared.insert(d.name.clone());
                }
            }
            Instruction::Env(kvs) => {
                for kv in kvs {
                    report_refs(&kv.value, &declared, &mut reported, stage, line, out);
                    declared.insert(kv.key.clone());
                }
            }
            other => {
                for w in words_of(other) {
                    report_refs(w, &declared, &mut reported, stage, line, out);
                }
            }
        }
    }
    declared
}

fn report_refs(
    text: &str,
    declared: &BTreeSet<String>,
    reported: &mut BTreeSet<String>,
    stage: &Stage,
    line: usize,
    out: &mut Vec<Diagnostic>,
) {
    for name in referenced_names(text) {
        if !is_predefined(&name) || declared.contains(&name) || !reported.insert(name.clone()) {
            continue;
        }
        out.push(Diagnostic {
            location: at(line),
            severity: Severity::Warning,
            rule: "UndeclaredPlatformArg",
            message: format!(
                "{name} is used but not declared in stage {}",
                stage_label(stage)
            ),
            explanation: format!(
                "predefined ARGs are visible inside a stage only after `ARG {name}` in it \
                 or in a stage it is built FROM; here ${name} is empty"
            ),
            fix: format!("add `ARG {name}` to the stage before line {line}"),
        });
    }
}

/// Names after `$` or `${` in `text` (a textual scan: RUN commands are not
/// expanded by the planner, the shell expands them from the ARG environment).
pub(super) fn referenced_names(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let mut j = i + 1;
            if j < bytes.len() && bytes[j] == b'{' {
                j += 1;
            }
            let start = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            if j > start {
                names.push(text[start..j].to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    names
}

/// The strings of an instruction where a `$NAME` can appear.
fn words_of(ins: &Instruction) -> Vec<&str> {
    fn cmd(c: &Command) -> Vec<&str> {
        match c {
            Command::Exec(v) => v.iter().map(String::as_str).collect(),
            Command::Shell(s) => vec![s.as_str()],
        }
    }
    let mut w: Vec<&str> = Vec::new();
    match ins {
        Instruction::Run(r) => {
            w.extend(cmd(&r.command));
            w.extend(r.heredocs.iter().map(|h| h.content.as_str()));
            for m in &r.mounts {
                w.extend(
                    [&m.target, &m.source, &m.from, &m.id]
                        .into_iter()
                        .flatten()
                        .map(String::as_str),
                );
            }
        }
        Instruction::Copy(c) => {
            w.extend(c.sources.iter().map(String::as_str));
            w.push(&c.dest);
            w.extend(c.from.as_deref());
            w.extend(
                c.heredocs
                    .iter()
                    .filter(|h| h.expand)
                    .map(|h| h.content.as_str()),
            );
        }
        Instruction::Add(a) => {
            w.extend(a.sources.iter().map(String::as_str));
            w.push(&a.dest);
        }
        Instruction::Label(kvs) => w.extend(kvs.iter().map(|kv| kv.value.as_str())),
        Instruction::Workdir(s) | Instruction::User(s) => w.push(s),
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => w.extend(cmd(c)),
        Instruction::Volume(v) | Instruction::Expose(v) => w.extend(v.iter().map(String::as_str)),
        _ => {}
    }
    w
}
