//! The one base-image resolver: every (reference, platform) a build starts from or copies
//! from is resolved once, before anything runs, to a pinned image and its config.
//!
//! Order, as BuildKit-in-the-engine does it: the engine's own image store first, when it
//! holds the reference for the right platform (a test image that exists only in the engine
//! is used as is); else the registry, resolved to the platform's manifest digest. The
//! executor then pulls by digest (`repo@sha256:…`), never by a tag two platforms share,
//! which is how an arm64 image once got an x86-64 base layer: two pulls of one tag raced
//! in the engine's store (issue 9). The architecture of what the registry gives is checked
//! here, and the engine's is checked again after a pull.
//!
//! I/O through `engine` and `registry` only; the result is a plain value the planner,
//! the executor and the assembler all read.

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::dockerfile::expand::Expander;
use crate::dockerfile::Dockerfile;
use crate::engine::{Engine, ImageLookup};
use crate::oci::config::RootFs;
use crate::oci::{Descriptor, Digest, ImageConfig};
use crate::plan::BuildPlan;
use crate::platform::Platform;
use crate::registry::{ImageRef, RegistryClient, RegistryError};

pub use crate::plan::{base_key, BaseInfo, BaseOrigin, Bases, ResolvedBase};

/// Why a base image could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Neither the engine nor the registry has it for the platform.
    #[error("base image {reference} for {platform}: {reason}")]
    NotFound {
        /// The reference.
        reference: String,
        /// The platform.
        platform: String,
        /// What the engine and the registry said.
        reason: String,
        /// Where the reference came from, when a build arg named it (advice, not shown
        /// in the message).
        named_by: Option<String>,
    },
    /// The registry's image says another architecture than its index entry.
    #[error("base image {reference} for {platform}: the registry's config says {actual}")]
    WrongArchitecture {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The config's platform.
        actual: String,
    },
    /// Looking into the engine's store failed.
    #[error("base image {reference}: looking it up in the engine: {source}")]
    Engine {
        /// The reference.
        reference: String,
        /// The engine's error.
        #[source]
        source: Box<crate::engine::EngineError>,
    },
}

impl ResolveError {
    /// Advice for the user: which build arg to set when one named the image.
    pub fn hint(&self) -> Option<String> {
        match self {
            ResolveError::NotFound { named_by, .. } => named_by.clone(),
            _ => None,
        }
    }

    /// Says which build arg named the image, when `FROM` took it from one: a missing
    /// base image is most often a build arg's default that this machine cannot pull.
    pub fn with_arg_hint(mut self, df: &Dockerfile, plan: &BuildPlan) -> ResolveError {
        if let ResolveError::NotFound {
            reference,
            named_by,
            ..
        } = &mut self
        {
            *named_by = arg_naming(df, plan, reference);
        }
        self
    }
}

/// "line 5: FROM ${BUILDER_IMAGE} takes the image from the build arg BUILDER_IMAGE; ...".
/// The names `FROM` looks up are the expander's own (BuildKit's rules, the escape
/// directive included), not a second reading of the text.
fn arg_naming(df: &Dockerfile, plan: &BuildPlan, reference: &str) -> Option<String> {
    let job = plan.jobs.iter().find(
        |j| matches!(&j.base, crate::plan::Base::Image { reference: r, .. } if r == reference),
    )?;
    let stage = df.stages.get(job.stage.index)?;
    let looked_up = Expander::new(df.directives.escape)
        .expand_word_with_matches(&stage.base, &BTreeMap::<String, String>::new())
        .ok()?
        .unmatched;
    let arg = df
        .meta_args
        .iter()
        .map(|a| a.node.name.as_str())
        .find(|name| looked_up.contains(*name))?;
    Some(format!(
        "line {}: FROM {} takes the image from the build arg {arg}: pass one this machine can \
         pull or has, with --build-arg {arg}=IMAGE",
        stage.span.start_line, stage.base
    ))
}

/// Resolves every wanted (reference, platform), concurrently, each once. With
/// `pull_always` (`--pull`), the engine's store is skipped for references a registry
/// serves (an image only the engine has is still used).
pub async fn resolve_all(
    wanted: &[(String, Platform)],
    engine: Option<&dyn Engine>,
    client: &RegistryClient,
    pull_always: bool,
) -> Result<Bases, ResolveError> {
    let mut unique: Vec<(String, Platform)> = Vec::new();
    for (r, p) in wanted {
        let p = p.normalized();
        if !unique.iter().any(|(ur, up)| ur == r && *up == p) {
            unique.push((r.clone(), p));
        }
    }
    let results = join_all(
        unique
            .iter()
            .map(|(r, p)| resolve_one(r, p, engine, client, pull_always)),
    )
    .await;
    let mut out = Bases::new();
    for ((r, p), res) in unique.iter().zip(results) {
        out.insert(base_key(r, p), res?);
    }
    Ok(out)
}

async fn resolve_one(
    reference: &str,
    platform: &Platform,
    engine: Option<&dyn Engine>,
    client: &RegistryClient,
    pull_always: bool,
) -> Result<ResolvedBase, ResolveError> {
    let mut engine_says = None;
    if let Some(engine) = engine {
        match from_engine(engine, reference, platform).await? {
            InEngine::Found(found) if !pull_always => return Ok(*found),
            said => engine_says = Some(said),
        }
    }
    match from_registry(client, reference, platform).await {
        Ok(found) => Ok(found),
        Err(RegistryFailure::Arch(e)) => Err(e),
        Err(RegistryFailure::Other(registry_why)) => match engine_says {
            Some(InEngine::Found(found)) => Ok(*found),
            Some(engine_why) => Err(ResolveError::NotFound {
                reference: reference.into(),
                platform: platform.format_all(),
                reason: format!("{engine_why}; in the registry: {registry_why}"),
                named_by: None,
            }),
            None => Err(ResolveError::NotFound {
                reference: reference.into(),
                platform: platform.format_all(),
                reason: registry_why,
                named_by: None,
            }),
        },
    }
}

/// What the engine's store holds of a (reference, platform).
enum InEngine {
    /// The image, for the platform.
    Found(Box<ResolvedBase>),
    /// No image of that name.
    Missing,
    /// The image, for another platform.
    OtherPlatform {
        /// The reference asked for.
        reference: String,
        /// The image's platform.
        platform: Platform,
    },
}

/// Why the engine's image is not used (the error says it when the registry fails too).
impl std::fmt::Display for InEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InEngine::Found(b) => write!(f, "the engine has {}", b.reference),
            InEngine::Missing => f.write_str("not in the engine"),
            InEngine::OtherPlatform {
                reference,
                platform,
            } => write!(f, "the engine's {reference} is {}", platform.format()),
        }
    }
}

/// Looks `reference` up in the engine's store for `platform`.
async fn from_engine(
    engine: &dyn Engine,
    reference: &str,
    platform: &Platform,
) -> Result<InEngine, ResolveError> {
    let found = engine
        .inspect_image(reference)
        .await
        .map_err(|source| ResolveError::Engine {
            reference: reference.into(),
            source: Box::new(source),
        })?;
    let info = match found {
        ImageLookup::Missing => return Ok(InEngine::Missing),
        ImageLookup::Found(info) => info,
    };
    // `matches`, not `==`: an arm64 image often says variant v8, the target none.
    if !platform.matches(&info.platform) {
        return Ok(InEngine::OtherPlatform {
            reference: reference.into(),
            platform: info.platform.clone(),
        });
    }
    let diff_ids = info
        .diff_ids
        .iter()
        .filter_map(|d| Digest::parse(d).ok())
        .collect();
    let config = ImageConfig {
        architecture: info.platform.architecture.clone(),
        os: info.platform.os.clone(),
        variant: (!info.platform.variant.is_empty()).then(|| info.platform.variant.clone()),
        config: Some(info.config.clone()),
        rootfs: RootFs {
            diff_ids,
            ..RootFs::default()
        },
        ..ImageConfig::default()
    };
    Ok(InEngine::Found(Box::new(ResolvedBase {
        reference: reference.into(),
        requested: platform.clone(),
        info: BaseInfo {
            pinned: info.id.clone(),
            platform: info.platform.clone(),
            config,
        },
        origin: BaseOrigin::Engine {
            image_id: info.id.clone(),
        },
    })))
}

/// Resolves `reference` for `platform` in its registry only (for callers without an
/// engine: the assembler's tests and benchmarks).
pub async fn resolve_in_registry(
    client: &RegistryClient,
    reference: &str,
    platform: &Platform,
) -> Result<ResolvedBase, ResolveError> {
    let platform = platform.normalized();
    match from_registry(client, reference, &platform).await {
        Ok(found) => Ok(found),
        Err(RegistryFailure::Arch(e)) => Err(e),
        Err(RegistryFailure::Other(reason)) => Err(ResolveError::NotFound {
            reference: reference.into(),
            platform: platform.format_all(),
            reason,
            named_by: None,
        }),
    }
}

enum RegistryFailure {
    Arch(ResolveError),
    Other(String),
}

async fn from_registry(
    client: &RegistryClient,
    reference: &str,
    platform: &Platform,
) -> Result<ResolvedBase, RegistryFailure> {
    let r = ImageRef::parse(reference).map_err(|e| RegistryFailure::Other(e.to_string()))?;
    let resolved = client
        .resolve(&r, platform)
        .await
        .map_err(|e: RegistryError| RegistryFailure::Other(e.to_string()))?;
    let config = ImageConfig::parse(&resolved.config_bytes)
        .map_err(|e| RegistryFailure::Other(e.to_string()))?;
    let actual = config.platform();
    if !platform.matches(&actual) {
        return Err(RegistryFailure::Arch(ResolveError::WrongArchitecture {
            reference: reference.into(),
            platform: platform.format_all(),
            actual: actual.format(),
        }));
    }
    let repository = format!("{}/{}", r.registry, r.repository);
    let layers = resolved
        .layers
        .iter()
        .map(|d| {
            Ok(Descriptor::new(
                d.media_type.clone(),
                Digest::parse(&d.digest)?,
                d.size,
            ))
        })
        .collect::<crate::oci::Result<Vec<_>>>()
        .map_err(|e| RegistryFailure::Other(e.to_string()))?;
    Ok(ResolvedBase {
        reference: reference.into(),
        requested: platform.clone(),
        info: BaseInfo {
            pinned: format!("{repository}@{}", resolved.manifest.digest),
            platform: actual,
            config,
        },
        origin: BaseOrigin::Registry {
            repository,
            manifest_digest: resolved.manifest.digest.clone(),
            layers,
        },
    })
}
