//! COPY, ADD and WORKDIR into the job's container, through `put_archive` (no commit):
//! from the build context (resolved and hashed by `crate::context`), `--from` another
//! stage or an image (read through [`Files`]: the recorded outputs of that stage, or of
//! the image), heredocs and URL downloads (`super::inline`).
//!
//! Parent folders a copy would create that already exist are left out of the tar:
//! `put_archive` would re-apply an entry's owner and mode to an existing folder.

use std::collections::BTreeSet;
use std::io::Read;

use futures::TryStreamExt;

use super::inline::{self, InlineCopy};
use super::outputs::{read_root, ContainerFiles, Files, RecordedFiles};
use super::program::Position;
use super::runner::{base_image, create};
use super::state::State;
use super::{At, ExecError, JobEnv, Result};
use crate::context::copy::{parse_chmod, parse_chown, without_existing, PasswdNames};
use crate::context::{
    clean_path, is_pattern, write_tar, BuildContext, ContextError, CopySpec, DestImage, Glob,
    Origin,
};
use crate::dockerfile::{Add, Copy};
use crate::engine::{tar_body, ContainerId, PathKind, PathLookup, RunSpec};
use crate::plan::Source;

/// COPY from the context, heredocs, or `--from` a stage or image.
pub async fn execute_copy(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    id: &ContainerId,
    c: &Copy,
    p: &Position<'_>,
) -> Result<()> {
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
        return inline::execute(env, at, state, id, what).await;
    }
    match (&c.from, p.step.from.as_ref()) {
        (Some(_), Some(source)) => copy_from(env, at, state, id, source, c).await,
        (Some(from), None) => Err(ExecError::UnresolvedFrom {
            stage: at.stage(),
            line: at.line,
            from: from.clone(),
        }),
        (None, _) => {
            let spec = copy_spec(
                state, &c.sources, &c.dest, &c.chown, &c.chmod, &c.exclude, c.parents, false,
            );
            from_context(env, at, id, spec).await
        }
    }
}

/// ADD from the context (local archives are extracted), of heredocs, or of http(s)
/// URLs (downloaded when the keys were computed; git repositories are not supported).
pub async fn execute_add(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    id: &ContainerId,
    a: &Add,
    p: &Position<'_>,
) -> Result<()> {
    let inline_files = match inline::heredoc_files(at, &a.sources, &a.heredocs)? {
        Some(files) => Some(files),
        None if a.sources.iter().any(|s| super::fetch::is_remote(s)) => {
            match env.keys.downloads.get(&(p.job.id, p.index)) {
                Some(files) => Some(files.clone()),
                None => Some(inline::url_files(at, a).await?),
            }
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
        return inline::execute(env, at, state, id, what).await;
    }
    let unpack = a.unpack.unwrap_or(true);
    let spec = copy_spec(
        state, &a.sources, &a.dest, &a.chown, &a.chmod, &a.exclude, false, unpack,
    );
    from_context(env, at, id, spec).await
}

/// WORKDIR: makes the folder and its missing parents, 0755, owned by the current USER
/// (BuildKit's `Mkdir(…, WithParents, WithUser)`); existing ones are left alone.
pub async fn make_workdir(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    id: &ContainerId,
) -> Result<()> {
    let wd = state.workdir();
    let mut missing = Vec::new();
    let mut path = String::new();
    for part in wd.split('/').filter(|p| !p.is_empty()) {
        path = format!("{path}/{part}");
        if matches!(stat(env, at, id, &path).await?, PathLookup::Missing) {
            missing.push(path.clone());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let (uid, gid) = match state.user() {
        None => (0, 0),
        Some(u) => {
            let names = if u.split(':').any(|p| p.parse::<u32>().is_err()) {
                passwd_names(env, at, id).await?
            } else {
                PasswdNames::default()
            };
            parse_user(&u, &names)
        }
    };
    let io = io_err(at, &wd);
    let mut tar = tar::Builder::new(Vec::new());
    for dir in &missing {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_size(0);
        tar.append_data(
            &mut h,
            format!("{}/", dir.trim_start_matches('/')),
            std::io::empty(),
        )
        .map_err(&io)?;
    }
    let tar = tar.into_inner().map_err(&io)?;
    env.engine
        .put_archive(id, "/", tar_body(tar.into()))
        .await
        .map_err(at.engine(format!("making WORKDIR {wd}")))
}

/// `USER name[:group]` as numeric ids: names from the image's passwd and group files; a
/// user alone takes that user's primary group... which xplat reads as the same id when
/// the group file does not name it (as `--chown`).
fn parse_user(user: &str, names: &PasswdNames) -> (u32, u32) {
    parse_chown(user, names).unwrap_or_default()
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
) -> CopySpec {
    CopySpec {
        sources: sources.to_vec(),
        dest: dest.to_string(),
        workdir: state.workdir(),
        chown: chown.clone(),
        chmod: chmod.clone(),
        excludes: exclude.to_vec(),
        parents,
        unpack,
        created_mtime: 0,
    }
}

fn ctx_err<'a>(at: &'a At<'_>) -> impl Fn(ContextError) -> ExecError + 'a {
    move |source| ExecError::Context {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    }
}

/// What the destination container knows, gathered before resolving.
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
    id: &ContainerId,
    spec: CopySpec,
) -> Result<()> {
    let ctx: &BuildContext = env
        .context
        .ok_or_else(|| at.unsupported("COPY from the context without a build context"))?;
    let dest_abs = clean_path(&if spec.dest.starts_with('/') {
        spec.dest.clone()
    } else {
        format!("{}/{}", spec.workdir, spec.dest)
    });
    let mut dirs = BTreeSet::new();
    if is_dir(env, at, id, &dest_abs).await? {
        dirs.insert(dest_abs.clone());
    }
    let names = match &spec.chown {
        Some(c) if c.split(':').any(|p| p.parse::<u32>().is_err()) => {
            passwd_names(env, at, id).await?
        }
        _ => PasswdNames::default(),
    };
    let entries = ctx
        .resolve_copy(&spec, &Dest { names, dirs })
        .map_err(ctx_err(at))?;
    let mut existing = BTreeSet::new();
    for e in entries.iter().filter(|e| e.origin == Origin::Created) {
        if !matches!(stat(env, at, id, &e.path).await?, PathLookup::Missing) {
            existing.insert(e.path.clone());
        }
    }
    let entries = without_existing(entries, |p| existing.contains(p));
    let tar = write_tar(Vec::new(), &entries, ctx).map_err(ctx_err(at))?;
    env.engine
        .put_archive(id, "/", tar_body(tar.into()))
        .await
        .map_err(at.engine("copying files into the container"))
}

/// Stats a path in a container.
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

/// Whether a path in a container is a folder (following a final symlink).
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

async fn read_archive(
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
    let io = io_err(at, path);
    if let Some(entry) = ar.entries().map_err(&io)?.next() {
        let mut bytes = Vec::new();
        entry.map_err(&io)?.read_to_end(&mut bytes).map_err(&io)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    Ok(text)
}

/// User and group names of the container's `/etc/passwd` and `/etc/group`.
pub(super) async fn passwd_names(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
) -> Result<PasswdNames> {
    let passwd = read_text(env, at, id, "/etc/passwd").await?;
    let group = read_text(env, at, id, "/etc/group").await?;
    Ok(PasswdNames::parse(&passwd, &group))
}

/// `--chown` as numeric ids, names resolved in the destination container.
pub(super) async fn chown_of(
    env: &JobEnv<'_>,
    at: &At<'_>,
    id: &ContainerId,
    chown: Option<&str>,
) -> Result<Option<(u32, u32)>> {
    match chown {
        Some(v) => {
            let names = if v.split(':').any(|p| p.parse::<u32>().is_err()) {
                passwd_names(env, at, id).await?
            } else {
                PasswdNames::default()
            };
            Ok(Some(parse_chown(v, &names).map_err(ctx_err(at))?))
        }
        None => Ok(None),
    }
}

/// What `--from` reads: the recorded outputs of a stage (the runner records every root
/// its consumers read before they run), or of an image (recorded on first use under the
/// image's pinned id).
pub async fn source_files(
    env: &JobEnv<'_>,
    at: &At<'_>,
    source: &Source,
    roots: &[String],
) -> Result<Box<dyn Files>> {
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
    let files: RecordedFiles =
        env.outputs
            .files(&key, roots)
            .ok_or_else(|| ExecError::NotRecorded {
                stage: at.stage(),
                line: at.line,
                roots: roots.join(", "),
            })?;
    Ok(Box::new(files))
}

async fn copy_from(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    dst: &ContainerId,
    source: &Source,
    c: &Copy,
) -> Result<()> {
    let from = c.from.clone().unwrap_or_default();
    let roots: Vec<String> = c.sources.iter().map(|s| read_root(s)).collect();
    let files = source_files(env, at, source, &roots).await?;
    let files = files.as_ref();
    let chmod = c
        .chmod
        .as_deref()
        .map(parse_chmod)
        .transpose()
        .map_err(ctx_err(at))?;
    let chown = chown_of(env, at, dst, c.chown.as_deref()).await?;
    let sources = expand_wildcards(at, files, &c.sources, &from).await?;
    let dest_abs = clean_path(&if c.dest.starts_with('/') {
        c.dest.clone()
    } else {
        format!("{}/{}", state.workdir(), c.dest)
    });
    let dest_is_dir =
        c.dest.ends_with('/') || c.dest.ends_with("/.") || is_dir(env, at, dst, &dest_abs).await?;
    if sources.len() > 1 && !dest_is_dir {
        return Err(ExecError::DestNotDirectory {
            stage: at.stage(),
            line: at.line,
        });
    }
    let mut out = tar::Builder::new(Vec::new());
    let mut created_dest = false;
    for s in &sources {
        let path = clean_path(&format!("/{s}"));
        let (real, kind) = super::run::follow(at, files, &path, &from).await?;
        let is_dir_src = kind == PathKind::Dir;
        let root = if is_dir_src {
            dest_abs.clone()
        } else {
            let base = path.rsplit('/').next().unwrap_or("").to_string();
            if dest_is_dir {
                format!("{}/{base}", dest_abs.trim_end_matches('/'))
            } else {
                dest_abs.clone()
            }
        };
        // BuildKit makes a missing destination folder 0755, owned by --chown or root,
        // whatever the source folder's own mode and owner.
        if is_dir_src && !created_dest && !is_dir(env, at, dst, &dest_abs).await? {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            let (u, g) = chown.unwrap_or((0, 0));
            h.set_uid(u.into());
            h.set_gid(g.into());
            h.set_size(0);
            out.append_data(
                &mut h,
                format!("{}/", dest_abs.trim_start_matches('/')),
                std::io::empty(),
            )
            .map_err(io_err(at, &path))?;
            created_dest = true;
        }
        let data = files
            .archive(&real)
            .await
            .map_err(|e| ExecError::read_source(at, &real, e))?;
        rewrite(at, &path, &data, is_dir_src, &root, chown, chmod, &mut out)?;
    }
    let tar = out.into_inner().map_err(io_err(at, &c.dest))?;
    env.engine
        .put_archive(dst, "/", tar_body(tar.into()))
        .await
        .map_err(at.engine("copying files into the container"))
}

/// Replaces each wildcard source by the paths it matches in the source (Go
/// `filepath.Match`, so `*` never crosses `/`), sorted; a pattern matching nothing is
/// an error, as in BuildKit.
async fn expand_wildcards(
    at: &At<'_>,
    files: &dyn Files,
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
        let base = read_root(&pattern);
        let mut matched = Vec::new();
        if let PathLookup::Found(_) = files
            .stat(&base)
            .await
            .map_err(|e| ExecError::read_source(at, &base, e))?
        {
            let data = files
                .archive(&base)
                .await
                .map_err(|e| ExecError::read_source(at, &base, e))?;
            let io = io_err(at, &base);
            let mut ar = tar::Archive::new(&data[..]);
            for entry in ar.entries().map_err(&io)? {
                let entry = entry.map_err(&io)?;
                let member = entry.path().map_err(&io)?.to_string_lossy().into_owned();
                let member = member.trim_start_matches("./").trim_end_matches('/');
                // Members are `basename(base)/…`.
                let rel = match member.split_once('/') {
                    Some((_, r)) => r,
                    None => continue,
                };
                let full = clean_path(&format!("{base}/{rel}"));
                if glob.matches(&full) {
                    matched.push(full);
                }
            }
        }
        if matched.is_empty() {
            return Err(ExecError::NoMatch {
                stage: at.stage(),
                line: at.line,
                from: from.to_string(),
                pattern,
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

/// Re-roots the entries of an archive under `root` (a directory source's contents, or a
/// single file named `root`), guarding member paths.
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
        let member = member
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if member.split('/').any(|c| c == "..") {
            return Err(ExecError::UnsafeMember {
                stage: at.stage(),
                line: at.line,
                member,
            });
        }
        let target = if dir_source {
            // `basename/…`: the folder itself is the destination (made above).
            match member.split_once('/') {
                Some((_, rel)) => format!("{}/{rel}", root.trim_end_matches('/')),
                None => continue,
            }
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
