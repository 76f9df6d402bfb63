//! The suite every backend passes, and what replicas sharing PostgreSQL add.

use std::time::Duration;

use super::*;

fn account(n: u8) -> AccountId {
    AccountId::parse(&format!("{n:032x}")).unwrap()
}

fn message(id: &str, revision: i64) -> Message {
    Message {
        id: id.into(),
        revision,
        body: format!(r#"{{"role":"user","parts":[{{"text":"{id}"}}]}}"#),
    }
}

fn conversation(id: &str, revision: i64, messages: &[&str]) -> Conversation {
    Conversation {
        id: id.into(),
        revision,
        title: format!("about {id}"),
        meta: "{}".into(),
        created_ms: 1,
        updated_ms: 1,
        messages: messages.iter().map(|m| message(m, revision)).collect(),
        ..Conversation::default()
    }
}

/// Writes `new` whatever is stored.
async fn put(store: &Store, who: &AccountId, new: Conversation) -> Written<()> {
    let id = new.id.clone();
    store.write_conversation(who, &id, move |_, _| Decision::Write(vec![new], ())).await.unwrap()
}

fn ids(c: &Conversation) -> Vec<&str> {
    c.messages.iter().map(|m| m.id.as_str()).collect()
}

async fn conversations_by_message(store: &Store) {
    let (ann, bob) = (account(1), account(2));
    assert_eq!(store.sync_state(&ann).await.unwrap(), (0, 0));
    let first = conversation("c1", 1, &["m1", "m2"]);
    let written = put(store, &ann, first.clone()).await;
    assert_eq!((written.cursor, written.bytes), (1, first.bytes()));
    let stored = store.conversation(&ann, "c1").await.unwrap().unwrap();
    assert_eq!(stored, Conversation { changed: 1, ..first.clone() });
    assert!(store.conversation(&bob, "c1").await.unwrap().is_none(), "only its account's");
    assert_eq!(store.pull_conversations(&bob, 0, 1 << 20).await.unwrap(), Pulled::default());

    // A decision sees what is stored and the account's bytes; keeping writes nothing.
    let seen = store
        .write_conversation(&ann, "c1", |stored, bytes| {
            Decision::Keep((stored.map(|s| s.revision), bytes))
        })
        .await
        .unwrap();
    assert_eq!(seen.outcome, (Some(1), first.bytes()));
    assert_eq!(seen.cursor, 1);

    // Reordered, one changed, one removed, one added: stored exactly so.
    let mut second = conversation("c1", 2, &["m3", "m1"]);
    second.messages[1] = message("m1", 1);
    second.messages[1].body = "changed".into();
    put(store, &ann, second.clone()).await;
    let stored = store.conversation(&ann, "c1").await.unwrap().unwrap();
    assert_eq!(ids(&stored), ["m3", "m1"]);
    assert_eq!(stored.messages[1].body, "changed");
    assert_eq!((stored.revision, stored.changed), (2, 2));
    assert_eq!(store.sync_state(&ann).await.unwrap(), (2, second.bytes()));

    // A write of two conversations at once (a fork): each its own cursor.
    let main = conversation("c1", 3, &["m3", "m1", "m4"]);
    let fork = conversation("c2", 1, &["m3", "x"]);
    let (main_bytes, fork_bytes) = (main.bytes(), fork.bytes());
    let written = store
        .write_conversation(&ann, "c1", move |_, _| Decision::Write(vec![main, fork], ()))
        .await
        .unwrap();
    assert_eq!((written.cursor, written.bytes), (4, main_bytes + fork_bytes));

    // Pulled in the order they changed, in pages of at most about `max_bytes`.
    let all = store.pull_conversations(&ann, 0, 1 << 20).await.unwrap();
    let order: Vec<(&str, i64)> =
        all.conversations.iter().map(|c| (c.id.as_str(), c.changed)).collect();
    assert_eq!(order, [("c1", 3), ("c2", 4)]);
    assert_eq!((all.cursor, all.more), (4, false));
    assert_eq!(ids(&all.conversations[1]), ["m3", "x"]);
    let page = store.pull_conversations(&ann, 0, 1).await.unwrap();
    assert_eq!((page.conversations.len(), page.cursor, page.more), (1, 3, true));
    let rest = store.pull_conversations(&ann, page.cursor, 1).await.unwrap();
    assert_eq!((rest.conversations[0].id.as_str(), rest.cursor, rest.more), ("c2", 4, false));
    let none = store.pull_conversations(&ann, 4, 1).await.unwrap();
    assert_eq!((none.conversations.len(), none.cursor, none.more), (0, 4, false));

    // Deleted: pulled without messages, listed, restored, purged for good.
    let deleted = store.set_conversation_deleted(&ann, "c2", Some(50)).await.unwrap().unwrap();
    assert_eq!((deleted.revision, deleted.changed, deleted.deleted_ms), (2, 5, Some(50)));
    assert!(store.set_conversation_deleted(&bob, "c2", Some(50)).await.unwrap().is_none());
    let pulled = store.pull_conversations(&ann, 4, 1 << 20).await.unwrap();
    assert!(pulled.conversations[0].messages.is_empty() && pulled.cursor == 5);
    let listed = store.deleted_conversations(&ann).await.unwrap();
    assert_eq!(listed.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["c2"]);
    assert!(store.deleted_conversations(&bob).await.unwrap().is_empty());
    let restored = store.set_conversation_deleted(&ann, "c2", None).await.unwrap().unwrap();
    assert_eq!((restored.changed, restored.deleted_ms), (6, None));
    let back = store.pull_conversations(&ann, 5, 1 << 20).await.unwrap();
    assert_eq!(ids(&back.conversations[0]), ["m3", "x"], "restored whole");
    store.set_conversation_deleted(&ann, "c2", Some(60)).await.unwrap();
    assert!(store.purge_conversations(60).await.unwrap().is_empty(), "not yet");
    let purged = store.purge_conversations(61).await.unwrap();
    assert_eq!(purged, [(ann.clone(), "{}".to_string())]);
    assert!(store.purge_conversations(61).await.unwrap().is_empty(), "once");
    assert_eq!(store.sync_state(&ann).await.unwrap(), (7, main_bytes), "its bytes freed");
    assert!(store.set_conversation_deleted(&ann, "c2", None).await.unwrap().is_none());
    let tombstone = store.conversation(&ann, "c2").await.unwrap().unwrap();
    assert!(tombstone.purged && tombstone.messages.is_empty() && tombstone.title.is_empty());

    // A subscription wakes at the account's next write only.
    let mut follows = store.subscribe(&ann);
    put(store, &bob, conversation("b1", 1, &["m"])).await;
    put(store, &ann, conversation("c3", 1, &["m"])).await;
    let woke = tokio::time::timeout(Duration::from_secs(5), follows.changed()).await.unwrap();
    assert_eq!(woke, 8);

    // An account deleted takes its conversations along.
    let identity = crate::Identity {
        issuer: "https://id".into(),
        subject: "ann".into(),
        email: None,
        email_verified: false,
        name: None,
    };
    let owner = store.account_for(&identity, 1).await.unwrap();
    put(store, &owner.id, conversation("c1", 1, &["m1"])).await;
    assert!(store.delete_account(&owner.id).await.unwrap());
    assert!(store.conversation(&owner.id, "c1").await.unwrap().is_none());
    assert_eq!(store.sync_state(&owner.id).await.unwrap(), (0, 0));
}

/// Appends to one conversation at once, through `stores` in turn: each decision sees every
/// write before it, so none is lost.
async fn appends_at_once_all_persist(stores: &[Store]) {
    let ann = account(3);
    put(&stores[0], &ann, conversation("c", 1, &[])).await;
    let writes = (0..16).map(|n| {
        let store = stores[n % stores.len()].clone();
        let ann = ann.clone();
        async move {
            store
                .write_conversation(&ann, "c", move |stored, _| {
                    let mut next = stored.unwrap().clone();
                    next.revision += 1;
                    next.messages.push(message(&format!("m{n}"), next.revision));
                    Decision::Write(vec![next], ())
                })
                .await
                .unwrap()
        }
    });
    futures::future::join_all(writes).await;
    let stored = stores[0].conversation(&ann, "c").await.unwrap().unwrap();
    assert_eq!((stored.revision, stored.messages.len()), (17, 16));
}

#[tokio::test]
async fn the_suite_holds_on_sqlite() {
    let store = Store::in_memory().unwrap();
    conversations_by_message(&store).await;
    appends_at_once_all_persist(&[store]).await;
}

#[tokio::test]
async fn the_suite_holds_on_postgres() {
    let Some(url) = crate::postgres::testing::fresh_database("sync").await else { return };
    let url: crate::DatabaseUrl = url.parse().unwrap();
    let store = Store::connect(&url).await.unwrap();
    conversations_by_message(&store).await;
    let replica = Store::connect(&url).await.unwrap();
    appends_at_once_all_persist(&[store, replica]).await;
}

#[tokio::test]
async fn a_write_on_one_replica_wakes_the_others_followers() {
    let Some(url) = crate::postgres::testing::fresh_database("notify").await else { return };
    let url: crate::DatabaseUrl = url.parse().unwrap();
    let (one, other) = (Store::connect(&url).await.unwrap(), Store::connect(&url).await.unwrap());
    let ann = account(4);
    let mut follows = other.subscribe(&ann);
    // The listener starts with the first subscription: a write before it is listening is
    // announced when it starts, one after by its notification.
    for n in 1..=3 {
        put(&one, &ann, conversation(&format!("c{n}"), 1, &["m"])).await;
        let mut seen = 0;
        while seen < n {
            seen = tokio::time::timeout(Duration::from_secs(5), follows.changed()).await.unwrap();
        }
        assert_eq!(seen, n);
    }
}
