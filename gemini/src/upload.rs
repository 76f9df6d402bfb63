//! The resumable upload protocol of the Files API.
//!
//! `POST {base}/upload/{ver}/files` with `X-Goog-Upload-Command: start` answers with an
//! `x-goog-upload-url`; the bytes then go there in chunks (`upload`, the last one
//! `upload, finalize`), each with its `X-Goog-Upload-Offset`. The finalize answer carries the
//! File wrapped as `{"file": {...}}`. Sources: python-genai `_api_client.py` `_upload_fd`
//! (8 MiB chunks) and `docs/gemini-protocol.md`
//!
//! Unlike the SDKs, a chunk that fails on the way (dropped connection, timeout, 429/5xx
//! without `x-goog-upload-status: final`) is resumed: the client asks `query`, reads
//! `X-Goog-Upload-Size-Received`, and sends the rest of the chunk from there (§1.6), within
//! the client's [`crate::RetryPolicy`].
//!
//! Two ways in: [`Client::upload_from`] streams each chunk's body from an [`UploadSource`]
//! that can be read again from any offset (a file, an object in a store), so no chunk is
//! held in memory; [`Client::upload_stream`] takes a one-pass stream and holds one chunk.

use std::{ops::Range, path::PathBuf};

use bytes::{Bytes, BytesMut};
use futures::{future::BoxFuture, stream::BoxStream, Future, Stream, StreamExt};
use reqwest::Response;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::{
    client::{api_error, retry_after_header, Client, Mode},
    error::{Error, Result},
    types::File,
};

/// Bytes per chunk, 8 MiB: the SDKs' `CHUNK_SIZE` and Gemini's
/// `x-goog-upload-chunk-granularity` (8388608).
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// Bytes each read of a [`FileSource`] asks the disk for at a time (64 KiB).
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// A chunk's bytes on their way out, as [`UploadSource::read`] gives them.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Bytes an upload can read again from any offset — a file on disk, an object in a store — so
/// that [`Client::upload_from`] holds no chunk in memory: each chunk's body streams from the
/// source, and a chunk cut short is read again from where Gemini says it stopped.
pub trait UploadSource: Send + Sync {
    /// The bytes in `range` (offsets in bytes, `end` exclusive): a stream of exactly
    /// `range.end - range.start` bytes.
    ///
    /// # Errors
    /// An I/O error when the source cannot be read from `range.start`.
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, std::io::Result<ByteStream>>;
}

/// A file on disk as an [`UploadSource`]: each read opens it, seeks, and streams
/// 64 KiB at a time.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// The file at `path` (opened at each read, not now).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileSource { path: path.into() }
    }
}

impl UploadSource for FileSource {
    fn read(&self, range: Range<u64>) -> BoxFuture<'_, std::io::Result<ByteStream>> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        Box::pin(async move {
            let mut file = tokio::fs::File::open(&self.path).await?;
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
            let part = file.take(range.end.saturating_sub(range.start));
            Ok(tokio_util::io::ReaderStream::with_capacity(part, READ_BUFFER_BYTES).boxed())
        })
    }
}

/// What the `start` request announces.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    /// Shown in `files.list`; up to 512 chars.
    pub display_name: Option<String>,
    /// MIME type, e.g. `application/pdf` (Gemini refuses unknown types with 400).
    pub mime_type: String,
    /// Exact total size, bytes.
    pub size_bytes: u64,
}

/// An upload session: where its chunks go and how many bytes it has taken.
#[derive(Debug)]
pub struct ResumableUpload {
    client: Client,
    url: Url,
    offset: u64,
    total: u64,
}

#[derive(Deserialize)]
struct Finalized {
    file: Option<File>,
}

/// Where chunks go, from the start URL and the `x-goog-upload-url` it answered with.
///
/// * Direct mode: a full URL is used as given (it is a capability; the SDKs do the same);
///   a bare query (`upload_id=…` or `?upload_id=…`) is put on the start URL.
/// * Gateway mode: only the query string is kept, whatever the header holds, and put on the
///   start URL — the header still names googleapis.com, which the gateway hides
///   (`docs/gemini-protocol.md`, "Addresses and keys").
///
/// # Errors
/// [`Error::Protocol`] when the header is empty or yields no query.
pub fn upload_target(start: &Url, header: &str, mode: Mode) -> Result<Url> {
    let header = header.trim();
    let absolute = Url::parse(header).ok().filter(|u| u.has_host());
    if let (Some(url), Mode::Direct) = (&absolute, mode) {
        return Ok(url.clone());
    }
    let query = match &absolute {
        Some(url) => url.query().unwrap_or_default().to_string(),
        None => header.split_once('?').map_or(header, |(_, q)| q).to_string(),
    };
    let query = query.split('#').next().unwrap_or_default();
    let mut url = start.clone();
    url.set_query(Some(query));
    // Checked after parsing: the URL parser drops tabs and newlines, so `?\t\t` has none.
    if url.query().is_none_or(str::is_empty) {
        return Err(Error::Protocol(format!("x-goog-upload-url has no query string: {header:?}")));
    }
    Ok(url)
}

impl Client {
    /// The URL of the resumable start: `{base}/upload/{ver}/files` directly, `{base}/files`
    /// behind a gateway.
    fn start_url(&self) -> Result<Url> {
        match self.config.mode {
            Mode::Direct => self.url(&format!("upload/{}/files", self.config.api_version)),
            Mode::Gateway => self.url("files"),
        }
    }

    /// Starts a resumable upload. Transient failures are retried.
    ///
    /// # Errors
    /// [`Error::Api`] when Gemini refuses (bad key, unsupported MIME type, …);
    /// [`Error::Protocol`] when the answer has no usable `x-goog-upload-url`.
    pub async fn start_upload(&self, req: &UploadRequest) -> Result<ResumableUpload> {
        let start = self.start_url()?;
        let mut file = serde_json::Map::new();
        if let Some(name) = &req.display_name {
            file.insert("displayName".into(), json!(name));
        }
        file.insert("mimeType".into(), json!(req.mime_type));
        file.insert("sizeBytes".into(), json!(req.size_bytes.to_string()));
        let body = json!({ "file": file });
        let res = self
            .with_retries("upload start", || async {
                let res = self
                    .request(reqwest::Method::POST, start.clone())?
                    .timeout(self.config.timeouts.request)
                    .header("X-Goog-Upload-Protocol", "resumable")
                    .header("X-Goog-Upload-Command", "start")
                    .header("X-Goog-Upload-Header-Content-Length", req.size_bytes.to_string())
                    .header("X-Goog-Upload-Header-Content-Type", &req.mime_type)
                    .json(&body)
                    .send()
                    .await?;
                crate::client::check(res).await
            })
            .await?;
        let header =
            res.headers().get("x-goog-upload-url").and_then(|v| v.to_str().ok()).ok_or_else(
                || Error::Protocol("the start answer has no x-goog-upload-url".into()),
            )?;
        let url = upload_target(&start, header, self.config.mode)?;
        Ok(ResumableUpload { client: self.clone(), url, offset: 0, total: req.size_bytes })
    }

    /// Uploads `req.size_bytes` bytes read from `source` in [`CHUNK_SIZE`] chunks and returns
    /// the File from the finalize answer (often still `PROCESSING`: see
    /// [`Client::wait_active`]). Each chunk's body streams from the source, so memory does
    /// not grow with the chunk size or the number of concurrent uploads; a chunk cut short by
    /// the network is read again from where Gemini says it stopped.
    ///
    /// # Errors
    /// [`Error::Source`] when the source cannot be read; the errors of
    /// [`Client::start_upload`] and [`ResumableUpload::send_chunk`] (a source shorter than
    /// announced fails its chunk, which is retried and then refused).
    pub async fn upload_from(
        &self,
        req: &UploadRequest,
        source: &dyn UploadSource,
    ) -> Result<File> {
        let mut session = self.start_upload(req).await?;
        loop {
            let end = session.offset.saturating_add(CHUNK_SIZE as u64).min(session.total);
            let last = end == session.total;
            if let Some(file) = session.send_range(source, end, last).await? {
                return Ok(file);
            }
            if last {
                return Err(Error::Protocol("finalize did not return a File".into()));
            }
        }
    }

    /// Uploads a byte stream of exactly `req.size_bytes` bytes in [`CHUNK_SIZE`] chunks and
    /// returns the File from the finalize answer (often still `PROCESSING`: see
    /// [`Client::wait_active`]). At most one chunk is held in memory (use
    /// [`Client::upload_from`] when the bytes can be read again); a chunk cut short by the
    /// network is resumed where Gemini says it stopped.
    ///
    /// # Errors
    /// [`Error::SizeMismatch`] when the stream is longer or shorter than announced (the
    /// session is then abandoned); [`Error::Source`] when the stream fails; the errors of
    /// [`Client::start_upload`] and [`ResumableUpload::send_chunk`].
    pub async fn upload_stream<S, E>(&self, req: &UploadRequest, stream: S) -> Result<File>
    where
        S: Stream<Item = std::result::Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let mut session = self.start_upload(req).await?;
        let mut stream = std::pin::pin!(stream);
        let mut buf = BytesMut::new();
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| Error::Source(e.to_string()))?;
            buf.extend_from_slice(&piece);
            let received = session.offset + buf.len() as u64;
            if received > session.total {
                return Err(Error::SizeMismatch { declared: session.total, actual: received });
            }
            while buf.len() >= CHUNK_SIZE {
                let chunk = buf.split_to(CHUNK_SIZE).freeze();
                let last = session.offset + chunk.len() as u64 == session.total;
                if let Some(file) = session.send_chunk(chunk, last).await? {
                    return Ok(file);
                }
            }
        }
        let received = session.offset + buf.len() as u64;
        if received != session.total {
            return Err(Error::SizeMismatch { declared: session.total, actual: received });
        }
        session
            .send_chunk(buf.freeze(), true)
            .await?
            .ok_or_else(|| Error::Protocol("finalize did not return a File".into()))
    }

    /// [`Client::upload_stream`] for bytes already in memory.
    ///
    /// # Errors
    /// As [`Client::upload_stream`].
    pub async fn upload_bytes(
        &self,
        display_name: Option<String>,
        mime_type: &str,
        bytes: Bytes,
    ) -> Result<File> {
        let req = UploadRequest {
            display_name,
            mime_type: mime_type.into(),
            size_bytes: bytes.len() as u64,
        };
        let once = futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]);
        self.upload_stream(&req, once).await
    }
}

/// What a chunk POST came back with.
pub(crate) enum Sent {
    /// The session goes on (`active`) or is done (`final`, with the File).
    Done(Option<Box<File>>),
    /// It failed in a way that may be resumed.
    Resumable(Error),
}

/// What `query` says about a session.
enum Progress {
    Active(u64),
    Final(Box<File>),
}

impl ResumableUpload {
    /// Bytes accepted so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes the session was started for.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Sends one chunk at the current offset: `upload`, or `upload, finalize` when `last`.
    /// Upload URLs are capabilities: in direct mode no key is sent with chunks, as the SDKs
    /// do; a gateway gets its subscription key.
    ///
    /// When the chunk fails on the way (a dropped connection, a timeout, a 429/5xx that does
    /// not end the session), the session is asked how much it has (`query`) and the rest of
    /// the chunk is sent from there, after the retry policy's delay; bounded by its
    /// `max_retries`.
    ///
    /// Returns `Some(File)` after finalize, `None` while the session stays `active`.
    ///
    /// # Errors
    /// [`Error::Api`] on a refusal that ends the session (`x-goog-upload-status: final`) or
    /// persists past the retries; [`Error::Protocol`] when `x-goog-upload-status` is not
    /// `active` before the end or not `final` after it, or `query` reports an impossible size.
    pub async fn send_chunk(&mut self, chunk: Bytes, last: bool) -> Result<Option<File>> {
        let start = self.offset;
        let end = start + chunk.len() as u64;
        self.send_part(end, last, None, |range| {
            let piece = chunk.slice((range.start - start) as usize..(range.end - start) as usize);
            std::future::ready(Ok(reqwest::Body::from(piece)))
        })
        .await
    }

    /// Sends the chunk made of `pieces` (starting at the current offset), the pieces sliced for
    /// each attempt's body rather than copied into one buffer. With `failed`, a first attempt
    /// was made and failed so (resumable): the session is asked how much it holds and the
    /// missing bytes are sent, as [`ResumableUpload::send_chunk`] does after a failure.
    pub(crate) async fn send_pieces(
        &mut self,
        pieces: Vec<Bytes>,
        last: bool,
        failed: Option<Error>,
    ) -> Result<Option<File>> {
        let start = self.offset;
        let end = start + pieces.iter().map(|p| p.len() as u64).sum::<u64>();
        self.send_part(end, last, failed, |range| {
            let part = pieces_in(&pieces, start, range);
            std::future::ready(Ok(reqwest::Body::wrap_stream(coalesced(part))))
        })
        .await
    }

    /// `X-Goog-Upload-Command: cancel`: ends the session without a File (a best effort: the
    /// session also lapses by itself upstream).
    ///
    /// # Errors
    /// [`Error::Api`] / [`Error::Transport`] when the cancel itself fails.
    pub async fn cancel(&self) -> Result<()> {
        let res = self
            .session_request()?
            .timeout(self.client.config.timeouts.request)
            .header("X-Goog-Upload-Command", "cancel")
            .send()
            .await?;
        crate::client::check(res).await.map(drop)
    }

    /// [`ResumableUpload::send_chunk`] for the bytes from the current offset to `end`, read
    /// from `source` as they go out (and read again from the resumed offset after a failure).
    ///
    /// # Errors
    /// [`Error::Source`] when `source` cannot be read; otherwise as
    /// [`ResumableUpload::send_chunk`].
    pub async fn send_range(
        &mut self,
        source: &dyn UploadSource,
        end: u64,
        last: bool,
    ) -> Result<Option<File>> {
        self.send_part(end, last, None, |range| async move {
            let bytes = source.read(range).await.map_err(|e| Error::Source(e.to_string()))?;
            Ok(reqwest::Body::wrap_stream(bytes))
        })
        .await
    }

    /// Sends the bytes from the current offset to `end`, each attempt's body made by `body`
    /// for the range still missing; resumes as [`ResumableUpload::send_chunk`] says. With
    /// `failed`, the first attempt has already been made and failed so.
    async fn send_part<F, Fut>(
        &mut self,
        end: u64,
        last: bool,
        mut failed: Option<Error>,
        body: F,
    ) -> Result<Option<File>>
    where
        F: Fn(Range<u64>) -> Fut,
        Fut: Future<Output = Result<reqwest::Body>>,
    {
        let start = self.offset;
        let policy = self.client.config.retry.clone();
        let mut delays = backon::BackoffBuilder::build(policy.backoff());
        loop {
            let mut err = match failed.take() {
                Some(err) => err,
                None => {
                    let rest = body(self.offset..end).await?;
                    match self.post(rest, end - self.offset, last).await? {
                        Sent::Done(file) => return Ok(file.map(|f| *f)),
                        Sent::Resumable(err) => err,
                    }
                }
            };
            // Resume: wait, ask how much arrived, go on from there.
            loop {
                let Some(delay) = policy.delay_after(&err, delays.next()) else { return Err(err) };
                tracing::warn!(offset = self.offset, error = %err, ?delay, "upload chunk failed; resuming");
                tokio::time::sleep(delay).await;
                match self.query().await {
                    Ok(Progress::Final(file)) if last => return Ok(Some(*file)),
                    Ok(Progress::Final(_)) => {
                        return Err(Error::Protocol(
                            "the upload was finalized with bytes remaining".into(),
                        ))
                    }
                    Ok(Progress::Active(received)) if (start..=end).contains(&received) => {
                        self.offset = received;
                        break;
                    }
                    Ok(Progress::Active(received)) => {
                        return Err(Error::Protocol(format!(
                        "query reports {received} bytes received, outside the chunk {start}..{end}"
                    )))
                    }
                    Err(e) if e.is_transient() => err = e,
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Sends `len` bytes (`body`) at the current offset, with an explicit `Content-Length` so
    /// that a streamed body is not sent chunked.
    pub(crate) async fn post(&mut self, body: reqwest::Body, len: u64, last: bool) -> Result<Sent> {
        let command = if last { "upload, finalize" } else { "upload" };
        tracing::debug!(offset = self.offset, len, command, "gemini upload chunk");
        let req = self
            .session_request()?
            .timeout(self.client.config.timeouts.chunk)
            .header("X-Goog-Upload-Command", command)
            .header("X-Goog-Upload-Offset", self.offset.to_string())
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        let res = match req.send().await {
            Ok(res) => res,
            Err(e) => return Ok(Sent::Resumable(e.into())),
        };
        let code = res.status();
        let status = upload_status(&res);
        if !code.is_success() {
            let retry_after = retry_after_header(&res);
            let body = res.text().await.unwrap_or_default();
            let err = api_error(code.as_u16(), &body, retry_after);
            // `final` on an error ends the session; without it the SDKs retry (§1.5).
            return if status != "final" && err.is_transient() {
                Ok(Sent::Resumable(err))
            } else {
                Err(err)
            };
        }
        match (last, status.as_str()) {
            (false, "active") => {
                self.offset += len;
                Ok(Sent::Done(None))
            }
            (true, "final") => {
                let file = finalized_file(res).await?;
                self.offset += len;
                Ok(Sent::Done(Some(Box::new(file))))
            }
            (true, other) => Err(Error::Protocol(format!(
                "upload status is `{other}` after the last byte, not `final`"
            ))),
            (false, other) => {
                Err(Error::Protocol(format!("upload status is `{other}` with bytes remaining")))
            }
        }
    }

    /// A POST to the session's URL: keyless in direct mode, with the subscription key behind
    /// a gateway.
    fn session_request(&self) -> Result<reqwest::RequestBuilder> {
        match self.client.config.mode {
            Mode::Direct => Ok(self.client.http.post(self.url.clone())),
            Mode::Gateway => self.client.request(reqwest::Method::POST, self.url.clone()),
        }
    }

    /// `X-Goog-Upload-Command: query`: how many bytes the session holds, or its File when
    /// it is already finalized.
    async fn query(&self) -> Result<Progress> {
        let res = self
            .session_request()?
            .timeout(self.client.config.timeouts.request)
            .header("X-Goog-Upload-Command", "query")
            .send()
            .await?;
        let status = upload_status(&res);
        let res = crate::client::check(res).await?;
        match status.as_str() {
            "final" => Ok(Progress::Final(Box::new(finalized_file(res).await?))),
            "active" => {
                let received = res
                    .headers()
                    .get("x-goog-upload-size-received")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| {
                        Error::Protocol("query answer has no X-Goog-Upload-Size-Received".into())
                    })?;
                Ok(Progress::Active(received))
            }
            other => Err(Error::Protocol(format!("query says the upload is `{other}`"))),
        }
    }
}

/// The bytes of `pieces` (which together start at offset `start`) in `range`, as slices of
/// them: nothing is copied.
fn pieces_in(pieces: &[Bytes], start: u64, range: Range<u64>) -> Vec<Bytes> {
    let mut at = start;
    let mut part = Vec::new();
    for piece in pieces {
        let (from, to) = (at, at + piece.len() as u64);
        at = to;
        if to <= range.start || from >= range.end {
            continue;
        }
        let first = range.start.saturating_sub(from) as usize;
        let past = (range.end.min(to) - from) as usize;
        part.push(piece.slice(first..past));
    }
    part
}

/// Bytes per write when small pieces are sent again: they are joined into buffers of about this
/// size as they go out (one buffer at a time, not the whole chunk), so that the connection is
/// written in large pieces.
const COALESCE_BYTES: usize = 256 * 1024;

/// `part` as a body stream of buffers of about [`COALESCE_BYTES`] (pieces that large already go
/// as they are).
fn coalesced(part: Vec<Bytes>) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let mut pieces = part.into_iter().peekable();
    futures::stream::iter(std::iter::from_fn(move || {
        let first = pieces.next()?;
        if first.len() >= COALESCE_BYTES || pieces.peek().is_none() {
            return Some(Ok(first));
        }
        let mut buffer = BytesMut::with_capacity(COALESCE_BYTES + first.len());
        buffer.extend_from_slice(&first);
        while buffer.len() < COALESCE_BYTES {
            match pieces.next_if(|p| buffer.len() + p.len() <= 2 * COALESCE_BYTES) {
                Some(piece) => buffer.extend_from_slice(&piece),
                None => break,
            }
        }
        Some(Ok(buffer.freeze()))
    }))
}

fn upload_status(res: &Response) -> String {
    res.headers()
        .get("x-goog-upload-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The File of a finalize answer, `{"file": {...}}`; a File with neither name nor uri is a
/// protocol error (`no-name-no-polling`), so that no polling starts on it.
async fn finalized_file(res: Response) -> Result<File> {
    let body: Finalized = crate::client::json(res).await?;
    let file =
        body.file.ok_or_else(|| Error::Protocol("the finalize answer has no `file`".into()))?;
    if file.name.is_empty() && file.uri.is_empty() {
        return Err(Error::Protocol("the finalized File has neither name nor uri".into()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Url {
        Url::parse("https://gw.azure-api.net/gemini/files").unwrap()
    }

    #[test]
    fn direct_mode_follows_a_full_url() {
        let header = "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=AB-c_9&upload_protocol=resumable";
        assert_eq!(upload_target(&start(), header, Mode::Direct).unwrap().as_str(), header);
    }

    #[test]
    fn gateway_mode_keeps_only_the_query() {
        let header = "https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id=AB-c_9&upload_protocol=resumable";
        let want =
            "https://gw.azure-api.net/gemini/files?upload_id=AB-c_9&upload_protocol=resumable";
        assert_eq!(upload_target(&start(), header, Mode::Gateway).unwrap().as_str(), want);
        for bare in [
            "?upload_id=AB-c_9&upload_protocol=resumable",
            "upload_id=AB-c_9&upload_protocol=resumable",
        ] {
            assert_eq!(upload_target(&start(), bare, Mode::Gateway).unwrap().as_str(), want);
            assert_eq!(upload_target(&start(), bare, Mode::Direct).unwrap().as_str(), want);
        }
    }

    #[test]
    fn pieces_are_sliced_not_copied() {
        let pieces =
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"defg"), Bytes::from_static(b"h")];
        let text = |range: Range<u64>| {
            pieces_in(&pieces, 10, range).iter().flat_map(|p| p.to_vec()).collect::<Vec<u8>>()
        };
        assert_eq!(text(10..18), b"abcdefgh");
        assert_eq!(text(12..15), b"cde");
        assert_eq!(text(13..17), b"defg");
        assert_eq!(text(17..18), b"h");
        assert_eq!(text(18..18), b"");
        assert_eq!(pieces_in(&pieces, 10, 14..16)[0].as_ptr(), pieces[1][1..].as_ptr(), "a slice");
    }

    #[test]
    fn small_pieces_go_out_joined() {
        let small: Vec<Bytes> = (0..100u8).map(|i| Bytes::from(vec![i; 10_000])).collect();
        let all: Vec<u8> = small.iter().flat_map(|p| p.to_vec()).collect();
        let out: Vec<Bytes> = futures::executor::block_on_stream(Box::pin(coalesced(small)))
            .map(Result::unwrap)
            .collect();
        assert!(out.len() < 10, "{} buffers", out.len());
        assert!(out.iter().all(|b| b.len() <= 2 * COALESCE_BYTES));
        assert_eq!(out.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>(), all, "the same bytes");
    }

    #[test]
    fn a_header_without_a_query_is_refused() {
        assert!(upload_target(&start(), "", Mode::Gateway).is_err());
        assert!(upload_target(&start(), "https://example.com/upload", Mode::Gateway).is_err());
        assert!(upload_target(&start(), "?", Mode::Direct).is_err());
        // Found by `cargo fuzz` (target upload_target): a query of tabs, which URLs drop.
        assert!(upload_target(&start(), "a=Aloa\t\t?\t\t#\0\t\tvaxx", Mode::Gateway).is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn start(gateway: bool) -> Url {
        Url::parse(if gateway {
            "https://gw.azure-api.net/gemini/files"
        } else {
            "https://generativelanguage.googleapis.com/upload/v1beta/files"
        })
        .unwrap()
    }

    proptest! {
        /// Any header: no panic, a URL or [`Error::Protocol`]; behind a gateway always the
        /// gateway's own start URL with some query.
        #[test]
        fn any_header_gives_a_url_or_a_protocol_error(header in "\\PC{0,200}", gateway in any::<bool>()) {
            let mode = if gateway { Mode::Gateway } else { Mode::Direct };
            match upload_target(&start(gateway), &header, mode) {
                Ok(url) => {
                    if gateway {
                        prop_assert_eq!(url.origin(), start(true).origin());
                        prop_assert_eq!(url.path(), "/gemini/files");
                        prop_assert!(url.query().is_some_and(|q| !q.is_empty()));
                    }
                }
                Err(e) => prop_assert!(matches!(e, Error::Protocol(_)), "{e:?}"),
            }
        }

        /// A real `x-goog-upload-url`: used as given directly; only its query (the upload id)
        /// re-targeted at the gateway.
        #[test]
        fn the_upload_id_survives_retargeting(id in "[A-Za-z0-9_-]{1,80}") {
            let header = format!("https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id={id}&upload_protocol=resumable");
            let direct = upload_target(&start(false), &header, Mode::Direct).unwrap();
            prop_assert_eq!(direct.as_str(), header.as_str());
            let gateway = upload_target(&start(true), &header, Mode::Gateway).unwrap();
            prop_assert_eq!(gateway.as_str(), format!("https://gw.azure-api.net/gemini/files?upload_id={id}&upload_protocol=resumable"));
            let bare = upload_target(&start(true), &format!("?upload_id={id}"), Mode::Gateway).unwrap();
            let expected = format!("upload_id={id}");
            prop_assert_eq!(bare.query(), Some(expected.as_str()));
        }
    }
}
