//! With relay memory: each piece goes to Gemini's resumable upload and to the spool at once;
//! the last chunk goes only once the whole content has passed its checks.

use bytes::Bytes;
use futures::{
    channel::{mpsc, oneshot},
    Stream, StreamExt,
};

use super::{
    body::{abandon, Body, Halt, PIECES_IN_FLIGHT},
    Admission, IngestError, Ingested, Job,
};
use crate::{OriginalsError, Spooled, UploadBytes};

/// What reading the body came to.
enum Verdict<R> {
    /// All of it arrived and passed its checks; Gemini's upload was given its SHA-256.
    Complete,
    /// All of it arrived, and the owner has it `ACTIVE` already: Gemini's upload was abandoned.
    AlreadyActive(parley_store::FileRow),
    /// Stopped, for this reason: Gemini's upload was abandoned.
    Stopped(IngestError<R>),
    /// The spool or Gemini's upload failed: its own result says why (Gemini's was abandoned).
    ReaderFailed,
}

/// Relays `head` and the rest of `body` (see the module's documentation).
pub(super) async fn run<A, S, E>(
    job: Job<'_, A>,
    head: Vec<Bytes>,
    mut body: Body<'_, S, A>,
) -> Result<Ingested, IngestError<A::Refusal>>
where
    A: Admission,
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let (mut to_spool, spool_rx) = mpsc::channel(PIECES_IN_FLIGHT);
    let (mut to_gemini, gemini_rx) = mpsc::channel(PIECES_IN_FLIGHT);
    let (sha256_out, sha256) = oneshot::channel();
    let spooled = spawn_spool(&job, spool_rx);
    let read = async {
        let pumped = body.pump(head, &mut [&mut to_spool, &mut to_gemini]).await;
        to_spool.close_channel();
        let spooled = spooled.await;
        let verdict = match (pumped, &spooled) {
            (Err(Halt::Stopped(e)), _) => Verdict::Stopped(e),
            // The spool failed (its error stands), or Gemini's upload did (then its does);
            // the pump has abandoned every reader already.
            (Err(Halt::ReaderGone), _) => Verdict::ReaderFailed,
            (Ok(()), Err(_)) => {
                abandon(&mut [&mut to_gemini]).await;
                Verdict::ReaderFailed
            }
            (Ok(()), Ok(spooled)) => match job.whole_content(&spooled.sha256).await {
                Ok(None) => {
                    let _ = sha256_out.send(spooled.sha256.clone());
                    to_gemini.close_channel();
                    Verdict::Complete
                }
                Ok(Some(copy)) => {
                    abandon(&mut [&mut to_gemini]).await;
                    Verdict::AlreadyActive(copy)
                }
                Err(e) => {
                    abandon(&mut [&mut to_gemini]).await;
                    Verdict::Stopped(e)
                }
            },
        };
        (verdict, spooled)
    };
    let send = async {
        let _slot = job.admission.slot().await.map_err(IngestError::Refused)?;
        let source = UploadBytes::Arriving { stream: gemini_rx.boxed(), sha256 };
        Ok(job.lifecycle.upload(job.upload(source)).await?)
    };
    let ((verdict, spooled), sent) = futures::join!(read, send);
    match (verdict, spooled, sent) {
        (Verdict::Complete, Ok(spooled), Ok(row)) => {
            job.keep(spooled).await;
            Ok(Ingested::Uploaded(row))
        }
        (Verdict::AlreadyActive(copy), Ok(spooled), _) => {
            tracing::info!(file = %copy.name, "same content already ACTIVE for this owner: the upload was abandoned");
            job.keep(spooled).await;
            Ok(Ingested::AlreadyActive(copy))
        }
        (verdict, spooled, sent) => {
            let spool_error = match spooled {
                Ok(spooled) => {
                    job.lifecycle.originals().discard(spooled).await;
                    None
                }
                Err(e) => Some(e),
            };
            match (verdict, spool_error, sent) {
                // Recorded, so the person's: only its retained copy is lost.
                (_, _, Ok(row)) => {
                    tracing::warn!(file = %row.name, "an upload's original could not be retained");
                    Ok(Ingested::Uploaded(row))
                }
                (Verdict::Stopped(e), _, Err(_)) => Err(e),
                (_, Some(e), Err(_)) => Err(IngestError::Files(e.into())),
                (_, None, Err(e)) => Err(e),
            }
        }
    }
}

/// Spools what comes down `pieces` as a task of its own (hashing and writing can take another
/// core). A spool whose ingest has gone (the request was dropped) is discarded.
fn spawn_spool<A>(
    job: &Job<'_, A>,
    pieces: mpsc::Receiver<Result<Bytes, super::Abandoned>>,
) -> impl std::future::Future<Output = Result<Spooled, OriginalsError>> {
    let (spooled_tx, spooled_rx) = oneshot::channel();
    let originals = job.lifecycle.originals().clone();
    let size = job.file.size_bytes;
    tokio::spawn(async move {
        let spooled = originals.spool(pieces, size).await;
        if let Err(Ok(orphan)) = spooled_tx.send(spooled) {
            originals.discard(orphan).await;
        }
    });
    async move {
        spooled_rx.await.unwrap_or_else(|_| Err(OriginalsError::Body("the spool stopped".into())))
    }
}
