//! `xplat init`: the Dockerfile starters of `templates/` (embedded in the
//! binary), choosing one from the files of a project, rendering it, and writing
//! it into a folder without overwriting anything unless asked.
//!
//! Choosing and rendering are pure ([`detect`], [`render`]); only [`write`]
//! and [`init`] touch the filesystem, and only inside the folder they are given.
//! Nothing here talks to an engine or reads the environment.

mod embedded;

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What can go wrong while choosing or writing a template.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `--template NAME` names no template.
    #[error("unknown template \"{name}\"{}; `xplat init --list` shows them all", did_you_mean(.suggestion))]
    UnknownTemplate {
        /// What the user asked for.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
    },
    /// No template was named and none matches the folder's files.
    #[error(
        "cannot tell which template fits {}: none of go.mod, Cargo.toml, package.json, \
         pyproject.toml, requirements.txt, Makefile or CMakeLists.txt is there; \
         choose one with --template NAME (`xplat init --list` shows them)",
        .dir.display()
    )]
    NothingDetected {
        /// The folder that was looked at.
        dir: PathBuf,
    },
    /// Files that would be overwritten; nothing was written.
    #[error(
        "{} already exist{} in {}; nothing was written (use --force to overwrite)",
        .files.join(", "), if .files.len() == 1 { "s" } else { "" }, .dir.display()
    )]
    WouldOverwrite {
        /// The folder written into.
        dir: PathBuf,
        /// The file names that exist already.
        files: Vec<String>,
    },
    /// Reading the folder or writing a file failed.
    #[error("{action} {}: {source}", .path.display())]
    Io {
        /// What was being done ("writing", "listing").
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean \"{s}\"?"),
        None => String::new(),
    }
}

/// This module's result type.
pub type Result<T> = std::result::Result<T, InitError>;

/// The placeholder in template files that [`render`] replaces with the project name.
pub const NAME_PLACEHOLDER: &str = "__NAME__";

/// One template: a starter Dockerfile, `.dockerignore` and `xplat.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Its name, as `--template` takes it (`go`, `rust`, ...).
    pub name: &'static str,
    /// One line saying what it builds and how.
    pub description: String,
    /// File names whose presence in a project suggests this template.
    pub detect: Vec<String>,
    /// Which template wins when several match (higher wins).
    pub priority: i32,
    /// The files it writes, as `(file name, contents with placeholders)`.
    pub files: Vec<(&'static str, &'static str)>,
}

/// `templates/NAME/template.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    description: String,
    #[serde(default)]
    detect: Vec<String>,
    #[serde(default)]
    priority: i32,
}

/// Every embedded template, in listing order.
pub fn templates() -> Vec<Template> {
    embedded::TEMPLATES
        .iter()
        .map(|e| {
            // Embedded at compile time and loaded by a test: a failure is a bug in templates/.
            let meta: Meta = toml::from_str(e.meta)
                .unwrap_or_else(|err| panic!("templates/{}/template.toml: {err}", e.name));
            Template {
                name: e.name,
                description: meta.description,
                detect: meta.detect,
                priority: meta.priority,
                files: e.files.to_vec(),
            }
        })
        .collect()
}

/// The template called `name`, or an error with the closest name.
pub fn find(name: &str) -> Result<Template> {
    let all = templates();
    if let Some(t) = all.iter().find(|t| t.name == name) {
        return Ok(t.clone());
    }
    let suggestion = all
        .iter()
        .map(|t| (strsim::levenshtein(name, t.name), t.name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| n.to_string());
    Err(InitError::UnknownTemplate {
        name: name.to_string(),
        suggestion,
    })
}

/// `xplat init --list`: one line per template, name then description.
pub fn render_list() -> String {
    let all = templates();
    let width = all.iter().map(|t| t.name.len()).max().unwrap_or(0);
    all.iter()
        .map(|t| format!("{:width$}  {}\n", t.name, t.description))
        .collect()
}

/// Why a template was chosen for a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The chosen template's name.
    pub template: &'static str,
    /// The file that decided it (`go.mod`).
    pub because_of: String,
}

/// Chooses a template from the names of the files at the top of a project.
/// When several match (a Go project with a Makefile), the highest priority
/// wins, then the listing order.
pub fn detect<S: AsRef<str>>(file_names: &[S]) -> Option<Detection> {
    let present: BTreeSet<&str> = file_names.iter().map(AsRef::as_ref).collect();
    let mut best: Option<(i32, Detection)> = None;
    for t in templates() {
        let Some(hit) = t.detect.iter().find(|f| present.contains(f.as_str())) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((p, _)) => t.priority > *p,
        };
        if better {
            let detection = Detection {
                template: t.name,
                because_of: hit.clone(),
            };
            best = Some((t.priority, detection));
        }
    }
    best.map(|(_, d)| d)
}

/// A file ready to be written: its name inside the target folder and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name relative to the target folder.
    pub path: PathBuf,
    /// Contents with placeholders replaced.
    pub contents: String,
}

/// The template's files with [`NAME_PLACEHOLDER`] replaced by `project`.
pub fn render(template: &Template, project: &str) -> Vec<RenderedFile> {
    template
        .files
        .iter()
        .map(|(name, text)| RenderedFile {
            path: PathBuf::from(name),
            contents: text.replace(NAME_PLACEHOLDER, project),
        })
        .collect()
}

/// A name usable as an image repository component, from a folder name:
/// lowercase `[a-z0-9]` runs joined by single `-`, `app` when nothing is left.
pub fn project_name(dir_name: &str) -> String {
    let mut out = String::new();
    for c in dir_name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "app".to_string()
    } else {
        out.to_string()
    }
}

/// Writes `files` into `dir` (created if missing). Unless `force`, refuses when
/// any of them exists already, and then writes none of them.
pub fn write(dir: &Path, files: &[RenderedFile], force: bool) -> Result<Vec<PathBuf>> {
    if !force {
        let existing: Vec<String> = files
            .iter()
            .filter(|f| dir.join(&f.path).symlink_metadata().is_ok())
            .map(|f| f.path.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(InitError::WouldOverwrite {
                dir: dir.to_path_buf(),
                files: existing,
            });
        }
    }
    fs::create_dir_all(dir).map_err(|source| InitError::Io {
        action: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::with_capacity(files.len());
    for f in files {
        let path = dir.join(&f.path);
        // With --force, replace a symlink itself instead of writing through it.
        if force
            && path
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
        {
            fs::remove_file(&path).map_err(|source| InitError::Io {
                action: "replacing",
                path: path.clone(),
                source,
            })?;
        }
        fs::write(&path, &f.contents).map_err(|source| InitError::Io {
            action: "writing",
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// What [`init`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOutcome {
    /// The template written.
    pub template: &'static str,
    /// Set when the template was detected rather than named.
    pub detected: Option<Detection>,
    /// The files written, in order.
    pub written: Vec<PathBuf>,
}

/// `xplat init [--template NAME] [--force] DIR`: picks the named template or
/// detects one from DIR's files, and writes it into DIR.
pub fn init(dir: &Path, template: Option<&str>, force: bool) -> Result<InitOutcome> {
    let (template, detected) = match template {
        Some(name) => (find(name)?, None),
        None => {
            let names = list_dir(dir)?;
            let detection = detect(&names).ok_or_else(|| InitError::NothingDetected {
                dir: dir.to_path_buf(),
            })?;
            (find(detection.template)?, Some(detection))
        }
    };
    let dir_name = absolute_name(dir);
    let files = render(&template, &project_name(&dir_name));
    let written = write(dir, &files, force)?;
    Ok(InitOutcome {
        template: template.name,
        detected,
        written,
    })
}

/// The file names directly inside `dir` (none when it does not exist yet).
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(InitError::Io {
                action: "listing",
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    Ok(entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// The last component of `dir`, resolving `.` through the real path when possible.
fn absolute_name(dir: &Path) -> String {
    let resolved = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
