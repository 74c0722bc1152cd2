//! One integration-test binary: every effectful or conformance test lives in a module here.
mod cli_config;
mod cli_errors;
mod cli_help;
mod cli_init;
mod cli_templates;
mod context_tests;
mod corpus;
mod differential;
mod dockerfile_conformance;
mod dockerfile_fuzz;
mod dockerfile_typed;
mod e2e;
mod e2e_output;
mod engine_docker;
mod engines;
mod expand_conformance;
mod first_hour;
mod pipeline;
mod platform_cases;

mod support;

mod engine_pull;
mod exec_build;
mod exec_cross;
mod exec_instructions;
mod fixture_smoke;
mod oci_build;
mod oci_docker;
mod oci_fixtures;
mod plan_golden;
mod registry;
