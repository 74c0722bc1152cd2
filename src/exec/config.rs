//! The image config state xplat keeps while a stage runs: the config being built
//! (ENV, USER, WORKDIR, CMD, …). Metadata instructions only edit this state; they never
//! touch the engine. Pure and unit-tested.
//!
//! Instructions arrive expanded by the planner (`plan::Step`): nothing here expands a
//! word again (a second expansion would break values containing `$`), and ARG scoping
//! is the planner's (each RUN carries the ARG values it sees in `plan::Step::args`).

use std::collections::BTreeMap;

use crate::dockerfile::{Command, Healthcheck, Instruction};
use crate::engine::{self, ImageConfig};

use super::{ExecError, Result};

/// The default shell of a Linux image (`SHELL` replaces it).
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The state of one stage while its instructions run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// The config being built (authoritative: what the final image gets).
    pub config: ImageConfig,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// Stage name for errors.
    pub stage: String,
}

impl State {
    /// The state at FROM: the base image's config without its ONBUILD triggers.
    pub fn new(base: ImageConfig, stage: &str) -> State {
        let mut config = base;
        config.on_build.clear();
        State {
            config,
            cmd_set: false,
            stage: stage.to_string(),
        }
    }

    /// The current ENV as a map (what re-expanding a step sees on top of its ARGs).
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.config.env.iter().map(|kv| split_env(kv)).collect()
    }

    /// The shell used for shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.config
            .shell
            .clone()
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    /// A command as argv: exec form as is, shell form through the current SHELL.
    pub fn argv(&self, cmd: &Command) -> Vec<String> {
        match cmd {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let mut v = self.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// The ARG values given to a RUN's process (never stored in the config): the
    /// step's `args`, which hold only names whose latest setter was an ARG, so they
    /// override the config Env (BuildKit: `ENV Y=a`, `ARG Y`, `--build-arg Y=b` runs
    /// with `b`; `ARG A=1`, `ENV A=2` runs with `2`, and the plan leaves A out).
    pub fn run_args(&self, args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        args.clone()
    }

    /// Applies a metadata instruction, already expanded. Returns `false` when the
    /// instruction changes the filesystem (RUN, COPY, ADD, WORKDIR) and must be executed
    /// instead (WORKDIR also updates the config first). ARG is the planner's business:
    /// it changes nothing here.
    pub fn apply(&mut self, instr: &Instruction, line: usize) -> Result<bool> {
        match instr {
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) => return Ok(false),
            Instruction::Workdir(w) => {
                self.config.working_dir = Some(join_workdir(self.config.working_dir.as_deref(), w));
                return Ok(false);
            }
            Instruction::Env(pairs) => {
                for kv in pairs {
                    set_env(&mut self.config.env, &kv.key, &kv.value);
                }
            }
            Instruction::Arg(_) | Instruction::Maintainer(_) => {}
            Instruction::Label(pairs) => {
                for kv in pairs {
                    self.config.labels.insert(kv.key.clone(), kv.value.clone());
                }
            }
            Instruction::User(u) => self.config.user = Some(u.clone()),
            Instruction::Expose(ports) => {
                for word in ports.iter().flat_map(|p| p.split_whitespace()) {
                    let port = normalize_port(word).ok_or_else(|| ExecError::Invalid {
                        stage: self.stage.clone(),
                        line,
                        message: format!("invalid port {word:?} in EXPOSE"),
                    })?;
                    self.config.exposed_ports.insert(port);
                }
            }
            Instruction::Volume(vols) => {
                for v in vols {
                    if v.trim().is_empty() {
                        return Err(ExecError::Invalid {
                            stage: self.stage.clone(),
                            line,
                            message: "VOLUME specified can not be an empty string".into(),
                        });
                    }
                    self.config.volumes.insert(v.clone());
                }
            }
            Instruction::Cmd(c) => {
                self.config.cmd = Some(self.argv(c));
                self.cmd_set = true;
            }
            Instruction::Entrypoint(c) => {
                self.config.entrypoint = Some(self.argv(c));
                if !self.cmd_set {
                    self.config.cmd = None;
                }
            }
            Instruction::Shell(s) => self.config.shell = Some(s.clone()),
            Instruction::Stopsignal(s) => self.config.stop_signal = Some(s.clone()),
            Instruction::Healthcheck(h) => self.config.healthcheck = Some(healthcheck(h)),
            Instruction::Onbuild(o) => self.config.on_build.push(o.original.clone()),
        }
        Ok(true)
    }
}

/// Splits `K=V` (a bare `K` has an empty value).
pub fn split_env(kv: &str) -> (String, String) {
    match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), v.to_string()),
        None => (kv.to_string(), String::new()),
    }
}

/// Sets `k` in an ordered `K=V` list: replaced in place, else appended.
pub fn set_env(env: &mut Vec<String>, k: &str, v: &str) {
    let entry = format!("{k}={v}");
    match env.iter_mut().find(|kv| split_env(kv).0 == k) {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// WORKDIR: relative paths join the previous one; the result is cleaned and absolute.
pub fn join_workdir(current: Option<&str>, w: &str) -> String {
    let joined = if w.starts_with('/') {
        w.to_string()
    } else {
        format!("{}/{}", current.unwrap_or("/"), w)
    };
    crate::context::clean_path(&joined)
}

/// `80` → `80/tcp`; `53/udp` stays; anything else is refused.
pub fn normalize_port(word: &str) -> Option<String> {
    let (port, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    let ok_port = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let port_ok = match port.split_once('-') {
        Some((a, b)) => ok_port(a) && ok_port(b),
        None => ok_port(port),
    };
    (port_ok && matches!(proto.as_str(), "tcp" | "udp" | "sctp")).then(|| format!("{port}/{proto}"))
}

fn healthcheck(h: &Healthcheck) -> engine::Healthcheck {
    let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64).unwrap_or(0);
    match h {
        Healthcheck::None => engine::Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        Healthcheck::Cmd {
            test,
            interval,
            timeout,
            start_period,
            retries,
            ..
        } => {
            let test = match test {
                Command::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
                Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            };
            engine::Healthcheck {
                test,
                interval: ns(interval),
                timeout: ns(timeout),
                start_period: ns(start_period),
                retries: retries.map(i64::from).unwrap_or(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;
    use crate::plan::{plan, PlanOptions, Step};
    use crate::platform::{Catalog, Platform};

    /// Plans `FROM scratch` + `text` for linux/amd64 and applies every step; returns
    /// the state and the planned steps.
    fn apply_all(text: &str, args: &[(&str, &str)]) -> (State, Vec<Step>) {
        let df = parse(&format!("FROM scratch\n{text}")).unwrap();
        let amd64 = Platform::parse("linux/amd64").unwrap();
        let opts = PlanOptions {
            targets: vec![amd64.clone()],
            build_platform: amd64,
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target_stage: None,
            ..Default::default()
        };
        let p = plan(&df, &opts, &Catalog::embedded()).unwrap();
        let steps = p.jobs[0].steps.clone();
        let mut st = State::new(ImageConfig::default(), "0");
        for s in &steps {
            let _ = st.apply(&s.instruction, s.line).unwrap();
        }
        (st, steps)
    }

    #[test]
    fn env_pairs_see_previous_values_and_replace_in_place() {
        let (st, _) = apply_all("ENV a=hi b=x\nENV a=bye c=$a\n", &[]);
        assert_eq!(st.config.env, vec!["a=bye", "b=x", "c=hi"]);
    }

    #[test]
    fn a_dollar_in_a_value_is_not_expanded_twice() {
        // The planner turns '\$HOME' into a literal "$HOME"; applying must keep it.
        let (st, _) = apply_all("ENV HOME=/h\nENV a='$HOME' b=\\$HOME\nLABEL l='$x'\n", &[]);
        assert_eq!(st.config.env, vec!["HOME=/h", "a=$HOME", "b=$HOME"]);
        assert_eq!(st.config.labels.get("l").map(String::as_str), Some("$x"));
    }

    #[test]
    fn run_gets_planned_args_and_env_wins_over_arg() {
        let (st, steps) = apply_all(
            "ARG A=def\nARG B\nARG C\nENV A=env\nENV Y=a\nARG Y\nRUN true\n",
            &[("B", "given"), ("Y", "b")],
        );
        let run = steps.last().unwrap();
        let args = st.run_args(&run.args);
        assert!(!args.contains_key("A"), "a later ENV wins over an ARG");
        assert_eq!(
            args.get("Y").map(String::as_str),
            Some("b"),
            "a later ARG wins over ENV"
        );
        assert_eq!(args.get("B").map(String::as_str), Some("given"));
        assert!(!args.contains_key("C"));
        assert!(
            st.config.env.iter().all(|e| !e.starts_with("B=")),
            "ARG never stored"
        );
    }

    #[test]
    fn entrypoint_clears_cmd_unless_cmd_set_in_stage() {
        let mut st = State::new(
            ImageConfig {
                cmd: Some(vec!["base".into()]),
                ..Default::default()
            },
            "0",
        );
        let df = parse("FROM scratch\nENTRYPOINT [\"/e\"]\n").unwrap();
        st.apply(&df.stages[0].instructions[0].node, 2).unwrap();
        assert_eq!(st.config.cmd, None);
        let (st, _) = apply_all("CMD [\"c\"]\nENTRYPOINT e\n", &[]);
        assert_eq!(st.config.cmd, Some(vec!["c".to_string()]));
        assert_eq!(
            st.config.entrypoint,
            Some(vec!["/bin/sh".to_string(), "-c".into(), "e".into()])
        );
    }

    #[test]
    fn shell_changes_shell_form_and_workdir_joins() {
        let (st, _) = apply_all(
            "SHELL [\"/bin/bash\", \"-xc\"]\nCMD echo hi\nWORKDIR /a\nWORKDIR b/../c\n",
            &[],
        );
        assert_eq!(
            st.config.cmd,
            Some(vec![
                "/bin/bash".to_string(),
                "-xc".into(),
                "echo hi".into()
            ])
        );
        assert_eq!(st.config.working_dir.as_deref(), Some("/a/c"));
    }

    #[test]
    fn expose_label_volume_user_stopsignal_come_expanded() {
        let (st, _) = apply_all(
            "ARG P=80\nEXPOSE $P 53/UDP\nLABEL \"k\"=\"v w\" x=$P\nVOLUME /data [\"/x\"]\nUSER ${P}:1\nSTOPSIGNAL SIGTERM\n",
            &[],
        );
        let ports: Vec<_> = st.config.exposed_ports.iter().cloned().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(st.config.labels.get("k").map(String::as_str), Some("v w"));
        assert_eq!(st.config.labels.get("x").map(String::as_str), Some("80"));
        assert_eq!(st.config.user.as_deref(), Some("80:1"));
        assert_eq!(st.config.stop_signal.as_deref(), Some("SIGTERM"));
        assert!(st.config.volumes.contains("/data"));
    }

    #[test]
    fn bad_port_is_an_error_and_fs_instructions_are_not_applied() {
        let df = parse("FROM scratch\nEXPOSE abc\nRUN true\n").unwrap();
        let mut st = State::new(ImageConfig::default(), "0");
        assert!(st.apply(&df.stages[0].instructions[0].node, 2).is_err());
        assert!(matches!(
            df.stages[0].instructions[1].node,
            Instruction::Run(_)
        ));
        assert!(!st.apply(&df.stages[0].instructions[1].node, 3).unwrap());
    }
}
