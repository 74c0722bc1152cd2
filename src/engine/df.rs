//! Volume sizes from engines older than API 1.52, which put them in a top-level
//! `Volumes` list of `GET /system/df` that bollard 0.21's (API 1.53) model drops.
//!
//! bollard has no raw-request API, so this sends one plain HTTP/1.0 request over the
//! same unix socket or tcp address (not TLS: there sizes stay unknown). Sizes are
//! informational (the `xplat prune` summary), so any failure here means "unknown",
//! never an error.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::config::Endpoint;

/// Volume name → bytes, as far as the engine reports them; empty when unknown.
pub(super) async fn legacy_volume_sizes(
    endpoint: &Endpoint,
    api_version: &str,
) -> BTreeMap<String, i64> {
    let request = format!("GET /v{api_version}/system/df HTTP/1.0\r\nHost: docker\r\n\r\n");
    let exchange = async {
        match endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.ok()?;
                exchange(stream, &request).await
            }
            Endpoint::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
                exchange(stream, &request).await
            }
            Endpoint::TcpTls { .. } | Endpoint::TcpTlsFiles { .. } | Endpoint::Ssh(_) => None,
        }
    };
    // `system df` walks every volume: slow on big hosts, hence the generous limit.
    match tokio::time::timeout(Duration::from_secs(120), exchange).await {
        Ok(Some(body)) => parse_legacy_df(&body),
        _ => BTreeMap::new(),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &str,
) -> Option<Vec<u8>> {
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    http_body(&response).map(<[u8]>::to_vec)
}

/// The body of a `200` HTTP/1.x response without chunked encoding (an HTTP/1.0
/// request gets none from the engine).
fn http_body(response: &[u8]) -> Option<&[u8]> {
    let end = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let status = head.lines().next()?;
    if status.split_whitespace().nth(1) != Some("200") {
        return None;
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return None;
    }
    Some(&response[end + 4..])
}

/// `{"Volumes":[{"Name":…,"UsageData":{"Size":N}}]}` → name → N (a size of -1 means
/// the engine did not compute it, and is left out).
fn parse_legacy_df(body: &[u8]) -> BTreeMap<String, i64> {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return BTreeMap::new();
    };
    json.get("Volumes")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let name = v.get("Name")?.as_str()?.to_string();
            let size = v.get("UsageData")?.get("Size")?.as_i64()?;
            (size >= 0).then_some((name, size))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_and_skips_uncomputed_ones() {
        let body = br#"{"LayersSize":1,"Volumes":[
            {"Name":"a","UsageData":{"Size":4096,"RefCount":0}},
            {"Name":"b","UsageData":{"Size":-1,"RefCount":0}},
            {"Name":"c"}]}"#;
        assert_eq!(
            parse_legacy_df(body),
            BTreeMap::from([("a".to_string(), 4096)])
        );
        assert!(parse_legacy_df(b"not json").is_empty());
        assert!(parse_legacy_df(b"{}").is_empty());
    }

    #[test]
    fn http_body_needs_a_plain_200() {
        assert_eq!(
            http_body(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}"),
            Some(&b"{}"[..])
        );
        assert_eq!(http_body(b"HTTP/1.0 404 Not Found\r\n\r\nno"), None);
        assert_eq!(
            http_body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"),
            None
        );
        assert_eq!(http_body(b"garbage"), None);
    }
}
