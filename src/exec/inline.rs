//! Files a COPY or ADD makes from data rather than from the context or another image:
//! heredoc bodies (`COPY <<EOF /path`; the planner already expanded unquoted ones) and
//! downloads (`ADD https://… /dest`). They are written as one tar into a container of
//! the parent image, with the usual destination rules: a destination ending in `/`, an
//! existing directory, or several files means "into this directory".

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::config::{join_workdir, State};
use super::copy::{is_dir, passwd_names};
use super::fetch;
use super::step::{commit, create, key, lookup, remove, At, JobEnv, StepOutcome};
use super::{ExecError, Result};
use crate::context::copy::{parse_chmod, parse_chown, PasswdNames};
use crate::dockerfile::{Add, Heredoc, Instruction};
use crate::engine::{tar_body, RunSpec};

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// Its name inside a destination directory.
    pub name: String,
    /// Its content.
    pub data: Vec<u8>,
    /// Its mode unless `--chmod` says otherwise.
    pub mode: u32,
    /// Its mtime (seconds since the epoch).
    pub mtime: u64,
}

/// What a COPY/ADD writes and how.
pub struct InlineCopy<'a> {
    /// The files.
    pub files: Vec<InlineFile>,
    /// The destination as written.
    pub dest: &'a str,
    /// `--chown`.
    pub chown: Option<&'a str>,
    /// `--chmod`.
    pub chmod: Option<&'a str>,
}

/// Whether a COPY/ADD source names a heredoc (`<<EOF`, `<<-"EOF"`).
pub fn is_heredoc_source(src: &str) -> bool {
    src.starts_with("<<")
}

/// The heredoc files of a COPY/ADD whose sources are all heredocs (mode 0644, as
/// BuildKit creates them). `None` when no source is a heredoc.
pub fn heredoc_files(
    at: &At<'_>,
    sources: &[String],
    heredocs: &[Heredoc],
) -> Result<Option<Vec<InlineFile>>> {
    let n = sources.iter().filter(|s| is_heredoc_source(s)).count();
    if n == 0 {
        return Ok(None);
    }
    if n != sources.len() {
        return Err(at.unsupported("mixing heredoc and file sources in one COPY/ADD"));
    }
    if n != heredocs.len() {
        return Err(ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: format!("{n} heredoc sources but {} heredoc bodies", heredocs.len()),
        });
    }
    Ok(Some(
        heredocs
            .iter()
            .map(|h| InlineFile {
                name: h.name.clone(),
                data: h.body().into_bytes(),
                mode: 0o644,
                mtime: 0,
            })
            .collect(),
    ))
}

/// ADD of URLs: downloads each (all sources must be URLs; git is refused) into files
/// of mode 0600 named after the URL path.
pub async fn url_files(at: &At<'_>, a: &Add) -> Result<Vec<InlineFile>> {
    if let Some(git) = a.sources.iter().find(|s| fetch::is_git(s)) {
        return Err(at.unsupported(format!("ADD of a git repository ({git})")));
    }
    if a.sources.iter().any(|s| !fetch::is_remote(s)) {
        return Err(at.unsupported("mixing URL and local sources in one ADD"));
    }
    if let Some(s) = a
        .sources
        .iter()
        .find(|s| !(s.starts_with("http://") || s.starts_with("https://")))
    {
        return Err(at.unsupported(format!("ADD of {s} (only http and https URLs)")));
    }
    if a.unpack == Some(true) {
        return Err(at.unsupported("ADD --unpack=true of a URL"));
    }
    if a.checksum.is_some() && a.sources.len() > 1 {
        return Err(ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message: "--checksum needs exactly one source".into(),
        });
    }
    let mut files = Vec::new();
    for url in &a.sources {
        let d = fetch::download(at, url, a.checksum.as_deref()).await?;
        files.push(InlineFile {
            name: d.name.unwrap_or_default(),
            data: d.data,
            mode: 0o600,
            mtime: d.mtime,
        });
    }
    Ok(files)
}

/// Content hash of inline files for the step key (names, modes and bytes; not mtimes,
/// which the reference leaves out of cache decisions).
pub fn content_hash(files: &[InlineFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.name.as_bytes());
        h.update([0]);
        h.update(f.mode.to_be_bytes());
        h.update((f.data.len() as u64).to_be_bytes());
        h.update(&f.data);
    }
    hex::encode(h.finalize())
}

/// Where each file goes: `dest/name` when `into_dir`, else `dest` itself.
pub fn placements(
    at: &At<'_>,
    files: &[InlineFile],
    dest_abs: &str,
    into_dir: bool,
) -> Result<BTreeMap<String, usize>> {
    if files.len() > 1 && !into_dir {
        return Err(ExecError::Invalid {
            stage: at.stage(),
            line: at.line,
            message:
                "with more than one source, the destination must be a directory and end with a /"
                    .into(),
        });
    }
    let mut out = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let path = if into_dir {
            if f.name.is_empty() {
                return Err(ExecError::Invalid {
                    stage: at.stage(),
                    line: at.line,
                    message: "the URL has no file name in its path; give a destination file name"
                        .into(),
                });
            }
            format!("{}/{}", dest_abs.trim_end_matches('/'), f.name)
        } else {
            dest_abs.to_string()
        };
        out.insert(crate::context::clean_path(&path), i);
    }
    Ok(out)
}

/// Writes `what` into a container of `parent` and commits it (or reuses the cached step).
pub async fn execute(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    parent: &str,
    instr: &Instruction,
    what: InlineCopy<'_>,
) -> Result<StepOutcome> {
    let key = key(at, state, parent, instr, &content_hash(&what.files));
    if let Some(id) = lookup(env, at, &key).await? {
        return Ok(StepOutcome::Cached(id));
    }
    let ctx_err = |source| ExecError::Context {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    };
    let chmod = what.chmod.map(parse_chmod).transpose().map_err(ctx_err)?;
    let id = create(
        env,
        at,
        &RunSpec {
            image: parent.to_string(),
            ..Default::default()
        },
    )
    .await?;
    let res = async {
        let chown = match what.chown {
            Some(v) => {
                let names = if v.split(':').any(|p| p.parse::<u32>().is_err()) {
                    passwd_names(env, at, &id).await?
                } else {
                    PasswdNames::default()
                };
                Some(parse_chown(v, &names).map_err(ctx_err)?)
            }
            None => None,
        };
        let dest_abs = join_workdir(state.config.working_dir.as_deref(), what.dest);
        let into_dir = what.dest.ends_with('/')
            || what.dest.ends_with("/.")
            || what.files.len() > 1
            || is_dir(env, at, &id, &dest_abs).await?;
        let places = placements(at, &what.files, &dest_abs, into_dir)?;
        let io = |source| ExecError::Archive {
            stage: at.stage(),
            line: at.line,
            path: dest_abs.clone(),
            source,
        };
        let mut tar = tar::Builder::new(Vec::new());
        for (path, i) in &places {
            let f = &what.files[*i];
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(chmod.unwrap_or(f.mode));
            let (u, g) = chown.unwrap_or((0, 0));
            h.set_uid(u.into());
            h.set_gid(g.into());
            h.set_mtime(f.mtime);
            h.set_size(f.data.len() as u64);
            tar.append_data(&mut h, path.trim_start_matches('/'), &f.data[..])
                .map_err(io)?;
        }
        let tar = tar.into_inner().map_err(io)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, data: &str) -> InlineFile {
        InlineFile {
            name: name.into(),
            data: data.as_bytes().to_vec(),
            mode: 0o644,
            mtime: 0,
        }
    }

    #[test]
    fn content_hash_covers_names_and_bytes_not_mtime() {
        let a = content_hash(&[f("a", "x")]);
        assert_ne!(a, content_hash(&[f("b", "x")]));
        assert_ne!(a, content_hash(&[f("a", "y")]));
        let mut later = f("a", "x");
        later.mtime = 99;
        assert_eq!(a, content_hash(&[later]));
        assert_ne!(content_hash(&[f("ab", "c")]), content_hash(&[f("a", "bc")]));
    }
}
