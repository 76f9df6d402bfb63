//! `cachedContents` create, list, get, patch and delete (<https://ai.google.dev/api/caching>)
//! over [`crate::caches`]. A cache belongs to the caller that made it; a missing, expired,
//! deleted or foreign one is Gemini's 403 "CachedContent not found (or permission denied)".

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    body::Bytes,
    extract::{Path, State as AxumState},
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use super::{begin, check_version, either, paged, Ctx, Refusal};
use crate::{
    caches::CacheRecord,
    error::ApiError,
    faults::Route,
    models,
    prompt::{Check, Prompt},
    state::{new_cache_id, State},
};

/// A cache's life when neither `ttl` nor `expireTime` is given: 1 hour
/// (<https://ai.google.dev/gemini-api/docs/caching>: "If not set, the TTL defaults to 1 hour").
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The last instant an RFC 3339 time can name (9999-12-31T23:59:59Z).
const LATEST: Duration = Duration::from_secs(253_402_300_799);

const DURATION: &str = "type.googleapis.com/google.protobuf.Duration";
const TIMESTAMP: &str = "type.googleapis.com/google.protobuf.Timestamp";

/// The JSON body, parsed; and, for the request log, a copy with its length.
fn parse(body: &Bytes) -> (Option<Value>, Option<(Value, usize)>) {
    let request = serde_json::from_slice::<Value>(body).ok();
    let logged = request.clone().map(|json| (json, body.len()));
    (request, logged)
}

/// The JSON object of a body, or Gemini's generic 400.
fn object(request: Option<Value>) -> Result<Value, ApiError> {
    request
        .filter(Value::is_object)
        .ok_or_else(|| ApiError::invalid_argument("Request contains an invalid argument."))
}

/// `POST /{v}/cachedContents`: a new cache of `contents` and `systemInstruction` for
/// `model`, expiring after `ttl` or at `expireTime` (default [`DEFAULT_TTL`]).
pub async fn create(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    ctx: Ctx,
    body: Bytes,
) -> Response {
    let (request, logged) = parse(&body);
    if let Err(res) = begin(&state, &ctx, Route::Caches, logged).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let request = object(request)?;
        let named = request.get("model").and_then(Value::as_str).filter(|m| !m.is_empty());
        let named = named.ok_or_else(|| {
            ApiError::invalid_argument(
                "* CreateCachedContentRequest.cached_content.model: model is not specified",
            )
        })?;
        let bare = named.strip_prefix("models/").unwrap_or(named);
        let model = models::find(bare)
            .ok_or_else(|| ApiError::model_not_found_for(bare, &version, "createCachedContent"))?;
        let now = state.now();
        let expires = expiry(&request, now)?.unwrap_or(now + DEFAULT_TTL);
        let mut prompt = Prompt::default();
        let contents = request.get("contents").and_then(Value::as_array);
        prompt.add_contents(
            &state,
            &owner,
            contents.map_or(&[][..], Vec::as_slice),
            Check::Strict,
        )?;
        if let Some(system) = either(&request, "system_instruction", "systemInstruction") {
            prompt.add_system_instruction(&state, &owner, system, Check::Strict)?;
        }
        if prompt.tokens < model.min_cache_tokens {
            return Err(ApiError::cache_too_small(prompt.tokens, model.min_cache_tokens).into());
        }
        let display_name = either(&request, "display_name", "displayName")
            .and_then(Value::as_str)
            .map(str::to_string);
        let record = CacheRecord {
            id: new_cache_id(),
            owner,
            model,
            display_name,
            created: now,
            updated: now,
            expires,
            prompt,
        };
        let resource = record.resource();
        state.caches().insert(record, now)?;
        Ok(resource)
    })();
    result.map(crate::wire::ok).into_response()
}

/// `GET /{v}/cachedContents?pageSize=N&pageToken=T`: the caller's live caches, oldest first;
/// `pageSize` defaults to 100 and is capped at 1000 (Gemini's maximum).
pub async fn list(
    AxumState(state): AxumState<Arc<State>>,
    Path(version): Path<String>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Caches, None).await {
        return res;
    }
    let result = (|| -> Result<super::Page<Value>, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let mine = state.caches().of(&owner, state.now());
        Ok(paged(&ctx, &mine, (100, 1000), "cachedContents", CacheRecord::resource)?)
    })();
    result.map(crate::wire::ok).into_response()
}

/// `GET /{v}/cachedContents/{id}`: the cache's metadata (never its contents).
pub async fn get(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Caches, None).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        Ok(state.caches().get(&owner, &id, state.now())?.resource())
    })();
    result.map(crate::wire::ok).into_response()
}

/// `PATCH /{v}/cachedContents/{id}?updateMask=ttl` with `{"ttl": "600s"}` (or `expireTime`):
/// a new expiry. Without `updateMask` (as the Python SDK sends it) whichever of the two is
/// given counts.
pub async fn update(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
    body: Bytes,
) -> Response {
    let (request, logged) = parse(&body);
    if let Err(res) = begin(&state, &ctx, Route::Caches, logged).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        let mut request = object(request)?;
        if let Some(mask) = ctx.query.get("updateMask").or_else(|| ctx.query.get("update_mask")) {
            let paths: Vec<&str> = mask.split(',').map(str::trim).collect();
            let masked =
                |snake: &str, camel: &str| paths.contains(&snake) || paths.contains(&camel);
            let (ttl, expire) = (masked("ttl", "ttl"), masked("expire_time", "expireTime"));
            if let Some(fields) = request.as_object_mut() {
                fields.retain(|k, _| match k.as_str() {
                    "ttl" => ttl,
                    "expireTime" | "expire_time" => expire,
                    _ => false,
                });
            }
        }
        let now = state.now();
        let expires = expiry(&request, now)?;
        let mut caches = state.caches();
        let cache = caches.get(&owner, &id, now)?;
        if let Some(expires) = expires {
            cache.expires = expires;
            cache.updated = now;
        }
        Ok(cache.resource())
    })();
    result.map(crate::wire::ok).into_response()
}

/// `DELETE /{v}/cachedContents/{id}`: 200 with `{}`.
pub async fn delete(
    AxumState(state): AxumState<Arc<State>>,
    Path((version, id)): Path<(String, String)>,
    ctx: Ctx,
) -> Response {
    if let Err(res) = begin(&state, &ctx, Route::Caches, None).await {
        return res;
    }
    let result = (|| -> Result<Value, Refusal> {
        check_version(&version)?;
        let owner = ctx.caller(&state)?;
        state.caches().remove(&owner, &id, state.now())?;
        Ok(json!({}))
    })();
    result.map(crate::wire::ok).into_response()
}

/// The expiry a body asks for: `now + ttl`, or `expireTime`, or `None` when it names
/// neither. The two are one proto `oneof`: both at once is refused.
///
/// # Errors
/// 400 in the proto JSON parser's words for a `ttl` that is not `<seconds>[.<fraction>]s`, an
/// `expireTime` that is not RFC 3339 UTC, either past year 9999, or both given.
fn expiry(request: &Value, now: SystemTime) -> Result<Option<SystemTime>, ApiError> {
    let ttl = request.get("ttl");
    let expire = either(request, "expire_time", "expireTime");
    let latest = SystemTime::UNIX_EPOCH + LATEST;
    match (ttl, expire) {
        (Some(_), Some(_)) => Err(ApiError::invalid_argument(
            "Invalid JSON payload received. Oneof field 'expiration' is already set. Cannot set 'ttl'",
        )),
        (Some(ttl), None) => {
            let bad = || ApiError::bad_value("cached_content.ttl", DURATION, ttl);
            let ttl = ttl.as_str().and_then(parse_proto_duration).ok_or_else(bad)?;
            now.checked_add(ttl).filter(|t| *t <= latest).map(Some).ok_or_else(bad)
        }
        (None, Some(at)) => {
            let bad = || ApiError::bad_value("cached_content.expire_time", TIMESTAMP, at);
            let time = at.as_str().and_then(|t| humantime::parse_rfc3339(t).ok());
            time.filter(|t| *t <= latest).map(Some).ok_or_else(bad)
        }
        (None, None) => Ok(None),
    }
}

/// `300s`, `1.5s`: whole seconds, at most nine fraction digits, then `s`.
fn parse_proto_duration(text: &str) -> Option<Duration> {
    let number = text.strip_suffix('s')?;
    let (secs, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !digits(secs) || !digits(fraction) || fraction.len() > 9 {
        return None;
    }
    let nanos = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse().ok()? };
    Some(Duration::new(secs.parse().ok()?, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_durations_parse_strictly() {
        assert_eq!(parse_proto_duration("300s"), Some(Duration::from_secs(300)));
        assert_eq!(parse_proto_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "s", "300", "-1s", "1.s5", "1.1234567890s", "99999999999999999999s", "soon"]
        {
            assert_eq!(parse_proto_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiries_come_from_ttl_or_expire_time_not_both() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ttl = expiry(&json!({"ttl": "60s"}), now).unwrap();
        assert_eq!(ttl, Some(now + Duration::from_secs(60)));
        let at = expiry(&json!({"expireTime": "2030-01-01T00:00:00Z"}), now).unwrap();
        assert_eq!(at, humantime::parse_rfc3339("2030-01-01T00:00:00Z").ok());
        assert_eq!(expiry(&json!({}), now).unwrap(), None);
        let both = expiry(&json!({"ttl": "1s", "expire_time": "2030-01-01T00:00:00Z"}), now);
        assert_eq!(both.unwrap_err().code, 400);
        let huge = expiry(&json!({"ttl": "315576000000s"}), now).unwrap_err();
        assert!(
            huge.message.starts_with("Invalid value at 'cached_content.ttl'"),
            "{}",
            huge.message
        );
        let text = expiry(&json!({"ttl": 5}), now).unwrap_err().message;
        assert_eq!(text, "Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), 5");
    }
}
