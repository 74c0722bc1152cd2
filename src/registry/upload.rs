//! One blob's way into a repository: HEAD (skip if present), cross-repo mount
//! (falling back to the upload session a 202 opens, or to a fresh one after a
//! 401/403/404), then a monolithic PUT or a chunked PATCH sequence.
//!
//! Why not oci-client's `push_blob`: it always chunks at a fixed 4 MiB, cannot
//! retry a 413 chunked, turns a 202 mount into an error and drops the session
//! it opened, and restarts from byte 0 on failure. Here a transient failure
//! (connection reset, timeout, 5xx) during a chunked upload asks the registry
//! where it stands (`GET <session>` → `Range: 0-N`) and resumes from N+1.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::client::{unexpected, Access, RegistryClient, SendFailure};
use super::error::{RegistryError, Result};
use super::push::{PushEvent, PushOptions};
use super::reference::ImageRef;
use super::{Blob, BlobSource};

/// What happened to one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BlobOutcome {
    /// The registry already had it.
    Present,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Uploaded; `bytes` counts every byte sent, retries included.
    Uploaded { bytes: u64 },
}

enum Data {
    Memory(Bytes),
    File(PathBuf),
}

struct Session {
    url: Url,
    min_chunk: u64,
}

enum Failure {
    /// 413: the registry (or a proxy) refused the body size.
    TooLarge,
    Transient(String),
    Fatal(RegistryError),
}

impl From<SendFailure> for Failure {
    fn from(f: SendFailure) -> Self {
        match f {
            SendFailure::Transient(t) => Failure::Transient(t),
            SendFailure::Server(status) => Failure::Transient(format!("HTTP {status}")),
            SendFailure::Fatal(e) => Failure::Fatal(e),
        }
    }
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        Failure::Fatal(e)
    }
}

pub(crate) struct Uploader<'a> {
    pub client: &'a RegistryClient,
    pub target: &'a ImageRef,
    pub options: &'a PushOptions,
    pub on_event: &'a (dyn Fn(&PushEvent) + Send + Sync),
}

const OCTET: &str = "application/octet-stream";

impl Uploader<'_> {
    // Blob operations do not name the repository: the push they are part of does
    // (`pushing REPO: index not pushed: pushing blob D: …`).
    fn op(&self, blob: &Blob) -> String {
        format!("pushing blob {}", blob.digest)
    }

    pub(crate) async fn push(&self, blob: &Blob) -> Result<BlobOutcome> {
        if self.exists(blob).await? {
            (self.on_event)(&PushEvent::BlobSkipped {
                digest: blob.digest.clone(),
                size: blob.size,
            });
            return Ok(BlobOutcome::Present);
        }
        let mut session = None;
        let data = match &blob.source {
            BlobSource::Bytes(b) => {
                if b.len() as u64 != blob.size {
                    return Err(RegistryError::InvalidPushRequest {
                        reason: format!(
                            "blob {} is {} bytes in memory but declared {}",
                            blob.digest,
                            b.len(),
                            blob.size
                        ),
                    });
                }
                Data::Memory(b.clone())
            }
            BlobSource::File(p) => {
                let len =
                    tokio::fs::metadata(p)
                        .await
                        .map_err(|source| RegistryError::ReadingBlob {
                            digest: blob.digest.clone(),
                            path: p.clone(),
                            source,
                        })?;
                if len.len() != blob.size {
                    return Err(RegistryError::InvalidPushRequest {
                        reason: format!(
                            "blob {} file {} is {} bytes, declared {}",
                            blob.digest,
                            p.display(),
                            len.len(),
                            blob.size
                        ),
                    });
                }
                Data::File(p.clone())
            }
            BlobSource::Remote(source) => {
                if source.same_registry(self.target) && source.repository != self.target.repository
                {
                    match self.mount(blob, source).await? {
                        Mount::Done => {
                            (self.on_event)(&PushEvent::BlobMounted {
                                digest: blob.digest.clone(),
                                size: blob.size,
                                from: source.repository.clone(),
                            });
                            return Ok(BlobOutcome::Mounted);
                        }
                        Mount::Session(s) => session = Some(s),
                        Mount::Refused => {}
                    }
                }
                // Not mountable: copy through memory. Trade-off: base-image
                // layers are held whole; streaming would lose resumability.
                Data::Memory(self.client.fetch_blob(source, &blob.digest).await?)
            }
        };
        let bytes = self.upload(blob, &data, session).await?;
        (self.on_event)(&PushEvent::BlobUploaded {
            digest: blob.digest.clone(),
            size: blob.size,
            bytes_sent: bytes,
        });
        Ok(BlobOutcome::Uploaded { bytes })
    }

    async fn exists(&self, blob: &Blob) -> Result<bool> {
        let url = self
            .client
            .url(self.target, &format!("blobs/{}", blob.digest));
        let op = format!("checking blob {}", blob.digest);
        let resp = self
            .client
            .send(self.target, Access::Push, &op, self.on_event, &|c| {
                c.head(&url)
            })
            .await;
        let resp = match resp {
            Ok(resp) => resp,
            // HEAD only saves an upload. A registry that keeps failing it (seen after
            // distribution was killed mid-write: a half-written link file) may still accept
            // the blob, and the upload rewrites the link, so upload rather than give up.
            Err(RegistryError::ServerError { .. }) => return Ok(false),
            Err(e) => return Err(e),
        };
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(unexpected(&op, resp).await),
        }
    }

    async fn mount(&self, blob: &Blob, source: &ImageRef) -> Result<Mount> {
        let base = self.client.url(self.target, "blobs/uploads/");
        let op = format!("mounting blob {} from {}", blob.digest, source.repository);
        let resp = self
            .client
            .send(self.target, Access::Push, &op, self.on_event, &|c| {
                c.post(&base)
                    .query(&[
                        ("mount", blob.digest.as_str()),
                        ("from", source.repository.as_str()),
                    ])
                    .header(CONTENT_LENGTH, 0)
            })
            .await;
        let resp = match resp {
            Ok(r) => r,
            // Harbor and token registries without the source's pull scope refuse mounts: upload instead.
            Err(RegistryError::Unauthorized { .. }) => return Ok(Mount::Refused),
            Err(e) => return Err(e),
        };
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Done),
            StatusCode::ACCEPTED => Ok(match session_of(&resp) {
                Some(s) => Mount::Session(s),
                None => Mount::Refused,
            }),
            _ => Ok(Mount::Refused),
        }
    }

    async fn start_session(&self, blob: &Blob) -> Result<Session> {
        let url = self.client.url(self.target, "blobs/uploads/");
        let op = self.op(blob);
        let resp = self
            .client
            .send(self.target, Access::Push, &op, self.on_event, &|c| {
                c.post(&url).header(CONTENT_LENGTH, 0)
            })
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(unexpected(&op, resp).await);
        }
        session_of(&resp).ok_or(RegistryError::MissingLocation { operation: op })
    }

    async fn upload(&self, blob: &Blob, data: &Data, mut session: Option<Session>) -> Result<u64> {
        let policy = &self.client.options().retry;
        let mut chunked = blob.size > self.options.monolithic_max;
        let mut attempt = 1;
        let mut sent = 0;
        loop {
            let s = match session.take() {
                Some(s) => s,
                None => self.start_session(blob).await?,
            };
            let result = if chunked {
                self.chunked(blob, data, s, &mut sent).await
            } else {
                self.monolithic(blob, data, s, &mut sent).await
            };
            match result {
                Ok(()) => return Ok(sent),
                Err(Failure::TooLarge) if !chunked => {
                    (self.on_event)(&PushEvent::ChunkedFallback {
                        digest: blob.digest.clone(),
                    });
                    chunked = true;
                }
                Err(Failure::TooLarge) => {
                    return Err(RegistryError::UnexpectedStatus {
                        operation: self.op(blob),
                        url: self.client.url(self.target, "blobs/uploads/"),
                        status: 413,
                        body: format!(
                            "registry refuses chunks of {} bytes; lower the chunk size",
                            self.options.chunk_size
                        ),
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(reason)) => {
                    if attempt >= policy.attempts {
                        return Err(RegistryError::Unreachable {
                            operation: self.op(blob),
                            attempts: attempt,
                            reason,
                        });
                    }
                    (self.on_event)(&PushEvent::Retrying {
                        operation: self.op(blob),
                        attempt,
                        reason,
                    });
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn monolithic(
        &self,
        blob: &Blob,
        data: &Data,
        s: Session,
        sent: &mut u64,
    ) -> Result<(), Failure> {
        let body = read(blob, data, 0, blob.size).await?;
        let url = with_digest(&s.url, &blob.digest);
        let resp = self
            .client
            .send_once(self.target, Access::Push, &self.op(blob), &|c| {
                c.put(url.clone())
                    .header(CONTENT_TYPE, OCTET)
                    .body(body.clone())
            })
            .await;
        // The body went out (or partly did) whatever the answer.
        *sent += blob.size;
        let resp = resp?;
        match resp.status() {
            StatusCode::CREATED => Ok(()),
            StatusCode::PAYLOAD_TOO_LARGE => Err(Failure::TooLarge),
            _ => Err(Failure::Fatal(unexpected(&self.op(blob), resp).await)),
        }
    }

    async fn chunked(
        &self,
        blob: &Blob,
        data: &Data,
        s: Session,
        sent: &mut u64,
    ) -> Result<(), Failure> {
        let policy = &self.client.options().retry;
        let chunk = self.options.chunk_size.max(s.min_chunk).max(1);
        let mut url = s.url;
        let mut offset = 0u64;
        let mut attempt = 1;
        let op = self.op(blob);
        loop {
            let outcome: Result<(), Failure> = if offset < blob.size {
                let end = (offset + chunk).min(blob.size);
                let body = read(blob, data, offset, end - offset).await?;
                let target = url.clone();
                let range = format!("{offset}-{}", end - 1);
                let resp = self
                    .client
                    .send_once(self.target, Access::Push, &op, &|c| {
                        c.patch(target.clone())
                            .header(CONTENT_TYPE, OCTET)
                            .header("Content-Range", range.as_str())
                            .body(body.clone())
                    })
                    .await;
                *sent += end - offset;
                match resp {
                    Ok(r) if r.status() == StatusCode::ACCEPTED => {
                        url = location_of(&r).unwrap_or(url);
                        offset = end;
                        attempt = 1;
                        (self.on_event)(&PushEvent::BlobProgress {
                            digest: blob.digest.clone(),
                            offset,
                            size: blob.size,
                        });
                        Ok(())
                    }
                    Ok(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(Failure::TooLarge)
                    }
                    Ok(r) if r.status() == StatusCode::RANGE_NOT_SATISFIABLE => Err(
                        Failure::Transient(format!("registry refused range {range} (HTTP 416)")),
                    ),
                    Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                        return Err(Failure::Transient("upload session lost (HTTP 404)".into()))
                    }
                    Ok(r) => return Err(Failure::Fatal(unexpected(&op, r).await)),
                    Err(e) => Err(e.into()),
                }
            } else {
                let target = with_digest(&url, &blob.digest);
                let resp = self
                    .client
                    .send_once(self.target, Access::Push, &op, &|c| {
                        c.put(target.clone()).header(CONTENT_LENGTH, 0)
                    })
                    .await;
                match resp {
                    Ok(r) if r.status() == StatusCode::CREATED => return Ok(()),
                    Ok(r) => return Err(Failure::Fatal(unexpected(&op, r).await)),
                    Err(e) => Err(e.into()),
                }
            };
            match outcome {
                Ok(()) => continue,
                Err(Failure::Transient(reason)) => {
                    if attempt >= policy.attempts {
                        return Err(Failure::Fatal(RegistryError::Unreachable {
                            operation: op,
                            attempts: attempt,
                            reason,
                        }));
                    }
                    (self.on_event)(&PushEvent::Retrying {
                        operation: op.clone(),
                        attempt,
                        reason,
                    });
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                    // A finishing PUT whose answer was lost may have landed.
                    if offset >= blob.size && matches!(self.exists(blob).await, Ok(true)) {
                        return Ok(());
                    }
                    match self.status(&url, &op).await {
                        Ok((u, o)) => {
                            url = u;
                            offset = o;
                        }
                        // Session gone or registry still down: restart from a new session.
                        Err(f) => return Err(f),
                    }
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// Asks where an upload session stands: `GET <session>` → 204, `Range: 0-N`.
    async fn status(&self, url: &Url, op: &str) -> Result<(Url, u64), Failure> {
        let target = url.clone();
        let resp = self
            .client
            .send_once(self.target, Access::Push, op, &|c| c.get(target.clone()))
            .await?;
        match resp.status() {
            StatusCode::NO_CONTENT | StatusCode::ACCEPTED => {
                let next = resp
                    .headers()
                    .get("Range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_range_end)
                    // distribution answers "0-0" for an empty session too; chunks
                    // are never 1 byte, so read it as "nothing yet".
                    .map_or(0, |end| if end == 0 { 0 } else { end + 1 });
                Ok((location_of(&resp).unwrap_or_else(|| url.clone()), next))
            }
            StatusCode::NOT_FOUND => {
                Err(Failure::Transient("upload session lost (HTTP 404)".into()))
            }
            _ => Err(Failure::Fatal(unexpected(op, resp).await)),
        }
    }
}

enum Mount {
    Done,
    Session(Session),
    Refused,
}

async fn read(blob: &Blob, data: &Data, offset: u64, len: u64) -> Result<Bytes> {
    match data {
        Data::Memory(b) => Ok(b.slice(offset as usize..(offset + len) as usize)),
        Data::File(p) => {
            let io = |source| RegistryError::ReadingBlob {
                digest: blob.digest.clone(),
                path: p.clone(),
                source,
            };
            let mut f = tokio::fs::File::open(p).await.map_err(io)?;
            f.seek(SeekFrom::Start(offset)).await.map_err(io)?;
            let mut buf = vec![0; len as usize];
            f.read_exact(&mut buf).await.map_err(io)?;
            Ok(Bytes::from(buf))
        }
    }
}

fn location_of(resp: &Response) -> Option<Url> {
    let loc = resp.headers().get(LOCATION)?.to_str().ok()?;
    resp.url().join(loc).ok()
}

fn session_of(resp: &Response) -> Option<Session> {
    let min_chunk = resp
        .headers()
        .get("OCI-Chunk-Min-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Some(Session {
        url: location_of(resp)?,
        min_chunk,
    })
}

/// Adds `digest=` to a session URL, keeping the query it already has.
fn with_digest(url: &Url, digest: &str) -> Url {
    let mut u = url.clone();
    u.query_pairs_mut().append_pair("digest", digest);
    u
}

/// `0-1023` or `bytes=0-1023` → 1023.
pub(crate) fn parse_range_end(v: &str) -> Option<u64> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (start, end) = v.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    end.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_forms() {
        assert_eq!(parse_range_end("0-1023"), Some(1023));
        assert_eq!(parse_range_end("bytes=0-5"), Some(5));
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("junk"), None);
    }

    #[test]
    fn digest_is_appended_to_existing_query() {
        let u = Url::parse("http://h/v2/r/blobs/uploads/abc?_state=xyz").unwrap();
        assert_eq!(
            with_digest(&u, "sha256:00").as_str(),
            "http://h/v2/r/blobs/uploads/abc?_state=xyz&digest=sha256%3A00"
        );
    }
}
