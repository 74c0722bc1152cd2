//! Golden plans: every `tests/data/plan/<case>/` holds a `Dockerfile`, an
//! `options.toml` and the expected `plan.json` (exactly what
//! `xplat plan --format json` prints), `plan.txt` (the text form) and
//! `check.txt` (what `xplat check` prints for the same options).
//! Regenerate on purpose with `XPLAT_BLESS=1 cargo test --test integration plan_golden`,
//! then review every changed file by eye.
//!
//! `options.toml`:
//! ```toml
//! platforms = ["linux/amd64", "linux/arm64"]   # --platform, in order
//! build_platform = "linux/amd64"               # default linux/amd64
//! target = "builder"                           # optional --target
//! emulated = 0                                 # expected emulated-job count (required)
//! jobs = 3                                     # expected job count (required)
//! [build_args]                                 # optional --build-arg
//! VERSION = "1.2"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use xplat::dockerfile::parse;
use xplat::plan::{lint, plan, render_diagnostics, render_text, PlanOptions};
use xplat::platform::{Catalog, Platform};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseOptions {
    platforms: Vec<String>,
    #[serde(default = "default_build")]
    build_platform: String,
    target: Option<String>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    emulated: usize,
    jobs: usize,
}

fn default_build() -> String {
    "linux/amd64".to_string()
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/plan")
}

/// Compares `actual` with the file at `path`, or writes it when blessing.
/// Returns a readable line diff on mismatch.
fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("XPLAT_BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    Some(line_diff(&expected, actual, path))
}

/// A small line diff: the common prefix and suffix are skipped, the differing
/// middle is shown as `-expected` / `+actual` lines with 3 lines of context.
fn line_diff(expected: &str, actual: &str, path: &Path) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let prefix = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let suffix = e[prefix..]
        .iter()
        .rev()
        .zip(a[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mut out = format!(
        "golden mismatch in {} (XPLAT_BLESS=1 regenerates):\n",
        path.display()
    );
    let ctx_start = prefix.saturating_sub(3);
    out.push_str(&format!("@@ line {} @@\n", ctx_start + 1));
    for l in &e[ctx_start..prefix] {
        out.push_str(&format!(" {l}\n"));
    }
    for l in &e[prefix..e.len() - suffix] {
        out.push_str(&format!("-{l}\n"));
    }
    for l in &a[prefix..a.len() - suffix] {
        out.push_str(&format!("+{l}\n"));
    }
    for l in e[e.len() - suffix..].iter().take(3) {
        out.push_str(&format!(" {l}\n"));
    }
    out
}

#[test]
fn plan_golden_corpus() {
    let catalog = Catalog::embedded();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 15,
        "the corpus has {} cases, want >= 15",
        dirs.len()
    );
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let opts: CaseOptions =
            toml::from_str(&std::fs::read_to_string(dir.join("options.toml")).unwrap())
                .unwrap_or_else(|e| panic!("{name}/options.toml: {e}"));
        let df = parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let targets = opts
            .platforms
            .iter()
            .map(|p| catalog.resolve(p).unwrap())
            .collect();
        let options = PlanOptions {
            targets,
            build_platform: Platform::parse(&opts.build_platform).unwrap().normalized(),
            build_args: opts.build_args.clone(),
            target_stage: opts.target.clone(),
            ..Default::default()
        };
        let p = plan(&df, &options, &catalog).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = plan(&df, &options, &catalog).unwrap();
        assert_eq!(p, again, "{name}: planning twice gives the same plan");
        let json = serde_json::to_string_pretty(&p).unwrap() + "\n";
        failures.extend(check_golden(&dir.join("plan.json"), &json));
        failures.extend(check_golden(&dir.join("plan.txt"), &render_text(&p)));
        let diags = lint(&df, &options, &catalog);
        let check = render_diagnostics("Dockerfile", &text, &diags);
        failures.extend(check_golden(&dir.join("check.txt"), &check));
        let (_, _, emulated) = p.mode_counts();
        if emulated != opts.emulated {
            failures.push(format!(
                "{name}: {emulated} emulated jobs, options.toml expects {}",
                opts.emulated
            ));
        }
        if p.jobs.len() != opts.jobs {
            failures.push(format!(
                "{name}: {} jobs, options.toml expects {}",
                p.jobs.len(),
                opts.jobs
            ));
        }
        // Every job's dependencies come before it (topological order).
        for job in &p.jobs {
            assert!(job.deps.iter().all(|d| d.0 < job.id.0), "{name}: order");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every ```` ```dockerfile ```` fence in README.md parses and plans for
/// amd64 and arm64 without emulation (the README teaches the native pattern).
#[test]
fn readme_dockerfiles_plan_without_emulation() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let catalog = Catalog::embedded();
    let mut found = 0;
    for block in readme.split("```dockerfile\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let df = parse(text).unwrap_or_else(|e| panic!("README fence: {e}\n{text}"));
        let options = PlanOptions {
            targets: vec![
                catalog.resolve("linux/amd64").unwrap(),
                catalog.resolve("linux/arm64").unwrap(),
            ],
            build_platform: Platform::new("linux", "amd64", ""),
            build_args: BTreeMap::new(),
            target_stage: None,
            ..Default::default()
        };
        let p = plan(&df, &options, &catalog).unwrap();
        assert_eq!(p.mode_counts().2, 0, "README fence emulates:\n{text}");
        assert!(
            lint(&df, &options, &catalog).is_empty(),
            "README fence lints:\n{text}"
        );
        found += 1;
    }
    assert!(found >= 1, "README.md has no dockerfile fence");
}

/// Every ```` ```toml ```` fence in README.md is a valid `xplat.toml` (the reference and
/// the quickstart must not teach a key xplat refuses).
#[test]
fn readme_toml_fences_are_valid_xplat_toml() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut fences = 0;
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("```toml\n") {
        let body = &rest[start + "```toml\n".len()..];
        let end = body.find("```").expect("closed fence");
        let text = &body[..end];
        xplat::cli::options::file::parse("README.md", text)
            .unwrap_or_else(|e| panic!("README toml fence: {e}\n{text}"));
        fences += 1;
        rest = &body[end..];
    }
    assert!(fences >= 2, "README.md has {fences} toml fences");
}
