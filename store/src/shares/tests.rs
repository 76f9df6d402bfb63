//! The suite every backend passes; on PostgreSQL, a revocation is seen at once by another
//! replica.

use super::*;
use crate::principal::owner;

fn share(token: &str, who: &str, conversation: &str, at: i64) -> Share {
    Share {
        token: token.into(),
        owner: owner(who),
        conversation: conversation.into(),
        title: format!("about {conversation}"),
        snapshot: format!(r#"{{"at":{at}}}"#),
        include_images: true,
        link_preview: false,
        created_ms: at,
        updated_ms: at,
        expires_ms: Some(at + 1000),
        revoked_ms: None,
    }
}

async fn links_by_owner(store: &Store, replica: &Store) {
    assert!(store
        .put_share(share("t1", "ann", "c1", 10), vec![b"p0".to_vec(), b"p1".to_vec()])
        .await
        .unwrap());
    assert!(store.put_share(share("t2", "ann", "c2", 20), vec![]).await.unwrap());
    assert!(store.put_share(share("t3", "bob", "c1", 30), vec![]).await.unwrap());

    let found = replica.share("t1").await.unwrap().unwrap();
    assert_eq!(found, share("t1", "ann", "c1", 10));
    assert!(found.is_live(1009) && !found.is_live(1010), "live until it expires");
    assert_eq!(replica.share_image("t1", 1).await.unwrap().as_deref(), Some(&b"p1"[..]));
    assert_eq!(replica.share_image("t1", 2).await.unwrap(), None);
    assert_eq!(replica.share_image("t3", 0).await.unwrap(), None, "another link's images");
    let mine: Vec<String> =
        store.shares_of(&owner("ann")).await.unwrap().into_iter().map(|s| s.token).collect();
    assert_eq!(mine, ["t2", "t1"], "the latest first, only ann's");

    // Update under the same token: new snapshot and images, the old card dropped; another
    // owner's token is left alone.
    store.put_share_card("t1", 10, b"card".to_vec()).await.unwrap();
    assert_eq!(store.share_image("t1", CARD).await.unwrap().as_deref(), Some(&b"card"[..]));
    let mut again = share("t1", "ann", "c1", 50);
    again.created_ms = 999;
    assert!(store.put_share(again, vec![b"new".to_vec()]).await.unwrap());
    let updated = replica.share("t1").await.unwrap().unwrap();
    assert_eq!(
        (updated.created_ms, updated.updated_ms, updated.snapshot.as_str()),
        (10, 50, r#"{"at":50}"#)
    );
    assert_eq!(replica.share_image("t1", 0).await.unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(replica.share_image("t1", 1).await.unwrap(), None);
    assert_eq!(replica.share_image("t1", CARD).await.unwrap(), None, "made again when asked");
    store.put_share_card("t1", 10, b"stale".to_vec()).await.unwrap();
    assert_eq!(store.share_image("t1", CARD).await.unwrap(), None, "a card of the old snapshot");
    assert!(!store.put_share(share("t1", "bob", "c9", 60), vec![]).await.unwrap(), "bob's write");
    assert_eq!(store.share("t1").await.unwrap().unwrap().owner, owner("ann"));

    // Revoking: bob cannot revoke ann's; ann revokes one, then every link of a conversation.
    assert_eq!(store.revoke_shares(&owner("bob"), "t1", None, 70).await.unwrap(), 0);
    assert_eq!(store.revoke_shares(&owner("ann"), "t2", None, 70).await.unwrap(), 1);
    assert_eq!(store.revoke_shares(&owner("ann"), "t2", None, 71).await.unwrap(), 0, "once");
    let revoked = replica.share("t2").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_ms, Some(70));
    assert!(!revoked.is_live(70));
    assert_eq!(store.revoke_shares(&owner("ann"), "", Some("c1"), 80).await.unwrap(), 1);
    assert!(!replica.share("t1").await.unwrap().unwrap().is_live(80));
    assert_eq!(replica.share_image("t1", 0).await.unwrap(), None, "its images go");
    assert!(replica.share("t3").await.unwrap().unwrap().is_live(80), "bob's link of his c1");
    store.put_share_card("t1", 50, b"card".to_vec()).await.unwrap();
    assert_eq!(store.share_image("t1", CARD).await.unwrap(), None, "no card for a revoked link");
}

async fn files_of_others(store: &Store) {
    let file = |who: &str, uri: &str| crate::files::FileRow {
        owner: owner(who),
        upstream: "u".into(),
        name: "files/x".into(),
        uri: uri.into(),
        mime_type: "image/jpeg".into(),
        size_bytes: 1,
        display_name: "x".into(),
        sha256: "s".into(),
        create_time: None,
        expiration_time: None,
        state: crate::files::FileState::Active,
        recorded_at_ms: 1,
    };
    store.record(file("ann", "https://g/files/a")).await.unwrap();
    assert!(!store.file_of_another(&owner("ann"), "https://g/files/a").await.unwrap());
    assert!(store.file_of_another(&owner("bob"), "https://g/files/a").await.unwrap());
    assert!(!store.file_of_another(&owner("bob"), "https://g/files/none").await.unwrap());
}

#[tokio::test]
async fn the_suite_holds_on_sqlite() {
    let store = Store::in_memory().unwrap();
    links_by_owner(&store, &store.clone()).await;
    files_of_others(&store).await;
}

#[tokio::test]
async fn the_suite_holds_on_postgres() {
    let Some(url) = crate::postgres::testing::fresh_database("shares").await else { return };
    let url: crate::DatabaseUrl = url.parse().unwrap();
    let (store, replica) =
        (Store::connect(&url).await.unwrap(), Store::connect(&url).await.unwrap());
    links_by_owner(&store, &replica).await;
    files_of_others(&store).await;
}
