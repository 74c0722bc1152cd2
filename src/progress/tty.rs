//! Live progress on a terminal: one indicatif line per running job, e.g.
//! `[linux/arm64] build 4/7 RUN go build ...` with its elapsed time.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{shorten, Event, Reporter};

/// Live bars on stderr.
pub struct TtyReporter {
    bars: MultiProgress,
    jobs: Mutex<BTreeMap<String, (String, ProgressBar)>>,
}

impl Default for TtyReporter {
    fn default() -> Self {
        TtyReporter {
            bars: MultiProgress::new(),
            jobs: Mutex::new(BTreeMap::new()),
        }
    }
}

impl TtyReporter {
    fn style() -> ProgressStyle {
        ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {elapsed:>4}")
            .expect("valid template")
    }
}

impl Reporter for TtyReporter {
    fn report(&self, event: &Event) {
        let mut jobs = self.jobs.lock().expect("progress lock");
        match event {
            Event::JobStarted {
                job,
                stage,
                platforms,
                ..
            } => {
                let bar = self.bars.add(ProgressBar::new_spinner());
                bar.set_style(Self::style());
                let label = format!("[{}] {stage}", platforms.join(","));
                bar.set_prefix(label.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                jobs.insert(job.clone(), (label, bar));
            }
            Event::StepStarted {
                job,
                step,
                of,
                text,
            } => {
                if let Some((_, bar)) = jobs.get(job) {
                    bar.set_message(format!("{step}/{of} {}", shorten(text, 60)));
                }
            }
            Event::StepCached { job, step } => {
                if let Some((_, bar)) = jobs.get(job) {
                    bar.set_message(format!("{step} CACHED"));
                }
            }
            Event::Output { job, line } => {
                if let Some((_, bar)) = jobs.get(job) {
                    bar.set_message(shorten(line, 60));
                }
            }
            Event::JobFinished { job, millis } => {
                if let Some((label, bar)) = jobs.remove(job) {
                    bar.finish_and_clear();
                    let _ = self
                        .bars
                        .println(format!("{label} done in {:.1}s", *millis as f64 / 1000.0));
                }
            }
            Event::JobFailed { job, error } => {
                if let Some((label, bar)) = jobs.remove(job) {
                    bar.finish_and_clear();
                    let _ = self.bars.println(format!("{label} FAILED: {error}"));
                }
            }
            Event::Plan {
                jobs: n,
                native,
                assembled,
                emulated,
            } => {
                let _ = self.bars.println(format!(
                    "plan: {n} jobs: {native} native, {assembled} assembled, {emulated} emulated"
                ));
            }
            Event::Note { message } => {
                let _ = self.bars.println(message);
            }
            Event::Blob { .. } | Event::ContainerCreated { .. } => {}
        }
    }

    fn finish(&self) {
        for (_, (_, bar)) in std::mem::take(&mut *self.jobs.lock().expect("progress lock")) {
            bar.finish_and_clear();
        }
    }
}
