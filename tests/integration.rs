//! One integration-test binary: every effectful or conformance test lives in a module here.
mod context_tests;
mod dockerfile_conformance;
mod dockerfile_fuzz;
mod dockerfile_typed;
mod engine_docker;
mod engine_pull;
mod expand_conformance;
mod oci_build;
mod oci_docker;
mod oci_fixtures;
mod platform_cases;
mod support;
mod fixture_smoke;
