//! Probes for load balancers and orchestrators, without a session: `GET /healthz` (the
//! process is up: 200) and `GET /readyz` (the registry's database and the store of originals
//! answer: 200, else 503 naming which does not).

use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use leptos::prelude::LeptosOptions;

/// The two probes, with what `/readyz` checks.
pub fn routes(files: parley_files::Lifecycle) -> Router<LeptosOptions> {
    let ready = Router::new().route("/readyz", get(readyz)).with_state(files);
    Router::new().route("/healthz", get(|| async { "ok" })).merge(ready)
}

/// 200 `{"database": "ok", "originals": "ok"}` when both answer; 503 with the failure in place
/// of `ok` for the one that does not (the error's words: never a password or key).
async fn readyz(State(files): State<parley_files::Lifecycle>) -> impl IntoResponse {
    let (database, originals) = tokio::join!(files.store().ping(), files.originals().ping());
    let word = |r: Result<(), String>| r.map_or_else(|e| e, |()| "ok".to_string());
    let ready = database.is_ok() && originals.is_ok();
    let body = serde_json::json!({
        "database": word(database.map_err(|e| e.to_string())),
        "originals": word(originals.map_err(|e| e.to_string())),
    });
    if !ready {
        tracing::warn!(%body, "not ready");
    }
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// `parley healthcheck`: asks the server listening on `listen` (on loopback when it listens
/// on every address) for `GET /healthz`, within 3 s — a container's `HEALTHCHECK`, with no
/// `curl` in the image.
///
/// # Errors
/// [`crate::error::ServerError::Unhealthy`] with the URL and what went wrong: no answer, or
/// not 200.
pub async fn probe(listen: std::net::SocketAddr) -> Result<(), crate::error::ServerError> {
    use crate::error::ServerError::Unhealthy;
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| Unhealthy(e.to_string()))?;
    let res = client.get(&url).send().await.map_err(|e| Unhealthy(format!("{url}: {e}")))?;
    match res.status() {
        StatusCode::OK => Ok(()),
        status => Err(Unhealthy(format!("{url}: {status}"))),
    }
}
