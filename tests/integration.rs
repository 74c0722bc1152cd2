//! One integration-test binary: every effectful or conformance test lives in a module here.
mod cli_config;
mod cli_help;
mod cli_init;
mod cli_templates;
mod context_tests;
mod dockerfile_conformance;
mod dockerfile_fuzz;
mod dockerfile_typed;
mod expand_conformance;
mod plan_golden;
mod platform_cases;
