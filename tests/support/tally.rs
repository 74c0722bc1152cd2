//! Conformance counts (`buildkit parser cases: 33/33`) that show in the normal
//! `cargo test` output: written straight to the process's stderr, which the test
//! harness does not capture (it captures only the `print!` family).

use std::io::Write;

/// Prints one count line where a person running the tests sees it.
pub fn write_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `tally!("cases: {}/{}", a, b)`: like `println!`, but shown in the normal test output.
macro_rules! tally {
    ($($arg:tt)*) => {
        $crate::support::tally::write_line(&format!($($arg)*))
    };
}
pub(crate) use tally;
