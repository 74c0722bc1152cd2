//! A stage's image config while its instructions are interpreted, and what each
//! instruction means for it. Pure: no engine, no files.
//!
//! BuildKit's rules, checked against the engine's BuildKit (see `super` for the list):
//! - scratch starts with `Env PATH=<default>` and `WorkingDir /`; an image base whose Env
//!   has no PATH gets the default PATH appended, and keeps its WorkingDir;
//! - the base's ONBUILD triggers are not kept (the planner turns them into steps);
//! - ENTRYPOINT clears an inherited CMD, but not one set earlier in the same stage;
//! - WORKDIR makes its directory (with parents, 0755, owned by the current USER) in a layer;
//! - every instruction gets a history entry (ARG and MAINTAINER included), with no layer
//!   unless it wrote files.

use std::collections::BTreeMap;

use crate::dockerfile::{Command, Healthcheck as HealthcheckInstr, Instruction, KeyValue};
use crate::oci::config::Empty;
use crate::oci::{ContainerConfig, Healthcheck, History, ImageConfig};
use crate::platform::Platform;

use super::error::{Result, StageError};

/// BuildKit's PATH for Linux images that have none (`system.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The default shell of a Linux image (`SHELL` replaces it).
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
/// The default shell of a Windows image.
pub const WINDOWS_SHELL: [&str; 3] = ["cmd", "/S", "/C"];
/// The history comment BuildKit writes on every entry.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// What an instruction asks of the caller beyond the config change `apply` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Only the config changed (or nothing, for ARG): a history entry with no layer.
    Config,
    /// WORKDIR: the directory `path` must exist; missing ones (parents included) are created
    /// 0755 and owned by `user` (the USER in effect, a name or `uid[:gid]`; `None`: root).
    /// BuildKit writes this as a layer, empty when nothing was missing.
    MakeDir {
        /// Absolute, cleaned.
        path: String,
        /// The USER in effect.
        user: Option<String>,
    },
    /// COPY or ADD: compute the files with [`super::copy`].
    Files,
    /// RUN: the executor runs it (the assembler refuses it).
    Run,
}

/// The state of one stage while its instructions are interpreted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    /// The config being built: what the image gets.
    pub config: ImageConfig,
    /// CMD was set by an instruction of this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
}

impl State {
    /// `FROM scratch` for `platform`: BuildKit's defaults (PATH, WorkingDir `/`).
    pub fn scratch(platform: &Platform) -> State {
        let mut config = ImageConfig::for_platform(platform, None);
        let c = config.config.get_or_insert_with(ContainerConfig::default);
        if platform.os != "windows" {
            c.env = Some(vec![format!("PATH={DEFAULT_PATH}")]);
        }
        c.working_dir = Some("/".into());
        State {
            config,
            cmd_set: false,
        }
    }

    /// `FROM image` (or a parent stage): its config without ONBUILD triggers, with the
    /// default PATH appended when its Env has none (Linux).
    pub fn from_base(base: &ImageConfig) -> State {
        let mut config = base.clone();
        let c = config.config.get_or_insert_with(ContainerConfig::default);
        c.on_build = None;
        let env = c.env.get_or_insert_with(Vec::new);
        if base.os != "windows" && !env.iter().any(|kv| split_env(kv).0 == "PATH") {
            env.push(format!("PATH={DEFAULT_PATH}"));
        }
        State {
            config,
            cmd_set: false,
        }
    }

    fn container(&self) -> Option<&ContainerConfig> {
        self.config.config.as_ref()
    }

    fn container_mut(&mut self) -> &mut ContainerConfig {
        self.config
            .config
            .get_or_insert_with(ContainerConfig::default)
    }

    /// The config Env as `KEY=value` entries, in order.
    pub fn env(&self) -> &[String] {
        self.container()
            .and_then(|c| c.env.as_deref())
            .unwrap_or(&[])
    }

    /// The config Env as a map (what re-expanding a step sees on top of its ARGs).
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.env().iter().map(|kv| split_env(kv)).collect()
    }

    /// A RUN's environment: the config Env with the step's ARG values over it (PLAN.md
    /// "ARG semantics": `step.args` holds exactly the names whose latest setter was an
    /// ARG, so they win); names only ARGs set are appended in name order.
    pub fn run_env(&self, args: &BTreeMap<String, String>) -> Vec<String> {
        let mut env = self.env().to_vec();
        for (k, v) in args {
            set_env(&mut env, k, v);
        }
        env
    }

    /// The shell for shell-form commands (`SHELL`, else the OS default).
    pub fn shell(&self) -> Vec<String> {
        match self.container().and_then(|c| c.shell.clone()) {
            Some(s) => s,
            None if self.config.os == "windows" => WINDOWS_SHELL.map(String::from).to_vec(),
            None => DEFAULT_SHELL.map(String::from).to_vec(),
        }
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

    /// WORKDIR, absolute; `/` when unset.
    pub fn workdir(&self) -> String {
        self.container()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// USER, when set (a name or `uid[:gid]`).
    pub fn user(&self) -> Option<&str> {
        self.container()
            .and_then(|c| c.user.as_deref())
            .filter(|u| !u.is_empty())
    }

    /// Applies one instruction, already expanded by the planner (nothing is expanded
    /// again: a second expansion would break values containing `$`).
    pub fn apply(&mut self, instr: &Instruction) -> Result<Effect> {
        match instr {
            Instruction::Run(_) => return Ok(Effect::Run),
            Instruction::Copy(_) | Instruction::Add(_) => return Ok(Effect::Files),
            Instruction::Workdir(w) => {
                let path = join_workdir(&self.workdir(), w);
                self.container_mut().working_dir = Some(path.clone());
                let user = self.user().map(str::to_string);
                return Ok(Effect::MakeDir { path, user });
            }
            Instruction::Env(pairs) => {
                let env = self.container_mut().env.get_or_insert_with(Vec::new);
                for kv in pairs {
                    set_env(env, &kv.key, &kv.value);
                }
            }
            Instruction::Arg(_) => {}
            Instruction::Maintainer(m) => self.config.author = Some(m.clone()),
            Instruction::Label(pairs) => {
                let labels = self
                    .container_mut()
                    .labels
                    .get_or_insert_with(BTreeMap::new);
                for kv in pairs {
                    labels.insert(kv.key.clone(), kv.value.clone());
                }
            }
            Instruction::User(u) => self.container_mut().user = Some(u.clone()),
            Instruction::Expose(ports) => {
                let mut keys = Vec::new();
                for word in ports.iter().flat_map(|p| p.split_whitespace()) {
                    keys.extend(normalize_port(word).ok_or_else(|| StageError::InvalidPort {
                        port: word.to_string(),
                    })?);
                }
                let set = self
                    .container_mut()
                    .exposed_ports
                    .get_or_insert_with(BTreeMap::new);
                set.extend(keys.into_iter().map(|k| (k, Empty {})));
            }
            Instruction::Volume(vols) => {
                if vols.iter().any(|v| v.trim().is_empty()) {
                    return Err(StageError::EmptyVolume);
                }
                let set = self
                    .container_mut()
                    .volumes
                    .get_or_insert_with(BTreeMap::new);
                set.extend(vols.iter().map(|v| (v.clone(), Empty {})));
            }
            Instruction::Cmd(c) => {
                let argv = self.argv(c);
                self.container_mut().cmd = Some(argv);
                self.cmd_set = true;
            }
            Instruction::Entrypoint(c) => {
                let argv = self.argv(c);
                let keep_cmd = self.cmd_set;
                let cc = self.container_mut();
                cc.entrypoint = Some(argv);
                if !keep_cmd {
                    cc.cmd = None;
                }
            }
            Instruction::Shell(s) => self.container_mut().shell = Some(s.clone()),
            Instruction::Stopsignal(s) => self.container_mut().stop_signal = Some(s.clone()),
            Instruction::Healthcheck(h) => self.container_mut().healthcheck = Some(healthcheck(h)),
            Instruction::Onbuild(o) => self
                .container_mut()
                .on_build
                .get_or_insert_with(Vec::new)
                .push(o.original.clone()),
        }
        Ok(Effect::Config)
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

/// WORKDIR and COPY destinations: an absolute path is cleaned, a relative one joined onto
/// `current` first. Always absolute, never with a trailing `/`.
pub fn join_workdir(current: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("/{current}/{dir}")
    };
    crate::context::clean_path(&joined)
}

/// `80` → `80/tcp`; `53/UDP` → `53/udp`; `8000-8002` → each of the three ports (BuildKit
/// gets them from the engine's port parser expanded); anything else is `None`.
pub fn normalize_port(word: &str) -> Option<Vec<String>> {
    let (port, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return None;
    }
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u16>().ok())
            .flatten()
    };
    // A range is every port in it, as the engine's port parser gives it to BuildKit.
    let (first, last) = match port.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => (number(port)?, number(port)?),
    };
    (first <= last).then(|| (first..=last).map(|p| format!("{p}/{proto}")).collect())
}

fn healthcheck(h: &HealthcheckInstr) -> Healthcheck {
    let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as i64);
    match h {
        HealthcheckInstr::None => Healthcheck {
            test: Some(vec!["NONE".into()]),
            ..Healthcheck::default()
        },
        HealthcheckInstr::Cmd {
            test,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match test {
                Command::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            };
            Healthcheck {
                test: Some(test),
                interval: ns(interval),
                timeout: ns(timeout),
                start_period: ns(start_period),
                start_interval: ns(start_interval),
                retries: retries.map(i64::from),
            }
        }
    }
}

/// The history text of an instruction (`created_by`): the keyword and its arguments.
pub fn created_by(instr: &Instruction) -> String {
    let cmd = |c: &Command| match c {
        Command::Exec(v) => serde_json::to_string(v).unwrap_or_default(),
        Command::Shell(s) => s.clone(),
    };
    let kvs = |v: &[KeyValue]| {
        v.iter()
            .map(|kv| format!("{}={}", kv.key, kv.value))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let flag = |name: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!("--{name}={v} "))
            .unwrap_or_default()
    };
    let rest = match instr {
        Instruction::Env(p) | Instruction::Label(p) => kvs(p),
        Instruction::Workdir(s)
        | Instruction::User(s)
        | Instruction::Stopsignal(s)
        | Instruction::Maintainer(s) => s.clone(),
        Instruction::Expose(v) | Instruction::Volume(v) | Instruction::Shell(v) => v.join(" "),
        Instruction::Cmd(c) | Instruction::Entrypoint(c) => cmd(c),
        Instruction::Copy(c) => format!(
            "{}{}{} {} # buildkit",
            flag("from", &c.from),
            flag("chown", &c.chown),
            c.sources.join(" "),
            c.dest
        ),
        Instruction::Add(a) => format!(
            "{}{} {} # buildkit",
            flag("chown", &a.chown),
            a.sources.join(" "),
            a.dest
        ),
        Instruction::Run(r) => cmd(&r.command),
        Instruction::Onbuild(o) => o.original.clone(),
        Instruction::Arg(decls) => decls
            .iter()
            .map(|d| match &d.default {
                Some(v) => format!("{}={v}", d.name),
                None => d.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        Instruction::Healthcheck(h) => match h {
            HealthcheckInstr::None => "NONE".into(),
            HealthcheckInstr::Cmd { test, .. } => format!("CMD {}", cmd(test)),
        },
    };
    format!("{} {}", instr.keyword(), rest)
        .trim_end()
        .to_string()
}

impl State {
    /// The history entry of an instruction just applied, at `created` (Unix seconds);
    /// `empty_layer` when it wrote no layer. WORKDIR records the absolute path, as BuildKit.
    pub fn history(&self, instr: &Instruction, created: Option<i64>, empty_layer: bool) -> History {
        let text = match instr {
            Instruction::Workdir(_) => format!("WORKDIR {}", self.workdir()),
            other => created_by(other),
        };
        History {
            comment: Some(HISTORY_COMMENT.into()),
            ..History::instruction(text, created, empty_layer)
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
