//! The service through a real store: a link made, opened, updated, revoked and expired; a
//! File of someone else's refused; previews encoded anew; the card made once.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

use base64::Engine;
use parley_protocol::share::ShareRequest;
use parley_store::{files::FileRow, Principal, SessionId, Store};

use super::*;

fn photo_base64() -> String {
    let picture = image::RgbImage::from_pixel(1440, 960, image::Rgb([10, 200, 30]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())
}

fn request(uri: &str, text: &str) -> ShareRequest {
    let export = serde_json::json!({
        "version": "1.2",
        "conversation": [
            {"role": "user", "parts": [
                {"inline_data": {"mime_type": "image/png", "data": photo_base64()},
                 "file_data": {"mime_type": "image/png", "file_uri": uri}},
                {"text": text}]},
            {"role": "model", "parts": [{"text": "A green picture."}]}],
        "uploaded_files": {},
    });
    ShareRequest {
        conversation: "c1".into(),
        title: text.into(),
        export: export.to_string(),
        include_images: true,
        link_preview: true,
    }
}

fn file(owner: &Owner, uri: &str) -> FileRow {
    FileRow {
        owner: owner.clone(),
        upstream: "u".into(),
        name: "files/x".into(),
        uri: uri.into(),
        mime_type: "image/png".into(),
        size_bytes: 1,
        display_name: "x".into(),
        sha256: "s".into(),
        create_time: None,
        expiration_time: None,
        state: parley_store::files::FileState::Active,
        recorded_at_ms: 1,
    }
}

#[tokio::test]
async fn a_link_lives_until_revoked_or_expired_and_never_unlocks_a_file() {
    let store = Store::in_memory().unwrap();
    let hand = Arc::new(AtomicI64::new(1_000));
    let clock: Clock = {
        let hand = hand.clone();
        Arc::new(move || hand.load(Ordering::SeqCst))
    };
    let shares = Shares::new(store.clone(), Some(10_000), clock);
    let ann = Principal::anonymous(SessionId::random()).owner();
    let bob = Principal::anonymous(SessionId::random()).owner();
    store.record(file(&ann, "https://g/v1beta/files/anns")).await.unwrap();

    // Bob names Ann's File: refused, as not found.
    let forged = shares.share(&bob, request("https://g/v1beta/files/anns", "mine now"), None).await;
    assert!(matches!(forged, Err(ChatError::NotFound(_))), "{forged:?}");
    assert!(shares.list(&bob).await.unwrap().is_empty());

    let link =
        shares.share(&ann, request("https://g/v1beta/files/anns", "Look"), None).await.unwrap();
    assert!(parley_protocol::share::is_token(&link.token), "{}", link.token);
    assert_eq!(link.expires_ms, Some(11_000));
    let opened = shares.open(&link.token).await.unwrap();
    assert_eq!(opened.snapshot.messages[0].text, "Look");
    let preview = image::load_from_memory(&shares.image(&link.token, 0).await.unwrap()).unwrap();
    assert_eq!((preview.width(), preview.height()), (720, 480), "encoded anew, fitting 720²");
    assert!(shares.image(&link.token, 1).await.is_err());
    let card = shares.card(&link.token).await.unwrap();
    assert_eq!(shares.card(&link.token).await.unwrap(), card, "kept");
    let copy = shares.continued(&link.token).await.unwrap();
    assert!(copy.contains("inline_data") && !copy.contains("files/anns"));

    // Bob cannot update or revoke it; Ann updates it under the same token.
    assert!(shares
        .share(&bob, request("https://g/v1beta/files/none", "x"), Some(link.token.clone()))
        .await
        .is_err());
    assert!(matches!(shares.revoke(&bob, &link.token).await, Err(ChatError::NotFound(_))));
    hand.store(5_000, Ordering::SeqCst);
    let again = shares
        .share(&ann, request("https://g/v1beta/files/anns", "Look again"), Some(link.token.clone()))
        .await
        .unwrap();
    assert_eq!(
        (again.token.as_str(), again.created_ms, again.updated_ms),
        (link.token.as_str(), 1_000, 5_000)
    );
    assert_eq!(shares.open(&link.token).await.unwrap().snapshot.messages[0].text, "Look again");
    assert_ne!(shares.card(&link.token).await.unwrap().len(), 0);

    // Revoked: gone for everyone.
    shares.revoke(&ann, &link.token).await.unwrap();
    assert!(matches!(shares.open(&link.token).await, Err(ChatError::Gone(_))));
    assert!(matches!(shares.image(&link.token, 0).await, Err(ChatError::Gone(_))));
    assert!(shares.list(&ann).await.unwrap().is_empty());
    assert!(matches!(shares.revoke(&ann, &link.token).await, Err(ChatError::NotFound(_))));

    // Expired: gone; a token never made: not found.
    let other =
        shares.share(&ann, request("https://g/v1beta/files/anns", "Later"), None).await.unwrap();
    hand.store(15_000, Ordering::SeqCst);
    assert!(matches!(shares.open(&other.token).await, Err(ChatError::Gone(_))));
    let never = "A".repeat(43);
    assert!(matches!(shares.open(&never).await, Err(ChatError::NotFound(_))));
    assert!(matches!(shares.open("../etc").await, Err(ChatError::NotFound(_))));

    // Deleting the conversation revokes its links.
    hand.store(16_000, Ordering::SeqCst);
    let third =
        shares.share(&ann, request("https://g/v1beta/files/anns", "Third"), None).await.unwrap();
    assert_eq!(shares.revoke_conversation(&ann, "c1").await.unwrap(), 2, "the expired one too");
    assert!(matches!(shares.open(&third.token).await, Err(ChatError::Gone(_))));
}
