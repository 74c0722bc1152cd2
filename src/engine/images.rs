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
        let mut ids: Vec<ContainerId> = list
            .into_iter()
            .filter_map(|c| c.id.map(ContainerId))
            .collect();
        ids.sort();
        Ok(ids)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_sums_known_and_counts_unknown() {
        let v = |name: &str, size| CacheVolume {
            name: name.into(),
            labels: BTreeMap::new(),
            size,
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
