//! From a plan to one `OciImage` per target, in `--platform` order, and the index over them.
//! Assembled jobs are composed here (their stage bases first, memoized by job); jobs the
//! executor ran must be handed in already exported (see [`super::export`]).

use std::collections::BTreeMap;

use super::error::{AssembleError, Result};
use super::job::assemble;
use super::{show, AssembleEnv};
use crate::oci::{ImageIndex, OciImage};
use crate::plan::{Base, BuildPlan, JobId, Mode, Source};

/// Builds every target's image and the index. `ready` holds the images of jobs already
/// built elsewhere (native or emulated finals exported from the engine, by job id).
pub async fn images_for_targets(
    plan: &BuildPlan,
    env: &AssembleEnv<'_>,
    ready: &BTreeMap<JobId, OciImage>,
) -> Result<ImageIndex> {
    let finals: Vec<JobId> = plan.targets.iter().map(|t| t.final_job).collect();
    let done = assemble_jobs(plan, &finals, env, ready.clone()).await?;
    let mut images = Vec::with_capacity(plan.targets.len());
    for t in &plan.targets {
        let image = done[&t.final_job].clone();
        images.push((t.platform.clone(), for_target(image, &t.platform)?));
    }
    ImageIndex::new(images, env.format).map_err(AssembleError::oci("making the image index"))
}

/// The image labelled with the target's platform. A final stage that runs on another
/// platform (`FROM --platform=$BUILDPLATFORM ...`) is the target's image all the same:
/// BuildKit writes the target platform into its config, whatever the content is.
pub fn for_target(image: OciImage, target: &crate::platform::Platform) -> Result<OciImage> {
    if target.matches(&image.platform()) {
        return Ok(image);
    }
    let mut config = image.config().clone();
    config.os = target.os.clone();
    config.architecture = target.architecture.clone();
    config.variant = (!target.variant.is_empty()).then(|| target.variant.clone());
    image.with_config(config).map_err(AssembleError::oci(
        "labelling the image with its target platform",
    ))
}

/// The images of `wanted` and of the assembled jobs they need, with `done` (the images
/// already made). Jobs whose inputs are all made are assembled at the same time (the
/// finals of several platforms, typically), each layer compressed on its own thread.
pub async fn assemble_jobs(
    plan: &BuildPlan,
    wanted: &[JobId],
    env: &AssembleEnv<'_>,
    mut done: BTreeMap<JobId, OciImage>,
) -> Result<BTreeMap<JobId, OciImage>> {
    let mut pending = needed(plan, wanted, &done)?;
    while !pending.is_empty() {
        let now: Vec<JobId> = pending
            .iter()
            .copied()
            .filter(|j| inputs(plan, *j).iter().all(|i| done.contains_key(i)))
            .collect();
        // Jobs are topologically ordered: the first pending one has its inputs made.
        let now = if now.is_empty() {
            vec![pending[0]]
        } else {
            now
        };
        let later: Vec<JobId> = pending
            .iter()
            .copied()
            .filter(|j| !now.contains(j))
            .collect();
        let made = futures::future::try_join_all(
            now.iter().map(|j| assemble_one(plan.job(*j), env, &done)),
        )
        .await?;
        done.extend(now.into_iter().zip(made));
        pending = later;
    }
    Ok(done)
}

/// Every assembled job `wanted` needs (base chain and `COPY --from` stages the assembler
/// makes) that is not in `done`, in id order; an engine job's image must be in `done`.
fn needed(
    plan: &BuildPlan,
    wanted: &[JobId],
    done: &BTreeMap<JobId, OciImage>,
) -> Result<Vec<JobId>> {
    let mut needed = wanted.to_vec();
    let mut i = 0;
    while i < needed.len() {
        let job = plan.job(needed[i]);
        i += 1;
        if done.contains_key(&job.id) {
            continue;
        }
        // The plan decided which jobs are assembled; an engine job's image must be ready.
        if job.mode != Mode::Assembled {
            return Err(AssembleError::MissingInput {
                what: format!(
                    "the {} image of {} ({:?})",
                    show(&job.run_platform),
                    job.stage,
                    job.mode
                ),
                needed_by: "the final image".into(),
            });
        }
        needed.extend(inputs(plan, job.id));
    }
    needed.retain(|j| !done.contains_key(j));
    needed.sort();
    needed.dedup();
    Ok(needed)
}

/// The jobs whose images assembling job `id` reads: its stage base, and the stages it
/// copies from that the assembler makes (an engine-built stage is read through
/// [`super::StageFiles`], not as an image).
fn inputs(plan: &BuildPlan, id: JobId) -> Vec<JobId> {
    let job = plan.job(id);
    let mut out = Vec::new();
    if let Base::Stage { job: b } = &job.base {
        out.push(*b);
    }
    for s in job.steps.iter().filter_map(|s| s.from.as_ref()) {
        if let Source::Stage { job: j } = s {
            if plan.job(*j).mode == Mode::Assembled {
                out.push(*j);
            }
        }
    }
    out
}

/// Assembles one job whose inputs are in `done`, and says so.
async fn assemble_one(
    job: &crate::plan::Job,
    env: &AssembleEnv<'_>,
    done: &BTreeMap<JobId, OciImage>,
) -> Result<OciImage> {
    let base = match &job.base {
        Base::Scratch => None,
        Base::Image { reference, .. } => Some(env.base_image(reference, &job.run_platform).await?),
        Base::Stage { job: b } => Some(done[b].clone()),
    };
    let started = std::time::Instant::now();
    let base_layers = base.as_ref().map_or(0, |b| b.layers().len());
    let image = assemble(job, base.as_ref(), env, done).await?;
    env.reporter.report(&crate::progress::Event::JobAssembled {
        job: job.id.to_string(),
        stage: job.stage.to_string(),
        platforms: job.platforms.iter().map(|p| p.to_string()).collect(),
        layers: image.layers().len().saturating_sub(base_layers),
        millis: started.elapsed().as_millis() as u64,
    });
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ImageConfig, IndexFormat};
    use crate::platform::Platform;

    #[test]
    fn a_final_built_on_another_platform_is_labelled_with_the_target() {
        let amd64 = Platform::parse("linux/amd64").unwrap().normalized();
        let armv7 = Platform::parse("linux/arm/v7").unwrap().normalized();
        let image = OciImage::new(
            ImageConfig::for_platform(&amd64, None),
            Vec::new(),
            IndexFormat::Oci,
        )
        .unwrap();
        let same = for_target(image.clone(), &amd64).unwrap();
        assert_eq!(same, image);
        let relabelled = for_target(image, &armv7).unwrap();
        let c = relabelled.config();
        assert_eq!(
            (c.os.as_str(), c.architecture.as_str(), c.variant.as_deref()),
            ("linux", "arm", Some("v7"))
        );
    }
}
