//! The request guards as one axum middleware: the same-origin check, the client address, the
//! session, the body limits, the rate limits, the multipart check and `Cache-Control`, in that
//! order (outermost first), each a plain `async fn` handing the request on to the next.
//!
//! One `from_fn` layer instead of one per guard: axum's `from_fn` clones and boxes the whole
//! service below it, and boxes its own future, on every request, so a stack of seven layers
//! costs seven of each, held for as long as a streamed answer lasts (measured: about 6 KiB a
//! held-open chat, `cargo bench -p parley --bench load`, `PARLEY_BENCH_ONLY=held-open`).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};

use crate::{
    guard::{self, BodyLimits},
    limits::{self, Limits},
    session::{self, Sessions},
};

/// What the guards need, shared by every request.
#[derive(Debug)]
pub struct Guarded {
    /// `--trust-proxy`: `X-Forwarded-For`, `-Host` and `-Proto` believed.
    pub trust_proxy: bool,
    /// The session cookie's key.
    pub sessions: Sessions,
    /// The body limits.
    pub body_limits: BodyLimits,
    /// The rate limiters.
    pub limits: Arc<Limits>,
}

/// Runs the guards around the application (`next`): [`guard::same_origin`],
/// [`limits::client_address`], [`session::sessions`], [`guard::guard_bodies`],
/// [`limits::rate_limit`], [`guard::require_multipart`], then [`guard::cache_control`] on what
/// the application answers. A guard's refusal is the response; the guards outside it still
/// see it (the session guard sets no cookie on a refusal).
pub async fn guard_requests(
    State(guarded): State<Arc<Guarded>>,
    req: Request,
    next: Next,
) -> Response {
    let g = &*guarded;
    guard::same_origin(g.trust_proxy, req, |req| {
        limits::client_address(g.trust_proxy, req, |req| {
            session::sessions(&g.sessions, req, |req| {
                guard::guard_bodies(g.body_limits, req, |req| {
                    limits::rate_limit(&g.limits, req, |req| {
                        guard::require_multipart(req, |req| {
                            guard::cache_control(req, |req| next.run(req))
                        })
                    })
                })
            })
        })
    })
    .await
}
