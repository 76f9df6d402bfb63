//! The whole server over HTTP — connections, router, server functions, the built-in
//! emulator — the way a browser reaches it. `lifecycle` holds the file-lifecycle cases
//! (ownership, expiry, re-upload from retained originals, dedup, 403 recovery), `hardening`
//! the public-site guards. (`tests/abuse` holds what one hostile visitor tries against everyone
//! else, each measured while another visitor is served.)

mod context;
mod hardening;
mod lifecycle;
mod pipelined;
mod share;
mod thumbnails;

#[path = "../common/mod.rs"]
mod common;

use common::*;
use reqwest::multipart::{Form, Part};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn the_page_renders_with_the_offline_banner() {
    let site = site(&[]).await;
    let page = reqwest::get(&site.url).await.unwrap().text().await.unwrap();
    assert!(page.contains("<title>Parley"));
    assert!(page.contains("Offline demo"));
    assert!(page.contains(r#"aria-label="Message""#));
}

#[tokio::test]
async fn an_upload_streams_to_gemini_and_returns_the_active_file() {
    let site = site(&[]).await;
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let expected = hex::encode(Sha256::digest(&bytes));
    let res = upload(&site, upload_form("3000000", "text/plain", "numbers.txt", bytes)).await;
    assert_eq!(res.status(), 200);
    let file: app::model::UploadedFile = res.json().await.unwrap();
    assert_eq!(file.sha256, expected);
    assert_eq!(file.size_bytes, 3_000_000);
    assert_eq!(file.display_name, "numbers.txt");
    assert!(file.name.starts_with("files/") && file.uri.ends_with(&file.name[6..]));
}

#[tokio::test]
async fn bad_uploads_get_typed_4xx_errors() {
    let site = site(&[]).await;
    let res =
        upload(&site, upload_form("5", "text/plain", "a.txt", b"more than five".to_vec())).await;
    assert_eq!(res.status(), 400);
    let error: app::error::AppError = res.json().await.unwrap();
    assert!(matches!(error, app::error::AppError::BadUpload(_)), "{error:?}");

    let res = upload(&site, upload_form("3", "application/zip", "a.zip", b"PK!".to_vec())).await;
    assert_eq!(res.status(), 415);
    let error: app::error::AppError = res.json().await.unwrap();
    assert_eq!(error.to_string(), "Gemini does not accept application/zip files.");

    let no_size = Form::new().part("file", Part::bytes(b"x".to_vec()).file_name("x.txt"));
    assert_eq!(upload(&site, no_size).await.status(), 400);

    let not_multipart = reqwest::Client::new()
        .post(format!("{}/api/upload_file", site.url))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), 415);
    // The server is still there.
    assert_eq!(reqwest::get(&site.url).await.unwrap().status(), 200);
}

#[tokio::test]
async fn chat_streams_ndjson_events() {
    let site = site(&[]).await;
    let body =
        serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "Hello, emulator"}]}]});
    let res = site.client.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let events: Vec<app::model::ChatEvent> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() >= 4, "{events:?}");
    assert_eq!(
        events.last(),
        Some(&app::model::ChatEvent::Done { finish_reason: Some("STOP".into()) })
    );
    let answer: String = events
        .iter()
        .filter_map(|e| match e {
            app::model::ChatEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(answer.contains("I received no files."), "{answer}");
    assert!(answer.contains("Hello, emulator"), "{answer}");
}

#[tokio::test]
async fn a_file_the_session_cannot_use_becomes_expired_content() {
    let site = site(&[]).await;
    let uri = "https://generativelanguage.googleapis.com/v1beta/files/abc123";
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": uri}}, {"text": "what was it?"}
    ]}]});
    let res = site.client.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert_eq!(text.lines().next().unwrap(), format!(r#"{{"type":"expired","file_uri":"{uri}"}}"#));
    assert!(text.contains("I received no ") && text.contains(r#""type":"done""#), "{text}");
}

/// A `MakeWriter` collecting log output in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_never_reaches_the_logs_even_at_trace_level() {
    const KEY: &str = "sk-parley-log-test-7Hq2";
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let emulator = gemini_emulator::testing::spawn_local(gemini_emulator::EmulatorConfig {
        api_key: Some(KEY.into()),
        processing: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await;
    let site = site_from(&[
        "parley",
        "--gemini-api-key",
        KEY,
        "--gemini-base-url",
        &emulator.base_url(),
        "--upstream-retries",
        "0",
    ])
    .await;
    let res = upload(&site, upload_form("4", "text/plain", "k.txt", b"abcd".to_vec())).await;
    assert_eq!(res.status(), 200);
    let file: app::model::UploadedFile = res.json().await.unwrap();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": file.uri}}, {"text": "and?"}
    ]}]});
    let res = site.client.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
    assert!(res.text().await.unwrap().contains("\"done\""));
    // A type Gemini does not read is refused before any call.
    let res = upload(&site, upload_form("3", "application/zip", "a.zip", b"PK!".to_vec())).await;
    assert_eq!(res.status(), 415);
    // A call Gemini fails is logged with its error.
    emulator.emulator.inject(gemini_emulator::faults::Fault {
        route: gemini_emulator::faults::Route::Generate,
        kind: gemini_emulator::faults::FaultKind::Internal,
        count: 1,
    });
    let res = site.client.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("An internal error has occurred"), "{text}");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // Proof that capture works; the upload's own lines are checked when captured (a callsite
    // first hit on another test's thread is sometimes not delivered to this thread's
    // subscriber, so their presence is not asserted).
    assert!(text.contains("gemini call failed"), "the failure was logged:\n{text}");
    assert!(!text.contains(KEY), "the key leaked into the logs");
}

#[tokio::test]
async fn gateway_mode_uploads_and_chats_through_the_gateway_only() {
    const SUBSCRIPTION: &str = "apim-parley-test-Zr4";
    let emulator = gemini_emulator::testing::spawn_local(gemini_emulator::EmulatorConfig {
        processing: std::time::Duration::ZERO,
        chunk_delay: std::time::Duration::ZERO,
        gateway: Some(gemini_emulator::GatewayConfig {
            key: SUBSCRIPTION.into(),
            prefix: "/gemini".into(),
        }),
        ..Default::default()
    })
    .await;
    let gateway = format!("{}/gemini", emulator.base_url());
    let site = site_from(&[
        "parley",
        "--gateway-url",
        &gateway,
        "--gateway-key",
        SUBSCRIPTION,
        "--gemini-api-key",
        "ignored",
    ])
    .await;

    let page = reqwest::get(&site.url).await.unwrap().text().await.unwrap();
    assert!(page.contains("Gemini via 127.0.0.1"), "the page names the gateway host");
    assert!(!page.contains("Offline demo") && !page.contains(SUBSCRIPTION));

    let res = upload(&site, upload_form("5", "text/plain", "g.txt", b"hello".to_vec())).await;
    assert_eq!(res.status(), 200);
    let file: app::model::UploadedFile = res.json().await.unwrap();
    assert!(
        file.uri.starts_with("https://generativelanguage.googleapis.com/v1beta/files/"),
        "{}",
        file.uri
    );
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": file.uri}}, {"text": "what is it?"}
    ]}]});
    let answer = site
        .client
        .post(format!("{}/api/chat", site.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(answer.contains("text/plain, 5 bytes"), "{answer}");

    let log = emulator.emulator.request_log();
    assert!(
        !log.is_empty()
            && log.iter().all(|r| r.path.starts_with("/gemini/")
                && r.had_subscription_key
                && !r.had_api_key)
    );
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_session() {
    let site = site(&[]).await;
    let health = reqwest::get(format!("{}/healthz", site.url)).await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get(reqwest::header::SET_COOKIE).is_none(), "no session");
    let ready = reqwest::get(format!("{}/readyz", site.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.headers().get(reqwest::header::SET_COOKIE).is_none(), "no session");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"database": "ok", "originals": "ok"}));
}

#[tokio::test]
async fn readiness_names_a_database_that_went_away() {
    let Some((admin, database, url)) = fresh_postgres("ready").await else { return };
    let secret = "0123456789abcdef0123456789abcdef";
    let site = site(&[
        "--database-url",
        &url,
        "--session-secret",
        secret,
        "--gemini-base-url",
        "http://127.0.0.1:9",
    ])
    .await;
    assert_eq!(reqwest::get(format!("{}/readyz", site.url)).await.unwrap().status(), 200);
    admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
    let res = reqwest::get(format!("{}/readyz", site.url)).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["originals"], "ok");
    assert_ne!(body["database"], "ok", "{body}");
    assert!(!body.to_string().contains("postgres://"), "no URL in the answer: {body}");
}

#[tokio::test]
async fn with_originals_on_s3_nothing_lands_on_the_local_disk() {
    let Some(bucket) = test_service("PARLEY_TEST_S3_BUCKET") else { return };
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let prefix = format!("http-{nanos:08x}");
    let site = site(&["--originals-url", &format!("s3://{bucket}/{prefix}")]).await;
    let bytes = vec![7u8; 6 << 20];
    let res =
        upload(&site, upload_form(&bytes.len().to_string(), "text/plain", "big.txt", bytes)).await;
    assert_eq!(res.status(), 200);
    let file: app::model::UploadedFile = res.json().await.unwrap();
    assert_eq!(files_under(&site, "originals"), 0, "no original on the local disk");
    // The original is in the bucket, under the prefix, by content.
    let endpoint = std::env::var("AWS_ENDPOINT").unwrap();
    let listing = reqwest::get(format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listing.contains(&format!(
            "<Key>{prefix}/sha256/{}/{}</Key>",
            &file.sha256[..2],
            file.sha256
        )),
        "{listing}"
    );
    assert!(!listing.contains("staging/"), "no staging leftover: {listing}");
    let ready: serde_json::Value =
        reqwest::get(format!("{}/readyz", site.url)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["originals"], "ok");
}

#[tokio::test]
async fn two_replicas_share_sessions_files_and_rate_limits() {
    let Some((_admin, _database, url)) = fresh_postgres("replicas").await else { return };
    let emulator = emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let secret = "0123456789abcdef0123456789abcdef";
    let args = ["--database-url", url.as_str(), "--session-secret", secret, "--rate-chat", "4/min"];
    let (a, b) = (parley(&emulator, &args).await, parley(&emulator, &args).await);
    // One browser (cookies go by host, not port): its session is valid on both.
    let browser = browser();
    let res =
        upload_as(&a, &browser, upload_form("5", "text/plain", "a.txt", b"hello".to_vec())).await;
    assert_eq!(res.status(), 200);
    let file: app::model::UploadedFile = res.json().await.unwrap();
    let listed = list_uploads(&browser, &b.url).await;
    assert_eq!(
        listed.iter().map(|r| r.uri.as_str()).collect::<Vec<_>>(),
        [file.uri.as_str()],
        "B knows A's upload"
    );
    // Four chats a minute across both replicas, not four each.
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [
        {"file_data": {"mime_type": "text/plain", "file_uri": file.uri}}, {"text": "which file?"}
    ]}]});
    for site in [&a, &b, &a, &b] {
        let res = browser.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.text().await.unwrap().contains("text/plain, 5 bytes"),
            "the File is usable on both"
        );
    }
    let refused = browser.post(format!("{}/api/chat", a.url)).json(&body).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 =
        refused.headers()[reqwest::header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=15).contains(&wait), "{wait}");
}

#[tokio::test]
async fn without_the_shared_store_each_replica_still_limits() {
    let Some((admin, database, url)) = fresh_postgres("fallback").await else { return };
    let emulator = emulator(std::time::Duration::from_secs(48 * 3600)).await;
    let secret = "0123456789abcdef0123456789abcdef";
    let site = parley(
        &emulator,
        // Without a budget: one that cannot be read refuses every call (the bill stays bounded).
        &[
            "--database-url",
            &url,
            "--session-secret",
            secret,
            "--rate-chat",
            "2/min",
            "--budget-site",
            "off",
        ],
    )
    .await;
    admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
    let body = serde_json::json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let chat = || site.client.post(format!("{}/api/chat", site.url)).json(&body).send();
    assert_eq!(chat().await.unwrap().status(), 200);
    assert_eq!(chat().await.unwrap().status(), 200);
    assert_eq!(chat().await.unwrap().status(), 429, "this process's limit took over");
}
