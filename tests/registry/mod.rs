//! Tests of the `registry` module: a real `docker-registry` process for
//! behaviour (`real`, through `support::Registry`), an in-process hostile
//! registry for error paths (`hostile`). In a folder rather than
//! `tests/registry_*.rs` so Cargo does not build each file as its own test binary.

mod hostile;
mod real;
