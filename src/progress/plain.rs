//! `--progress plain`: one line per step, RUN output prefixed by its job. The
//! default when stderr is not a terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use super::{Event, Reporter};

/// Writes one human line per event.
pub struct PlainReporter<W: Write + Send> {
    out: Mutex<W>,
    labels: Mutex<BTreeMap<String, String>>,
}

impl<W: Write + Send> PlainReporter<W> {
    /// A reporter writing to `out` (usually stderr).
    pub fn new(out: W) -> Self {
        PlainReporter {
            out: Mutex::new(out),
            labels: Mutex::new(BTreeMap::new()),
        }
    }

    fn label(&self, job: &str) -> String {
        let labels = self.labels.lock().expect("progress lock");
        labels
            .get(job)
            .cloned()
            .unwrap_or_else(|| format!("[{job}]"))
    }
}

impl<W: Write + Send> Reporter for PlainReporter<W> {
    fn report(&self, event: &Event) {
        let line = match event {
            Event::Plan {
                jobs,
                native,
                assembled,
                emulated,
            } => format!(
                "plan: {jobs} jobs: {native} native, {assembled} assembled, {emulated} emulated"
            ),
            Event::JobStarted {
                job,
                stage,
                platforms,
                steps,
                engine,
            } => {
                let on = engine
                    .as_deref()
                    .map_or_else(String::new, |e| format!(" on {e}"));
                let label = format!("[{}] {stage}{on}", platforms.join(","));
                self.labels
                    .lock()
                    .expect("progress lock")
                    .insert(job.clone(), label.clone());
                format!("{label}: started ({steps} steps)")
            }
            Event::StepStarted {
                job,
                step,
                of,
                text,
            } => {
                format!("{} {step}/{of} {text}", self.label(job))
            }
            Event::StepCached { job, step } => format!("{} {step} CACHED", self.label(job)),
            Event::Output { job, line } => format!("{} | {line}", self.label(job)),
            Event::JobFinished { job, millis } => {
                format!(
                    "{} done in {:.1}s",
                    self.label(job),
                    *millis as f64 / 1000.0
                )
            }
            Event::JobFailed { job, error } => format!("{} FAILED: {error}", self.label(job)),
            Event::ContainerCreated { .. } => return,
            Event::Blob {
                repository,
                digest,
                uploaded,
                outcome,
            } => {
                let short = digest.get(..19).unwrap_or(digest);
                format!("push {repository} {short} {outcome} ({uploaded} bytes)")
            }
            Event::Note { message } => message.clone(),
        };
        let mut out = self.out.lock().expect("progress lock");
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_prefixed_by_their_job() {
        let r = PlainReporter::new(Vec::new());
        r.report(&Event::JobStarted {
            job: "j1".into(),
            stage: "build".into(),
            platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
            steps: 3,
            engine: None,
        });
        r.report(&Event::StepStarted {
            job: "j1".into(),
            step: 1,
            of: 3,
            text: "RUN make".into(),
        });
        r.report(&Event::Output {
            job: "j1".into(),
            line: "cc -o app".into(),
        });
        let text = String::from_utf8(r.out.into_inner().unwrap()).unwrap();
        assert!(
            text.contains("[linux/amd64,linux/arm64] build 1/3 RUN make"),
            "{text}"
        );
        assert!(
            text.contains("[linux/amd64,linux/arm64] build | cc -o app"),
            "{text}"
        );
    }
}
