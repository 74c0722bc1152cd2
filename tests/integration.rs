//! One integration-test binary: every effectful or conformance test lives in a module here.

mod registry;
