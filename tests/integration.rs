//! One integration-test binary: every effectful or conformance test lives in a module here.
mod dockerfile_conformance;
mod dockerfile_fuzz;
mod dockerfile_typed;
