//! The [`Session`] of `xplat plan`, `xplat check` and `xplat build`, made once per command
//! from the merged configuration ([`super::project::load_config`]: `xplat.toml`, `XPLAT_*`,
//! flags), the platform catalog and the Dockerfile, so the three commands plan with the
//! same inputs (issue 9: `xplat plan` ignored `xplat.toml`'s platforms, and `xplat build`
//! planned with the embedded catalog only).

use super::engines::offline_slots;
use super::options::Config;
use super::preflight::read_dockerfile;
use crate::ops::{PlanInputs, Session};
use crate::platform::{Catalog, Platform};

/// The planner's inputs in `config`.
pub fn plan_inputs(config: &Config) -> PlanInputs {
    PlanInputs {
        platforms: config.platforms.clone(),
        build_platform: config.build_platform.clone(),
        build_args: config.build_args.clone(),
        target: config.target.clone(),
    }
}

/// Reads and parses `config`'s Dockerfile (a syntax error is printed with its location and
/// ends the command) and makes the session, planned offline with the host as the default
/// build platform and the engines as declared.
pub fn load(config: &Config, catalog: &Catalog) -> anyhow::Result<Session> {
    let (text, df) = read_dockerfile(&config.dockerfile)?;
    let host = Platform::host().normalized();
    let inputs = plan_inputs(config);
    let build_platform = inputs.build_platform.clone().unwrap_or(host.clone());
    let engines = offline_slots(&config.engines, &build_platform);
    Ok(Session::new(
        catalog.clone(),
        config.dockerfile.clone(),
        text,
        df,
        inputs,
        &host,
        &engines,
    ))
}
