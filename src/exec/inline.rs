//! Files a COPY or ADD makes from data rather than from the context or another image:
//! heredoc bodies (`COPY <<EOF /path`; the planner already expanded unquoted ones) and
//! downloads (`ADD https://… /dest`). They are written as one tar into the job's
//! container, with the usual destination rules: a destination ending in `/`, an
//! existing directory, or several files means "into this directory".

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::copy::{chown_of, is_dir};
use super::fetch;
use super::state::State;
use super::{At, ExecError, JobEnv, Result};
use crate::context::copy::parse_chmod;
use crate::dockerfile::{Add, Heredoc};
use crate::engine::{tar_body, ContainerId};

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
        return Err(ExecError::HeredocCount {
            stage: at.stage(),
            line: at.line,
            sources: n,
            bodies: heredocs.len(),
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
        return Err(ExecError::ChecksumWithSeveralSources {
            stage: at.stage(),
            line: at.line,
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
        return Err(ExecError::DestNotDirectory {
            stage: at.stage(),
            line: at.line,
        });
    }
    let mut out = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let path = if into_dir {
            if f.name.is_empty() {
                return Err(ExecError::UrlWithoutName {
                    stage: at.stage(),
                    line: at.line,
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

/// Writes `what` into the container.
pub async fn execute(
    env: &JobEnv<'_>,
    at: &At<'_>,
    state: &State,
    id: &ContainerId,
    what: InlineCopy<'_>,
) -> Result<()> {
    let ctx_err = |source| ExecError::Context {
        stage: at.stage(),
        line: at.line,
        source: Box::new(source),
    };
    let chmod = what.chmod.map(parse_chmod).transpose().map_err(ctx_err)?;
    let chown = chown_of(env, at, id, what.chown).await?;
    let dest_abs = crate::context::clean_path(&if what.dest.starts_with('/') {
        what.dest.to_string()
    } else {
        format!("{}/{}", state.workdir(), what.dest)
    });
    let into_dir = what.dest.ends_with('/')
        || what.dest.ends_with("/.")
        || what.files.len() > 1
        || is_dir(env, at, id, &dest_abs).await?;
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
        .put_archive(id, "/", tar_body(tar.into()))
        .await
        .map_err(at.engine("copying files into the container"))
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
