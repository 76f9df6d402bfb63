//! Budgets on the site's key, through the server over HTTP on an emulator whose request log
//! the tests replay: the ledger is what Gemini reported (answers, a summary, a context cache,
//! a stopped answer), each scope refuses with its sentence, an answer cannot spend past what
//! is left, and concurrent chats cannot overspend. (The renewal at midnight UTC is shown on an
//! injected clock in `parley_chat::budget`'s tests; two replicas in `tests/replicas`.)

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use app::model::{CacheState, ChatEvent, SiteInfo};
use common::*;
use futures::StreamExt;
use parley_chat::budget::{Prices, Tokens};
use parley_store::{usage::day_of, Scope, Store, Usage};
use serde_json::{json, Value};

const DAY: Duration = Duration::from_secs(86_400);

/// A text of about `tokens` tokens for the emulator (four characters each).
fn text_of_tokens(tokens: usize) -> String {
    "abcd".repeat(tokens)
}

fn turns(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "model" };
            json!({"role": role, "parts": [{"text": format!("turn {i}: {}", "words and more words ".repeat(12))}]})
        })
        .collect()
}

/// What the site's ledger says of `scope` today.
async fn ledger(site: &Site, scope: &Scope) -> Usage {
    let store = Store::open(&site.data_dir).unwrap();
    let now = parley_files::time::now_ms();
    store.spent(scope, day_of(now), now).await.unwrap().settled
}

/// The usage Gemini reports for `body` sent to `path` again (the emulator answers the same
/// request the same way), as `generateContent`.
async fn replayed(emulator: &gemini_emulator::RunningEmulator, path: &str, body: &Value) -> Value {
    let path = path.replace(":streamGenerateContent", ":generateContent");
    let res = reqwest::Client::new()
        .post(format!("{}{path}", emulator.base_url().trim_end_matches('/')))
        .header("x-goog-api-key", "k")
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json::<Value>().await.unwrap()["usageMetadata"].clone()
}

fn tokens_of(usage: &Value) -> Tokens {
    let n = |k: &str| usage[k].as_u64().unwrap_or(0);
    Tokens {
        prompt: n("promptTokenCount"),
        cached: n("cachedContentTokenCount"),
        output: n("candidatesTokenCount"),
        thinking: n("thoughtsTokenCount"),
        ..Tokens::default()
    }
}

#[tokio::test]
async fn the_ledger_is_what_gemini_reported() {
    let emulator = gemini_emulator::testing::spawn_local(gemini_emulator::EmulatorConfig {
        chunk_delay: Duration::from_millis(150),
        ..gemini_emulator::testing::instant()
    })
    .await;
    let site = parley(
        &emulator,
        &["--context-caching", "opt-in", "--context-budget", "200", "--budget-anonymous", "$1/day"],
    )
    .await;
    // An answer about a cached file; a long conversation, summarized; an answer stopped.
    let file = upload_text(&site.client, &site.url, "big.txt", &text_of_tokens(3_000)).await;
    let mut cached = about(&file.uri);
    cached["options"] = json!({"cache_files": true});
    let events = chat_events(&site.client, &site.url, &cached).await;
    let Some(CacheState::Active { tokens: cache_tokens, .. }) =
        events.iter().find_map(|e| match e {
            ChatEvent::Cache { cache } => Some(cache.clone()),
            _ => None,
        })
    else {
        panic!("{events:?}")
    };
    let left = events.iter().find_map(|e| match e {
        ChatEvent::Budget { left } => Some(left.clone()),
        _ => None,
    });
    assert!(left.is_some_and(|t| t.ends_with("of $1.00 left today")), "{events:?}");
    let summed = chat_events(&site.client, &site.url, &json!({"contents": turns(5)})).await;
    assert!(summed.iter().any(|e| matches!(e, ChatEvent::Summarized { .. })), "{summed:?}");
    let res = site
        .client
        .post(format!("{}/api/chat", site.url))
        .json(&json!({"contents": turns(1)}))
        .send()
        .await
        .unwrap();
    let mut body = res.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"delta\"") {
        seen.push_str(&String::from_utf8_lossy(&body.next().await.unwrap().unwrap()));
    }
    drop(body);

    // Every call Parley made, asked again: what Gemini reports for it.
    let log = emulator.emulator.request_log();
    let generated: Vec<_> = log
        .iter()
        .filter(|r| {
            r.path.contains(":streamGenerateContent") || r.path.contains(":generateContent")
        })
        .collect();
    assert_eq!(generated.len(), 4, "two answers, a summary, the stopped answer");
    let mut reported = Vec::new();
    for call in &generated {
        let model = call.path.split("models/").nth(1).unwrap().split(':').next().unwrap();
        let usage = replayed(&emulator, &call.path, call.json.as_ref().unwrap()).await;
        reported.push((model.to_string(), tokens_of(&usage)));
    }
    let (stopped_model, stopped) = reported.pop().unwrap();
    let mut expected = Usage::default();
    let prices = Prices::load(None).unwrap();
    for (model, tokens) in &reported {
        expected.add(&tokens.ledger(prices.cost(model, tokens)));
    }
    // The stopped answer settles in the background once the server sees the browser go.
    let site_scope = Scope::Site;
    let mut written = Usage::default();
    for _ in 0..100 {
        written = ledger(&site, &site_scope).await;
        if written.calls == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(written.calls, 5, "two answers, a summary, a cache made, one stopped: {written:?}");
    assert_eq!(written.prompt_tokens, expected.prompt_tokens + stopped.prompt as i64);
    assert_eq!(written.cached_tokens, expected.cached_tokens);
    assert_eq!(expected.cached_tokens, cache_tokens as i64, "cached tokens are the cache's");
    assert_eq!(written.thinking_tokens, expected.thinking_tokens + stopped.thinking as i64);
    assert_eq!(written.cache_write_tokens, cache_tokens as i64);
    // The stopped answer: what arrived of it, never more than Gemini reported.
    let partial = written.output_tokens - expected.output_tokens;
    assert!((0..stopped.output as i64).contains(&partial), "{partial} of {}", stopped.output);
    // Dollars: each call at its model's prices, cached tokens once at the cached rate, the
    // cache made at the input rate, and its storage for its ten minutes.
    let stop_cost =
        prices.cost(&stopped_model, &Tokens { output: u64::try_from(partial).unwrap(), ..stopped });
    let write = Tokens { cache_write: cache_tokens, ..Tokens::default() };
    let calls_cost = expected.nano_usd + stop_cost + prices.cost("gemini-2.5-flash", &write);
    let ttl = Tokens { cache_token_seconds: cache_tokens * 600, ..Tokens::default() };
    let storage = prices.cost("gemini-2.5-flash", &ttl);
    let slack = prices.cost(
        "gemini-2.5-flash",
        &Tokens { cache_token_seconds: cache_tokens * 5, ..Tokens::default() },
    );
    assert!(
        (written.nano_usd - calls_cost - storage).abs() <= slack,
        "{} vs {calls_cost} + {storage}",
        written.nano_usd
    );
    // The session's and the address's ledgers are the same calls.
    let store = Store::open(&site.data_dir).unwrap();
    let by_scope = store.usage_report(0, "", parley_store::usage::Grouping::Scope).await.unwrap();
    assert_eq!(by_scope.len(), 3, "site, this session, this address: {by_scope:?}");
    assert!(by_scope.iter().all(|(_, u)| *u == written));

    // `parley usage` reads the same ledger.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["--data-dir", site.data_dir.to_str().unwrap(), "usage", "--by", "model", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total"]["calls"], 5);
    assert_eq!(report["total"]["prompt_tokens"], written.prompt_tokens);
    assert_eq!(report["rows"][0]["model"], "gemini-2.5-flash");
}

/// Chats `body` from `client` until one is refused: the answers' finish reasons, and the
/// refusal's status and body.
async fn until_refused(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> (Vec<Option<String>>, u16, String) {
    let mut finishes = Vec::new();
    for _ in 0..40 {
        let res = client.post(format!("{url}/api/chat")).json(body).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        if status != 200 {
            return (finishes, status, text);
        }
        for line in text.lines() {
            if let Ok(ChatEvent::Done { finish_reason }) = serde_json::from_str(line) {
                finishes.push(finish_reason);
            }
        }
    }
    panic!("never refused");
}

async fn info(client: &reqwest::Client, url: &str) -> SiteInfo {
    client.post(format!("{url}/api/site_info")).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn an_anonymous_budget_caps_the_answer_then_refuses_with_a_sentence() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--budget-anonymous", "1000 tokens/day"]).await;
    let fresh = info(&site.client, &site.url).await;
    assert_eq!(fresh.budget.unwrap(), "1000 of 1000 tokens left today");
    let body = json!({"contents": turns(1)});
    // A long answer: cut where the budget ends.
    emulator.emulator.queue_answers(["word ".repeat(2_000)]);
    let (finishes, status, text) = until_refused(&site.client, &site.url, &body).await;
    assert_eq!(status, 429);
    let said = text
        .contains("You have used 1000 tokens of your budget of 1000 tokens today. It renews in");
    assert!(said, "{text}");
    assert!(!text.contains("Sign in"), "no provider: no offer");
    let cut = Some("MAX_TOKENS".to_string());
    assert_eq!(finishes, vec![cut], "the one answer was cut at what was left");
    // Spent to the budget, not past it.
    let store = Store::open(&site.data_dir).unwrap();
    let sessions =
        store.usage_report(0, "session:", parley_store::usage::Grouping::Scope).await.unwrap();
    assert_eq!(sessions.len(), 1);
    let spent = sessions[0].1.tokens();
    assert_eq!(spent, 1000, "to the budget, not past it");
    let after = info(&site.client, &site.url).await.budget.unwrap();
    assert_eq!(after, "0 of 1000 tokens left today");
    // Another visitor from the same address has their own; the address allows four.
    let other = browser();
    let res = other.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // A spent budget holds back calls on the key only: uploads go on.
    upload_text(&site.client, &site.url, "n.txt", "notes").await;
}

#[tokio::test]
async fn the_address_and_the_site_budgets_refuse_everyone_behind_them() {
    let emulator = emulator(DAY).await;
    let body = json!({"contents": turns(1)});
    // Four sessions' worth from one address, whichever sessions spend it.
    let site = parley(&emulator, &["--budget-anonymous", "400 tokens/day"]).await;
    let mut refusal = None;
    for _ in 0..16 {
        let (_, status, text) = until_refused(&browser(), &site.url, &body).await;
        assert_eq!(status, 429, "{text}");
        if text.contains("network") {
            refusal = Some(text);
            break;
        }
    }
    assert!(refusal.is_some_and(|t| t.contains("budget of 1600 tokens today")));
    let store = Store::open(&site.data_dir).unwrap();
    let addresses =
        store.usage_report(0, "address:", parley_store::usage::Grouping::Scope).await.unwrap();
    // Refused once what is left cannot pay a prompt and the least answer (256 tokens).
    assert!((1_250..=1_600).contains(&addresses[0].1.tokens()), "{addresses:?}");

    // The site's: a hard stop for a visitor who spent nothing.
    let site = parley(&emulator, &["--budget-site", "500 tokens/day"]).await;
    let (_, status, text) = until_refused(&site.client, &site.url, &body).await;
    assert_eq!(status, 429);
    assert!(text.contains("budget of 500 tokens today"), "{text}");
    let res = browser().post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(info(&browser(), &site.url).await.budget.is_none(), "no budget of one's own to show");
}

#[tokio::test]
async fn chats_at_once_cannot_overspend() {
    let emulator = emulator(DAY).await;
    let site = parley(&emulator, &["--budget-anonymous", "1000 tokens/day"]).await;
    let body = json!({"contents": turns(1)});
    // The session exists before the chats go at once.
    info(&site.client, &site.url).await;
    let chats = (0..8).map(|_| async {
        let res =
            site.client.post(format!("{}/api/chat", site.url)).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        let _ = res.text().await;
        status
    });
    let statuses = futures::future::join_all(chats).await;
    assert!(statuses.contains(&200) && statuses.contains(&429), "{statuses:?}");
    let store = Store::open(&site.data_dir).unwrap();
    let sessions =
        store.usage_report(0, "session:", parley_store::usage::Grouping::Scope).await.unwrap();
    assert!(sessions[0].1.tokens() <= 1000, "{:?}", sessions[0]);
}

#[tokio::test]
async fn a_model_without_a_price_stops_the_start_up() {
    use clap::Parser;
    let data = tempfile::tempdir().unwrap();
    let start = |extra: &[&str]| {
        let mut argv =
            vec!["parley", "--gemini-api-key=", "--data-dir", data.path().to_str().unwrap()];
        argv.extend_from_slice(extra);
        parley::config::Config::try_parse_from(argv).unwrap()
    };
    let key = parley::session::SessionKey::load(None, data.path()).unwrap();
    let unpriced = start(&["--models", "gemini-2.5-flash,gemini-9-ultra"]);
    let upstream = parley::upstream::Upstream::connect(&unpriced).await.unwrap();
    let Err(refused) = parley::server::state(&unpriced, &upstream, &key).await else {
        panic!("a model without a price was offered")
    };
    assert!(refused.to_string().contains("gemini-9-ultra has no price"), "{refused}");
    // Priced by a file, it starts; a file that is no price table stops it with its line.
    let prices = data.path().join("prices.toml");
    std::fs::write(&prices, "[models.\"gemini-9-ultra\"]\ninput = 5\noutput = 20\n").unwrap();
    let priced = start(&[
        "--models",
        "gemini-2.5-flash,gemini-9-ultra",
        "--prices",
        prices.to_str().unwrap(),
    ]);
    assert!(parley::server::state(&priced, &upstream, &key).await.is_ok());
    std::fs::write(&prices, "[models.\"gemini-9-ultra\"]\ninput = \"cheap\"\n").unwrap();
    let Err(broken) = parley::server::state(&priced, &upstream, &key).await else {
        panic!("a broken price file was taken")
    };
    assert!(broken.to_string().starts_with("PARLEY_PRICES: the price file"), "{broken}");
}
