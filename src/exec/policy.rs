//! When the executor commits: a commit is a cost (a walk of the whole image tree on an
//! engine without native diff: about 3 s for a 1 GB builder image here; 0.08 s with
//! overlay2's native diff; about 0.1 s on fuse-overlayfs when xplat reads the upper
//! directory itself), and so is re-running steps. The rule is one comparison:
//! commit where the work it would save (the RUN, COPY and WORKDIR steps since the last
//! image) costs more than the commit itself.
//!
//! Pure; the runner measures the steps' durations as it goes and asks.

use crate::engine::EngineProfile;

/// The commit policy for one container's image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Estimated seconds of one commit.
    pub commit_seconds: f64,
}

impl Policy {
    /// The policy for an engine and an image of `image_bytes`.
    pub fn new(profile: &EngineProfile, image_bytes: i64) -> Policy {
        Policy {
            commit_seconds: profile.commit_seconds(image_bytes),
        }
    }

    /// A checkpoint (a commit the step cache keeps) before a step that reads the build
    /// context, the usual place a rebuild starts from: worth it when the work since
    /// the last image took longer than the commit.
    pub fn checkpoint(&self, run_seconds_since_image: f64) -> bool {
        run_seconds_since_image > self.commit_seconds
    }

    /// At the end of a job other jobs are built `FROM`: commit (for them and for the
    /// next build's cache), or let them replay the job's steps, which costs that work
    /// once per extra consumer and once per later rebuild.
    pub fn commit_for_consumers(&self, run_seconds_since_image: f64) -> bool {
        run_seconds_since_image > self.commit_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(native_diff: bool) -> EngineProfile {
        EngineProfile {
            native_diff,
            ..EngineProfile::default()
        }
    }

    #[test]
    fn cheap_commits_checkpoint_real_work_and_dear_ones_only_long_work() {
        let gb = 1_090_000_000;
        let naive = Policy::new(&profile(false), gb);
        let native = Policy::new(&profile(true), gb);
        // `go mod download` with no dependencies: 0.3 s.
        assert!(!naive.checkpoint(0.3));
        assert!(native.checkpoint(0.3));
        // goping-mod's prefix (WORKDIR, COPY go.mod, `go mod download`): 0.15 s on
        // overlay2, against a measured 0.08 s commit: checkpoint it, or every rebuild
        // after a change replays it.
        assert!(native.checkpoint(0.15));
        assert!(!naive.checkpoint(0.15));
        // On fuse-overlayfs with commits from the upper directory (0.1 s), it is too.
        let upper = Policy::new(
            &EngineProfile {
                commits_upper_dirs: true,
                ..profile(false)
            },
            gb,
        );
        assert!(upper.checkpoint(0.15));
        assert!(!upper.checkpoint(0.05));
        // `apt-get install` of a toolchain: 40 s.
        assert!(naive.checkpoint(40.0));
        assert!(!naive.commit_for_consumers(0.0));
        assert!(!native.commit_for_consumers(0.0), "no RUN: replay is free");
        assert!(naive.commit_for_consumers(10.0));
    }
}
