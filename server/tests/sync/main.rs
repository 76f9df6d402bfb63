//! Conversations that follow a signed-in person between devices, through the real server:
//! people signed in by a trusted proxy's header, each "device" its own client. What must hold:
//! a write on one device reaches the other's event stream and pull; concurrent writes to one
//! conversation both persist; an offline edit while another device appended becomes a copy;
//! delete and restore; the storage quota; and another account (or a guest) gets 404 (or 401)
//! for every conversation id — on SQLite, and through two replicas on PostgreSQL; a flood of
//! sync calls is refused (429) while another person is served, and an account holds at most
//! 16 event streams.

#[path = "../common/mod.rs"]
mod common;

use std::time::Duration;

use app::sync::{DeletedConversation, Pulled, Push, PushOutcome, SyncEvent, SyncedConversation};
use common::*;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

const PROXY: [&str; 4] =
    ["--auth-proxy-header", "X-Forwarded-Email", "--auth-proxy-from", "127.0.0.0/8"];

/// One person's device on one site.
#[derive(Clone)]
struct Device {
    url: String,
    email: &'static str,
    client: reqwest::Client,
    /// The address a trusted proxy says it calls from (`--trust-proxy`), if any.
    address: Option<&'static str>,
}

impl Device {
    fn new(url: &str, email: &'static str) -> Device {
        Device { url: url.to_string(), email, client: reqwest::Client::new(), address: None }
    }

    fn from(self, address: &'static str) -> Device {
        Device { address: Some(address), ..self }
    }

    async fn call(&self, function: &str, body: Value) -> reqwest::Response {
        let mut request = self.client.post(format!("{}/api/{function}", self.url)).json(&body);
        if !self.email.is_empty() {
            request = request.header("x-forwarded-email", self.email);
        }
        if let Some(address) = self.address {
            request = request.header("x-forwarded-for", address);
        }
        request.send().await.unwrap()
    }

    async fn push(
        &self,
        conversation: &SyncedConversation,
        base: i64,
    ) -> (StatusCode, PushOutcome) {
        let push = Push { conversation: conversation.clone(), base, device: "Test device".into() };
        let res = self.call("sync_push", json!({ "push": push })).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} {text}")))
    }

    async fn pull(&self, cursor: i64) -> Pulled {
        let res = self.call("sync_pull", json!({ "cursor": cursor })).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// The conversation `id` as a full pull gives it.
    async fn find(&self, id: &str) -> Option<SyncedConversation> {
        self.pull(0).await.conversations.into_iter().find(|c| c.id == id)
    }

    /// The account's event stream: its lines as they come.
    async fn events(&self) -> futures::stream::BoxStream<'static, SyncEvent> {
        let res = self.call("sync_events", json!({})).await;
        assert_eq!(res.status(), 200);
        let mut buffer = Vec::new();
        res.bytes_stream()
            .flat_map(move |chunk| {
                buffer.extend_from_slice(&chunk.unwrap());
                let mut lines = Vec::new();
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    lines.push(serde_json::from_slice(&line).unwrap());
                }
                futures::stream::iter(lines)
            })
            .boxed()
    }
}

fn message(id: &str, revision: Option<i64>, text: &str) -> app::sync::SyncedMessage {
    app::sync::SyncedMessage {
        id: id.into(),
        revision,
        message: json!({"role": "user", "parts": [{"text": text}]}),
    }
}

fn conversation(id: &str, messages: Vec<app::sync::SyncedMessage>) -> SyncedConversation {
    SyncedConversation {
        id: id.into(),
        revision: 0,
        title: "Trip".into(),
        meta: json!({"uploaded_files": {}}),
        created_ms: 1,
        updated_ms: 2,
        deleted_ms: None,
        messages,
    }
}

fn texts(c: &SyncedConversation) -> Vec<String> {
    c.messages.iter().map(|m| m.message["parts"][0]["text"].as_str().unwrap().into()).collect()
}

fn stored(outcome: PushOutcome) -> SyncedConversation {
    match outcome {
        PushOutcome::Applied { conversation }
        | PushOutcome::Merged { conversation }
        | PushOutcome::Forked { conversation, .. } => conversation,
    }
}

/// The next `changed` event past `cursor` within a second.
async fn changed_past(events: &mut futures::stream::BoxStream<'static, SyncEvent>, cursor: i64) {
    let wait = async {
        while let Some(event) = events.next().await {
            if matches!(event, SyncEvent::Changed { cursor: c } if c > cursor) {
                return;
            }
        }
        panic!("the event stream ended");
    };
    tokio::time::timeout(Duration::from_secs(1), wait).await.expect("told within a second");
}

/// What every setting must do, with `a` and `b` two devices of one account and `other`
/// another account's, possibly on different replicas.
async fn two_devices(a: Device, b: Device, other: Device) {
    // A makes a conversation; B gets it, then hears of A's next message at once.
    let first = conversation("c1", vec![message("u1", None, "hello"), message("a1", None, "hi")]);
    let (status, outcome) = a.push(&first, 0).await;
    assert_eq!(status, 200);
    let on_a = stored(outcome);
    assert_eq!(on_a.revision, 1);
    let mut events = b.events().await;
    let Some(SyncEvent::Changed { cursor }) = events.next().await else { panic!("no cursor") };
    let on_b = b.find("c1").await.unwrap();
    assert_eq!(texts(&on_b), ["hello", "hi"]);
    let mut next = on_a.clone();
    next.messages.push(message("u2", None, "from A"));
    let (status, outcome) = a.push(&next, on_a.revision).await;
    assert_eq!(status, 200);
    let on_a = stored(outcome);
    changed_past(&mut events, cursor).await;
    assert_eq!(texts(&b.find("c1").await.unwrap()), ["hello", "hi", "from A"]);

    // Both send at once on the same revision: both messages persist, in order.
    let (mut from_a, mut from_b) = (on_a.clone(), on_a.clone());
    from_a.messages.push(message("u3a", None, "A again"));
    from_b.messages.push(message("u3b", None, "B at once"));
    let ((status_a, _), (status_b, _)) =
        tokio::join!(a.push(&from_a, on_a.revision), b.push(&from_b, on_a.revision));
    let mut statuses = [status_a.as_u16(), status_b.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "one on the latest revision, the other merged");
    let both = a.find("c1").await.unwrap();
    let texts_now = texts(&both);
    assert_eq!(texts_now.len(), 5);
    assert!(texts_now.contains(&"A again".into()) && texts_now.contains(&"B at once".into()));

    // B, offline on an older revision, edits the first message while A appended: a copy.
    let mut edited = on_a.clone();
    edited.messages[0] = message("u1", None, "hello, edited offline");
    edited.messages.truncate(1);
    let (status, outcome) = b.push(&edited, on_a.revision).await;
    assert_eq!(status, 409);
    let PushOutcome::Forked { conversation, fork } = outcome else { panic!("not forked") };
    assert_eq!(texts(&conversation), texts_now, "the stored conversation untouched");
    assert!(fork.title.starts_with("Trip (conflict, Test device "), "{}", fork.title);
    assert_eq!(texts(&fork), ["hello, edited offline"]);
    let all = a.pull(0).await;
    assert_eq!(all.conversations.len(), 2, "both versions present");

    // Another account and a guest: 404 and 401 for every conversation id.
    let guest = Device { email: "", ..a.clone() };
    assert_eq!(guest.call("sync_pull", json!({"cursor": 0})).await.status(), 401);
    assert!(other.pull(0).await.conversations.is_empty());
    for (function, body) in [
        ("sync_get", json!({"id": "c1"})),
        ("sync_delete", json!({"id": "c1"})),
        ("sync_delete", json!({"id": "c1", "restore": true})),
    ] {
        assert_eq!(other.call(function, body).await.status(), 404, "{function}");
    }
    assert_eq!(a.call("sync_get", json!({"id": "c1"})).await.status(), 200);

    // Deleted on A: gone from B's pull, listed, restored whole.
    let cursor = b.pull(0).await.cursor;
    assert_eq!(a.call("sync_delete", json!({"id": "c1"})).await.status(), 200);
    let after = b.pull(cursor).await;
    assert!(
        after.conversations[0].deleted_ms.is_some() && after.conversations[0].messages.is_empty()
    );
    let deleted: Vec<DeletedConversation> =
        b.call("sync_deleted", json!({})).await.json().await.unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].purge_ms - deleted[0].deleted_ms, 30 * 24 * 3_600_000);
    assert_eq!(b.call("sync_delete", json!({"id": "c1", "restore": true})).await.status(), 200);
    assert_eq!(texts(&a.find("c1").await.unwrap()).len(), 5);
}

#[tokio::test]
async fn two_devices_on_one_server() {
    let site = site(&PROXY).await;
    let (a, b) =
        (Device::new(&site.url, "ann@example.org"), Device::new(&site.url, "ann@example.org"));
    two_devices(a, b, Device::new(&site.url, "bob@example.org")).await;
}

#[tokio::test]
async fn two_devices_through_two_replicas() {
    let Some((_admin, _db, database_url)) = fresh_postgres("sync").await else { return };
    let secret = "0123456789abcdef0123456789abcdef";
    let args = |extra: &'static [&'static str]| {
        let mut args: Vec<&str> = PROXY.to_vec();
        args.extend(["--database-url", database_url.as_str(), "--session-secret", secret]);
        args.extend_from_slice(extra);
        args
    };
    let one = site(&args(&[])).await;
    let two = site(&args(&[])).await;
    let (a, b) =
        (Device::new(&one.url, "ann@example.org"), Device::new(&two.url, "ann@example.org"));
    two_devices(a, b, Device::new(&two.url, "bob@example.org")).await;
}

#[tokio::test]
async fn past_its_storage_an_account_is_refused_with_a_sentence() {
    let site = site(&[&PROXY[..], &["--storage-per-account", "2KiB"]].concat()).await;
    let ann = Device::new(&site.url, "ann@example.org");
    let small = conversation("c1", vec![message("u1", None, "short")]);
    assert_eq!(ann.push(&small, 0).await.0, 200);
    let big = conversation("c2", vec![message("u1", None, &"x".repeat(4096))]);
    let push = Push { conversation: big, base: 0, device: String::new() };
    let res = ann.call("sync_push", json!({ "push": push })).await;
    assert_eq!(res.status(), 507);
    let error: app::error::AppError = res.json().await.unwrap();
    assert!(error.to_string().contains("storage on this site is full (2.0 KB)"), "{error}");
    // Deleting frees nothing until it is purged, but a smaller write still goes through.
    let mut smaller = conversation("c1", Vec::new());
    smaller.title = "Trip".into();
    assert_eq!(ann.push(&smaller, 1).await.0, 200);
}

#[tokio::test]
async fn a_write_that_is_not_a_conversation_is_refused() {
    let site = site(&PROXY).await;
    let ann = Device::new(&site.url, "ann@example.org");
    let bad_id = conversation("../etc", vec![message("u1", None, "x")]);
    let repeated = conversation("c1", vec![message("u1", None, "x"), message("u1", None, "y")]);
    let mut not_object = conversation("c1", vec![message("u1", None, "x")]);
    not_object.messages[0].message = json!("text");
    for conversation in [bad_id, repeated, not_object] {
        let push = Push { conversation, base: 0, device: String::new() };
        let res = ann.call("sync_push", json!({ "push": push })).await;
        assert_eq!(res.status(), 400);
    }
    assert!(ann.pull(0).await.conversations.is_empty(), "nothing half-written");
}

#[tokio::test]
async fn a_flood_of_sync_calls_is_refused_and_leaves_everyone_else_alone() {
    // 10 calls a minute per session (a person signed in by the proxy is one, cookie or not),
    // 40 per address.
    let site = site(&[&PROXY[..], &["--trust-proxy", "--rate-sync", "10/min"]].concat()).await;
    let flood = Device::new(&site.url, "flood@example.test").from("203.0.113.7");
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(flood.call("sync_pull", json!({ "cursor": 0 })).await.status().as_u16());
    }
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10, "{statuses:?}");
    assert_eq!(refused, 50, "the rest refused, none failed otherwise: {statuses:?}");
    let res = flood.call("sync_push", json!({ "push": Push {
        conversation: conversation("c1", vec![message("m1", None, "hi")]), base: 0, device: String::new() } })).await;
    assert_eq!(res.status(), 429, "a write is refused too, before its body is read");
    assert!(res.text().await.unwrap().contains("TooManyRequests"));

    // Someone else, from elsewhere, is served as if nothing happened.
    let calm = Device::new(&site.url, "calm@example.test").from("198.51.100.4");
    let (status, _) = calm.push(&conversation("c1", vec![message("m1", None, "hello")]), 0).await;
    assert_eq!(status, 200);
    assert_eq!(texts(&calm.find("c1").await.unwrap()), ["hello"]);
    assert!(flood.call("sync_pull", json!({ "cursor": 0 })).await.status() == 429);
}

#[tokio::test]
async fn an_account_holds_at_most_sixteen_event_streams() {
    let site = site(&PROXY).await;
    let device = Device::new(&site.url, "tabs@example.test");
    let mut open = Vec::new();
    for _ in 0..16 {
        let res = device.call("sync_events", json!({})).await;
        assert_eq!(res.status(), 200);
        open.push(res);
    }
    let refused = device.call("sync_events", json!({})).await;
    assert_eq!(refused.status(), 429, "the 17th");
    let other = Device::new(&site.url, "other@example.test");
    assert_eq!(other.call("sync_events", json!({})).await.status(), 200, "per account");
    drop(open.pop());
    // The stream closed is counted off once the server notices (at its next write, a ping at
    // the latest): a new one is taken within a few seconds.
    let mut again = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..60 {
        again = device.call("sync_events", json!({})).await.status();
        if again == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(again, 200);
}
