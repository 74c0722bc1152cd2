use super::*;
use crate::cli::args::{Cli, Command};
use crate::platform::Platform;
use clap::Parser;

fn build_args(argv: &[&str]) -> BuildArgs {
    let mut full = vec!["xplat", "build"];
    full.extend_from_slice(argv);
    match Cli::try_parse_from(full).unwrap().command {
        Command::Build(b) => b,
        _ => panic!("expected build"),
    }
}

#[test]
fn options_come_from_the_merged_config() {
    let args = build_args(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "--target",
        "build",
        "-t",
        "me/app:1",
        "--jobs",
        "3",
        "--secret",
        "id=s,src=/tmp/s",
        "--pull",
        "--network",
        "none",
        "--add-host",
        "db:10.0.0.5",
        "--no-cache-filter",
        "build,test",
        "--no-config",
        "ctx",
    ]);
    let cwd = std::env::temp_dir();
    let catalog = Catalog::embedded();
    let config =
        project::load_config(&args, &BTreeMap::new(), &cwd, &Default::default(), &catalog).unwrap();
    let secrets =
        super::super::buildx::Secrets::resolve(&args.secrets, &BTreeMap::new(), &cwd).unwrap();
    let session = crate::ops::Session::new(
        catalog.clone(),
        PathBuf::from("Dockerfile"),
        String::new(),
        crate::dockerfile::parse("FROM scratch\n").unwrap(),
        super::super::session::plan_inputs(&config),
        &Platform::host(),
        &[],
    );
    let o = build_options(&config, &args, &secrets, &session).unwrap();
    assert_eq!(
        o.platforms,
        vec![
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap()
        ]
    );
    assert_eq!(o.target.as_deref(), Some("build"));
    assert_eq!(o.tag.as_deref(), Some("me/app:1"));
    assert_eq!(o.jobs, 3);
    assert!(!o.no_cache);
    assert!(o.context_dir.ends_with("ctx"), "{:?}", o.context_dir);
    assert_eq!(o.secrets.get("s"), Some(&PathBuf::from("/tmp/s")));
    assert!(o.pull);
    assert_eq!(o.network, crate::ops::NetworkMode::None);
    assert_eq!(o.add_hosts, [("db".to_string(), "10.0.0.5".to_string())]);
    assert_eq!(o.no_cache_filter, ["build", "test"]);
}

#[test]
fn progress_defaults_to_tty_only_on_a_terminal() {
    assert_eq!(progress_mode(None, true), ProgressMode::Tty);
    assert_eq!(progress_mode(None, false), ProgressMode::Plain);
    assert_eq!(
        progress_mode(Some(ProgressMode::Auto), true),
        ProgressMode::Tty
    );
    assert_eq!(
        progress_mode(Some(ProgressMode::Auto), false),
        ProgressMode::Plain
    );
    assert_eq!(
        progress_mode(Some(ProgressMode::Json), true),
        ProgressMode::Json
    );
}

#[test]
fn bytes_are_human() {
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(1500), "1.5 KB");
    assert_eq!(human_bytes(2_300_000_000), "2.3 GB");
}

#[test]
fn git_annotations_describe_the_contexts_checkout_not_the_current_folders() {
    let git = |dir: &std::path::Path, args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.email=t@example", "-c", "user.name=t"])
            .args(args)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
    let outside = tempfile::tempdir().unwrap();
    let catalog = Catalog::embedded();
    let revision = |context: &std::path::Path| {
        let args = build_args(&["--no-config", context.to_str().unwrap()]);
        let config =
            project::load_config_for_context(&args, &BTreeMap::new(), repo.path(), &catalog)
                .unwrap();
        config
            .annotations
            .get(super::super::options::git::REVISION)
            .cloned()
    };
    // Run from inside the checkout: its own context has its revision, another one not.
    let head = super::super::options::git::probe(repo.path()).revision;
    assert!(head.is_some());
    assert_eq!(revision(repo.path()), head);
    assert_eq!(
        revision(outside.path()),
        None,
        "the context is in no checkout"
    );
}
