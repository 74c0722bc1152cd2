//! Shell-style pattern matching shared by `.dockerignore`, COPY sources and `--exclude`.
//!
//! Two dialects over one token matcher:
//! - Go `filepath.Match` (COPY/ADD sources, `--exclude`): `*` and `?` never cross `/`,
//!   `[...]` classes with `^` negation, `\` escapes.
//! - moby/patternmatcher (`.dockerignore`): the same, plus `**` (any number of path
//!   components), validated by `filepath.Match` rules first, as moby does.
//!
//! Written by hand rather than with `globset`: globset's `**` and class rules differ from
//! Go's (`[!a]` negation, `*` crossing `/` unless configured, no validation of `[x-]`), and
//! moby's quirks (leading-`**` suffix matching, prefix matching) are easier to state exactly
//! in a small matcher than to bend a general one into.

use super::error::{ContextError, Result};

/// One compiled pattern element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A literal character.
    Lit(char),
    /// `*`: any run of characters except `/`.
    Star,
    /// `?`: one character except `/`.
    Quest,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` (or `**` before more pattern): `(.*/)?`, zero or more whole components.
    AnyDirs,
    /// `**` at the end: anything at all.
    AnyRest,
}

/// A token sequence plus the dialect detail that differs at match time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    toks: Vec<Tok>,
    /// moby turns classes into Go regexp classes, which can match `/`; filepath.Match's cannot.
    class_matches_slash: bool,
}

fn bad(pattern: &str, reason: &'static str) -> ContextError {
    ContextError::InvalidPattern {
        pattern: pattern.to_string(),
        reason,
    }
}

/// Parses a class body starting right after `[`; returns the token and the index after `]`.
/// Go's rules: `^` negates; a class needs at least one item; `-` and `]` must be escaped
/// where they would be ambiguous; `\` escapes one character.
fn parse_class(pattern: &str, chars: &[char], mut k: usize) -> Result<(Tok, usize)> {
    let mut negated = false;
    if chars.get(k) == Some(&'^') {
        negated = true;
        k += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(k) {
            None => return Err(bad(pattern, "unterminated character class")),
            Some(']') if !ranges.is_empty() => return Ok((Tok::Class { negated, ranges }, k + 1)),
            _ => {}
        }
        let (lo, next) = class_char(pattern, chars, k)?;
        k = next;
        let mut hi = lo;
        if chars.get(k) == Some(&'-') {
            let (h, next) = class_char(pattern, chars, k + 1)?;
            hi = h;
            k = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(pattern: &str, chars: &[char], k: usize) -> Result<(char, usize)> {
    match chars.get(k) {
        None | Some('-') | Some(']') => Err(bad(pattern, "malformed character class")),
        Some('\\') => match chars.get(k + 1) {
            None => Err(bad(pattern, "trailing backslash in character class")),
            Some(&c) => Ok((c, k + 2)),
        },
        Some(&c) => Ok((c, k + 1)),
    }
}

impl Glob {
    /// Compiles with Go `filepath.Match` rules (no `**`: two stars are two `*`).
    pub(crate) fn go(pattern: &str) -> Result<Glob> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut k = 0;
        while k < chars.len() {
            let ch = chars[k];
            k += 1;
            match ch {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Quest),
                '\\' => match chars.get(k) {
                    None => return Err(bad(pattern, "trailing backslash")),
                    Some(&c) => {
                        toks.push(Tok::Lit(c));
                        k += 1;
                    }
                },
                '[' => {
                    let (tok, next) = parse_class(pattern, &chars, k)?;
                    toks.push(tok);
                    k = next;
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob {
            toks,
            class_matches_slash: false,
        })
    }

    /// Compiles with Go rules plus `**` as zero or more whole path components
    /// (used for `COPY --parents` sources).
    pub(crate) fn go_doublestar(pattern: &str) -> Result<Glob> {
        let mut toks = Vec::new();
        let parts: Vec<&str> = pattern.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if *part == "**" {
                toks.push(if last { Tok::AnyRest } else { Tok::AnyDirs });
                continue;
            }
            toks.extend(Glob::go(part)?.toks);
            if !last {
                toks.push(Tok::Lit('/'));
            }
        }
        Ok(Glob {
            toks,
            class_matches_slash: false,
        })
    }

    pub(crate) fn from_tokens(toks: Vec<Tok>, class_matches_slash: bool) -> Glob {
        Glob {
            toks,
            class_matches_slash,
        }
    }

    /// Whether the whole of `path` matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let p: Vec<char> = path.chars().collect();
        let n = p.len();
        // next[j]: do toks[i+1..] match p[j..]; cur[j]: do toks[i..] match p[j..].
        let mut next = vec![false; n + 1];
        next[n] = true;
        for tok in self.toks.iter().rev() {
            let mut cur = vec![false; n + 1];
            match tok {
                Tok::AnyRest => cur.iter_mut().for_each(|c| *c = true),
                Tok::AnyDirs => {
                    // Zero components, or any text up to and including a '/'.
                    let mut through_slash = false;
                    for j in (0..=n).rev() {
                        if j < n && p[j] == '/' && next[j + 1] {
                            through_slash = true;
                        }
                        cur[j] = next[j] || through_slash;
                    }
                }
                Tok::Star => {
                    cur[n] = next[n];
                    for j in (0..n).rev() {
                        cur[j] = next[j] || (p[j] != '/' && cur[j + 1]);
                    }
                }
                _ => {
                    for j in 0..n {
                        cur[j] = next[j + 1] && self.one(tok, p[j]);
                    }
                }
            }
            next = cur;
        }
        next[0]
    }

    fn one(&self, tok: &Tok, c: char) -> bool {
        match tok {
            Tok::Lit(l) => *l == c,
            Tok::Quest => c != '/',
            Tok::Class { negated, ranges } => {
                if c == '/' && !self.class_matches_slash {
                    return false;
                }
                ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
            }
            _ => false,
        }
    }

    /// Parses `[`-class syntax for callers building their own token lists.
    pub(crate) fn class_at(pattern: &str, chars: &[char], k: usize) -> Result<(Tok, usize)> {
        parse_class(pattern, chars, k)
    }
}

/// Go `path.Clean`: the shortest lexically equivalent path (no `.`, no `x/..`, no `//`,
/// no trailing `/`); `""` becomes `"."`; a rooted path keeps its leading `/`.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if matches!(out.last(), Some(&last) if last != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Whether `s` contains characters that make it a Go `filepath.Match` pattern.
pub(crate) fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '[', '\\'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_table() {
        // Facts from Go's filepath.Match documentation and test table.
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("*x", "xxx", true),
            ("arr[[]0].txt", "arr[0].txt", true),
            ("index.?s", "index.ts", true),
            ("a[^a]b", "a/b", false),
        ];
        for (pat, s, want) in cases {
            let g = Glob::go(pat).unwrap();
            assert_eq!(g.matches(s), *want, "Match({pat:?}, {s:?})");
        }
    }

    #[test]
    fn go_bad_patterns() {
        for pat in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(Glob::go(pat).is_err(), "{pat:?} should be a bad pattern");
        }
    }

    #[test]
    fn doublestar_components() {
        let g = Glob::go_doublestar("src/**/*.txt").unwrap();
        for (s, want) in [
            ("src/a.txt", true),
            ("src/x/b.txt", true),
            ("src/x/y/c.txt", true),
            ("srcx/a.txt", false),
            ("src/a.go", false),
        ] {
            assert_eq!(g.matches(s), want, "{s}");
        }
    }

    #[test]
    fn clean_like_go() {
        for (i, o) in [
            ("", "."),
            ("a/./b/", "a/b"),
            ("a//b", "a/b"),
            ("a/../..", ".."),
            ("/../x", "/x"),
            ("./", "."),
            ("../a/../b", "../b"),
            ("/", "/"),
        ] {
            assert_eq!(clean_path(i), o, "{i:?}");
        }
    }
}
