//! One integration-test binary: every effectful or conformance test lives in a module here.

mod oci_build;
mod oci_docker;
mod oci_fixtures;
