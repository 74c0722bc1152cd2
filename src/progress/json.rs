//! `--progress json`: one JSON object per line, for programs and tests.

use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

/// Writes each event as one line of JSON.
pub struct JsonReporter<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonReporter<W> {
    /// A reporter writing to `out` (usually stderr).
    pub fn new(out: W) -> Self {
        JsonReporter {
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> Reporter for JsonReporter<W> {
    fn report(&self, event: &Event) {
        let line = serde_json::to_string(event).expect("events serialize");
        let mut out = self.out.lock().expect("progress lock");
        // A closed stderr must not fail the build.
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_json_line() {
        let r = JsonReporter::new(Vec::new());
        r.report(&Event::StepCached {
            job: "build".into(),
            step: 2,
        });
        r.report(&Event::Note {
            message: "hi".into(),
        });
        let text = String::from_utf8(r.out.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["event"], "step_cached");
        assert_eq!(v["step"], 2);
    }
}
