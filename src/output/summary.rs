//! What a build produced, as the `--metadata-file` document and the end-of-build lines:
//! the index, each platform's manifest, and the plan the build ran.

use serde::Serialize;

use crate::assemble::show;
use crate::oci::{ImageIndex, LayerBlob};

/// One platform of the result (also the `--metadata-file` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformSummary {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// Config digest.
    pub config_digest: String,
    /// Sum of the layer sizes (compressed).
    pub layers_size: u64,
}

/// What a build produced: the `--metadata-file` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildSummary {
    /// Index digest.
    pub index_digest: String,
    /// Index media type.
    pub media_type: String,
    /// Index size in bytes.
    pub index_size: u64,
    /// The `-t` values.
    pub tags: Vec<String>,
    /// Per target, in `--platform` order.
    pub platforms: Vec<PlatformSummary>,
    /// The plan the build ran, when known (what `xplat plan --format json` prints for the
    /// same inputs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::BuildPlan>,
}

impl BuildSummary {
    /// The summary of an index.
    pub fn of(index: &ImageIndex, tags: &[String]) -> BuildSummary {
        BuildSummary {
            index_digest: index.digest().to_string(),
            media_type: index.format().index_type().to_string(),
            index_size: index.blob().size(),
            tags: tags.to_vec(),
            platforms: index
                .images()
                .iter()
                .map(|(p, i)| PlatformSummary {
                    platform: show(p),
                    digest: i.digest().to_string(),
                    size: i.manifest_blob().size(),
                    config_digest: i.config_blob().digest().to_string(),
                    layers_size: i.layers().iter().map(LayerBlob::size).sum(),
                })
                .collect(),
            plan: None,
        }
    }

    /// The end-of-build lines: per target the manifest digest and size, then the index.
    pub fn render(&self) -> String {
        let width = self
            .platforms
            .iter()
            .map(|p| p.platform.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut s = String::new();
        for p in &self.platforms {
            s.push_str(&format!(
                "{:<width$}  {}  manifest {} B, layers {}\n",
                p.platform,
                p.digest,
                p.size,
                human(p.layers_size)
            ));
        }
        s.push_str(&format!("{:<width$}  {}\n", "index", self.index_digest));
        s
    }
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
