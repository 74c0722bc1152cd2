//! `xplat config` through the real binary: file < environment < flags, and a
//! bad `xplat.toml` named by line with a caret, exit code 2.

use std::fs;
use std::path::Path;
use std::process::Command;

fn xplat(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xplat"));
    cmd.args(args).current_dir(cwd);
    // Only what the test says: the host's XPLAT_* variables must not leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("XPLAT_") || k == "SOURCE_DATE_EPOCH" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("running xplat");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FILE: &str = "platforms = [\"linux/amd64\"]\ntags = [\"r.example/app:{version}\"]\n\n[vars]\nversion = \"dev\"\n";

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn config_precedence_is_file_then_environment_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("xplat.toml"), FILE).unwrap();

    let (code, out, err) = xplat(&["config", "--format", "json"], tmp.path(), &[]);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(v["tags"], serde_json::json!(["r.example/app:dev"]));
    assert_eq!(v["config_file"], "xplat.toml");

    let env = [
        ("XPLAT_PLATFORMS", "linux/arm64"),
        ("XPLAT_VERSION", "1.0.0"),
    ];
    let (code, out, err) = xplat(&["config", "--format", "json"], tmp.path(), &env);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(v["platforms"], serde_json::json!(["linux/arm64"]));
    assert_eq!(v["tags"], serde_json::json!(["r.example/app:1.0.0"]));
    assert_eq!(v["origins"]["platforms"], "env");

    let args = [
        "config",
        "--format",
        "json",
        "--platform",
        "linux/arm/v7,linux/amd64",
        "--set",
        "version=2.0.0",
    ];
    let (code, out, err) = xplat(&args, tmp.path(), &env);
    assert_eq!(code, 0, "{err}");
    let v = json(&out);
    assert_eq!(
        v["platforms"],
        serde_json::json!(["linux/arm/v7", "linux/amd64"])
    );
    assert_eq!(v["tags"], serde_json::json!(["r.example/app:2.0.0"]));
    assert_eq!(v["origins"]["platforms"], "flag");
}

#[test]
fn config_text_output_is_toml() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("xplat.toml"), FILE).unwrap();
    let (code, out, err) = xplat(&["config"], tmp.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("# effective configuration (file: xplat.toml)\n"),
        "{out}"
    );
    let parsed: toml::Value = toml::from_str(&out).unwrap();
    assert_eq!(parsed["tags"][0].as_str(), Some("r.example/app:dev"));
}

#[test]
fn a_bad_key_is_reported_with_file_line_and_caret() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("xplat.toml"), "tags = []\ntagz = [\"x\"]\n").unwrap();
    let (code, out, err) = xplat(&["config"], tmp.path(), &[]);
    assert_eq!(code, 2, "stdout: {out}");
    assert_eq!(
        err,
        "error: xplat.toml:2:1: unknown key `tagz`; did you mean `tags`?\n 2 | tagz = [\"x\"]\n   | ^^^^\n"
    );
}

#[test]
fn no_config_file_means_defaults_and_no_config_ignores_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = xplat(&["config", "--format", "json"], tmp.path(), &[]);
    assert_eq!(code, 0);
    assert_eq!(json(&out)["config_file"], serde_json::Value::Null);

    fs::write(tmp.path().join("xplat.toml"), "bogus = 1\n").unwrap();
    let (code, out, err) = xplat(
        &["config", "--no-config", "--format", "json"],
        tmp.path(),
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["tags"], serde_json::json!([]));
}
