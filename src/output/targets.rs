//! From a plan to one `OciImage` per target, in `--platform` order, and the index over them.
//! Assembled jobs are composed here (their stage bases first, memoized by job); jobs the
//! executor ran must be handed in already exported (see [`super::export`]).

use std::collections::BTreeMap;

use super::assemble::{assemble, resolve_base, show, AssembleEnv};
use super::error::{OutputError, Result};
use crate::oci::{ImageIndex, OciImage};
use crate::plan::{Base, BuildPlan, Job, JobId, Mode};
use crate::registry::RegistryClient;

/// Builds every target's image and the index. `ready` holds the images of jobs already
/// built elsewhere (native or emulated finals exported from the engine, by job id).
pub async fn images_for_targets(
    plan: &BuildPlan,
    client: &RegistryClient,
    env: &AssembleEnv<'_>,
    ready: &BTreeMap<JobId, OciImage>,
) -> Result<ImageIndex> {
    let mut done: BTreeMap<JobId, OciImage> = ready.clone();
    let mut images = Vec::with_capacity(plan.targets.len());
    for t in &plan.targets {
        let image = image_of(plan, t.final_job, client, env, &mut done).await?;
        images.push((t.platform.clone(), image));
    }
    ImageIndex::new(images, env.format).map_err(OutputError::oci("making the image index"))
}

async fn image_of(
    plan: &BuildPlan,
    id: JobId,
    client: &RegistryClient,
    env: &AssembleEnv<'_>,
    done: &mut BTreeMap<JobId, OciImage>,
) -> Result<OciImage> {
    // Jobs are topologically ordered: walk the base chain down, then assemble back up.
    let mut chain = vec![id];
    let mut cur = id;
    while !done.contains_key(&cur) {
        let job = plan.job(cur);
        if !can_assemble(job) {
            return Err(OutputError::MissingInput {
                what: format!(
                    "the {} image of {} ({:?})",
                    show(&job.run_platform),
                    job.stage,
                    job.mode
                ),
                needed_by: "the final image".into(),
            });
        }
        match &job.base {
            Base::Stage { job: b } => {
                chain.push(*b);
                cur = *b;
            }
            Base::Image { .. } | Base::Scratch => break,
        }
    }
    for &j in chain.iter().rev() {
        if done.contains_key(&j) {
            continue;
        }
        let job = plan.job(j);
        let base = match &job.base {
            Base::Scratch => None,
            Base::Image { reference, .. } => {
                Some(resolve_base(client, reference, &job.run_platform, env.format).await?)
            }
            Base::Stage { job: b } => Some(done[b].clone()),
        };
        let image = assemble(job, base.as_ref(), env).await?;
        done.insert(j, image);
    }
    Ok(done[&id].clone())
}

/// The planner decides once which jobs are assembled ([`crate::plan::mode::finalize`]).
pub fn can_assemble(job: &Job) -> bool {
    job.mode == Mode::Assembled
}
