//! `GET /thumbnails/{id}`: the thumbnail of one of the request's principal's image Files (a
//! small JPEG made from the retained original, see [`parley_files::thumbnails`]), for the
//! Files view. Another principal's File, a File without a retained original and a picture no
//! thumbnail can be made of all answer 404, the same way.

use std::sync::Arc;

use app::server::ServerState;
use axum::{
    extract::{Path, State},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Extension, Router,
};
use parley_store::Principal;

/// The routes, over the shared state.
pub fn routes<S>(state: Arc<ServerState>) -> Router<S> {
    Router::new().route("/thumbnails/{id}", get(thumbnail)).with_state(state)
}

async fn thumbnail(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return StatusCode::NOT_FOUND.into_response();
    }
    let store = state.files().store();
    let record = match store.find_named(&principal.owner(), &format!("files/{id}")).await {
        Ok(Some(record)) if record.mime_type.starts_with("image/") => record,
        Ok(_) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "a thumbnail's File could not be looked up");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    match state.files().originals().thumbnail(&record.sha256).await {
        Ok(Some(jpeg)) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                // Only this person's browser keeps it; the content never changes.
                (header::CACHE_CONTROL, "private, max-age=86400, immutable"),
            ],
            jpeg,
        )
            .into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "a thumbnail could not be made");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
