//! Raw nodes → typed [`Dockerfile`]: stages, instruction arguments, flags
//! checked per instruction, and errors located at the offending word.

use std::collections::BTreeMap;

use super::error::{Location, ParseError};
use super::flags::{check_flags, parse_go_duration, parse_mount, suggest, FlagValues, Kind};
use super::instruction::*;
use super::node::Node;
use super::raw::parse_raw;
use super::split::split_ws;

mod typed;
use typed::instruction;

/// Every instruction keyword, lowercase.
pub const KEYWORDS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// Dockerfile bytes as text, the way BuildKit reads them: a byte sequence that is
/// not UTF-8 (a Latin-1 `# Maintainer: José`, a LABEL value) becomes U+FFFD and
/// is not an error. BuildKit's Go code carries such bytes through and they come
/// out as U+FFFD (`ef bf bd`) in the image config (JSON) and in RUN's environment
/// and command line; a COPY source spelled with such a byte is not found there
/// either. Seen with the engine's BuildKit (20.10), `DOCKER_BUILDKIT=1 docker
/// build`: `LABEL who="Jos\xe9"` gives the label `"Jos\u{fffd}"`, and
/// `RUN printf "Jos\xe9" | od -tx1` prints `4a 6f 73 ef bf bd`. A leading BOM is
/// kept here and skipped by the parser, as BuildKit does.
pub fn decode(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parses a Dockerfile given as bytes, decoded with [`decode`] (never an
/// encoding error).
pub fn parse_bytes(bytes: &[u8]) -> Result<Dockerfile, ParseError> {
    parse(&decode(bytes))
}

/// Parses one ONBUILD trigger as an image config stores it (`RUN make`, heredoc bodies
/// on the lines after it), the way BuildKit does when a child build starts
/// (`initOnBuildTriggers`): on its own, with the default escape, exactly one
/// instruction. Line numbers in an error count the trigger's first line as 2.
pub fn parse_trigger(text: &str) -> Result<Instruction, ParseError> {
    let df = parse(&format!("FROM scratch\n{text}\n"))?;
    // Every instruction after our FROM, a FROM in the trigger included.
    let count = df
        .stages
        .iter()
        .map(|s| s.instructions.len())
        .sum::<usize>()
        + df.stages.len()
        - 1;
    let mut instructions = df.stages.into_iter().flat_map(|s| s.instructions);
    match (count, instructions.next()) {
        (1, Some(only)) => Ok(only.node),
        _ => Err(ParseError::TriggerNotOneInstruction {
            count,
            location: Location::line(2),
        }),
    }
}

/// Parses Dockerfile text into stages of typed, unexpanded instructions; the
/// first error, if any (see [`parse_all`] for every one).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    parse_all(text).map_err(|mut errors| errors.swap_remove(0))
}

/// Parses Dockerfile text and reports every error it finds, in line order, so
/// `xplat check` can list them all at once. An error in one instruction does not
/// hide errors in later ones; an error in line assembly (an unterminated heredoc,
/// a bad directive, a line over the size limit) stops parsing, as in BuildKit.
pub fn parse_all(text: &str) -> Result<Dockerfile, Vec<ParseError>> {
    let raw = parse_raw(text).map_err(|e| vec![e])?;
    let src = Source {
        lines: text.split('\n').collect(),
    };
    let mut errors = Vec::new();
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for node in &raw.root.children {
        let span = Span {
            start_line: node.start_line,
            end_line: node.end_line,
        };
        let keyword = node.value.to_ascii_lowercase();
        if keyword == "from" {
            let stage = match from_stage(node, span, stages.len(), &src) {
                Ok(stage) => stage,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            if let Some(name) = &stage.name {
                if let Some(&first_line) = names.get(name) {
                    errors.push(ParseError::DuplicateStageName {
                        name: name.clone(),
                        first_line,
                        location: src.find(span, name, true),
                    });
                }
                names.insert(name.clone(), span.start_line);
            }
            stages.push(stage);
            continue;
        }
        let instruction = match instruction(node, span, &src) {
            Ok(instruction) => instruction,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match stages.last_mut() {
            Some(stage) => {
                stage.span.end_line = span.end_line;
                stage.instructions.push(Spanned {
                    node: instruction,
                    span,
                });
            }
            None => match instruction {
                Instruction::Arg(decls) => {
                    meta_args.extend(decls.into_iter().map(|node| Spanned { node, span }))
                }
                other => errors.push(ParseError::InstructionBeforeFrom {
                    instruction: other.keyword().to_string(),
                    location: src.keyword(span),
                }),
            },
        }
    }
    if stages.is_empty() && errors.is_empty() {
        errors.push(ParseError::NoStage {
            location: Location::line(raw.root.end_line),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Dockerfile {
        directives: raw.directives,
        meta_args,
        stages,
        warnings: raw.warnings,
    })
}

/// The source lines, to turn "this word of this instruction" into a column.
struct Source<'a> {
    lines: Vec<&'a str>,
}

impl Source<'_> {
    /// First occurrence of `needle` within the span's lines (case-insensitive
    /// when asked); the instruction's first column when absent.
    fn find(&self, span: Span, needle: &str, ignore_case: bool) -> Location {
        for line in span.start_line..=span.end_line {
            let Some(text) = self.lines.get(line - 1) else {
                break;
            };
            let hay = if ignore_case {
                text.to_lowercase()
            } else {
                text.to_string()
            };
            let pat = if ignore_case {
                needle.to_lowercase()
            } else {
                needle.to_string()
            };
            if pat.is_empty() {
                break;
            }
            if let Some(byte) = hay.find(&pat) {
                if hay.len() == text.len() {
                    let column = text[..byte].chars().count() + 1;
                    return Location { line, column };
                }
            }
        }
        self.keyword(span)
    }

    /// The column of the instruction keyword (first non-blank character).
    fn keyword(&self, span: Span) -> Location {
        let text = self
            .lines
            .get(span.start_line.saturating_sub(1))
            .copied()
            .unwrap_or("");
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let column = text.chars().take_while(|c| c.is_whitespace()).count() + 1;
        Location {
            line: span.start_line.max(1),
            column,
        }
    }
}

fn args(node: &Node) -> Vec<String> {
    node.next.iter().map(|n| n.value.clone()).collect()
}

fn missing(kw: &str, expected: &str, loc: Location) -> ParseError {
    ParseError::MissingArguments {
        instruction: kw.to_string(),
        expected: expected.to_string(),
        location: loc,
    }
}

fn invalid(kw: &str, reason: impl Into<String>, loc: Location) -> ParseError {
    ParseError::InvalidArguments {
        instruction: kw.to_string(),
        reason: reason.into(),
        location: loc,
    }
}

fn flags_for(
    kw: &str,
    node: &Node,
    span: Span,
    src: &Source,
    allowed: &[(&'static str, Kind)],
) -> Result<FlagValues, ParseError> {
    check_flags(kw, &node.flags, allowed, &|flag| {
        src.find(span, flag, false)
    })
}

fn from_stage(node: &Node, span: Span, index: usize, src: &Source) -> Result<Stage, ParseError> {
    let flags = flags_for("FROM", node, span, src, &[("platform", Kind::Text)])?;
    let words = args(node);
    let name = match words.as_slice() {
        [] => return Err(missing("FROM", "an image or stage name", src.keyword(span))),
        [_] => None,
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            let valid = lower.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && lower
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(invalid(
                    "FROM",
                    format!("invalid stage name {name:?}: must start with a letter and contain only letters, digits, '-', '_' and '.'"),
                    src.find(span, name, false),
                ));
            }
            Some(lower)
        }
        _ => {
            return Err(invalid(
                "FROM",
                "expected FROM [--platform=<platform>] <image> [AS <name>]",
                src.keyword(span),
            ))
        }
    };
    Ok(Stage {
        index,
        name,
        base: words[0].clone(),
        platform: flags.text("platform"),
        span,
        instructions: Vec::new(),
    })
}

fn command(node_args: Vec<String>, json: bool) -> Command {
    if json {
        Command::Exec(node_args)
    } else {
        Command::Shell(node_args.into_iter().next().unwrap_or_default())
    }
}

fn key_values(node: &Node) -> Vec<KeyValue> {
    node.next
        .chunks(3)
        .map(|c| KeyValue {
            key: c[0].value.clone(),
            value: c.get(1).map(|n| n.value.clone()).unwrap_or_default(),
        })
        .collect()
}

fn one_string(
    kw: &str,
    node: &Node,
    span: Span,
    src: &Source,
    what: &str,
) -> Result<String, ParseError> {
    flags_for(kw, node, span, src, &[])?;
    args(node)
        .into_iter()
        .next()
        .ok_or_else(|| missing(kw, what, src.keyword(span)))
}
