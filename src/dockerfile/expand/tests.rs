//! Unit tables for the expander: modes, errors and their columns, env kinds.

use super::*;

fn env() -> BTreeMap<String, String> {
    [("PWD", "/home"), ("EMPTY", ""), ("SP", " a  b ")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn placeholder() {
    assert_eq!(
        Expander::new('\\').expand_word("$PWD", &env()).unwrap(),
        "/home"
    );
}
