//! The raw node tree, shaped like BuildKit's `parser.Node`, and its `dump()`.
//!
//! This level exists to be compared byte for byte with BuildKit's golden
//! `result` files; the planner never reads it (it reads [`super::Instruction`]).
//! Values here are exactly what BuildKit keeps: quotes and escapes intact.

use serde::Serialize;

/// A heredoc attached to a RUN, COPY or ADD line (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF` for `<<"EOF"`).
    pub name: String,
    /// The body: every line between the instruction and the terminator, each
    /// with its newline. Leading tabs are NOT stripped here even for `<<-`;
    /// see [`Heredoc::chomp`].
    pub content: String,
    /// False when any part of the delimiter was quoted (`<<"EOF"`, `<<'EOF'`):
    /// the body must then not be variable-expanded.
    pub expand: bool,
    /// True for `<<-EOF`: leading tabs are stripped from body lines and from
    /// the terminator line.
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), when one was written.
    pub file_descriptor: Option<u32>,
}

impl Heredoc {
    /// The body as the command will see it: leading tabs removed from every
    /// line when `chomp` is set, otherwise the content unchanged.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// One node of the raw tree. The root has an empty `value` and one child per
/// instruction; an instruction node has its keyword as `value` (as written)
/// and its arguments as the `next` chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Node {
    /// The keyword as written (instruction nodes) or one argument (chain nodes).
    pub value: String,
    /// The assembled logical line this instruction came from (continuations joined).
    pub original: String,
    /// Leading `--flag[=value]` words, with quotes and escapes already removed.
    pub flags: Vec<String>,
    /// The argument chain (BuildKit's `Next` linked list, flattened).
    pub next: Vec<Node>,
    /// Sub-instructions: the root's instructions, or ONBUILD's nested one.
    pub children: Vec<Node>,
    /// Heredocs, in the order they appear on the line.
    pub heredocs: Vec<Heredoc>,
    /// True when the arguments were written in JSON (exec) form.
    pub json: bool,
    /// Comment lines directly above this instruction, `#` and blanks trimmed.
    pub prev_comment: Vec<String>,
    /// First physical line (1-based) of this instruction; 0 for chain nodes.
    pub start_line: usize,
    /// Last physical line consumed, including continuations and heredoc bodies.
    pub end_line: usize,
}

impl Node {
    /// A chain node holding one argument.
    pub(crate) fn word(value: impl Into<String>) -> Node {
        Node {
            value: value.into(),
            ..Node::default()
        }
    }

    /// BuildKit's `Node.Dump()`: the S-expression form used by its golden
    /// `result` files (the test there appends one `\n`).
    pub fn dump(&self) -> String {
        let mut s = go_to_lower(&self.value);
        if !self.flags.is_empty() {
            s.push_str(" [");
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&quoted.join(" "));
            s.push(']');
        }
        for child in &self.children {
            s.push('(');
            s.push_str(&child.dump());
            s.push_str(")\n");
        }
        for n in &self.next {
            s.push(' ');
            if n.children.is_empty() {
                s.push_str(&go_quote(&n.value));
            } else {
                s.push_str(&n.dump());
            }
        }
        s.trim_matches(go_is_space).to_string()
    }
}

/// Go's `unicode.IsSpace`.
pub(crate) fn go_is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{85}' | '\u{A0}'
    ) || (c as u32 > 0xFF && c.is_whitespace())
}

/// Go's `strings.ToLower` for the cases that matter here (it maps rune by
/// rune, never to several runes as Rust's `to_lowercase` may).
fn go_to_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(one), None) => one,
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strconv.Quote`: `"`-delimited, Go escapes, `\xNN` for ASCII control
/// characters, `\uNNNN`/`\UNNNNNNNN` for other non-printable runes.
///
/// Rust's `{:?}` differs (`\0`, `\u{..}`, escaped `'`), hence this function.
/// Trade-off: Go decides "printable" from full Unicode category tables; we
/// approximate with the categories std exposes (controls, non-ASCII spaces,
/// the common format characters, private use). Unassigned code points are
/// printed as is where Go would escape them.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0B}' => out.push_str("\\v"),
            c if go_is_print(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7F}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximation of Go's `strconv.IsPrint` (see [`go_quote`]).
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF
        | 0xFFFE | 0xFFFF | 0x1BCA0..=0x1BCA3 | 0xE0001 | 0xE0020..=0xE007F);
    !format_or_private
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        let cases = [
            ("abc", r#""abc""#),
            (
                "\" \\ / \u{8} \u{c} \n \r \t \0",
                r#""\" \\ / \b \f \n \r \t \x00""#,
            ),
            ("♥☃", "\"♥☃\""),
            ("'", "\"'\""),
            ("\u{7f}\u{1b}", r#""\x7f\x1b""#),
            ("\u{a0}\u{200b}", r#""\u00a0\u200b""#),
            ("\u{10ffff}", r#""\U0010ffff""#),
            ("é日本", "\"é日本\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "input {input:?}");
        }
    }

    #[test]
    fn dump_nests_onbuild_and_prints_flags() {
        let inner = Node {
            value: "COPY".into(),
            flags: vec!["--from=x".into()],
            next: vec![Node::word("a"), Node::word("b")],
            ..Node::default()
        };
        let onbuild = Node {
            value: "ONBUILD".into(),
            next: vec![Node {
                children: vec![inner],
                ..Node::default()
            }],
            ..Node::default()
        };
        assert_eq!(onbuild.dump(), r#"onbuild (copy ["--from=x"] "a" "b")"#);
    }

    #[test]
    fn heredoc_body_chomps_tabs_only_when_asked() {
        let mut h = Heredoc {
            name: "EOF".into(),
            content: "\t\tone\n  two\n".into(),
            expand: true,
            chomp: false,
            file_descriptor: None,
        };
        assert_eq!(h.body(), "\t\tone\n  two\n");
        h.chomp = true;
        assert_eq!(h.body(), "one\n  two\n");
    }
}
