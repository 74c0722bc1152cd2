//! COPY and ADD: from the build context (resolved and hashed by `crate::context`, sent
//! as one tar to `put_archive` at `/`) and `COPY --from` a stage or image (read with
//! `get_archive` from a container of that image, re-rooted at the destination with
//! path guards, then sent the same way).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use futures::TryStreamExt;

use super::config::{join_workdir, State};
use super::inline::{self, InlineCopy};
use super::step::{
    commit, create, image_for_platform, key, lookup, remove, At, JobEnv, StepOutcome,
};
use super::{fetch, ExecError, JobOutput, Result};
use crate::context::copy::{parse_chmod, parse_chown, without_existing, PasswdNames};
use crate::context::{
    clean_path, is_pattern, write_tar, BuildContext, ContextError, CopySpec, DestImage, Glob,
    Origin,
};
use crate::dockerfile::{Add, Copy, Instruction};
use crate::engine::{tar_body, ContainerId, PathKind, PathLookup, RunSpec};
use crate::plan::Source;

/// COPY from the context, or `--from` a stage or image.
pub async fn execute_copy(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    c: &Copy,
    source: Option<&Source>,
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<StepOutcome> {
    let instr = Instruction::Copy(c.clone());
    if let Some(files) = inline::heredoc_files(at, &c.sources, &c.heredocs)? {
        if c.from.is_some() {
            return Err(at.unsupported("COPY --from with a heredoc source"));
        }
        let what = InlineCopy {
            files,
            dest: &c.dest,
            chown: c.chown.as_deref(),
            chmod: c.chmod.as_deref(),
        };
        return inline::execute(env, at, state, parent, &instr, what).await;
    }
    match (&c.from, source) {
        (Some(_), Some(source)) => copy_from(env, at, state, parent, &instr, source, c, deps).await,
        (Some(from), None) => Err(ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: format!("the plan did not resolve COPY --from={from}"),
        }),
        (None, _) => {
            let spec = copy_spec(
                state, &c.sources, &c.dest, &c.chown, &c.chmod, &c.exclude, c.parents, false,
            )?;
            from_context(env, at, state, parent, &instr, spec).await
        }
    }
}

/// ADD from the context (local archives are extracted), of heredocs, or of http(s)
/// URLs (downloaded; git repositories are not supported).
pub async fn execute_add(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    a: &Add,
) -> Result<StepOutcome> {
    let instr = Instruction::Add(a.clone());
    let inline_files = match inline::heredoc_files(at, &a.sources, &a.heredocs)? {
        Some(files) => Some(files),
        None if a.sources.iter().any(|s| fetch::is_remote(s)) => {
            Some(inline::url_files(at, a).await?)
        }
        None => None,
    };
    if let Some(files) = inline_files {
        let what = InlineCopy {
            files,
            dest: &a.dest,
            chown: a.chown.as_deref(),
            chmod: a.chmod.as_deref(),
        };
        return inline::execute(env, at, state, parent, &instr, what).await;
    }
    let unpack = a.unpack.unwrap_or(true);
    let spec = copy_spec(
        state, &a.sources, &a.dest, &a.chown, &a.chmod, &a.exclude, false, unpack,
    )?;
    from_context(env, at, state, parent, &instr, spec).await
}

#[allow(clippy::too_many_arguments)]
fn copy_spec(
    state: &State,
    sources: &[String],
    dest: &str,
    chown: &Option<String>,
    chmod: &Option<String>,
    exclude: &[String],
    parents: bool,
    unpack: bool,
) -> Result<CopySpec> {
    Ok(CopySpec {
        sources: sources.to_vec(),
        dest: dest.to_string(),
        workdir: state
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into()),
        chown: chown.clone(),
        chmod: chmod.clone(),
        excludes: exclude.to_vec(),
        parents,
        unpack,
        created_mtime: 0,
    })
}

fn ctx_err<'a>(at: &'a At<'_>) -> impl Fn(ContextError) -> ExecError + 'a {
    move |source| ExecError::Context {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    }
}

/// What the destination image knows, gathered from a container before resolving.
struct Dest {
    names: PasswdNames,
    dirs: BTreeSet<String>,
}

impl DestImage for Dest {
    fn uid(&self, name: &str) -> Option<u32> {
        self.names.uid(name)
    }
    fn gid(&self, name: &str) -> Option<u32> {
        self.names.gid(name)
    }
    fn is_dir(&self, path: &str) -> bool {
        self.dirs.contains(&clean_path(path))
    }
}

async fn from_context(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    instr: &Instruction,
    spec: CopySpec,
) -> Result<StepOutcome> {
    let ctx: &BuildContext = env
        .context
        .ok_or_else(|| at.unsupported("COPY from the context without a build context"))?;
    // The content hash ignores --chown (it is part of the instruction already) so the
    // key is computed without looking into the image.
    let probe = CopySpec {
        chown: None,
        ..spec.clone()
    };
    let probe_entries = ctx
        .resolve_copy(&probe, &crate::context::copy::UnknownImage)
        .map_err(ctx_err(at))?;
    let content = crate::context::hash_sources(&probe_entries, ctx).map_err(ctx_err(at))?;
    let key = key(at, state, parent, instr, &content);
    if let Some(id) = lookup(env, at, &key).await? {
        return Ok(StepOutcome::Cached(id));
    }
    let id = create(env, at, &copy_container(parent)).await?;
    let res = async {
        let dest_abs = join_workdir(Some(&spec.workdir), &spec.dest);
        let mut dirs = BTreeSet::new();
        if is_dir(env, at, &id, &dest_abs).await? {
            dirs.insert(dest_abs.clone());
        }
        let names = match &spec.chown {
            Some(c) if c.split(':').any(|p| p.parse::<u32>().is_err()) => {
                passwd_names(env, at, &id).await?
            }
            _ => PasswdNames::default(),
        };
        let entries = ctx
            .resolve_copy(&spec, &Dest { names, dirs })
            .map_err(ctx_err(at))?;
        let mut existing = BTreeSet::new();
        for e in entries.iter().filter(|e| e.origin == Origin::Created) {
            if !matches!(stat(env, at, &id, &e.path).await?, PathLookup::Missing) {
                existing.insert(e.path.clone());
            }
        }
        let entries = without_existing(entries, |p| existing.contains(p));
        let tar = write_tar(Vec::new(), &entries, ctx).map_err(ctx_err(at))?;
        env.engine
            .put_archive(&id, "/", tar_body(tar.into()))
            .await
            .map_err(at.engine("copying files into the container"))?;
        commit(env, at, &id, state, &key).await
    }
    .await;
    remove(env, &id).await;
    res.map(StepOutcome::Ran)
}

fn copy_container(image: &str) -> RunSpec {
    RunSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

pub(super) async fn stat(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    path: &str,
) -> Result<PathLookup> {
    env.engine
        .stat_path(id, path)
        .await
        .map_err(at.engine(format!("looking at {path}")))
}

pub(super) async fn is_dir(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    path: &str,
) -> Result<bool> {
    Ok(match stat(env, at, id, path).await? {
        PathLookup::Found(s) => match s.kind {
            PathKind::Dir => true,
            PathKind::Symlink { target } => matches!(
                stat(env, at, id, &target).await?,
                PathLookup::Found(crate::engine::PathStat {
                    kind: PathKind::Dir,
                    ..
                })
            ),
            PathKind::File => false,
        },
        PathLookup::Missing => false,
    })
}

pub(super) async fn read_archive(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    path: &str,
) -> Result<Vec<u8>> {
    let chunks: Vec<bytes::Bytes> = env
        .engine
        .get_archive(id, path)
        .try_collect()
        .await
        .map_err(at.engine(format!("reading {path}")))?;
    Ok(chunks.concat())
}

async fn read_text(env: &JobEnv<'_>, at: &At<'_>, id: &ContainerId, path: &str) -> Result<String> {
    if matches!(stat(env, at, id, path).await?, PathLookup::Missing) {
        return Ok(String::new());
    }
    let data = read_archive(env, at, id, path).await?;
    let mut ar = tar::Archive::new(&data[..]);
    let mut text = String::new();
    let io = |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: path.to_string(),
        source,
    };
    if let Some(entry) = ar.entries().map_err(io)?.next() {
        entry.map_err(io)?.read_to_string(&mut text).map_err(io)?;
    }
    Ok(text)
}

pub(super) async fn passwd_names(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
) -> Result<PasswdNames> {
    let passwd = read_text(env, at, id, "/etc/passwd").await?;
    let group = read_text(env, at, id, "/etc/group").await?;
    Ok(PasswdNames::parse(&passwd, &group))
}

#[allow(clippy::too_many_arguments)]
async fn copy_from(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    instr: &Instruction,
    source: &Source,
    c: &Copy,
    deps: &BTreeMap<usize, JobOutput>,
) -> Result<StepOutcome> {
    let dest = c.dest.as_str();
    let src_image = match source {
        Source::Stage { job } => deps
            .get(&job.0)
            .ok_or_else(|| ExecError::DependencyFailed {
                job: at.label.to_string(),
            })?
            .image
            .clone(),
        Source::Image { reference } => {
            image_for_platform(env, at, reference, &at.job.run_platform)
                .await?
                .id
        }
    };
    let key = key(at, state, parent, instr, &src_image);
    if let Some(id) = lookup(env, at, &key).await? {
        return Ok(StepOutcome::Cached(id));
    }
    let src = create(env, at, &copy_container(&src_image)).await?;
    let dst = match create(env, at, &copy_container(parent)).await {
        Ok(d) => d,
        Err(e) => {
            remove(env, &src).await;
            return Err(e);
        }
    };
    let res = async {
        let chmod = c
            .chmod
            .as_deref()
            .map(parse_chmod)
            .transpose()
            .map_err(ctx_err(at))?;
        let chown = match c.chown.clone() {
            Some(v) => {
                let names = if v.split(':').any(|p| p.parse::<u32>().is_err()) {
                    passwd_names(env, at, &dst).await?
                } else {
                    PasswdNames::default()
                };
                Some(parse_chown(&v, &names).map_err(ctx_err(at))?)
            }
            None => None,
        };
        let sources = &expand_wildcards(env, at, &src, &c.sources, c.from.as_deref().unwrap_or_default()).await?;
        let wd = state.config.working_dir.clone().unwrap_or_else(|| "/".into());
        let dest_abs = join_workdir(Some(&wd), dest);
        let dest_is_dir = dest.ends_with('/') || dest.ends_with("/.") || is_dir(env, at, &dst, &dest_abs).await?;
        if sources.len() > 1 && !dest_is_dir {
            return Err(ExecError::Invalid {
                stage: at.stage(),
                line: at.line,
                message: "when using COPY with more than one source file, the destination must be a directory and end with a /".into(),
            });
        }
        let mut out = tar::Builder::new(Vec::new());
        let mut created_dest = false;
        for s in sources {
            let path = clean_path(&format!("/{s}"));
            let (real, kind) = match stat(env, at, &src, &path).await? {
                PathLookup::Missing => {
                    return Err(ExecError::Invalid {
                        stage: at.stage(),
                        line: at.line,
                        message: format!("COPY --from={}: {path} not found", c.from.as_deref().unwrap_or_default()),
                    })
                }
                PathLookup::Found(st) => match st.kind {
                    PathKind::Symlink { target } => {
                        let k = match stat(env, at, &src, &target).await? {
                            PathLookup::Found(t) => t.kind,
                            PathLookup::Missing => PathKind::File,
                        };
                        (target, k)
                    }
                    k => (path.clone(), k),
                },
            };
            let (archive_path, root) = match kind {
                PathKind::Dir => (format!("{}/.", real.trim_end_matches('/')), dest_abs.clone()),
                _ => {
                    let base = path.rsplit('/').next().unwrap_or("").to_string();
                    let target = if dest_is_dir { format!("{}/{base}", dest_abs.trim_end_matches('/')) } else { dest_abs.clone() };
                    (real.clone(), target)
                }
            };
            let is_dir_src = matches!(kind, PathKind::Dir);
            if is_dir_src && !created_dest && !is_dir(env, at, &dst, &dest_abs).await? {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                let (u, g) = chown.unwrap_or((0, 0));
                h.set_uid(u.into());
                h.set_gid(g.into());
                h.set_size(0);
                let io = io_err(at, &path);
                out.append_data(&mut h, dest_abs.trim_start_matches('/'), std::io::empty()).map_err(io)?;
                created_dest = true;
            }
            let data = read_archive(env, at, &src, &archive_path).await?;
            rewrite(at, &path, &data, is_dir_src, &root, chown, chmod, &mut out)?;
        }
        let tar = out.into_inner().map_err(io_err(at, dest))?;
        env.engine
            .put_archive(&dst, "/", tar_body(tar.into()))
            .await
            .map_err(at.engine("copying files into the container"))?;
        commit(env, at, &dst, state, &key).await
    }
    .await;
    remove(env, &src).await;
    remove(env, &dst).await;
    res.map(StepOutcome::Ran)
}

/// Replaces each wildcard source by the paths it matches in the source container
/// (Go `filepath.Match`, so `*` never crosses `/`), sorted; a pattern matching
/// nothing is an error, as in BuildKit.
async fn expand_wildcards(
    env: &JobEnv<'_>,
    at: &At<'_>,
    src: &ContainerId,
    sources: &[String],
    from: &str,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for s in sources {
        if !is_pattern(s) {
            out.push(s.clone());
            continue;
        }
        let pattern = clean_path(&format!("/{s}"));
        let glob = Glob::go(&pattern).map_err(ctx_err(at))?;
        // The deepest folder without pattern characters holds every match.
        let parts: Vec<&str> = pattern.split('/').collect();
        let fixed = parts.iter().take_while(|p| !is_pattern(p)).count();
        let base = parts[..fixed].join("/");
        let base = if base.is_empty() {
            "/".to_string()
        } else {
            base
        };
        let mut matched = Vec::new();
        if let PathLookup::Found(_) = stat(env, at, src, &base).await? {
            let data =
                read_archive(env, at, src, &format!("{}/.", base.trim_end_matches('/'))).await?;
            let io = io_err(at, &base);
            let mut ar = tar::Archive::new(&data[..]);
            for entry in ar.entries().map_err(&io)? {
                let entry = entry.map_err(&io)?;
                let member = entry.path().map_err(&io)?.to_string_lossy().into_owned();
                let rel = member.trim_start_matches("./").trim_end_matches('/');
                if rel.is_empty() || rel == "." {
                    continue;
                }
                let full = clean_path(&format!("{base}/{rel}"));
                if glob.matches(&full) {
                    matched.push(full);
                }
            }
        }
        if matched.is_empty() {
            return Err(ExecError::Invalid {
                stage: at.stage(),
                line: at.line,
                message: format!("COPY --from={from}: no files match {pattern}"),
            });
        }
        matched.sort();
        matched.dedup();
        out.extend(matched);
    }
    Ok(out)
}

fn io_err<'a>(at: &'a At<'_>, path: &'a str) -> impl Fn(std::io::Error) -> ExecError + 'a {
    move |source| ExecError::Archive {
        stage: at.stage(),
        line: at.line,
        path: path.to_string(),
        source,
    }
}

/// Re-roots the entries of an engine archive under `root` (a directory source's
/// contents, or a single file named `root`), guarding member paths.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    at: &At<'_>,
    path: &str,
    data: &[u8],
    dir_source: bool,
    root: &str,
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
    out: &mut tar::Builder<Vec<u8>>,
) -> Result<()> {
    let io = io_err(at, path);
    let mut ar = tar::Archive::new(data);
    for entry in ar.entries().map_err(&io)? {
        let mut entry = entry.map_err(&io)?;
        let member = entry.path().map_err(&io)?.to_string_lossy().into_owned();
        let rel = member.trim_start_matches("./").trim_end_matches('/');
        if rel.split('/').any(|c| c == "..") {
            return Err(ExecError::UnsafeMember {
                stage: at.stage(),
                line: at.line,
                member,
            });
        }
        let target = if dir_source {
            if rel.is_empty() || rel == "." {
                continue;
            }
            format!("{}/{rel}", root.trim_end_matches('/'))
        } else {
            root.to_string()
        };
        let target = clean_path(&target);
        let mut h = entry.header().clone();
        if let Some((u, g)) = chown {
            h.set_uid(u.into());
            h.set_gid(g.into());
        }
        if let Some(m) = chmod {
            if !h.entry_type().is_symlink() {
                h.set_mode(m);
            }
        }
        let rel_target = target.trim_start_matches('/').to_string();
        match h.entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry
                    .link_name()
                    .map_err(&io)?
                    .map(|l| l.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if h.entry_type().is_hard_link() {
                    return Err(at.unsupported(format!("a hard link in COPY --from ({member})")));
                }
                out.append_link(&mut h, &rel_target, link).map_err(&io)?;
            }
            _ => {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).map_err(&io)?;
                out.append_data(&mut h, &rel_target, &buf[..])
                    .map_err(&io)?;
            }
        }
    }
    Ok(())
}
