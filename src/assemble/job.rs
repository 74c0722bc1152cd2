//! One assembled job: its base image, then every step through `stage` (metadata edits the
//! config; WORKDIR, COPY and ADD become layers), without running anything.
//!
//! A layer lists what the step wrote plus, for each parent directory that already exists in
//! the image, that directory with the image's own mode and owner (BuildKit's diff has them
//! too): without it an unpacker makes missing parents 0755, which is how `/tmp` lost 1777.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{AssembleError, Refusal, Result};
use super::fsindex::FsView;
use super::{fetch, show, AssembleEnv};
use crate::dockerfile::Instruction;
use crate::oci::{ImageConfig, LayerEntry, OciImage};
use crate::plan::{Job, JobId, Source, Step};
use crate::stage::{self, copy::SourceKind, CopyInputs, Effect, SourceFs, State};

/// Whether the assembler can do every step: exactly when nothing would be refused. The
/// planner calls it to decide the `Assembled` mode.
pub fn can_assemble(steps: &[Step]) -> bool {
    steps.iter().all(|s| refusal(&s.instruction).is_none())
}

/// Why the assembler would refuse this instruction, if it would.
pub fn refusal(instr: &Instruction) -> Option<Refusal> {
    let sources = match instr {
        Instruction::Run(_) => return Some(Refusal::Run),
        Instruction::Copy(c) => &c.sources,
        Instruction::Add(a) => &a.sources,
        _ => return None,
    };
    let heredocs = sources
        .iter()
        .filter(|s| stage::copy::is_heredoc_source(s))
        .count();
    match stage::copy::source_kind(instr)? {
        SourceKind::Git => Some(Refusal::GitSource),
        SourceKind::Heredoc if heredocs != sources.len() => Some(Refusal::HeredocMix),
        SourceKind::Heredoc if matches!(instr, Instruction::Copy(c) if c.from.is_some()) => {
            Some(Refusal::HeredocMix)
        }
        SourceKind::Url if sources.iter().any(|s| !stage::url::is_url(s)) => Some(Refusal::UrlMix),
        SourceKind::Url if matches!(instr, Instruction::Add(a) if a.unpack == Some(true)) => {
            Some(Refusal::UrlUnpack)
        }
        SourceKind::From if matches!(instr, Instruction::Copy(c) if c.parents || !c.exclude.is_empty()) => {
            Some(Refusal::FromFlags)
        }
        _ => None,
    }
}

/// The base filesystem, read lazily (a job of metadata steps never reads its base's layers).
struct Dest<'e> {
    base: Option<OciImage>,
    view: Option<FsView>,
    env: &'e AssembleEnv<'e>,
}

impl Dest<'_> {
    async fn view(&mut self) -> Result<&mut FsView> {
        if self.view.is_none() {
            let view = match &self.base {
                None => FsView::default(),
                Some(image) => {
                    let root = self.env.layers.root();
                    let local = self.env.bases.local(image.layers(), &root).await?;
                    let cache = self.env.layers.dir().map(|d| d.to_path_buf());
                    FsView::from_layers(&local, cache.as_deref())
                        .map_err(AssembleError::fs("reading the base image's filesystem"))?
                }
            };
            self.view = Some(view);
        }
        Ok(self.view.as_mut().expect("set above"))
    }
}

/// Assembles `job` on top of `base` (`None` for scratch). `images` holds the images of jobs
/// done so far (for `COPY --from` a stage: read from its layers, never from an engine).
pub async fn assemble(
    job: &Job,
    base: Option<&OciImage>,
    env: &AssembleEnv<'_>,
    images: &BTreeMap<JobId, OciImage>,
) -> Result<OciImage> {
    let platform = &job.run_platform;
    let stage_name = job.stage.to_string();
    let action = format!("assembling {stage_name} for {}", show(platform));
    let (mut image, mut state) = match base {
        Some(b) => {
            let mut image = b
                .in_format(env.format)
                .map_err(AssembleError::oci(action.clone()))?;
            if image.config().non_empty_history() != image.layers().len() {
                // A base without a matching history (made by hand or by umoci): one entry
                // per layer, so ours can follow.
                let mut config = image.config().clone();
                config.history = image
                    .layers()
                    .iter()
                    .map(|_| crate::oci::History::instruction("base layer", None, false))
                    .collect();
                image = image
                    .with_config(config)
                    .map_err(AssembleError::oci(action.clone()))?;
            }
            let state = State::from_base(image.config());
            (image, state)
        }
        None => {
            let state = State::scratch(platform);
            let config = ImageConfig {
                created: env.created.map(crate::oci::time::rfc3339),
                ..state.config.clone()
            };
            let image = OciImage::new(config, vec![], env.format)
                .map_err(AssembleError::oci(action.clone()))?;
            (image, state)
        }
    };
    let mut dest = Dest {
        base: base.cloned(),
        view: None,
        env,
    };
    let mtime = env.created.unwrap_or(0);
    for step in &job.steps {
        let instr = &step.instruction;
        let at = |source| AssembleError::Stage {
            stage: stage_name.clone(),
            line: step.line,
            source,
        };
        if let Some(why) = refusal(instr) {
            return Err(AssembleError::NotAssemblable {
                stage: stage_name.clone(),
                line: step.line,
                why,
            });
        }
        let effect = state.apply(instr).map_err(at)?;
        let files = match effect {
            Effect::Config => None,
            Effect::Run => unreachable!("refused above"),
            Effect::MakeDir { path, user } => {
                let view = dest.view().await?;
                Some(
                    stage::workdir_files(&path, user.as_deref(), view, mtime)
                        .await
                        .map_err(at)?,
                )
            }
            Effect::Files => {
                let downloads = fetch::downloads(instr).await?;
                let source = match &step.from {
                    Some(s) => Some(source_fs(s, job, env, images).await?),
                    None => None,
                };
                let view = dest.view().await?;
                let inputs = CopyInputs {
                    context: env.context,
                    source: source.as_deref(),
                    dest: view,
                    downloads: &downloads,
                    created_mtime: mtime,
                };
                Some(stage::files(&state, instr, &inputs).await.map_err(at)?)
            }
        };
        let files = match files {
            Some(f) if !f.entries.is_empty() => f,
            _ => {
                let config = with_state(image.config(), &state);
                let mut config = config;
                config.history.push(state.history(instr, env.created, true));
                image = image
                    .with_config(config)
                    .map_err(AssembleError::oci(action.clone()))?;
                continue;
            }
        };
        let view = dest.view().await?;
        let entries = with_existing_parents(files.entries, view);
        let layer = env
            .layers
            .layer(&entries)
            .await
            .map_err(AssembleError::oci(format!("{action}: line {}", step.line)))?;
        view.apply_entries(&entries);
        image = image
            .with_config(with_state(image.config(), &state))
            .and_then(|i| i.with_layer(layer, state.history(instr, env.created, false)))
            .map_err(AssembleError::oci(action.clone()))?;
    }
    let mut config = with_state(image.config(), &state);
    config.created = env.created.map(crate::oci::time::rfc3339);
    image
        .with_config(config)
        .map_err(AssembleError::oci(action))
}

/// The image's config with the stage state's runtime config and author (history and rootfs
/// stay the image's).
fn with_state(current: &ImageConfig, state: &State) -> ImageConfig {
    ImageConfig {
        config: state.config.config.clone(),
        author: state.config.author.clone(),
        history: current.history.clone(),
        rootfs: current.rootfs.clone(),
        ..current.clone()
    }
}

/// Adds, for every parent of what is written that exists in the image, that directory with
/// the image's metadata.
fn with_existing_parents(mut entries: Vec<LayerEntry>, view: &FsView) -> Vec<LayerEntry> {
    let listed: BTreeSet<String> = entries
        .iter()
        .filter_map(|e| crate::oci::layer::normalize_path(&e.path).ok())
        .collect();
    let mut parents = BTreeSet::new();
    for p in &listed {
        let mut cur = p.as_str();
        while let Some((d, _)) = cur.rsplit_once('/') {
            if !listed.contains(d) {
                parents.insert(d.to_string());
            }
            cur = d;
        }
    }
    for p in parents {
        if let Some(s) = view.stat_path(&format!("/{p}")) {
            if s.kind == stage::FsKind::Dir {
                let (uid, gid) = s.owner.unwrap_or((0, 0));
                entries.push(
                    LayerEntry::dir(p, s.mode)
                        .owned_by(uid.into(), gid.into())
                        .modified_at(s.mtime),
                );
            }
        }
    }
    entries
}

/// The filesystem `COPY --from` reads: an image or an assembled stage from its layers, a
/// stage the engine built through the caller's [`super::StageFiles`].
async fn source_fs<'a>(
    source: &Source,
    job: &Job,
    env: &'a AssembleEnv<'a>,
    images: &BTreeMap<JobId, OciImage>,
) -> Result<Box<dyn SourceFs + 'a>> {
    let image = match source {
        Source::Stage { job: j } => match images.get(j) {
            Some(i) => i.clone(),
            None => return env.stage_files.open(*j).await,
        },
        Source::Image { reference } => env.base_image(reference, &job.run_platform).await?,
    };
    let root = env.layers.root();
    let local = env.bases.local(image.layers(), &root).await?;
    let cache = env.layers.dir().map(|d| d.to_path_buf());
    let view = FsView::from_layers(&local, cache.as_deref()).map_err(AssembleError::fs(
        format!("reading the filesystem of {source:?}"),
    ))?;
    Ok(Box::new(view))
}

#[cfg(test)]
#[path = "job_tests.rs"]
mod tests;
