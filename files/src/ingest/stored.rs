//! Without relay memory free: the whole body is spooled first (hashed on the way), checked,
//! then sent to Gemini from the spool under a slot, and retained.

use bytes::Bytes;
use futures::{channel::mpsc, Stream};

use super::{
    body::{Body, Halt, PIECES_IN_FLIGHT},
    Admission, IngestError, Ingested, Job,
};
use crate::UploadBytes;

/// Stores `head` and the rest of `body`, then sends them (see the module's documentation).
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
    let originals = job.lifecycle.originals();
    let (mut to_spool, pieces) = mpsc::channel(PIECES_IN_FLIGHT);
    let read = async {
        let pumped = body.pump(head, &mut [&mut to_spool]).await;
        to_spool.close_channel();
        pumped
    };
    let (pumped, spooled) = futures::join!(read, originals.spool(pieces, job.file.size_bytes));
    let spooled = match (pumped, spooled) {
        (Ok(()), Ok(spooled)) => spooled,
        (Err(Halt::Stopped(e)), spooled) => {
            if let Ok(spooled) = spooled {
                originals.discard(spooled).await;
            }
            return Err(e);
        }
        (_, Err(e)) => return Err(IngestError::Files(e.into())),
        (Err(Halt::ReaderGone), Ok(spooled)) => {
            // The spool ended before the body did, yet without an error: not the whole file.
            originals.discard(spooled).await;
            let gone = crate::OriginalsError::Body("the spool ended early".into());
            return Err(IngestError::Files(gone.into()));
        }
    };
    match job.whole_content(&spooled.sha256).await {
        Ok(None) => {}
        Ok(Some(copy)) => {
            job.keep(spooled).await;
            return Ok(Ingested::AlreadyActive(copy));
        }
        Err(e) => {
            originals.discard(spooled).await;
            return Err(e);
        }
    }
    let sent = async {
        let _slot = job.admission.slot().await.map_err(IngestError::Refused)?;
        let source = originals.spooled_bytes(&spooled);
        let sha256 = spooled.sha256.clone();
        let upload = job.upload(UploadBytes::Stored { source: &source, sha256 });
        Ok(job.lifecycle.upload(upload).await?)
    }
    .await;
    match sent {
        Ok(row) => {
            job.keep(spooled).await;
            Ok(Ingested::Uploaded(row))
        }
        Err(e) => {
            originals.discard(spooled).await;
            Err(e)
        }
    }
}
