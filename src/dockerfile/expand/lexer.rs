//! The character-level walk over one word: quotes, escapes, `$` and `${...}`.
//!
//! Mirrors `shellWord` in BuildKit's `lex.go` step for step, because the conformance tables
//! pin down its corner cases (an escape at the end is dropped, `$.` stays literal, a
//! `${X:-...` error at the end of input is reported as a missing `}`...).

use std::collections::BTreeSet;

use super::pattern;
use super::{Env, ExpandError, Expanded, Expander, Result, MAX_NESTING};

/// Words being split: BuildKit's `wordsStruct`.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    /// A character that splits the word when it is whitespace.
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            // Whitespace right after an empty quoted string ("" then space) leaves in_word set
            // and the buffer empty: nothing is emitted, as upstream.
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    /// Unquoted expansion output: split on its whitespace.
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    /// Quoted text: never split.
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

/// One expansion in progress.
pub(super) struct Lexer<'a> {
    opts: &'a Expander,
    env: &'a dyn Env,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(opts: &'a Expander, word: &str, env: &'a dyn Env) -> Self {
        let chars: Vec<char> = word.chars().collect();
        // Go's text/scanner drops a byte order mark at the very start of its input.
        let pos = usize::from(chars.first() == Some(&'\u{FEFF}'));
        Self {
            opts,
            env,
            chars,
            pos,
            raw_escapes: opts.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    pub(super) fn run(mut self) -> Result<Expanded> {
        let raw = self.opts.raw_escapes;
        let (value, words) = self.process_stop_on(None, raw)?;
        Ok(Expanded {
            value,
            words,
            matched: self.matched,
            unmatched: self.unmatched,
        })
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    /// 1-based column of the next character.
    fn column(&self) -> usize {
        self.pos + 1
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Process until `stop` (consumed) or the end of input. With a `stop`, reaching the end
    /// is an error; the callers turn it into the message that names what is missing.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.process_stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn process_stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        let quotes = !self.opts.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    words.add_string(&value);
                    result.push_str(&value);
                }
                '\'' if quotes => {
                    let value = self.process_single_quote()?;
                    words.add_raw_string(&value);
                    result.push_str(&value);
                }
                '"' if quotes => {
                    let value = self.process_double_quote()?;
                    words.add_raw_string(&value);
                    result.push_str(&value);
                }
                _ => {
                    self.next();
                    if ch == self.opts.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            // Placeholder column: every caller replaces this error by its own.
            Some(_) => Err(ExpandError::MissingBrace {
                column: self.column(),
            }),
            None => Ok((result, words.finish())),
        }
    }

    /// `'...'`: everything literal, no escapes.
    fn process_single_quote(&mut self) -> Result<String> {
        let column = self.column();
        let mut result = String::new();
        let open = self.next();
        if self.opts.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedSingleQuote { column }),
                Some('\'') => {
                    if self.opts.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"..."`: `$` expands; the escape token escapes only `"`, `$` and itself.
    fn process_double_quote(&mut self) -> Result<String> {
        let column = self.column();
        let mut result = String::new();
        let open = self.next();
        if self.opts.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnterminatedDoubleQuote { column }),
                Some('"') => {
                    self.next();
                    if self.opts.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.opts.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // Loops back to the unterminated-quote error.
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.opts.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String> {
        let column = self.column();
        if self.depth >= MAX_NESTING {
            return Err(ExpandError::TooDeep { column });
        }
        self.depth += 1;
        let out = self.process_dollar_inner(column);
        self.depth -= 1;
        out
    }

    fn process_dollar_inner(&mut self, column: usize) -> Result<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandError::MissingBrace { column }),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution { column }),
            Some(_) => {}
        }
        let name = self.process_name();
        let ch = self.next();
        let mut modifier = go_rune_string(ch);
        match ch {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.opts.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':') => {
                let op = self.next();
                modifier.push_str(&go_rune_string(op));
                self.process_modifier(&name, op, true, modifier, column)
            }
            Some('+' | '-' | '?' | '#' | '%') => {
                self.process_modifier(&name, ch, false, modifier, column)
            }
            Some('/') => self.process_replace(&name, column),
            // Upstream says "unsupported modifier (\u{FFFD})" for `${abc`; both are errors,
            // this one names the real problem.
            None => Err(ExpandError::MissingBrace { column }),
            _ => Err(ExpandError::UnsupportedModifier { modifier, column }),
        }
    }

    /// `${name<op>word}` and `${name:<op>word}`, with `op` already consumed.
    fn process_modifier(
        &mut self,
        name: &str,
        op: Option<char>,
        null_is_unset: bool,
        modifier: String,
        column: usize,
    ) -> Result<String> {
        let is_pattern = matches!(op, Some('#' | '%'));
        if null_is_unset && is_pattern {
            return Err(ExpandError::UnsupportedModifier { modifier, column });
        }
        let (word, _) = self
            .process_stop_on(Some('}'), is_pattern)
            .map_err(|e| self.at_end_means(e, ExpandError::MissingBrace { column }))?;
        let value = self.lookup(name);
        if value.is_none() && self.opts.skip_unset {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let Some(op) = op.filter(|c| matches!(c, '-' | '+' | '?' | '#' | '%')) else {
            // `${V:=x}`, `${V:Y}`: looked up first, then refused, as upstream.
            return Err(ExpandError::UnsupportedModifier { modifier, column });
        };
        let unset_or_null = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            '-' => Ok(if unset_or_null {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset_or_null { String::new() } else { word }),
            '?' => {
                if !unset_or_null {
                    return Ok(value.unwrap_or_default());
                }
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(ExpandError::Required {
                    name: name.to_string(),
                    message,
                    column,
                })
            }
            _ => {
                // '#' or '%': one character shortest, doubled longest.
                let (greedy, pat) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                let trimmed = if op == '%' {
                    pattern::trim_suffix(pat, &value, greedy)
                } else {
                    pattern::trim_prefix(pat, &value, greedy)
                };
                trimmed.map_err(|e| e.into_error(pat, column))
            }
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`, after the first `/`.
    fn process_replace(&mut self, name: &str, column: usize) -> Result<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pat, _) = self
            .process_stop_on(Some('/'), true)
            .map_err(|e| self.at_end_means(e, ExpandError::MissingSlash { column }))?;
        let (replacement, _) = self
            .process_stop_on(Some('}'), true)
            .map_err(|e| self.at_end_means(e, ExpandError::MissingBrace { column }))?;
        let value = self.lookup(name);
        if value.is_none() && self.opts.skip_unset {
            // Upstream writes a single '/' here even for '//'.
            return Ok(format!("${{{name}/{pat}/{replacement}}}"));
        }
        let value = value.unwrap_or_default();
        pattern::replace(&value, &pat, &replacement, all).map_err(|e| e.into_error(&pat, column))
    }

    /// Upstream reports any failure of a nested part that ends at the end of input as the
    /// missing delimiter; failures elsewhere pass through.
    fn at_end_means(&self, err: ExpandError, at_end: ExpandError) -> ExpandError {
        if self.peek().is_none() {
            at_end
        } else {
            err
        }
    }

    /// A name: letters, digits and `_`; or a run of digits (positional); or one special
    /// parameter character. Positional and special parameters are never set, so expand to "".
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_go_digit(ch) {
                while let Some(d) = self.peek().filter(|c| is_go_digit(*c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(is_go_letter(ch) || is_go_digit(ch) || ch == '_') {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// Go's `string(rune)`: the end of input (-1) prints as U+FFFD.
fn go_rune_string(ch: Option<char>) -> String {
    ch.unwrap_or('\u{FFFD}').to_string()
}

/// Go `unicode.IsLetter`: general category L.
pub(super) fn is_go_letter(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_alphabetic();
    }
    category_matches(&LETTER, r"\A\p{L}\z", ch)
}

/// Go `unicode.IsDigit`: general category Nd.
pub(super) fn is_go_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    category_matches(&DIGIT, r"\A\p{Nd}\z", ch)
}

static LETTER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
static DIGIT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();

fn category_matches(cell: &std::sync::OnceLock<regex::Regex>, re: &str, ch: char) -> bool {
    let re = cell.get_or_init(|| regex::Regex::new(re).expect("a valid Unicode class"));
    let mut buf = [0u8; 4];
    re.is_match(ch.encode_utf8(&mut buf))
}
