//! The image config, with xplat's own structs: BTreeMaps for every map so the bytes
//! are stable, and every field Docker and BuildKit write (including Healthcheck, Shell,
//! OnBuild and ArgsEscaped, which `oci-client`'s config type drops).
//!
//! Unknown fields are preserved: each struct keeps them in a flattened `extra` map, so
//! a config parsed from an engine or registry and serialized again keeps what xplat does
//! not model (key order of known fields follows the struct; unknown keys come after, sorted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::digest::Digest;
use super::error::{OciError, Result};
use super::time::rfc3339;
use crate::platform::Platform;

/// `{}`: the value type of ExposedPorts and Volumes sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// An OCI / Docker image config document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture.
    pub architecture: String,
    /// Operating system.
    pub os: String,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// OS features.
    #[serde(
        rename = "os.features",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The runtime defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The layers, by diff_id.
    pub rootfs: RootFs,
    /// One entry per Dockerfile instruction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields xplat does not model, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `config` object: what a container starts with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `USER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `EXPOSE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// `ENV`, as `KEY=value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Deprecated Docker/Windows field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    /// `HEALTHCHECK` (a Docker field, reserved in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `ONBUILD` triggers (Docker extra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    /// `SHELL` (Docker extra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// Fields xplat does not model, kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `HEALTHCHECK`; durations in nanoseconds as Docker writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", cmd]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// Time between checks, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Time a check may take, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Grace period after start, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// Interval during the start period, ns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// Failures before unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// `rootfs`: the layer diff_ids in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// sha256 of each uncompressed layer tar, base first.
    pub diff_ids: Vec<Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// A comment (BuildKit writes `buildkit.dockerfile.v0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True for an instruction that made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl History {
    /// An entry for `instruction` at `created` (Unix seconds); `empty_layer` when it made no layer.
    pub fn instruction(
        instruction: impl Into<String>,
        created: Option<i64>,
        empty_layer: bool,
    ) -> History {
        History {
            created: created.map(rfc3339),
            created_by: Some(instruction.into()),
            empty_layer,
            ..History::default()
        }
    }
}

impl ImageConfig {
    /// An empty config for `platform`, created at `created` (SOURCE_DATE_EPOCH) when given.
    pub fn for_platform(platform: &Platform, created: Option<i64>) -> ImageConfig {
        ImageConfig {
            created: created.map(rfc3339),
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
            ..ImageConfig::default()
        }
    }

    /// Parses a config from an engine or registry.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig> {
        serde_json::from_slice(bytes).map_err(OciError::json("parsing image config"))
    }

    /// The bytes xplat hashes and writes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(OciError::json("serializing image config"))
    }

    /// The platform this config says it is for.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone().unwrap_or_default(),
            ..Platform::default()
        }
    }

    /// Number of history entries that made a layer.
    pub fn non_empty_history(&self) -> usize {
        self.history.iter().filter(|h| !h.empty_layer).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let text = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Hostname":"x"},"rootfs":{"type":"layers","diff_ids":[]},"container":"abc"}"#;
        let cfg = ImageConfig::parse(text).unwrap();
        assert_eq!(cfg.extra["container"], Value::String("abc".into()));
        assert_eq!(
            cfg.config.as_ref().unwrap().extra["Hostname"],
            Value::String("x".into())
        );
        let again = ImageConfig::parse(&cfg.to_bytes().unwrap()).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn platform_and_created_come_from_inputs() {
        let p = Platform {
            os: "linux".into(),
            architecture: "arm".into(),
            variant: "v7".into(),
            ..Platform::default()
        };
        let cfg = ImageConfig::for_platform(&p, Some(0));
        let json = String::from_utf8(cfg.to_bytes().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"created":"1970-01-01T00:00:00Z","architecture":"arm","os":"linux","variant":"v7","rootfs":{"type":"layers","diff_ids":[]}}"#
        );
        assert_eq!(cfg.platform(), p);
    }
}
