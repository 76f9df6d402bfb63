//! The test control surface under `/_emulator` (only with `--control`). Not part of Gemini:
//! it lets a test arm faults, move the clock, fail a File, script answers and read the
//! request log. Documented in `emulator/README.md`.

use std::sync::Arc;

use axum::{
    extract::{Path, State as AxumState},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    faults::{parse_duration, Fault},
    state::{rfc3339, State},
};

pub fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/faults", get(list_faults).post(arm_fault).delete(clear_faults))
        .route("/clock", get(clock).post(advance_clock).delete(reset_clock))
        .route("/files/{id}/fail", post(fail_file))
        .route("/answers", post(queue_answers))
        .route("/requests", get(requests).delete(clear_requests))
}

/// A control-surface refusal: `400 {"error": "…"}`.
fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

/// `POST /_emulator/faults` with one [`Fault`] or an array of them.
async fn arm_fault(AxumState(state): AxumState<Arc<State>>, body: axum::body::Bytes) -> Response {
    let faults: Vec<Fault> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => match items.into_iter().map(serde_json::from_value).collect() {
            Ok(f) => f,
            Err(e) => return bad_request(e.to_string()),
        },
        Ok(one) => match serde_json::from_value(one) {
            Ok(f) => vec![f],
            Err(e) => return bad_request(e.to_string()),
        },
        Err(e) => return bad_request(e.to_string()),
    };
    let mut armed = state.faults();
    for fault in faults {
        armed.push(fault);
    }
    Json(json!({"armed": armed.armed()})).into_response()
}

async fn list_faults(AxumState(state): AxumState<Arc<State>>) -> Response {
    Json(json!({"armed": state.faults().armed()})).into_response()
}

async fn clear_faults(AxumState(state): AxumState<Arc<State>>) -> Response {
    state.faults().clear();
    Json(json!({})).into_response()
}

#[derive(Deserialize)]
struct Advance {
    /// `49h`, `90m`, `1d` (humantime).
    #[serde(default, alias = "advance")]
    by: Option<String>,
    /// Or a number of seconds.
    #[serde(default)]
    seconds: Option<u64>,
}

async fn clock(AxumState(state): AxumState<Arc<State>>) -> Response {
    Json(json!({"now": rfc3339(state.now())})).into_response()
}

/// `POST /_emulator/clock {"by": "49h"}` (or `{"seconds": 176400}`): moves the emulator's
/// clock forward.
async fn advance_clock(
    AxumState(state): AxumState<Arc<State>>,
    Json(advance): Json<Advance>,
) -> Response {
    let by = match (advance.by, advance.seconds) {
        (Some(text), _) => parse_duration(&text),
        (None, Some(secs)) => Ok(std::time::Duration::from_secs(secs)),
        (None, None) => Err("give `by` (e.g. \"49h\") or `seconds`".to_string()),
    };
    match by {
        Ok(by) => Json(json!({"now": rfc3339(state.advance_clock(by))})).into_response(),
        Err(e) => bad_request(e),
    }
}

/// `DELETE /_emulator/clock`: back to the wall clock (a File that was gone stays gone).
async fn reset_clock(AxumState(state): AxumState<Arc<State>>) -> Response {
    Json(json!({"now": rfc3339(state.reset_clock())})).into_response()
}

#[derive(Deserialize)]
struct Failure {
    #[serde(default = "default_failure")]
    message: String,
}

fn default_failure() -> String {
    "File processing failed.".into()
}

/// `POST /_emulator/files/{id}/fail {"message": "Virus scan failed"}`: the File's state
/// becomes `FAILED` with that `error.message`.
async fn fail_file(
    AxumState(state): AxumState<Arc<State>>,
    Path(id): Path<String>,
    body: Option<Json<Failure>>,
) -> Response {
    let message = body.map_or_else(default_failure, |b| b.0.message);
    let id = id.strip_prefix("files/").unwrap_or(&id);
    if state.fail_file(id, &message) {
        Json(json!({})).into_response()
    } else {
        (StatusCode::NOT_FOUND, Json(json!({"error": format!("no File {id}")}))).into_response()
    }
}

#[derive(Deserialize)]
struct Answers {
    /// One answer per entry, given in order to the next generate calls.
    texts: Vec<String>,
}

/// `POST /_emulator/answers {"texts": ["…"]}`: the next answers say exactly these texts.
async fn queue_answers(
    AxumState(state): AxumState<Arc<State>>,
    Json(answers): Json<Answers>,
) -> Response {
    state.queue_answers(answers.texts);
    Json(json!({})).into_response()
}

/// `GET /_emulator/requests`: every request so far, oldest first.
async fn requests(AxumState(state): AxumState<Arc<State>>) -> Response {
    Json(json!({"requests": state.log()})).into_response()
}

async fn clear_requests(AxumState(state): AxumState<Arc<State>>) -> Response {
    state.clear_log();
    Json(json!({})).into_response()
}
