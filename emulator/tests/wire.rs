//! The emulator on the wire, driven with plain HTTP as the SDKs and curl drive Gemini
//! (`docs/gemini-protocol.md`), plus its control surface.

use std::time::Duration;

use base64::Engine;
use gemini_emulator::{EmulatorConfig, RunningEmulator};
use reqwest::{Client, Response};
use serde_json::{json, Value};

async fn emulator(config: EmulatorConfig) -> RunningEmulator {
    gemini_emulator::testing::spawn_local(config).await
}

fn controlled() -> EmulatorConfig {
    EmulatorConfig {
        processing: Duration::ZERO,
        chunk_delay: Duration::ZERO,
        control: true,
        ..Default::default()
    }
}

/// Start (with the given body) and one `upload, finalize`; returns the finalize answer.
async fn upload(
    emu: &RunningEmulator,
    version: &str,
    key: &str,
    mime: &str,
    bytes: &[u8],
    start_body: Value,
) -> Response {
    let http = Client::new();
    let res = http
        .post(format!("{}/upload/{version}/files", emu.base_url()))
        .header("x-goog-api-key", key)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Length", bytes.len().to_string())
        .header("X-Goog-Upload-Header-Content-Type", mime)
        .json(&start_body)
        .send()
        .await
        .unwrap();
    if res.status() != 200 {
        return res;
    }
    assert_eq!(res.headers()["x-goog-upload-status"], "active");
    assert_eq!(res.headers()["x-goog-upload-chunk-granularity"], "8388608");
    let url = res.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
    http.post(url)
        // Chunks carry no key, and the Python SDK labels them application/json.
        .header("Content-Type", "application/json")
        .header("X-Goog-Upload-Command", "upload, finalize")
        .header("X-Goog-Upload-Offset", "0")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn file_of(res: Response) -> Value {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-goog-upload-status"], "final");
    let body: Value = res.json().await.unwrap();
    body["file"].clone()
}

async fn generate(emu: &RunningEmulator, key: &str, body: &Value) -> Response {
    Client::new()
        .post(format!("{}/v1beta/models/gemini-2.5-flash:generateContent", emu.base_url()))
        .header("x-goog-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn error_of(res: Response) -> (u16, String, String) {
    let code = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    (
        code,
        body["error"]["status"].as_str().unwrap_or("").into(),
        body["error"]["message"].as_str().unwrap_or("").into(),
    )
}

#[tokio::test]
async fn the_file_resource_is_as_documented_for_both_start_casings() {
    let emu = emulator(controlled()).await;
    let snake =
        json!({"file": {"display_name": "snake", "mime_type": "text/plain", "size_bytes": 5}});
    let camel =
        json!({"file": {"displayName": "camel", "mimeType": "text/plain", "sizeBytes": "5"}});
    for (version, body, name) in [("v1", snake, "snake"), ("v1beta", camel, "camel")] {
        let file = file_of(upload(&emu, version, "k", "text/plain", b"hello", body).await).await;
        let id = file["name"].as_str().unwrap().strip_prefix("files/").unwrap().to_string();
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(file["displayName"], name);
        assert_eq!(file["sizeBytes"], "5", "int64 as a string");
        assert_eq!(file["source"], "UPLOADED");
        assert_eq!(file["uri"], format!("{}/{version}/files/{id}", emu.base_url()));
        let hash = base64::engine::general_purpose::STANDARD
            .decode(file["sha256Hash"].as_str().unwrap())
            .unwrap();
        assert_eq!(hash, b"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        for field in ["createTime", "updateTime", "expirationTime"] {
            let t = file[field].as_str().unwrap();
            assert!(humantime::parse_rfc3339(t).is_ok() && t.ends_with('Z'), "{field}: {t}");
        }
        let created = humantime::parse_rfc3339(file["createTime"].as_str().unwrap()).unwrap();
        let expires = humantime::parse_rfc3339(file["expirationTime"].as_str().unwrap()).unwrap();
        assert_eq!(expires.duration_since(created).unwrap(), Duration::from_secs(48 * 3600));
        // files.get answers the same resource, unwrapped; ?key= works as well as the header.
        let got: Value = reqwest::get(format!("{}/{version}/files/{id}?key=k", emu.base_url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got["name"], file["name"]);
    }
}

#[tokio::test]
async fn query_cancel_and_offsets() {
    let emu = emulator(controlled()).await;
    let http = Client::new();
    let start = http
        .post(format!("{}/upload/v1beta/files", emu.base_url()))
        .header("x-goog-api-key", "k")
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Length", "10")
        .header("X-Goog-Upload-Header-Content-Type", "text/plain")
        .send()
        .await
        .unwrap();
    let url = start.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
    let send = |command: &'static str, offset: Option<u64>, body: &'static [u8]| {
        let mut req = http.post(&url).header("X-Goog-Upload-Command", command).body(body);
        if let Some(o) = offset {
            req = req.header("X-Goog-Upload-Offset", o.to_string());
        }
        req.send()
    };
    let res = send("upload", Some(0), b"hello").await.unwrap();
    assert_eq!(res.headers()["x-goog-upload-status"], "active");
    let res = send("query", None, b"").await.unwrap();
    assert_eq!(res.headers()["x-goog-upload-size-received"], "5");
    let res = send("upload", Some(3), b"world").await.unwrap();
    assert_eq!(res.status(), 400, "offset mismatch");
    let res = send("upload, finalize", Some(5), b"world").await.unwrap();
    let file = file_of(res).await;
    assert_eq!(file["sizeBytes"], "10");
    // After finalize, query still answers with the File (for a client whose answer was lost).
    let res = send("query", None, b"").await.unwrap();
    assert_eq!(file_of(res).await["name"], file["name"]);

    // Any type is taken at start; one Gemini cannot read is refused when a prompt uses it.
    let odd = file_of(upload(&emu, "v1beta", "k", "image/tiff", b"II*\0", json!({})).await).await;
    assert_eq!(odd["state"], "ACTIVE");
    let using =
        json!({"contents": [{"parts": [{"fileData": {"fileUri": odd["uri"]}}, {"text": "?"}]}]});
    assert_eq!(
        error_of(generate(&emu, "k", &using).await).await,
        (400, "INVALID_ARGUMENT".into(), "Unsupported MIME type: image/tiff".into())
    );

    // cancel ends a session.
    let start = http
        .post(format!("{}/upload/v1beta/files", emu.base_url()))
        .header("x-goog-api-key", "k")
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Type", "text/plain")
        .send()
        .await
        .unwrap();
    let url = start.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
    let res = http.post(&url).header("X-Goog-Upload-Command", "cancel").send().await.unwrap();
    assert_eq!(res.headers()["x-goog-upload-status"], "cancelled");
    let res = http.post(&url).header("X-Goog-Upload-Command", "query").send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn keys_ownership_and_expiry() {
    let emu = emulator(EmulatorConfig { api_key: Some("right".into()), ..controlled() }).await;
    let no_key = reqwest::get(format!("{}/v1beta/files", emu.base_url())).await.unwrap();
    let (code, status, message) = error_of(no_key).await;
    assert_eq!((code, status.as_str()), (403, "PERMISSION_DENIED"));
    assert!(message.starts_with("Method doesn't allow unregistered callers"));
    let wrong: Value = Client::new()
        .get(format!("{}/v1beta/files", emu.base_url()))
        .header("x-goog-api-key", "nope")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wrong["error"]["code"], 400);
    assert_eq!(wrong["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let file =
        file_of(upload(&emu, "v1beta", "right", "text/plain", b"mine", json!({})).await).await;
    let ask = json!({"contents": [{"role": "user", "parts": [{"file_data": {"file_uri": file["uri"], "mime_type": "text/plain"}}]}]});
    assert_eq!(generate(&emu, "right", &ask).await.status(), 200);

    // Past its expirationTime the File is gone: 403 with Gemini's text.
    let clock: Value = Client::new()
        .post(format!("{}/_emulator/clock", emu.base_url()))
        .json(&json!({"by": "48h 1m"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(clock["now"].as_str().unwrap().ends_with('Z'));
    let id = file["name"].as_str().unwrap().strip_prefix("files/").unwrap();
    let (code, status, message) = error_of(generate(&emu, "right", &ask).await).await;
    assert_eq!((code, status.as_str()), (403, "PERMISSION_DENIED"));
    assert_eq!(
        message,
        format!("You do not have permission to access the File {id} or it may not exist.")
    );
    let list: Value = Client::new()
        .get(format!("{}/v1beta/files", emu.base_url()))
        .header("x-goog-api-key", "right")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({}), "an empty list is {{}}");

    // `DELETE` puts the clock back to the wall clock; a File once gone stays gone.
    let reset: Value = Client::new()
        .delete(format!("{}/_emulator/clock", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = humantime::parse_rfc3339_weak(reset["now"].as_str().unwrap()).unwrap();
    assert!(
        now.duration_since(std::time::SystemTime::now()).unwrap_or_default()
            < Duration::from_secs(5),
        "back to the wall clock"
    );
    assert_eq!(generate(&emu, "right", &ask).await.status(), 403);
}

#[tokio::test]
async fn generate_accepts_both_casings_and_refuses_like_gemini() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(600),
        process_every_file: true,
        ..controlled()
    })
    .await;
    let slow = file_of(upload(&emu, "v1beta", "k", "text/plain", b"slow", json!({})).await).await;
    assert_eq!(slow["state"], "PROCESSING");
    let id = slow["name"].as_str().unwrap().strip_prefix("files/").unwrap().to_string();
    let mixed = json!({"contents": [{"parts": [{"fileData": {"file_uri": slow["uri"], "mimeType": "text/plain"}}]}]});
    assert_eq!(
        error_of(generate(&emu, "k", &mixed).await).await,
        (
            400,
            "FAILED_PRECONDITION".into(),
            format!("The File {id} is not in an ACTIVE state and usage is not allowed.")
        )
    );
    let bad = json!({"contents": [{"parts": [{"file_data": {"file_uri": "gs://bucket/x"}}]}]});
    assert_eq!(
        error_of(generate(&emu, "k", &bad).await).await.2,
        "Invalid or unsupported file uri: gs://bucket/x"
    );
    let res = Client::new()
        .post(format!("{}/v1beta/models/nope-1:generateContent", emu.base_url()))
        .header("x-goog-api-key", "k")
        .json(&json!({"contents": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // FAILED on demand, through the control surface.
    let res = Client::new()
        .post(format!("{}/_emulator/files/{id}/fail", emu.base_url()))
        .json(&json!({"message": "Virus scan failed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = Client::new()
        .get(format!("{}/v1/files/{id}", emu.base_url()))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["state"], "FAILED");
    assert_eq!(got["error"]["message"], "Virus scan failed");
}

#[tokio::test]
async fn videos_process_longer_and_carry_video_metadata() {
    let config = EmulatorConfig {
        processing: Duration::ZERO,
        processing_by_prefix: vec![("video/".into(), Duration::from_millis(400))],
        ..controlled()
    };
    let emu = emulator(config).await;
    let image =
        file_of(upload(&emu, "v1beta", "k", "image/png", b"\x89PNG", json!({})).await).await;
    assert_eq!(image["state"], "ACTIVE");
    let mp4 = gemini_emulator::testing::tiny_mp4(1000, 2500);
    let video = file_of(upload(&emu, "v1beta", "k", "video/mp4", &mp4, json!({})).await).await;
    assert_eq!(video["state"], "PROCESSING");
    assert!(video.get("videoMetadata").is_none());
    tokio::time::sleep(Duration::from_millis(450)).await;
    let got: Value = Client::new()
        .get(format!("{}/v1beta/{}", emu.base_url(), video["name"].as_str().unwrap()))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["state"], "ACTIVE");
    assert_eq!(got["videoMetadata"]["videoDuration"], "2.5s");
}

#[tokio::test]
async fn sse_frames_are_crlf_with_stop_and_usage_last() {
    let emu = emulator(controlled()).await;
    let res = Client::new()
        .post(format!("{}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", emu.base_url()))
        .header("x-goog-api-key", "k")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "one two three four five six seven"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let body = res.text().await.unwrap();
    let frames: Vec<&str> = body.split("\r\n\r\n").filter(|f| !f.is_empty()).collect();
    assert!(frames.len() >= 3);
    let chunks: Vec<Value> = frames
        .iter()
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(last["usageMetadata"]["totalTokenCount"].as_u64().unwrap() > 0);
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["candidates"][0].get("finishReason").is_none()));
}

#[tokio::test]
async fn the_control_surface_arms_faults_scripts_answers_and_shows_requests() {
    let emu = emulator(controlled()).await;
    let http = Client::new();
    let base = emu.base_url();
    let armed: Value = http
        .post(format!("{base}/_emulator/faults"))
        .json(&json!([{"route": "generate", "kind": "rate_limited", "retry_delay": "2s"}, {"route": "list", "kind": "internal"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(armed["armed"].as_array().unwrap().len(), 2);
    let ask = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let res = generate(&emu, "k", &ask).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "2");
    let body: Value = res.json().await.unwrap();
    let retry = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    assert_eq!(retry["retryDelay"], "2s");
    let res = http
        .get(format!("{base}/v1beta/files"))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 500);

    http.post(format!("{base}/_emulator/answers"))
        .json(&json!({"texts": ["<img src=x onerror=alert(1)>"]}))
        .send()
        .await
        .unwrap();
    let answer: Value = generate(&emu, "k", &ask).await.json().await.unwrap();
    assert_eq!(
        answer["candidates"][0]["content"]["parts"][0]["text"],
        "<img src=x onerror=alert(1)>"
    );

    let bad = http
        .post(format!("{base}/_emulator/faults"))
        .json(&json!({"route": "nowhere", "kind": "drop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let log: Value =
        http.get(format!("{base}/_emulator/requests")).send().await.unwrap().json().await.unwrap();
    let log = log["requests"].as_array().unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0]["fault"], "rate_limited");
    assert_eq!(log[2]["json"]["contents"][0]["parts"][0]["text"], "hi");
    assert!(log.iter().all(|r| r["had_api_key"] == true));
    assert!(!serde_json::to_string(log).unwrap().contains("\"k\""), "keys are never logged");
}

#[tokio::test]
async fn the_control_surface_is_off_by_default() {
    let emu = emulator(EmulatorConfig::default()).await;
    let res = reqwest::get(format!("{}/_emulator/requests", emu.base_url())).await.unwrap();
    assert_eq!(res.status(), 404);
}

/// The answer is Markdown in blocks: the list of files ends (a blank line) before "You asked",
/// so that a renderer does not run the question into the last item.
#[tokio::test]
async fn the_answer_ends_its_list_before_the_question() {
    let emu = emulator(controlled()).await;
    let file = file_of(upload(&emu, "v1beta", "k", "text/plain", b"hello", json!({})).await).await;
    let body = json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"file_uri": file["uri"], "mime_type": "text/plain"}},
        {"text": "What is it?"}
    ]}]});
    let answer: Value = generate(&emu, "k", &body).await.json().await.unwrap();
    let text = answer["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("I received 1 file:\n\n1. "), "{text}");
    assert!(text.contains("\n\nYou asked: “What is it?”\n\n(This answer"), "{text}");
}

async fn call(
    emu: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut req = Client::new()
        .request(method, format!("{}{path}", emu.base_url()))
        .header("x-goog-api-key", "k");
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn models_page_and_an_unknown_one_is_gemini_s_404() {
    let emu = emulator(controlled()).await;
    let mut names = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        let page: Value = call(
            &emu,
            reqwest::Method::GET,
            &format!("/v1beta/models?pageSize=2&pageToken={token}"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        names.extend(
            page["models"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["name"].as_str().unwrap().to_string()),
        );
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
    }
    let all: Vec<String> =
        gemini_emulator::MODELS.iter().map(|m| format!("models/{}", m.id)).collect();
    assert_eq!(names, all);
    let res = call(&emu, reqwest::Method::GET, "/v1/models/gemini-1.0-ultra", None).await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": {"code": 404, "message": "Model is not found: models/gemini-1.0-ultra for api version v1", "status": "NOT_FOUND"}})
    );
    let flash: Value = call(&emu, reqwest::Method::GET, "/v1alpha/models/gemini-2.5-flash", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        flash["supportedGenerationMethods"],
        json!(["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"])
    );
}

#[tokio::test]
async fn count_tokens_takes_either_shape_but_not_both() {
    let emu = emulator(controlled()).await;
    let path = "/v1beta/models/gemini-2.5-flash:countTokens";
    let contents = json!([{"role": "user", "parts": [{"text": "abcdefgh"}]}]);
    let bare: Value = call(&emu, reqwest::Method::POST, path, Some(json!({"contents": contents})))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        bare,
        json!({"totalTokens": 2, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 2}]})
    );
    let wrapped = json!({"generateContentRequest": {"model": "models/gemini-2.5-flash", "contents": contents,
        "systemInstruction": {"parts": [{"text": "abcd"}]}}});
    let res: Value =
        call(&emu, reqwest::Method::POST, path, Some(wrapped)).await.json().await.unwrap();
    assert_eq!(
        res,
        json!({"totalTokens": 3, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]})
    );
    let both = json!({"contents": contents, "generateContentRequest": {"contents": contents}});
    assert_eq!(call(&emu, reqwest::Method::POST, path, Some(both)).await.status(), 400);
    let empty: Value =
        call(&emu, reqwest::Method::POST, path, Some(json!({}))).await.json().await.unwrap();
    assert_eq!(empty, json!({"totalTokens": 0}));
    // Its own fault route.
    Client::new()
        .post(format!("{}/_emulator/faults", emu.base_url()))
        .json(&json!({"route": "countTokens", "kind": "503"}))
        .send()
        .await
        .unwrap();
    assert_eq!(call(&emu, reqwest::Method::POST, path, Some(json!({}))).await.status(), 503);
    let log = emu.emulator.request_log();
    assert_eq!(log.last().unwrap().fault.as_deref(), Some("unavailable"));
}

#[tokio::test]
async fn cached_contents_on_the_wire() {
    let emu = emulator(controlled()).await;
    let text = "a".repeat(4096);
    let body = json!({"model": "models/gemini-2.5-flash", "contents": [{"role": "user", "parts": [{"text": text}]}],
        "systemInstruction": {"parts": [{"text": "abcd"}]}, "expireTime": "2099-01-01T00:00:00Z"});
    let made: Value = call(&emu, reqwest::Method::POST, "/v1beta/cachedContents", Some(body))
        .await
        .json()
        .await
        .unwrap();
    let mut keys: Vec<&str> = made.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["createTime", "displayName", "expireTime", "model", "name", "updateTime", "usageMetadata"]
    );
    assert_eq!(made["expireTime"], "2099-01-01T00:00:00.000000000Z");
    assert_eq!(made["displayName"], "");
    assert_eq!(made["usageMetadata"], json!({"totalTokenCount": 1025}));
    let name = made["name"].as_str().unwrap();
    let logged = emu.emulator.request_log().pop().unwrap();
    assert_eq!(logged.json.unwrap()["model"], "models/gemini-2.5-flash", "the body is logged");

    // updateMask picks the field: the ttl here is not applied.
    let patched: Value = call(
        &emu,
        reqwest::Method::PATCH,
        &format!("/v1beta/{name}?updateMask=expireTime"),
        Some(json!({"expireTime": "2098-01-01T00:00:00Z", "ttl": "1s"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(patched["expireTime"], "2098-01-01T00:00:00.000000000Z");

    let refusals = [
        (json!({"contents": []}), "* CreateCachedContentRequest.cached_content.model: model is not specified"),
        (json!({"model": "gemini-2.5-flash", "ttl": "1s", "expireTime": "2099-01-01T00:00:00Z"}),
         "Invalid JSON payload received. Oneof field 'expiration' is already set. Cannot set 'ttl'"),
        (json!({"model": "gemini-2.5-flash", "expireTime": "tomorrow"}),
         "Invalid value at 'cached_content.expire_time' (type.googleapis.com/google.protobuf.Timestamp), \"tomorrow\""),
    ];
    for (body, message) in refusals {
        let res = call(&emu, reqwest::Method::POST, "/v1beta/cachedContents", Some(body)).await;
        assert_eq!(error_of(res).await, (400, "INVALID_ARGUMENT".into(), message.into()));
    }
    let deleted: Value = call(&emu, reqwest::Method::DELETE, &format!("/v1/{name}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deleted, json!({}));
    let list: Value = call(&emu, reqwest::Method::GET, "/v1beta/cachedContents", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({}), "an empty list is {{}}");
    let gone = call(&emu, reqwest::Method::GET, &format!("/v1beta/{name}"), None).await;
    assert_eq!(
        error_of(gone).await,
        (403, "PERMISSION_DENIED".into(), "CachedContent not found (or permission denied)".into())
    );
}

#[tokio::test]
async fn gemini_3_answers_end_with_a_signed_empty_part() {
    let emu = emulator(controlled()).await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let res = call(
        &emu,
        reqwest::Method::POST,
        "/v1beta/models/gemini-3-flash-preview:streamGenerateContent?alt=sse",
        Some(body),
    )
    .await;
    let text = res.text().await.unwrap();
    let frames: Vec<Value> = text
        .split("\r\n\r\n")
        .filter(|f| !f.is_empty())
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    let last = frames.last().unwrap();
    let parts = last["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.last().unwrap()["text"], "");
    let signature = parts.last().unwrap()["thoughtSignature"].as_str().unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(signature).unwrap().len(), 32);
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["thoughtsTokenCount"], 64);
    assert!(last["usageMetadata"].get("cachedContentTokenCount").is_none());
}
