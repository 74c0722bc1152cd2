//! One integration-test binary: every effectful or conformance test lives in a module here.
mod cli_config;
mod cli_help;
mod cli_init;
mod dockerfile_conformance;
mod expand_conformance;
mod platform_cases;
