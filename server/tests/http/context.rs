//! Long conversations: the model a conversation picks (`PARLEY_MODELS`), the summary of its
//! oldest turns past `PARLEY_CONTEXT_BUDGET`, and context caching of its files
//! (`PARLEY_CONTEXT_CACHING=opt-in`) — each through the server over HTTP on an emulator whose
//! request log and caches the tests read.

use app::model::{CacheState, ChatEvent, Summary};
use serde_json::{json, Value};

use super::common::*;

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// The emulator's requests whose path contains `part`.
fn calls(emulator: &gemini_emulator::RunningEmulator, part: &str) -> Vec<Value> {
    emulator
        .emulator
        .request_log()
        .iter()
        .filter(|r| r.path.contains(part))
        .map(|r| json!({"method": r.method, "path": r.path, "json": r.json}))
        .collect()
}

/// The caches the emulator holds for Parley's key `k`.
async fn caches_upstream(emulator: &gemini_emulator::RunningEmulator) -> usize {
    let key = gemini::ApiKey::new("k").unwrap();
    let client =
        gemini::Client::new(gemini::ClientConfig::new(emulator.base_url().parse().unwrap(), key))
            .unwrap();
    client.list_cached_contents(None).await.unwrap().cached_contents.len()
}

fn turns(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "model" };
            json!({"role": role, "parts": [{"text": format!("turn {i}: {}", "words and more words ".repeat(12))}]})
        })
        .collect()
}

fn summarized(events: &[ChatEvent]) -> Option<Summary> {
    events.iter().find_map(|e| match e {
        ChatEvent::Summarized { summary } => Some(summary.clone()),
        _ => None,
    })
}

#[tokio::test]
async fn a_conversation_picks_a_listed_model_and_no_other() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--models", "gemini-2.5-pro,gemini-2.5-flash-lite"]).await;
    let body = json!({"contents": turns(1), "options": {"model": "gemini-2.5-pro"}});
    let events = chat_events(&site.client, &site.url, &body).await;
    assert!(answer(&events).contains("model gemini-2.5-pro"), "{events:?}");
    let streamed = calls(&emulator, ":streamGenerateContent");
    assert!(streamed.last().unwrap()["path"].as_str().unwrap().contains("/gemini-2.5-pro:"));
    // The answer's token counts come before `done`.
    let usage = events.iter().position(|e| matches!(e, ChatEvent::Usage { .. })).unwrap();
    assert!(matches!(events[usage + 1], ChatEvent::Done { .. }), "{events:?}");
    let ChatEvent::Usage { usage } = &events[usage] else { unreachable!() };
    assert!(usage.prompt_token_count > 0 && usage.candidates_token_count > 0, "{usage:?}");

    // Without a model: the default. Another model: refused, naming the ones offered.
    let plain = chat_events(&site.client, &site.url, &json!({"contents": turns(1)})).await;
    assert!(answer(&plain).contains("model gemini-2.5-flash."), "{plain:?}");
    let res = site
        .client
        .post(format!("{}/api/chat", site.url))
        .json(&json!({"contents": turns(1), "options": {"model": "gemini-1.0-ultra"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let text = res.text().await.unwrap();
    assert!(text.contains("gemini-1.0-ultra") && text.contains("gemini-2.5-flash-lite"), "{text}");

    // The page lists the three, named as Gemini names them, with their limits.
    let mut info = Value::Null;
    for _ in 0..50 {
        let res = site.client.post(format!("{}/api/site_info", site.url)).send().await.unwrap();
        info = res.json().await.unwrap();
        if info["models"][1]["input_token_limit"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ids: Vec<&str> =
        info["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite"]);
    assert_eq!(info["models"][1]["display_name"], "Gemini 2.5 Pro");
    assert!(info["models"][1]["input_token_limit"].as_u64().unwrap() >= 1_000_000, "{info}");
}

#[tokio::test]
async fn past_the_budget_the_oldest_turns_go_as_one_summary_reused_until_it_is_stale() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--context-budget", "200"]).await;
    // Five turns cannot be shortened (two exchanges and the question stay): no summary.
    let short = chat_events(&site.client, &site.url, &json!({"contents": turns(5)})).await;
    assert!(summarized(&short).is_none());
    assert!(calls(&emulator, ":generateContent").is_empty());

    let seven = turns(7);
    let events = chat_events(&site.client, &site.url, &json!({"contents": seven})).await;
    let summary = summarized(&events).expect("a summary past the budget");
    assert_eq!((summary.turns, summary.model.as_str()), (2, "gemini-2.5-flash"));
    assert!(summary.tokens_before > 200 && summary.tokens_after < summary.tokens_before);
    assert!(summary.text.contains("Summarize the conversation so far"), "{}", summary.text);
    assert_eq!(calls(&emulator, ":generateContent").len(), 1, "one call made it");
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert_eq!(sent["contents"].as_array().unwrap().len(), 5);
    let first = sent["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(first.starts_with("[Summary of the 2 earlier messages"), "{first}");
    assert!(!sent.to_string().contains("turn 0:") && sent.to_string().contains("turn 6:"));

    // Sent back with the same turns, it is reused: no new summary, no new call.
    let again = json!({"contents": turns(7), "options": {"summary": summary}});
    let reused = chat_events(&site.client, &site.url, &again).await;
    assert!(summarized(&reused).is_none());
    assert_eq!(calls(&emulator, ":generateContent").len(), 1);
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert!(sent["contents"][0]["parts"][0]["text"].as_str().unwrap().starts_with("[Summary"));

    // Two turns later the budget is crossed again: a renewed summary of the old one and the
    // next turns, covering four.
    let nine = json!({"contents": turns(9), "options": {"summary": summary}});
    let renewed = summarized(&chat_events(&site.client, &site.url, &nine).await).unwrap();
    assert_eq!(renewed.turns, 4);
    let made_from = calls(&emulator, ":generateContent").last().unwrap()["json"].to_string();
    assert!(
        made_from.contains("[Summary of the 2 earlier messages") && !made_from.contains("turn 1:")
    );

    // An edited old turn makes the summary stale: it is not used, a new one is made.
    let mut edited = turns(7);
    edited[1] = json!({"role": "model", "parts": [{"text": "an edited answer"}]});
    let stale = json!({"contents": edited, "options": {"summary": summary}});
    let fresh = summarized(&chat_events(&site.client, &site.url, &stale).await).unwrap();
    assert_ne!(fresh.turns_sha256, summary.turns_sha256);

    // Off: never summarized.
    let off = parley(&emulator, &["--context-budget", "off"]).await;
    let events = chat_events(&off.client, &off.url, &json!({"contents": turns(9)})).await;
    assert!(summarized(&events).is_none());
}

/// A text file of about `tokens` tokens for the emulator (it counts text files as bytes / 4).
fn text_of_tokens(tokens: usize, seed: usize) -> String {
    format!("{seed:08}") + &"abcd".repeat(tokens - 2)
}

fn cache_state(events: &[ChatEvent]) -> Option<CacheState> {
    events.iter().find_map(|e| match e {
        ChatEvent::Cache { cache } => Some(cache.clone()),
        _ => None,
    })
}

fn with_cache(uri: &str) -> Value {
    let mut body = about(uri);
    body["options"] = json!({"cache_files": true});
    body
}

#[tokio::test]
async fn cached_files_are_the_sessions_own_reused_and_deleted_with_their_file() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--context-caching", "opt-in"]).await;
    let file = upload_text(&site.client, &site.url, "big.txt", &text_of_tokens(3_000, 1)).await;

    let events = chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
    let Some(CacheState::Active { tokens, expire_time }) = cache_state(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(tokens, 3_000);
    assert!(expire_time.is_some());
    let usage = events.iter().find_map(|e| match e {
        ChatEvent::Usage { usage } => Some(*usage),
        _ => None,
    });
    assert_eq!(usage.unwrap().cached_content_token_count, 3_000);
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert!(sent["cachedContent"].as_str().unwrap().starts_with("cachedContents/"));
    assert!(!sent.to_string().contains("fileData"), "{sent}");
    assert!(answer(&events).contains("big.txt") || answer(&events).contains("1 file"));

    // The same files again: the same cache, no new one.
    chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
    let creates = |e: &gemini_emulator::RunningEmulator| {
        calls(e, "/cachedContents").iter().filter(|c| c["method"] == "POST").count()
    };
    assert_eq!(creates(&emulator), 1);
    assert_eq!(caches_upstream(&emulator).await, 1);

    // Another browser naming this session's File gets nothing of it: not the File, not the cache.
    let other = browser();
    let theirs = chat_events(&other, &site.url, &with_cache(&file.uri)).await;
    assert_eq!(cache_state(&theirs), Some(CacheState::NoFiles));
    assert_eq!(creates(&emulator), 1);

    // Switch off: the files are sent, no cache named.
    let plain = chat_events(&site.client, &site.url, &about(&file.uri)).await;
    assert!(cache_state(&plain).is_none());
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert!(sent.get("cachedContent").is_none() && sent.to_string().contains("fileData"));

    // Deleting the File deletes its cache upstream.
    let res = site
        .client
        .post(format!("{}/api/delete_upload", site.url))
        .json(&json!({"uri": file.uri}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(caches_upstream(&emulator).await, 0);
}

#[tokio::test]
async fn small_files_are_not_cached_and_a_deleted_conversation_takes_its_cache() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--context-caching", "opt-in"]).await;
    let small = upload_text(&site.client, &site.url, "small.txt", &text_of_tokens(100, 2)).await;
    let events = chat_events(&site.client, &site.url, &with_cache(&small.uri)).await;
    let Some(CacheState::TooSmall { tokens: 100, minimum }) = cache_state(&events) else {
        panic!("{events:?}")
    };
    assert!(minimum >= 1_024, "{minimum}");
    // Remembered: the next request does not ask Gemini again.
    chat_events(&site.client, &site.url, &with_cache(&small.uri)).await;
    let tried = calls(&emulator, "/cachedContents").len();
    assert_eq!(tried, 1, "one refused create");

    let big = upload_text(&site.client, &site.url, "big.txt", &text_of_tokens(2_000, 3)).await;
    chat_events(&site.client, &site.url, &with_cache(&big.uri)).await;
    assert_eq!(caches_upstream(&emulator).await, 1);
    let res = site
        .client
        .post(format!("{}/api/forget_caches", site.url))
        .json(&json!({"uris": [big.uri, small.uri, "https://elsewhere.example/files/x"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(caches_upstream(&emulator).await, 0);
}

/// A visitor making cache after cache (a new set of files each time) holds at most four at
/// once on the site's key: each new one deletes the one expiring first.
#[tokio::test]
async fn one_session_holds_a_bounded_number_of_caches() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--context-caching", "opt-in"]).await;
    for seed in 0..7 {
        let name = format!("f{seed}.txt");
        let file = upload_text(&site.client, &site.url, &name, &text_of_tokens(1_500, seed)).await;
        let events = chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
        assert!(matches!(cache_state(&events), Some(CacheState::Active { .. })), "{events:?}");
    }
    assert_eq!(caches_upstream(&emulator).await, app::server::caching::MAX_CACHES_PER_SESSION);
}
