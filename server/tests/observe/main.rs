//! What an operator sees, from a real `parley` process: `/metrics` after a scripted session
//! (each counter moved by exactly what the session did; no key, URI or session id in the
//! text), and JSON logs in which the request id a response names is on the log line of the
//! Gemini call that request made.

#[path = "../common/mod.rs"]
mod common;

use std::{collections::HashMap, time::Duration};

use app::model::UploadedFile;
use common::*;

const KEY: &str = "observe-test-key-7QxPw2";

/// The samples of a Prometheus text exposition: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(url: &str) -> (String, HashMap<String, f64>) {
    let res = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(res.headers().get("set-cookie").is_none(), "no session for the scraper");
    let text = res.text().await.unwrap();
    let parsed = samples(&text);
    (text, parsed)
}

/// A `parley` process on `emulator` with the key, no expiry margin, and `extra`.
async fn parley_on(
    emulator: &gemini_emulator::RunningEmulator,
    extra: &[&str],
    env: &[(&str, &str)],
    log: Option<&std::path::Path>,
) -> Process {
    let base = emulator.base_url();
    let mut args = on_emulator(&base, KEY);
    args.extend_from_slice(extra);
    Process::launch_with(&args, None, env, log).await
}

/// Upload, dedup, chat, expiry and re-upload, a 429: each moves its counters by exactly that.
#[tokio::test]
async fn metrics_count_what_a_session_did() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let site =
        parley_on(&emulator, &["--rate-chat", "3/min", "--metrics-on-site"], &[], None).await;
    let (_, before) = scrape(&site.url).await;
    assert_eq!(before.get("parley_chat_streams_in_flight").copied().unwrap_or(0.0), 0.0);
    // Every series of a fixed label set is there at 0 before anything happened.
    for series in [
        r#"parley_uploads_total{kind="upload"}"#,
        r#"parley_uploads_total{kind="reupload"}"#,
        r#"parley_upstream_errors_total{kind="403_file"}"#,
        r#"parley_rate_limit_refusals_total{limit="chat"}"#,
        r#"parley_budget_refusals_total{scope="site"}"#,
        "parley_summaries_total",
        r#"parley_upload_active_seconds_count{kind="upload"}"#,
    ] {
        assert_eq!(before.get(series), Some(&0.0), "{series} at start-up");
    }

    let browser = browser();
    let text = b"bytes to count".to_vec();
    let upload = |bytes: Vec<u8>| {
        let form = upload_form(&bytes.len().to_string(), "text/plain", "n.txt", bytes);
        browser.post(format!("{}/api/upload_file", site.url)).multipart(form).send()
    };
    let first = upload(text.clone()).await.unwrap();
    let cookie = first.headers()["set-cookie"].to_str().unwrap().to_string();
    let file: UploadedFile = first.json().await.unwrap();
    let again: UploadedFile = upload(text.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(again.uri, file.uri, "dedup");
    let chat = || browser.post(format!("{}/api/chat", site.url)).json(&about(&file.uri)).send();
    assert_eq!(chat().await.unwrap().text().await.unwrap().matches("\"done\"").count(), 1);
    emulator.emulator.advance_clock(Duration::from_secs(49 * 3600));
    let replaced = chat().await.unwrap().text().await.unwrap();
    assert!(replaced.contains("\"replaced\""), "{replaced}");
    // Read to its end, so that the stream's metrics are final when scraped.
    let third = chat().await.unwrap().text().await.unwrap();
    assert_eq!(third.matches("\"done\"").count(), 1, "{third}");
    assert_eq!(chat().await.unwrap().status(), 429, "the fourth chat of the minute");

    let (text_after, after) = scrape(&site.url).await;
    let moved = |series: &str| {
        after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
    };
    let expect = [
        (r#"parley_uploads_total{kind="upload"}"#, 1.0),
        (r#"parley_uploads_total{kind="reupload"}"#, 1.0),
        (r#"parley_upload_bytes_total{kind="upload"}"#, text.len() as f64),
        (r#"parley_upload_active_seconds_count{kind="upload"}"#, 1.0),
        ("parley_upload_dedup_hits_total", 1.0),
        (r#"parley_upstream_errors_total{kind="403_file"}"#, 1.0),
        ("parley_expired_content_total", 0.0),
        (r#"parley_rate_limit_refusals_total{limit="chat"}"#, 1.0),
        (r#"parley_http_requests_total{route="/api/chat",status="200"}"#, 3.0),
        (r#"parley_http_requests_total{route="/api/chat",status="429"}"#, 1.0),
        (r#"parley_http_requests_total{route="/api/upload_file",status="200"}"#, 2.0),
        ("parley_chat_first_token_seconds_count", 3.0),
        ("parley_chat_stream_seconds_count", 3.0),
    ];
    for (series, by) in expect {
        assert_eq!(moved(series), by, "{series}\n{text_after}");
    }
    // Every answer metered: tokens by kind and model, and what they cost.
    let output = r#"parley_tokens_total{kind="output",model="gemini-2.5-flash"}"#;
    assert!(moved(output) > 0.0, "{text_after}");
    assert!(moved(r#"parley_spend_dollars{model="gemini-2.5-flash"}"#) > 0.0, "{text_after}");
    assert_eq!(after["parley_chat_streams_in_flight"], 0.0);
    assert_eq!(after["parley_upstream_slots_in_use"], 0.0);
    assert_eq!(after["parley_retained_originals"], 1.0);
    assert_eq!(after["parley_retained_original_bytes"], text.len() as f64);
    assert!(text_after.contains("# HELP parley_uploads_total"));

    // Nothing that identifies anyone or opens anything.
    let session = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let id = file.uri.rsplit('/').next().unwrap();
    for secret in [KEY, file.uri.as_str(), id, session, &file.sha256] {
        assert!(!text_after.contains(secret), "{secret} in the metrics");
    }
}

/// `/metrics` is the operator's: on `--metrics-listen` only, and on the site's own listener only
/// with `--metrics-on-site`. (On the site, the retained-originals figures were an oracle: a
/// visitor uploading a probe saw them move by +1 and its bytes for content new to the server,
/// and by nothing for content someone else had uploaded.)
#[tokio::test]
async fn metrics_are_served_on_the_site_only_when_asked() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let public = parley_on(&emulator, &[], &[], None).await;
    let res = reqwest::get(format!("{}/metrics", public.url)).await.unwrap();
    assert_eq!(res.status(), 404, "no /metrics for the public by default");
    assert!(res.headers().get("set-cookie").is_none());

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let site = parley_on(&emulator, &["--metrics-listen", &listen], &[], None).await;
    assert_eq!(reqwest::get(format!("{}/metrics", site.url)).await.unwrap().status(), 404);
    let (_, parsed) = scrape(&format!("http://{listen}")).await;
    assert!(parsed.contains_key("parley_upstream_slots_in_use"));

    let env = [("PARLEY_METRICS_ON_SITE", "true")];
    let asked = parley_on(&emulator, &["--metrics-listen", "127.0.0.1:0"], &env, None).await;
    let (_, parsed) = scrape(&asked.url).await;
    assert!(parsed.contains_key("parley_upstream_slots_in_use"));
}

/// With `PARLEY_LOG_FORMAT=json` every stderr line is a JSON object, and the chat's request id
/// (its `X-Request-Id`) is on the line of its `streamGenerateContent` call. A client's own
/// `X-Request-Id` is not believed without `--trust-proxy`.
#[tokio::test]
async fn json_logs_carry_the_request_id_to_the_upstream_call() {
    let emulator = emulator(Duration::from_secs(48 * 3600)).await;
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("parley.log");
    let env = [("PARLEY_LOG_FORMAT", "json"), ("PARLEY_LOG", "info")];
    let site = parley_on(&emulator, &[], &env, Some(&log)).await;
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}]});
    let res = browser()
        .post(format!("{}/api/chat", site.url))
        .header("x-request-id", "chosen-by-the-client")
        .json(&body)
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(id, "chosen-by-the-client", "not behind a trusted proxy");
    assert_eq!(id.len(), 32);
    assert!(res.text().await.unwrap().contains("\"done\""));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string()));
    let upstream = lines
        .iter()
        .find(|l| l["fields"]["call"] == "streamGenerateContent")
        .unwrap_or_else(|| panic!("no line of the upstream call:\n{text}"));
    assert_eq!(upstream["fields"]["message"], "gemini call answered");
    assert_eq!(upstream["span"]["request_id"], id.as_str(), "{upstream}");
    assert!(!text.contains(KEY), "the key in the log");
}
