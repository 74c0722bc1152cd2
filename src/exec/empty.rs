//! The empty image per platform (`xplat/scratch:<os>-<arch>`): what `FROM scratch` jobs
//! that run in an engine start from, and the image of the helper containers that fill
//! volumes or read an engine host's binfmt handlers.

use super::{ExecError, Result};
use crate::engine::{Engine, ImageLookup};
use crate::platform::Platform;

/// The empty image labelled for `platform` in `engine` (`xplat/scratch:<os>-<arch>`):
/// loaded as a docker-archive whose config says the platform, so creating a container
/// for that platform is accepted (an import would say amd64).
pub async fn empty_image(engine: &dyn Engine, platform: &Platform) -> Result<String> {
    let slug = platform.format().replace('/', "-");
    let tag = format!("{}:{slug}", crate::ops::SCRATCH_REPO);
    let op = |action: &str| {
        let action = action.to_string();
        move |source| ExecError::EngineOp {
            action,
            source: Box::new(source),
        }
    };
    if let ImageLookup::Found(info) = engine
        .inspect_image(&tag)
        .await
        .map_err(op("looking up the empty image"))?
    {
        if platform.matches(&info.platform) {
            return Ok(info.id);
        }
    }
    let tar = empty_image_archive(platform, &tag).map_err(|source| ExecError::Oci {
        action: "making the empty image".into(),
        source: Box::new(source),
    })?;
    engine
        .load(crate::engine::tar_body(tar.into()))
        .await
        .map_err(op("loading the empty image"))?;
    match engine
        .inspect_image(&tag)
        .await
        .map_err(op("looking up the empty image"))?
    {
        ImageLookup::Found(info) => Ok(info.id),
        ImageLookup::Missing => Err(ExecError::UnresolvedImage {
            stage: "the empty image".into(),
            reference: tag,
            platform: platform.format(),
        }),
    }
}

/// A `docker load` tar of an empty image (one empty layer) for `platform`, tagged `tag`.
fn empty_image_archive(platform: &Platform, tag: &str) -> crate::oci::Result<Vec<u8>> {
    use crate::oci::config::History;
    use crate::oci::{IndexFormat, LayerBlob, LayerOptions, OciImage};
    let layer = LayerBlob::build(&[], &LayerOptions::default())?;
    let config = crate::oci::ImageConfig::for_platform(platform, Some(0));
    let image = OciImage::new(config, vec![], IndexFormat::Docker)?.with_layer(
        layer,
        History::instruction("xplat: the empty filesystem", Some(0), false),
    )?;
    crate::oci::docker_archive::write_docker_archive(Vec::new(), &[(&image, vec![tag.to_string()])])
}
