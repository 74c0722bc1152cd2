//! The image config state xplat keeps while a stage runs: the config being built
//! (ENV, USER, WORKDIR, CMD, …) and the ARGs in scope. Metadata instructions only edit
//! this state; they never touch the engine. Pure and unit-tested.

use std::collections::BTreeMap;

use crate::dockerfile::expand::Expander;
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
    /// ARGs in scope: declared in this stage, with their values.
    pub args: BTreeMap<String, String>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// Stage name for errors.
    pub stage: String,
    /// The escape character.
    pub escape: char,
}

impl State {
    /// The state at FROM: the base image's config without its ONBUILD triggers.
    pub fn new(base: ImageConfig, stage: &str, escape: char) -> State {
        let mut config = base;
        config.on_build.clear();
        State {
            config,
            args: BTreeMap::new(),
            cmd_set: false,
            stage: stage.to_string(),
            escape,
        }
    }

    /// Variables visible to expansion: ARGs in scope, then ENV (ENV wins).
    pub fn expansion_env(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .args
            .iter()
            .map(|(k, val)| (k.clone(), val.clone()))
            .collect();
        v.extend(self.config.env.iter().map(|kv| split_env(kv)));
        v
    }

    /// Expands one word (quotes removed, variables substituted).
    pub fn expand(&self, word: &str, line: usize) -> Result<String> {
        Expander::new(self.escape)
            .expand_word(word, &self.expansion_env())
            .map_err(|source| ExecError::Expand {
                stage: self.stage.clone(),
                line,
                word: word.to_string(),
                source: Box::new(source),
            })
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

    /// The ARG values given to a RUN's process (never stored in the config); names ENV
    /// already sets are left out (ENV wins over ARG).
    pub fn run_args(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .filter(|(k, _)| !self.config.env.iter().any(|kv| split_env(kv).0 == **k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Applies a metadata instruction. Returns `false` when the instruction changes
    /// the filesystem (RUN, COPY, ADD, WORKDIR) and must be executed instead.
    /// `arg_values` are the values an `ARG` may take from outside the stage.
    pub fn apply(
        &mut self,
        instr: &Instruction,
        line: usize,
        arg_values: &BTreeMap<String, String>,
    ) -> Result<bool> {
        match instr {
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) => return Ok(false),
            Instruction::Workdir(w) => {
                let w = self.expand(w, line)?;
                self.config.working_dir =
                    Some(join_workdir(self.config.working_dir.as_deref(), &w));
                return Ok(false);
            }
            Instruction::Env(pairs) => {
                // Later pairs see the previous values (ENV a=bye b=$a keeps the old a).
                let expanded: Vec<(String, String)> = pairs
                    .iter()
                    .map(|kv| Ok((self.expand(&kv.key, line)?, self.expand(&kv.value, line)?)))
                    .collect::<Result<_>>()?;
                for (k, v) in expanded {
                    set_env(&mut self.config.env, &k, &v);
                }
            }
            Instruction::Arg(decls) => {
                for d in decls {
                    let value = match (arg_values.get(&d.name), &d.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(def)) => Some(self.expand(def, line)?),
                        (None, None) => None,
                    };
                    if let Some(v) = value {
                        self.args.insert(d.name.clone(), v);
                    }
                }
            }
            Instruction::Label(pairs) => {
                for kv in pairs {
                    let k = self.expand(&kv.key, line)?;
                    let v = self.expand(&kv.value, line)?;
                    self.config.labels.insert(k, v);
                }
            }
            Instruction::User(u) => self.config.user = Some(self.expand(u, line)?),
            Instruction::Expose(ports) => {
                for p in ports {
                    for word in self.expand(p, line)?.split_whitespace() {
                        let port = normalize_port(word).ok_or_else(|| ExecError::Invalid {
                            stage: self.stage.clone(),
                            line,
                            message: format!("invalid port {word:?} in EXPOSE"),
                        })?;
                        self.config.exposed_ports.insert(port);
                    }
                }
            }
            Instruction::Volume(vols) => {
                for v in vols {
                    let v = self.expand(v, line)?;
                    if v.trim().is_empty() {
                        return Err(ExecError::Invalid {
                            stage: self.stage.clone(),
                            line,
                            message: "VOLUME specified can not be an empty string".into(),
                        });
                    }
                    self.config.volumes.insert(v);
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
            Instruction::Stopsignal(s) => self.config.stop_signal = Some(self.expand(s, line)?),
            Instruction::Healthcheck(h) => self.config.healthcheck = Some(healthcheck(self, h)),
            Instruction::Onbuild(o) => self.config.on_build.push(o.original.clone()),
            Instruction::Maintainer(_) => {}
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

fn healthcheck(state: &State, h: &Healthcheck) -> engine::Healthcheck {
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
            let _ = state;
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
    use crate::dockerfile::{parse, Instruction};

    fn apply_all(text: &str, args: &[(&str, &str)]) -> State {
        let df = parse(&format!("FROM scratch\n{text}")).unwrap();
        let values: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut st = State::new(ImageConfig::default(), "0", '\\');
        for i in &df.stages[0].instructions {
            let _ = st.apply(&i.node, i.span.start_line, &values).unwrap();
        }
        st
    }

    #[test]
    fn env_pairs_see_previous_values_and_replace_in_place() {
        let st = apply_all("ENV a=hi b=x\nENV a=bye c=$a\n", &[]);
        assert_eq!(st.config.env, vec!["a=bye", "b=x", "c=hi"]);
    }

    #[test]
    fn arg_takes_given_value_else_default_and_env_wins_for_run() {
        let st = apply_all("ARG A=def\nARG B\nARG C\nENV A=env\n", &[("B", "given")]);
        assert_eq!(st.args.get("A").map(String::as_str), Some("def"));
        assert_eq!(st.args.get("B").map(String::as_str), Some("given"));
        assert!(!st.args.contains_key("C"));
        let run = st.run_args();
        assert!(!run.contains_key("A"), "ENV wins over ARG");
        assert_eq!(run.get("B").map(String::as_str), Some("given"));
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
            '\\',
        );
        let df = parse("FROM scratch\nENTRYPOINT [\"/e\"]\n").unwrap();
        st.apply(&df.stages[0].instructions[0].node, 2, &BTreeMap::new())
            .unwrap();
        assert_eq!(st.config.cmd, None);
        let st = apply_all("CMD [\"c\"]\nENTRYPOINT e\n", &[]);
        assert_eq!(st.config.cmd, Some(vec!["c".to_string()]));
        assert_eq!(
            st.config.entrypoint,
            Some(vec!["/bin/sh".to_string(), "-c".into(), "e".into()])
        );
    }

    #[test]
    fn shell_changes_shell_form_and_workdir_joins() {
        let st = apply_all(
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
    fn expose_label_volume_user_stopsignal_expand() {
        let st = apply_all(
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
        let mut st = State::new(ImageConfig::default(), "0", '\\');
        assert!(st
            .apply(&df.stages[0].instructions[0].node, 2, &BTreeMap::new())
            .is_err());
        assert!(matches!(
            df.stages[0].instructions[1].node,
            Instruction::Run(_)
        ));
        assert!(!st
            .apply(&df.stages[0].instructions[1].node, 3, &BTreeMap::new())
            .unwrap());
    }
}
