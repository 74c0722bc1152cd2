//! `xplat prune [--dry-run] [--older-than DURATION] [--project [DIR]] [--filter …]`:
//! flags → [`PruneOptions`] (pure, tested here), one library call, one summary line (and
//! with `--dry-run`, one line per thing that would go).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::args::PruneArgs;
use super::build::{human_bytes, plural, runtime};
use super::render_error::{usage, Advice};
use crate::engine::DockerEngine;
use crate::exec::prune::{parse_duration, PruneFilter};
use crate::ops::{self, PruneOptions, PruneOutcome};

/// The prune options the flags ask for, at time `now` (Unix seconds), with relative
/// `--project` folders taken from `cwd`.
pub fn prune_options(args: &PruneArgs, now: i64, cwd: &Path) -> anyhow::Result<PruneOptions> {
    let mut filter = PruneFilter::default();
    let bad_duration = |flag: &str, e: crate::exec::prune::NotADuration| {
        usage(Advice::new(
            format!("{flag}: {e}"),
            "durations are a number and a unit: s, m, h, d or w (24h, 7d, 1h30m)",
        ))
    };
    let mut cutoff = |secs: i64| {
        let at = now - secs;
        filter.created_before = Some(filter.created_before.map_or(at, |c: i64| c.min(at)));
    };
    if let Some(d) = &args.older_than {
        cutoff(parse_duration(d).map_err(|e| bad_duration("--older-than", e))?);
    }
    let mut labels = Vec::new();
    for f in &args.filter {
        match f.split_once('=') {
            Some(("until", d)) => {
                cutoff(parse_duration(d).map_err(|e| bad_duration("--filter until", e))?)
            }
            Some(("label", kv)) if !kv.is_empty() => labels.push(match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (kv.to_string(), None),
            }),
            _ => {
                return Err(usage(Advice::new(
                    format!("--filter {f:?} is not supported"),
                    "use until=DURATION or label=KEY[=VALUE]",
                )))
            }
        }
    }
    filter.labels = labels;
    if let Some(dir) = &args.project {
        let dir = cwd.join(dir);
        let canonical = std::fs::canonicalize(&dir).map_err(|_| {
            usage(Advice::new(
                format!("--project {}: no such folder", dir.display()),
                "name the build context folder of the project (default: the current folder)",
            ))
        })?;
        filter.project = Some(canonical.display().to_string());
    }
    Ok(PruneOptions {
        filter,
        dry_run: args.dry_run,
    })
}

/// What `xplat prune` prints on stdout.
pub fn render(outcome: &PruneOutcome) -> String {
    let mut s = String::new();
    let verb = if outcome.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if outcome.dry_run {
        for item in &outcome.items {
            match item.bytes {
                Some(b) => s.push_str(&format!("{} {} ({})\n", item.kind, item.id, human_bytes(b))),
                None => s.push_str(&format!("{} {}\n", item.kind, item.id)),
            }
        }
    }
    s.push_str(&format!(
        "{verb} {} cache image{} ({}), {} cache volume{} ({}), {} leftover container{}; kept {} image{}\n",
        outcome.images,
        plural(outcome.images),
        human_bytes(outcome.image_bytes),
        outcome.volumes,
        plural(outcome.volumes),
        human_bytes(outcome.volume_bytes),
        outcome.containers,
        plural(outcome.containers),
        outcome.kept,
        plural(outcome.kept),
    ));
    s
}

/// `xplat prune`.
pub fn prune_command(
    args: &PruneArgs,
    quiet: bool,
    engine_context: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let cwd = std::env::current_dir().context("finding the current folder")?;
    let options = prune_options(args, now, &cwd)?;
    let rt = runtime()?;
    let outcome = rt.block_on(async {
        let engine = DockerEngine::connect_with_context(engine_context)
            .await
            .context("connecting to the Docker engine")?;
        ops::prune(&engine, &options)
            .await
            .context("pruning xplat's cache")
    })?;
    if !quiet || outcome.dry_run {
        out.write_all(render(&outcome).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::{Cli, Command};
    use clap::Parser;

    fn args(argv: &[&str]) -> PruneArgs {
        let mut full = vec!["xplat", "prune"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Prune(p) => p,
            _ => panic!("prune"),
        }
    }

    #[test]
    fn flags_become_a_filter() {
        let cwd = tempfile::tempdir().unwrap();
        let canonical = std::fs::canonicalize(cwd.path()).unwrap();
        let o = prune_options(
            &args(&["--dry-run", "--older-than", "7d", "--project"]),
            1_000_000,
            cwd.path(),
        )
        .unwrap();
        assert!(o.dry_run);
        assert_eq!(o.filter.created_before, Some(1_000_000 - 604_800));
        assert_eq!(
            o.filter.project.as_deref(),
            Some(canonical.to_str().unwrap())
        );
        // docker's vocabulary: the earlier cut-off wins; labels with and without value.
        let o = prune_options(
            &args(&[
                "--older-than",
                "1h",
                "--filter",
                "until=2h",
                "--filter",
                "label=team=web",
                "--filter",
                "label=ci",
            ]),
            10_000,
            cwd.path(),
        )
        .unwrap();
        assert_eq!(o.filter.created_before, Some(10_000 - 7200));
        assert_eq!(
            o.filter.labels,
            vec![
                ("team".to_string(), Some("web".to_string())),
                ("ci".to_string(), None)
            ]
        );
        assert!(!o.dry_run);
        assert_eq!(
            prune_options(&args(&[]), 0, cwd.path()).unwrap(),
            PruneOptions::default()
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        let cwd = tempfile::tempdir().unwrap();
        for argv in [
            &["--older-than", "soon"][..],
            &["--filter", "dangling=true"],
            &["--project", "no/such/dir"],
        ] {
            let err = prune_options(&args(argv), 0, cwd.path()).unwrap_err();
            assert_eq!(super::super::render_error::exit_code(&err), 2, "{argv:?}");
        }
    }

    #[test]
    fn a_dry_run_lists_what_would_go() {
        let outcome = PruneOutcome {
            dry_run: true,
            images: 1,
            image_bytes: 1500,
            items: vec![ops::PruneItem {
                kind: "image",
                id: "sha256:abc".into(),
                bytes: Some(1500),
            }],
            ..PruneOutcome::default()
        };
        assert_eq!(
            render(&outcome),
            "image sha256:abc (1.5 KB)\nwould remove 1 cache image (1.5 KB), 0 cache volumes (0 B), 0 leftover containers; kept 0 images\n"
        );
    }
}
