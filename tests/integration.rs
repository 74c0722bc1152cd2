//! One integration-test binary: every effectful or conformance test lives in a module here.
mod context_tests;
mod dockerfile_conformance;
mod dockerfile_fuzz;
mod dockerfile_typed;
mod expand_conformance;
mod platform_cases;

mod engine_docker;

mod support;

mod engine_pull;
mod exec_build;
mod fixture_smoke;
