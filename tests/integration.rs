//! One integration-test binary: every effectful or conformance test lives in a module here.
mod expand_conformance;
mod platform_cases;
mod context_tests;
mod dockerfile_conformance;
mod dockerfile_fuzz;
mod dockerfile_typed;

mod engine_docker;

mod support;

mod fixture_smoke;
mod engine_pull;
mod exec_build;
