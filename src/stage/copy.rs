//! COPY and ADD: from one expanded instruction and the stage's state to the list of
//! `oci::LayerEntry` it writes. One set of rules for the executor (which sends the entries
//! to a container with put_archive) and the assembler (which writes them as a layer).
//!
//! Rules, each checked against the engine's BuildKit (see `super` for the cases):
//! - the destination is joined onto WORKDIR; it is a directory when it ends with `/` (or is
//!   `.`), or when it already is one in the destination; several sources need that;
//! - `--chown=user[:group]`: numbers as given (a lone uid is also the gid); names from the
//!   DESTINATION's `/etc/passwd` and `/etc/group` (a lone user name takes the user's
//!   primary group from passwd); `--chmod` is octal;
//! - missing parents of what is written are created 0755, owned by the `--chown` owner
//!   (else 0:0); existing ones are left alone and not listed ([`Files::created`] says which
//!   directories are new);
//! - a directory source copies its contents; the destination directory, when missing, is
//!   created 0755 with the `--chown` owner, never with the source directory's mode or owner
//!   (`COPY --from`); the contents keep their own mode and owner unless `--chown`/`--chmod`;
//! - a symlink named as a source is followed; symlinks inside a copied directory are copied;
//! - wildcards in `COPY --from` follow Go `filepath.Match` per path component over the
//!   source's listing; a pattern that matches nothing copies nothing (BuildKit sets
//!   AllowEmptyWildcard), a plain path that is missing is an error;
//! - heredoc sources are files of mode 0644; ADD of a URL writes the caller's download,
//!   mode 0600, named after the URL path.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::copy_from;
use super::error::{Result, StageError};
use super::fs::{link_target, DestFs, FsKind};
pub use super::owner::{needs_names, parse_chmod, resolve_chown, Passwd};
use super::state::{join_workdir, State};
use super::url;
use crate::context::{BuildContext, CopyEntry, CopySpec, DestImage, EntryKind as CtxKind, Origin};
use crate::dockerfile::{Heredoc, Instruction};
use crate::oci::{EntryKind, LayerEntry};

/// One file an `ADD <url>` downloaded (the caller fetches; `stage` stays pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The URL as written in the (expanded) instruction.
    pub url: String,
    /// The body.
    pub data: Bytes,
    /// `Last-Modified`, Unix seconds (0 when unknown).
    pub mtime: i64,
}

/// Where a COPY/ADD takes its bytes from (decides what the caller must provide).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The build context (ADD unpacks local archives).
    Context,
    /// `COPY --from` a stage or image.
    From,
    /// Heredoc bodies written in the Dockerfile.
    Heredoc,
    /// http(s) downloads (ADD).
    Url,
    /// A git repository (ADD): not supported by either path.
    Git,
}

/// What COPY/ADD needs besides the instruction and the state.
pub struct CopyInputs<'a> {
    /// The build context, for context sources.
    pub context: Option<&'a BuildContext>,
    /// The `--from` filesystem.
    pub source: Option<&'a dyn super::SourceFs>,
    /// The filesystem written into.
    pub dest: &'a dyn DestFs,
    /// Downloads of the ADD's URLs.
    pub downloads: &'a [Download],
    /// mtime of directories this copy creates (SOURCE_DATE_EPOCH, or the build's start).
    pub created_mtime: i64,
}

/// What a COPY/ADD writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Files {
    /// Every path written, parents before children; missing parents included.
    pub entries: Vec<LayerEntry>,
    /// The directories among `entries` that did not exist in the destination (created
    /// parents and a created destination directory), by normalized path (`a/b`).
    pub created: BTreeSet<String>,
}

/// Where the bytes of a COPY/ADD come from.
pub fn source_kind(instr: &Instruction) -> Option<SourceKind> {
    let (sources, from) = match instr {
        Instruction::Copy(c) => (&c.sources, c.from.is_some()),
        Instruction::Add(a) => (&a.sources, false),
        _ => return None,
    };
    Some(if sources.iter().any(|s| is_heredoc_source(s)) {
        SourceKind::Heredoc
    } else if from {
        SourceKind::From
    } else if sources.iter().any(|s| url::is_git(s)) {
        SourceKind::Git
    } else if sources.iter().any(|s| url::is_url(s)) {
        SourceKind::Url
    } else {
        SourceKind::Context
    })
}

/// Whether a COPY/ADD source names a heredoc (`<<EOF`, `<<-"EOF"`).
pub fn is_heredoc_source(src: &str) -> bool {
    src.starts_with("<<")
}

/// The flags common to COPY and ADD.
pub(super) struct Flags<'a> {
    pub sources: &'a [String],
    pub dest: &'a str,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
}

/// The entries one COPY/ADD writes, given the stage's state before it.
pub async fn files(state: &State, instr: &Instruction, inputs: &CopyInputs<'_>) -> Result<Files> {
    let kind = source_kind(instr).expect("files() is called for COPY and ADD");
    let (flags, heredocs, from) = match instr {
        Instruction::Copy(c) => (
            Flags {
                sources: &c.sources,
                dest: &c.dest,
                chown: c.chown.as_deref(),
                chmod: c.chmod.as_deref(),
            },
            &c.heredocs,
            c.from.as_deref(),
        ),
        Instruction::Add(a) => (
            Flags {
                sources: &a.sources,
                dest: &a.dest,
                chown: a.chown.as_deref(),
                chmod: a.chmod.as_deref(),
            },
            &a.heredocs,
            None,
        ),
        _ => unreachable!("source_kind is None for other instructions"),
    };
    let chmod = flags.chmod.map(parse_chmod).transpose()?;
    let owner = match flags.chown {
        Some(v) => Some(resolve_chown(v, inputs.dest).await?),
        None => None,
    };
    let dest = Dest::resolve(state, flags.dest, inputs.dest).await?;
    let mut out = Entries::default();
    match kind {
        SourceKind::Git => {
            let src = flags.sources.iter().find(|s| url::is_git(s));
            return Err(StageError::GitSource {
                src: src.cloned().unwrap_or_default(),
            });
        }
        SourceKind::Context => {
            let add = match instr {
                Instruction::Add(a) => Some(a),
                _ => None,
            };
            // The destination with its symlinks resolved (a folder keeps its `/`).
            let resolved = if dest.is_dir && dest.abs != "/" {
                format!("{}/", dest.abs)
            } else {
                dest.abs.clone()
            };
            let spec = CopySpec {
                sources: flags.sources.to_vec(),
                dest: resolved,
                workdir: state.workdir(),
                chown: owner.map(|(u, g)| format!("{u}:{g}")),
                chmod: flags.chmod.map(str::to_string),
                excludes: match instr {
                    Instruction::Copy(c) => c.exclude.clone(),
                    Instruction::Add(a) => a.exclude.clone(),
                    _ => Vec::new(),
                },
                parents: matches!(instr, Instruction::Copy(c) if c.parents),
                unpack: add.is_some_and(|a| a.unpack.unwrap_or(true)),
                created_mtime: inputs.created_mtime,
            };
            let ctx = inputs.context.ok_or(StageError::NoContext)?;
            let known = KnownDest {
                dest_is_dir: dest.is_dir,
                dest_abs: dest.abs.clone(),
            };
            for e in ctx.resolve_copy(&spec, &known)? {
                let created = e.origin == Origin::Created;
                out.put(layer_entry(ctx, &e), created);
            }
        }
        SourceKind::Heredoc => {
            if from.is_some() {
                return Err(StageError::HeredocWithFrom);
            }
            let files = heredoc_files(flags.sources, heredocs, inputs.created_mtime)?;
            inline(&mut out, files, &dest, flags.dest, owner, chmod)?;
        }
        SourceKind::Url => {
            let files = url_files(instr, flags.sources, inputs.downloads)?;
            inline(&mut out, files, &dest, flags.dest, owner, chmod)?;
        }
        SourceKind::From => {
            let from = from.unwrap_or_default();
            let source = inputs
                .source
                .ok_or_else(|| StageError::NoSource { from: from.into() })?;
            copy_from::copy(
                &mut out,
                source,
                from,
                &flags,
                &dest,
                owner,
                chmod,
                inputs.created_mtime,
            )
            .await?;
        }
    }
    out.finish(inputs.dest, owner, inputs.created_mtime).await
}

/// The destination, resolved against WORKDIR and the destination filesystem.
pub(super) struct Dest {
    /// Absolute, cleaned.
    pub abs: String,
    /// Written with directory syntax, or an existing directory.
    pub is_dir: bool,
}

impl Dest {
    async fn resolve(state: &State, written: &str, fs: &dyn DestFs) -> Result<Dest> {
        let abs = resolve_in(fs, &join_workdir(&state.workdir(), written)).await?;
        let syntax = written.ends_with('/')
            || written == "."
            || written.ends_with("/.")
            || written.is_empty();
        let exists = is_dir(fs, &abs).await?;
        Ok(Dest {
            abs,
            is_dir: syntax || exists,
        })
    }

    /// Where a file named `name` lands.
    pub fn file_path(&self, name: &str) -> String {
        if self.is_dir {
            crate::context::clean_path(&format!("{}/{name}", self.abs))
        } else {
            self.abs.clone()
        }
    }
}

/// `path` (absolute, clean) with every symlink along it followed inside `fs`, as BuildKit
/// resolves a COPY destination or a WORKDIR in the rootfs: `COPY a /lnk/` with `/lnk ->
/// /real` writes `/real/a`, never a folder `/lnk` over the link. A missing component ends
/// the lookups (nothing below it exists).
pub async fn resolve_in(fs: &dyn DestFs, path: &str) -> Result<String> {
    let mut rest: std::collections::VecDeque<String> = key(path).into_iter().collect();
    let mut done = String::new();
    let mut hops = 0;
    let mut missing = false;
    while let Some(c) = rest.pop_front() {
        if c == ".." {
            done = done
                .rsplit_once('/')
                .map_or(String::new(), |(d, _)| d.to_string());
            continue;
        }
        let candidate = format!("{done}/{c}");
        if !missing {
            match dest_stat(fs, &candidate).await? {
                None => missing = true,
                Some(s) => {
                    if let FsKind::Symlink { target } = s.kind {
                        hops += 1;
                        if hops > 40 {
                            return Err(StageError::SymlinkLoop { path: path.into() });
                        }
                        if target.starts_with('/') {
                            done.clear();
                        }
                        for t in key(&target).into_iter().rev() {
                            rest.push_front(t);
                        }
                        continue;
                    }
                }
            }
        }
        done = candidate;
    }
    Ok(if done.is_empty() { "/".into() } else { done })
}

/// Whether `path` is a directory in `fs`, following symlinks.
pub(super) async fn is_dir(fs: &dyn DestFs, path: &str) -> Result<bool> {
    let mut p = path.to_string();
    for _ in 0..40 {
        match dest_stat(fs, &p).await? {
            None => return Ok(false),
            Some(s) => match s.kind {
                FsKind::Dir => return Ok(true),
                FsKind::File => return Ok(false),
                FsKind::Symlink { target } => p = link_target(&p, &target),
            },
        }
    }
    Err(StageError::SymlinkLoop { path: path.into() })
}

async fn dest_stat(fs: &dyn DestFs, path: &str) -> Result<Option<super::FsStat>> {
    if path == "/" {
        return Ok(Some(super::FsStat::dir(0o755, 0, 0)));
    }
    fs.stat(path).await.map_err(|source| StageError::Fs {
        action: format!("looking at {path} in the destination"),
        source,
    })
}

/// What the context resolver asks of the destination (names are resolved before it).
struct KnownDest {
    dest_abs: String,
    dest_is_dir: bool,
}

impl DestImage for KnownDest {
    fn is_dir(&self, path: &str) -> bool {
        self.dest_is_dir && crate::context::clean_path(path) == self.dest_abs
    }
}

/// A context copy entry as a layer entry (file bytes are read from the host when the layer
/// is written; the context already refused symlinks out of it).
pub fn layer_entry(ctx: &BuildContext, e: &CopyEntry) -> LayerEntry {
    let entry = match (&e.kind, &e.origin) {
        (CtxKind::Dir, _) => LayerEntry::dir(e.path.clone(), e.mode),
        (CtxKind::Symlink { target }, _) => {
            let mut l = LayerEntry::symlink(e.path.clone(), target.clone());
            l.mode = e.mode;
            l
        }
        (CtxKind::File { .. }, Origin::Context(rel)) => {
            LayerEntry::host_file(e.path.clone(), ctx.root().join(rel), e.mode)
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

/// WORKDIR: the directories to create for `path` (the missing ones, parents first), 0755,
/// owned by `user` (resolved like `--chown`, from the destination's own passwd/group).
pub async fn workdir_files(
    path: &str,
    user: Option<&str>,
    fs: &dyn DestFs,
    mtime: i64,
) -> Result<Files> {
    let owner = match user {
        Some(u) => Some(resolve_chown(u, fs).await?),
        None => None,
    };
    let (uid, gid) = owner.unwrap_or((0, 0));
    let mut out = Entries::default();
    let path = resolve_in(fs, path).await?;
    if path != "/" {
        let dir = LayerEntry::dir(&path, 0o755).owned_by(uid.into(), gid.into());
        out.put(dir.modified_at(mtime), true);
    }
    out.finish(fs, owner, mtime).await
}

struct Inline {
    name: String,
    data: Bytes,
    mode: u32,
    mtime: i64,
}

fn heredoc_files(sources: &[String], heredocs: &[Heredoc], mtime: i64) -> Result<Vec<Inline>> {
    let n = sources.iter().filter(|s| is_heredoc_source(s)).count();
    if n != sources.len() {
        return Err(StageError::MixedHeredocSources);
    }
    if n != heredocs.len() {
        return Err(StageError::HeredocCount {
            sources: n,
            bodies: heredocs.len(),
        });
    }
    Ok(heredocs
        .iter()
        .map(|h| Inline {
            name: h.name.clone(),
            data: h.body().into_bytes().into(),
            mode: 0o644,
            mtime,
        })
        .collect())
}

fn url_files(
    instr: &Instruction,
    sources: &[String],
    downloads: &[Download],
) -> Result<Vec<Inline>> {
    if sources.iter().any(|s| !url::is_url(s)) {
        return Err(StageError::MixedUrlSources);
    }
    if let Instruction::Add(a) = instr {
        if a.unpack == Some(true) {
            return Err(StageError::UrlUnpack);
        }
        if a.checksum.is_some() && sources.len() > 1 {
            return Err(StageError::ChecksumSources);
        }
    }
    sources
        .iter()
        .map(|u| {
            let d = downloads
                .iter()
                .find(|d| &d.url == u)
                .ok_or_else(|| StageError::MissingDownload { url: u.clone() })?;
            Ok(Inline {
                name: url::url_file_name(u).unwrap_or_default(),
                data: d.data.clone(),
                mode: 0o600,
                mtime: d.mtime,
            })
        })
        .collect()
}

fn inline(
    out: &mut Entries,
    files: Vec<Inline>,
    dest: &Dest,
    written: &str,
    owner: Option<(u32, u32)>,
    chmod: Option<u32>,
) -> Result<()> {
    if files.len() > 1 && !dest.is_dir {
        return Err(StageError::DestNotDirectory {
            dest: written.into(),
        });
    }
    let (uid, gid) = owner.unwrap_or((0, 0));
    for f in files {
        if dest.is_dir && f.name.is_empty() {
            return Err(StageError::NoFileName {
                src: written.into(),
            });
        }
        let e = LayerEntry::file(dest.file_path(&f.name), f.data, chmod.unwrap_or(f.mode))
            .owned_by(uid.into(), gid.into())
            .modified_at(f.mtime);
        out.put(e, false);
    }
    Ok(())
}

/// Entries keyed by path components: later real entries win, created ones never replace.
#[derive(Default)]
pub(super) struct Entries {
    map: BTreeMap<Vec<String>, LayerEntry>,
    created: BTreeSet<Vec<String>>,
}

fn key(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

impl Entries {
    /// Adds an entry; `created` marks a directory this copy makes only if it is missing.
    pub fn put(&mut self, e: LayerEntry, created: bool) {
        let k = key(&e.path);
        if k.is_empty() {
            return; // "/" itself is never written
        }
        if created {
            if !self.map.contains_key(&k) {
                self.created.insert(k.clone());
                self.map.insert(k, e);
            }
        } else {
            self.created.remove(&k);
            self.map.insert(k, e);
        }
    }

    /// Drops created directories that exist, adds missing parents (0755, `owner`).
    pub async fn finish(
        mut self,
        fs: &dyn DestFs,
        owner: Option<(u32, u32)>,
        mtime: i64,
    ) -> Result<Files> {
        let (uid, gid) = owner.unwrap_or((0, 0));
        let keys: Vec<Vec<String>> = self.map.keys().cloned().collect();
        for k in keys {
            for n in 1..k.len() {
                let parent = format!("/{}", k[..n].join("/"));
                self.put(
                    LayerEntry::dir(parent, 0o755)
                        .owned_by(uid.into(), gid.into())
                        .modified_at(mtime),
                    true,
                );
            }
        }
        let mut existing = BTreeSet::new();
        for k in &self.created {
            // A missing parent means every directory below it is missing too.
            let path = format!("/{}", k.join("/"));
            let parent_missing = k.len() > 1 && {
                let pk = k[..k.len() - 1].to_vec();
                self.created.contains(&pk) && !existing.contains(&pk)
            };
            if !parent_missing && is_dir(fs, &path).await? {
                existing.insert(k.clone());
            }
        }
        let mut entries = Vec::with_capacity(self.map.len());
        let mut created = BTreeSet::new();
        for (k, e) in self.map {
            if existing.contains(&k) {
                continue;
            }
            if self.created.contains(&k) && e.kind == EntryKind::Dir {
                created.insert(k.join("/"));
            }
            entries.push(e);
        }
        Ok(Files { entries, created })
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
