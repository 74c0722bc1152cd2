//! `xplat engines`: every engine of `[engines]` and `--engine` (else the default one),
//! reachable or not, with its API version, the platforms it runs natively and those it
//! can only emulate, its storage driver (a warning without native diff, a note where xplat
//! commits from upper directories instead), CPUs and memory; as a table or `--format
//! json`. Exits 1 when an engine cannot be reached.
//!
//! Also the engines as `xplat plan` sees them offline ([`offline_slots`]): the declared
//! platforms, else the build platform; capacity unknown.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use super::args::{EnginesArgs, Format};
use super::options::engines::EngineSetting;
use super::Exit;
use crate::engine::fleet::{EngineSpec, Survey};
use crate::plan::EngineSlot;
use crate::platform::{Catalog, Platform};

/// The library's engine list from the configuration (a bad host is a usage error).
pub fn specs(settings: &[EngineSetting]) -> anyhow::Result<Vec<EngineSpec>> {
    settings
        .iter()
        .map(|s| {
            s.spec()
                .map_err(|e| Exit::Usage(format!("engine {}: {e}", s.name)).into())
        })
        .collect()
}

/// The engines as the planner sees them without connecting: declared platforms, else
/// `build` (an engine's own platform is known only once it answers).
pub fn offline_slots(settings: &[EngineSetting], build: &Platform) -> Vec<EngineSlot> {
    settings
        .iter()
        .map(|s| EngineSlot {
            name: s.name.clone(),
            native: if s.platforms.is_empty() {
                vec![build.normalized()]
            } else {
                s.platforms.iter().map(Platform::normalized).collect()
            },
            emulated: None,
            cpus: 0,
        })
        .collect()
}

/// `xplat engines`.
pub fn engines_command(
    args: &EnginesArgs,
    catalog: &Catalog,
    context: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let cwd = std::env::current_dir().context("finding the current folder")?;
    let settings = super::project::load_engines(&args.config, &args.engines, &env, &cwd, catalog)?;
    let specs = specs(&settings)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rows = rt.block_on(crate::ops::engines::survey(&specs, catalog, context));
    let text = match args.format {
        Format::Text => render_text(&rows),
        Format::Json => serde_json::to_string_pretty(&rows)? + "\n",
    };
    out.write_all(text.as_bytes())?;
    if rows.iter().all(|r| r.reachable) {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}

fn gigabytes(bytes: i64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// The table, then one warning line per engine without native diff and one per engine
/// that could not be reached.
pub fn render_text(rows: &[Survey]) -> String {
    let header = [
        "ENGINE", "ENDPOINT", "STATUS", "API", "NATIVE", "EMULATED", "STORAGE", "CPUS", "MEMORY",
    ];
    let mut table: Vec<Vec<String>> = vec![header.map(String::from).to_vec()];
    let mut notes = Vec::new();
    for r in rows {
        let mut native = Platform::format_list(&r.native);
        if r.declared && r.reachable {
            native.push_str(&format!(" (declared; runs {})", r.platform));
        }
        let emulated = match (&r.binfmt_handlers, r.emulated.is_empty()) {
            (None, _) if r.reachable => "unknown".to_string(),
            (_, true) => "-".to_string(),
            (_, false) => Platform::format_list(&r.emulated),
        };
        let dash = |s: String| if r.reachable { s } else { "-".into() };
        table.push(vec![
            r.name.clone(),
            r.endpoint.clone(),
            if r.reachable { "ok" } else { "unreachable" }.into(),
            dash(r.api_version.clone()),
            if native.is_empty() {
                "-".into()
            } else {
                native
            },
            dash(emulated),
            dash(r.storage_driver.clone()),
            dash(r.cpus.to_string()),
            dash(gigabytes(r.memory)),
        ]);
        if r.reachable && !r.native_diff && r.commits_upper_dirs {
            notes.push(format!(
                "note: {}: storage driver {} has no native diff: xplat commits from the \
                 containers' upper directories itself (about 0.1 s a commit)",
                r.name, r.storage_driver
            ));
        } else if r.reachable && !r.native_diff {
            notes.push(format!(
                "warning: {}: storage driver {} has no native diff: every commit walks the \
                 whole image (seconds on a 1 GB image); xplat commits there only where it pays",
                r.name, r.storage_driver
            ));
        }
        if let Some(e) = &r.error {
            notes.push(format!("error: {}: {e}", r.name));
        }
    }
    let mut widths = vec![0usize; header.len()];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    for n in notes {
        out.push_str(&n);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn the_table_says_what_runs_where_and_warns() {
        let local = Survey {
            name: "local".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
            reachable: true,
            error: None,
            api_version: "1.41".into(),
            server_version: "20.10.24".into(),
            platform: p("linux/amd64"),
            native: vec![p("linux/amd64")],
            declared: false,
            emulated: vec![p("linux/arm64")],
            binfmt_handlers: Some(vec!["qemu-aarch64".into()]),
            storage_driver: "fuse-overlayfs".into(),
            native_diff: false,
            commits_upper_dirs: false,
            cpus: 2,
            memory: 25_276_510_208,
        };
        let arm = Survey {
            name: "arm".into(),
            endpoint: "tcp://arm:2376 (TLS)".into(),
            native: vec![p("linux/arm64")],
            declared: true,
            ..Survey::unreachable(
                &EngineSpec {
                    name: "arm".into(),
                    endpoint: None,
                    platforms: vec![p("linux/arm64")],
                },
                &crate::engine::EngineError::Unreachable {
                    endpoint: "tcp://arm:2376 (TLS)".into(),
                    reason: "connection refused".into(),
                    hint: String::new(),
                },
            )
        };
        let cheap = Survey {
            commits_upper_dirs: true,
            ..local.clone()
        };
        let text = render_text(&[local, arm]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ENGINE"), "{text}");
        assert!(
            lines[1].contains("ok") && lines[1].contains("linux/arm64"),
            "{text}"
        );
        assert!(lines[1].contains("25.3 GB"), "{text}");
        assert!(lines[2].contains("unreachable"), "{text}");
        assert!(text.contains("warning: local: storage driver fuse-overlayfs has no native diff"));
        assert!(text.contains("error: arm: cannot reach"), "{text}");
        // Where xplat commits from upper directories, no warning: a note.
        let text = render_text(&[cheap]);
        assert!(!text.contains("warning"), "{text}");
        assert!(text.contains("note: local: storage driver fuse-overlayfs has no native diff: xplat commits from the containers' upper directories itself"), "{text}");
    }

    #[test]
    fn offline_engines_run_their_declared_platforms_else_the_build_platform() {
        let c = Catalog::embedded();
        let host = p("linux/amd64");
        let settings = vec![
            super::super::options::engines::parse_flag("local=", &c, &host).unwrap(),
            super::super::options::engines::parse_flag(
                "arm=tcp://a:1,platforms=linux/arm64",
                &c,
                &host,
            )
            .unwrap(),
        ];
        let slots = offline_slots(&settings, &host);
        assert_eq!(slots[0].native, [host.normalized()]);
        assert_eq!(slots[1].native, [p("linux/arm64").normalized()]);
    }
}
