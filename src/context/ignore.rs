//! `.dockerignore` with moby/patternmatcher semantics.
//!
//! Reading (moby `ignorefile.ReadAll`): a line whose first byte is `#` is a comment; lines are
//! trimmed; a leading `!` marks an exception (re-include); each pattern is cleaned like Go
//! `filepath.Clean` and a leading `/` is dropped, so `/foo`, `./foo` and `foo/` are all `foo`.
//!
//! Matching (moby `MatchesOrParentMatches`): patterns are tried in order and the last one
//! that matches the path, or any of its parent directories, decides. So an excluded directory
//! excludes everything under it unless a later `!` pattern re-includes something.
//!
//! Pure: no I/O. The walker asks [`Ignore::is_excluded`] per path and
//! [`Ignore::may_reinclude_under`] before skipping an excluded directory.

use super::error::{ContextError, Result};
use super::glob::{clean_path, Glob, Tok};

/// How a pattern compares with a path; moby picks the cheapest that is exact for the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcard: equal strings.
    Exact,
    /// Literal text, then `**` at the end: a string prefix.
    Prefix(String),
    /// A leading `**`, then literal text: a string suffix (`**/x` also matches `x`).
    Suffix(String),
    /// Anything else.
    Glob(Glob),
}

/// One `.dockerignore` line after reading and cleaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// The cleaned pattern text, without the `!`.
    text: String,
    /// `!pattern`: re-includes what matches.
    exception: bool,
    kind: Kind,
}

impl Pattern {
    /// Compiles one cleaned pattern line (may start with `!`).
    pub fn new(line: &str) -> Result<Pattern> {
        let trimmed = line.trim();
        let cleaned = clean_path(trimmed);
        let (exception, text) = match cleaned.strip_prefix('!') {
            Some("") => {
                return Err(ContextError::InvalidPattern {
                    pattern: line.to_string(),
                    reason: "illegal exclusion pattern \"!\"",
                })
            }
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        // moby validates every pattern with filepath.Match before compiling its own regexp.
        Glob::go(&text)?;
        let kind = compile(&text)?;
        Ok(Pattern {
            text,
            exception,
            kind,
        })
    }

    /// The cleaned pattern text, without a leading `!`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` exception.
    pub fn is_exception(&self) -> bool {
        self.exception
    }

    /// Whether the pattern matches exactly this slash-separated relative path.
    pub fn matches_exact(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(p) => path.starts_with(p.as_str()),
            Kind::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|bare| path == bare)
            }
            Kind::Glob(g) => g.matches(path),
        }
    }

    /// Whether the pattern matches the path or one of its parent directories.
    pub fn matches_or_parent(&self, path: &str) -> bool {
        if self.matches_exact(path) {
            return true;
        }
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            end += i;
            if self.matches_exact(&path[..end]) {
                return true;
            }
            end += 1;
        }
        false
    }
}

/// Compiles like moby's `Pattern.compile`, including its choice of exact/prefix/suffix.
fn compile(text: &str) -> Result<Kind> {
    #[derive(PartialEq)]
    enum Ty {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let chars: Vec<char> = text.chars().collect();
    let mut toks = Vec::new();
    let mut ty = Ty::Exact;
    let mut k = 0;
    let mut i = 0;
    while k < chars.len() {
        let ch = chars[k];
        k += 1;
        match ch {
            '*' if chars.get(k) == Some(&'*') => {
                k += 1;
                if chars.get(k) == Some(&'/') {
                    k += 1;
                }
                if k == chars.len() {
                    ty = if ty == Ty::Exact {
                        Ty::Prefix
                    } else {
                        Ty::Glob
                    };
                    toks.push(Tok::AnyRest);
                } else {
                    ty = Ty::Glob;
                    toks.push(Tok::AnyDirs);
                }
                if i == 0 {
                    ty = Ty::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                ty = Ty::Glob;
            }
            '?' => {
                toks.push(Tok::Quest);
                ty = Ty::Glob;
            }
            '\\' => match chars.get(k) {
                Some(&c) => {
                    toks.push(Tok::Lit(c));
                    k += 1;
                    ty = Ty::Glob;
                }
                None => toks.push(Tok::Lit('\\')),
            },
            '[' => {
                let (tok, next) = Glob::class_at(text, &chars, k)?;
                if let Tok::Class { ranges, .. } = &tok {
                    // moby hands the class to Go's regexp, which rejects reversed ranges.
                    if ranges.iter().any(|(lo, hi)| lo > hi) {
                        return Err(ContextError::InvalidPattern {
                            pattern: text.to_string(),
                            reason: "character class range out of order",
                        });
                    }
                }
                toks.push(tok);
                k = next;
                ty = Ty::Glob;
            }
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    Ok(match ty {
        Ty::Exact => Kind::Exact,
        Ty::Prefix => Kind::Prefix(text[..text.len() - 2].to_string()),
        Ty::Suffix => Kind::Suffix(text[2..].to_string()),
        // Class tokens become Go regexp classes in moby, which do match '/'.
        Ty::Glob => Kind::Glob(Glob::from_tokens(toks, true)),
    })
}

/// A parsed `.dockerignore`: ordered patterns, last match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Parses `.dockerignore` text (moby `ReadAll` rules, then `New`).
    pub fn parse(text: &str) -> Result<Ignore> {
        let mut lines = Vec::new();
        for (n, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            let raw = if n == 0 {
                raw.strip_prefix('\u{feff}').unwrap_or(raw)
            } else {
                raw
            };
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let (invert, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let mut body = if body.is_empty() {
                String::new()
            } else {
                clean_path(body)
            };
            if body.len() > 1 && body.starts_with('/') {
                body.remove(0);
            }
            lines.push(if invert { format!("!{body}") } else { body });
        }
        Ignore::from_patterns(&lines)
    }

    /// Compiles already-read pattern lines (as `--exclude` flags or tests give them).
    pub fn from_patterns<S: AsRef<str>>(lines: &[S]) -> Result<Ignore> {
        let mut patterns = Vec::new();
        for line in lines {
            if line.as_ref().trim().is_empty() {
                continue;
            }
            patterns.push(Pattern::new(line.as_ref())?);
        }
        Ok(Ignore { patterns })
    }

    /// The compiled patterns, in file order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether a slash-separated path relative to the context root is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path);
        if path == "." {
            // moby: "Don't let them exclude everything, kind of silly."
            return false;
        }
        let mut excluded = false;
        for p in &self.patterns {
            // An include pattern cannot change an already excluded path, nor an exception
            // a path that is not excluded: skip the work, as moby does.
            if p.exception != excluded {
                continue;
            }
            if p.matches_or_parent(&path) {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// Whether some `!` pattern could re-include a path under the excluded directory `dir`,
    /// so the walker must descend instead of skipping it. Conservative: `true` when unsure.
    pub fn may_reinclude_under(&self, dir: &str) -> bool {
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exception).any(|p| {
            let pat_parts: Vec<&str> = p.text.split('/').collect();
            for (i, d) in dir_parts.iter().enumerate() {
                let Some(pp) = pat_parts.get(i) else {
                    // The exception matches an ancestor of `dir`: it re-includes all below.
                    return true;
                };
                if pp.contains("**") {
                    return true;
                }
                match Glob::go(pp) {
                    Ok(g) if g.matches(d) => {}
                    _ => return false,
                }
            }
            true
        })
    }
}

#[cfg(test)]
#[path = "ignore_tests.rs"]
mod tests;
