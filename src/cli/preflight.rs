//! Checks every command that reads a Dockerfile makes before doing anything slow:
//! the Dockerfile exists and parses, the plan can be made, the `-t` names are image
//! references. Errors that point into the Dockerfile are printed here, with the
//! source line and a caret; the others go back to `report()` with the exit code
//! they deserve (2 when the command line is at fault).
//!
//! `xplat build` runs these before it connects to the engine, so a typo in the
//! Dockerfile or a flag is reported the same way as by `xplat plan`, with no engine
//! needed.

use std::path::Path;

use super::options::Config;
use super::render_error::{error_label, usage, Advice};
use super::{stderr_style, Exit};
use crate::context::ContextError;
use crate::dockerfile::{self, Dockerfile, Location};
use crate::ops::Session;
use crate::plan::PlanError;
use crate::platform::Catalog;

/// Reads and parses `path`. A missing file is a usage error with a hint; a syntax
/// error is printed with its location and ends the command (exit 1).
pub fn read_dockerfile(path: &Path) -> anyhow::Result<(String, Dockerfile)> {
    // `-f -`: the Dockerfile is stdin (`xplat plan -f - . < Dockerfile`).
    let stdin = super::buildx::is_stdin(Some(path));
    let shown = if stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let read = if stdin {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
            .map_err(|e| anyhow::Error::new(e).context("reading the Dockerfile from stdin"))?;
        Ok(crate::dockerfile::decode(&bytes))
    } else {
        crate::context::read_dockerfile(path)
    };
    let text = match read {
        Ok(text) => text,
        Err(ContextError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let hint = "pass the Dockerfile with -f, or the context folder that holds it";
            let what = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
                    format!(
                        "no Dockerfile at {shown} (folder {} not found)",
                        dir.display()
                    )
                }
                _ => format!("no Dockerfile at {shown}"),
            };
            return Err(usage(Advice::new(what, hint)));
        }
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    // Every error at once (an error in one instruction does not hide the next), so a
    // user fixes a file in one round.
    let parsed = dockerfile::parse_all(&text);
    match parsed {
        Ok(df) => Ok((text, df)),
        Err(errors) => {
            let label = error_label(stderr_style(false));
            for err in &errors {
                eprint!(
                    "{label} {}",
                    dockerfile::render_diagnostic(&shown, &text, err)
                );
            }
            if errors.len() > 1 {
                eprintln!("{shown}: {} errors", errors.len());
            }
            Err(Exit::Failed.into())
        }
    }
}

/// A planner error for the user: `--target` and target-list mistakes are usage
/// errors; the rest point at a Dockerfile line, printed here (exit 1).
pub fn plan_failed(path: &Path, text: &str, err: PlanError) -> anyhow::Error {
    match (&err, err.location()) {
        (PlanError::UnknownTarget { .. }, _) => {
            anyhow::Error::new(err).context(Exit::Usage("--target".into()))
        }
        (_, Some(loc)) => {
            let label = error_label(stderr_style(false));
            eprint!(
                "{label} {}:{}: {err}\n{}",
                path.display(),
                loc.line,
                snippet(text, loc)
            );
            Exit::Failed.into()
        }
        (_, None) => anyhow::Error::new(err).context(Exit::Usage("--platform".into())),
    }
}

/// The source line of `loc` with a gutter, and a caret under its column when known.
pub fn snippet(text: &str, loc: Location) -> String {
    let Some(line) = text.split('\n').nth(loc.line.saturating_sub(1)) else {
        return String::new();
    };
    let line = line.trim_end_matches('\r');
    let gutter = loc.line.to_string();
    let pad = " ".repeat(gutter.len());
    let mut out = format!(" {gutter} | {line}\n");
    if loc.column > 0 {
        out.push_str(&format!(
            " {pad} | {}^\n",
            " ".repeat(loc.column.saturating_sub(1))
        ));
    }
    out
}

/// `-t NAME[:TAG]` must be an image reference a registry and the engine accept.
pub fn check_tag(tag: &str) -> anyhow::Result<()> {
    match tag.parse::<oci_client::Reference>() {
        Ok(_) => Ok(()),
        Err(e) => Err(anyhow::Error::new(Advice::new(
            format!("{tag:?} is not a valid image name: {e}"),
            "image names are lowercase, as in registry.example/team/app:1.0",
        ))
        .context(Exit::Usage("-t".into()))),
    }
}

/// What `xplat build` checks before it connects to the engine: the tags, the context
/// folder, the Dockerfile's syntax and the plan (made for the host as build platform;
/// the engine's own platform is used for the real one). Returns the command's session.
pub fn build(config: &Config, catalog: &Catalog) -> anyhow::Result<Session> {
    for tag in &config.tags {
        check_tag(tag)?;
    }
    if !config.context.is_dir() {
        return Err(usage(Advice::new(
            format!("build context {} is not a folder", config.context.display()),
            "pass the folder to build as the last argument (default: the current folder)",
        )));
    }
    let session = super::session::load(config, catalog)?;
    session
        .plan()
        .map_err(|e| plan_failed(&config.dockerfile, &session.text, e))?;
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_puts_the_caret_under_the_column() {
        let text = "FROM a\nCOPY --from=b x y\n";
        assert_eq!(
            snippet(text, Location { line: 2, column: 6 }),
            " 2 | COPY --from=b x y\n   |      ^\n"
        );
        assert_eq!(
            snippet(text, Location { line: 1, column: 0 }),
            " 1 | FROM a\n"
        );
        assert_eq!(snippet(text, Location { line: 9, column: 1 }), "");
    }

    #[test]
    fn tags_must_be_image_references() {
        assert!(check_tag("registry.example/app:1.0").is_ok());
        assert!(check_tag("app").is_ok());
        let err = check_tag("UPPER/App:1").unwrap_err();
        assert_eq!(super::super::render_error::exit_code(&err), 2);
        assert!(check_tag("a:b:c:@@").is_err());
    }
}
