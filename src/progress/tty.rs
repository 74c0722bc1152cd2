//! Live progress on a terminal: one indicatif line per job, e.g.
//! `[linux/arm64] build 4/7 RUN go build ...` with its elapsed time. A queued job has its
//! line too (`queued (waits for #0)`), so nothing the build will do is invisible; it
//! becomes the running line when the job starts. Finished jobs leave one printed line.
//!
//! What the lines say is decided by [`Screen`], plain values tested without a terminal;
//! [`TtyReporter`] mirrors it onto indicatif bars.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{shorten, Event, Reporter};

/// The width a step's text is cut to on a terminal line.
const TEXT_WIDTH: usize = 60;

/// One job's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobLine {
    /// `[platforms] stage`.
    pub label: String,
    /// What it does now.
    pub status: String,
    /// Started (a spinner turns); false while queued.
    pub running: bool,
}

/// What changed on the screen after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A job's line appeared or changed.
    Line(String),
    /// A job's line went away.
    Gone(String),
    /// A line printed above the live lines.
    Print(String),
}

/// The live lines, by job id.
#[derive(Debug, Default)]
pub(crate) struct Screen {
    pub jobs: BTreeMap<String, JobLine>,
}

impl Screen {
    fn line(&mut self, job: &str, label: String, status: String, running: bool) -> Vec<Change> {
        self.jobs.insert(
            job.to_string(),
            JobLine {
                label,
                status,
                running,
            },
        );
        vec![Change::Line(job.to_string())]
    }

    fn status(&mut self, job: &str, status: String) -> Vec<Change> {
        match self.jobs.get_mut(job) {
            Some(l) => {
                l.status = status;
                l.running = true;
                vec![Change::Line(job.to_string())]
            }
            None => Vec::new(),
        }
    }

    fn end(&mut self, job: &str, said: impl FnOnce(&str) -> String) -> Vec<Change> {
        match self.jobs.remove(job) {
            Some(l) => vec![Change::Gone(job.to_string()), Change::Print(said(&l.label))],
            None => Vec::new(),
        }
    }

    /// Applies an event; returns what the terminal must change.
    pub fn apply(&mut self, event: &Event) -> Vec<Change> {
        let label = super::text::job_label;
        match event {
            Event::JobQueued {
                job,
                stage,
                platforms,
                mode,
                waits_for,
            } => {
                let status = super::text::queued_status(mode, waits_for);
                self.line(job, label(platforms, stage), status, false)
            }
            Event::JobStarted {
                job,
                stage,
                platforms,
                steps,
                engine,
            } => self.line(
                job,
                label(platforms, stage),
                match engine {
                    Some(e) => format!("started on {e} ({steps} steps)"),
                    None => format!("started ({steps} steps)"),
                },
                true,
            ),
            Event::StepStarted {
                job,
                step,
                of,
                text,
            } => self.status(job, format!("{step}/{of} {}", shorten(text, TEXT_WIDTH))),
            Event::StepCached { job, step } => self.status(job, format!("{step} CACHED")),
            Event::Output { job, line } => self.status(job, shorten(line, TEXT_WIDTH)),
            Event::JobFinished { job, millis } => self.end(job, |l| {
                format!("{l} done in {:.1}s", *millis as f64 / 1000.0)
            }),
            Event::JobFailed { job, error } => self.end(job, |l| format!("{l} FAILED: {error}")),
            Event::JobAssembled {
                job,
                stage,
                platforms,
                layers,
                millis,
            } => {
                let said = |l: &str| {
                    format!(
                        "{l} assembled ({layers} layer{}) in {:.1}s",
                        if *layers == 1 { "" } else { "s" },
                        *millis as f64 / 1000.0
                    )
                };
                let mut changes = self.end(job, said);
                if changes.is_empty() {
                    changes.push(Change::Print(said(&label(platforms, stage))));
                }
                changes
            }
            Event::Plan {
                jobs,
                native,
                assembled,
                emulated,
                ..
            } => vec![Change::Print(super::text::plan_line(
                *jobs, *native, *assembled, *emulated,
            ))],
            Event::Note { message } => vec![Change::Print(message.clone())],
            Event::IndexPushed {
                repository,
                tag,
                digest,
            } => vec![Change::Print(format!(
                "pushed {repository}:{tag} ({digest})"
            ))],
            Event::Blob { .. }
            | Event::ContainerCreated { .. }
            | Event::ManifestPushed { .. }
            | Event::Result { .. } => Vec::new(),
        }
    }
}

/// Per job: its bar, and whether it was started (queued bars have no spinner or clock).
type Bars = BTreeMap<String, (ProgressBar, bool)>;

/// Live bars on stderr.
pub struct TtyReporter {
    bars: MultiProgress,
    /// The screen, and per job its bar and whether it runs (a spinner and a clock).
    state: Mutex<(Screen, Bars)>,
}

impl Default for TtyReporter {
    fn default() -> Self {
        TtyReporter {
            bars: MultiProgress::new(),
            state: Mutex::new((Screen::default(), BTreeMap::new())),
        }
    }
}

impl TtyReporter {
    fn style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed:>4}")
            .expect("valid template")
    }

    fn queued_style() -> ProgressStyle {
        ProgressStyle::with_template("  {prefix} {wide_msg}").expect("valid template")
    }
}

impl Reporter for TtyReporter {
    fn report(&self, event: &Event) {
        let mut state = self.state.lock().expect("progress lock");
        let (screen, bars) = &mut *state;
        for change in screen.apply(event) {
            match change {
                Change::Line(job) => {
                    let Some(line) = screen.jobs.get(&job) else {
                        continue;
                    };
                    let (bar, started) = bars.entry(job).or_insert_with(|| {
                        let bar = self.bars.add(ProgressBar::new_spinner());
                        bar.set_style(Self::queued_style());
                        (bar, false)
                    });
                    if line.running && !*started {
                        // From queued to running: the spinner and the clock start now.
                        bar.set_style(Self::style());
                        bar.reset_elapsed();
                        bar.enable_steady_tick(Duration::from_millis(120));
                        *started = true;
                    }
                    bar.set_prefix(line.label.clone());
                    bar.set_message(line.status.clone());
                }
                Change::Gone(job) => {
                    if let Some((bar, _)) = bars.remove(&job) {
                        bar.finish_and_clear();
                    }
                }
                Change::Print(text) => {
                    let _ = self.bars.println(text);
                }
            }
        }
    }

    fn finish(&self) {
        let mut state = self.state.lock().expect("progress lock");
        for (_, (bar, _)) in std::mem::take(&mut state.1) {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(job: &str, waits: &[&str]) -> Event {
        Event::JobQueued {
            job: job.into(),
            stage: "stage 1".into(),
            platforms: vec!["linux/arm64".into()],
            mode: "native".into(),
            waits_for: waits.iter().map(|w| w.to_string()).collect(),
        }
    }

    fn shown(s: &Screen, job: &str) -> String {
        let l = &s.jobs[job];
        format!("{} {}", l.label, l.status)
    }

    #[test]
    fn a_queued_job_is_on_screen_until_it_runs_and_ends() {
        let mut s = Screen::default();
        assert_eq!(
            s.apply(&queued("#1", &["#0"])),
            vec![Change::Line("#1".into())]
        );
        assert_eq!(
            shown(&s, "#1"),
            "[linux/arm64] stage 1 queued (native, waits for #0)"
        );
        assert!(!s.jobs["#1"].running);
        s.apply(&Event::JobStarted {
            job: "#1".into(),
            stage: "stage 1".into(),
            platforms: vec!["linux/arm64".into()],
            steps: 2,
            engine: None,
        });
        s.apply(&Event::StepStarted {
            job: "#1".into(),
            step: 1,
            of: 2,
            text: format!("RUN {}", "y".repeat(100)),
        });
        assert!(s.jobs["#1"].running);
        let line = shown(&s, "#1");
        assert!(
            line.starts_with("[linux/arm64] stage 1 1/2 RUN yyy"),
            "{line}"
        );
        assert!(line.ends_with("..."), "the terminal shortens: {line}");
        let end = s.apply(&Event::JobFinished {
            job: "#1".into(),
            millis: 1500,
        });
        assert_eq!(
            end,
            vec![
                Change::Gone("#1".into()),
                Change::Print("[linux/arm64] stage 1 done in 1.5s".into())
            ]
        );
        assert!(s.jobs.is_empty());
    }

    #[test]
    fn an_assembled_job_leaves_a_line_queued_or_not() {
        let mut s = Screen::default();
        s.apply(&queued("#3", &[]));
        let assembled = Event::JobAssembled {
            job: "#3".into(),
            stage: "stage 1".into(),
            platforms: vec!["linux/arm64".into()],
            layers: 2,
            millis: 40,
        };
        assert_eq!(
            s.apply(&assembled),
            vec![
                Change::Gone("#3".into()),
                Change::Print("[linux/arm64] stage 1 assembled (2 layers) in 0.0s".into())
            ]
        );
        assert_eq!(
            s.apply(&assembled),
            vec![Change::Print(
                "[linux/arm64] stage 1 assembled (2 layers) in 0.0s".into()
            )]
        );
    }
}
