//! `{name}` placeholders in tags, labels and annotations. `{{` and `}}` are
//! literal braces. Names are `[A-Za-z0-9_.-]+`.

use std::collections::BTreeMap;

/// Why a value could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubstError {
    /// `{name}` with no value; `at` is the byte offset of `{`.
    Unset {
        /// The placeholder's name.
        name: String,
        /// Byte offset of `{` in the value.
        at: usize,
    },
    /// A `{` with no matching `}`, an empty `{}`, a bad name, or a lone `}`.
    Malformed {
        /// Byte offset of the offending brace.
        at: usize,
    },
}

/// Replaces every `{name}` in `value` with `vars[name]`.
pub fn substitute(value: &str, vars: &BTreeMap<String, String>) -> Result<String, SubstError> {
    let mut out = String::with_capacity(value.len());
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < value.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push('{');
                i += 2;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                out.push('}');
                i += 2;
            }
            b'{' => {
                let close = value[i + 1..]
                    .find('}')
                    .ok_or(SubstError::Malformed { at: i })?;
                let name = &value[i + 1..i + 1 + close];
                let valid = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if !valid {
                    return Err(SubstError::Malformed { at: i });
                }
                let v = vars.get(name).ok_or_else(|| SubstError::Unset {
                    name: name.to_string(),
                    at: i,
                })?;
                out.push_str(v);
                i += close + 2;
            }
            b'}' => return Err(SubstError::Malformed { at: i }),
            _ => {
                let c = value[i..].chars().next().expect("in bounds");
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("version", "1.2.3"), ("git_short_sha", "abc1234")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitution_table() {
        let ok = [
            ("reg/app:{version}", "reg/app:1.2.3"),
            ("reg/app:{version}-{git_short_sha}", "reg/app:1.2.3-abc1234"),
            ("no placeholders", "no placeholders"),
            ("{{literal}}", "{literal}"),
            ("ünï{version}", "ünï1.2.3"),
        ];
        for (input, want) in ok {
            assert_eq!(substitute(input, &vars()).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            (
                "reg/app:{nope}",
                SubstError::Unset {
                    name: "nope".into(),
                    at: 8,
                },
            ),
            ("reg/app:{version", SubstError::Malformed { at: 8 }),
            ("reg/app:{}", SubstError::Malformed { at: 8 }),
            ("a}b", SubstError::Malformed { at: 1 }),
            ("{a b}", SubstError::Malformed { at: 0 }),
        ];
        for (input, want) in bad {
            assert_eq!(substitute(input, &vars()), Err(want), "{input}");
        }
    }
}
