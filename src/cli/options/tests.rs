use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn host() -> Platform {
    Platform::new("linux", "amd64", "")
}

/// Resolves with the given file text, environment and flags, no git.
fn resolve_with(text: Option<&str>, env: &[(&str, &str)], flags: &Flags) -> Result<Config> {
    let env = map(env);
    let file = text.map(|text| ConfigFile {
        name: "xplat.toml",
        dir: Path::new(""),
        text,
    });
    let src = Sources {
        file,
        env: &env,
        flags,
        git: &GitFacts::default(),
    };
    resolve(&src, &Catalog::embedded(), &host())
}

fn names(c: &Config) -> Vec<String> {
    c.platforms.iter().map(Platform::format).collect()
}

const FILE: &str = r#"
platforms = ["linux/amd64", "linux/arm64"]
tags = ["reg.example/app:{version}"]
target = "release"

[vars]
version = "dev"

[build_args]
A = "file"
B = "file"
"#;

#[test]
fn file_alone() {
    let c = resolve_with(Some(FILE), &[], &Flags::default()).unwrap();
    assert_eq!(names(&c), ["linux/amd64", "linux/arm64"]);
    assert_eq!(c.tags, ["reg.example/app:dev"]);
    assert_eq!(c.target.as_deref(), Some("release"));
    // The context is the file's folder, here the current one.
    assert_eq!(c.dockerfile, PathBuf::from("./Dockerfile"));
    assert_eq!(c.origins["platforms"], Origin::File);
}

#[test]
fn environment_beats_file() {
    let env = [
        ("XPLAT_PLATFORMS", "linux/arm/v7"),
        ("XPLAT_VERSION", "1.0.0"),
        ("XPLAT_TARGET", "debug"),
        ("XPLAT_PUSH", "true"),
    ];
    let c = resolve_with(Some(FILE), &env, &Flags::default()).unwrap();
    assert_eq!(names(&c), ["linux/arm/v7"]);
    assert_eq!(c.tags, ["reg.example/app:1.0.0"]);
    assert_eq!(c.target.as_deref(), Some("debug"));
    assert!(c.output.push);
    assert_eq!(c.origins["platforms"], Origin::Env);
    assert_eq!(c.origins["push"], Origin::Env);
}

#[test]
fn flags_beat_environment_and_file() {
    let env = [
        ("XPLAT_PLATFORMS", "linux/arm/v7"),
        ("XPLAT_VERSION", "1.0.0"),
    ];
    let flags = Flags {
        platforms: vec!["linux/arm64".into()],
        set: vec!["version=2.0.0".into()],
        target: Some("flag".into()),
        build_args: vec!["B=flag".into()],
        ..Flags::default()
    };
    let c = resolve_with(Some(FILE), &env, &flags).unwrap();
    assert_eq!(names(&c), ["linux/arm64"]);
    assert_eq!(c.tags, ["reg.example/app:2.0.0"]);
    assert_eq!(c.target.as_deref(), Some("flag"));
    assert_eq!(c.build_args, map(&[("A", "file"), ("B", "flag")]));
    assert_eq!(c.origins["platforms"], Origin::Flag);
    assert_eq!(c.origins["tags"], Origin::File);
}

#[test]
fn flag_tags_replace_file_tags_and_are_substituted() {
    let flags = Flags {
        tags: vec!["other/app:{version}-x".into()],
        ..Flags::default()
    };
    let c = resolve_with(Some(FILE), &[("XPLAT_VAR_VERSION", "3")], &flags).unwrap();
    assert_eq!(c.tags, ["other/app:3-x"]);
}

#[test]
fn nothing_given_means_the_host_and_defaults() {
    let c = resolve_with(None, &[], &Flags::default()).unwrap();
    assert_eq!(names(&c), ["linux/amd64"]);
    assert!(c.tags.is_empty());
    assert_eq!(c.context, PathBuf::from("."));
    assert_eq!(c.dockerfile, PathBuf::from("./Dockerfile"));
    assert!(!c.output.push && !c.cache.disabled);
    assert!(c.origins.values().all(|o| *o == Origin::Default));
}

#[test]
fn paths_in_the_file_are_relative_to_its_folder() {
    let env = BTreeMap::new();
    let flags = Flags::default();
    let src = Sources {
        file: Some(ConfigFile {
            name: "proj/xplat.toml",
            dir: Path::new("proj"),
            text: "context = \"app\"\ndockerfile = \"docker/Dockerfile\"\n",
        }),
        env: &env,
        flags: &flags,
        git: &GitFacts::default(),
    };
    let c = resolve(&src, &Catalog::embedded(), &host()).unwrap();
    assert_eq!(c.context, PathBuf::from("proj/app"));
    assert_eq!(c.dockerfile, PathBuf::from("proj/docker/Dockerfile"));
}

#[test]
fn a_file_in_the_current_folder_without_context_builds_the_current_folder() {
    // Issue 13: the README's CI quickstart has no `context`; "" is not a folder.
    let c = resolve_with(
        Some("platforms = [\"linux/amd64\"]\n"),
        &[],
        &Flags::default(),
    )
    .unwrap();
    assert_eq!(c.context, PathBuf::from("."));
    assert_eq!(c.dockerfile, PathBuf::from("./Dockerfile"));
}

#[test]
fn git_fills_the_oci_annotations_and_the_user_overrides_them() {
    let env = map(&[("SOURCE_DATE_EPOCH", "0")]);
    let flags = Flags {
        annotations: vec!["org.opencontainers.image.source=https://mirror/x".into()],
        ..Flags::default()
    };
    let git = GitFacts {
        revision: Some("abcdef0123".into()),
        remote_url: Some("git@github.com:o/r.git".into()),
        commit_time: Some(5),
    };
    let text = "tags = [\"r/a:{git_short_sha}\"]\n[annotations]\n\"x.y\" = \"{git_sha}\"\n";
    let src = Sources {
        file: Some(ConfigFile {
            name: "xplat.toml",
            dir: Path::new(""),
            text,
        }),
        env: &env,
        flags: &flags,
        git: &git,
    };
    let c = resolve(&src, &Catalog::embedded(), &host()).unwrap();
    assert_eq!(c.tags, ["r/a:abcdef0"]);
    assert_eq!(c.annotations["x.y"], "abcdef0123");
    assert_eq!(c.annotations[git::REVISION], "abcdef0123");
    assert_eq!(c.annotations[git::CREATED], "1970-01-01T00:00:00Z");
    assert_eq!(c.annotations[git::SOURCE], "https://mirror/x");

    let off = "annotate_from_git = false\n";
    let src = Sources {
        file: Some(ConfigFile {
            name: "xplat.toml",
            dir: Path::new(""),
            text: off,
        }),
        flags: &Flags::default(),
        ..src
    };
    assert!(resolve(&src, &Catalog::embedded(), &host())
        .unwrap()
        .annotations
        .is_empty());
}

/// The rendered error for `text`.
fn file_error(text: &str) -> String {
    resolve_with(Some(text), &[], &Flags::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn an_unknown_key_is_named_with_its_line_and_a_caret() {
    let got = file_error("tags = []\nplatfroms = [\"linux/amd64\"]\n");
    assert_eq!(
        got,
        "xplat.toml:2:1: unknown key `platfroms`; did you mean `platforms`?\n \
         2 | platfroms = [\"linux/amd64\"]\n   | ^^^^^^^^^"
    );
}

#[test]
fn an_unknown_key_in_a_table_is_named_too() {
    let got = file_error("[output]\npush = true\noci-layout = \"out\"\n");
    assert!(
        got.starts_with("xplat.toml:3:1: unknown key `oci-layout`; did you mean `oci_layout`?"),
        "{got}"
    );
}

#[test]
fn a_wrong_type_names_the_line() {
    let got = file_error("platforms = \"linux/amd64\"\n");
    assert!(got.starts_with("xplat.toml:1:13: "), "{got}");
    assert!(got.contains("invalid type"), "{got}");
    assert!(got.ends_with("^^^^^^^^^^^^^"), "{got}");
}

#[test]
fn bad_toml_syntax_names_the_line() {
    let got = file_error("tags = [\"a\"]\n\ntarget = \n");
    assert!(got.starts_with("xplat.toml:3:"), "{got}");
    assert!(got.contains(" 3 | target = "), "{got}");
}

#[test]
fn an_unknown_platform_points_at_it_with_a_suggestion() {
    let got = file_error("platforms = [\"linux/amd64\", \"linux/amr64\"]\n");
    assert!(
        got.starts_with("xplat.toml:1:29: platforms: unknown platform \"linux/amr64\""),
        "{got}"
    );
    assert!(got.contains("linux/arm64"), "{got}");
    assert!(
        got.ends_with("|                             ^^^^^^^^^^^^^"),
        "{got}"
    );
}

#[test]
fn a_placeholder_without_value_points_at_it() {
    let got = file_error("tags = [\"reg/app:{version}\"]\n");
    assert!(
        got.starts_with(
            "xplat.toml:1:18: {version} has no value; pass --set version=VALUE, set XPLAT_VERSION"
        ),
        "{got}"
    );
    assert!(got.ends_with("|                  ^^^^^^^^^"), "{got}");
}

#[test]
fn bad_flags_and_environment_are_named() {
    let flags = Flags {
        set: vec!["version".into()],
        ..Flags::default()
    };
    let got = resolve_with(None, &[], &flags).unwrap_err().to_string();
    assert_eq!(got, "--set \"version\": expected KEY=VALUE");
    let flags = Flags {
        platforms: vec!["linux/amd64".into(), "aarch64".into(), "arm64".into()],
        ..Flags::default()
    };
    let got = resolve_with(None, &[], &flags).unwrap_err().to_string();
    assert!(
        got.starts_with("--platform \"linux/amd64,aarch64,arm64\": "),
        "{got}"
    );
    let got = resolve_with(None, &[("XPLAT_NO_CACHE", "maybe")], &Flags::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        got,
        "environment variable XPLAT_NO_CACHE=\"maybe\": expected true or false (1 or 0)"
    );
}

#[test]
fn build_arg_without_value_comes_from_the_environment() {
    let flags = Flags {
        build_args: vec!["HTTP_PROXY".into(), "UNSET".into()],
        ..Flags::default()
    };
    let c = resolve_with(None, &[("HTTP_PROXY", "http://p")], &flags).unwrap();
    assert_eq!(c.build_args, map(&[("HTTP_PROXY", "http://p")]));
}

#[test]
fn every_template_xplat_toml_is_valid() {
    for t in crate::init::templates() {
        let files = crate::init::render(&t, "demo");
        let toml = files
            .iter()
            .find(|f| f.path == Path::new("xplat.toml"))
            .unwrap();
        let flags = Flags {
            set: vec!["version=1.0".into()],
            ..Flags::default()
        };
        let c = resolve_with(Some(&toml.contents), &[], &flags)
            .unwrap_or_else(|e| panic!("templates/{}/xplat.toml: {e}", t.name));
        assert_eq!(c.tags, ["registry.example/demo:1.0"], "{}", t.name);
        assert_eq!(names(&c), ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    }
}

#[test]
fn the_rendered_config_reads_back_as_xplat_toml() {
    let c = resolve_with(Some(FILE), &[], &Flags::default()).unwrap();
    let text = render::toml(&c);
    assert!(text.contains("# where each setting came from:"), "{text}");
    let back = file::parse("rendered", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.platforms.unwrap().len(), 2);
    let json: serde_json::Value = serde_json::from_str(&render::json(&c)).unwrap();
    assert_eq!(json["origins"]["platforms"], "file");
}

const ENGINES: &str = r#"platforms = ["linux/amd64", "linux/arm64"]

[engines.local]
host = "unix:///var/run/docker.sock"

[engines.arm]
host = "tcp://arm-builder.example:2376"
tls = { ca = "certs/ca.pem", cert = "certs/cert.pem", key = "certs/key.pem" }
platforms = ["linux/arm64", "linux/arm/v7"]
"#;

#[test]
fn engines_tables_keep_their_order_and_certs_are_relative_to_the_file() {
    let c = resolve_with(Some(ENGINES), &[], &Flags::default()).unwrap();
    let names: Vec<&str> = c.engines.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["local", "arm"], "file order, not sorted");
    let arm = &c.engines[1];
    let tls = arm.tls.as_ref().unwrap();
    assert!(tls.ca.ends_with("certs/ca.pem"), "{:?}", tls.ca);
    assert_eq!(
        arm.platforms
            .iter()
            .map(Platform::format)
            .collect::<Vec<_>>(),
        ["linux/arm64", "linux/arm/v7"]
    );
    assert_eq!(c.origins["engines"], Origin::File);
    // The rendered configuration is xplat.toml again.
    let text = render::toml(&c);
    let back = file::parse("rendered", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back.engines.len(), 2, "{text}");
}

#[test]
fn engine_flags_lay_over_the_file_and_bad_hosts_point_at_the_line() {
    let flags = Flags {
        engines: vec!["arm=ssh://builder@arm-host".into()],
        ..Flags::default()
    };
    let c = resolve_with(Some(ENGINES), &[], &flags).unwrap();
    assert_eq!(c.engines[1].host.as_deref(), Some("ssh://builder@arm-host"));
    assert!(
        c.engines[1].platforms.is_empty(),
        "the flag replaces the table"
    );
    assert_eq!(c.origins["engines"], Origin::Flag);
    let bad = "[engines.arm]\nhost = \"arm:2375\"\n";
    let err = resolve_with(Some(bad), &[], &Flags::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(":2:8:"), "{text}");
    assert!(text.contains("engines.arm.host"), "{text}");
    let unknown = "[engines.arm]\nhots = \"tcp://a:1\"\n";
    assert!(resolve_with(Some(unknown), &[], &Flags::default()).is_err());
}
