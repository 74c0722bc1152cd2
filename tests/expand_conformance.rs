//! Conformance of `dockerfile::expand` with BuildKit's shell lexer tables in
//! `../shared/peer/shell/` (driver semantics in its README.md), plus a bounded no-panic fuzz.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::tally::tally;
use serde_json::Value;
use xplat::dockerfile::expand::{ExpandError, Expander};

fn peer(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/peer/shell")
        .join(name)
}

fn read_peer(name: &str) -> String {
    let path = peer(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn envvar_env() -> Vec<(String, String)> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// One `platform | source | expected` line of envVarTest.
struct EnvVarCase {
    line: usize,
    platform: String,
    source: String,
    expected: String,
}

fn envvar_cases() -> Vec<EnvVarCase> {
    let text = read_peer("envVarTest");
    let mut cases = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.starts_with('#') {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 3, "envVarTest line {}: {raw:?}", i + 1);
        cases.push(EnvVarCase {
            line: i + 1,
            platform: fields[0].trim().to_string(),
            source: fields[1].trim().to_string(),
            expected: fields[2].trim().to_string(),
        });
    }
    cases
}

#[test]
fn envvartest_all_unix_lines() {
    let lex = Expander::new('\\');
    let env = envvar_env();
    let cases = envvar_cases();
    let mut run = 0;
    let mut failures = Vec::new();
    for c in &cases {
        if c.platform == "W" {
            continue;
        }
        run += 1;
        let got = lex.expand_word(&c.source, &env);
        let ok = match (&got, c.expected.as_str()) {
            (Err(_), "error") => true,
            (Ok(v), exp) => v == exp && exp != "error",
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "line {}: {:?} => {:?}, expected {:?}",
                c.line, c.source, got, c.expected
            ));
        }
    }
    tally!("envVarTest: {}/{run}", run - failures.len());
    assert_eq!(cases.len(), 230, "the table has 230 cases");
    assert_eq!(run, 228, "226 all-OS + 2 unix lines");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn wordstest_all_lines() {
    let lex = Expander::new('\\');
    let text = read_peer("wordsTest");
    let mut env: Vec<(String, String)> = Vec::new();
    let mut run = 0;
    let mut failures = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("ENV ") {
            let kv = rest.trim_start_matches(' ');
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            env.push((k.to_string(), v.to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 2, "wordsTest line {}: {line:?}", i + 1);
        let input = fields[0].trim();
        let expected: Vec<String> = fields[1]
            .trim_start_matches(' ')
            .split(',')
            .map(str::to_string)
            .collect();
        run += 1;
        let got = lex
            .expand_words(input, &env)
            .unwrap_or_else(|_| vec!["error".to_string()]);
        if got != expected {
            failures.push(format!(
                "line {}: {input:?} => {got:?}, expected {expected:?}",
                i + 1
            ));
        }
    }
    tally!("wordsTest: {}/{run}", run - failures.len());
    assert_eq!(run, 24);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn json_env(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .expect("envs is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_string()))
        .collect()
}

fn json_set(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .expect("an array of names")
        .iter()
        .map(|n| n.as_str().expect("a name").to_string())
        .collect()
}

#[test]
fn process_with_matches_all_cases() {
    let lex = Expander::new('\\');
    let text = read_peer("process_with_matches.jsonl");
    let mut run = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("valid JSON line");
        let input = case["input"].as_str().expect("input");
        let env = json_env(&case["envs"]);
        let got = lex.expand_word_with_matches(input, &env);
        run += 1;
        let ok = if case["expect_error"].as_bool() == Some(true) {
            got.is_err()
        } else {
            match &got {
                Ok(e) => {
                    Some(e.value.as_str()) == case["expected"].as_str()
                        && e.matched == json_set(&case["matches"])
                        && e.unmatched == json_set(&case["unmatched"])
                }
                Err(_) => false,
            }
        };
        if !ok {
            failures.push(format!("{}: {input:?} => {got:?}", case["source"]));
        }
    }
    tally!("process_with_matches: {}/{run}", run - failures.len());
    assert_eq!(run, 47);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mandatory_and_platform_all_cases() {
    let text = read_peer("mandatory_and_platform_cases.jsonl");
    let mut run = 0;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("valid JSON line");
        let escape = case["escape"]
            .as_str()
            .and_then(|s| s.chars().next())
            .unwrap_or('\\');
        let lex = Expander::new(escape);
        let input = case["input"].as_str().expect("input");
        let env = json_env(&case["envs"]);
        let got = lex.expand_word_with_matches(input, &env);
        run += 1;
        let ok = match (&got, case["expect_error"].as_bool() == Some(true)) {
            (Err(e), true) => match case["error_contains"].as_str() {
                Some(want) => e.to_string().contains(want),
                None => true,
            },
            (Ok(e), false) => Some(e.value.as_str()) == case["expected"].as_str(),
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: {input:?} => {got:?}", case["source"]));
        }
    }
    tally!("mandatory_and_platform: {}/{run}", run - failures.len());
    assert_eq!(run, 9);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn mandatory_error_is_the_required_variant_with_expanded_message() {
    let env: BTreeMap<String, String> = [("ARG".to_string(), "x".to_string())].into();
    let err = Expander::new('\\')
        .expand_word("ab${VAR:?message here$ARG}", &env)
        .unwrap_err();
    assert_eq!(
        err,
        ExpandError::Required {
            name: "VAR".into(),
            message: "message herex".into(),
            column: 3
        }
    );
    assert_eq!(err.to_string(), "VAR: message herex");
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[char] = &[
    '$', '{', '}', ':', '-', '+', '?', '=', '#', '%', '/', '\\', '`', '\'', '"', ' ', '\t', '\n',
    '*', '.', '0', '1', '@', '!', 'a', 'P', 'W', 'D', '_', '한', '\u{FEFF}', '\u{85}', '\0',
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(4) {
        let c = ALPHABET[rng.below(ALPHABET.len())];
        let at = rng.below(chars.len() + 1);
        match rng.below(3) {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = c,
            _ => chars.push(c),
        }
    }
    chars.into_iter().collect()
}

#[test]
fn fuzz_no_panic_and_invariants() {
    let seeds: Vec<String> = envvar_cases().into_iter().map(|c| c.source).collect();
    let mut env: BTreeMap<String, String> = envvar_env().into_iter().collect();
    env.insert("PAT".into(), "*".into());
    env.insert("SP".into(), " a  b ".into());
    let lexers = [
        Expander::new('\\'),
        Expander::new('`'),
        Expander::new('\\')
            .with_raw_quotes(true)
            .with_skip_unset(true),
        Expander::new('\\').with_skip_process_quotes(true),
        Expander::new('\\')
            .with_raw_escapes(true)
            .with_raw_quotes(true),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut runs = 0u64;
    let mut errors = 0u64;
    while Instant::now() < deadline && runs < 400_000 {
        let input = if rng.below(4) == 0 {
            let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, seed)
        };
        let lex = lexers[rng.below(lexers.len())];
        runs += 1;
        match lex.expand_word_with_matches(&input, &env) {
            Ok(e) => {
                assert!(
                    e.words.iter().all(|w| !w.is_empty()),
                    "{input:?}: empty word in {:?}",
                    e.words
                );
                assert!(e.matched.is_disjoint(&e.unmatched), "{input:?}");
                assert_eq!(lex.expand_word(&input, &env).as_ref(), Ok(&e.value));
            }
            Err(err) => {
                errors += 1;
                let col = err.column();
                assert!(
                    col >= 1 && col <= input.chars().count() + 1,
                    "{input:?}: column {col} out of range for {err}"
                );
            }
        }
    }
    // Deep nesting is an error, not a stack overflow.
    let deep = "${A:-".repeat(5000) + &"}".repeat(5000);
    assert!(matches!(
        Expander::new('\\').expand_word(&deep, &env),
        Err(ExpandError::TooDeep { .. })
    ));
    tally!("fuzz: {runs} inputs, {errors} errors, no panic");
    assert!(runs > 1000, "the fuzz loop ran only {runs} inputs");
}
