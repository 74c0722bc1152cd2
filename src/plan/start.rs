//! What a stage starts from, as BuildKit sets it up before the stage's first
//! instruction: the *state env* (every name words expand with and RUN sees, with
//! who set it last), the WORKDIR, and the ONBUILD triggers that run first.
//!
//! BuildKit's rules (`dockerfile2llb`, checked against the engine's BuildKit, see
//! each item):
//! - the state env starts from the base: an image's config Env, or the parent
//!   stage's state env *including its ARG values* (a stage built `FROM` another
//!   sees the parent's `ARG FOO=bar` and `ARG TARGETPLATFORM` without declaring
//!   them; engine: `FROM base` then `RUN echo $FOO $TARGETPLATFORM` printed
//!   `bar linux/amd64`, and `WORKDIR /w-$FOO` in the child made `/w-bar`);
//! - ENV and ARG-with-a-value then update it in order, the later one winning
//!   (engine: `ENV Y=a`, `ARG Y`, `--build-arg Y=b`: RUN and WORKDIR saw `b`;
//!   `ENV Z=z`, `ARG Z=zdefault`: both saw `zdefault`; `ARG Q=qarg`,
//!   `ENV Q=qenv-$Q`: `qenv-qarg`; `ENV N=n`, `ARG N` with no value: `n`). The
//!   image config Env holds ENV only (there `Y=a`, `Z=z`);
//! - a config without PATH gets `PATH=/usr/local/sbin:…:/bin` (not on Windows);
//!   `FROM scratch` starts with just that and WORKDIR `/`;
//! - the WORKDIR starts at the base config's WorkingDir, else `/`;
//! - the base's ONBUILD triggers run first, at the FROM line, each parsed on its
//!   own: an image's config OnBuild, or the parent stage's own ONBUILD
//!   instructions (engine: `FROM base` where `base` has `ONBUILD RUN ...` and
//!   `ONBUILD WORKDIR /ob-$V` ran both in the child, whose config then had no
//!   OnBuild; a grandchild did not run them again).

use std::collections::BTreeMap;

use crate::dockerfile::{parse_trigger, Instruction, Location};
use crate::platform::Platform;

use super::error::{PlanError, Result};
use super::BaseInfo;
// BuildKit's default PATH, put into a config that has none: the one interpreter's.
use crate::stage::DEFAULT_PATH;

/// Who set a name of the state env last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Setter {
    /// ENV, or the base image's config Env.
    Env,
    /// ARG with a value (`--build-arg`, default, or global value).
    Arg,
}

/// BuildKit's state env: the values words expand with and RUN gets, each with its
/// latest setter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct StateEnv(BTreeMap<String, (String, Setter)>);

impl StateEnv {
    /// Sets `name`, replacing any earlier value whoever set it.
    pub fn set(&mut self, name: &str, value: String, setter: Setter) {
        self.0.insert(name.to_string(), (value, setter));
    }

    /// Every name with its value (what a word expands with).
    pub fn values(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// The names whose latest setter was an ARG, with their values: what the
    /// executor puts over the config Env for a RUN ([`super::Step::args`]).
    pub fn args(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(_, (_, s))| *s == Setter::Arg)
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// A config's `KEY=value` list (a bare `KEY` is `KEY=`), set by ENV.
    fn from_config(env: &[String]) -> StateEnv {
        let mut out = StateEnv::default();
        for kv in env {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            out.set(k, v.to_string(), Setter::Env);
        }
        out
    }

    /// BuildKit's "make sure that PATH is always set" (not on Windows).
    fn with_default_path(mut self, platform: &Platform) -> StateEnv {
        if !is_windows(platform) && !self.0.contains_key("PATH") {
            self.set("PATH", DEFAULT_PATH.to_string(), Setter::Env);
        }
        self
    }
}

fn is_windows(platform: &Platform) -> bool {
    platform.os == "windows"
}

/// A stage's starting point.
#[derive(Debug, Clone)]
pub(super) struct Start {
    /// The state env before the first instruction.
    pub env: StateEnv,
    /// Whether `env` is everything the base defines (scratch, a resolved image, or
    /// a stage chain rooted in one): a name not in it is then unset, not unknown.
    pub complete: bool,
    /// The WORKDIR before the first instruction, when known (never on Windows,
    /// whose paths the planner does not resolve).
    pub workdir: Option<String>,
    /// ONBUILD triggers to run first, parsed, in order.
    pub triggers: Vec<Instruction>,
}

/// What a stage ends with: what a stage built `FROM` it starts from.
#[derive(Debug, Clone)]
pub(super) struct End {
    /// The state env after the last instruction.
    pub env: StateEnv,
    /// As [`Start::complete`].
    pub complete: bool,
    /// The WORKDIR after the last instruction, when known.
    pub workdir: Option<String>,
    /// The stage's own ONBUILD triggers, as written after `ONBUILD `.
    pub onbuild: Vec<String>,
}

impl Start {
    /// `FROM scratch`: BuildKit's default PATH and WORKDIR `/`.
    pub fn scratch(platform: &Platform) -> Start {
        Start {
            env: StateEnv::default().with_default_path(platform),
            complete: true,
            workdir: (!is_windows(platform)).then(|| "/".to_string()),
            triggers: Vec::new(),
        }
    }

    /// An image the plan knows nothing about: its ENV, WORKDIR and triggers are the
    /// executor's to apply.
    pub fn unknown_image() -> Start {
        Start {
            env: StateEnv::default(),
            complete: false,
            workdir: None,
            triggers: Vec::new(),
        }
    }

    /// An image resolved before planning: its config's Env, WorkingDir and OnBuild.
    pub fn image(info: &BaseInfo, platform: &Platform, from: Location) -> Result<Start> {
        let config = info.config.config.clone().unwrap_or_default();
        let env = StateEnv::from_config(config.env.as_deref().unwrap_or_default())
            .with_default_path(platform);
        let workdir = match config.working_dir.as_deref() {
            _ if is_windows(platform) => None,
            Some(dir) if !dir.is_empty() => Some(crate::context::clean_path(&format!("/{dir}"))),
            _ => Some("/".to_string()),
        };
        Ok(Start {
            env,
            complete: true,
            workdir,
            triggers: triggers(config.on_build.as_deref().unwrap_or_default(), from)?,
        })
    }

    /// A stage built `FROM` another: the parent's end, and its ONBUILD triggers.
    pub fn stage(parent: &End, from: Location) -> Result<Start> {
        Ok(Start {
            env: parent.env.clone(),
            complete: parent.complete,
            workdir: parent.workdir.clone(),
            triggers: triggers(&parent.onbuild, from)?,
        })
    }
}

fn triggers(texts: &[String], from: Location) -> Result<Vec<Instruction>> {
    texts
        .iter()
        .map(|t| {
            parse_trigger(t).map_err(|source| PlanError::InvalidTrigger {
                trigger: t.clone(),
                source: Box::new(source),
                location: from,
            })
        })
        .collect()
}

/// WORKDIR `path` (expanded) from `current`: an absolute path, or one relative to
/// the current WORKDIR, cleaned (BuildKit's `path.Join("/", dir, path)`); `None`
/// when relative to an unknown WORKDIR.
pub(super) fn workdir(current: Option<&str>, path: &str) -> Option<String> {
    if path.starts_with('/') {
        Some(crate::context::clean_path(path))
    } else {
        current.map(|dir| crate::context::clean_path(&format!("/{dir}/{path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ContainerConfig, ImageConfig};

    fn info(env: &[&str], workdir: Option<&str>, onbuild: &[&str]) -> BaseInfo {
        BaseInfo {
            pinned: "sha256:abc".into(),
            platform: Platform::new("linux", "arm64", ""),
            config: ImageConfig {
                config: Some(ContainerConfig {
                    env: Some(env.iter().map(|s| s.to_string()).collect()),
                    working_dir: workdir.map(String::from),
                    on_build: Some(onbuild.iter().map(|s| s.to_string()).collect()),
                    ..ContainerConfig::default()
                }),
                ..ImageConfig::default()
            },
        }
    }

    #[test]
    fn later_setter_wins_and_args_are_the_arg_set_names() {
        let mut env = StateEnv::default();
        env.set("Y", "a".into(), Setter::Env);
        env.set("Y", "b".into(), Setter::Arg);
        env.set("Q", "qarg".into(), Setter::Arg);
        env.set("Q", "qenv".into(), Setter::Env);
        assert_eq!(env.values()["Y"], "b");
        assert_eq!(env.values()["Q"], "qenv");
        assert_eq!(
            env.args(),
            BTreeMap::from([("Y".to_string(), "b".to_string())])
        );
    }

    #[test]
    fn starts() {
        let linux = Platform::new("linux", "arm64", "");
        let at = Location::line(3);
        let s = Start::scratch(&linux);
        assert_eq!(s.env.values()["PATH"], DEFAULT_PATH);
        assert_eq!(s.workdir.as_deref(), Some("/"));
        assert!(s.complete);
        let win = Platform::new("windows", "amd64", "");
        assert!(Start::scratch(&win).env.values().is_empty());
        assert_eq!(Start::scratch(&win).workdir, None);

        let s = Start::image(
            &info(
                &["PATH=/go/bin:/usr/bin", "GOPATH=/go", "BARE"],
                Some("go/src"),
                &["RUN make", "COPY . /app"],
            ),
            &linux,
            at,
        )
        .unwrap();
        assert_eq!(s.env.values()["PATH"], "/go/bin:/usr/bin");
        assert_eq!(s.env.values()["BARE"], "");
        assert!(s.env.args().is_empty());
        assert_eq!(s.workdir.as_deref(), Some("/go/src"));
        assert_eq!(s.triggers.len(), 2);
        assert_eq!(s.triggers[0].keyword(), "RUN");
        let s = Start::image(&info(&[], None, &[]), &linux, at).unwrap();
        assert_eq!(s.env.values()["PATH"], DEFAULT_PATH);
        assert_eq!(s.workdir.as_deref(), Some("/"));

        let e = Start::image(&info(&[], None, &["RUN a\nRUN b"]), &linux, at).unwrap_err();
        assert_eq!(e.location(), Some(at));
        assert!(e.to_string().contains("single expression"), "{e}");
    }

    #[test]
    fn workdir_joins() {
        assert_eq!(workdir(Some("/a"), "b/../c").as_deref(), Some("/a/c"));
        assert_eq!(workdir(None, "/x/./y/").as_deref(), Some("/x/y"));
        assert_eq!(workdir(None, "rel"), None);
        assert_eq!(workdir(Some("/"), "..").as_deref(), Some("/"));
    }
}
