//! The command line: clap arguments, turned into options, handed to one library call.
//! Thin by design: every command is a library function the tests call too.

use std::process::ExitCode;

use clap::Parser;

/// xplat: build one Dockerfile for many platforms at once, natively.
#[derive(Debug, Parser)]
#[command(name = "xplat", version, about)]
pub struct Cli {}

/// Parses the process arguments, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let _cli = Cli::parse();
    ExitCode::SUCCESS
}
