//! `ADD <url>`: downloading one HTTP(S) source with reqwest, checking `--checksum`,
//! naming the file after the URL path, and reading `Last-Modified` for its mtime.
//! Git sources are refused by the caller.

use sha2::{Digest, Sha256};

use super::At;
use super::{ExecError, Result};

/// One downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The file name taken from the URL path (`None` for a path of `/`).
    pub name: Option<String>,
    /// The body.
    pub data: Vec<u8>,
    /// `Last-Modified` as seconds since the epoch (0 when absent or unreadable).
    pub mtime: u64,
    /// `sha256:<hex>` of the body.
    pub digest: String,
}

/// Whether an ADD source is a remote URL (http, https, or a git reference).
pub fn is_remote(src: &str) -> bool {
    src.contains("://") || src.starts_with("git@")
}

/// Whether a remote source is a git repository (which xplat does not fetch).
pub fn is_git(src: &str) -> bool {
    src.starts_with("git@")
        || src.starts_with("git://")
        || src.contains(".git#")
        || src.split('#').next().unwrap_or("").ends_with(".git")
}

/// The file name a URL gives: the last segment of its path, without query or fragment.
pub fn url_file_name(url: &str) -> Option<String> {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("");
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    (!name.is_empty() && name != "." && name != "..").then(|| name.to_string())
}

/// Downloads `url`, verifying `checksum` (`sha256:<hex>`) when given.
pub async fn download(at: &At<'_>, url: &str, checksum: Option<&str>) -> Result<Download> {
    let failed = |reason: String| ExecError::Download {
        stage: at.stage(),
        line: at.line,
        url: url.to_string(),
        reason,
    };
    let expected = match checksum {
        None => None,
        Some(c) => match c.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            _ => {
                return Err(ExecError::BadChecksum {
                    stage: at.stage(),
                    line: at.line,
                    value: c.to_string(),
                })
            }
        },
    };
    let fail = |e: reqwest::Error| failed(e.to_string());
    let resp = reqwest::get(url).await.map_err(fail)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(failed(format!("HTTP status {status}")));
    }
    let mtime = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or(0);
    let data = resp.bytes().await.map_err(fail)?.to_vec();
    let hex = hex::encode(Sha256::digest(&data));
    if let Some(want) = expected {
        if want != hex {
            return Err(ExecError::ChecksumMismatch {
                stage: at.stage(),
                line: at.line,
                url: url.to_string(),
                expected: format!("sha256:{want}"),
                actual: format!("sha256:{hex}"),
            });
        }
    }
    Ok(Download {
        name: url_file_name(url),
        data,
        mtime,
        digest: format!("sha256:{hex}"),
    })
}

/// Parses an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to epoch seconds.
/// Written here rather than adding a crate for one header; the obsolete formats give `None`.
pub fn parse_http_date(s: &str) -> Option<u64> {
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
    let days = era * 146097 + doe - 719468;
    u64::try_from(days * 86400 + h * 3600 + m * 60 + sec).ok()
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
    fn file_names_from_urls() {
        assert_eq!(
            url_file_name("http://h/a/b.tar.gz?x=1#f").as_deref(),
            Some("b.tar.gz")
        );
        assert_eq!(url_file_name("http://h/foobar/").as_deref(), Some("foobar"));
        assert_eq!(url_file_name("http://h"), None);
        assert_eq!(url_file_name("http://h/"), None);
    }

    #[test]
    fn remote_kinds() {
        assert!(is_remote("https://example.com/x"));
        assert!(!is_remote("dir/x"));
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/file.tar.gz"));
    }
}
