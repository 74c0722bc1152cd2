//! `--progress plain`: one line per step, RUN output prefixed by its job. The
//! default when stderr is not a terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use super::{text, Event, Reporter};

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
                ..
            } => text::plan_line(*jobs, *native, *assembled, *emulated),
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
                let label = format!("{}{on}", text::job_label(platforms, stage));
                self.labels
                    .lock()
                    .expect("progress lock")
                    .insert(job.clone(), label.clone());
                format!("{label}: started ({steps} steps)")
            }
            // The whole instruction: a multi-line RUN continues on indented lines.
            Event::StepStarted {
                job,
                step,
                of,
                text,
            } => {
                format!(
                    "{} {step}/{of} {}",
                    self.label(job),
                    text.trim_end().replace('\n', "\n    ")
                )
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
            Event::JobQueued {
                job,
                stage,
                platforms,
                mode,
                waits_for,
            } => {
                let label = text::job_label(platforms, stage);
                self.labels
                    .lock()
                    .expect("progress lock")
                    .insert(job.clone(), label.clone());
                format!("{label}: {}", text::queued_status(mode, waits_for))
            }
            Event::JobAssembled {
                job,
                stage,
                platforms,
                layers,
                millis,
            } => {
                let label = self
                    .labels
                    .lock()
                    .expect("progress lock")
                    .get(job)
                    .cloned()
                    .unwrap_or_else(|| text::job_label(platforms, stage));
                format!(
                    "{label} assembled ({layers} layer{}) in {:.1}s",
                    if *layers == 1 { "" } else { "s" },
                    *millis as f64 / 1000.0
                )
            }
            Event::ManifestPushed {
                repository,
                platform,
                digest,
            } => format!("push {repository} manifest {platform} {digest}"),
            Event::IndexPushed {
                repository,
                tag,
                digest,
            } => format!("push {repository} index {digest} as {tag}"),
            Event::Result {
                index_digest,
                platforms,
                ..
            } => {
                let each: Vec<String> = platforms
                    .iter()
                    .map(|p| format!("{} {}", p.platform, p.digest))
                    .collect();
                format!("result: index {index_digest} ({})", each.join(", "))
            }
        };
        let mut out = self.out.lock().expect("progress lock");
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(r: PlainReporter<Vec<u8>>) -> String {
        String::from_utf8(r.out.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn queued_assembled_pushed_and_the_result_each_have_a_line() {
        let r = PlainReporter::new(Vec::new());
        r.report(&Event::JobQueued {
            job: "#3".into(),
            stage: "stage 1".into(),
            platforms: vec!["linux/arm64".into()],
            mode: "assembled".into(),
            waits_for: vec!["#2".into()],
        });
        r.report(&Event::JobAssembled {
            job: "#3".into(),
            stage: "stage 1".into(),
            platforms: vec!["linux/arm64".into()],
            layers: 1,
            millis: 120,
        });
        r.report(&Event::ManifestPushed {
            repository: "r/app".into(),
            platform: "linux/arm64".into(),
            digest: "sha256:m".into(),
        });
        r.report(&Event::IndexPushed {
            repository: "r/app".into(),
            tag: "1.0".into(),
            digest: "sha256:i".into(),
        });
        r.report(&Event::Result {
            index_digest: "sha256:i".into(),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            tags: vec!["r/app:1.0".into()],
            platforms: vec![crate::progress::ResultPlatform {
                platform: "linux/arm64".into(),
                digest: "sha256:m".into(),
                config_digest: "sha256:c".into(),
            }],
            pushed: vec!["r/app".into()],
            written: vec![],
        });
        let t = text(r);
        for line in [
            "[linux/arm64] stage 1: queued (assembled, waits for #2)",
            "[linux/arm64] stage 1 assembled (1 layer) in 0.1s",
            "push r/app manifest linux/arm64 sha256:m",
            "push r/app index sha256:i as 1.0",
            "result: index sha256:i (linux/arm64 sha256:m)",
        ] {
            assert!(t.lines().any(|l| l == line), "{line:?} in:\n{t}");
        }
    }

    #[test]
    fn a_long_multi_line_run_is_shown_whole() {
        let r = PlainReporter::new(Vec::new());
        let long = format!("RUN {}", "x".repeat(200));
        r.report(&Event::StepStarted {
            job: "j".into(),
            step: 1,
            of: 1,
            text: format!("{long}\nsecond line"),
        });
        let t = text(r);
        assert!(t.contains(&long), "{t}");
        assert!(t.contains("\n    second line"), "{t}");
    }

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
