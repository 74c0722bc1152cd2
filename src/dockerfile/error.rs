//! `ParseError`: every way a Dockerfile can be rejected, each with the
//! location it points at, and `render_diagnostic`, the text `xplat check`
//! prints (`file:line:col: message`, the source line, a caret, a hint).

use std::fmt;

use serde::Serialize;

/// A position in the Dockerfile: 1-based line and 1-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Location {
    /// 1-based physical line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
}

impl Location {
    /// A location at the start of `line`.
    pub fn line(line: usize) -> Location {
        Location {
            line: line.max(1),
            column: 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a Dockerfile could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No instruction at all (empty file, or only comments and blank lines).
    #[error("file with no instructions")]
    NoInstructions {
        /// End of the file.
        location: Location,
    },
    /// Instructions, but no FROM: there is no stage to build.
    #[error("no FROM instruction: a Dockerfile needs at least one stage")]
    NoStage {
        /// The last instruction.
        location: Location,
    },
    /// A physical line is longer than BuildKit's scanner accepts.
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong {
        /// Length of the line in bytes.
        len: usize,
        /// The line.
        location: Location,
    },
    /// A parser directive (`# escape=`, `# syntax=`, `# check=`) appears twice.
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective {
        /// Directive name, lowercased.
        name: String,
        /// The second occurrence.
        location: Location,
    },
    /// `# escape=` with something other than a backslash or a backtick.
    #[error("invalid escape token '{value}' does not match ` or \\")]
    InvalidEscape {
        /// The value given.
        value: String,
        /// The directive line.
        location: Location,
    },
    /// `# check=` with a value BuildKit's lint options parser refuses.
    #[error("failed to parse check options {value:?}: {reason}")]
    InvalidCheckDirective {
        /// The directive's value.
        value: String,
        /// What is wrong.
        reason: String,
        /// The directive line.
        location: Location,
    },
    /// A heredoc whose terminator line never comes.
    #[error("unterminated heredoc {name}: no line \"{name}\" before the end of the file")]
    UnterminatedHeredoc {
        /// Terminator that was expected.
        name: String,
        /// The instruction that opened it.
        location: Location,
    },
    /// A JSON array with an element that is not a string.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray {
        /// Instruction keyword.
        instruction: String,
        /// Where the array starts.
        location: Location,
    },
    /// An instruction this parser does not know.
    #[error("unknown instruction: {name}")]
    UnknownInstruction {
        /// The keyword as written.
        name: String,
        /// The closest known instruction, if one is close.
        suggestion: Option<String>,
        /// The keyword.
        location: Location,
    },
    /// A flag the instruction does not take.
    #[error(
        "unknown flag: --{flag} for {instruction} (allowed: {})",
        allowed_list(allowed)
    )]
    UnknownFlag {
        /// Instruction keyword, uppercase.
        instruction: String,
        /// Flag name without dashes.
        flag: String,
        /// The flags this instruction takes.
        allowed: Vec<String>,
        /// Closest allowed flag, if one is close.
        suggestion: Option<String>,
        /// The flag.
        location: Location,
    },
    /// A single-valued flag given twice.
    #[error("duplicate flag specified: --{flag}")]
    DuplicateFlag {
        /// Flag name without dashes.
        flag: String,
        /// The second occurrence.
        location: Location,
    },
    /// A flag whose value is missing or malformed.
    #[error("invalid value for --{flag}: {reason}")]
    InvalidFlagValue {
        /// Flag name without dashes.
        flag: String,
        /// What is wrong.
        reason: String,
        /// The flag.
        location: Location,
    },
    /// An instruction that needs arguments got none (or too few).
    #[error("{instruction} requires {expected}")]
    MissingArguments {
        /// Instruction keyword, uppercase.
        instruction: String,
        /// What it requires, e.g. "at least two arguments".
        expected: String,
        /// The instruction.
        location: Location,
    },
    /// Arguments of the wrong shape.
    #[error("{instruction}: {reason}")]
    InvalidArguments {
        /// Instruction keyword, uppercase.
        instruction: String,
        /// What is wrong.
        reason: String,
        /// The offending word or the instruction.
        location: Location,
    },
    /// An ENV/LABEL/ARG word without `=` among `name=value` words.
    #[error("syntax error - can't find = in {word:?}. Must be of the form: name=value")]
    MissingEquals {
        /// Instruction keyword, uppercase.
        instruction: String,
        /// The word.
        word: String,
        /// The word.
        location: Location,
    },
    /// An instruction other than ARG before the first FROM.
    #[error("{instruction} before the first FROM: only ARG may come before FROM")]
    InstructionBeforeFrom {
        /// Instruction keyword, uppercase.
        instruction: String,
        /// The instruction.
        location: Location,
    },
    /// Two stages with the same `AS` name.
    #[error("duplicate stage name {name:?} (first defined on line {first_line})")]
    DuplicateStageName {
        /// The name, lowercased.
        name: String,
        /// Where it was first used.
        first_line: usize,
        /// The second use.
        location: Location,
    },
    /// An ONBUILD trigger that BuildKit forbids (ONBUILD, FROM, MAINTAINER).
    #[error("{instruction} isn't allowed as an ONBUILD trigger")]
    InvalidOnbuildTrigger {
        /// The nested keyword, uppercase.
        instruction: String,
        /// The instruction.
        location: Location,
    },
    /// An ONBUILD trigger from an image config that is not exactly one instruction.
    #[error("onbuild trigger should be a single expression (found {count} instructions)")]
    TriggerNotOneInstruction {
        /// How many instructions the text holds (FROM lines included).
        count: usize,
        /// The trigger's first line.
        location: Location,
    },
}

fn allowed_list(allowed: &[String]) -> String {
    if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed
            .iter()
            .map(|a| format!("--{a}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl ParseError {
    /// Where in the source the error points.
    pub fn location(&self) -> Location {
        use ParseError::*;
        match self {
            NoInstructions { location }
            | NoStage { location }
            | LineTooLong { location, .. }
            | DuplicateDirective { location, .. }
            | InvalidEscape { location, .. }
            | InvalidCheckDirective { location, .. }
            | UnterminatedHeredoc { location, .. }
            | NotStringArray { location, .. }
            | UnknownInstruction { location, .. }
            | UnknownFlag { location, .. }
            | DuplicateFlag { location, .. }
            | InvalidFlagValue { location, .. }
            | MissingArguments { location, .. }
            | InvalidArguments { location, .. }
            | MissingEquals { location, .. }
            | InstructionBeforeFrom { location, .. }
            | DuplicateStageName { location, .. }
            | InvalidOnbuildTrigger { location, .. }
            | TriggerNotOneInstruction { location, .. } => *location,
        }
    }

    /// A one-line hint to print under the caret, when there is something to suggest.
    pub fn hint(&self) -> Option<String> {
        match self {
            ParseError::UnknownInstruction {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean {s}?")),
            ParseError::UnknownFlag {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean --{s}?")),
            ParseError::InstructionBeforeFrom { .. } => {
                Some("start the file with FROM <image> (ARG may precede it)".into())
            }
            ParseError::UnterminatedHeredoc { name, .. } => Some(format!(
                "end the heredoc with a line containing only {name}"
            )),
            ParseError::NoStage { .. } => Some("add FROM <image> after the ARGs".into()),
            _ => None,
        }
    }
}

/// The text `xplat check` prints for one error:
///
/// ```text
/// Dockerfile:3:1: unknown instruction: RUNN
///   3 | RUNN make
///     | ^
///   = hint: did you mean RUN?
/// ```
pub fn render_diagnostic(file_name: &str, source: &str, err: &ParseError) -> String {
    let loc = err.location();
    let mut out = format!("{file_name}:{}:{}: {err}\n", loc.line, loc.column);
    if let Some(text) = source.split('\n').nth(loc.line.saturating_sub(1)) {
        let text = text.strip_suffix('\r').unwrap_or(text);
        // Very long lines (a 1 MB line is legal input) are cut around the caret.
        let chars: Vec<char> = text.chars().collect();
        let col = loc.column.max(1) - 1;
        let start = col.saturating_sub(60);
        let end = chars.len().min(start + 120);
        let shown: String = chars[start.min(end)..end]
            .iter()
            .map(|&c| if c == '\t' { ' ' } else { c })
            .collect();
        let gutter = loc.line.to_string();
        let pad = " ".repeat(gutter.len());
        out.push_str(&format!(
            " {gutter} | {}{shown}\n",
            if start > 0 { "…" } else { "" }
        ));
        let caret_pad = " ".repeat(col - start + usize::from(start > 0));
        out.push_str(&format!(" {pad} | {caret_pad}^\n"));
    }
    if let Some(hint) = err.hint() {
        out.push_str(&format!("  = hint: {hint}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_points_at_the_column_and_hints() {
        let src = "FROM a\n  RUNN make\n";
        let err = ParseError::UnknownInstruction {
            name: "RUNN".into(),
            suggestion: Some("RUN".into()),
            location: Location { line: 2, column: 3 },
        };
        let text = render_diagnostic("Dockerfile", src, &err);
        assert_eq!(
            text,
            "Dockerfile:2:3: unknown instruction: RUNN\n 2 |   RUNN make\n   |   ^\n  = hint: did you mean RUN?\n"
        );
    }

    #[test]
    fn diagnostic_survives_a_location_past_the_end() {
        let err = ParseError::NoInstructions {
            location: Location::line(40),
        };
        let text = render_diagnostic("Dockerfile", "", &err);
        assert_eq!(text, "Dockerfile:40:1: file with no instructions\n");
    }
}
