//! Container output as lines: the attach stream delivers chunks that may split or
//! join lines; [`LineSplitter`] reassembles them per stream. Pure.

use serde::{Deserialize, Serialize};

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of container output, without its line terminator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLine {
    /// The stream.
    pub stream: OutputStream,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
}

/// Splits chunks of one stream into lines, keeping a partial last line until more
/// arrives or [`LineSplitter::finish`] is called.
#[derive(Debug)]
pub struct LineSplitter {
    stream: OutputStream,
    pending: Vec<u8>,
}

impl LineSplitter {
    /// A splitter for `stream`.
    pub fn new(stream: OutputStream) -> Self {
        LineSplitter {
            stream,
            pending: Vec::new(),
        }
    }

    /// Feeds a chunk; returns the lines it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<OutputLine> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let rest = self.pending.split_off(pos + 1);
            let mut line = std::mem::replace(&mut self.pending, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            lines.push(self.line(&line));
        }
        lines
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<OutputLine> {
        if self.pending.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.pending);
        Some(self.line(&line))
    }

    fn line(&self, bytes: &[u8]) -> OutputLine {
        OutputLine {
            stream: self.stream,
            text: String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: Vec<OutputLine>) -> Vec<String> {
        lines.into_iter().map(|l| l.text).collect()
    }

    #[test]
    fn chunks_split_and_joined_become_lines() {
        let mut s = LineSplitter::new(OutputStream::Stdout);
        assert_eq!(texts(s.push(b"hel")), Vec::<String>::new());
        assert_eq!(texts(s.push(b"lo\nwor")), vec!["hello"]);
        assert_eq!(texts(s.push(b"ld\r\n\nx")), vec!["world", ""]);
        assert_eq!(s.finish().map(|l| l.text), Some("x".to_string()));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn lines_keep_their_stream_and_replace_bad_utf8() {
        let mut s = LineSplitter::new(OutputStream::Stderr);
        let lines = s.push(b"a\xff\n");
        assert_eq!(lines[0].stream, OutputStream::Stderr);
        assert_eq!(lines[0].text, "a\u{fffd}");
    }
}
