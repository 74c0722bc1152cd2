//! Progress: one `Event` type for everything a build reports, and one `Reporter`
//! per display: live bars on a terminal (`tty`), one line per step (`plain`) or
//! one JSON object per line (`json`). Reporters only write to stderr (or the
//! writer they are given); they never decide anything.

mod json;
mod plain;
pub mod push;
pub mod text;
mod tty;

use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use json::JsonReporter;
pub use plain::PlainReporter;
pub use text::step_text;
pub use tty::TtyReporter;

/// Something that happened during a build, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The plan is known: how many jobs of each mode will run, and the plan itself (what
    /// `xplat plan --format json` prints for the same inputs).
    Plan {
        /// Number of jobs.
        jobs: usize,
        /// Jobs that run natively on the build platform.
        native: usize,
        /// Jobs composed as OCI layers without running anything.
        assembled: usize,
        /// Jobs that need emulation.
        emulated: usize,
        /// The plan the build runs.
        plan: Box<crate::plan::BuildPlan>,
    },
    /// A job started.
    JobStarted {
        /// Job id, as in the plan.
        job: String,
        /// Stage name or index.
        stage: String,
        /// Platforms this job serves, formatted.
        platforms: Vec<String>,
        /// Number of steps.
        steps: usize,
        /// The engine it runs on, when the build has named engines.
        #[serde(skip_serializing_if = "Option::is_none")]
        engine: Option<String>,
    },
    /// A step of a job started.
    StepStarted {
        /// Job id.
        job: String,
        /// 1-based step number.
        step: usize,
        /// Number of steps in the job.
        of: usize,
        /// The instruction, shortened for display.
        text: String,
    },
    /// A step's result came from the step cache; nothing ran.
    StepCached {
        /// Job id.
        job: String,
        /// 1-based step number.
        step: usize,
    },
    /// One line of output from a running step.
    Output {
        /// Job id.
        job: String,
        /// The line, without its newline.
        line: String,
    },
    /// A job finished successfully.
    JobFinished {
        /// Job id.
        job: String,
        /// Wall time in milliseconds.
        millis: u64,
    },
    /// A job failed.
    JobFailed {
        /// Job id.
        job: String,
        /// What went wrong, one line.
        error: String,
    },
    /// A container was created for a step (counts work that was not cached).
    ContainerCreated {
        /// Job id.
        job: String,
    },
    /// A blob was sent to a registry, or skipped because it was there.
    Blob {
        /// Repository it went to.
        repository: String,
        /// Digest of the blob.
        digest: String,
        /// Bytes uploaded (0 when skipped or mounted).
        uploaded: u64,
        /// `uploaded`, `exists` or `mounted`.
        outcome: String,
    },
    /// A free-form note for the user (one line).
    Note {
        /// The text.
        message: String,
    },
    /// A job is known and waits for its turn (its dependencies, or a free slot).
    JobQueued {
        /// Job id, as in the plan.
        job: String,
        /// Stage name or index.
        stage: String,
        /// Platforms this job serves, formatted.
        platforms: Vec<String>,
        /// `native`, `emulated` or `assembled`.
        mode: String,
        /// Jobs it waits for.
        waits_for: Vec<String>,
    },
    /// An assembled job's image was composed (nothing ran).
    JobAssembled {
        /// Job id.
        job: String,
        /// Stage name or index.
        stage: String,
        /// Platforms this job serves, formatted.
        platforms: Vec<String>,
        /// Layers added to the base.
        layers: usize,
        /// Wall time in milliseconds.
        millis: u64,
    },
    /// A platform's manifest is in the registry.
    ManifestPushed {
        /// `registry/repository`.
        repository: String,
        /// The platform.
        platform: String,
        /// Manifest digest.
        digest: String,
    },
    /// The index is in the registry under a tag (or by digest).
    IndexPushed {
        /// `registry/repository`.
        repository: String,
        /// The tag, or the digest when pushed without one.
        tag: String,
        /// Index digest.
        digest: String,
    },
    /// What the build produced: the last event of a successful build.
    Result {
        /// Index digest (the image ID of the multi-platform image).
        index_digest: String,
        /// Index media type.
        media_type: String,
        /// The `-t` names.
        tags: Vec<String>,
        /// Per target, in `--platform` order.
        platforms: Vec<ResultPlatform>,
        /// Repositories pushed to.
        pushed: Vec<String>,
        /// Files and folders written (layouts, `--output` destinations).
        written: Vec<String>,
    },
}

/// One platform of a [`Event::Result`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultPlatform {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Config digest.
    pub config_digest: String,
}

/// A display of build progress.
pub trait Reporter: Send + Sync {
    /// Shows one event.
    fn report(&self, event: &Event);
    /// Ends the display (clears live bars); called once at the end.
    fn finish(&self) {}
}

/// A reporter that shows nothing (for `--quiet` and for library callers).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _event: &Event) {}
}

/// A reporter that keeps every event, for tests and for summaries.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Recorder {
    /// Every event reported so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().expect("recorder lock").clone()
    }
}

impl Reporter for Recorder {
    fn report(&self, event: &Event) {
        self.events
            .lock()
            .expect("recorder lock")
            .push(event.clone());
    }
}

/// Shortens an instruction for a one-line display: first line only, at most `max` characters.
pub fn shorten(text: &str, max: usize) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    if first.chars().count() <= max {
        let more = text.trim().lines().count() > 1;
        return if more {
            format!("{first} ...")
        } else {
            first.to_string()
        };
    }
    let cut: String = first.chars().take(max.saturating_sub(3)).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_keeps_short_text_and_cuts_long_text() {
        assert_eq!(shorten("RUN go build", 40), "RUN go build");
        assert_eq!(shorten("RUN a\n b", 40), "RUN a ...");
        assert_eq!(shorten("RUN abcdefghij", 8), "RUN a...");
    }

    #[test]
    fn recorder_keeps_events_in_order() {
        let r = Recorder::default();
        r.report(&Event::Note {
            message: "a".into(),
        });
        r.report(&Event::StepCached {
            job: "j".into(),
            step: 1,
        });
        assert_eq!(r.events().len(), 2);
        assert_eq!(
            r.events()[0],
            Event::Note {
                message: "a".into()
            }
        );
    }
}
