//! One integration-test binary: every effectful or conformance test lives in a module here.
mod dockerfile_conformance;
mod expand_conformance;
mod platform_cases;
