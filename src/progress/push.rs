//! Push progress as progress events: a `blob` per blob (uploaded, already there, or
//! mounted), `manifest_pushed` per platform, `index_pushed` per tag, a note per retry.

use super::Event;
use crate::registry::PushEvent;

/// The event to show for `e`, a push to `repository` (`registry/repository`); `None` for
/// what is not shown (chunk progress, the 413 fallback).
pub fn event_for(repository: &str, e: &PushEvent) -> Option<Event> {
    let blob = |digest: &str, uploaded: u64, outcome: &str| Event::Blob {
        repository: repository.to_string(),
        digest: digest.to_string(),
        uploaded,
        outcome: outcome.into(),
    };
    Some(match e {
        PushEvent::BlobSkipped { digest, .. } => blob(digest, 0, "exists"),
        PushEvent::BlobMounted { digest, .. } => blob(digest, 0, "mounted"),
        PushEvent::BlobUploaded {
            digest, bytes_sent, ..
        } => blob(digest, *bytes_sent, "uploaded"),
        PushEvent::Retrying {
            operation,
            attempt,
            reason,
        } => Event::Note {
            message: format!("retrying {operation} (attempt {attempt}): {reason}"),
        },
        PushEvent::ManifestPushed { platform, digest } => Event::ManifestPushed {
            repository: repository.to_string(),
            platform: platform.clone(),
            digest: digest.clone(),
        },
        PushEvent::IndexPushed { tag, digest } => Event::IndexPushed {
            repository: repository.to_string(),
            tag: tag.clone(),
            digest: digest.clone(),
        },
        PushEvent::BlobProgress { .. } | PushEvent::ChunkedFallback { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_and_the_index_are_events_of_their_own() {
        let e = event_for(
            "r:5000/app",
            &PushEvent::ManifestPushed {
                platform: "linux/arm64".into(),
                digest: "sha256:m".into(),
            },
        )
        .unwrap();
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "manifest_pushed");
        assert_eq!(v["repository"], "r:5000/app");
        assert_eq!(v["platform"], "linux/arm64");
        let e = event_for(
            "r:5000/app",
            &PushEvent::IndexPushed {
                tag: "1.0".into(),
                digest: "sha256:i".into(),
            },
        )
        .unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap()["event"], "index_pushed");
        assert!(event_for(
            "r",
            &PushEvent::BlobProgress {
                digest: "d".into(),
                offset: 1,
                size: 2
            }
        )
        .is_none());
    }
}
