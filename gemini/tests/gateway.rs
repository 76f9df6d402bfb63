//! Gateway mode against the emulator's Azure API Management–style gateway
//! (`docs/gemini-protocol.md`): subscription key on every request, start at
//! `{prefix}/files`, `x-goog-upload-url` naming googleapis.com of which only the query is
//! kept.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bytes_of, emulator, fast_polls, quick_retries, sha_hex};
use futures::StreamExt;
use gemini::{ApiKey, Client, ClientConfig, Content, Error, GenerateContentRequest, Part};
use gemini_emulator::testing::requests;
use gemini_emulator::{EmulatorConfig, GatewayConfig, RunningEmulator};

const SUBSCRIPTION: &str = "apim-subscription-7Hq2";

async fn gateway_emulator() -> RunningEmulator {
    emulator(EmulatorConfig {
        processing: Duration::from_millis(100),
        process_every_file: true,
        chunk_delay: Duration::ZERO,
        gateway: Some(GatewayConfig { key: SUBSCRIPTION.into(), prefix: "/gemini".into() }),
        ..Default::default()
    })
    .await
}

fn gateway_client(emu: &RunningEmulator, key: &str) -> Client {
    let mut config = ClientConfig::gateway(
        format!("{}/gemini", emu.base_url()).parse().unwrap(),
        ApiKey::new(key).unwrap(),
    );
    config.retry = quick_retries();
    Client::new(config).unwrap()
}

#[tokio::test]
async fn upload_wait_generate_list_delete_through_the_gateway() {
    let emu = gateway_emulator().await;
    let gemini = gateway_client(&emu, SUBSCRIPTION);
    let data = bytes_of(9_000_000, 4);
    let file = gemini
        .upload_bytes(Some("scan.pdf".into()), "application/pdf", Bytes::from(data.clone()))
        .await
        .unwrap();
    assert!(
        file.uri.starts_with("https://generativelanguage.googleapis.com/v1beta/files/"),
        "{}",
        file.uri
    );
    let file = gemini.wait_active(file, &fast_polls()).await.unwrap();

    let req = GenerateContentRequest {
        contents: vec![Content {
            role: Some("user".into()),
            parts: vec![Part::file("application/pdf", &file.uri), Part::text("Summarise")],
        }],
        ..Default::default()
    };
    let mut stream = gemini.stream_generate_content("gemini-2.5-flash", &req).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&chunk.unwrap().text());
    }
    assert!(text.contains(&format!("9000000 bytes, SHA-256 {}", &sha_hex(&data)[..12])), "{text}");
    assert_eq!(gemini.list_all_files().await.unwrap().len(), 1);
    gemini.delete_file(&file.name).await.unwrap();

    let log = emu.emulator.request_log();
    assert!(
        log.iter().all(|r| r.path.starts_with("/gemini/")),
        "everything went through the gateway"
    );
    assert!(
        log.iter().all(|r| r.had_subscription_key && !r.had_api_key),
        "subscription key always, Google key never"
    );
    let chunks: Vec<_> = log.iter().filter(|r| r.upload_offset.is_some()).collect();
    assert_eq!(chunks.len(), 2, "9 MB in two chunks");
    assert!(
        chunks.iter().all(|r| r.path == "/gemini/files"),
        "chunks re-targeted at {{prefix}}/files"
    );
}

#[tokio::test]
async fn the_upload_url_names_google_so_only_its_query_is_usable() {
    let emu = gateway_emulator().await;
    let res = reqwest::Client::new()
        .post(format!("{}/gemini/files", emu.base_url()))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION)
        .header("X-Goog-Upload-Protocol", "resumable")
        .header("X-Goog-Upload-Command", "start")
        .header("X-Goog-Upload-Header-Content-Length", "5")
        .header("X-Goog-Upload-Header-Content-Type", "text/plain")
        .json(&serde_json::json!({"file": {"display_name": "t"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let url = res.headers()["x-goog-upload-url"].to_str().unwrap().to_string();
    assert!(
        url.starts_with("https://generativelanguage.googleapis.com/upload/v1beta/files?upload_id="),
        "{url}"
    );
    // What ChatSphere's client does: keep the query, post to the gateway path.
    let query = url.split_once('?').unwrap().1;
    let res = reqwest::Client::new()
        .post(format!("{}/gemini/files?{query}", emu.base_url()))
        .header("Ocp-Apim-Subscription-Key", SUBSCRIPTION)
        .header("X-Goog-Upload-Command", "upload, finalize")
        .header("X-Goog-Upload-Offset", "0")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-goog-upload-status"], "final");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["file"]["sizeBytes"], "5");
}

#[tokio::test]
async fn the_gateway_refuses_missing_and_wrong_subscription_keys_with_its_own_body() {
    let emu = gateway_emulator().await;
    let err = gateway_client(&emu, "wrong").get_file("files/abc").await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 401, message, status, .. } if message.starts_with("Access denied due to invalid subscription key") && status.is_empty()),
        "{err}"
    );
    let res = reqwest::get(format!("{}/gemini/v1beta/files", emu.base_url())).await.unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 401);
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("Access denied due to missing subscription key"));
    assert_eq!(requests(&emu, "GET", "/gemini/").len(), 2, "refusals are logged too");
}

/// A direct-mode client cannot use the gateway: its Google key is not a subscription key.
#[tokio::test]
async fn a_direct_mode_client_is_refused_by_the_gateway() {
    let emu = gateway_emulator().await;
    let config = ClientConfig::new(
        format!("{}/gemini", emu.base_url()).parse().unwrap(),
        ApiKey::new(SUBSCRIPTION).unwrap(),
    );
    let err = Client::new(config)
        .unwrap()
        .upload_bytes(None, "text/plain", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { code: 401, .. }), "{err}");
}
