//! Engine operations outside the scheduler's trait: what `xplat prune`, the image
//! outputs and the test fixtures need (containers by label, image removal, cache
//! volumes, `docker save` / `docker load` / `docker import`).

use std::collections::{BTreeMap, HashMap};

use bollard::errors::Error as Bollard;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{
    CreateImageOptionsBuilder, ImportImageOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, ListVolumesOptionsBuilder, RemoveImageOptionsBuilder,
    RemoveVolumeOptions,
};
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::df::legacy_volume_sizes;
use super::docker::{split_tag, DockerEngine};
use super::error::{EngineError, Result};
use super::{ContainerId, TarBody, CACHE_VOLUME_LABEL, MANAGED_LABEL};
use crate::platform::Platform;

/// A named volume backing `RUN --mount=type=cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheVolume {
    /// Volume name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Bytes used, when the engine reports it (`system df`).
    pub size: Option<i64>,
    /// When it was made, Unix seconds (from the engine's `CreatedAt`), when known.
    pub created: Option<i64>,
}

/// One of xplat's containers as a listing shows it (for `xplat prune`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerEntry {
    /// The container.
    pub id: ContainerId,
    /// Its labels (`xplat.build`, `xplat.project`, ...).
    pub labels: BTreeMap<String, String>,
    /// When it was made, Unix seconds.
    pub created: i64,
}

/// What `system df` says about xplat's cache volumes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DiskUsage {
    /// Sum of the known sizes.
    pub total: i64,
    /// Volumes whose size the engine did not report.
    pub unknown: usize,
}

/// One local image as an image listing shows it (intermediate images included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageEntry {
    /// The engine's id.
    pub id: String,
    /// The parent image id (set for committed images), if any.
    pub parent: Option<String>,
    /// Tags pointing at it (`<none>:<none>` left out).
    pub repo_tags: Vec<String>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Size in bytes including its parents' layers, as the engine reports it.
    pub size: i64,
    /// When it was made, Unix seconds.
    pub created: i64,
}

/// Whether a removal took place or the engine kept the image because something
/// (a container, a child image) still uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The image is gone (or was already).
    Removed,
    /// The engine refused: the image is in use.
    InUse,
}

impl DockerEngine {
    /// Every local image, intermediate ones included (`all=true`), sorted by id.
    pub async fn list_images(&self) -> Result<Vec<ImageEntry>> {
        let opts = ListImagesOptionsBuilder::default().all(true).build();
        let list = self
            .docker
            .list_images(Some(opts))
            .await
            .map_err(|source| EngineError::ListImages {
                label: String::new(),
                source,
            })?;
        let mut out: Vec<ImageEntry> = list
            .into_iter()
            .map(|i| ImageEntry {
                parent: Some(i.parent_id).filter(|p| !p.is_empty()),
                repo_tags: i
                    .repo_tags
                    .into_iter()
                    .filter(|t| t != "<none>:<none>")
                    .collect(),
                labels: i.labels.into_iter().collect(),
                size: i.size,
                created: i.created,
                id: i.id,
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Removes an image by id, with its tags; an image that is in use (by a container
    /// or a child image) is kept and reported as [`Removal::InUse`].
    pub async fn remove_unused_image(&self, id: &str) -> Result<Removal> {
        let opts = RemoveImageOptionsBuilder::default()
            .force(true)
            .noprune(true)
            .build();
        match self.docker.remove_image(id, Some(opts), None).await {
            Ok(_)
            | Err(Bollard::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(Removal::Removed),
            Err(Bollard::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(Removal::InUse),
            Err(source) => Err(EngineError::RemoveImage {
                reference: id.into(),
                source,
            }),
        }
    }

    /// Whether a container exists (in any state).
    pub async fn container_exists(&self, id: &ContainerId) -> Result<bool> {
        match self.docker.inspect_container(&id.0, None).await {
            Ok(_) => Ok(true),
            Err(Bollard::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(source) => Err(EngineError::ListContainers { source }),
        }
    }

    /// Every container labelled `xplat.managed=true`, running or not, including ones a
    /// killed xplat left behind (for `xplat prune`).
    pub async fn list_managed_containers(&self) -> Result<Vec<ContainerId>> {
        let entries = self.list_managed_container_entries().await?;
        Ok(entries.into_iter().map(|e| e.id).collect())
    }

    /// xplat's containers with their labels and creation time, by id.
    pub async fn list_managed_container_entries(&self) -> Result<Vec<ContainerEntry>> {
        let label = format!("{MANAGED_LABEL}=true");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|source| EngineError::ListContainers { source })?;
        let mut out: Vec<ContainerEntry> = list
            .into_iter()
            .filter_map(|c| {
                Some(ContainerEntry {
                    id: ContainerId(c.id?),
                    labels: c.labels.unwrap_or_default().into_iter().collect(),
                    created: c.created.unwrap_or(0),
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Removes an image (by reference or id); `force` also removes it when tagged
    /// several times. A missing image is not an error.
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        let opts = RemoveImageOptionsBuilder::default()
            .force(force)
            .noprune(false)
            .build();
        match self.docker.remove_image(reference, Some(opts), None).await {
            Ok(_)
            | Err(Bollard::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(source) => Err(EngineError::RemoveImage {
                reference: reference.into(),
                source,
            }),
        }
    }

    /// Creates (or finds) a named cache volume labelled `xplat.cache=true`.
    pub async fn create_cache_volume(&self, name: &str) -> Result<()> {
        let req = VolumeCreateRequest {
            name: Some(name.into()),
            labels: Some(HashMap::from([(
                CACHE_VOLUME_LABEL.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map(|_| ())
            .map_err(|source| EngineError::CreateVolume {
                name: name.into(),
                source,
            })
    }

    /// xplat's cache volumes, sorted by name, with sizes where `system df` gives them.
    pub async fn list_cache_volumes(&self) -> Result<Vec<CacheVolume>> {
        let label = format!("{CACHE_VOLUME_LABEL}=true");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let opts = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(|source| EngineError::ListVolumes { source })?;
        let sizes = self.volume_sizes().await?;
        let mut volumes: Vec<CacheVolume> = list
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| CacheVolume {
                size: sizes.get(&v.name).copied(),
                labels: v.labels.into_iter().collect(),
                created: v.created_at.as_deref().and_then(parse_rfc3339),
                name: v.name,
            })
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(volumes)
    }

    /// Volume sizes from `system df`. Engines speaking API 1.52+ report them under
    /// `VolumeUsage.Items`, which bollard 0.21 parses; older engines put them in a
    /// top-level `Volumes` list that bollard's 1.53 model drops, read by `df.rs`.
    async fn volume_sizes(&self) -> Result<BTreeMap<String, i64>> {
        let df = self
            .docker
            .df(None)
            .await
            .map_err(|source| EngineError::ListVolumes { source })?;
        let items = df.volume_usage.and_then(|u| u.items).unwrap_or_default();
        if items.is_empty() {
            return Ok(legacy_volume_sizes(&self.target, self.api_version()).await);
        }
        Ok(items
            .iter()
            .filter_map(|v| {
                let name = v.get("Name")?.as_str()?.to_string();
                let size = v.get("UsageData")?.get("Size")?.as_i64()?;
                (size >= 0).then_some((name, size))
            })
            .collect())
    }

    /// Sums what [`DockerEngine::list_cache_volumes`] reports.
    pub fn disk_usage(volumes: &[CacheVolume]) -> DiskUsage {
        volumes.iter().fold(DiskUsage::default(), |mut d, v| {
            match v.size {
                Some(s) => d.total += s,
                None => d.unknown += 1,
            }
            d
        })
    }

    /// Removes a named volume; a missing one is not an error.
    pub(super) async fn delete_volume(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_volume(name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(())
            | Err(Bollard::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(source) => Err(EngineError::RemoveVolume {
                name: name.into(),
                source,
            }),
        }
    }

    /// `docker save` of one image, as a tar stream.
    pub fn export_image<'a>(&'a self, reference: &'a str) -> BoxStream<'a, Result<Bytes>> {
        self.docker
            .export_image(reference)
            .map_err(move |source| EngineError::ExportImage {
                reference: reference.into(),
                source,
            })
            .boxed()
    }

    /// `docker load` of a docker-archive (or, with the containerd store, OCI layout) tar
    /// stream; returns the engine's `Loaded image…` lines.
    pub async fn load_image(&self, tar: TarBody) -> Result<Vec<String>> {
        let opts = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream = self.docker.import_image_stream(opts, tar, None);
        let mut loaded = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::LoadImage {
                message: e.to_string(),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(EngineError::LoadImage {
                    message: detail.message.unwrap_or_default(),
                });
            }
            if let Some(line) = info
                .stream
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                loaded.push(line.to_string());
            }
        }
        Ok(loaded)
    }

    /// `docker import`: a rootfs tar becomes image `reference` (`repo:tag`), labelled
    /// for `platform` (engines before 23 ignore the platform and say amd64). Returns
    /// the new image's id.
    pub async fn import_rootfs(
        &self,
        tar: TarBody,
        reference: &str,
        platform: &Platform,
    ) -> Result<String> {
        let import_err = |message: String| EngineError::ImportRootfs {
            reference: reference.into(),
            message,
        };
        let (repo, tag) = split_tag(reference).ok_or_else(|| EngineError::InvalidTag {
            reference: reference.into(),
        })?;
        let opts = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .platform(&platform.format())
            .build();
        let mut stream =
            self.docker
                .create_image(Some(opts), Some(bollard::body_try_stream(tar)), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| import_err(e.to_string()))?;
            if let Some(detail) = info.error_detail {
                return Err(import_err(detail.message.unwrap_or_default()));
            }
        }
        match self.docker.inspect_image(reference).await {
            Ok(img) => Ok(img.id.unwrap_or_default()),
            Err(e) => Err(import_err(e.to_string())),
        }
    }
}

/// `2026-11-27T07:41:12.123456789Z` or `…+01:00` → Unix seconds (the engine's
/// `CreatedAt`); `None` when it is not RFC 3339.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (time, offset) = match rest.find(['Z', 'z', '+', '-']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => return None,
    };
    let mut t = time.splitn(3, ':');
    let (h, mi): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec: i64 = t.next()?.split('.').next()?.parse().ok()?;
    let offset_secs = match offset {
        "Z" | "z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_dates_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.987654321Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-13-01T00:00:00Z"), None);
    }

    #[test]
    fn disk_usage_sums_known_and_counts_unknown() {
        let v = |name: &str, size| CacheVolume {
            name: name.into(),
            labels: BTreeMap::new(),
            size,
            created: None,
        };
        let d = DockerEngine::disk_usage(&[v("a", Some(10)), v("b", None), v("c", Some(5))]);
        assert_eq!(
            d,
            DiskUsage {
                total: 15,
                unknown: 1
            }
        );
    }
}
