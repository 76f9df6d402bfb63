//! The resumable upload protocol of the Files API.
//!
//! `POST {base}/upload/{ver}/files` with `X-Goog-Upload-Command: start` answers with an
//! `x-goog-upload-url`; the bytes then go there in chunks (`upload`, the last one
//! `upload, finalize`), each with its `X-Goog-Upload-Offset`. The finalize answer carries the
//! File wrapped as `{"file": {...}}`. Sources: python-genai `_api_client.py` `_upload_fd`
//! (8 MiB chunks) and `shared/gemini-files-api.md` §1.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use crate::{
    client::{api_error, Client},
    error::{Error, Result},
    types::File,
};

/// Bytes per chunk, 8 MiB: the SDKs' `CHUNK_SIZE` and Gemini's
/// `x-goog-upload-chunk-granularity` (8388608).
pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;

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

/// An upload session: the `x-goog-upload-url` and how many bytes it has taken.
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

impl Client {
    /// Starts a resumable upload.
    ///
    /// # Errors
    /// [`Error::Api`] when Gemini refuses (bad key, unsupported MIME type, …);
    /// [`Error::Protocol`] when the answer has no `x-goog-upload-url`.
    pub async fn start_upload(&self, req: &UploadRequest) -> Result<ResumableUpload> {
        let url = self.url(&format!("upload/{}/files", self.config.api_version))?;
        let mut file = serde_json::Map::new();
        if let Some(name) = &req.display_name {
            file.insert("displayName".into(), json!(name));
        }
        file.insert("mimeType".into(), json!(req.mime_type));
        file.insert("sizeBytes".into(), json!(req.size_bytes.to_string()));
        let res = self
            .http
            .post(url.clone())
            .header("x-goog-api-key", self.key_header()?)
            .header("X-Goog-Upload-Protocol", "resumable")
            .header("X-Goog-Upload-Command", "start")
            .header("X-Goog-Upload-Header-Content-Length", req.size_bytes.to_string())
            .header("X-Goog-Upload-Header-Content-Type", &req.mime_type)
            .json(&json!({ "file": file }))
            .send()
            .await?;
        let res = crate::client::check(res).await?;
        let upload_url = res
            .headers()
            .get("x-goog-upload-url")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Protocol("the start answer has no x-goog-upload-url".into()))?;
        let url = url
            .join(upload_url)
            .map_err(|e| Error::Protocol(format!("unusable x-goog-upload-url: {e}")))?;
        Ok(ResumableUpload { client: self.clone(), url, offset: 0, total: req.size_bytes })
    }

    /// Uploads a byte stream of exactly `req.size_bytes` bytes in [`CHUNK_SIZE`] chunks and
    /// returns the File from the finalize answer (often still `PROCESSING`: see
    /// [`Client::wait_active`]). At most one chunk is held in memory.
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
    pub async fn upload_bytes(&self, display_name: Option<String>, mime_type: &str, bytes: Bytes) -> Result<File> {
        let req = UploadRequest { display_name, mime_type: mime_type.into(), size_bytes: bytes.len() as u64 };
        let once = futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]);
        self.upload_stream(&req, once).await
    }
}

impl ResumableUpload {
    /// Bytes accepted so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Sends one chunk at the current offset: `upload`, or `upload, finalize` when `last`.
    /// Upload URLs are capabilities: no API key is sent with chunks, as the SDKs do.
    ///
    /// Returns `Some(File)` after finalize, `None` while the session stays `active`.
    ///
    /// # Errors
    /// [`Error::Api`] on a non-2xx answer; [`Error::Protocol`] when `x-goog-upload-status`
    /// is not `active` before the end or not `final` after it.
    pub async fn send_chunk(&mut self, chunk: Bytes, last: bool) -> Result<Option<File>> {
        let len = chunk.len() as u64;
        let command = if last { "upload, finalize" } else { "upload" };
        tracing::debug!(offset = self.offset, len, command, "gemini upload chunk");
        let res = self
            .client
            .http
            .post(self.url.clone())
            .header("X-Goog-Upload-Command", command)
            .header("X-Goog-Upload-Offset", self.offset.to_string())
            .body(chunk)
            .send()
            .await?;
        let code = res.status();
        let status = res
            .headers()
            .get("x-goog-upload-status")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !code.is_success() {
            let body = res.text().await.unwrap_or_default();
            return Err(api_error(code.as_u16(), &body));
        }
        self.offset += len;
        match (last, status.as_str()) {
            (false, "active") => Ok(None),
            (true, "final") => {
                let body: Finalized = crate::client::json(res).await?;
                let file = body
                    .file
                    .ok_or_else(|| Error::Protocol("the finalize answer has no `file`".into()))?;
                if file.name.is_empty() && file.uri.is_empty() {
                    return Err(Error::Protocol("the finalized File has neither name nor uri".into()));
                }
                Ok(Some(file))
            }
            (true, other) => Err(Error::Protocol(format!("upload status is `{other}` after the last byte, not `final`"))),
            (false, other) => Err(Error::Protocol(format!("upload status is `{other}` with bytes remaining"))),
        }
    }
}
