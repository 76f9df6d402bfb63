//! Start-up until the database answers: a PostgreSQL started beside the site (a compose
//! file, a cluster coming back) is waited for with backoff instead of ending the process, so
//! nothing needs a restart loop. Once the first try has found it unreachable, and until it
//! answers, the listener answers `GET /healthz` 200 (the process is up), `GET /readyz` 503
//! `{"database": "waiting"}`, and anything else 503 with `Retry-After`.

use std::{future::Future, os::fd::AsFd, time::Duration};

use axum::{
    http::{header, StatusCode},
    response::IntoResponse,
    routing::get,
    Json, Router,
};
use rand::Rng;
use tokio::net::TcpListener;

use crate::error::ServerError;

/// First pause between two tries (ms); doubled after each, up to [`MAX_PAUSE_MS`].
const FIRST_PAUSE_MS: u64 = 500;
/// Longest pause between two tries (ms).
const MAX_PAUSE_MS: u64 = 15_000;

/// Runs `attempt` until it succeeds, fails otherwise than on an unreachable database, or
/// `wait` has passed (its last error then), trying again after 0.5 s, 1 s, 2 s … up to 15 s
/// (plus up to a quarter of jitter); `stop` (SIGTERM) ends the wait with
/// [`ServerError::Stopped`]. Meanwhile `listener` answers the probes.
///
/// # Errors
/// The last [`ServerError`] of `attempt`, or [`ServerError::Stopped`].
pub async fn for_database<T, F, Fut>(
    listener: &TcpListener,
    wait: Duration,
    stop: impl Future<Output = ()>,
    mut attempt: F,
) -> Result<T, ServerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ServerError>>,
{
    // The usual start: the database answers the first time, and nothing else is served
    // before the site itself (`/healthz` answering means the site is up).
    let deadline = tokio::time::Instant::now() + wait;
    let error = match attempt().await {
        Err(e) if e.is_unreachable_database() && !wait.is_zero() => e,
        done => return done,
    };
    tracing::warn!(error = %error, wait = %humantime::format_duration(wait),
        "the database cannot be reached yet: waiting for it");
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let probes = serve_probes(listener, finished)?;
    let tries = async {
        let mut pause_ms = FIRST_PAUSE_MS;
        loop {
            let jitter = rand::rng().random_range(0..=pause_ms / 4);
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            tokio::time::sleep(Duration::from_millis(pause_ms + jitter).min(left)).await;
            pause_ms = (pause_ms * 2).min(MAX_PAUSE_MS);
            match attempt().await {
                Err(e) if e.is_unreachable_database() => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, "the database cannot be reached yet");
                }
                done => {
                    if done.is_ok() {
                        tracing::info!("the database answers");
                    }
                    return done;
                }
            }
        }
    };
    let outcome = tokio::select! {
        outcome = tries => outcome,
        () = stop => Err(ServerError::Stopped),
    };
    // The probes' connections get a moment to finish (an idle one closes at once); one that
    // holds on (half a request, say) is dropped.
    let _ = done.send(());
    let mut probes = probes;
    if tokio::time::timeout(Duration::from_secs(2), &mut probes).await.is_err() {
        probes.abort();
    }
    outcome
}

/// Serves the probes on a second handle of `listener` until `finished`; the task ends once
/// the requests under way have their answers.
fn serve_probes(
    listener: &TcpListener,
    finished: tokio::sync::oneshot::Receiver<()>,
) -> Result<tokio::task::JoinHandle<()>, ServerError> {
    let handle = std::net::TcpListener::from(listener.as_fd().try_clone_to_owned()?);
    handle.set_nonblocking(true)?;
    let handle = TcpListener::from_std(handle)?;
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(serde_json::json!({ "database": "waiting" })),
                )
            }),
        )
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "Parley is starting: its database cannot be reached yet.",
            )
                .into_response()
        });
    Ok(tokio::spawn(async move {
        let serve = axum::serve(handle, router).with_graceful_shutdown(async {
            let _ = finished.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "the probes' listener stopped");
        }
    }))
}
