use std::process::ExitCode;

fn main() -> ExitCode {
    xplat::cli::main()
}
