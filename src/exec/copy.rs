//! COPY, ADD and WORKDIR into the job's container, through `put_archive` (no commit).
//! What they write is decided by `stage` (the one interpreter the assembler uses too):
//! this module hands it the container as the destination filesystem, the `--from`
//! source (another stage's recorded outputs, or an image's), the context and the ADD
//! downloads, and sends the entries it returns as one tar. `stage` leaves out parents
//! that exist, so `put_archive` never re-applies an existing folder's owner or mode.

use super::outputs::{read_root, ContainerFiles, RecordedFiles};
use super::program::Position;
use super::runner::{base_image, create};
use super::{At, ExecError, JobEnv, Result};
use crate::dockerfile::Instruction;
use crate::engine::{tar_body, ContainerId, RunSpec};
use crate::oci::{write_plain_tar, LayerEntry, LayerOptions};
use crate::plan::Source;
use crate::stage::{self, CopyInputs, State};

fn stage_err<'a>(at: &'a At<'_>) -> impl Fn(stage::StageError) -> ExecError + 'a {
    move |source| ExecError::Stage {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    }
}

/// COPY or ADD: the entries `stage` computes, written into the container.
pub async fn execute_files(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    id: &ContainerId,
    instr: &Instruction,
    p: &Position<'_>,
) -> Result<()> {
    let dest = ContainerFiles {
        engine: env.engine,
        id: id.clone(),
    };
    let source = match (instr, p.step.from.as_ref()) {
        (Instruction::Copy(c), Some(from)) => {
            let roots: Vec<String> = c.sources.iter().map(|s| read_root(s)).collect();
            Some(source_files(env, at, from, &roots).await?)
        }
        (Instruction::Copy(c), None) if c.from.is_some() => {
            return Err(ExecError::UnresolvedFrom {
                stage: at.stage(),
                line: at.line,
                from: c.from.clone().unwrap_or_default(),
            })
        }
        _ => None,
    };
    let downloads = match env.keys.downloads.get(&(p.job.id, p.index)) {
        Some(d) => d.clone(),
        None => crate::assemble::fetch::downloads(instr)
            .await
            .map_err(|source| ExecError::Fetch {
                stage: at.stage(),
                line: at.line,
                source: Box::new(source),
            })?,
    };
    let inputs = CopyInputs {
        context: env.context,
        source: source.as_ref().map(|s| s as &dyn stage::SourceFs),
        dest: &dest,
        downloads: &downloads,
        created_mtime: 0,
    };
    let files = stage::files(state, instr, &inputs)
        .await
        .map_err(stage_err(at))?;
    put(env, at, id, &files.entries).await
}

/// WORKDIR: the missing folders, 0755, owned by the USER in effect.
pub async fn make_workdir(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    path: &str,
    user: Option<&str>,
) -> Result<()> {
    let dest = ContainerFiles {
        engine: env.engine,
        id: id.clone(),
    };
    let files = stage::workdir_files(path, user, &dest, 0)
        .await
        .map_err(stage_err(at))?;
    put(env, at, id, &files.entries).await
}

async fn put(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    entries: &[LayerEntry],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let tar = write_plain_tar(entries, &LayerOptions::default(), Vec::new()).map_err(|source| {
        ExecError::Oci {
            action: format!("line {}: writing the files as a tar", at.line),
            source: Box::new(source),
        }
    })?;
    env.engine
        .put_archive(id, "/", tar_body(tar.into()))
        .await
        .map_err(at.engine("copying files into the container"))
}

/// What `--from` reads: the recorded outputs of a stage (the runner records every root its
/// consumers read before they run), or of an image (recorded on first use under the
/// image's id).
pub async fn source_files(
    env: &JobEnv<'_>,
    at: &At<'_>,
    source: &Source,
    roots: &[String],
) -> Result<RecordedFiles> {
    let key = match source {
        Source::Stage { job } => env.keys.job(*job).key_out.clone(),
        Source::Image { reference } => {
            let platform = &at.job.run_platform;
            let image = base_image(env, at, reference, platform).await?;
            let key = format!("image-{}", image.trim_start_matches("sha256:"));
            if env.outputs.files(&key, roots).is_none() {
                let tmp = create(
                    env,
                    at,
                    &RunSpec {
                        image,
                        platform: Some(platform.clone()),
                        ..RunSpec::default()
                    },
                )
                .await?;
                let files = ContainerFiles {
                    engine: env.engine,
                    id: tmp.clone(),
                };
                let mut res = Ok(());
                for r in roots {
                    if let Err(e) = env.outputs.record(&key, r, &files).await {
                        res = Err(ExecError::Record {
                            stage: at.stage(),
                            path: r.clone(),
                            source: Box::new(e),
                        });
                        break;
                    }
                }
                let _ = env.engine.remove_container(&tmp).await;
                res?;
            }
            key
        }
    };
    env.outputs
        .files(&key, roots)
        .ok_or_else(|| ExecError::NotRecorded {
            stage: at.stage(),
            line: at.line,
            roots: roots.join(", "),
        })
}
