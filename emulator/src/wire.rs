//! How Gemini writes its answers on the wire, byte for byte where clients may notice
//! (`docs/gemini-protocol.md`, "On the wire"): JSON pretty-printed with two spaces and a
//! trailing newline, labelled `application/json; charset=UTF-8` ([`Pretty`]); SSE events as
//! `data: {"key": value,"key": value}` ([`sse_event`]); enums as integers when a request asks
//! `$alt=json;enum-encoding=int` ([`int_enums`]); times with nine fractional digits for
//! expirations and six for the rest ([`rfc3339_nanos`], [`rfc3339_micros`]).

use std::time::SystemTime;

use axum::{
    body::Body,
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;

/// Largest JSON answer [`int_enums`] rewrites, bytes (a `files.list` page of 100 Files is
/// about 60 KB; answers are never near this).
const REWRITE_LIMIT: usize = 16 << 20;

/// A JSON answer as Gemini writes it: two-space indentation, `": "` after keys, a trailing
/// newline, `Content-Type: application/json; charset=UTF-8`.
pub struct Pretty<T>(pub StatusCode, pub T);

/// A `200` [`Pretty`] answer.
pub fn ok<T: Serialize>(value: T) -> Pretty<T> {
    Pretty(StatusCode::OK, value)
}

impl<T: Serialize> IntoResponse for Pretty<T> {
    fn into_response(self) -> Response {
        let mut body = serde_json::to_vec_pretty(&self.1).unwrap_or_else(|_| b"{}".to_vec());
        body.push(b'\n');
        let mut res = (self.0, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        res
    }
}

/// Gemini's SSE JSON: one line, `": "` after each key, `,` with no space between items.
pub fn sse_json(value: &Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, SseFormatter);
    // Serialising a `Value` into a Vec cannot fail.
    let _ = value.serialize(&mut ser);
    String::from_utf8(out).unwrap_or_default()
}

/// One SSE event: `data: {json}\r\n\r\n`.
pub fn sse_event(value: &Value) -> String {
    format!("data: {}\r\n\r\n", sse_json(value))
}

/// The compact formatter, with a space after each key's colon.
struct SseFormatter;

impl serde_json::ser::Formatter for SseFormatter {
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// RFC 3339 UTC with nine fractional digits (a File's `expirationTime`, a cache's
/// `expireTime`).
pub fn rfc3339_nanos(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// RFC 3339 UTC with six fractional digits (`createTime`, `updateTime`).
pub fn rfc3339_micros(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// The integer of an enum value of Gemini's protos, by the field it is in (`finishReason`,
/// `modality`, a File's `state` and `source`, `blockReason`), from
/// `google/ai/generativelanguage/v1beta/{generative_service,content,file}.proto`.
fn enum_number(field: &str, name: &str) -> Option<u64> {
    let table: &[(&str, u64)] = match field {
        "finishReason" => &[
            ("FINISH_REASON_UNSPECIFIED", 0),
            ("STOP", 1),
            ("MAX_TOKENS", 2),
            ("SAFETY", 3),
            ("RECITATION", 4),
            ("OTHER", 5),
            ("LANGUAGE", 6),
            ("BLOCKLIST", 7),
            ("PROHIBITED_CONTENT", 8),
            ("SPII", 9),
            ("MALFORMED_FUNCTION_CALL", 10),
        ],
        "modality" => &[
            ("MODALITY_UNSPECIFIED", 0),
            ("TEXT", 1),
            ("IMAGE", 2),
            ("VIDEO", 3),
            ("AUDIO", 4),
            ("DOCUMENT", 5),
        ],
        "state" => &[("STATE_UNSPECIFIED", 0), ("PROCESSING", 1), ("ACTIVE", 2), ("FAILED", 10)],
        "source" => &[("SOURCE_UNSPECIFIED", 0), ("UPLOADED", 1), ("GENERATED", 2)],
        "blockReason" => &[("BLOCK_REASON_UNSPECIFIED", 0), ("SAFETY", 1), ("OTHER", 2)],
        _ => return None,
    };
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// `value` with every enum Gemini's protos define written as its integer.
pub fn int_enums(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if let Some(number) = field.as_str().and_then(|name| enum_number(key, name)) {
                    *field = Value::from(number);
                } else {
                    int_enums(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(int_enums),
        _ => {}
    }
}

/// True when the request asks for integer enums: `$alt=json;enum-encoding=int`.
fn wants_int_enums(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(k, v)| k == "$alt" && v.split(';').any(|p| p.trim() == "enum-encoding=int"))
    })
}

/// Middleware: a JSON answer to a request that asks `$alt=json;enum-encoding=int` gets its
/// enums as integers (still pretty-printed).
pub async fn enum_encoding(req: Request, next: Next) -> Response {
    if !wants_int_enums(req.uri().query()) {
        return next.run(req).await;
    }
    let res = next.run(req).await;
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, REWRITE_LIMIT).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "answer too large").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    int_enums(&mut value);
    let mut res = Pretty(parts.status, value).into_response();
    for (name, v) in parts.headers.iter() {
        if name != header::CONTENT_LENGTH {
            res.headers_mut().insert(name, v.clone());
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sse_json_has_a_space_after_keys_only() {
        let v = json!({"candidates": [{"content": {"parts": [{"text": "a, b"}], "role": "model"}}], "n": 1});
        assert_eq!(
            sse_json(&v),
            r#"{"candidates": [{"content": {"parts": [{"text": "a, b"}],"role": "model"}}],"n": 1}"#
        );
        assert_eq!(sse_event(&json!({})), "data: {}\r\n\r\n");
    }

    #[test]
    fn enums_become_integers_by_field() {
        let mut v = json!({"candidates": [{"finishReason": "STOP"}], "state": "ACTIVE",
            "usageMetadata": {"promptTokensDetails": [{"modality": "DOCUMENT", "tokenCount": 3}]},
            "role": "model", "text": "STOP"});
        int_enums(&mut v);
        assert_eq!(v["candidates"][0]["finishReason"], 1);
        assert_eq!(v["state"], 2);
        assert_eq!(v["usageMetadata"]["promptTokensDetails"][0]["modality"], 5);
        assert_eq!((v["role"].as_str(), v["text"].as_str()), (Some("model"), Some("STOP")));
        assert!(wants_int_enums(Some("%24alt=json%3Benum-encoding%3Dint")));
        assert!(wants_int_enums(Some("$alt=json;enum-encoding=int&key=k")));
        assert!(!wants_int_enums(Some("alt=sse")));
    }

    #[test]
    fn times_have_nine_or_six_fractional_digits() {
        let t = humantime::parse_rfc3339("2026-01-02T03:04:05.123456789Z").unwrap();
        assert_eq!(rfc3339_nanos(t), "2026-01-02T03:04:05.123456789Z");
        assert_eq!(rfc3339_micros(t), "2026-01-02T03:04:05.123456Z");
    }
}
