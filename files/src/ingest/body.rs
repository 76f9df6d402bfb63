//! The request body as the ingest reads it: each piece counted against the announced size and
//! the caller's quotas ([`Body`]), and passed on to the streams that take it ([`Body::pump`]).

use std::pin::Pin;

use bytes::Bytes;
use futures::{channel::mpsc, SinkExt, Stream, StreamExt};

use super::{Abandoned, Admission, IngestError};

/// Pieces queued towards each reader (the spool, Gemini's upload) before the body stops being
/// read.
pub(super) const PIECES_IN_FLIGHT: usize = 8;

/// A stream towards a reader of the bytes (the spool, Gemini's upload).
pub(super) type Out = mpsc::Sender<Result<Bytes, Abandoned>>;

/// How [`Body::pump`] ended when it did not reach the body's end.
pub(super) enum Halt<R> {
    /// The body or the quotas stopped it (every reader was sent [`Abandoned`]).
    Stopped(IngestError<R>),
    /// A reader went away: its own result says why (the others were sent [`Abandoned`]).
    ReaderGone,
}

/// The body being read.
pub(super) struct Body<'a, S, A> {
    stream: Pin<Box<S>>,
    admission: &'a A,
    announced: u64,
    received: u64,
}

impl<'a, S, E, A> Body<'a, S, A>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
    A: Admission,
{
    pub(super) fn new(stream: Pin<Box<S>>, admission: &'a A, announced: u64) -> Self {
        Body { stream, admission, announced, received: 0 }
    }

    /// The next piece, counted; `None` at the end, which must come at the announced size.
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, IngestError<A::Refusal>> {
        let piece = match self.stream.next().await {
            Some(Ok(piece)) => piece,
            Some(Err(e)) => return Err(IngestError::Body(e.to_string())),
            None if self.received == self.announced => return Ok(None),
            None => {
                let (announced, received) = (self.announced, self.received);
                return Err(IngestError::ShorterThanAnnounced { announced, received });
            }
        };
        self.received += piece.len() as u64;
        if self.received > self.announced {
            return Err(IngestError::LongerThanAnnounced { announced: self.announced });
        }
        self.admission.take_bytes(piece.len() as u64).await.map_err(IngestError::Refused)?;
        Ok(Some(piece))
    }

    /// The first pieces, up to `bytes` or the end.
    pub(super) async fn head(
        &mut self,
        bytes: usize,
    ) -> Result<Vec<Bytes>, IngestError<A::Refusal>> {
        let (mut head, mut len) = (Vec::new(), 0);
        while len < bytes {
            let Some(piece) = self.next().await? else { break };
            len += piece.len();
            head.push(piece);
        }
        Ok(head)
    }

    /// Sends `head`, then the rest of the body, to every reader in `outs`, until the body's
    /// end (the readers are left open: the caller ends them). On a failure every reader still
    /// there is sent [`Abandoned`].
    pub(super) async fn pump(
        &mut self,
        head: Vec<Bytes>,
        outs: &mut [&mut Out],
    ) -> Result<(), Halt<A::Refusal>> {
        let mut head = head.into_iter();
        loop {
            let piece = match head.next() {
                Some(piece) => piece,
                None => match self.next().await {
                    Ok(Some(piece)) => piece,
                    Ok(None) => return Ok(()),
                    Err(e) => {
                        abandon(outs).await;
                        return Err(Halt::Stopped(e));
                    }
                },
            };
            for out in outs.iter_mut() {
                if out.send(Ok(piece.clone())).await.is_err() {
                    abandon(outs).await;
                    return Err(Halt::ReaderGone);
                }
            }
        }
    }
}

/// Ends every reader still there with [`Abandoned`].
pub(super) async fn abandon(outs: &mut [&mut Out]) {
    for out in outs.iter_mut() {
        let _ = out.send(Err(Abandoned)).await;
        out.close_channel();
    }
}
