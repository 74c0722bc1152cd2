//! Platform conformance and catalog tests: every row of
//! `../shared/peer/platforms/cases.tsv` (containerd's Parse/Format/FormatAll
//! tests), and the embedded and user catalogs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::tally::tally;
use xplat::platform::{ArgRole, Catalog, Platform, PlatformError};

fn peer(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/peer")
        .join(rel)
}

/// The host the TSV's host-dependent rows assume.
fn linux_amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}

/// One row of cases.tsv, by column name.
struct Row<'a> {
    line: usize,
    cols: Vec<&'a str>,
    header: &'a [&'a str],
}

impl Row<'_> {
    fn get(&self, name: &str) -> &str {
        let i = self
            .header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("cases.tsv has no column {name}"));
        self.cols.get(i).copied().unwrap_or("")
    }
}

/// Checks one row as containerd's TestParseSelector / TestFormatAllEncoding /
/// TestParseSelectorInvalid do; returns a description of the first mismatch.
fn check_row(row: &Row) -> Result<(), String> {
    let input = row.get("input");
    let parsed = Platform::parse_with_host(input, &linux_amd64());
    if row.get("error") == "yes" {
        return match parsed {
            Err(_) => Ok(()),
            Ok(p) => Err(format!("{input:?} parsed as {p:?}, expected an error")),
        };
    }
    let p = parsed.map_err(|e| format!("{input:?}: {e}"))?;
    let features: Vec<String> = match row.get("os_features") {
        "" => Vec::new(),
        json => serde_json::from_str(json).map_err(|e| format!("bad os_features {json}: {e}"))?,
    };
    let version = Some(row.get("os_version"))
        .filter(|v| !v.is_empty())
        .map(String::from);
    let want = Platform {
        os: row.get("os").into(),
        architecture: row.get("architecture").into(),
        variant: row.get("variant").into(),
        os_version: version,
        os_features: features,
    };
    if p != want {
        return Err(format!("{input:?} parsed as {p:?}, want {want:?}"));
    }
    if !p.matches(&want) {
        return Err(format!("NewMatcher({p:?}) does not match itself"));
    }
    let format = |p: &Platform| match row.get("format_fn") {
        "FormatAll" => p.format_all(),
        _ => p.format(),
    };
    let formatted = row.get("formatted");
    if format(&p) != formatted {
        return Err(format!(
            "{input:?} formats as {:?}, want {formatted:?}",
            format(&p)
        ));
    }
    let again = Platform::parse_with_host(formatted, &linux_amd64())
        .map_err(|e| format!("round trip of {formatted:?}: {e}"))?;
    if format(&again) != formatted {
        return Err(format!(
            "round trip of {formatted:?} gives {:?}",
            format(&again)
        ));
    }
    if again.os_version != p.os_version {
        return Err(format!("round trip of {formatted:?} loses the OS version"));
    }
    Ok(())
}

#[test]
fn containerd_parse_format_cases() {
    let path = peer("platforms/cases.tsv");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => panic!(
            "reading {}: {e} (../shared must sit beside the project)",
            path.display()
        ),
    };
    let mut lines = text.lines().enumerate();
    let (_, header_line) = lines.next().expect("cases.tsv has a header");
    let header: Vec<&str> = header_line.split('\t').collect();
    let mut failures = Vec::new();
    let mut total = 0;
    for (i, line) in lines {
        if line.is_empty() {
            continue;
        }
        total += 1;
        let row = Row {
            line: i + 1,
            cols: line.split('\t').collect(),
            header: &header,
        };
        if let Err(why) = check_row(&row) {
            failures.push(format!("line {}: {why}", row.line));
        }
    }
    tally!("platform cases: {}/{total}", total - failures.len());
    assert_eq!(total, 44, "cases.tsv should have 44 rows (PROVENANCE.md)");
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn every_embedded_file_loads_and_round_trips_its_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("platforms");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let catalog = Catalog::embedded();
    let mut names: Vec<String> = catalog.specs().map(|s| s.file_name()).collect();
    names.sort();
    assert_eq!(
        names, files,
        "every platforms/*.toml is embedded, and nothing else"
    );
    for spec in catalog.specs() {
        let name = spec.name();
        let p = Platform::parse_with_host(&name, &linux_amd64()).unwrap();
        assert_eq!(
            p.normalized(),
            spec.platform(),
            "{name} is in normalized form"
        );
        assert_eq!(spec.platform().format(), name);
        assert_eq!(spec.go_env()["GOOS"], spec.os);
        assert!(spec.has_cross_compiler(), "{name} has a C cross-compiler");
    }
    for want in [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "linux/arm/v6",
        "linux/386",
        "linux/ppc64le",
        "linux/s390x",
        "linux/riscv64",
    ] {
        assert!(
            catalog.specs().any(|s| s.name() == want),
            "{want} in catalog"
        );
    }
}

#[test]
fn aliases_are_unique_and_resolve_to_their_platform() {
    let catalog = Catalog::embedded();
    let mut seen = std::collections::BTreeMap::new();
    for spec in catalog.specs() {
        for alias in &spec.aliases {
            let key = alias.to_lowercase();
            assert!(
                seen.insert(key.clone(), spec.name()).is_none(),
                "alias {key} twice"
            );
            assert_ne!(key, spec.name(), "{key} is already the name");
            let p = catalog.resolve_with_host(alias, &linux_amd64()).unwrap();
            assert_eq!(p, spec.platform(), "{alias}");
        }
    }
    for (input, want) in [
        ("aarch64", "linux/arm64"),
        ("x86_64", "linux/amd64"),
        ("x86-64", "linux/amd64"),
        ("armhf", "linux/arm/v7"),
        ("armel", "linux/arm/v6"),
        ("i386", "linux/386"),
        ("arm64/v8", "linux/arm64"),
        ("ARMHF", "linux/arm/v7"),
    ] {
        let p = catalog.resolve_with_host(input, &linux_amd64()).unwrap();
        assert_eq!(p.format(), want, "{input}");
    }
}

#[test]
fn resolve_accepts_containerd_spellings_in_normalized_form() {
    let catalog = Catalog::embedded();
    for (input, want) in [
        ("linux/arm", "linux/arm/v7"),
        ("Linux/x86_64", "linux/amd64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm/7", "linux/arm/v7"),
        (" linux/s390x ", "linux/s390x"),
        ("linux/i386", "linux/386"),
    ] {
        let p = catalog.resolve_with_host(input, &linux_amd64()).unwrap();
        assert_eq!(p.format(), want, "{input}");
    }
}

#[test]
fn unknown_platform_suggests_the_closest_names() {
    let catalog = Catalog::embedded();
    let err = catalog
        .resolve_with_host("linux/amr64", &linux_amd64())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("unknown platform \"linux/amr64\"; did you mean linux/arm64"),
        "{msg}"
    );
    let err = catalog
        .resolve_with_host("linux/s309x", &linux_amd64())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown platform \"linux/s309x\"; did you mean linux/s390x?"
    );
    let err = catalog
        .resolve_with_host("aarch46", &linux_amd64())
        .unwrap_err();
    assert!(
        err.to_string().contains("did you mean linux/arm64?"),
        "{err}"
    );
    // Valid for containerd but not in the catalog: unknown to xplat, still suggested.
    let err = catalog
        .resolve_with_host("linux/mips64le", &linux_amd64())
        .unwrap_err();
    assert!(matches!(err, PlatformError::Unknown { .. }), "{err}");
    let err = catalog
        .resolve_with_host("windows/amd64", &linux_amd64())
        .unwrap_err();
    assert!(err.to_string().contains("linux/amd64"), "{err}");
    let err = catalog
        .resolve_with_host("linux/amd64/v3", &linux_amd64())
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("; did you mean linux/amd64 or linux/arm64?"),
        "{err}"
    );
    let err = catalog
        .resolve_with_host("linux/arm/v5", &linux_amd64())
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("; did you mean linux/arm/v6 or linux/arm/v7?"),
        "{err}"
    );
    let err = catalog
        .resolve_with_host("zzzzzzzz", &linux_amd64())
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown platform \"zzzzzzzz\"");
}

#[test]
fn platform_lists_keep_order_and_reject_duplicates() {
    let catalog = Catalog::embedded();
    let list = catalog
        .resolve_list_with_host("linux/amd64, linux/arm64,linux/arm", &linux_amd64())
        .unwrap();
    assert_eq!(
        Platform::format_list(&list),
        "linux/amd64,linux/arm64,linux/arm/v7"
    );
    let err = catalog
        .resolve_list_with_host("linux/arm64,aarch64", &linux_amd64())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "platform linux/arm64 is given twice in the list (\"linux/arm64\" and \"aarch64\")"
    );
    let err = catalog
        .resolve_list_with_host("linux/amd64,,linux/arm64", &linux_amd64())
        .unwrap_err();
    assert!(matches!(err, PlatformError::EmptyListItem { .. }));
    let err = catalog
        .resolve_list_with_host("linux/amd64,linux/amr64", &linux_amd64())
        .unwrap_err();
    assert!(
        err.to_string().contains("did you mean linux/arm64"),
        "{err}"
    );
}

#[test]
fn build_args_for_arm_v7_and_amd64() {
    let catalog = Catalog::embedded();
    let arm = catalog.get(&Platform::new("linux", "arm", "")).unwrap();
    let args = arm.build_args(ArgRole::Target);
    let got: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        got,
        [
            ("TARGET_DEBIAN_ARCH", "armhf"),
            ("TARGET_GNU_TRIPLE", "arm-linux-gnueabihf"),
            ("TARGET_GOARCH", "arm"),
            ("TARGET_GOARM", "7"),
            ("TARGET_GOOS", "linux"),
            ("TARGET_QEMU", "qemu-arm-static"),
            ("TARGET_RUST_MUSL_TRIPLE", "armv7-unknown-linux-musleabihf"),
            ("TARGET_RUST_TRIPLE", "armv7-unknown-linux-gnueabihf"),
        ]
    );
    let amd = catalog.get(&Platform::new("linux", "amd64", "")).unwrap();
    let args = amd.build_args(ArgRole::Build);
    assert_eq!(args["BUILD_GOARM"], "", "defined but empty off arm");
    assert_eq!(args["BUILD_RUST_TRIPLE"], "x86_64-unknown-linux-gnu");
    assert_eq!(args.len(), 8);
}

/// A user folder in a temp dir with the given files.
fn user_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

const MIPS: &str = r#"
os = "linux"
architecture = "mips64le"
description = "64-bit little-endian MIPS"
aliases = ["mips64el"]
gnu_triple = "mips64el-linux-gnuabi64"
debian_arch = "mips64el"
qemu_binary = "qemu-mips64el-static"
[go]
goos = "linux"
goarch = "mips64le"
[rust]
gnu = "mips64el-unknown-linux-gnuabi64"
"#;

#[test]
fn user_file_adds_a_platform() {
    let dir = user_dir(&[("linux-mips64le.toml", MIPS), ("README.md", "not toml")]);
    let catalog = Catalog::load(&[dir.path().to_path_buf()]).unwrap();
    let p = catalog
        .resolve_with_host("mips64el", &linux_amd64())
        .unwrap();
    assert_eq!(p.format(), "linux/mips64le");
    let spec = catalog.get(&p).unwrap();
    assert!(!spec.has_rust_musl());
    assert_eq!(
        spec.build_args(ArgRole::Target)["TARGET_RUST_MUSL_TRIPLE"],
        ""
    );
    assert_eq!(
        catalog.specs().count(),
        Catalog::embedded().specs().count() + 1
    );
    assert!(xplat::platform::render::table(&catalog).contains("linux/mips64le from "));
}

#[test]
fn user_file_adds_a_variant_of_a_known_architecture() {
    let text = include_str!("../platforms/linux-amd64.toml")
        .replace(
            "architecture = \"amd64\"",
            "architecture = \"amd64\"\nvariant = \"v3\"",
        )
        .replace("aliases = [", "aliases = [\"x86-64-v3\"]\nold_aliases = [");
    let text = text
        .lines()
        .filter(|l| !l.starts_with("old_aliases"))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = user_dir(&[("linux-amd64-v3.toml", &text)]);
    let catalog = Catalog::load(&[dir.path().to_path_buf()]).unwrap();
    for input in ["linux/amd64/v3", "x86-64-v3", "linux/x86_64/v3"] {
        let p = catalog.resolve_with_host(input, &linux_amd64()).unwrap();
        assert_eq!(p.format(), "linux/amd64/v3", "{input}");
    }
    let p = catalog
        .resolve_with_host("linux/amd64", &linux_amd64())
        .unwrap();
    assert_eq!(p.format(), "linux/amd64");
}

#[test]
fn user_file_overrides_an_embedded_one_and_later_dirs_win() {
    let riscv = include_str!("../platforms/linux-riscv64.toml");
    let first = riscv.replace("riscv64-linux-gnu\"", "riscv64-unknown-linux-gnu\"");
    let second = riscv.replace("riscv64-linux-gnu\"", "riscv64-custom-linux-gnu\"");
    assert_ne!(first, riscv);
    let a = user_dir(&[("linux-riscv64.toml", &first)]);
    let b = user_dir(&[("linux-riscv64.toml", &second)]);
    let catalog = Catalog::load(&[a.path().to_path_buf()]).unwrap();
    let spec = catalog.get(&Platform::new("linux", "riscv64", "")).unwrap();
    assert_eq!(
        spec.gnu_triple.as_deref(),
        Some("riscv64-unknown-linux-gnu")
    );
    let catalog = Catalog::load(&[a.path().to_path_buf(), b.path().to_path_buf()]).unwrap();
    let spec = catalog.get(&Platform::new("linux", "riscv64", "")).unwrap();
    assert_eq!(spec.gnu_triple.as_deref(), Some("riscv64-custom-linux-gnu"));
    assert_eq!(catalog.specs().count(), Catalog::embedded().specs().count());
}

/// Loads one malformed user file and returns the error message.
fn load_error(file: &str, text: &str) -> String {
    let dir = user_dir(&[(file, text)]);
    let err = Catalog::load(&[dir.path().to_path_buf()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(file), "error names the file {file}: {msg}");
    msg
}

#[test]
fn malformed_user_files_name_file_and_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "linux-mips64le.toml",
            MIPS.replace("description", "descripton"),
            "descripton",
        ),
        (
            "linux-mips64le.toml",
            MIPS.replace("debian_arch = \"mips64el\"\n", ""),
            "debian_arch",
        ),
        (
            "linux-mips64le.toml",
            MIPS.replace("aliases = [\"mips64el\"]", "aliases = \"mips64el\""),
            "aliases",
        ),
        (
            "linux-mips64le.toml",
            MIPS.replace("goarch = \"mips64le\"", "goarch = \"mips\""),
            "go.goarch",
        ),
        (
            "linux-mips64le-v2.toml",
            MIPS.replace(
                "architecture = \"mips64le\"",
                "architecture = \"mips64le\"\nvariant = \"v2\"",
            ),
            "variant",
        ),
        (
            "linux-arm64-v8.toml",
            include_str!("../platforms/linux-arm64.toml").replace(
                "architecture = \"arm64\"",
                "architecture = \"arm64\"\nvariant = \"v8\"",
            ),
            "variant",
        ),
        (
            "linux-aarch64.toml",
            include_str!("../platforms/linux-arm64.toml")
                .replace("architecture = \"arm64\"", "architecture = \"aarch64\""),
            "architecture",
        ),
        (
            "linux-arm-v7.toml",
            include_str!("../platforms/linux-arm-v7.toml")
                .replace("goarm = \"7\"", "goarm = \"6\""),
            "go.goarm",
        ),
        (
            "linux-mips.toml",
            MIPS.to_string(),
            "os/architecture/variant",
        ),
        (
            "linux-mips64le.toml",
            "os = \"linux\n".to_string(),
            "line 1",
        ),
    ];
    for (file, text, field) in cases {
        let msg = load_error(file, &text);
        assert!(msg.contains(field), "error names {field}: {msg}");
    }
}

#[test]
fn duplicate_alias_across_files_is_an_error() {
    let text = MIPS.replace("[\"mips64el\"]", "[\"aarch64\"]");
    let msg = load_error("linux-mips64le.toml", &text);
    assert!(
        msg.contains("\"aarch64\"")
            && msg.contains("linux/arm64")
            && msg.contains("linux/mips64le"),
        "{msg}"
    );
}

#[test]
fn missing_user_dir_is_an_error_but_default_dir_is_optional() {
    let missing = PathBuf::from("/nonexistent/xplat/platforms");
    let err = Catalog::load(&[missing]).unwrap_err();
    assert!(matches!(err, PlatformError::CatalogRead { .. }), "{err}");
    let home = tempfile::tempdir().unwrap();
    use xplat::platform::catalog::user_config_dir;
    assert_eq!(user_config_dir(None, Some(home.path())), None);
    let dir = home.path().join(".config/xplat/platforms");
    fs::create_dir_all(&dir).unwrap();
    assert_eq!(user_config_dir(None, Some(home.path())), Some(dir));
    let xdg = tempfile::tempdir().unwrap();
    let xdg_dir = xdg.path().join("xplat/platforms");
    fs::create_dir_all(&xdg_dir).unwrap();
    assert_eq!(
        user_config_dir(Some(xdg.path()), Some(home.path())),
        Some(xdg_dir)
    );
    assert_eq!(user_config_dir(None, None), None);
}

#[test]
fn host_can_run_catalog_targets_as_containerd_says() {
    let catalog = Catalog::embedded();
    let arm64 = catalog
        .resolve_with_host("linux/arm64", &linux_amd64())
        .unwrap();
    let runs: Vec<String> = catalog
        .specs()
        .filter(|s| arm64.can_run(&s.platform()))
        .map(|s| s.name())
        .collect();
    assert_eq!(runs, ["linux/arm/v6", "linux/arm/v7", "linux/arm64"]);
    let amd64 = linux_amd64();
    let runs: Vec<String> = catalog
        .specs()
        .filter(|s| amd64.can_run(&s.platform()))
        .map(|s| s.name())
        .collect();
    assert_eq!(runs, ["linux/386", "linux/amd64"]);
}

/// Random specifiers from a small alphabet and known words: parsing never
/// panics, and what parses (without `%` escapes, which may decode to anything)
/// formats to a specifier that parses back to the same text.
#[test]
fn random_specifiers_never_panic_and_round_trip() {
    const PIECES: &[&str] = &[
        "linux",
        "windows",
        "Linux",
        "arm",
        "arm64",
        "amd64",
        "x86_64",
        "aarch64",
        "armhf",
        "armel",
        "i386",
        "v7",
        "v8",
        "7",
        "8",
        "v9.3",
        "v1",
        "/",
        "/",
        "(",
        ")",
        "+",
        "%",
        "%2B",
        "*",
        ".",
        "-",
        "_",
        "a",
        "Z",
        "9",
        " ",
        "&",
        "é",
        "",
        "10.0.17763",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let host = linux_amd64();
    let (mut ok, mut total) = (0, 0);
    for _ in 0..20_000 {
        let len = (next() % 7) as usize;
        let s: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        total += 1;
        let Ok(p) = Platform::parse_with_host(&s, &host) else {
            continue;
        };
        ok += 1;
        if s.contains('%') {
            continue;
        }
        let text = p.format_all();
        let again = Platform::parse_with_host(&text, &host)
            .unwrap_or_else(|e| panic!("{s:?} → {text:?} does not parse: {e}"));
        assert_eq!(again.format_all(), text, "{s:?}");
    }
    tally!("random platform specifiers: {ok}/{total} parsed");
    assert!(ok > 100, "the generator should hit valid specifiers");
}
