//! Shell-word variable expansion with BuildKit's rules (`frontend/dockerfile/shell/lex.go`).
//!
//! This module owns `$VAR`, `${VAR}` and the modifiers `:-  -  :+  +  :?  ?  #  ##  %  %%  /  //`,
//! quote removal, the escape token (`\` or `` ` `` from the `# escape=` directive), word
//! splitting, and the record of which names were looked up. It is pure: it reads only the
//! [`Env`] it is given and touches nothing else.
//!
//! Which BuildKit mode an instruction needs (read from `dockerfile2llb/convert.go` and
//! `parser/parser.go`):
//! - ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults and
//!   `--platform` use the plain [`Expander::new`] with the file's escape token. EXPOSE splits
//!   into words ([`Expander::expand_words`]); the others take one word each.
//! - Heredoc bodies of COPY/ADD (`<<EOF` without quotes) use `Expander::new('\\')`
//!   `.with_skip_process_quotes(true)`: quotes are part of the file, only `$` expands.
//! - The RUN step's display name uses `.with_raw_quotes(true).with_skip_unset(true)`, and the
//!   parser's heredoc detection uses raw quotes, raw escapes and skip-unset. Both only shape
//!   text, never a value a build depends on.
//! - RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are not expanded: the shell does it at run time.
//!
//! Known divergences from BuildKit, all deliberate:
//! - Nesting of `${...}` is limited to [`MAX_NESTING`] levels (an error beyond), where Go's
//!   growable stack has no limit; a Rust stack would overflow first.
//! - In the version of `lex.go` read for this port, nested `processStopOn` calls share one word
//!   buffer, so `ProcessWords("a${X:-b}c")` appears to lose the `a`; each level here keeps its
//!   own buffer and gives `["abc"]`. `ProcessWord` (one string) is unaffected.
//! - Windows' case-insensitive names are the job of the [`Env`] given, not of this module.

mod lexer;
mod pattern;

use std::collections::{BTreeMap, BTreeSet};

/// Deepest `${...}` nesting accepted before [`ExpandError::TooDeep`].
pub const MAX_NESTING: usize = 200;

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, ExpandError>;

/// What went wrong while expanding one word. `column` is the 1-based character column, in
/// the word given, of the construct that failed (the `$` of a `${`, or the opening quote).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A `'` with no closing `'`.
    #[error("unexpected end of statement while looking for matching single-quote (opened at column {column})")]
    UnterminatedSingleQuote {
        /// Column of the opening quote.
        column: usize,
    },
    /// A `"` with no closing `"`.
    #[error("unexpected end of statement while looking for matching double-quote (opened at column {column})")]
    UnterminatedDoubleQuote {
        /// Column of the opening quote.
        column: usize,
    },
    /// `${` whose closing `}` never comes.
    #[error("syntax error: missing '}}' for the substitution at column {column}")]
    MissingBrace {
        /// Column of the `$`.
        column: usize,
    },
    /// `${}`, `${{...}`, `${:...}`.
    #[error("syntax error: bad substitution at column {column}")]
    BadSubstitution {
        /// Column of the `$`.
        column: usize,
    },
    /// A modifier BuildKit does not support, such as `${V:=x}`, `${V=x}`, `${V:#x}`, `${.}`.
    #[error("unsupported modifier ({modifier}) in substitution at column {column}")]
    UnsupportedModifier {
        /// The modifier text as BuildKit prints it (`:=`, `=`, `.`...).
        modifier: String,
        /// Column of the `$`.
        column: usize,
    },
    /// `${V/pattern` with no second `/`.
    #[error("syntax error: missing '/' in ${{}} at column {column}")]
    MissingSlash {
        /// Column of the `$`.
        column: usize,
    },
    /// `${V:?message}` with V unset or empty, or `${V?message}` with V unset.
    /// `message` is the expanded message, or BuildKit's default text.
    #[error("{name}: {message}")]
    Required {
        /// The variable name.
        name: String,
        /// The expanded message (`is not allowed to be unset` / `empty` when none was given).
        message: String,
        /// Column of the `$`.
        column: usize,
    },
    /// A pattern of `#`, `%` or `/` with a `\` not followed by `*`, `?`, `\`, `}` or `/`.
    #[error("invalid pattern ({pattern}) in substitution at column {column}: invalid escape '\\{escaped}'")]
    InvalidEscape {
        /// The pattern after expansion.
        pattern: String,
        /// The character after the `\` (empty at the end of the pattern).
        escaped: String,
        /// Column of the `$`.
        column: usize,
    },
    /// The pattern compiled to a regular expression larger than the regex engine allows.
    #[error("invalid pattern ({pattern}) in substitution at column {column}: pattern too large")]
    PatternTooLarge {
        /// The pattern after expansion.
        pattern: String,
        /// Column of the `$`.
        column: usize,
    },
    /// More than [`MAX_NESTING`] nested `${...}`.
    #[error("substitutions nested more than {MAX_NESTING} deep at column {column}")]
    TooDeep {
        /// Column of the `$` that went too deep.
        column: usize,
    },
}

impl ExpandError {
    /// The 1-based character column of the construct that failed.
    pub fn column(&self) -> usize {
        match self {
            Self::UnterminatedSingleQuote { column }
            | Self::UnterminatedDoubleQuote { column }
            | Self::MissingBrace { column }
            | Self::BadSubstitution { column }
            | Self::UnsupportedModifier { column, .. }
            | Self::MissingSlash { column }
            | Self::Required { column, .. }
            | Self::InvalidEscape { column, .. }
            | Self::PatternTooLarge { column, .. }
            | Self::TooDeep { column } => *column,
        }
    }
}

/// Where variable values come from. `None` means unset; `Some("")` is set but empty.
pub trait Env {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// An ordered environment: when a name appears twice, the later pair wins (like `ENV`).
impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

/// The full outcome of expanding one word.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded {
    /// The word with variables expanded and quotes processed (BuildKit `ProcessWord`).
    pub value: String,
    /// The same, split on unquoted whitespace (BuildKit `ProcessWords`).
    pub words: Vec<String>,
    /// Names that were looked up and found (set, possibly empty).
    pub matched: BTreeSet<String>,
    /// Names that were looked up and are unset.
    pub unmatched: BTreeSet<String>,
}

/// A shell-word expander: BuildKit's `shell.Lex`. Cheap to copy; holds no state between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expander {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_process_quotes: bool,
    skip_unset: bool,
}

impl Default for Expander {
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Expander {
    /// An expander with the Dockerfile's escape token (`\` by default, or `` ` ``).
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset: false,
        }
    }

    /// The escape token.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`).
    pub fn with_raw_quotes(mut self, on: bool) -> Self {
        self.raw_quotes = on;
        self
    }

    /// Keep escape tokens in the output (BuildKit `RawEscapes`).
    pub fn with_raw_escapes(mut self, on: bool) -> Self {
        self.raw_escapes = on;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit `SkipProcessQuotes`, heredoc bodies).
    pub fn with_skip_process_quotes(mut self, on: bool) -> Self {
        self.skip_process_quotes = on;
        self
    }

    /// Leave references to unset names as written, `$X` / `${X...}` (BuildKit `SkipUnsetEnv`).
    pub fn with_skip_unset(mut self, on: bool) -> Self {
        self.skip_unset = on;
        self
    }

    /// Expand one word without splitting it (BuildKit `ProcessWord`).
    pub fn expand_word<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<String> {
        self.expand_word_with_matches(word, env).map(|e| e.value)
    }

    /// Expand and split on unquoted whitespace, including whitespace that came from an
    /// unquoted expansion (BuildKit `ProcessWords`).
    pub fn expand_words<E: Env + ?Sized>(&self, word: &str, env: &E) -> Result<Vec<String>> {
        self.expand_word_with_matches(word, env).map(|e| e.words)
    }

    /// Expand and report the names looked up (BuildKit `ProcessWordWithMatches`).
    pub fn expand_word_with_matches<E: Env + ?Sized>(
        &self,
        word: &str,
        env: &E,
    ) -> Result<Expanded> {
        lexer::Lexer::new(self, word, &env).run()
    }
}

#[cfg(test)]
mod tests;
