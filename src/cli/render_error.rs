//! What people read when a command fails: an error chain becomes one `error:` line
//! (the chain joined, with repeats removed and no Rust type names), `caused by:` lines
//! with `-v`, and `hint:` lines taken from errors that carry advice; plus the exit
//! code. Pure: it formats and decides, the caller prints. Owns no library error type;
//! it only reads them.

use std::error::Error as StdError;
use std::ffi::OsStr;
use std::fmt;

use super::Exit;
use crate::context::ContextError;
use crate::dockerfile::ParseError;
use crate::engine::EngineError;

/// An error message with advice, used as `anyhow` context at the command line edge:
/// it reads as `what`, and the renderer prints `hint` on its own line.
#[derive(Debug)]
pub struct Advice {
    what: String,
    hint: String,
}

impl Advice {
    /// `what` happened; `hint` says what to do about it.
    pub fn new(what: impl Into<String>, hint: impl Into<String>) -> Advice {
        Advice {
            what: what.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl StdError for Advice {}

/// How stderr is written: `-v`, and whether colour is allowed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// `-v`: the cause chain line by line, and a backtrace when one was captured.
    pub verbose: bool,
    /// Colour the `error:` label (a terminal, and no `NO_COLOR`).
    pub color: bool,
    /// Print the backtrace when one was captured (`-v` with `RUST_BACKTRACE=1`).
    pub backtrace: bool,
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to a non-empty value
/// (<https://no-color.org>).
pub fn color_enabled(no_color: Option<&OsStr>, stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && no_color.map_or(true, |v| v.is_empty())
}

/// The `error:` label, bold red when colour is on.
pub fn error_label(style: Style) -> &'static str {
    if style.color {
        "\x1b[1;31merror\x1b[0m:"
    } else {
        "error:"
    }
}

/// Marks `err` as a usage error (exit 2) without adding words to its message.
pub fn usage(err: impl Into<anyhow::Error>) -> anyhow::Error {
    err.into().context(Exit::Usage(String::new()))
}

/// The exit code for `err`: 2 for usage errors, 130 when interrupted, else 1.
/// `Exit` may sit anywhere in the chain (it is often added as context).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    // `downcast_ref` sees `Exit` added as context at any depth; `chain()` sees it as a source.
    let exit = err
        .downcast_ref::<Exit>()
        .or_else(|| err.chain().find_map(|e| e.downcast_ref::<Exit>()));
    match exit {
        Some(Exit::Usage(_)) => 2,
        Some(Exit::Interrupted) => 130,
        Some(Exit::Failed) | None => 1,
    }
}

/// True when the chain holds a broken pipe (`xplat plan | head`), which is not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The text printed on stderr for `err` (ends with a newline; empty when the
/// error was already printed where it happened).
pub fn render(err: &anyhow::Error, style: Style) -> String {
    match err.downcast_ref::<Exit>() {
        Some(Exit::Failed) => return String::new(),
        Some(Exit::Interrupted) => return "xplat: interrupted\n".to_string(),
        _ => {}
    }
    let chain: Vec<&(dyn StdError + 'static)> = err.chain().collect();
    let parts = own_parts(&chain);
    let label = error_label(style);
    let mut out = String::new();
    if style.verbose {
        let mut parts = parts.iter();
        if let Some(first) = parts.next() {
            out.push_str(&format!("{label} {first}\n"));
        }
        for part in parts {
            out.push_str(&format!("  caused by: {part}\n"));
        }
    } else {
        out.push_str(&format!("{label} {}\n", parts.join(": ")));
    }
    // `Advice` added with `.context(...)` is seen by `downcast_ref`, not by `chain()`.
    let mut all = hints(&chain);
    if let Some(a) = err.downcast_ref::<Advice>() {
        if !all.contains(&a.hint) {
            all.insert(0, a.hint.clone());
        }
    }
    for hint in all {
        out.push_str(&format!("hint: {hint}\n"));
    }
    // anyhow captures one only under RUST_BACKTRACE/RUST_LIB_BACKTRACE; printing it
    // also needs -v, so a CI job with RUST_BACKTRACE=1 still gets plain messages.
    if style.backtrace {
        let bt = err.backtrace();
        if bt.status() == std::backtrace::BacktraceStatus::Captured {
            out.push_str(&format!("backtrace:\n{bt}\n"));
        }
    }
    out
}

/// Each error's own words: its message without the text of its source, which many
/// errors repeat (`"reading x: {source}"` and also `source()`), so that the joined
/// line says everything once.
fn own_parts(chain: &[&(dyn StdError + 'static)]) -> Vec<String> {
    let messages: Vec<String> = chain.iter().map(|e| message(*e)).collect();
    let raw: Vec<String> = chain.iter().map(|e| e.to_string()).collect();
    let mut parts: Vec<String> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let own = match (raw.get(i + 1), messages.get(i + 1)) {
            (Some(next_raw), Some(next_msg)) => {
                if raw[i] == *next_raw || msg == next_msg {
                    String::new()
                } else if let Some(head) = raw[i].strip_suffix(next_raw.as_str()) {
                    strip_os_error(head.trim_end_matches([' ', ':', ';']))
                } else if let Some(head) = msg.strip_suffix(next_msg.as_str()) {
                    head.trim_end_matches([' ', ':', ';']).to_string()
                } else {
                    msg.clone()
                }
            }
            _ => msg.clone(),
        };
        // Wrappers sometimes restate their cause's opening words ("pulling x: pulling x: …").
        let repeated = parts.last().is_some_and(|prev| *prev == own);
        if !own.is_empty() && !repeated {
            parts.push(own);
        }
    }
    if parts.is_empty() {
        parts.push(messages.last().cloned().unwrap_or_default());
    }
    without_restated_context(parts)
}

/// Drops the words a part repeats from the end of what came before it: an engine error
/// that says "pulling I for P: …" under a caller that already said "pulling I for P"
/// reads once. Works on `": "`-separated segments, within a part and across parts.
fn without_restated_context(parts: Vec<String>) -> Vec<String> {
    let mut said: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for part in parts {
        let mut kept: Vec<String> = Vec::new();
        for seg in part.split(": ") {
            said.push(seg.to_string());
            kept.push(seg.to_string());
            // The longest run of segments that just repeated the run before it.
            let n = said.len();
            if let Some(k) = (1..=n / 2)
                .rev()
                .find(|&k| said[n - 2 * k..n - k] == said[n - k..])
            {
                let drop = k.min(kept.len());
                said.truncate(n - k);
                kept.truncate(kept.len() - drop);
            }
        }
        if !kept.is_empty() {
            out.push(kept.join(": "));
        }
    }
    if out.is_empty() {
        out.push(said.join(": "));
    }
    out
}

/// An error's message in words: I/O errors lose their `(os error N)` tail.
fn message(e: &(dyn StdError + 'static)) -> String {
    let text = e.to_string();
    match e.downcast_ref::<std::io::Error>() {
        Some(io) => match io.kind() {
            std::io::ErrorKind::NotFound => "not found".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => strip_os_error(&text),
        },
        None => strip_os_error(&text),
    }
}

/// `"No such file or directory (os error 2)"` → `"No such file or directory"`.
fn strip_os_error(text: &str) -> String {
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text.to_string(),
    }
}

/// `T` itself or a `Box<T>` (thiserror sources are often boxed).
fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    e.downcast_ref::<T>()
        .or_else(|| e.downcast_ref::<Box<T>>().map(|b| &**b))
}

/// The advice carried by the chain, outermost first, without repeats.
fn hints(chain: &[&(dyn StdError + 'static)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in chain {
        let hint = if let Some(a) = e.downcast_ref::<Advice>() {
            Some(a.hint.clone())
        } else if let Some(p) = find::<ParseError>(*e) {
            p.hint()
        } else if let Some(EngineError::Unreachable { hint, .. }) = find::<EngineError>(*e) {
            Some(hint.clone())
        } else if let Some(c) = find::<ContextError>(*e) {
            context_hint(c)
        } else if let Some(r) = find::<crate::registry::RegistryError>(*e) {
            r.hint()
        } else if let Some(b) = find::<crate::ops::BuildError>(*e) {
            b.hint()
        } else {
            None
        };
        if let Some(h) = hint {
            if !out.contains(&h) {
                out.push(h);
            }
        }
    }
    out
}

fn context_hint(e: &ContextError) -> Option<String> {
    match e {
        ContextError::EscapesContext { .. } => Some(
            "COPY and ADD read only inside the build context: move the file into the context \
             folder, or pass a parent folder as the context and the Dockerfile with -f"
                .to_string(),
        ),
        ContextError::NoSourceMatch { .. } => Some(
            "paths are relative to the build context; check the spelling and .dockerignore"
                .to_string(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn plain(err: &anyhow::Error) -> String {
        render(err, Style::default())
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Repeats {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_message_that_repeats_its_source_says_it_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let err = anyhow::Error::new(Repeats {
            path: "ctx",
            source: io,
        })
        .context("building ctx");
        assert_eq!(plain(&err), "error: building ctx: reading ctx: not found\n");
        let verbose = render(
            &err,
            Style {
                verbose: true,
                ..Style::default()
            },
        );
        assert_eq!(
            verbose,
            "error: building ctx\n  caused by: reading ctx\n  caused by: not found\n"
        );
    }

    #[test]
    fn context_restated_by_a_cause_is_said_once() {
        let once = |parts: &[&str]| {
            without_restated_context(parts.iter().map(|p| p.to_string()).collect()).join(": ")
        };
        assert_eq!(
            once(&[
                "stage build, line 1: pulling a:1 for linux/arm64",
                "pulling a:1 for linux/arm64: denied"
            ]),
            "stage build, line 1: pulling a:1 for linux/arm64: denied"
        );
        assert_eq!(
            once(&["pushing r/app: pushing r/app: blob x"]),
            "pushing r/app: blob x"
        );
        assert_eq!(once(&["a: b", "a: b: c"]), "a: b: c");
        // Words that only look alike stay.
        assert_eq!(once(&["copying a", "copying b"]), "copying a: copying b");
    }

    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(strip_os_error("Broken thing (os error 32)"), "Broken thing");
        assert_eq!(strip_os_error("plain (not os)"), "plain (not os)");
    }

    #[test]
    fn advice_becomes_a_hint_line_and_usage_exits_2() {
        let err = anyhow::anyhow!("no such stage")
            .context(Advice::new("--target x", "xplat plan lists the stages"))
            .context(Exit::Usage("planning".into()));
        assert_eq!(
            plain(&err),
            "error: planning: --target x: no such stage\nhint: xplat plan lists the stages\n"
        );
        assert_eq!(exit_code(&err), 2);
    }

    #[test]
    fn exit_codes() {
        let io: anyhow::Error = std::io::Error::other("x").into();
        assert_eq!(exit_code(&io), 1);
        assert_eq!(exit_code(&Exit::Failed.into()), 1);
        assert_eq!(exit_code(&Exit::Interrupted.into()), 130);
        let deep = Err::<(), _>(Exit::Usage("bad".into()))
            .context("while doing")
            .unwrap_err();
        assert_eq!(exit_code(&deep), 2);
        assert_eq!(render(&Exit::Failed.into(), Style::default()), "");
    }

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        assert!(color_enabled(None, true));
        assert!(color_enabled(Some(OsStr::new("")), true));
        assert!(!color_enabled(Some(OsStr::new("1")), true));
        assert!(!color_enabled(None, false));
        assert_eq!(error_label(Style::default()), "error:");
    }

    #[test]
    fn broken_pipe_is_found_under_context() {
        let err = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("writing the plan");
        assert!(is_broken_pipe(&err));
        assert!(!is_broken_pipe(&anyhow::anyhow!("x")));
    }
}
