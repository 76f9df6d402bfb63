//! The emulator against what recordings of the real Gemini Developer API show
//! (`docs/gemini-protocol.md`): the wire's bytes and headers, when Files are `ACTIVE`, token
//! details, limits and refusals — each fact driven with plain HTTP, as a client sees it.

use std::time::Duration;

use gemini_emulator::{
    faults::{Fault, FaultKind, Route},
    testing::{spawn_local, tiny_mp4, tiny_pdf},
    EmulatorConfig, RunningEmulator,
};
use reqwest::{Client, Response};
use serde_json::{json, Value};

fn config() -> EmulatorConfig {
    EmulatorConfig { chunk_delay: Duration::ZERO, ..Default::default() }
}

/// The `start` answer for `body` (raw bytes, as a client may send them).
async fn start(emu: &RunningEmulator, mime: &str, size: usize, body: &str) -> Response {
    Client::new()
        .post(format!("{}/upload/v1beta/files", emu.base_url()))
        .header("x-goog-api-key", "k")
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Length", size.to_string())
        .header("X-Goog-Upload-Header-Content-Type", mime)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// A whole upload; the finalize answer.
async fn upload(emu: &RunningEmulator, mime: &str, bytes: &[u8], body: &str) -> Response {
    let started = start(emu, mime, bytes.len(), body).await;
    let url = started.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
    Client::new()
        .post(url)
        .header("X-Goog-Upload-Command", "upload, finalize")
        .header("X-Goog-Upload-Offset", "0")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn file(emu: &RunningEmulator, mime: &str, bytes: &[u8]) -> Value {
    let res = upload(emu, mime, bytes, "{}").await;
    let body: Value = res.json().await.unwrap();
    body["file"].clone()
}

async fn post(emu: &RunningEmulator, path: &str, body: &Value) -> Response {
    Client::new()
        .post(format!("{}/v1beta/{path}", emu.base_url()))
        .header("x-goog-api-key", "k")
        .json(body)
        .send()
        .await
        .unwrap()
}

fn ask(parts: Value) -> Value {
    json!({"contents": [{"role": "user", "parts": parts}]})
}

#[tokio::test]
async fn start_answers_as_gemini_does_and_reads_its_body_leniently() {
    let emu = spawn_local(config()).await;
    let res = start(&emu, "text/plain", 5, "{'file': {'display_name': 'quoted',},}").await;
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["x-goog-upload-url"], headers["x-goog-upload-control-url"]);
    let url = headers["x-goog-upload-url"].to_str().unwrap().to_string();
    let id = url.split("upload_id=").nth(1).unwrap().split('&').next().unwrap();
    assert_eq!(headers["x-guploader-uploadid"], id);
    assert_eq!(res.text().await.unwrap(), "");
    let done = Client::new()
        .post(&url)
        .header("X-Goog-Upload-Command", "upload, finalize")
        .header("X-Goog-Upload-Offset", "0")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(done.headers()["x-guploader-uploadid"], id);
    let body: Value = done.json().await.unwrap();
    assert_eq!(body["file"]["displayName"], "quoted", "single quotes and trailing commas");
}

#[tokio::test]
async fn json_is_pretty_with_gemini_s_key_order_and_times() {
    let emu = spawn_local(config()).await;
    let res = upload(&emu, "text/plain", b"hello", r#"{"file": {"display_name": "n"}}"#).await;
    assert_eq!(res.headers()["content-type"], "application/json; charset=UTF-8");
    let text = res.text().await.unwrap();
    assert!(text.starts_with("{\n  \"file\": {\n    \"name\": \"files/"), "{text}");
    assert!(text.ends_with("}\n"), "a trailing newline");
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("    \""))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "name",
            "displayName",
            "mimeType",
            "sizeBytes",
            "createTime",
            "updateTime",
            "expirationTime",
            "sha256Hash",
            "uri",
            "state",
            "source"
        ]
    );
    let file: Value = serde_json::from_str::<Value>(&text).unwrap()["file"].clone();
    let fraction = |field: &str| {
        let t = file[field].as_str().unwrap();
        t.split('.').nth(1).unwrap().trim_end_matches('Z').len()
    };
    assert_eq!(
        (fraction("createTime"), fraction("updateTime"), fraction("expirationTime")),
        (6, 6, 9)
    );
    let name = file["name"].as_str().unwrap();
    let deleted = Client::new()
        .delete(format!("{}/v1beta/{name}", emu.base_url()))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.text().await.unwrap(), "{}\n");
}

#[tokio::test]
async fn small_files_are_active_at_once_videos_and_large_ones_process() {
    let emu = spawn_local(EmulatorConfig {
        processing: Duration::from_secs(600),
        large_file_bytes: 4096,
        ..config()
    })
    .await;
    assert_eq!(file(&emu, "application/pdf", &tiny_pdf(1)).await["state"], "ACTIVE");
    assert_eq!(file(&emu, "audio/mpeg", &[0u8; 2000]).await["state"], "ACTIVE");
    let video = file(&emu, "video/mp4", &tiny_mp4(1000, 2500)).await;
    assert_eq!(video["state"], "PROCESSING");
    assert!(video.get("videoMetadata").is_none());
    assert_eq!(file(&emu, "text/plain", &[b'a'; 4096]).await["state"], "PROCESSING");
    let every = spawn_local(EmulatorConfig {
        process_every_file: true,
        processing: Duration::from_secs(600),
        ..config()
    })
    .await;
    assert_eq!(file(&every, "text/plain", b"tiny").await["state"], "PROCESSING");
}

#[tokio::test]
async fn answers_give_tokens_by_modality_and_one_response_id() {
    let emu = spawn_local(config()).await;
    let pdf = file(&emu, "application/pdf", &tiny_pdf(1)).await;
    let parts = json!([{"fileData": {"fileUri": pdf["uri"], "mimeType": "application/pdf"}}, {"text": "summarise this, please"}]);
    let whole: Value = post(&emu, "models/gemini-2.5-flash:generateContent", &ask(parts.clone()))
        .await
        .json()
        .await
        .unwrap();
    let usage = &whole["usageMetadata"];
    assert_eq!(
        usage["promptTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 6}, {"modality": "DOCUMENT", "tokenCount": 258}])
    );
    assert_eq!(usage["promptTokenCount"], 264);
    assert!(whole["responseId"].as_str().is_some_and(|id| id.len() >= 20));
    let count: Value = post(&emu, "models/gemini-2.5-flash:countTokens", &ask(parts.clone()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(count["totalTokens"], 264);
    assert_eq!(count["promptTokensDetails"], usage["promptTokensDetails"]);
    // An empty text is listed without its count.
    let empty: Value =
        post(&emu, "models/gemini-2.5-flash:countTokens", &ask(json!([{"text": ""}])))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(empty["promptTokensDetails"], json!([{"modality": "TEXT"}]));
    // With a cache: its part by modality too.
    let cache: Value = post(
        &emu,
        "cachedContents",
        &json!({"model": "models/gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": "x".repeat(4100)}, {"fileData": {"fileUri": pdf["uri"]}}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let cached = json!({"cachedContent": cache["name"], "contents": [{"role": "user", "parts": [{"text": "and?"}]}]});
    let answer: Value =
        post(&emu, "models/gemini-2.5-flash:generateContent", &cached).await.json().await.unwrap();
    assert_eq!(
        answer["usageMetadata"]["cacheTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 1025}, {"modality": "DOCUMENT", "tokenCount": 258}])
    );
    // Streamed: every event carries the same responseId.
    let text = post(&emu, "models/gemini-2.5-flash:streamGenerateContent?alt=sse", &ask(parts))
        .await
        .text()
        .await
        .unwrap();
    let ids: Vec<String> = text
        .split("\r\n\r\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            serde_json::from_str::<Value>(&f["data: ".len()..]).unwrap()["responseId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(ids.len() >= 2 && ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[tokio::test]
async fn streams_are_framed_as_gemini_frames_them() {
    let emu = spawn_local(config()).await;
    let question = ask(json!([{"text": "one two three four five six seven"}]));
    let res = post(&emu, "models/gemini-2.5-flash:streamGenerateContent?alt=sse", &question).await;
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["content-disposition"], "attachment");
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": "),
        "{text}"
    );
    assert!(text.contains("],\"role\": \"model\"}"), "no space after a comma: {text}");
    assert!(text.ends_with("}\r\n\r\n"));
    // Without alt=sse: one pretty-printed array.
    let array = post(&emu, "models/gemini-2.5-flash:streamGenerateContent", &question).await;
    let body = array.text().await.unwrap();
    assert!(body.starts_with("[\n  {\n    \"candidates\": ["), "{body}");
    // A refusal on the SSE endpoint: a JSON body, labelled as the stream.
    let refused = post(&emu, "models/no-such-model:streamGenerateContent?alt=sse", &question).await;
    assert_eq!(refused.status(), 404);
    assert_eq!(refused.headers()["content-type"], "text/event-stream");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["status"], "NOT_FOUND");
}

#[tokio::test]
async fn enums_come_as_integers_when_asked() {
    let emu = spawn_local(config()).await;
    let pdf = file(&emu, "application/pdf", &tiny_pdf(1)).await;
    let question = ask(json!([{"fileData": {"fileUri": pdf["uri"]}}, {"text": "hi"}]));
    let answer: Value = post(
        &emu,
        "models/gemini-2.5-flash:generateContent?%24alt=json%3Benum-encoding%3Dint",
        &question,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(answer["candidates"][0]["finishReason"], 1);
    assert_eq!(answer["candidates"][0]["content"]["role"], "model");
    assert_eq!(answer["usageMetadata"]["promptTokensDetails"][1]["modality"], 5);
    let got: Value = Client::new()
        .get(format!(
            "{}/v1beta/{}?$alt=json;enum-encoding=int",
            emu.base_url(),
            pdf["name"].as_str().unwrap()
        ))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((got["state"].as_u64(), got["source"].as_u64()), (Some(2), Some(1)));
}

#[tokio::test]
async fn a_prompt_past_the_input_limit_is_refused_one_token_under_it() {
    let emu = spawn_local(config()).await;
    // gemini-2.0-flash: inputTokenLimit 1,048,576; 4 characters a token.
    let at = |tokens: usize| ask(json!([{"text": "abcd".repeat(tokens)}]));
    let fits = post(&emu, "models/gemini-2.0-flash:generateContent", &at(1_048_575)).await;
    assert_eq!(fits.status(), 200);
    let over = post(&emu, "models/gemini-2.0-flash:generateContent", &at(1_048_576)).await;
    assert_eq!(over.status(), 400);
    let body: Value = over.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "The input token count (1048576) exceeds the maximum number of tokens allowed (1048575)."
    );
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_quota_refusal_names_the_metric_limit_and_model_and_when_to_retry() {
    let emu = spawn_local(config()).await;
    emu.emulator.inject(Fault {
        route: Route::Generate,
        kind: FaultKind::RateLimited { retry_delay: Duration::from_secs(15) },
        count: 1,
    });
    let res =
        post(&emu, "models/gemini-2.5-pro:generateContent", &ask(json!([{"text": "hi"}]))).await;
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("You exceeded your current quota"), "{message}");
    assert!(
        message.contains("\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: gemini-2.5-pro\n"),
        "{message}"
    );
    assert!(message.ends_with("Please retry in 15s."), "{message}");
}
