//! Dockerfile front end: parsing and shell-word variable expansion. Pure: no I/O.

pub mod expand;
