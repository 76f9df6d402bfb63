//! Conversations shared by link, as anyone with the link sees them: `/s/<token>` (the page,
//! rendered on the server by Leptos, no wasm and no script), `/s/<token>/images/<n>` (its
//! previews, served under the link and nowhere else), `/s/<token>/card.jpg` (the link preview's
//! picture, when the sharer asked for one), `/s/share.css`, and `/robots.txt` (no crawler under
//! `/s/`).
//!
//! Every answer says `noindex` and sends no referrer; the page allows only its own images and
//! style. A link never made is 404; one revoked or expired is 410 with a short page, on every
//! replica at once (it is read from the database on each request, nothing is cached). With
//! `PARLEY_SHARING=signed-in` a signed-out visitor gets 401 before any byte of the
//! conversation; with `off`, 404.

mod highlight;
mod page;

use std::sync::Arc;

use app::{server::ServerState, share::Sharing};
use axum::{
    extract::{Path, Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use parley_chat::ChatError;

use crate::auth::Resolved;

/// The policy of the shared page: its own images and style sheet, nothing else.
const PAGE_POLICY: &str = "default-src 'none'; img-src 'self'; style-src 'self'; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True for the paths of a shared link (`/s/<token>` and what is under it), which count
/// against `PARLEY_RATE_SHARE_VIEWS`; not the shared style sheet.
pub fn is_link(path: &str) -> bool {
    path.strip_prefix("/s/").is_some_and(|rest| !rest.is_empty() && rest != "share.css")
}

/// The routes.
pub fn routes<S>(state: Arc<ServerState>) -> Router<S> {
    let links = Router::new()
        .route("/s/{token}", get(shared_page))
        .route("/s/{token}/images/{n}", get(image))
        .route("/s/{token}/card.jpg", get(card))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit));
    Router::new()
        .merge(links)
        .route("/s/share.css", get(style))
        .route("/robots.txt", get(robots))
        .with_state(state)
}

/// Lets through to a link's page, images and card only a request that may open links.
async fn admit(State(state): State<Arc<ServerState>>, req: Request, next: Next) -> Response {
    match refused(&state, &req) {
        Some(refusal) => refusal,
        None => next.run(req).await,
    }
}

/// The refusal of a request that may not open links: 404 with sharing off, 401 signed out
/// when only signed-in people may; `None` when it may.
fn refused(state: &ServerState, req: &Request) -> Option<Response> {
    match state.sharing() {
        Sharing::Off => Some(plain(StatusCode::NOT_FOUND, "Not found")),
        Sharing::SignedIn => {
            let resolved = req.extensions().get::<Arc<Resolved>>();
            if resolved.is_some_and(|r| r.account.is_some()) {
                None
            } else {
                Some(with_headers(
                    (
                        StatusCode::UNAUTHORIZED,
                        page::notice("Sign in to see this conversation.", true),
                    )
                        .into_response(),
                ))
            }
        }
        Sharing::Link => None,
    }
}

async fn shared_page(State(state): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    match state.shares().open(&token).await {
        // Rendering (Markdown, sanitizing, colouring code) is CPU work: off the async workers.
        Ok(opened) => {
            let public_url = state.public_url().map(str::to_string);
            let render = move || page::render(&opened, public_url.as_deref());
            match tokio::task::spawn_blocking(render).await {
                Ok(html) => with_headers(html.into_response()),
                Err(e) => {
                    tracing::error!(error = %e, "a shared page could not be rendered");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "The page could not be made.")
                }
            }
        }
        Err(e) => refusal(e),
    }
}

async fn image(
    State(state): State<Arc<ServerState>>,
    Path((token, n)): Path<(String, String)>,
) -> Response {
    let Some(n) = n.strip_suffix(".jpg").unwrap_or(&n).parse::<usize>().ok() else {
        return plain(StatusCode::NOT_FOUND, "Not found");
    };
    match state.shares().image(&token, n).await {
        Ok(jpeg) => jpeg_response(jpeg),
        Err(e) => refusal(e),
    }
}

async fn card(State(state): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    match state.shares().card(&token).await {
        Ok(jpeg) => jpeg_response(jpeg),
        Err(e) => refusal(e),
    }
}

async fn style() -> Response {
    let mut res =
        ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], page::style()).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    res
}

async fn robots() -> Response {
    let mut res = plain(StatusCode::OK, "User-agent: *\nDisallow: /s/\n");
    res.headers_mut().remove("x-robots-tag");
    res
}

fn jpeg_response(jpeg: Vec<u8>) -> Response {
    let mut res = ([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response();
    // Revalidated on every view: a revoked link's pictures go with it.
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    with_headers(res)
}

/// The answer for a link that cannot be shown.
fn refusal(e: ChatError) -> Response {
    let res = match e {
        ChatError::NotFound(_) => {
            (StatusCode::NOT_FOUND, page::notice("There is no conversation at this link.", false))
                .into_response()
        }
        ChatError::Gone(_) => (
            StatusCode::GONE,
            page::notice(
                "This link was revoked by the person who shared it, or has expired.",
                false,
            ),
        )
            .into_response(),
        other => {
            tracing::error!(error = %other, "a shared link could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                page::notice("This conversation could not be read; try again.", false),
            )
                .into_response()
        }
    };
    with_headers(res)
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    with_headers(
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
    )
}

/// `noindex`, no referrer, the page's policy, never stored by a shared cache.
fn with_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_POLICY));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}
