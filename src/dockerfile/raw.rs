//! Line assembly: physical lines → logical instruction lines → raw [`Node`]s,
//! following BuildKit's `parser.Parse` (directives, comments, continuations,
//! empty continuation lines, heredoc bodies, line numbers).

use std::collections::BTreeSet;

use serde::Serialize;

use super::error::{Location, ParseError};
use super::node::{go_is_space, Node};
use super::split::{can_contain_heredoc, heredocs_from_line, node_from_line};

/// Longest physical line BuildKit's scanner accepts, in bytes.
pub const MAX_LINE_BYTES: usize = 65535;

/// Parser directives from the top of the file (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=` value (the frontend image BuildKit would use), if given.
    pub syntax: Option<String>,
    /// The escape character: `\` by default, or `` ` ``.
    pub escape: char,
    /// `# check=` (lint configuration); the default when not given.
    pub check: CheckDirective,
}

/// `# check=skip=<rules>|all[;error=<bool>]`, BuildKit's lint directive
/// (`linter.ParseLintOptions`): rules to skip by name, or all of them, and whether
/// findings fail the build. As in BuildKit, the value splits at the first `;` only,
/// keys are `skip` and `error`, and anything else is an error.
///
/// `xplat check` honours it: a skipped rule is not reported (`PlanError`, a plan
/// that cannot be made, is never skipped), and `error=true` makes every finding
/// an error. Rule names are BuildKit's where a rule corresponds; the list is in
/// `plan::lint`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckDirective {
    /// `skip=Rule1,Rule2`: the rule names, trimmed, as written.
    pub skip: Vec<String>,
    /// `skip=all`.
    pub skip_all: bool,
    /// `error=true`: findings are errors.
    pub error: bool,
}

/// What is wrong with a `# check=` value, in BuildKit's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckOptionError {
    /// An option without `=`.
    #[error("invalid check option {part:?}")]
    NoValue {
        /// The option as written.
        part: String,
    },
    /// `error=` with a value Go's `strconv.ParseBool` refuses.
    #[error("failed to parse check option {part:?}")]
    NotABool {
        /// The option as written.
        part: String,
    },
    /// An option other than `skip` and `error`.
    #[error("invalid check option {key:?}")]
    UnknownKey {
        /// Its name.
        key: String,
    },
}

impl CheckDirective {
    /// Parses the directive's value.
    pub fn parse(value: &str) -> Result<CheckDirective, CheckOptionError> {
        let mut out = CheckDirective::default();
        let value = value.trim();
        if value.is_empty() {
            return Ok(out);
        }
        for part in value.splitn(2, ';') {
            let Some((key, v)) = part.split_once('=') else {
                return Err(CheckOptionError::NoValue { part: part.into() });
            };
            match key.trim() {
                "skip" => {
                    let v = v.trim();
                    if v == "all" {
                        out.skip_all = true;
                    } else {
                        out.skip = v.split(',').map(|r| r.trim().to_string()).collect();
                    }
                }
                // Go's strconv.ParseBool.
                "error" => {
                    out.error = match v.trim() {
                        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                        _ => return Err(CheckOptionError::NotABool { part: part.into() }),
                    }
                }
                other => return Err(CheckOptionError::UnknownKey { key: other.into() }),
            }
        }
        Ok(out)
    }

    /// Whether findings of `rule` are to be left out.
    pub fn skips(&self, rule: &str) -> bool {
        self.skip_all || self.skip.iter().any(|r| r == rule)
    }
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: CheckDirective::default(),
        }
    }
}

/// A non-fatal finding, e.g. an empty continuation line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// BuildKit's lint rule name (`NoEmptyContinuation`), which `# check=skip=` names.
    pub rule: &'static str,
    /// One-line summary, as BuildKit words it.
    pub short: String,
    /// Longer explanation.
    pub detail: String,
    /// Documentation link.
    pub url: String,
    /// Line the warning is about.
    pub location: Location,
}

/// What the raw level produces: the node tree plus what was learnt on the way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawDockerfile {
    /// Root node: empty value, one child per instruction, lines of the first
    /// and last instruction.
    pub root: Node,
    /// Directives in effect.
    pub directives: Directives,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
}

struct DirectiveParser {
    done: bool,
    seen: BTreeSet<String>,
}

impl DirectiveParser {
    /// Feeds one (newline-trimmed, left-trimmed) line; BuildKit's
    /// `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`.
    fn feed(&mut self, line: &str, d: &mut Directives, at: usize) -> Result<(), ParseError> {
        if self.done {
            return Ok(());
        }
        let Some((key, value)) = match_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if !self.seen.insert(key.clone()) {
            return Err(ParseError::DuplicateDirective {
                name: key,
                location: Location::line(at),
            });
        }
        match key.as_str() {
            "escape" => {
                d.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(ParseError::InvalidEscape {
                            value: value.to_string(),
                            location: Location::line(at),
                        })
                    }
                }
            }
            "syntax" => d.syntax = Some(value.to_string()),
            _ => {
                d.check = CheckDirective::parse(value).map_err(|reason| {
                    ParseError::InvalidCheckDirective {
                        value: value.to_string(),
                        reason: reason.to_string(),
                        location: Location::line(at),
                    }
                })?
            }
        }
        Ok(())
    }
}

fn match_directive(line: &str) -> Option<(&str, &str)> {
    let blanks = |s: &str| s.trim_start_matches([' ', '\t']).len();
    let rest = line.strip_prefix('#')?;
    let rest = &rest[rest.len() - blanks(rest)..];
    let key_len = rest
        .char_indices()
        .take_while(|&(i, c)| {
            if i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if key_len == 0 {
        return None;
    }
    let (key, rest) = rest.split_at(key_len);
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let value = rest.trim_matches([' ', '\t']);
    (!value.is_empty()).then_some((key, value))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(raw: &str) -> bool {
    trim_newline(raw)
        .trim_start_matches(go_is_space)
        .starts_with('#')
}

/// Removes a trailing escape (and blanks after it) unless it is itself
/// escaped; returns the line and whether the instruction ends here.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let body = line.trim_end_matches([' ', '\t']);
    if let Some(before) = body.strip_suffix(escape) {
        if !before.ends_with(escape) {
            return (before.to_string(), false);
        }
    }
    (line.to_string(), true)
}

/// Parses the text into BuildKit's raw node tree.
pub fn parse_raw(text: &str) -> Result<RawDockerfile, ParseError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    if let Some((i, l)) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| trim_newline_len(l) > MAX_LINE_BYTES)
    {
        return Err(ParseError::LineTooLong {
            len: trim_newline_len(l),
            location: Location::line(i + 1),
        });
    }
    let mut d = Directives::default();
    let mut dp = DirectiveParser {
        done: false,
        seen: BTreeSet::new(),
    };
    let mut root = Node::default();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut i = 0;
    let mut current = 0usize;

    while i < lines.len() {
        let mut raw = lines[i];
        i += 1;
        if current == 0 {
            raw = raw.strip_prefix('\u{FEFF}').unwrap_or(raw);
        }
        if is_comment(raw) {
            let c =
                trim_newline(raw).trim_start_matches(go_is_space)[1..].trim_matches(go_is_space);
            if c.is_empty() {
                comments.clear();
            } else {
                comments.push(c.to_string());
            }
        }
        let token = trim_newline(raw).trim_start_matches(go_is_space);
        dp.feed(token, &mut d, current + 1)?;
        current += 1;
        let token = if is_comment(token) { "" } else { token };
        let start = current;
        let (mut line, mut eol) = trim_continuation(token, d.escape);
        if eol && line.is_empty() {
            continue;
        }
        let mut empty_continuation = false;
        while !eol && i < lines.len() {
            let raw = lines[i];
            i += 1;
            current += 1;
            if is_comment(raw) {
                continue;
            }
            let token = trim_newline(raw);
            if token.trim_start_matches(go_is_space).is_empty() {
                empty_continuation = true;
                continue;
            }
            let (cont, end) = trim_continuation(token, d.escape);
            line.push_str(&cont);
            eol = end;
        }
        if empty_continuation {
            warnings.push(Warning {
                rule: "NoEmptyContinuation",
                short: format!("Empty continuation line found in: {line}"),
                detail: "Empty continuation lines will become errors in a future release".into(),
                url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/".into(),
                location: Location::line(current),
            });
        }
        let mut node = node_from_line(&line, d.escape, start)?;
        if can_contain_heredoc(&node) && line.contains("<<") {
            for mut heredoc in heredocs_from_line(&line) {
                let mut terminated = false;
                while i < lines.len() {
                    let body_line = lines[i];
                    i += 1;
                    current += 1;
                    let mut candidate = trim_newline(body_line);
                    if heredoc.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == heredoc.name {
                        terminated = true;
                        break;
                    }
                    heredoc.content.push_str(body_line);
                }
                if !terminated {
                    return Err(ParseError::UnterminatedHeredoc {
                        name: heredoc.name,
                        location: Location::line(start),
                    });
                }
                node.heredocs.push(heredoc);
            }
        }
        node.start_line = start;
        node.end_line = current;
        node.prev_comment = std::mem::take(&mut comments);
        if root.children.is_empty() {
            root.start_line = start;
        }
        root.end_line = current;
        root.children.push(node);
    }
    if root.children.is_empty() {
        return Err(ParseError::NoInstructions {
            location: Location::line(current),
        });
    }
    Ok(RawDockerfile {
        root,
        directives: d,
        warnings,
    })
}

fn trim_newline_len(l: &str) -> usize {
    l.strip_suffix('\n').unwrap_or(l).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(text: &str) -> String {
        parse_raw(text).unwrap().root.dump()
    }

    #[test]
    fn continuation_keeps_indent_and_skips_comments() {
        assert_eq!(
            dump("RUN echo hello \\\n# c\n  world\n"),
            "(run \"echo hello   world\")"
        );
    }

    #[test]
    fn escaped_escape_does_not_continue() {
        assert_eq!(dump("RUN a\\\\\nRUN b"), "(run \"a\\\\\\\\\")\n(run \"b\")");
    }

    #[test]
    fn heredoc_bodies_are_collected_and_lines_counted() {
        let raw =
            parse_raw("FROM a\nRUN <<EOF cat <<-END\nhello\nEOF\n\tworld\n\tEND\nRUN x\n").unwrap();
        let run = &raw.root.children[1];
        assert_eq!((run.start_line, run.end_line), (2, 6));
        assert_eq!(run.heredocs[0].content, "hello\n");
        assert_eq!(run.heredocs[1].content, "\tworld\n");
        assert_eq!(raw.root.children[2].start_line, 7);
    }

    #[test]
    fn heredoc_ignored_in_json_form_and_other_instructions() {
        let raw = parse_raw("FROM a\nRUN [\"cat\", \"<<EOF\"]\nENV a=<<EOF\n").unwrap();
        assert!(raw.root.children.iter().all(|n| n.heredocs.is_empty()));
    }

    #[test]
    fn directive_errors() {
        assert!(matches!(
            parse_raw("# escape=x\nFROM a"),
            Err(ParseError::InvalidEscape { .. })
        ));
        assert!(matches!(
            parse_raw("# syntax=a\n# SYNTAX=b\nFROM a"),
            Err(ParseError::DuplicateDirective { location, .. }) if location.line == 2
        ));
        let raw = parse_raw("# syntax=docker/dockerfile:1\n#check=skip=all\nFROM a").unwrap();
        assert_eq!(
            raw.directives.syntax.as_deref(),
            Some("docker/dockerfile:1")
        );
        assert!(raw.directives.check.skip_all);
        assert!(matches!(
            parse_raw("# check=skip=all;oops\nFROM a"),
            Err(ParseError::InvalidCheckDirective { location, .. }) if location.line == 1
        ));
    }

    #[test]
    fn check_directive_values() {
        let c = |v: &str| CheckDirective::parse(v);
        assert_eq!(c("").unwrap(), CheckDirective::default());
        let d = c("skip=JSONArgsRecommended, UndefinedVar").unwrap();
        assert_eq!(d.skip, ["JSONArgsRecommended", "UndefinedVar"]);
        assert!(d.skips("UndefinedVar") && !d.skips("StageNameCasing") && !d.error);
        let d = c(" skip = all ; error=true").unwrap();
        assert!(d.skip_all && d.error && d.skips("Anything"));
        assert!(c("error=TRUE").unwrap().error);
        assert!(!c("error=0").unwrap().error);
        assert_eq!(
            c("error=yes").unwrap_err().to_string(),
            "failed to parse check option \"error=yes\""
        );
        assert_eq!(
            c("skip").unwrap_err().to_string(),
            "invalid check option \"skip\""
        );
        assert_eq!(
            c("level=9").unwrap_err().to_string(),
            "invalid check option \"level\""
        );
        // BuildKit splits at the first `;` only: a third option is part of the second.
        assert!(c("skip=a;error=true;skip=b").is_err());
    }
}
