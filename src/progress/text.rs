//! What a step is called in progress: the instruction in full, as the Dockerfile says it
//! after expansion (ARG names and defaults, the whole RUN command with its heredocs,
//! COPY's `--from`). Plain and JSON output show it as it is; the terminal shortens it to
//! its width ([`super::shorten`]). Issue 13: "`build 1/9 ARG` without names" and RUN text
//! cut at 60 characters even in plain and JSON output.

use crate::dockerfile::{Command, Healthcheck, Instruction};

/// A job as the plain and terminal displays name it: `[linux/arm64] build`.
pub fn job_label(platforms: &[String], stage: &str) -> String {
    format!("[{}] {stage}", platforms.join(","))
}

/// A queued job's status: `queued (native)`, `queued (assembled, waits for #2, #3)`.
pub fn queued_status(mode: &str, waits_for: &[String]) -> String {
    if waits_for.is_empty() {
        format!("queued ({mode})")
    } else {
        format!("queued ({mode}, waits for {})", waits_for.join(", "))
    }
}

/// The plan event's line: how many jobs of each mode.
pub fn plan_line(jobs: usize, native: usize, assembled: usize, emulated: usize) -> String {
    format!("plan: {jobs} jobs: {native} native, {assembled} assembled, {emulated} emulated")
}

fn command(c: &Command) -> String {
    match c {
        Command::Shell(s) => s.clone(),
        Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

fn flag(out: &mut Vec<String>, name: &str, value: &Option<String>) {
    if let Some(v) = value {
        out.push(format!("--{name}={v}"));
    }
}

/// The step text of `instr`: its keyword and everything it says.
pub fn step_text(instr: &Instruction) -> String {
    let mut parts: Vec<String> = vec![instr.keyword().to_string()];
    match instr {
        Instruction::Run(r) => {
            parts.push(command(&r.command));
            let mut text = parts.join(" ");
            for h in &r.heredocs {
                text.push('\n');
                text.push_str(&h.content);
                text.push_str(&h.name);
            }
            return text;
        }
        Instruction::Copy(c) => {
            flag(&mut parts, "from", &c.from);
            flag(&mut parts, "chown", &c.chown);
            flag(&mut parts, "chmod", &c.chmod);
            if c.link {
                parts.push("--link".into());
            }
            parts.extend(c.sources.iter().cloned());
            parts.push(c.dest.clone());
        }
        Instruction::Add(a) => {
            flag(&mut parts, "chown", &a.chown);
            flag(&mut parts, "chmod", &a.chmod);
            flag(&mut parts, "checksum", &a.checksum);
            parts.extend(a.sources.iter().cloned());
            parts.push(a.dest.clone());
        }
        Instruction::Arg(decls) => parts.extend(decls.iter().map(|d| match &d.default {
            Some(v) => format!("{}={v}", d.name),
            None => d.name.clone(),
        })),
        Instruction::Env(kvs) | Instruction::Label(kvs) => {
            parts.extend(kvs.iter().map(|kv| format!("{}={}", kv.key, kv.value)))
        }
        Instruction::Workdir(s)
        | Instruction::User(s)
        | Instruction::Stopsignal(s)
        | Instruction::Maintainer(s) => parts.push(s.clone()),
        Instruction::Expose(v) | Instruction::Volume(v) => parts.extend(v.iter().cloned()),
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => parts.push(command(c)),
        Instruction::Shell(v) => parts.push(serde_json::to_string(v).unwrap_or_default()),
        Instruction::Healthcheck(Healthcheck::None) => parts.push("NONE".into()),
        Instruction::Healthcheck(Healthcheck::Cmd { test, .. }) => {
            parts.push("CMD".into());
            parts.push(command(test));
        }
        Instruction::Onbuild(o) => parts.push(o.original.clone()),
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(dockerfile: &str) -> Vec<String> {
        let df = crate::dockerfile::parse(dockerfile).unwrap();
        df.stages[0]
            .instructions
            .iter()
            .map(|i| step_text(&i.node))
            .collect()
    }

    #[test]
    fn args_are_named_and_run_is_whole() {
        let long = "go build -trimpath -ldflags='-s -w -X main.version=1.2.3' -o /out/app ./cmd/app && strip /out/app";
        let got = texts(&format!(
            "FROM scratch\nARG GO_VERSION=1.22 TARGETARCH\nRUN {long}\n\
             COPY --from=build --chmod=755 /out/app /app\nENV A=1 B=2\nCMD [\"/app\"]\n"
        ));
        assert_eq!(got[0], "ARG GO_VERSION=1.22 TARGETARCH");
        assert_eq!(got[1], format!("RUN {long}"));
        assert!(got[1].len() > 60);
        assert_eq!(got[2], "COPY --from=build --chmod=755 /out/app /app");
        assert_eq!(got[3], "ENV A=1 B=2");
        assert_eq!(got[4], "CMD [\"/app\"]");
    }
}
