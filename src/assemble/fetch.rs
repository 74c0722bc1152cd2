//! `ADD <url>` downloads for the assembler (`stage` stays pure and takes them as values):
//! one GET per http(s) source, `--checksum` verified, `Last-Modified` as the file's mtime.
//! Bodies are held in memory (ADD of a URL is for small files; a large one belongs in the
//! context).

use sha2::{Digest, Sha256};

use super::error::{AssembleError, Result};
use crate::dockerfile::Instruction;
use crate::registry::redact::redact;
use crate::stage::{url, Download};

/// The downloads an ADD needs (none for anything else).
pub async fn downloads(instr: &Instruction) -> Result<Vec<Download>> {
    let Instruction::Add(a) = instr else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for src in a.sources.iter().filter(|s| url::is_url(s)) {
        out.push(download(src, a.checksum.as_deref()).await?);
    }
    Ok(out)
}

/// Downloads `url`, verifying `checksum` (`sha256:<hex>`) when given.
pub async fn download(url: &str, checksum: Option<&str>) -> Result<Download> {
    let shown = redact(url);
    let expected = match checksum {
        None => None,
        Some(c) => match c.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            _ => return Err(AssembleError::InvalidChecksum { value: c.into() }),
        },
    };
    let fail = |e: reqwest::Error| AssembleError::Download {
        url: shown.clone(),
        reason: redact(&e.to_string()),
    };
    let resp = reqwest::get(url).await.map_err(fail)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(AssembleError::Download {
            url: shown,
            reason: format!("HTTP status {status}"),
        });
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(0);
    let data = resp.bytes().await.map_err(fail)?;
    let hex = hex::encode(Sha256::digest(&data));
    if let Some(want) = expected {
        if want != hex {
            return Err(AssembleError::ChecksumMismatch {
                url: shown,
                expected: format!("sha256:{want}"),
                actual: format!("sha256:{hex}"),
            });
        }
    }
    Ok(Download {
        url: url.to_string(),
        data,
        mtime,
    })
}

/// Parses an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to epoch seconds; the
/// obsolete formats give `None`.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let rest = s.trim().split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146097 + doe - 719468).map(|days| days * 86400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(951825600)
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("garbage"), None);
    }

    #[test]
    fn a_bad_checksum_value_is_refused_before_any_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(download("http://127.0.0.1:9/x", Some("md5:abc")))
            .unwrap_err();
        assert!(
            matches!(err, AssembleError::InvalidChecksum { .. }),
            "{err}"
        );
    }
}
