//! Uploading bytes while they are still arriving: [`Client::upload_pipelined`].
//!
//! A server that relays an upload (a browser's body to Gemini) would otherwise take the whole
//! transfer twice, one after the other. Here each [`CHUNK_SIZE`] chunk's `upload` request
//! starts with the chunk's first byte and its body follows the incoming stream, so the two
//! transfers overlap: the slower side sets the pace (the stream is not read faster than
//! Gemini takes it, beyond a few pieces). The pieces of the chunk in flight are kept
//! (reference-counted, never copied into one buffer) until Gemini acknowledges it, so that a chunk cut short is
//! resumed from where Gemini says it stopped (`query`, as in [`ResumableUpload::send_chunk`]).
//!
//! The last chunk (`upload, finalize`) is sent only once the stream has ended cleanly, so a
//! stream that fails at its very end — the caller's check of the whole content, e.g. a
//! SHA-256 that is not the one declared — never becomes a File. Any failure after `start`
//! cancels the session (`X-Goog-Upload-Command: cancel`). An upload of one chunk has nothing
//! to overlap: its session starts once the stream has ended, so that a failed one costs no
//! upstream call.

use bytes::Bytes;
use futures::{channel::mpsc, SinkExt, Stream, StreamExt};

use crate::{
    error::{Error, Result},
    types::File,
    upload::{ResumableUpload, Sent, UploadRequest, CHUNK_SIZE},
    Client,
};

/// Pieces of a chunk queued towards its request body before the stream stops being read.
const PIECES_IN_FLIGHT: usize = 4;

impl Client {
    /// Uploads a one-pass stream of exactly `req.size_bytes` bytes while it arrives (see the
    /// module's documentation) and returns the File from the finalize answer (often still
    /// `PROCESSING`: see [`Client::wait_active`]). Memory: the pieces of one chunk (at most
    /// [`CHUNK_SIZE`] bytes) per upload.
    ///
    /// # Errors
    /// [`Error::Source`] when the stream fails (also at its end); [`Error::SizeMismatch`] when
    /// it is longer or shorter than announced; the errors of [`Client::start_upload`] and
    /// [`ResumableUpload::send_chunk`]. The session is cancelled after any of them.
    pub async fn upload_pipelined<S, E>(&self, req: &UploadRequest, stream: S) -> Result<File>
    where
        S: Stream<Item = std::result::Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let stream = std::pin::pin!(stream);
        let mut incoming = Incoming { stream, carry: None, read: 0, total: req.size_bytes };
        if req.size_bytes <= CHUNK_SIZE as u64 {
            // One chunk, the last: it waits for the whole stream anyway, so the session starts
            // only then (a stream that fails makes no upstream call at all).
            let pieces = incoming.take(req.size_bytes, None).await?;
            incoming.end().await?;
            return self
                .start_upload(req)
                .await?
                .send_pieces(pieces, true, None)
                .await?
                .ok_or_else(|| Error::Protocol("finalize did not return a File".into()));
        }
        let mut session = self.start_upload(req).await?;
        let outcome = session.pipe(incoming).await;
        if outcome.is_err() {
            if let Err(e) = session.cancel().await {
                tracing::warn!(error = %e, "a failed upload's session could not be cancelled");
            }
        }
        outcome
    }
}

/// The incoming bytes, with what was read past the chunk being sent.
struct Incoming<S> {
    stream: S,
    /// Bytes read beyond the previous chunk's end: the start of the next one.
    carry: Option<Bytes>,
    /// Bytes read so far.
    read: u64,
    total: u64,
}

impl<S, E> Incoming<S>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    /// The next piece, at most `room` bytes of it (the rest is carried over); `None` at the
    /// end of the stream.
    async fn next(&mut self, room: u64) -> Result<Option<Bytes>> {
        let mut piece = match self.carry.take() {
            Some(piece) => piece,
            None => loop {
                match self.stream.next().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(Error::Source(e.to_string())),
                    Some(Ok(piece)) if piece.is_empty() => continue,
                    Some(Ok(piece)) => {
                        self.read += piece.len() as u64;
                        if self.read > self.total {
                            return Err(Error::SizeMismatch {
                                declared: self.total,
                                actual: self.read,
                            });
                        }
                        break piece;
                    }
                }
            },
        };
        if piece.len() as u64 > room {
            self.carry = Some(piece.split_off(room as usize));
        }
        Ok(Some(piece))
    }

    /// Exactly `len` more bytes, as pieces; each is also offered to `out` while it is open.
    async fn take(
        &mut self,
        len: u64,
        mut out: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    ) -> Result<Vec<Bytes>> {
        let mut pieces = Vec::new();
        let mut got = 0u64;
        while got < len {
            let piece = match self.next(len - got).await {
                Ok(Some(piece)) => piece,
                Ok(None) => {
                    let short = Error::SizeMismatch { declared: self.total, actual: self.read };
                    return Err(fail(out, short).await);
                }
                Err(e) => return Err(fail(out, e).await),
            };
            got += piece.len() as u64;
            if let Some(tx) = &mut out {
                if tx.send(Ok(piece.clone())).await.is_err() {
                    // The request failed already: the pieces are kept for the resume.
                    out = None;
                }
            }
            pieces.push(piece);
        }
        Ok(pieces)
    }

    /// Ok when the stream ends here (nothing more, no error).
    async fn end(&mut self) -> Result<()> {
        match self.next(u64::MAX).await? {
            None => Ok(()),
            Some(_) => Err(Error::SizeMismatch { declared: self.total, actual: self.read }),
        }
    }
}

/// Ends a request body with an error (so that it is not taken as complete) and gives `err`
/// back.
async fn fail(out: Option<mpsc::Sender<std::io::Result<Bytes>>>, err: Error) -> Error {
    if let Some(mut tx) = out {
        let _ = tx.send(Err(std::io::Error::other("the upload's source failed"))).await;
    }
    err
}

impl ResumableUpload {
    /// Sends `stream` chunk by chunk while it arrives; the last chunk once it has ended.
    async fn pipe<S, E>(&mut self, mut incoming: Incoming<S>) -> Result<File>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let total = self.total();
        loop {
            let len = (total - self.offset()).min(CHUNK_SIZE as u64);
            if self.offset() + len == total {
                let pieces = incoming.take(len, None).await?;
                incoming.end().await?;
                return self
                    .send_pieces(pieces, true, None)
                    .await?
                    .ok_or_else(|| Error::Protocol("finalize did not return a File".into()));
            }
            let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
            let body = reqwest::Body::wrap_stream(rx);
            let (sent, pieces) =
                futures::join!(self.post(body, len, false), incoming.take(len, Some(tx)));
            let pieces = pieces?;
            match sent? {
                Sent::Done(None) => {}
                Sent::Done(Some(_)) => {
                    return Err(Error::Protocol(
                        "the upload was finalized with bytes remaining".into(),
                    ))
                }
                Sent::Resumable(failed) => {
                    if self.send_pieces(pieces, false, Some(failed)).await?.is_some() {
                        return Err(Error::Protocol(
                            "the upload was finalized with bytes remaining".into(),
                        ));
                    }
                }
            }
        }
    }
}
