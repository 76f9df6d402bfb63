//! Context caches (`cachedContents`) against the emulator: their life (create, get, list,
//! patch, delete, expiry on the emulator's clock), who may use them, and what a request
//! naming one reports.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{client, emulator, quick_retries, rfc3339_secs};
use gemini::{
    ApiKey, CachedContent, Client, ClientConfig, Content, Error, GenerateContentRequest, Part,
};
use gemini_emulator::{testing::instant, EmulatorConfig, GatewayConfig};

/// A user turn of `chars` characters: `chars / 4` tokens (rounded up).
fn text_of(chars: usize) -> Content {
    Content { role: Some("user".into()), parts: vec![Part::text("a".repeat(chars))] }
}

fn cache_of(model: &str, contents: Vec<Content>, ttl: &str) -> CachedContent {
    CachedContent {
        model: model.into(),
        display_name: Some("handbook".into()),
        contents,
        ttl: Some(ttl.into()),
        ..Default::default()
    }
}

fn ask(text: &str, cache: Option<&str>) -> GenerateContentRequest {
    GenerateContentRequest {
        contents: vec![Content { role: Some("user".into()), parts: vec![Part::text(text)] }],
        cached_content: cache.map(str::to_string),
        ..Default::default()
    }
}

/// An RFC 3339 time of a resource, seconds since the epoch.
fn time(t: &Option<String>) -> i64 {
    rfc3339_secs(t.as_deref().unwrap())
}

fn is_gone(err: &Error) -> bool {
    matches!(err, Error::Api { code: 403, status, message, .. }
        if status == "PERMISSION_DENIED" && message == "CachedContent not found (or permission denied)")
}

#[tokio::test]
async fn a_cache_is_created_read_listed_extended_and_deleted() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    // 4096 characters: exactly 1024 tokens, Gemini 2.5 Flash's minimum.
    let made = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4096)], "300s"))
        .await
        .unwrap();
    assert!(made.name.starts_with("cachedContents/") && made.id().len() == 40, "{}", made.name);
    assert_eq!(made.model, "models/gemini-2.5-flash", "the prefix is added");
    assert_eq!(made.display_name.as_deref(), Some("handbook"));
    assert_eq!(made.usage_metadata.as_ref().unwrap().total_token_count, 1024);
    assert!(made.contents.is_empty(), "contents are never echoed");
    let created = time(&made.create_time);
    assert_eq!(time(&made.expire_time) - created, 300);
    assert_eq!(made.update_time, made.create_time);

    let got = gemini.get_cached_content(&made.name).await.unwrap();
    assert_eq!(got, gemini.get_cached_content(made.id()).await.unwrap());
    assert_eq!(got.expire_time, made.expire_time);

    let other = gemini
        .create_cached_content(&CachedContent {
            model: "models/gemini-2.5-flash".into(),
            system_instruction: Some(Content {
                role: None,
                parts: vec![Part::text("b".repeat(5000))],
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(other.display_name.as_deref(), Some(""), "Gemini answers an empty name");
    let default_life = time(&other.expire_time) - time(&other.create_time);
    assert_eq!(default_life, 3600, "1 hour by default");
    let listed = gemini.list_cached_contents(None).await.unwrap();
    let names: Vec<&str> = listed.cached_contents.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, [made.name.as_str(), other.name.as_str()], "oldest first");
    assert!(listed.next_page_token.is_none());

    emu.emulator.advance_clock(Duration::from_secs(100));
    let extended =
        gemini.update_cached_content_ttl(&made.name, Duration::from_secs(600)).await.unwrap();
    let updated = time(&extended.update_time);
    assert!((100..=101).contains(&(updated - created)), "{updated} - {created}");
    assert_eq!(time(&extended.expire_time) - updated, 600);
    let patch = emu.emulator.request_log().pop().unwrap();
    assert_eq!(patch.method, "PATCH");
    assert_eq!(patch.json.unwrap(), serde_json::json!({"ttl": "600s"}));
    emu.emulator.advance_clock(Duration::from_secs(300));
    assert!(gemini.get_cached_content(&made.name).await.is_ok(), "alive past its first TTL");

    gemini.delete_cached_content(&made.name).await.unwrap();
    assert!(is_gone(&gemini.get_cached_content(&made.name).await.unwrap_err()));
    assert!(is_gone(&gemini.delete_cached_content(&made.name).await.unwrap_err()));
    let left = gemini.list_cached_contents(None).await.unwrap();
    assert_eq!(left.cached_contents.len(), 1);
}

#[tokio::test]
async fn a_cache_below_the_models_minimum_is_refused() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let err = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4092)], "300s"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 400, status, message, .. } if status == "INVALID_ARGUMENT"
            && message == "Cached content is too small. total_token_count=1023, min_total_token_count=1024"),
        "{err}"
    );
    let err = gemini
        .create_cached_content(&cache_of("gemini-2.5-pro", vec![text_of(4096)], "300s"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("min_total_token_count=4096"), "{err}");
    let err = gemini
        .create_cached_content(&cache_of("gemini-1.0-ultra", vec![text_of(40_000)], "300s"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Api { code: 404, .. }), "{err}");
    let err = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4096)], "soon"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), \"soon\""
        ),
        "{err}"
    );
    assert!(gemini.list_cached_contents(None).await.unwrap().cached_contents.is_empty());
}

#[tokio::test]
async fn an_expired_cache_is_gone_for_get_and_generate() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let cache = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4096)], "60s"))
        .await
        .unwrap();
    assert!(gemini
        .generate_content("gemini-2.5-flash", &ask("hi", Some(&cache.name)))
        .await
        .is_ok());
    emu.emulator.advance_clock(Duration::from_secs(61));
    assert!(is_gone(&gemini.get_cached_content(&cache.name).await.unwrap_err()));
    let err = gemini
        .generate_content("gemini-2.5-flash", &ask("hi", Some(&cache.name)))
        .await
        .unwrap_err();
    assert!(is_gone(&err), "{err}");
    let err = gemini
        .stream_generate_content("gemini-2.5-flash", &ask("hi", Some(&cache.name)))
        .await
        .err()
        .unwrap();
    assert!(is_gone(&err), "{err}");
    assert!(gemini.list_cached_contents(None).await.unwrap().cached_contents.is_empty());
}

#[tokio::test]
async fn a_cache_belongs_to_the_key_that_made_it() {
    let emu = emulator(instant()).await;
    let owner = client(&emu, "owner");
    let cache = owner
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4096)], "300s"))
        .await
        .unwrap();
    let stranger = client(&emu, "stranger");
    assert!(is_gone(&stranger.get_cached_content(&cache.name).await.unwrap_err()));
    let err =
        stranger.update_cached_content_ttl(&cache.name, Duration::from_secs(5)).await.unwrap_err();
    assert!(is_gone(&err));
    assert!(is_gone(&stranger.delete_cached_content(&cache.name).await.unwrap_err()));
    let err = stranger
        .generate_content("gemini-2.5-flash", &ask("hi", Some(&cache.name)))
        .await
        .unwrap_err();
    assert!(is_gone(&err), "{err}");
    assert!(stranger.list_cached_contents(None).await.unwrap().cached_contents.is_empty());
    assert!(owner.get_cached_content(&cache.name).await.is_ok(), "untouched");
}

#[tokio::test]
async fn a_request_with_a_cache_reports_its_tokens_and_files() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let pdf = gemini_emulator::testing::tiny_pdf(4);
    let file = gemini.upload_bytes(None, "application/pdf", Bytes::from(pdf)).await.unwrap();
    let contents = vec![Content {
        role: Some("user".into()),
        parts: vec![Part::file("application/pdf", &file.uri), Part::text("Read this.")],
    }];
    // 4 pages × 258 + 3 tokens of text = 1035.
    let cache = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", contents, "300s"))
        .await
        .unwrap();
    assert_eq!(cache.usage_metadata.as_ref().unwrap().total_token_count, 1035);

    let req = ask("What is on page 2?", Some(&cache.name));
    let counted = gemini.count_tokens("gemini-2.5-flash", &req).await.unwrap();
    assert_eq!((counted.total_tokens, counted.cached_content_token_count), (1035 + 5, 1035));
    let logged = emu.emulator.request_log().pop().unwrap().json.unwrap();
    assert_eq!(logged["generateContentRequest"]["cachedContent"], cache.name.as_str());

    let answer = gemini.generate_content("gemini-2.5-flash", &req).await.unwrap();
    let usage = answer.usage_metadata.clone().unwrap();
    assert_eq!(usage.cached_content_token_count, 1035);
    assert_eq!(usage.prompt_token_count, counted.total_tokens);
    let text = answer.text();
    assert!(text.starts_with("I received 1 file:\n\n1. application/pdf, "), "{text}");
    assert!(text.contains("4 pages"), "{text}");
    assert!(text.contains("You asked: “What is on page 2?”"), "{text}");

    // The cache's turns come first: without a question of its own, its question is quoted.
    let bare = GenerateContentRequest {
        contents: vec![Content { role: Some("model".into()), parts: vec![Part::text("Yes?")] }],
        cached_content: Some(cache.name.clone()),
        ..Default::default()
    };
    let text = gemini.generate_content("gemini-2.5-flash", &bare).await.unwrap().text();
    assert!(text.contains("You asked: “Read this.”"), "{text}");

    // A request without a cache reports none.
    let plain = gemini.generate_content("gemini-2.5-flash", &ask("hi", None)).await.unwrap();
    assert_eq!(plain.usage_metadata.unwrap().cached_content_token_count, 0);
}

#[tokio::test]
async fn a_cache_needs_its_own_model_and_no_system_instruction() {
    let emu = emulator(instant()).await;
    let gemini = client(&emu, "k");
    let cache = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4096)], "300s"))
        .await
        .unwrap();
    let err =
        gemini.generate_content("gemini-2.5-pro", &ask("hi", Some(&cache.name))).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 400, message, .. } if message
            == "Model used by GenerateContent request (models/gemini-2.5-pro) and CachedContent (models/gemini-2.5-flash) has to be the same."),
        "{err}"
    );
    let with_system = GenerateContentRequest {
        system_instruction: Some(Content { role: None, parts: vec![Part::text("Be brief.")] }),
        ..ask("hi", Some(&cache.name))
    };
    let err = gemini.generate_content("gemini-2.5-flash", &with_system).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 400, message, .. } if message.starts_with(
            "CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config.")),
        "{err}"
    );
}

#[tokio::test]
async fn a_cache_checks_its_files_as_generate_does() {
    let emu = emulator(EmulatorConfig {
        processing: Duration::from_secs(60),
        process_every_file: true,
        ..instant()
    })
    .await;
    let gemini = client(&emu, "k");
    let slow =
        gemini.upload_bytes(None, "text/plain", Bytes::from(vec![b'x'; 8000])).await.unwrap();
    let contents = vec![Content {
        role: Some("user".into()),
        parts: vec![Part::file("text/plain", &slow.uri)],
    }];
    let err = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", contents.clone(), "300s"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Api { code: 400, status, .. } if status == "FAILED_PRECONDITION"),
        "{err}"
    );
    let err = client(&emu, "stranger")
        .create_cached_content(&cache_of("gemini-2.5-flash", contents, "300s"))
        .await
        .unwrap_err();
    assert_eq!(err.inaccessible_file_id(), Some(slow.id()));
}

#[tokio::test]
async fn a_cache_is_made_and_used_through_the_gateway() {
    let emu = emulator(EmulatorConfig {
        gateway: Some(GatewayConfig { key: "sub".into(), prefix: "/gemini".into() }),
        ..instant()
    })
    .await;
    let mut config = ClientConfig::gateway(
        format!("{}/gemini", emu.base_url()).parse().unwrap(),
        ApiKey::new("sub").unwrap(),
    );
    config.retry = quick_retries();
    let gemini = Client::new(config).unwrap();
    let cache = gemini
        .create_cached_content(&cache_of("gemini-2.5-flash", vec![text_of(4096)], "300s"))
        .await
        .unwrap();
    let answer =
        gemini.generate_content("gemini-2.5-flash", &ask("hi", Some(&cache.name))).await.unwrap();
    assert_eq!(answer.usage_metadata.unwrap().cached_content_token_count, 1024);
    gemini.delete_cached_content(&cache.name).await.unwrap();
    let log = emu.emulator.request_log();
    assert!(log.iter().all(|r| r.path.starts_with("/gemini/v1beta/")), "{log:?}");
    assert!(log.iter().all(|r| r.had_subscription_key && !r.had_api_key));
}
