//! Assembling a plan job whose mode is `Assembled` (no RUN) into an `OciImage`, without
//! running anything: the base image's layers and config (scratch, another stage's image,
//! or a registry image resolved for the target platform without downloading its layers),
//! one new layer per COPY/ADD, and the config edited by the metadata instructions.
//!
//! Where the bytes of a COPY come from:
//! - the build context: read directly from the host through `context` (no engine);
//! - `--from` another stage: a tar of just the listed paths, fetched through a
//!   [`StageFiles`] (the engine-backed one creates a container from the stage's image,
//!   never starts it, and reads the paths with `GET /archive`).

use std::io::Read;
use std::path::Path;

use futures::future::BoxFuture;

use super::error::{OutputError, Result};
use super::metadata::{self, Edit, StageState};
use crate::context::copy::UnknownImage;
use crate::context::{BuildContext, CopyEntry, CopySpec, EntryKind as CtxKind, Origin};
use crate::dockerfile::Instruction;
use crate::oci::config::History;
use crate::oci::{
    Descriptor, Digest, ImageConfig, IndexFormat, LayerBlob, LayerEntry, LayerOptions, OciImage,
};
use crate::plan::{Job, Source};
use crate::platform::Platform;
use crate::registry::{ImageRef, RegistryClient};

/// Layers whose files add up to more than this are written to a file instead of memory.
const IN_MEMORY_LAYER_MAX: u64 = 16 << 20;

/// A tar of one path of a stage's filesystem, as Docker's `GET /archive` gives it: a
/// directory's entries are rooted at its basename, a file is one entry named by its basename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceArchive {
    /// The path is a directory (its contents are copied, not the directory itself).
    pub is_dir: bool,
    /// The tar bytes.
    pub tar: Vec<u8>,
}

/// Reads paths out of the results of other jobs (or images) for `COPY --from`.
pub trait StageFiles: Send + Sync {
    /// The archive of `path` in `source`'s filesystem, with a symlink at `path` followed;
    /// `None` when the path does not exist.
    fn archive<'a>(
        &'a self,
        source: &'a Source,
        path: &'a str,
    ) -> BoxFuture<'a, Result<Option<SourceArchive>>>;
}

/// A [`StageFiles`] for jobs that copy from no other stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStages;

impl StageFiles for NoStages {
    fn archive<'a>(
        &'a self,
        source: &'a Source,
        _path: &'a str,
    ) -> BoxFuture<'a, Result<Option<SourceArchive>>> {
        Box::pin(async move {
            Err(OutputError::MissingInput {
                what: format!("{source:?}"),
                needed_by: "COPY --from".into(),
            })
        })
    }
}

/// What assembling needs besides the job and its base.
pub struct AssembleEnv<'a> {
    /// The build context (for COPY/ADD without `--from`).
    pub context: Option<&'a BuildContext>,
    /// Where `COPY --from` reads.
    pub stage_files: &'a dyn StageFiles,
    /// The image's `created` time and the history entries' (SOURCE_DATE_EPOCH when set,
    /// else the build's start), Unix seconds. Also the mtime of directories COPY creates.
    pub created: Option<i64>,
    /// Layer writing options (SOURCE_DATE_EPOCH clamps mtimes).
    pub layer_options: LayerOptions,
    /// A folder for large layer files; kept by the caller until every output is written.
    pub work_dir: &'a Path,
    /// OCI or Docker documents.
    pub format: IndexFormat,
}

/// Resolves a registry image for `platform` as an `OciImage` whose layers stay in the
/// registry (only the manifest and config are downloaded).
pub async fn resolve_base(
    client: &RegistryClient,
    reference: &str,
    platform: &Platform,
    format: IndexFormat,
) -> Result<OciImage> {
    let action = format!("resolving base image {reference} for {}", show(platform));
    let r = ImageRef::parse(reference).map_err(OutputError::registry(action.clone()))?;
    let resolved = client
        .resolve(&r, platform)
        .await
        .map_err(OutputError::registry(action.clone()))?;
    let mut config =
        ImageConfig::parse(&resolved.config_bytes).map_err(OutputError::oci(action.clone()))?;
    if config.rootfs.diff_ids.len() != resolved.layers.len() {
        return Err(OutputError::Oci {
            action,
            source: crate::oci::OciError::HistoryLayerCount {
                non_empty: config.rootfs.diff_ids.len(),
                layers: resolved.layers.len(),
            },
        });
    }
    let repository = format!("{}/{}", r.registry, r.repository);
    let mut layers = Vec::with_capacity(resolved.layers.len());
    for (d, diff_id) in resolved.layers.iter().zip(&config.rootfs.diff_ids) {
        let digest = Digest::parse(&d.digest).map_err(OutputError::oci(action.clone()))?;
        let desc = Descriptor::new(d.media_type.clone(), digest, d.size);
        layers.push(
            LayerBlob::from_registry(desc, *diff_id, repository.clone())
                .map_err(OutputError::oci(action.clone()))?,
        );
    }
    // Some images (made by umoci or by hand) carry no history, or a history that does not
    // match their layers; Docker refuses more non-empty entries than layers, and appending
    // ours would break the count, so give every base layer one entry.
    if config.non_empty_history() != layers.len() {
        config.history = (0..layers.len())
            .map(|_| History {
                created_by: Some(format!("layer of {reference}")),
                ..History::default()
            })
            .collect();
    }
    // The index entry is the platform the user asked for (arm64 "v8" and none are one).
    config.os = platform.os.clone();
    config.architecture = platform.architecture.clone();
    config.variant = (!platform.variant.is_empty()).then(|| platform.variant.clone());
    OciImage::new(config, layers, format).map_err(OutputError::oci(action))
}

/// Assembles `job` on top of `base` (`None` for scratch). The job must have no RUN.
pub async fn assemble(
    job: &Job,
    base: Option<&OciImage>,
    env: &AssembleEnv<'_>,
) -> Result<OciImage> {
    let platform = &job.run_platform;
    let action = format!("assembling {} for {}", job.stage, show(platform));
    let mut image = match base {
        Some(b) => b
            .in_format(env.format)
            .map_err(OutputError::oci(action.clone()))?,
        None => OciImage::new(
            ImageConfig::for_platform(platform, env.created),
            vec![],
            env.format,
        )
        .map_err(OutputError::oci(action.clone()))?,
    };
    let mut config = image.config().clone();
    let mut state = StageState::default();
    for (n, step) in job.steps.iter().enumerate() {
        let instr = &step.instruction;
        match metadata::apply(&mut config, &mut state, instr) {
            Edit::ConfigOnly => {
                if !matches!(instr, Instruction::Arg(_)) {
                    config.history.push(History::instruction(
                        metadata::created_by(instr),
                        env.created,
                        true,
                    ));
                }
                continue;
            }
            Edit::NotMetadata => {}
        }
        let entries = match instr {
            Instruction::Run(_) => {
                return Err(OutputError::NotAssemblable {
                    line: step.line,
                    keyword: "RUN",
                    why: "the planner should have made this job native or emulated",
                })
            }
            Instruction::Copy(c) if !c.heredocs.is_empty() => {
                return Err(not_yet(
                    step.line,
                    "COPY",
                    "heredoc sources are not assembled yet",
                ))
            }
            Instruction::Copy(c) => match &step.from {
                Some(source) => {
                    let chown = c
                        .chown
                        .as_deref()
                        .map(|v| numeric_chown(v, step.line))
                        .transpose()?;
                    let chmod = c
                        .chmod
                        .as_deref()
                        .map(|v| parse_chmod(v, step.line))
                        .transpose()?;
                    copy_from(
                        source,
                        &c.sources,
                        &resolve_dest(&config, &c.dest),
                        chown,
                        chmod,
                        step.line,
                        env,
                    )
                    .await?
                }
                None => {
                    let spec = copy_spec(
                        &config, &c.sources, &c.dest, &c.chown, &c.chmod, &c.exclude, c.parents,
                        false, env,
                    );
                    context_entries(&spec, step.line, env)?
                }
            },
            Instruction::Add(a) => {
                if !a.heredocs.is_empty()
                    || a.sources.iter().any(|s| is_remote(s))
                    || a.checksum.is_some()
                {
                    return Err(not_yet(
                        step.line,
                        "ADD",
                        "URL, git and heredoc sources are not assembled yet",
                    ));
                }
                let spec = copy_spec(
                    &config,
                    &a.sources,
                    &a.dest,
                    &a.chown,
                    &a.chmod,
                    &a.exclude,
                    false,
                    a.unpack.unwrap_or(true),
                    env,
                );
                context_entries(&spec, step.line, env)?
            }
            _ => unreachable!("metadata instructions are handled above"),
        };
        let layer = write_layer(
            &entries,
            env,
            &format!("{}-{}-{n}", job.id.0, platform_slug(platform)),
        )
        .map_err(OutputError::oci(format!("{action}: line {}", step.line)))?;
        image = image
            .with_config(config.clone())
            .and_then(|i| {
                i.with_layer(
                    layer,
                    History::instruction(metadata::created_by(instr), env.created, false),
                )
            })
            .map_err(OutputError::oci(action.clone()))?;
        config = image.config().clone();
    }
    config.created = env.created.map(crate::oci::time::rfc3339);
    image.with_config(config).map_err(OutputError::oci(action))
}

fn not_yet(line: usize, keyword: &'static str, why: &'static str) -> OutputError {
    OutputError::NotAssemblable { line, keyword, why }
}

fn is_remote(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

#[allow(clippy::too_many_arguments)]
fn copy_spec(
    config: &ImageConfig,
    sources: &[String],
    dest: &str,
    chown: &Option<String>,
    chmod: &Option<String>,
    excludes: &[String],
    parents: bool,
    unpack: bool,
    env: &AssembleEnv<'_>,
) -> CopySpec {
    CopySpec {
        sources: sources.to_vec(),
        dest: dest.to_string(),
        workdir: workdir(config),
        chown: chown.clone(),
        chmod: chmod.clone(),
        excludes: excludes.to_vec(),
        parents,
        unpack,
        created_mtime: env.created.unwrap_or(0),
    }
}

fn workdir(config: &ImageConfig) -> String {
    config
        .config
        .as_ref()
        .and_then(|c| c.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// A COPY destination made absolute against WORKDIR, keeping a trailing `/`.
fn resolve_dest(config: &ImageConfig, dest: &str) -> String {
    let abs = metadata::join_workdir(&workdir(config), dest);
    if dest.ends_with('/') && abs != "/" {
        format!("{abs}/")
    } else {
        abs
    }
}

fn context_entries(spec: &CopySpec, line: usize, env: &AssembleEnv<'_>) -> Result<Vec<LayerEntry>> {
    let ctx = env.context.ok_or_else(|| OutputError::MissingInput {
        what: "the build context".into(),
        needed_by: format!("line {line}"),
    })?;
    let entries = ctx
        .resolve_copy(spec, &UnknownImage)
        .map_err(|source| OutputError::Context {
            action: format!("line {line}: resolving COPY sources"),
            source,
        })?;
    Ok(entries.iter().map(|e| layer_entry(ctx.root(), e)).collect())
}

/// A context copy entry as a layer entry (file bytes are read from the host when the layer
/// is written; the context already refused symlinks out of it).
pub fn layer_entry(root: &Path, e: &CopyEntry) -> LayerEntry {
    let entry = match (&e.kind, &e.origin) {
        (CtxKind::Dir, _) => LayerEntry::dir(e.path.clone(), e.mode),
        (CtxKind::Symlink { target }, _) => {
            let mut l = LayerEntry::symlink(e.path.clone(), target.clone());
            l.mode = e.mode;
            l
        }
        (CtxKind::File { .. }, Origin::Context(rel)) => {
            LayerEntry::host_file(e.path.clone(), root.join(rel), e.mode)
        }
        (CtxKind::File { .. }, Origin::Archive { data, .. }) => {
            LayerEntry::file(e.path.clone(), data.clone(), e.mode)
        }
        (CtxKind::File { .. }, Origin::Created) => {
            LayerEntry::file(e.path.clone(), Vec::new(), e.mode)
        }
    };
    entry
        .owned_by(u64::from(e.uid), u64::from(e.gid))
        .modified_at(e.mtime)
}

async fn copy_from(
    source: &Source,
    sources: &[String],
    dest: &str,
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
    line: usize,
    env: &AssembleEnv<'_>,
) -> Result<Vec<LayerEntry>> {
    if sources.len() > 1 && !dest.ends_with('/') {
        return Err(OutputError::NotAssemblable {
            line,
            keyword: "COPY",
            why: "with several sources the destination must end with /",
        });
    }
    let mut out = Vec::new();
    for src in sources {
        if src.contains(['*', '?', '[']) {
            return Err(not_yet(
                line,
                "COPY",
                "wildcards in COPY --from are not assembled yet",
            ));
        }
        let path = metadata::join_workdir("/", src);
        let archive = env
            .stage_files
            .archive(source, &path)
            .await?
            .ok_or_else(|| OutputError::SourceNotFound {
                line,
                path: path.clone(),
                stage: source_name(source),
            })?;
        out.extend(
            archive_entries(&archive, &path, dest, chown, chmod).map_err(|reason| {
                OutputError::BadArchive {
                    path: path.clone(),
                    stage: source_name(source),
                    reason,
                }
            })?,
        );
    }
    Ok(out)
}

fn source_name(s: &Source) -> String {
    match s {
        Source::Stage { job } => format!("job {job}"),
        Source::Image { reference } => reference.clone(),
    }
}

/// Maps the archive of `src` to layer entries under `dest` with COPY's rules: a directory's
/// contents merge into `dest`; a file becomes `dest`, or `dest/<name>` when `dest` ends in `/`.
/// Ownership is kept unless `chown` is given (`COPY --from` preserves it).
pub fn archive_entries(
    archive: &SourceArchive,
    src: &str,
    dest: &str,
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> std::result::Result<Vec<LayerEntry>, String> {
    let mut reader = tar::Archive::new(&archive.tar[..]);
    let dest_dir = dest.trim_end_matches('/');
    let mut out = Vec::new();
    for entry in reader.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        let rest = match name.split_once('/') {
            Some((_, rest)) => rest.to_string(),
            None => String::new(),
        };
        if rest.split('/').any(|c| c == "..") {
            return Err(format!("entry {name:?} escapes the copied path"));
        }
        let path = if archive.is_dir {
            if rest.is_empty() {
                dest_dir.to_string()
            } else {
                format!("{dest_dir}/{rest}")
            }
        } else if !rest.is_empty() {
            return Err(format!("a file archive has a nested entry {name:?}"));
        } else if dest.ends_with('/') {
            let base = src.rsplit('/').next().unwrap_or(&name);
            format!("{dest_dir}/{base}")
        } else {
            dest_dir.to_string()
        };
        if path.is_empty() {
            // COPY of a directory to `/`: the root itself is not an entry.
            continue;
        }
        let h = entry.header();
        let mode = h.mode().map_err(|e| e.to_string())? & 0o7777;
        let (uid, gid) = match chown {
            Some((u, g)) => (u64::from(u), u64::from(g)),
            None => (h.uid().unwrap_or(0), h.gid().unwrap_or(0)),
        };
        let mtime = h.mtime().unwrap_or(0) as i64;
        let kind = h.entry_type();
        let e = if kind.is_dir() {
            LayerEntry::dir(path, chmod.unwrap_or(mode))
        } else if kind.is_symlink() {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            LayerEntry::symlink(path, target)
        } else if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = target.trim_start_matches("./");
            let rest = target.split_once('/').map_or("", |(_, r)| r);
            LayerEntry::hardlink(path, format!("{dest_dir}/{rest}"))
        } else if kind.is_file() {
            let mut data = Vec::with_capacity(h.size().unwrap_or(0) as usize);
            entry.read_to_end(&mut data).map_err(|e| e.to_string())?;
            LayerEntry::file(path, data, chmod.unwrap_or(mode))
        } else {
            // Devices and fifos are not copied by COPY either.
            continue;
        };
        out.push(e.owned_by(uid, gid).modified_at(mtime));
    }
    Ok(out)
}

fn numeric_chown(value: &str, line: usize) -> Result<(u32, u32)> {
    let (u, g) = value.split_once(':').unwrap_or((value, value));
    match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(not_yet(
            line,
            "COPY",
            "--chown with names needs the destination's /etc/passwd; use numeric ids",
        )),
    }
}

fn parse_chmod(value: &str, line: usize) -> Result<u32> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or(OutputError::NotAssemblable {
            line,
            keyword: "COPY",
            why: "--chmod must be octal",
        })
}

fn write_layer(
    entries: &[LayerEntry],
    env: &AssembleEnv<'_>,
    name: &str,
) -> crate::oci::Result<LayerBlob> {
    let host_bytes: u64 = entries
        .iter()
        .map(|e| match &e.kind {
            crate::oci::EntryKind::File {
                source: crate::oci::FileSource::Host(p),
            } => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            crate::oci::EntryKind::File {
                source: crate::oci::FileSource::Bytes(b),
            } => b.len() as u64,
            _ => 0,
        })
        .sum();
    if host_bytes > IN_MEMORY_LAYER_MAX {
        LayerBlob::build_to_file(
            entries,
            &env.layer_options,
            &env.work_dir.join(format!("{name}.tar.gz")),
        )
    } else {
        LayerBlob::build(entries, &env.layer_options)
    }
}

/// `os/arch[/variant]`.
pub fn show(p: &Platform) -> String {
    if p.variant.is_empty() {
        format!("{}/{}", p.os, p.architecture)
    } else {
        format!("{}/{}/{}", p.os, p.architecture, p.variant)
    }
}

fn platform_slug(p: &Platform) -> String {
    show(p).replace('/', "-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::EntryKind;

    /// A tar like Docker's GET /archive: entries named relative to the path's basename.
    fn tar_of(entries: &[(&str, Option<&[u8]>, u32, u64)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data, mode, uid) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(*mode);
            h.set_uid(*uid);
            h.set_gid(*uid);
            h.set_mtime(5);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    b.append_data(&mut h, name, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, name, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn paths(v: &[LayerEntry]) -> Vec<(String, u32, u64)> {
        v.iter().map(|e| (e.path.clone(), e.mode, e.uid)).collect()
    }

    #[test]
    fn a_file_becomes_dest_or_dest_slash_basename() {
        let a = SourceArchive {
            is_dir: false,
            tar: tar_of(&[("goping", Some(b"bin"), 0o755, 1000)]),
        };
        let e = archive_entries(&a, "/out/goping", "/goping", None, None).unwrap();
        assert_eq!(
            paths(&e),
            [("/goping".into(), 0o755, 1000)],
            "ownership kept"
        );
        let e = archive_entries(&a, "/out/goping", "/usr/bin/", Some((0, 0)), Some(0o700)).unwrap();
        assert_eq!(paths(&e), [("/usr/bin/goping".into(), 0o700, 0)]);
        assert!(matches!(&e[0].kind, EntryKind::File { .. }));
    }

    #[test]
    fn a_directory_merges_its_contents_into_dest() {
        let a = SourceArchive {
            is_dir: true,
            tar: tar_of(&[
                ("out/", None, 0o750, 0),
                ("out/a", Some(b"1"), 0o644, 0),
                ("out/sub/", None, 0o755, 0),
                ("out/sub/b", Some(b"2"), 0o600, 0),
            ]),
        };
        let e = archive_entries(&a, "/out", "/app", None, None).unwrap();
        let got: Vec<String> = e.iter().map(|e| e.path.clone()).collect();
        assert_eq!(got, ["/app", "/app/a", "/app/sub", "/app/sub/b"]);
        let to_root = archive_entries(&a, "/out", "/", None, None).unwrap();
        assert_eq!(to_root[0].path, "/a", "the root itself is not an entry");
    }

    #[test]
    fn entries_escaping_the_copied_path_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(1);
        h.set_mode(0o644);
        // `append_data` refuses `..`; write the name into the header directly.
        h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"out/../../etc");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let a = SourceArchive {
            is_dir: true,
            tar: b.into_inner().unwrap(),
        };
        let err = archive_entries(&a, "/out", "/app", None, None).unwrap_err();
        assert!(err.contains("escapes"), "{err}");
    }

    #[test]
    fn chmod_and_chown_values() {
        assert_eq!(parse_chmod("755", 1).unwrap(), 0o755);
        assert!(parse_chmod("rwx", 1).is_err());
        assert!(parse_chmod("77777", 1).is_err());
        assert_eq!(numeric_chown("10:20", 1).unwrap(), (10, 20));
        assert_eq!(numeric_chown("10", 1).unwrap(), (10, 10));
        assert!(numeric_chown("app", 1).is_err());
    }
}
