//! The string rules of the image-spec schemas the validator checks field by field: media
//! types, digests, URIs and RFC 3339 date-times.

/// `^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$`
pub fn is_media_type(s: &str) -> bool {
    let part = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(c))
    };
    s.split_once('/').is_some_and(|(t, st)| part(t) && part(st))
}

/// `^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`, and for the registered algorithms
/// (sha256, sha512) the encoded part must be lowercase hex of the right length.
pub fn check_digest(s: &str) -> std::result::Result<(), &'static str> {
    let (alg, enc) = s.split_once(':').ok_or("no `algorithm:` prefix")?;
    let lower = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut prev_sep = true;
    for c in alg.as_bytes() {
        if lower(c) {
            prev_sep = false;
        } else if b"+._-".contains(c) && !prev_sep {
            prev_sep = true;
        } else {
            return Err("malformed algorithm");
        }
    }
    if prev_sep {
        return Err("malformed algorithm");
    }
    if enc.is_empty()
        || !enc
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"=_-".contains(&c))
    {
        return Err("malformed encoded part");
    }
    let hex_len = match alg {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    if let Some(n) = hex_len {
        if enc.len() != n
            || !enc
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        {
            return Err("must be lowercase hex of the algorithm's length");
        }
    }
    Ok(())
}

/// An absolute URI: a scheme (`[A-Za-z][A-Za-z0-9+.-]*:`) and no whitespace or control characters.
pub(super) fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut sb = scheme.bytes();
    sb.next().is_some_and(|c| c.is_ascii_alphabetic())
        && sb.all(|c| c.is_ascii_alphanumeric() || b"+.-".contains(&c))
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10))
    {
        return false;
    }
    if !(matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', ..] => {
            let z = &s[i + 1..];
            z.len() == 5 && z.as_bytes()[2] == b':' && digits(i + 1..i + 3) && digits(i + 4..i + 6)
        }
        _ => false,
    }
}
