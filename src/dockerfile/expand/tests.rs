//! Unit tables for the expander: modes, errors and their columns, env kinds, name rules.

use super::*;

fn env() -> BTreeMap<String, String> {
    [
        ("PWD", "/home"),
        ("EMPTY", ""),
        ("SP", " a  b "),
        ("a", "A"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn word(lex: Expander, input: &str) -> Result<String> {
    lex.expand_word(input, &env())
}

fn plain() -> Expander {
    Expander::new('\\')
}

#[test]
fn errors_name_the_construct_and_its_column() {
    let table: &[(&str, ExpandError)] = &[
        ("he${}", ExpandError::BadSubstitution { column: 3 }),
        ("ab'cd", ExpandError::UnterminatedSingleQuote { column: 3 }),
        ("\"x", ExpandError::UnterminatedDoubleQuote { column: 1 }),
        ("x${PWD", ExpandError::MissingBrace { column: 2 }),
        ("${PWD:-abc", ExpandError::MissingBrace { column: 1 }),
        ("${", ExpandError::MissingBrace { column: 1 }),
        ("a${PWD/x", ExpandError::MissingSlash { column: 2 }),
        ("${PWD/x/y", ExpandError::MissingBrace { column: 1 }),
        (
            "${PWD:=x}",
            ExpandError::UnsupportedModifier {
                modifier: ":=".into(),
                column: 1,
            },
        ),
        (
            "${PWD=x}",
            ExpandError::UnsupportedModifier {
                modifier: "=".into(),
                column: 1,
            },
        ),
        (
            "${PWD:#x}",
            ExpandError::UnsupportedModifier {
                modifier: ":#".into(),
                column: 1,
            },
        ),
        (
            "${.}",
            ExpandError::UnsupportedModifier {
                modifier: ".".into(),
                column: 1,
            },
        ),
        (
            "${X:?}",
            ExpandError::Required {
                name: "X".into(),
                message: "is not allowed to be unset".into(),
                column: 1,
            },
        ),
        (
            "${EMPTY:?}",
            ExpandError::Required {
                name: "EMPTY".into(),
                message: "is not allowed to be empty".into(),
                column: 1,
            },
        ),
        (
            "${PWD#\\x}",
            ExpandError::InvalidEscape {
                pattern: "\\x".into(),
                escaped: "x".into(),
                column: 1,
            },
        ),
    ];
    for (input, want) in table {
        assert_eq!(word(plain(), input).as_ref(), Err(want), "{input:?}");
        assert_eq!(want.column(), word(plain(), input).unwrap_err().column());
    }
    // A failure inside a default is reported as is, not as a missing brace.
    assert_eq!(
        word(plain(), "${X:-${Y:?no}}z"),
        Err(ExpandError::Required {
            name: "Y".into(),
            message: "no".into(),
            column: 6
        })
    );
    assert_eq!(
        ExpandError::BadSubstitution { column: 3 }.to_string(),
        "syntax error: bad substitution at column 3"
    );
}

#[test]
fn backtick_escape_token() {
    let lex = Expander::new('`');
    assert_eq!(word(lex, "a`$PWD").unwrap(), "a$PWD");
    assert_eq!(word(lex, r"C:\dir\$PWD").unwrap(), r"C:\dir\/home");
    assert_eq!(word(lex, "\"a`\"b\"").unwrap(), "a\"b");
    assert_eq!(word(lex, "x``").unwrap(), "x`");
}

#[test]
fn raw_quotes_and_skip_unset_keep_text() {
    let lex = plain().with_raw_quotes(true).with_skip_unset(true);
    assert_eq!(
        word(lex, r#"'a $PWD'"b $PWD""#).unwrap(),
        r#"'a $PWD'"b /home""#
    );
    assert_eq!(
        word(lex, "$X ${X} ${X:-y} ${X//a/b} $PWD").unwrap(),
        "$X ${X} ${X:-y} ${X/a/b} /home"
    );
    // Skip-unset still refuses what BuildKit refuses when the name is set.
    assert!(word(lex, "${PWD:=y}").is_err());
    assert_eq!(word(lex, "${X:=y}").unwrap(), "${X:=y}");
}

#[test]
fn skip_process_quotes_treats_quotes_as_text() {
    let lex = plain().with_skip_process_quotes(true);
    assert_eq!(
        word(lex, r#"echo '$PWD' "$PWD""#).unwrap(),
        r#"echo '/home' "/home""#
    );
    assert_eq!(word(lex, "it's").unwrap(), "it's");
}

#[test]
fn raw_escapes_keep_the_escape_token() {
    let lex = plain().with_raw_escapes(true);
    assert_eq!(word(lex, r"a\$PWD").unwrap(), r"a\$PWD");
    assert_eq!(word(lex, r#""a\"b""#).unwrap(), r#"a\"b"#);
}

#[test]
fn words_split_on_unquoted_whitespace_only() {
    let e = env();
    let lex = plain();
    let table: &[(&str, &[&str])] = &[
        ("x${SP}y", &["x", "a", "b", "y"]),
        ("x\"${SP}\"y", &["x a  b y"]),
        ("\"\"", &[]),
        ("a \"\" b", &["a", "b"]),
        ("a\\ b", &["a b"]),
        ("  lead  trail  ", &["lead", "trail"]),
        // Each nesting level keeps its own buffer (see the module doc).
        ("a${X:-b}c", &["abc"]),
        ("a${X:-b c}d", &["ab", "cd"]),
    ];
    for (input, want) in table {
        assert_eq!(lex.expand_words(input, &e).unwrap(), *want, "{input:?}");
    }
}

#[test]
fn matches_record_every_lookup() {
    let got = plain()
        .expand_word_with_matches("$1 ${PWD:+x} ${EMPTY} $@ ${NOPE-d}", &env())
        .unwrap();
    assert_eq!(got.value, " x   d");
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(got.matched, set(&["EMPTY", "PWD"]));
    assert_eq!(got.unmatched, set(&["1", "@", "NOPE"]));
}

#[test]
fn names_follow_go_unicode_categories() {
    // U+0301 (a combining mark) is not a Go letter: the name ends before it.
    assert_eq!(word(plain(), "$a\u{301}").unwrap(), "A\u{301}");
    // Hangul is a letter: it continues the name.
    assert_eq!(word(plain(), "$PWD한").unwrap(), "");
    // '²' is No, not Nd: no positional parameter, the '$' stays.
    assert_eq!(word(plain(), "$²").unwrap(), "$²");
    // Arabic-Indic three is Nd: a positional parameter, empty.
    assert_eq!(word(plain(), "x$\u{663}y").unwrap(), "xy");
}

#[test]
fn leading_byte_order_mark_is_dropped_like_go_scanner() {
    assert_eq!(word(plain(), "\u{FEFF}$PWD").unwrap(), "/home");
    assert_eq!(word(plain(), "a\u{FEFF}").unwrap(), "a\u{FEFF}");
}

#[test]
fn env_kinds_and_precedence() {
    let pairs = vec![
        ("A".to_string(), "1".to_string()),
        ("A".to_string(), "2".to_string()),
    ];
    assert_eq!(plain().expand_word("$A", &pairs).unwrap(), "2");
    assert_eq!(plain().expand_word("$A", &pairs[..]).unwrap(), "2");
    assert_eq!(plain().expand_word("$A", &&pairs[..1]).unwrap(), "1");
}

#[test]
fn reference_doc_examples() {
    let e: BTreeMap<String, String> = [("str".to_string(), "foobarbaz".to_string())].into();
    let lex = plain();
    for (input, want) in [
        ("${str#f*b}", "arbaz"),
        ("${str##f*b}", "az"),
        ("${str%b*}", "foobar"),
        ("${str%%b*}", "foo"),
        ("${str/ba/fo}", "fooforbaz"),
        ("${str//ba/fo}", "fooforfoz"),
        ("${str//a/$0}", "foobrbz"),
        ("${str//a/['$0']}", "foob[a]rb[a]z"),
    ] {
        assert_eq!(lex.expand_word(input, &e).unwrap(), want, "{input}");
    }
}

#[test]
fn nesting_is_bounded() {
    let ok = "${A:-".repeat(MAX_NESTING) + "x" + &"}".repeat(MAX_NESTING);
    assert_eq!(word(plain(), &ok).unwrap(), "x");
    let deep = "${A:-".repeat(MAX_NESTING + 1) + &"}".repeat(MAX_NESTING + 1);
    assert!(matches!(
        word(plain(), &deep),
        Err(ExpandError::TooDeep { .. })
    ));
}
