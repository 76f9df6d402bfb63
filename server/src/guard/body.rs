//! Request bodies, bounded in size, in time and in what may pile up in memory:
//!
//! * a body announced larger than its limit gets 413 before a byte is read; one that grows
//!   past it while streaming is cut (an upload) or answered 413 (anything else);
//! * every body must keep arriving at `PARLEY_MIN_BODY_RATE` or more, measured over windows
//!   of `PARLEY_HEADER_READ_TIMEOUT` (20 s) of the time spent waiting for it (time the server
//!   spends elsewhere does not count): a trickled body is cut with [`AppError::TooSlow`] (408);
//! * a JSON body (every server function but the upload) is read whole here, within
//!   [`JSON_BODY_LIMIT`], so that its limit answers 413 instead of failing inside `server_fn`;
//! * an upload's body may carry at most [`MULTIPART_HEAD_LIMIT`] bytes before the server
//!   function reaches its `file` field (the text fields, part headers and preamble that the
//!   multipart parser would otherwise buffer whole): past it the body is held back for a
//!   moment — a real upload's `file` field is parsed from what already arrived — and then cut.

use std::{future::Future, pin::Pin, time::Duration};

use app::{error::AppError, server::UploadBody};
use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::header,
    response::{IntoResponse, Response},
};
use futures::{stream::BoxStream, Stream, StreamExt};

use super::{Refusal, MULTIPART_ENDPOINTS};

/// Largest body of any request but an upload, bytes (8 MiB): a conversation as it goes to
/// Gemini is text and File URIs — two million tokens of text fit — never the previews.
pub const JSON_BODY_LIMIT: u64 = 8 << 20;

/// Largest body of a `sync_push`, `share_create` or `share_update`, bytes: a conversation as
/// an import may be (`MAX_IMPORT_BYTES`, 16 MiB), and room for its JSON framing.
pub const SYNC_BODY_LIMIT: u64 = app::transcript::MAX_IMPORT_BYTES as u64 + (1 << 20);

/// The server functions whose body is a whole conversation ([`SYNC_BODY_LIMIT`]).
fn carries_a_conversation(path: &str) -> bool {
    use leptos::server_fn::ServerFn;
    [app::api::SyncPush::PATH, app::api::ShareCreate::PATH, app::api::ShareUpdate::PATH]
        .contains(&path)
}

/// Room for the multipart framing and small fields around an upload's bytes.
const MULTIPART_OVERHEAD: u64 = 1 << 20;

/// Most bytes of an upload's body before its `file` field is reached (64 KiB): three short
/// text fields and part headers need a few hundred.
pub const MULTIPART_HEAD_LIMIT: u64 = 64 << 10;

/// How long an upload's body is held back, once past [`MULTIPART_HEAD_LIMIT`], for the server
/// function to reach the `file` field in what already arrived.
const HEAD_HOLD: Duration = Duration::from_secs(2);

/// The body limits.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Largest upload, bytes.
    pub max_file_bytes: u64,
    /// Slowest a body may arrive, bytes per second (over `rate_window`); 0 for no minimum.
    pub min_bytes_per_sec: u64,
    /// How much time spent waiting for a body the rate is measured over.
    pub rate_window: Duration,
}

/// Why the guard cut a body, carried as the body's error so that whoever reads it can tell.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Cut(AppError);

type Chunks = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Applies [`BodyLimits`] (see the module's documentation).
pub async fn guard_bodies<F: Future<Output = Response>>(
    limits: BodyLimits,
    req: Request,
    next: impl FnOnce(Request) -> F,
) -> Response {
    let upload = MULTIPART_ENDPOINTS.contains(&req.uri().path());
    let limit = if upload {
        limits.max_file_bytes.saturating_add(MULTIPART_OVERHEAD)
    } else if carries_a_conversation(req.uri().path()) {
        SYNC_BODY_LIMIT
    } else {
        JSON_BODY_LIMIT
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let name = if upload { "The upload" } else { "The request" };
    let too_large = |size_bytes| {
        Refusal(AppError::TooLarge { name: name.into(), size_bytes, limit_bytes: limit })
    };
    if let Some(length) = announced.filter(|&l| l > limit) {
        // A request a little over the limit is read first, so that the 413 reaches a client
        // still sending it; a much larger one is not (see `drain`).
        if length <= DRAIN_LIMIT {
            let body = req.into_body().into_data_stream();
            drain(body.map(|c| c.map_err(std::io::Error::other)).boxed()).await;
        }
        return too_large(length).into_response();
    }
    let (mut parts, body) = req.into_parts();
    let chunks = at_least(
        body.into_data_stream().map(|c| c.map_err(std::io::Error::other)).boxed(),
        limits.min_bytes_per_sec,
        limits.rate_window,
    );
    if upload {
        let watch = UploadBody::default();
        parts.extensions.insert(watch.clone());
        let chunks = head_limited(chunks, watch.clone());
        let cuts = watch.clone();
        let chunks = chunks.map(move |chunk| {
            chunk.inspect_err(|e| {
                if let Some(Cut(reason)) = e.get_ref().and_then(|e| e.downcast_ref::<Cut>()) {
                    cuts.cut(reason.clone());
                }
            })
        });
        let (chunks, rest) = keep_the_rest(chunks.boxed());
        let body = http_body_util::Limited::new(
            Body::from_stream(chunks),
            usize::try_from(limit).unwrap_or(usize::MAX),
        );
        let res = next(Request::from_parts(parts, Body::new(body))).await;
        if !res.status().is_success() {
            // Refused — before a byte was read (a rate limit, a quota) or part-way (a quota, a
            // bad field, a cut): read on a little, so that the answer reaches a client still
            // sending instead of a reset. The rest is thrown away, not parsed: no head hold.
            let rest = rest.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            if let Some(rest) = rest {
                watch.file_reached();
                drain(rest).await;
            }
        }
        return res;
    }
    match read_whole(chunks, limit).await {
        Ok(bytes) => next(Request::from_parts(parts, Body::from(bytes))).await,
        Err(ReadError::TooLarge(size)) => too_large(size).into_response(),
        Err(ReadError::Cut(reason)) => Refusal(reason).into_response(),
        Err(ReadError::Failed) => {
            Refusal(AppError::BadRequest("the request's body could not be read.".into()))
                .into_response()
        }
    }
}

/// Largest body read and thrown away before an early refusal (16 MiB: twice the JSON limit): a
/// client still sending when the answer comes and the connection closes often sees a broken
/// pipe instead of the answer; reading a small body first lets the refusal arrive.
const DRAIN_LIMIT: u64 = 16 << 20;

/// How long a body is drained at most before an early refusal.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Reads and throws away up to [`DRAIN_LIMIT`] bytes of `chunks`, for at most [`DRAIN_TIME`],
/// before a refusal is answered: a client still sending when the answer comes and the
/// connection closes often sees a broken pipe instead of the answer. Larger or slower bodies
/// are left (the connection closes after the answer).
async fn drain(mut chunks: Chunks) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut drained = 0u64;
        while drained <= DRAIN_LIMIT {
            match chunks.next().await {
                Some(Ok(chunk)) => drained += chunk.len() as u64,
                _ => break,
            }
        }
    })
    .await;
}

/// `chunks` for the server function to read, and a handle on what it leaves unread once it is
/// done with the body, for [`drain`].
fn keep_the_rest(chunks: Chunks) -> (Chunks, std::sync::Arc<std::sync::Mutex<Option<Chunks>>>) {
    // Fused: what the server function read to its end reads as ended again, not a panic.
    let rest = std::sync::Arc::new(std::sync::Mutex::new(Some(chunks.fuse().boxed())));
    let reader = rest.clone();
    let read = futures::stream::poll_fn(move |cx| {
        let mut chunks = reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match chunks.as_mut() {
            Some(chunks) => chunks.poll_next_unpin(cx),
            None => std::task::Poll::Ready(None),
        }
    });
    (read.boxed(), rest)
}

#[derive(Debug)]
enum ReadError {
    TooLarge(u64),
    Cut(AppError),
    Failed,
}

/// The whole body, refused once it passes `limit` bytes.
async fn read_whole(mut chunks: Chunks, limit: u64) -> Result<Bytes, ReadError> {
    let mut whole = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| match e.into_inner().map(|e| e.downcast::<Cut>()) {
            Some(Ok(cut)) => ReadError::Cut(cut.0),
            _ => ReadError::Failed,
        })?;
        let size = (whole.len() + chunk.len()) as u64;
        if size > limit {
            // Read on (a little: see `drain`) so that the 413 reaches the client.
            drop(whole);
            drain(chunks).await;
            return Err(ReadError::TooLarge(size));
        }
        whole.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(whole))
}

/// `chunks`, cut with [`AppError::TooSlow`] when fewer than `bytes_per_sec × window` bytes
/// arrive while the reader waits `window` for them. Time the reader spends elsewhere (writing
/// to disk, talking to Gemini) does not count.
fn at_least(chunks: Chunks, bytes_per_sec: u64, window: Duration) -> Chunks {
    if bytes_per_sec == 0 || window.is_zero() {
        return chunks;
    }
    struct Watch {
        chunks: Chunks,
        waited: Duration,
        arrived: u64,
        done: bool,
    }
    let wanted = (bytes_per_sec as f64 * window.as_secs_f64()) as u64;
    let watch = Watch { chunks, waited: Duration::ZERO, arrived: 0, done: false };
    futures::stream::unfold(watch, move |mut w| async move {
        if w.done {
            return None;
        }
        loop {
            let started = tokio::time::Instant::now();
            let next = tokio::time::timeout(window.saturating_sub(w.waited), w.chunks.next()).await;
            w.waited += started.elapsed();
            let window_over = w.waited >= window;
            if let Ok(Some(Ok(chunk))) = &next {
                w.arrived += chunk.len() as u64;
            }
            if window_over {
                if w.arrived < wanted {
                    w.done = true;
                    let reason = format!(
                        "under {bytes_per_sec} bytes a second for {} s",
                        window.as_secs_f64()
                    );
                    tracing::info!("a request body arrived too slowly: cut");
                    return Some((Err(std::io::Error::other(Cut(AppError::TooSlow(reason)))), w));
                }
                w.waited = Duration::ZERO;
                w.arrived = 0;
            }
            match next {
                Ok(Some(Ok(chunk))) => return Some((Ok(chunk), w)),
                Ok(Some(Err(e))) => {
                    w.done = true;
                    return Some((Err(e), w));
                }
                Ok(None) => return None,
                Err(_) => continue,
            }
        }
    })
    .boxed()
}

/// `chunks` of an upload, held back once [`MULTIPART_HEAD_LIMIT`] bytes passed before `watch`
/// says the `file` field is reached, and cut (400) if it is not within [`HEAD_HOLD`].
fn head_limited(
    chunks: Chunks,
    watch: UploadBody,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold((chunks, 0u64, false), move |(mut chunks, passed, done)| {
        let watch = watch.clone();
        async move {
            if done {
                return None;
            }
            if passed > MULTIPART_HEAD_LIMIT
                && !watch.is_file_reached()
                && tokio::time::timeout(HEAD_HOLD, watch.wait_file_reached()).await.is_err()
            {
                let reason = format!(
                    "the fields before `file` are longer than {MULTIPART_HEAD_LIMIT} bytes"
                );
                return Some((
                    Err(std::io::Error::other(Cut(AppError::BadUpload(reason)))),
                    (chunks, passed, true),
                ));
            }
            match Pin::new(&mut chunks).next().await? {
                Ok(chunk) => {
                    let passed = passed + chunk.len() as u64;
                    Some((Ok(chunk), (chunks, passed, false)))
                }
                Err(e) => Some((Err(e), (chunks, passed, true))),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: Vec<Result<&'static [u8], &'static str>>) -> Chunks {
        futures::stream::iter(
            parts.into_iter().map(|p| p.map(Bytes::from_static).map_err(std::io::Error::other)),
        )
        .boxed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_is_cut_and_a_steady_one_is_not() {
        // One byte every 5 s: 4 bytes in a 20 s window, under 1 byte/s.
        let trickle = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Some((Ok(Bytes::from_static(b"x")), ()))
        })
        .boxed();
        let err =
            read_whole(at_least(trickle, 1, Duration::from_secs(20)), 1 << 20).await.err().unwrap();
        assert!(matches!(err, ReadError::Cut(AppError::TooSlow(_))), "{err:?}");
        // A body that pauses for 15 s but has sent enough is fine.
        let steady =
            futures::stream::iter([Bytes::from(vec![0u8; 40]), Bytes::from_static(b"end")])
                .then(|b| async move {
                    tokio::time::sleep(Duration::from_secs(15)).await;
                    Ok(b)
                })
                .boxed();
        assert_eq!(
            read_whole(at_least(steady, 1, Duration::from_secs(20)), 1 << 20)
                .await
                .ok()
                .unwrap()
                .len(),
            43
        );
    }

    #[tokio::test]
    async fn a_whole_body_has_a_limit() {
        assert!(matches!(
            read_whole(chunks(vec![Ok(b"12345"), Ok(b"678")]), 6).await,
            Err(ReadError::TooLarge(8))
        ));
        assert!(matches!(
            read_whole(chunks(vec![Ok(b"12"), Err("reset")]), 6).await,
            Err(ReadError::Failed)
        ));
        assert_eq!(
            read_whole(chunks(vec![Ok(b"12"), Ok(b"34")]), 6).await.ok().unwrap(),
            Bytes::from_static(b"1234")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_upload_may_not_carry_much_before_its_file_field() {
        let big = vec![0u8; MULTIPART_HEAD_LIMIT as usize + 1].leak();
        // Nothing reaches `file`: cut after the hold.
        let watch = UploadBody::default();
        let got: Vec<_> =
            head_limited(chunks(vec![Ok(big), Ok(b"more")]), watch.clone()).collect().await;
        assert!(got[0].is_ok() && got[1].is_err() && got.len() == 2, "{got:?}");
        // The server function reaches `file` meanwhile: the rest streams.
        let watch = UploadBody::default();
        let reached = watch.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            reached.file_reached();
        });
        let got: Vec<_> = head_limited(chunks(vec![Ok(big), Ok(b"more")]), watch).collect().await;
        assert!(got.iter().all(Result::is_ok) && got.len() == 2);
    }
}
