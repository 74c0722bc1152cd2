//! One redaction function, applied to every URL, header and server answer
//! before it reaches a `Display` (ggcr's `redact.URL`, widened to free text,
//! because reqwest and oci-client errors embed URLs in their messages).

/// Query parameters whose values are secrets (signed storage URLs, tokens).
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "refresh_token",
    "token",
    "password",
    "secret",
    "code",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "se",
    "skoid",
    "sktid",
];

/// Auth schemes whose following word is a credential.
const AUTH_SCHEMES: &[&str] = &["basic ", "bearer "];

/// Replaces credentials in `text` with `REDACTED`: URL user-info
/// (`https://u:p@host`), secret query parameters (`?token=…`,
/// `X-Amz-Signature=…`) and `Basic`/`Bearer` header values. Everything else is
/// kept, so the message stays useful.
pub fn redact(text: &str) -> String {
    let text = redact_userinfo(text);
    let text = redact_params(&text);
    redact_auth_schemes(&text)
}

fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first of / ? # or whitespace.
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("REDACTED@");
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['?', '&', ';']) {
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        let name_end = after
            .find(|c: char| c == '=' || c == '&' || c.is_whitespace())
            .unwrap_or(after.len());
        let name = &after[..name_end];
        if after[name_end..].starts_with('=')
            && SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
        {
            let value = &after[name_end + 1..];
            let value_end = value
                .find(|c: char| c == '&' || c == '#' || c == '"' || c.is_whitespace())
                .unwrap_or(value.len());
            out.push_str(name);
            out.push_str("=REDACTED");
            rest = &value[value_end..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn redact_auth_schemes(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = AUTH_SCHEMES.iter().find(|s| {
            lower[i..].starts_with(*s)
                && (i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric())
        });
        if let Some(s) = hit {
            let after = i + s.len();
            let end = text[after..]
                .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
                .map_or(text.len(), |n| after + n);
            // `Bearer realm="..."` is a challenge, not a credential; base64
            // padding is the only '=' a credential may hold.
            let word = &text[after..end];
            let is_credential = !word.is_empty()
                && !word.trim_end_matches('=').contains('=')
                && !text[end..].starts_with('"');
            if is_credential {
                out.push_str(&text[i..after]);
                out.push_str("REDACTED");
                i = end;
                continue;
            }
        }
        let ch = text[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn removes_secrets_and_keeps_the_rest() {
        let cases = [
            (
                "https://user:pa55@reg.example/v2/",
                "https://REDACTED@reg.example/v2/",
            ),
            (
                "http://tok@127.0.0.1:5000/v2/a",
                "http://REDACTED@127.0.0.1:5000/v2/a",
            ),
            (
                "GET https://s3.example/b?X-Amz-Signature=abc123&X-Amz-Date=1 failed",
                "GET https://s3.example/b?X-Amz-Signature=REDACTED&X-Amz-Date=1 failed",
            ),
            (
                "https://auth.example/token?scope=x&access_token=zzz",
                "https://auth.example/token?scope=x&access_token=REDACTED",
            ),
            (
                "Authorization: Basic dXNlcjpwYXNz",
                "Authorization: Basic REDACTED",
            ),
            (
                "authorization: bearer eyJhbGciOi.x.y, next",
                "authorization: bearer REDACTED, next",
            ),
            ("Basic dXNlcjpwYXNzd29yZA==", "Basic REDACTED"),
            (
                "WWW-Authenticate: Bearer realm=\"https://auth.example/token\",service=\"r\"",
                "WWW-Authenticate: Bearer realm=\"https://auth.example/token\",service=\"r\"",
            ),
            (
                "plain text with ünïcode ?x=1",
                "plain text with ünïcode ?x=1",
            ),
            (
                "http://127.0.0.1:5000/v2/app/blobs/uploads/?digest=sha256:ab",
                "http://127.0.0.1:5000/v2/app/blobs/uploads/?digest=sha256:ab",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }
}
