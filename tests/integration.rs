//! One integration-test binary: every effectful or conformance test lives in a module here.

mod engine_docker;
mod engine_pull;
