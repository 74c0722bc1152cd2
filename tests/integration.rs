//! One integration-test binary: every effectful or conformance test lives in a module here.

mod registry_hostile;
mod registry_real;
#[path = "support/registry_server.rs"]
mod registry_server;
