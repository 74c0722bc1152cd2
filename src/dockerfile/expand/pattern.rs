//! Glob patterns of `${V#pat}`, `${V%pat}` and `${V/pat/repl}`: `*`, `?`, and `\*` `\?` `\\`.
//!
//! BuildKit turns the pattern into a Go regular expression (leftmost-first semantics, `.`
//! not matching a newline) and uses Go's `ReplaceAllString`, which expands `$0`/`${0}` in the
//! replacement. The `regex` crate has the same leftmost-first semantics, so the pattern is
//! translated the same way; the replace-all loop and `$` expansion are written out here to
//! follow Go's rules exactly (Rust's `replace_all` differs on `$name` and empty matches).
//! Bracket expressions (`[a-z]`) are literal, as upstream.

use regex::{Regex, RegexBuilder};

use super::lexer::{is_go_digit, is_go_letter};
use super::ExpandError;

/// Why a pattern could not be used; the lexer adds the pattern and column.
#[derive(Debug)]
pub(super) enum PatternError {
    /// `\` followed by something other than `*`, `?`, `\`, `}` or `/` (empty at the end).
    InvalidEscape(String),
    /// The regex engine's size limit.
    TooLarge,
}

impl PatternError {
    pub(super) fn into_error(self, pattern: &str, column: usize) -> ExpandError {
        let pattern = pattern.to_string();
        match self {
            Self::InvalidEscape(escaped) => ExpandError::InvalidEscape {
                pattern,
                escaped,
                column,
            },
            Self::TooLarge => ExpandError::PatternTooLarge { pattern, column },
        }
    }
}

type Result<T> = std::result::Result<T, PatternError>;

/// Translate a glob to a regex. `greedy` picks `.*` over `.*?` for `*`; `anchored` adds `^`.
fn to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner, which upstream walks the pattern with, skips a leading BOM.
    if chars.peek() == Some(&'\u{FEFF}') {
        chars.next();
    }
    while let Some(tok) = chars.next() {
        match tok {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` only protect the delimiter of `${}`; the `\` is dropped.
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(c @ ('*' | '?' | '\\')) => out.push_str(&regex::escape(&c.to_string())),
                    Some(c) => return Err(PatternError::InvalidEscape(c.to_string())),
                    None => return Err(PatternError::InvalidEscape(String::new())),
                }
            }
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0u8; 4]))),
        }
    }
    RegexBuilder::new(&out)
        .build()
        .map_err(|_| PatternError::TooLarge)
}

/// `${V#pat}` (shortest) and `${V##pat}` (longest): remove a matching prefix.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String> {
    let re = to_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${V%pat}` and `${V%%pat}`: as upstream, reverse pattern and value, trim the prefix,
/// reverse back (a regex cannot find the shortest rightmost match directly).
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverse a pattern, keeping each `\x` escape pair in order: `a\*c` gives `c\*a`.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && i + 1 < chars.len() {
            out.push((chars[i + 1], true));
            i += 2;
        } else {
            out.push((chars[i], false));
            i += 1;
        }
    }
    out.iter()
        .rev()
        .flat_map(|&(c, escaped)| {
            let esc = escaped.then_some('\\');
            esc.into_iter().chain(std::iter::once(c))
        })
        .collect()
}

/// `${V/pat/repl}` (first match, replacement literal) and `${V//pat/repl}` (every match,
/// Go `ReplaceAllString`: `$0`, `${0}` insert the match, `$$` is `$`).
pub(super) fn replace(value: &str, pattern: &str, replacement: &str, all: bool) -> Result<String> {
    let re = to_regex(pattern, true, false)?;
    if !all {
        return Ok(match re.find(value) {
            Some(m) => format!("{}{replacement}{}", &value[..m.start()], &value[m.end()..]),
            None => value.to_string(),
        });
    }
    let mut out = String::new();
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some(m) = re.find_at(value, search) else {
            break;
        };
        out.push_str(&value[last_end..m.start()]);
        // No replacement for an empty match right after the previous match.
        if m.end() > last_end || m.start() == 0 {
            go_expand(&mut out, replacement, m.as_str());
        }
        last_end = m.end();
        let width = value[search..].chars().next().map_or(0, char::len_utf8);
        if search + width > m.end() {
            search += width;
        } else if search + 1 > m.end() {
            search += 1;
        } else {
            search = m.end();
        }
    }
    out.push_str(&value[last_end..]);
    Ok(out)
}

/// Go `Regexp.Expand` for a regex whose only group is the whole match.
fn go_expand(out: &mut String, template: &str, whole: &str) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match extract(rest) {
            None => out.push('$'),
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(whole);
                }
                // Other numbers and names refer to groups that do not exist: nothing.
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// Go's `extract`: `name` or `{name}` after a `$`, name being Unicode letters, digits and `_`.
fn extract(s: &str) -> Option<(&str, &str)> {
    let (body, brace) = match s.strip_prefix('{') {
        Some(b) => (b, true),
        None => (s, false),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| is_go_letter(c) || is_go_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let mut after = &body[len..];
    if brace {
        after = after.strip_prefix('}')?;
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_keeps_escape_pairs() {
        assert_eq!(reverse_pattern(r"a\*c"), r"c\*a");
        assert_eq!(reverse_pattern(r"a\\b"), r"b\\a");
        assert_eq!(reverse_pattern(r"ab\"), r"\ba");
        assert_eq!(reverse_pattern("한국어"), "어국한");
    }

    #[test]
    fn globs_translate_like_upstream() {
        assert_eq!(trim_prefix("*x*y", "xxyy", false).unwrap(), "y");
        assert_eq!(trim_prefix("*x*y", "xxyy", true).unwrap(), "");
        assert_eq!(trim_suffix(r"\**", "xx**", true).unwrap(), "xx");
        assert_eq!(trim_suffix("b*", "foobarbaz", false).unwrap(), "foobar");
        assert_eq!(trim_suffix("b*", "foobarbaz", true).unwrap(), "foo");
        // Brackets are literal; '?' and '*' do not cross a newline (Go's '.').
        assert_eq!(trim_prefix("[a]", "[a]b", false).unwrap(), "b");
        assert_eq!(trim_prefix("a?c", "a\nc!", false).unwrap(), "a\nc!");
        assert!(matches!(
            trim_prefix(r"\x", "x", false),
            Err(PatternError::InvalidEscape(e)) if e == "x"
        ));
        assert!(matches!(
            trim_prefix("a\\", "a", false),
            Err(PatternError::InvalidEscape(e)) if e.is_empty()
        ));
    }

    #[test]
    fn replace_all_follows_go_empty_match_rules() {
        // Go: regexp.MustCompile("").ReplaceAllString("abc", "-") == "-a-b-c-"
        assert_eq!(replace("abc", "", "-", true).unwrap(), "-a-b-c-");
        // Glob "*" is ".*": one match of all, then the empty match at the end is skipped.
        assert_eq!(replace("abc", "*", "-", true).unwrap(), "-");
        assert_eq!(replace("abxxc", "x*", "-", true).unwrap(), "ab-");
        assert_eq!(replace("ababa", "ab", "X", true).unwrap(), "XXa");
        assert_eq!(replace("ababa", "ab", "X", false).unwrap(), "Xaba");
        assert_eq!(replace("", "", "w", false).unwrap(), "w");
    }

    #[test]
    fn replace_all_expands_dollar_like_go() {
        assert_eq!(replace("foo", "o", "[$0]", true).unwrap(), "f[o][o]");
        assert_eq!(replace("foo", "o", "[${0}]", true).unwrap(), "f[o][o]");
        assert_eq!(replace("foo", "o", "$$", true).unwrap(), "f$$");
        assert_eq!(replace("foo", "o", "$1x", true).unwrap(), "f");
        assert_eq!(replace("foo", "o", "$", true).unwrap(), "f$$");
        assert_eq!(replace("foo", "o", "${0", true).unwrap(), "f${0${0");
        assert_eq!(replace("foo", "o", "$-", true).unwrap(), "f$-$-");
        // The single replacement is literal.
        assert_eq!(replace("foo", "o", "$0", false).unwrap(), "f$0o");
    }
}
