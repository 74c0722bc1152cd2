//! Splitting one assembled instruction line into keyword, flags and the
//! argument chain, with BuildKit's per-instruction argument parsers
//! (`line_parsers.go`, `split_command.go`). Pure string work, no I/O.
//!
//! Deliberate difference: BuildKit scans flags and the HEALTHCHECK type byte
//! by byte, so the UTF-8 continuation bytes 0x85 and 0xA0 count as spaces and
//! non-ASCII flag text is re-encoded as Latin-1. We scan characters, which
//! keeps `--mount=target=/données` intact. No golden file depends on it.

use super::error::{Location, ParseError};
use super::node::{go_is_space, Heredoc, Node};

/// BuildKit's `reWhitespace`: `[\t\v\f\r ]+`.
fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{0B}' | '\u{0C}' | '\r' | ' ')
}

/// Go `regexp.Split(s, n)` on `[\t\v\f\r ]+`, for n = 2 or all (-1).
pub(crate) fn split_ws(s: &str, limit: Option<usize>) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        if limit.is_some_and(|n| out.len() + 1 == n) {
            out.push(rest);
            return out;
        }
        match rest.find(is_re_ws) {
            None => {
                out.push(rest);
                return out;
            }
            Some(start) => {
                out.push(&rest[..start]);
                let after = &rest[start..];
                let end = after.find(|c| !is_re_ws(c)).unwrap_or(after.len());
                rest = &after[end..];
            }
        }
    }
}

/// The keyword, the flags and the trimmed argument text of one line.
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_ws(line.trim_matches(go_is_space), Some(2));
    let keyword = parts[0].to_string();
    if parts.len() < 2 {
        return (keyword, Vec::new(), String::new());
    }
    let (args, flags) = extract_builder_flags(parts[1], escape);
    (keyword, flags, args.trim_matches(go_is_space).to_string())
}

/// Leading `--flag` words; quotes and escapes are removed inside flags.
fn extract_builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = if at_end { '\0' } else { chars[i].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_ascii_whitespace() || ch == '\u{0B}' {
                i += 1;
                continue;
            }
            let next_is_dash = chars.get(i + 1).is_some_and(|&(_, c)| c == '-');
            if ch != '-' || !next_is_dash {
                return (&line[chars[i].0..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_ascii_whitespace() || ch == '\u{0B}' {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&line[chars[i].0..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                i += 1;
                continue;
            }
            let mut c = ch;
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                i += 1;
                c = chars[i].1;
            }
            word.push(c);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            i += 1;
            continue;
        }
        let mut c = ch;
        if ch == escape {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            i += 1;
            c = chars[i].1;
        }
        word.push(c);
        i += 1;
    }
    ("", words)
}

/// BuildKit's `parseWords`: split on unquoted whitespace, keeping quotes and
/// escape characters in the words.
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = if at_end { '\0' } else { chars[i] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if go_is_space(ch) {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        let mut c = ch;
        if phase == Phase::Word {
            if go_is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                i += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(ch);
                i += 1;
                c = chars[i];
            }
            word.push(c);
            i += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if i + 1 == chars.len() {
                phase = Phase::Word;
                i += 1;
                continue;
            }
            word.push(ch);
            i += 1;
            c = chars[i];
        }
        word.push(c);
        i += 1;
    }
    words
}

/// Outcome of trying the JSON (exec) form.
enum Json {
    Array(Vec<String>),
    /// Not a JSON array: the caller falls back to the shell/list form.
    Text,
    NotStringArray,
}

fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start_matches(go_is_space);
    if !rest.starts_with('[') {
        return Json::Text;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(rest) {
        Err(_) => Json::Text,
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStringArray,
                }
            }
            Json::Array(out)
        }
    }
}

/// The argument chain and whether it was JSON; errors carry `line`.
type Args = Result<(Vec<Node>, bool), ParseError>;

fn words(v: impl IntoIterator<Item = impl Into<String>>) -> Vec<Node> {
    v.into_iter().map(Node::word).collect()
}

fn not_string_array(keyword: &str, line: usize) -> ParseError {
    ParseError::NotStringArray {
        instruction: keyword.to_uppercase(),
        location: Location::line(line),
    }
}

fn maybe_json(rest: &str, keyword: &str, line: usize) -> Args {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        Json::Array(a) => Ok((words(a), true)),
        Json::NotStringArray => Err(not_string_array(keyword, line)),
        Json::Text => Ok((vec![Node::word(rest)], false)),
    }
}

fn maybe_json_to_list(rest: &str, keyword: &str, line: usize) -> Args {
    match parse_json(rest) {
        Json::Array(a) => Ok((words(a), true)),
        Json::NotStringArray => Err(not_string_array(keyword, line)),
        Json::Text => Ok((whitespace_list(rest), false)),
    }
}

fn whitespace_list(rest: &str) -> Vec<Node> {
    if rest.is_empty() {
        return Vec::new();
    }
    words(split_ws(rest, None))
}

fn name_val(rest: &str, keyword: &str, escape: char, line: usize) -> Args {
    let ws = parse_words(rest, escape);
    if ws.is_empty() {
        return Ok((Vec::new(), false));
    }
    if !ws[0].contains('=') {
        let parts = split_ws(rest, Some(2));
        if parts.len() < 2 {
            return Err(ParseError::MissingArguments {
                instruction: keyword.to_uppercase(),
                expected: "two arguments (a name and a value)".into(),
                location: Location::line(line),
            });
        }
        return Ok((words([parts[0], parts[1], ""]), false));
    }
    let mut out = Vec::with_capacity(ws.len() * 3);
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseError::MissingEquals {
                instruction: keyword.to_uppercase(),
                word: w,
                location: Location::line(line),
            });
        };
        out.extend(words([k, v, "="]));
    }
    Ok((out, false))
}

fn health(rest: &str, line: usize) -> Args {
    let sep = rest.find(|c: char| c.is_ascii_whitespace() || c == '\u{0B}');
    let sep = sep.unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let after = rest[sep..].trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\u{0B}');
    let (mut cmd, json) = maybe_json(after, "HEALTHCHECK", line)?;
    let mut out = vec![Node::word(&rest[..sep])];
    out.append(&mut cmd);
    Ok((out, json))
}

/// BuildKit's `newNodeFromLine`: one instruction node (no line numbers yet).
pub(crate) fn node_from_line(line: &str, escape: char, at: usize) -> Result<Node, ParseError> {
    let (keyword, flags, rest) = split_command(line, escape);
    let lower = keyword.to_ascii_lowercase();
    let (next, json) = match lower.as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(&rest, &lower, at)?,
        "run" | "cmd" | "entrypoint" | "shell" => maybe_json(&rest, &lower, at)?,
        "from" | "expose" => (whitespace_list(&rest), false),
        "arg" => (words(parse_words(&rest, escape)), false),
        "env" | "label" => name_val(&rest, &lower, escape, at)?,
        "healthcheck" => health(&rest, at)?,
        "maintainer" | "user" | "workdir" | "stopsignal" => {
            if rest.is_empty() {
                (Vec::new(), false)
            } else {
                (vec![Node::word(rest.as_str())], false)
            }
        }
        "onbuild" => {
            if rest.is_empty() {
                (Vec::new(), false)
            } else {
                let child = node_from_line(&rest, escape, at)?;
                let wrapper = Node {
                    children: vec![child],
                    ..Node::default()
                };
                (vec![wrapper], false)
            }
        }
        _ => (vec![Node::word("")], false),
    };
    Ok(Node {
        value: keyword,
        original: line.to_string(),
        flags,
        next,
        json,
        ..Node::default()
    })
}

/// True when this instruction may open heredocs (RUN, COPY, ADD in shell form).
pub(crate) fn can_contain_heredoc(node: &Node) -> bool {
    let k = node.value.to_ascii_lowercase();
    matches!(k.as_str(), "run" | "copy" | "add") && !node.json
}

/// Heredoc openers (`<<EOF`, `<<-EOF`, `3<<"EOF"`) among the words of `line`,
/// with empty bodies; the caller fills the bodies from the following lines.
///
/// BuildKit lexes the line with its shell lexer (raw quotes and escapes) and
/// then matches `^(\d*)<<(-?)([^<]*)$` on every word; this does the same with
/// a small quote-aware splitter, without variable expansion (a `$` in a
/// delimiter is kept literally).
pub(crate) fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    shell_words_raw(line)
        .iter()
        .filter_map(|w| parse_heredoc_word(w))
        .collect()
}

/// Words split on unquoted whitespace; quotes and backslashes kept.
fn shell_words_raw(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                word.push(c);
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '\'' | '"' => {
                in_word = true;
                word.push(c);
                let q = c;
                while let Some(n) = chars.next() {
                    word.push(n);
                    if n == q {
                        break;
                    }
                    if q == '"' && n == '\\' {
                        if let Some(m) = chars.next() {
                            word.push(m);
                        }
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

fn parse_heredoc_word(word: &str) -> Option<Heredoc> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let (name, quoted) = unquote(rest);
    if name.is_empty() {
        return None;
    }
    let file_descriptor = if digits > 0 {
        word[..digits].parse().ok()
    } else {
        None
    };
    Some(Heredoc {
        name,
        content: String::new(),
        expand: !quoted,
        chomp,
        file_descriptor,
    })
}

/// Removes shell quotes and backslash escapes; says whether any quote was seen.
fn unquote(s: &str) -> (String, bool) {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quoted = true;
                quote = Some(c);
            }
            (Some(q), c) if c == q => quote = None,
            (None, '\\') | (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    (out, quoted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_stop_at_first_plain_word_and_drop_bare_double_dash() {
        assert_eq!(
            split_command("COPY --doit=true -- foo /tmp/", '\\'),
            (
                "COPY".into(),
                vec!["--doit=true".into()],
                "foo /tmp/".into()
            )
        );
        assert_eq!(
            split_command("RUN --mount=type=cache,target=\"/a b\" make", '\\'),
            (
                "RUN".into(),
                vec!["--mount=type=cache,target=/a b".into()],
                "make".into()
            )
        );
        assert_eq!(
            split_command("CMD --doit -- [ ]", '\\'),
            ("CMD".into(), vec!["--doit".into()], "[ ]".into())
        );
    }

    #[test]
    fn heredoc_words_are_recognised_like_buildkit() {
        let h = heredocs_from_line("RUN <<EOF cat <<-\"END\" 3<<'X' echo \"<<NO\" a<<NO");
        let got: Vec<(&str, bool, bool, Option<u32>)> = h
            .iter()
            .map(|h| (h.name.as_str(), h.expand, h.chomp, h.file_descriptor))
            .collect();
        assert_eq!(
            got,
            vec![
                ("EOF", true, false, None),
                ("END", false, true, None),
                ("X", false, false, Some(3))
            ]
        );
        assert!(heredocs_from_line("RUN echo a << b").is_empty());
    }

    #[test]
    fn split_ws_matches_go_regexp_split() {
        assert_eq!(split_ws("a  b\tc", None), vec!["a", "b", "c"]);
        assert_eq!(split_ws("a  b\tc", Some(2)), vec!["a", "b\tc"]);
        assert_eq!(split_ws("a", Some(2)), vec!["a"]);
    }
}
