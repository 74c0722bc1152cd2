//! Platforms: `Platform { os, architecture, variant }` with containerd's parse,
//! normalize, format and match rules, and the catalog of what a cross build for
//! each platform needs (`platforms/*.toml`, embedded at build time).
//!
//! Pure: no I/O except reading a user catalog folder when asked.

use serde::{Deserialize, Serialize};

/// An OCI platform as containerd and BuildKit understand it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in GOARCH spelling, e.g. `arm64`.
    pub architecture: String,
    /// CPU variant, e.g. `v7`; empty when none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}
