//! The config state of a running job, over the one config type (`oci::ImageConfig`) and
//! the one interpreter of metadata instructions (shared with the assembler), plus what
//! the executor derives from it: the shell, argv, the RUN environment.

use std::collections::BTreeMap;

use crate::dockerfile::{Command, Instruction};
use crate::oci::{ContainerConfig, ImageConfig};
use crate::output::metadata::{self, Edit, StageState};

/// The default shell of a Linux image (`SHELL` replaces it).
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// A job's config while its steps run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    /// The config being built (authoritative: what the final image gets).
    pub config: ImageConfig,
    stage: StageState,
}

impl State {
    /// The state at FROM: the base's config; ONBUILD triggers of the base are not
    /// inherited (the planner turned them into steps).
    pub fn new(mut base: ImageConfig) -> State {
        if let Some(c) = base.config.as_mut() {
            c.on_build = None;
        }
        State {
            config: base,
            stage: StageState::default(),
        }
    }

    fn c(&self) -> Option<&ContainerConfig> {
        self.config.config.as_ref()
    }

    /// Applies a metadata instruction (WORKDIR too: the config changes, and the caller
    /// makes the folder). Returns `false` for RUN, COPY and ADD.
    pub fn apply(&mut self, instr: &Instruction) -> bool {
        matches!(
            metadata::apply(&mut self.config, &mut self.stage, instr),
            Edit::ConfigOnly
        )
    }

    /// `ENV` entries, `K=V`, in order.
    pub fn env(&self) -> Vec<String> {
        self.c().and_then(|c| c.env.clone()).unwrap_or_default()
    }

    /// ENV as a map.
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.env()
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    }

    /// The RUN environment: ENV overridden by the ARG values in effect. The planner gives
    /// only the ARGs whose latest setter was an ARG (BuildKit: `ENV Y=a`, `ARG Y`,
    /// `--build-arg Y=b` runs with `b`; `ARG A=1`, `ENV A=2` runs with `2`).
    pub fn run_env(&self, args: &BTreeMap<String, String>) -> Vec<String> {
        let mut env = self.env();
        for (k, v) in args {
            let entry = format!("{k}={v}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) == k)
            {
                Some(slot) => *slot = entry,
                None => env.push(entry),
            }
        }
        env
    }

    /// USER, when set.
    pub fn user(&self) -> Option<String> {
        self.c()
            .and_then(|c| c.user.clone())
            .filter(|u| !u.is_empty())
    }

    /// WORKDIR, `/` when unset.
    pub fn workdir(&self) -> String {
        self.c()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    /// The shell for shell-form commands.
    pub fn shell(&self) -> Vec<String> {
        self.c()
            .and_then(|c| c.shell.clone())
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

    /// The container-facing config (what a commit is sent).
    pub fn container_config(&self) -> ContainerConfig {
        self.c().cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(text: &str) -> Instruction {
        crate::dockerfile::parse(&format!("FROM scratch\n{text}\n"))
            .unwrap()
            .stages[0]
            .instructions[0]
            .node
            .clone()
    }

    #[test]
    fn run_env_is_env_with_args_on_top_and_argv_uses_shell() {
        let mut st = State::default();
        assert!(st.apply(&parse_one("ENV A=1 B=2")));
        let args = BTreeMap::from([
            ("B".to_string(), "arg".to_string()),
            ("C".to_string(), "c".to_string()),
        ]);
        assert_eq!(st.run_env(&args), vec!["A=1", "B=arg", "C=c"]);
        assert_eq!(st.env(), vec!["A=1", "B=2"], "ARGs never reach the config");
        assert!(st.apply(&parse_one("SHELL [\"/bin/bash\", \"-c\"]")));
        assert_eq!(
            st.argv(&Command::Shell("echo".into())),
            vec!["/bin/bash", "-c", "echo"]
        );
        assert!(!st.apply(&parse_one("RUN true")));
        assert!(st.apply(&parse_one("WORKDIR /a")));
        assert!(st.apply(&parse_one("WORKDIR b")));
        assert_eq!(st.workdir(), "/a/b");
    }

    #[test]
    fn base_onbuild_triggers_are_not_inherited() {
        let base = ImageConfig {
            config: Some(ContainerConfig {
                on_build: Some(vec!["RUN x".into()]),
                user: Some("app".into()),
                ..ContainerConfig::default()
            }),
            ..ImageConfig::default()
        };
        let st = State::new(base);
        assert_eq!(st.container_config().on_build, None);
        assert_eq!(st.user().as_deref(), Some("app"));
    }
}
