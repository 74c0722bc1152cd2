//! The session of one command: the platform catalog, the Dockerfile (path, text and syntax
//! tree) and the planner's options, made once from the merged configuration (`xplat.toml`,
//! `XPLAT_*`, flags) and read by `xplat plan`, `xplat check` and `xplat build` alike, so
//! what `xplat plan` prints is what `xplat build` runs (issue 9).
//!
//! Pure: the caller reads the files and merges the configuration (`cli::session`); this
//! module only turns those values into [`PlanOptions`] and a [`BuildPlan`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::dockerfile::Dockerfile;
use crate::plan::{self, BuildPlan, Diagnostic, EngineSlot, PlanOptions};
use crate::platform::{Catalog, Platform};

/// What the planner is given, before the engines are known: the validated settings every
/// command shares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanInputs {
    /// Target platforms in the user's order (empty: the build platform).
    pub platforms: Vec<Platform>,
    /// `--build-platform`, when the user chose one.
    pub build_platform: Option<Platform>,
    /// `--build-arg` values (a `--build-arg NAME` whose NAME is unset is absent, as with
    /// `docker build`).
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`.
    pub target: Option<String>,
}

impl PlanInputs {
    /// The planner's options: `default_build_platform` (the engine's platform, or the
    /// host's offline) unless the user fixed one; the jobs placed on `engines`.
    pub fn options(
        &self,
        default_build_platform: &Platform,
        all_in_engine: bool,
        engines: &[EngineSlot],
    ) -> PlanOptions {
        let build_platform = self
            .build_platform
            .clone()
            .unwrap_or_else(|| default_build_platform.clone());
        let targets = if self.platforms.is_empty() {
            vec![build_platform.clone()]
        } else {
            self.platforms.clone()
        };
        PlanOptions {
            targets,
            build_platform,
            build_args: self.build_args.clone(),
            target_stage: self.target.clone(),
            all_in_engine,
            engines: engines.to_vec(),
            fixed_build_platform: self.build_platform.is_some(),
            bases: BTreeMap::new(),
        }
    }
}

/// One command's catalog, Dockerfile and plan options, made once.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The platform catalog: embedded, the user's folder, `--platforms-dir`.
    pub catalog: Catalog,
    /// Where the Dockerfile was read from (shown in messages).
    pub dockerfile: PathBuf,
    /// Its text.
    pub text: String,
    /// Its syntax tree.
    pub df: Dockerfile,
    /// The validated settings the planner is given.
    pub inputs: PlanInputs,
    /// The planner's options offline: the host as build platform unless fixed, the
    /// engines as declared (no engine is asked).
    pub options: PlanOptions,
}

impl Session {
    /// The session of a command, planned offline with `host` as the default build platform.
    pub fn new(
        catalog: Catalog,
        dockerfile: PathBuf,
        text: String,
        df: Dockerfile,
        inputs: PlanInputs,
        host: &Platform,
        engines: &[EngineSlot],
    ) -> Session {
        let options = inputs.options(host, false, engines);
        Session {
            catalog,
            dockerfile,
            text,
            df,
            inputs,
            options,
        }
    }

    /// The plan `xplat plan` prints and `xplat build` runs (given the same build platform
    /// and base images).
    pub fn plan(&self) -> plan::Result<BuildPlan> {
        plan::plan(&self.df, &self.options, &self.catalog)
    }

    /// `xplat check`'s findings for `targets` (the session's own when `None`).
    pub fn lint(&self, targets: Option<Vec<Platform>>) -> Vec<Diagnostic> {
        let mut options = self.options.clone();
        if let Some(t) = targets {
            options.targets = t;
        }
        plan::lint(&self.df, &options, &self.catalog)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn no_platforms_means_the_build_platform_and_a_chosen_one_is_fixed() {
        let inputs = PlanInputs::default();
        let o = inputs.options(&p("linux/amd64"), false, &[]);
        assert_eq!(o.targets, [p("linux/amd64")]);
        assert!(!o.fixed_build_platform);
        let inputs = PlanInputs {
            build_platform: Some(p("linux/arm64")),
            ..PlanInputs::default()
        };
        let o = inputs.options(&p("linux/amd64"), true, &[]);
        assert_eq!(o.targets, [p("linux/arm64")]);
        assert_eq!(o.build_platform, p("linux/arm64"));
        assert!(o.fixed_build_platform && o.all_in_engine);
    }
}
