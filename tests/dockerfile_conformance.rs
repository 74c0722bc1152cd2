//! BuildKit parser conformance: every golden case under
//! `../shared/peer/buildkit-parser/` (read at test time, never copied).

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::tally::tally;
use xplat::dockerfile::{parse_raw, parse_words, ParseError};

fn peer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer/buildkit-parser")
}

fn case_dirs(sub: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(peer().join(sub))
        .unwrap_or_else(|e| panic!("reading {sub}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A readable line diff: the first differing lines with their numbers.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied(), g.get(i).copied());
        if a != b {
            out.push_str(&format!(
                "  line {}:\n    want {:?}\n    got  {:?}\n",
                i + 1,
                a,
                b
            ));
        }
    }
    out
}

fn expectations() -> serde_json::Value {
    let text = fs::read_to_string(peer().join("go-test-expectations.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn buildkit_parser_cases_dump_byte_for_byte() {
    let dirs = case_dirs("testfiles");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let want = fs::read_to_string(dir.join("result")).unwrap();
        match parse_raw(&text) {
            Err(e) => failures.push(format!("{name}: parse error: {e}")),
            Ok(raw) => {
                let got = raw.root.dump() + "\n";
                if got != want {
                    failures.push(format!("{name}:\n{}", diff(&want, &got)));
                }
            }
        }
    }
    let passed = dirs.len() - failures.len();
    tally!("buildkit parser cases: {passed}/{}", dirs.len());
    assert!(
        dirs.len() >= 33,
        "expected the 33 peer cases, found {}",
        dirs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn buildkit_negative_cases_are_rejected() {
    let dirs = case_dirs("testfiles-negative");
    let mut accepted = Vec::new();
    for dir in &dirs {
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        if let Ok(raw) = parse_raw(&text) {
            accepted.push(format!(
                "{}: accepted as {}",
                dir.display(),
                raw.root.dump()
            ));
        }
    }
    tally!(
        "negative cases: {}/{}",
        dirs.len() - accepted.len(),
        dirs.len()
    );
    assert!(dirs.len() >= 4);
    assert!(accepted.is_empty(), "{}", accepted.join("\n"));
}

#[test]
fn line_numbers_match_testfile_line() {
    let exp = &expectations()["TestParseIncludesLineNumbers"];
    let text = fs::read_to_string(peer().join("testfile-line/Dockerfile")).unwrap();
    let raw = parse_raw(&text).unwrap();
    assert_eq!(
        raw.root.start_line as u64,
        exp["root_start_line"].as_u64().unwrap()
    );
    assert_eq!(
        raw.root.end_line as u64,
        exp["root_end_line"].as_u64().unwrap()
    );
    assert_eq!(
        raw.root.children.len() as u64,
        exp["children"].as_u64().unwrap()
    );
    let want: Vec<(u64, u64)> = exp["child_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_u64().unwrap()))
        .collect();
    let got: Vec<(u64, u64)> = raw
        .root
        .children
        .iter()
        .map(|c| (c.start_line as u64, c.end_line as u64))
        .collect();
    assert_eq!(got, want);
    tally!("testfile-line instructions: {}/{}", got.len(), want.len());
}

#[test]
fn parse_words_matches_go_table() {
    let cases = expectations()["TestParseWords"]["cases"].clone();
    let cases = cases.as_array().unwrap();
    for case in cases {
        let input = case["input"].as_str().unwrap();
        let want: Vec<String> = serde_json::from_value(case["expect"].clone()).unwrap();
        assert_eq!(parse_words(input, '\\'), want, "parseWords({input:?})");
    }
    tally!("parseWords cases: {}/{}", cases.len(), cases.len());
}

#[test]
fn empty_continuation_lines_warn() {
    let exp = &expectations()["TestParseWarnsOnEmptyContinutationLine"];
    let raw = parse_raw(exp["input"].as_str().unwrap()).unwrap();
    assert_eq!(
        raw.warnings.len() as u64,
        exp["warnings_count"].as_u64().unwrap()
    );
    for (i, key) in ["warning0_short_contains", "warning1_short_contains"]
        .iter()
        .enumerate()
    {
        for needle in exp[key].as_array().unwrap() {
            let needle = needle.as_str().unwrap();
            assert!(
                raw.warnings[i].short.contains(needle),
                "warning {i} {:?} lacks {needle:?}",
                raw.warnings[i].short
            );
        }
    }
    let detail = exp["warning0_detail0_contains"].as_str().unwrap();
    assert!(raw.warnings[0].detail.contains(detail));
}

#[test]
fn overlong_line_is_the_scanner_error() {
    let exp = &expectations()["TestParseReturnsScannerErrors"];
    let input = exp["input"]
        .as_str()
        .unwrap()
        .replace("<'a' repeated 65536 times>", &"a".repeat(65536));
    assert!(input.len() > 65536, "placeholder not substituted");
    let err = parse_raw(&input).unwrap_err();
    assert_eq!(err.to_string(), exp["expect_error"].as_str().unwrap());
    assert!(matches!(err, ParseError::LineTooLong { location, .. } if location.line == 3));
    // The limit itself is accepted.
    let ok = format!("FROM a\nLABEL x={}\n", "a".repeat(65535 - 8));
    assert!(parse_raw(&ok).is_ok());
}

#[test]
fn peer_cases_through_the_typed_level() {
    // Cases BuildKit's line parser accepts but its instruction parser (like
    // ours) rejects: the golden files exercise the raw level only.
    let expected_errors = [
        ("flags", "unknown flag: --user for COPY"),
        ("health", "HEALTHCHECK requires"),
        (
            "jeztah-invalid-json-json-inside-string",
            "CMD before the first FROM",
        ),
        (
            "jeztah-invalid-json-json-inside-string-double",
            "CMD before the first FROM",
        ),
        (
            "jeztah-invalid-json-single-quotes",
            "CMD before the first FROM",
        ),
        (
            "jeztah-invalid-json-unterminated-bracket",
            "CMD before the first FROM",
        ),
        (
            "jeztah-invalid-json-unterminated-string",
            "CMD before the first FROM",
        ),
        ("json", "CMD before the first FROM"),
    ];
    let dirs = case_dirs("testfiles");
    let mut wrong = Vec::new();
    let mut typed_ok = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let want = expected_errors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m);
        match (xplat::dockerfile::parse(&text), want) {
            (Ok(df), None) => {
                assert!(!df.stages.is_empty());
                typed_ok += 1;
            }
            (Err(e), Some(m)) if e.to_string().contains(m) => {}
            (got, want) => wrong.push(format!(
                "{name}: got {:?}, want error {want:?}",
                got.map(|_| ())
            )),
        }
    }
    tally!(
        "typed parse of peer cases: {typed_ok} ok, {} rejected as expected",
        dirs.len() - typed_ok - wrong.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
