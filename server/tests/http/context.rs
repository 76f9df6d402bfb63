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
    // Three turns cannot be shortened (the last exchange and the question stay): no summary.
    let short = chat_events(&site.client, &site.url, &json!({"contents": turns(3)})).await;
    assert!(summarized(&short).is_none());
    assert!(calls(&emulator, ":generateContent").is_empty());

    let five = turns(5);
    let events = chat_events(&site.client, &site.url, &json!({"contents": five})).await;
    let summary = summarized(&events).expect("a summary past the budget");
    assert_eq!((summary.turns, summary.model.as_str()), (2, "gemini-2.5-flash"));
    assert!(summary.tokens_before > 200 && summary.tokens_after < summary.tokens_before);
    assert!(summary.text.contains("Summarize the conversation so far"), "{}", summary.text);
    assert_eq!(calls(&emulator, ":generateContent").len(), 1, "one call made it");
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert_eq!(sent["contents"].as_array().unwrap().len(), 3);
    let first = sent["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(first.starts_with("[Summary of the 2 earlier messages"), "{first}");
    assert!(!sent.to_string().contains("turn 0:") && sent.to_string().contains("turn 4:"));

    // Sent back with the same turns, it is reused: no new summary, no new call.
    let again = json!({"contents": turns(5), "options": {"summary": summary}});
    let reused = chat_events(&site.client, &site.url, &again).await;
    assert!(summarized(&reused).is_none());
    assert_eq!(calls(&emulator, ":generateContent").len(), 1);
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert!(sent["contents"][0]["parts"][0]["text"].as_str().unwrap().starts_with("[Summary"));

    // Two turns later the budget is crossed again: a renewed summary of the old one and the
    // next turns, covering four.
    let seven = json!({"contents": turns(7), "options": {"summary": summary}});
    let renewed = summarized(&chat_events(&site.client, &site.url, &seven).await).unwrap();
    assert_eq!(renewed.turns, 4);
    let made_from = calls(&emulator, ":generateContent").last().unwrap()["json"].to_string();
    assert!(
        made_from.contains("[Summary of the 2 earlier messages") && !made_from.contains("turn 1:")
    );

    // An edited old turn makes the summary stale: it is not used, a new one is made.
    let mut edited = turns(5);
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
        ChatEvent::Usage { usage } => Some(usage.clone()),
        _ => None,
    });
    assert_eq!(usage.unwrap().cached_content_token_count, 3_000);
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    assert!(sent["cachedContent"].as_str().unwrap().starts_with("cachedContents/"));
    assert!(!sent.to_string().contains("fileData"), "{sent}");
    assert!(answer(&events).contains("I received 1 file"), "{events:?}");

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

/// Gemini 3's `thoughtSignature`s reach the page as `signature` events (never as text), and the
/// model turn that carries them goes back to Gemini with them, as Google's docs ask.
#[tokio::test]
async fn thought_signatures_go_back_with_their_turn_and_are_never_shown() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--models", "gemini-3-pro-preview"]).await;
    let first = json!({"contents": turns(1), "options": {"model": "gemini-3-pro-preview"}});
    let events = chat_events(&site.client, &site.url, &first).await;
    let signatures: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Signature { thought_signature } => Some(thought_signature.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(signatures.len(), 1, "{events:?}");
    assert!(!answer(&events).contains(&signatures[0]));
    assert!(events.iter().all(|e| !matches!(e, ChatEvent::Delta { text } if text.is_empty())));
    let usage = events.iter().find_map(|e| match e {
        ChatEvent::Usage { usage } => Some(usage.clone()),
        _ => None,
    });
    assert!(usage.unwrap().thoughts_token_count > 0);

    let next = json!({"contents": [
        turns(1)[0],
        {"role": "model", "parts": [{"text": answer(&events)}, {"text": "", "thought_signature": signatures[0]}]},
        {"role": "user", "parts": [{"text": "and then?"}]},
    ], "options": {"model": "gemini-3-pro-preview"}});
    chat_events(&site.client, &site.url, &next).await;
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].clone();
    let model_turn = &sent["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(model_turn["parts"][1]["thoughtSignature"], signatures[0].as_str());
    assert_eq!(model_turn["parts"][1]["text"], "");
}

/// A cache Gemini has let expire (the emulator's clock moved on) is forgotten: the request goes
/// once without it, and the next one makes a new cache. One used again past half its TTL has it
/// extended (`PATCH …?updateMask=ttl`).
#[tokio::test]
async fn an_expired_cache_is_made_again_and_a_used_one_is_extended() {
    let emulator = emulator(DAY).await;
    let site =
        parley(&emulator, &["--context-caching", "opt-in", "--context-cache-ttl", "2s"]).await;
    let file = upload_text(&site.client, &site.url, "big.txt", &text_of_tokens(2_000, 9)).await;
    chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let events = chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
    assert!(matches!(cache_state(&events), Some(CacheState::Active { .. })), "{events:?}");
    let patches =
        calls(&emulator, "/cachedContents/").into_iter().filter(|c| c["method"] == "PATCH");
    assert_eq!(patches.count(), 1, "extended once, past half its TTL");

    emulator.emulator.advance_clock(std::time::Duration::from_secs(3_600));
    let events = chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
    assert!(matches!(cache_state(&events), Some(CacheState::Failed { .. })), "{events:?}");
    assert!(answer(&events).contains("1 file"), "sent with its file instead: {events:?}");
    let events = chat_events(&site.client, &site.url, &with_cache(&file.uri)).await;
    assert!(matches!(cache_state(&events), Some(CacheState::Active { .. })), "{events:?}");
    let creates = calls(&emulator, "/cachedContents").into_iter().filter(|c| c["method"] == "POST");
    assert_eq!(creates.count(), 2, "made again after it expired");
}

/// The closing figures of issue 15, and what they must show: a 40-turn conversation about a
/// 100-page PDF (25,800 tokens on the emulator), its prompt tokens per request four ways —
/// as it is, with summaries past a 27,000-token budget, with the PDF cached, with both.
/// `cargo test -p parley --test http forty_turns -- --nocapture` prints the table.
#[tokio::test]
async fn forty_turns_about_a_100_page_pdf() {
    let pdf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../end2end/fixtures/report-100-pages.pdf"
    ))
    .unwrap();
    let emulator = emulator(DAY).await;
    let ways: [(&str, &[&str], bool); 4] = [
        ("as it is", &["--context-budget", "off"], false),
        ("summaries (budget 27,000)", &["--context-budget", "27000"], false),
        ("cached PDF", &["--context-budget", "off", "--context-caching", "opt-in"], true),
        ("both", &["--context-budget", "27000", "--context-caching", "opt-in"], true),
    ];
    let mut table = String::from(
        "| | request 1 | 10 | 20 | 30 | 40 | all 40: prompt | of it cached | uncached | summaries made |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, args, cache_files) in ways {
        let site = parley(&emulator, &[args, &["--rate-chat", "off"]].concat()).await;
        let form =
            upload_form(&pdf.len().to_string(), "application/pdf", "report.pdf", pdf.clone());
        let file: app::model::UploadedFile = upload(&site, form).await.json().await.unwrap();
        let mut contents = vec![json!({"role": "user", "parts": [
            {"file_data": {"mime_type": "application/pdf", "file_uri": file.uri}},
            {"text": "Question 1 about the report: what does it say about revenue this quarter?"}
        ]})];
        let (mut summary, mut prompts, mut cached) = (None::<Summary>, Vec::new(), Vec::new());
        let mut summaries = 0;
        for turn in 1..=40 {
            let body = json!({"contents": contents, "options": {"summary": summary, "cache_files": cache_files}});
            let events = chat_events(&site.client, &site.url, &body).await;
            if let Some(made) = summarized(&events) {
                summary = Some(made);
                summaries += 1;
            }
            let usage = events
                .iter()
                .find_map(|e| match e {
                    ChatEvent::Usage { usage } => Some(usage.clone()),
                    _ => None,
                })
                .expect("usage on every answer");
            prompts.push(usage.prompt_token_count);
            cached.push(usage.cached_content_token_count);
            contents.push(json!({"role": "model", "parts": [{"text": answer(&events)}]}));
            contents.push(json!({"role": "user", "parts": [{"text": format!(
                "Question {} about the report: and what does it say on page {}?", turn + 1, turn * 2
            )}]}));
        }
        let (all, all_cached): (u64, u64) = (prompts.iter().sum(), cached.iter().sum());
        let at = |i: usize| {
            let c = cached[i - 1];
            if c > 0 {
                format!("{} ({} cached)", prompts[i - 1], c)
            } else {
                prompts[i - 1].to_string()
            }
        };
        table.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {all} | {all_cached} | {} | {summaries} |\n",
            at(1),
            at(10),
            at(20),
            at(30),
            at(40),
            all - all_cached
        ));
        // What each way must show.
        assert!(prompts[0] >= 25_800, "{name}: the PDF counts 258 a page");
        match (args.contains(&"27000"), cache_files) {
            (false, false) => assert!(prompts.windows(2).all(|w| w[1] > w[0]), "{name}: grows"),
            (true, _) => assert!(prompts.iter().skip(1).all(|p| *p < 40_000), "{name}: bounded"),
            (false, true) => assert!(cached.iter().all(|c| *c == 25_800), "{name}: cached"),
        }
    }
    println!("{table}");
}

/// A summary is made once even when the page never got it (its request failed, it retried):
/// the server remembers it. And the Files of the turns a summary covers are neither checked nor
/// sent: a File there that is gone is not reported, nor uploaded again.
#[tokio::test]
async fn a_summary_is_paid_for_once_and_its_turns_files_are_left_alone() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--context-budget", "200"]).await;
    let first = chat_events(&site.client, &site.url, &json!({"contents": turns(5)})).await;
    let summary = summarized(&first).unwrap();
    let again = chat_events(&site.client, &site.url, &json!({"contents": turns(5)})).await;
    assert_eq!(summarized(&again), Some(summary.clone()), "the same summary, remembered");
    assert_eq!(calls(&emulator, ":generateContent").len(), 1, "one summary call in all");
    // Another session pays for its own.
    let other = browser();
    chat_events(&other, &site.url, &json!({"contents": turns(5)})).await;
    assert_eq!(calls(&emulator, ":generateContent").len(), 2);

    let mut with_gone_file = turns(5);
    with_gone_file[0]["parts"].as_array_mut().unwrap().push(json!({"file_data": {
        "mime_type": "application/pdf",
        "file_uri": "https://generativelanguage.googleapis.com/v1beta/files/gone123"
    }}));
    let body = json!({"contents": with_gone_file, "options": {"summary": summary}});
    let events = chat_events(&site.client, &site.url, &body).await;
    assert!(
        !events.iter().any(|e| matches!(e, ChatEvent::Expired { .. })),
        "a summarized turn's File is not checked: {events:?}"
    );
    let sent = calls(&emulator, ":streamGenerateContent").last().unwrap()["json"].to_string();
    assert!(!sent.contains("gone123") && !sent.contains("expired content"), "{sent}");
}

/// Two answers of one session asked at once about the same Files make one cache between them.
#[tokio::test]
async fn requests_at_once_make_one_cache() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--context-caching", "opt-in"]).await;
    let file = upload_text(&site.client, &site.url, "big.txt", &text_of_tokens(2_000, 4)).await;
    let body = with_cache(&file.uri);
    let (a, b) = tokio::join!(
        chat_events(&site.client, &site.url, &body),
        chat_events(&site.client, &site.url, &body)
    );
    for events in [a, b] {
        assert!(matches!(cache_state(&events), Some(CacheState::Active { .. })), "{events:?}");
    }
    let creates = calls(&emulator, "/cachedContents").into_iter().filter(|c| c["method"] == "POST");
    assert_eq!(creates.count(), 1);
    assert_eq!(caches_upstream(&emulator).await, 1);
}

/// A conversation already past the model's whole input limit (1,048,576 tokens on the emulator)
/// cannot be summarized in one call either: fewer turns are summarized, so that the call fits.
#[tokio::test]
async fn past_the_models_limit_fewer_turns_are_summarized() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--rate-chat", "off"]).await;
    let mut contents = turns(7);
    contents[0] = json!({"role": "user", "parts": [{"text": "a".repeat(3_200_000)}]}); // 800,000 tokens
    contents[2] = json!({"role": "user", "parts": [{"text": "b".repeat(1_200_000)}]}); // 300,000 tokens
    let events = chat_events(&site.client, &site.url, &json!({"contents": contents})).await;
    let summary = summarized(&events).expect("summarized");
    assert_eq!(summary.turns, 2, "the four older turns would not fit in one call");
    let made_from = calls(&emulator, ":generateContent").last().unwrap()["json"].to_string();
    assert!(made_from.len() < 3_300_000, "only the first two turns went to the summary call");
    assert!(calls(&emulator, ":countTokens").len() <= 2, "Gemini counted at most twice");
}
