//! `xplat init`: writing templates, detection, refusing to overwrite; through
//! the library and through the real binary (exit codes).

use std::fs;
use std::path::Path;
use std::process::Command;

use xplat::init::{self, InitError};

fn xplat(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xplat"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("running xplat");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn init_writes_the_three_files_of_the_named_template() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("My App");
    let outcome = init::init(&dir, Some("c"), false).unwrap();
    assert_eq!(outcome.template, "c");
    assert_eq!(outcome.detected, None);
    for name in ["Dockerfile", ".dockerignore", "xplat.toml"] {
        assert!(dir.join(name).is_file(), "{name} written");
    }
    let toml = fs::read_to_string(dir.join("xplat.toml")).unwrap();
    assert!(toml.contains("registry.example/my-app:{version}"), "{toml}");
    let dockerfile = fs::read_to_string(dir.join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("${TARGET_GNU_TRIPLE}-gcc"),
        "{dockerfile}"
    );
}

#[test]
fn init_refuses_to_overwrite_and_writes_nothing_then_force_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("Dockerfile"), "FROM mine\n").unwrap();
    let err = init::init(tmp.path(), Some("go"), false).unwrap_err();
    match &err {
        InitError::WouldOverwrite { files, .. } => assert_eq!(files, &["Dockerfile"]),
        other => panic!("expected WouldOverwrite, got {other:?}"),
    }
    assert!(
        err.to_string().contains("use --force to overwrite"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(tmp.path().join("Dockerfile")).unwrap(),
        "FROM mine\n"
    );
    assert!(
        !tmp.path().join("xplat.toml").exists(),
        "nothing written on refusal"
    );

    init::init(tmp.path(), Some("go"), true).unwrap();
    let text = fs::read_to_string(tmp.path().join("Dockerfile")).unwrap();
    assert!(text.contains("CGO_ENABLED=0"), "{text}");
}

#[test]
fn init_detects_the_language_and_says_why() {
    let cases = [
        ("go.mod", "go"),
        ("Cargo.toml", "rust"),
        ("package.json", "node"),
        ("pyproject.toml", "python"),
        ("Makefile", "c"),
    ];
    for (marker, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(marker), "").unwrap();
        let outcome = init::init(tmp.path(), None, false).unwrap();
        assert_eq!(outcome.template, want, "{marker}");
        assert_eq!(outcome.detected.unwrap().because_of, marker);
    }
    let empty = tempfile::tempdir().unwrap();
    let err = init::init(empty.path(), None, false).unwrap_err();
    assert!(matches!(err, InitError::NothingDetected { .. }), "{err:?}");
}

#[test]
fn the_binary_inits_lists_and_exits_2_when_refusing() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("go.mod"), "module example.com/x\n").unwrap();

    let (code, out, err) = xplat(&["init"], tmp.path());
    assert_eq!(code, 0, "stderr: {err}");
    assert!(
        out.starts_with("found go.mod: using the go template\n"),
        "{out}"
    );
    assert!(tmp.path().join("Dockerfile").is_file());

    let (code, _, err) = xplat(&["init"], tmp.path());
    assert_eq!(code, 2, "refusal is a usage error");
    assert!(
        err.starts_with("error: Dockerfile, .dockerignore, xplat.toml already exist"),
        "{err}"
    );

    let (code, _, err) = xplat(&["init", "--template", "golang", "sub"], tmp.path());
    assert_eq!(code, 2);
    assert!(err.contains("unknown template \"golang\""), "{err}");

    let (code, out, _) = xplat(&["init", "--list"], tmp.path());
    assert_eq!(code, 0);
    for name in ["go", "go-cgo", "rust", "c", "node", "python"] {
        assert!(
            out.lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "{name} in {out}"
        );
    }
}
