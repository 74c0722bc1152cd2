//! What each template's comments and files promise, checked without an engine: the emulated
//! job count `xplat plan` shows (as written, and with the optional "#~" stage switched on),
//! the `.dockerignore`, and the args file that points it at the offline stand-ins.

use xplat::context::ignore::Ignore;
use xplat::init;

use super::args_file;
use crate::support::{run_ok, xplat, TestDir};

/// The template's comment text (`#~` lines excluded), its lines joined by spaces.
fn comment_text(dockerfile: &str) -> String {
    dockerfile
        .lines()
        .filter(|l| l.starts_with('#') && !l.starts_with("#~"))
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(count, platforms)` from "<lead> N emulated job(s) for PLATFORMS" in `text`.
fn promised(text: &str, lead: &str) -> Option<(usize, String)> {
    let rest = &text[text.find(lead)? + lead.len()..];
    let mut words = rest.split_whitespace();
    let count = words.next()?.parse().ok()?;
    let (Some("emulated"), Some("jobs" | "job"), Some("for"), Some(platforms)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    Some((
        count,
        platforms.trim_end_matches(['.', ',', ';']).to_string(),
    ))
}

/// `xplat plan --platform PLATFORMS --build-platform linux/amd64` of `dockerfile`: the
/// emulated job count of its summary line ("N jobs: a native, b assembled, c emulated").
fn plan_emulated(dockerfile: &str, platforms: &str) -> (usize, String) {
    let dir = TestDir::new(&[("Dockerfile", dockerfile)]);
    let out = run_ok(
        xplat()
            .args([
                "plan",
                "--platform",
                platforms,
                "--build-platform",
                "linux/amd64",
            ])
            .arg(dir.path()),
    );
    let summary = out
        .stdout
        .lines()
        .find(|l| l.contains(" jobs: "))
        .unwrap_or_else(|| panic!("no summary line in\n{}", out.stdout));
    let emulated = summary
        .rsplit(", ")
        .next()
        .and_then(|s| s.strip_suffix(" emulated"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the emulated count of {summary:?}"));
    (emulated, out.stdout)
}

/// The template with its "#~" lines uncommented and the final stage copying from the stage
/// they define (what the comments tell a user to do for native modules).
fn with_optional_stage(dockerfile: &str) -> Option<String> {
    let stage = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("#~ FROM "))?
        .rsplit_once(" AS ")?
        .1
        .trim()
        .to_string();
    let text: String = dockerfile
        .lines()
        .map(|l| l.strip_prefix("#~ ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        text.contains("--from=deps "),
        "the final stage copies --from=deps"
    );
    Some(text.replace("--from=deps ", &format!("--from={stage} ")))
}

#[test]
fn xplat_plan_shows_the_emulated_job_count_each_template_states() {
    for t in init::templates() {
        let dockerfile = init::render(&t, "demo")[0].contents.clone();
        let comments = comment_text(&dockerfile);
        let (count, platforms) = promised(&comments, "xplat plan shows").unwrap_or_else(|| {
            panic!(
                "templates/{}/Dockerfile does not say \"xplat plan shows N emulated jobs for PLATFORMS\"",
                t.name
            )
        });
        let (got, plan) = plan_emulated(&dockerfile, &platforms);
        assert_eq!(got, count, "templates/{} promises {count}:\n{plan}", t.name);

        // Where the comments offer an emulated stage for native modules, its count too.
        match (
            promised(&comments, "xplat plan then shows"),
            with_optional_stage(&dockerfile),
        ) {
            (Some((count, platforms)), Some(variant)) => {
                let (got, plan) = plan_emulated(&variant, &platforms);
                assert_eq!(
                    got, count,
                    "templates/{} with its #~ stage promises {count}:\n{plan}",
                    t.name
                );
                assert!(
                    got > 0,
                    "templates/{}: the optional stage is emulated",
                    t.name
                );
            }
            (None, None) => {}
            (said, stage) => panic!(
                "templates/{}: a #~ stage and \"xplat plan then shows\" go together ({said:?}, {})",
                t.name,
                stage.is_some()
            ),
        }
    }
}

#[test]
fn every_template_dockerignore_keeps_xplat_files_and_vcs_folders_out() {
    for t in init::templates() {
        let files = init::render(&t, "demo");
        let text = &files
            .iter()
            .find(|f| f.path.as_os_str() == ".dockerignore")
            .expect("a .dockerignore")
            .contents;
        let ignore = Ignore::parse(text).unwrap();
        for path in [
            "xplat.toml",
            "xplat-out",
            "xplat-out/linux_amd64/app",
            ".git",
            ".git/config",
            ".hg/store/data",
            ".svn/entries",
        ] {
            assert!(
                ignore.is_excluded(path),
                "templates/{}/.dockerignore lets {path} into the context",
                t.name
            );
        }
        for path in ["Makefile", "src/main.rs", "main.go", "index.js", "main.py"] {
            assert!(!ignore.is_excluded(path), "templates/{}: {path}", t.name);
        }
    }
}

#[test]
fn every_template_has_an_args_file_naming_only_its_own_args() {
    for t in init::templates() {
        let dockerfile = init::render(&t, "demo")[0].contents.clone();
        let pairs = args_file(t.name);
        assert!(!pairs.is_empty(), "template-args/{}.args is empty", t.name);
        for (name, value) in pairs {
            let declared = dockerfile.lines().any(|l| {
                l.strip_prefix("ARG ")
                    .and_then(|a| a.split(['=', ' ']).next())
                    .is_some_and(|a| a == name)
            });
            assert!(
                declared,
                "template-args/{}.args: {name} is not an ARG of the template",
                t.name
            );
            assert!(
                value.starts_with("xplat-test/")
                    || value.starts_with("${REGISTRY}/xplat-test/")
                    || !value.contains('/'),
                "template-args/{}.args: {name}={value} is neither a stand-in nor a plain value",
                t.name
            );
        }
    }
}
