//! `xplat inspect REF`: an image or index from a registry, or from an OCI layout (folder or
//! tar, written `oci:PATH[:TAG]` or given as an existing path): platforms, digests, sizes and
//! a config summary per image. `--raw` prints the top document's exact bytes.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

use super::error::{OutputError, Result};
use crate::oci::layout::{read_layout, LayoutContents, REF_NAME};
use crate::oci::{Digest, ImageConfig, ImageManifest};
use crate::registry::{ImageRef, RegistryClient};

/// Where an inspected document lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectTarget {
    /// A registry reference.
    Registry(ImageRef),
    /// An OCI layout folder or tar, and optionally the tag (`ref.name`) to pick.
    Layout {
        /// The folder or tar.
        path: PathBuf,
        /// The tag, or the first entry of `index.json`.
        tag: Option<String>,
    },
}

impl InspectTarget {
    /// `oci:PATH[:TAG]` or an existing path is a layout; anything else a registry reference.
    pub fn parse(input: &str) -> Result<InspectTarget> {
        if let Some(rest) = input.strip_prefix("oci:") {
            let (path, tag) = match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t.to_string())),
                _ => (rest, None),
            };
            return Ok(InspectTarget::Layout {
                path: PathBuf::from(path),
                tag,
            });
        }
        if Path::new(input).exists() {
            return Ok(InspectTarget::Layout {
                path: PathBuf::from(input),
                tag: None,
            });
        }
        ImageRef::parse(input)
            .map(InspectTarget::Registry)
            .map_err(OutputError::registry(format!("inspecting {input}")))
    }
}

/// A config, summarized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSummary {
    /// `os/arch[/variant]` from the config.
    pub platform: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest size.
    pub size: u64,
    /// Config digest.
    pub config_digest: String,
    /// Number of layers.
    pub layers: usize,
    /// Sum of the layer sizes.
    pub layers_size: u64,
    /// `created`.
    pub created: Option<String>,
    /// ENTRYPOINT.
    pub entrypoint: Option<Vec<String>>,
    /// CMD.
    pub cmd: Option<Vec<String>>,
    /// WORKDIR.
    pub working_dir: Option<String>,
    /// USER.
    pub user: Option<String>,
    /// EXPOSE.
    pub exposed_ports: Vec<String>,
    /// ENV.
    pub env: Vec<String>,
}

/// What `xplat inspect` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The reference as given.
    pub reference: String,
    /// The top document's media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size.
    pub size: u64,
    /// Per image (one for a single image; one per platform entry for an index).
    pub images: Vec<ImageSummary>,
    /// The top document's exact bytes.
    #[serde(skip)]
    pub raw: Bytes,
}

impl Inspection {
    /// Text for people.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{}\n  {}  {}  {} B\n",
            self.reference, self.media_type, self.digest, self.size
        );
        for i in &self.images {
            s.push_str(&format!(
                "\n{}\n  manifest  {}  {} B\n  config    {}\n  layers    {} ({} B)\n",
                i.platform, i.digest, i.size, i.config_digest, i.layers, i.layers_size
            ));
            if let Some(c) = &i.created {
                s.push_str(&format!("  created   {c}\n"));
            }
            if let Some(e) = &i.entrypoint {
                s.push_str(&format!(
                    "  entrypoint {}\n",
                    serde_json::to_string(e).unwrap_or_default()
                ));
            }
            if let Some(c) = &i.cmd {
                s.push_str(&format!(
                    "  cmd       {}\n",
                    serde_json::to_string(c).unwrap_or_default()
                ));
            }
            if let Some(w) = &i.working_dir {
                s.push_str(&format!("  workdir   {w}\n"));
            }
            if let Some(u) = &i.user {
                s.push_str(&format!("  user      {u}\n"));
            }
            if !i.exposed_ports.is_empty() {
                s.push_str(&format!("  expose    {}\n", i.exposed_ports.join(" ")));
            }
            for e in &i.env {
                s.push_str(&format!("  env       {e}\n"));
            }
        }
        s
    }
}

fn summarize(digest: &str, manifest_bytes: &[u8], config_bytes: &[u8]) -> Result<ImageSummary> {
    let m: ImageManifest =
        serde_json::from_slice(manifest_bytes).map_err(|source| OutputError::Json {
            action: "parsing an image manifest",
            source,
        })?;
    // An artifact (an xplat cache entry, a signature): its type stands for the platform,
    // and it has no image config to summarize.
    let kind: serde_json::Value = serde_json::from_slice(manifest_bytes).unwrap_or_default();
    let config_type = kind["config"]["mediaType"].as_str().unwrap_or("");
    if !config_type.is_empty()
        && !config_type.contains("image.config")
        && !config_type.contains("container.image")
    {
        let artifact = kind["artifactType"].as_str().unwrap_or(config_type);
        return Ok(ImageSummary {
            platform: format!("artifact {artifact}"),
            digest: digest.to_string(),
            size: manifest_bytes.len() as u64,
            config_digest: m.config.digest.to_string(),
            layers: m.layers.len(),
            layers_size: m.layers.iter().map(|l| l.size).sum(),
            created: None,
            entrypoint: None,
            cmd: None,
            working_dir: None,
            user: None,
            exposed_ports: Vec::new(),
            env: Vec::new(),
        });
    }
    let c =
        ImageConfig::parse(config_bytes).map_err(OutputError::oci("parsing an image config"))?;
    let p = c.platform();
    let cc = c.config.clone().unwrap_or_default();
    // An image that says it is an artifact too (an xplat cache checkpoint) says both.
    let platform = match kind["artifactType"].as_str() {
        Some(t) => format!("artifact {t} ({})", crate::assemble::show(&p)),
        None => crate::assemble::show(&p),
    };
    Ok(ImageSummary {
        platform,
        digest: digest.to_string(),
        size: manifest_bytes.len() as u64,
        config_digest: m.config.digest.to_string(),
        layers: m.layers.len(),
        layers_size: m.layers.iter().map(|l| l.size).sum(),
        created: c.created,
        entrypoint: cc.entrypoint,
        cmd: cc.cmd,
        working_dir: cc.working_dir,
        user: cc.user,
        exposed_ports: cc.exposed_ports.unwrap_or_default().into_keys().collect(),
        env: cc.env.unwrap_or_default(),
    })
}

/// Inspects a registry reference or an OCI layout.
pub async fn inspect(input: &str, client: &RegistryClient) -> Result<Inspection> {
    match InspectTarget::parse(input)? {
        InspectTarget::Registry(r) => inspect_registry(input, &r, client).await,
        InspectTarget::Layout { path, tag } => inspect_layout(input, &path, tag.as_deref()),
    }
}

async fn inspect_registry(
    input: &str,
    r: &ImageRef,
    client: &RegistryClient,
) -> Result<Inspection> {
    let action = format!("inspecting {input}");
    let top = client
        .inspect(r)
        .await
        .map_err(OutputError::registry(action.clone()))?;
    let mut images = Vec::new();
    let children: Vec<String> = if top.image.is_some() {
        vec![top.manifest.digest.clone()]
    } else {
        top.entries
            .iter()
            .filter(|e| !e.is_attestation)
            .map(|e| e.descriptor.digest.clone())
            .collect()
    };
    for d in children {
        let child_ref = r.with_digest(&d);
        let child = client
            .inspect(&child_ref)
            .await
            .map_err(OutputError::registry(action.clone()))?;
        let Some((config, _)) = &child.image else {
            continue;
        };
        let config_bytes = client
            .fetch_blob(r, &config.digest)
            .await
            .map_err(OutputError::registry(action.clone()))?;
        images.push(summarize(&d, &child.manifest.bytes, &config_bytes)?);
    }
    Ok(Inspection {
        reference: input.to_string(),
        media_type: top.manifest.media_type.clone(),
        digest: top.manifest.digest.clone(),
        size: top.manifest.bytes.len() as u64,
        images,
        raw: top.manifest.bytes.clone(),
    })
}

fn inspect_layout(input: &str, path: &Path, tag: Option<&str>) -> Result<Inspection> {
    let action = format!("inspecting the OCI layout {}", path.display());
    let contents = read_layout(path).map_err(OutputError::oci(action.clone()))?;
    let top = contents
        .index_json
        .manifests
        .iter()
        .find(|d| match tag {
            None => true,
            Some(t) => {
                d.annotations
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .map(String::as_str)
                    == Some(t)
            }
        })
        .ok_or_else(|| OutputError::MissingInput {
            what: format!("tag {:?} in {}", tag.unwrap_or(""), path.display()),
            needed_by: action.clone(),
        })?;
    let raw = document(&contents, &top.digest).ok_or_else(|| OutputError::MissingInput {
        what: format!("document {}", top.digest),
        needed_by: action.clone(),
    })?;
    let mut images = Vec::new();
    let children: Vec<Digest> = match contents.indexes.get(&top.digest) {
        Some((_, idx)) => idx.manifests.iter().map(|d| d.digest).collect(),
        None => vec![top.digest],
    };
    for d in children {
        let Some((bytes, m)) = contents.manifests.get(&d) else {
            continue;
        };
        let Some(config) = contents.configs.get(&m.config.digest) else {
            continue;
        };
        images.push(summarize(&d.to_string(), bytes, config)?);
    }
    Ok(Inspection {
        reference: input.to_string(),
        media_type: top.media_type.clone(),
        digest: top.digest.to_string(),
        size: raw.len() as u64,
        images,
        raw,
    })
}

fn document(c: &LayoutContents, d: &Digest) -> Option<Bytes> {
    c.indexes
        .get(d)
        .map(|(b, _)| b.clone())
        .or_else(|| c.manifests.get(d).map(|(b, _)| b.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            InspectTarget::parse("oci:out/app:1.0").unwrap(),
            InspectTarget::Layout {
                path: "out/app".into(),
                tag: Some("1.0".into())
            }
        );
        assert!(matches!(
            InspectTarget::parse("127.0.0.1:5000/app:1.0").unwrap(),
            InspectTarget::Registry(_)
        ));
        assert!(InspectTarget::parse("Bad Ref").is_err());
    }

    #[test]
    fn an_image_with_an_artifact_type_says_both_and_a_plain_image_its_platform() {
        let config =
            br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest = |artifact: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",{artifact}"config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
                crate::registry::sha256_digest(config),
                config.len()
            )
        };
        let plain = summarize("sha256:a", manifest("").as_bytes(), config).unwrap();
        assert_eq!(plain.platform, "linux/arm64");
        let marked = manifest(r#""artifactType":"application/vnd.xplat.cache.checkpoint.v1","#);
        let checkpoint = summarize("sha256:b", marked.as_bytes(), config).unwrap();
        assert_eq!(
            checkpoint.platform,
            "artifact application/vnd.xplat.cache.checkpoint.v1 (linux/arm64)"
        );
    }
}
