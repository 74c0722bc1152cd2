//! The `.dockerignore` table. Expectations are facts from the Docker documentation's
//! `.dockerignore` section and moby/patternmatcher's test tables (TestMatches,
//! multiPatternTests, the folder-exception tests, ignorefile TestReadAll).

use super::*;

/// (patterns, path, excluded?)
const CASES: &[(&[&str], &str, bool)] = &[
    // `**` in all positions (patternmatcher TestMatches, parent matching applies).
    (&["**"], "file", true),
    (&["**"], "dir/file", true),
    (&["**/"], "file", true),
    (&["**/**"], "dir/file", true),
    (&["dir/**"], "dir/file", true),
    (&["dir/**"], "dir/dir2/file", true),
    (&["**/dir"], "dir", true),
    (&["**/dir"], "dir/file", true),
    (&["**/dir2/*"], "dir/dir2/file", true),
    (&["**/dir2/**"], "dir/dir2/dir3/file", true),
    (&["**file"], "file", true),
    (&["**file"], "dir/file", true),
    (&["**/file"], "dir/dir/file", true),
    (&["**/file*"], "dir/dir/file.txt", true),
    (&["**/file*txt"], "dir/dir/file.txt", true),
    (&["**/**/*.txt"], "dir/dir/file.txt", true),
    (&["**/**/*.txt2"], "dir/dir/file.txt", false),
    (&["**/*.txt"], "file.txt", true),
    (&["a**/*.txt"], "a/dir/dir/file.txt", true),
    (&["a/*.txt"], "a/dir/file.txt", false),
    (&["a/*.txt"], "a/file.txt", true),
    (&["a/*.txt**"], "a/file.txt", true),
    (&["**/foo/bar"], "dir/dir2/foo/bar", true),
    (&["abc/**"], "abc", false),
    (&["abc/**"], "abc/def/ghi", true),
    (&["**/.foo"], ".foo", true),
    (&["**/.foo"], "bar.foo", false),
    // Classes, `?`, and regexp metacharacters that are literal in patterns.
    (&["a[b-d]e"], "ae", false),
    (&["a[b-d]e"], "ace", true),
    (&["a[^b-d]e"], "aze", true),
    (&[".*"], ".foo", true),
    (&[".*"], "foo", false),
    (&["abc.def"], "abcdef", false),
    (&["abc?def"], "abcZdef", true),
    (&["abc?def"], "abcdef", false),
    (&["a(b)c/def"], "a(b)c/def", true),
    (&["a.|)$(}+{bc"], "a.|)$(}+{bc", true),
    (
        &["dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        true,
    ),
    (&["a\\*b"], "a*b", true),
    (&["a\\*b"], "ab", false),
    // `*` does not cross '/', but a matched directory excludes its children.
    (&["*"], "fileutils.go", true),
    (&["*.go"], "fileutils.go", true),
    (&["*.go"], "dir/fileutils.go", false),
    (&["*/temp*"], "somedir/temporary.txt", true),
    (&["*/temp*"], "somedir/temp", true),
    (&["*/temp*"], "temp", false),
    (&["*/*/temp*"], "a/b/temp.txt", true),
    (&["temp?"], "tempa", true),
    (&["temp?"], "temp", false),
    (&["docs"], "docs/sub/page.md", true),
    // Exceptions: last match wins; an exception before the pattern has no effect.
    (&["!fileutils.go", "*.go"], "fileutils.go", true),
    (&["*.go", "!fileutils.go"], "fileutils.go", false),
    (&["docs", "!docs/README.md"], "docs/README.md", false),
    (&["docs/", "!docs/README.md"], "docs/README.md", false),
    (&["docs/*", "!docs/README.md"], "docs/README.md", false),
    (&["docs", "!docs/README.md"], "docs/other.md", true),
    (
        &["*.md", "!README*.md", "README-secret.md"],
        "README-secret.md",
        true,
    ),
    (
        &["*.md", "!README*.md", "README-secret.md"],
        "README-public.md",
        false,
    ),
    (
        &["*.md", "README-secret.md", "!README*.md"],
        "README-secret.md",
        false,
    ),
    (&["**", "!util/docker/web"], "util/docker/web/foo", false),
    (
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo",
        true,
    ),
    (
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
        false,
    ),
    // Cleaning: leading '/', './', trailing '/', inner '..' are normalised.
    (&["/foo/bar"], "foo/bar", true),
    (&["./foo"], "foo", true),
    (&["foo/"], "foo/x", true),
    (&["a/../b"], "b", true),
    (&["  spaced  "], "spaced", true),
    // No patterns, and the root itself.
    (&[], "any/path/there", false),
    (&["*"], ".", false),
];

#[test]
fn ignore_table() {
    let mut failures = Vec::new();
    for (patterns, path, want) in CASES {
        let ig = Ignore::from_patterns(patterns).expect("valid patterns");
        let text: String = patterns.iter().map(|p| format!("{p}\n")).collect();
        let via_file = Ignore::parse(&text).expect("valid file");
        // Only the file reader strips a leading '/' (moby ReadAll), not the compiler (New).
        let mut checks = vec![("parse", via_file.is_excluded(path))];
        if !patterns.iter().any(|p| p.starts_with('/')) {
            checks.push(("from_patterns", ig.is_excluded(path)));
        }
        for (how, got) in checks {
            if got != *want {
                failures.push(format!(
                    "{how} {patterns:?} {path:?}: got {got}, want {want}"
                ));
            }
        }
    }
    assert!(CASES.len() >= 40, "keep the table at least 40 cases");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn read_all_rules() {
    // ignorefile TestReadAll: comments dropped, '/' stripped, '!' kept, blank lines skipped.
    let text =
        "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n";
    let ig = Ignore::parse(text).unwrap();
    let got: Vec<(bool, &str)> = ig
        .patterns()
        .iter()
        .map(|p| (p.is_exception(), p.text()))
        .collect();
    assert_eq!(
        got,
        vec![
            (false, "test1"),
            (false, "test2"),
            (false, "a/file/here"),
            (false, "lastfile"),
            (true, "inverted/abs/path"),
        ]
    );
}

#[test]
fn lone_exclamation_is_an_error() {
    assert!(Ignore::parse("!\n").is_err());
    assert!(Ignore::parse("! \n").is_err());
}

#[test]
fn malformed_patterns_are_errors() {
    for bad in ["[", "a[", "\\", "[]a]", "[x-]", "[Local-Only]/"] {
        assert!(
            Ignore::from_patterns(&[bad]).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn comment_only_at_line_start_and_crlf() {
    let ig = Ignore::parse("\u{feff}# c\r\n #notcomment\r\nbuild\r\n").unwrap();
    assert!(ig.is_excluded("#notcomment"));
    assert!(ig.is_excluded("build/x"));
    assert!(!ig.is_excluded("# c"));
}

#[test]
fn reinclude_lookahead() {
    let ig = Ignore::from_patterns(&["docs", "!docs/keep/*.md", "vendor"]).unwrap();
    assert!(ig.may_reinclude_under("docs"));
    assert!(ig.may_reinclude_under("docs/keep"));
    assert!(!ig.may_reinclude_under("docs/other"));
    assert!(!ig.may_reinclude_under("vendor"));
    let ig = Ignore::from_patterns(&["**", "!**/*.go"]).unwrap();
    assert!(ig.may_reinclude_under("any/dir"));
    let ig = Ignore::from_patterns(&["a/b/c", "!a"]).unwrap();
    assert!(ig.may_reinclude_under("a/b/c"));
}
