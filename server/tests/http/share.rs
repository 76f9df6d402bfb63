//! Conversations shared by link, through the real server: the page is built from the
//! allow-list (nothing of the sharer's Files, session or account on it), says `noindex`
//! everywhere, serves its previews under the link only, makes its card once; a File of
//! someone else's cannot be shared; only the owner updates or revokes, and a revoked link is
//! 410; `PARLEY_SHARING=signed-in` and `off` refuse before any byte of the conversation.

use base64::Engine;
use serde_json::{json, Value};

use super::common::*;

fn png_base64(width: u32, height: u32) -> String {
    let picture = image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 40]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())
}

/// A conversation naming `file_uri`, with a photo preview and a hostile answer.
fn request(file_uri: &str, include_images: bool, link_preview: bool) -> Value {
    let export = json!({
        "version": "1.2",
        "conversation": [
            {"role": "user", "parts": [
                {"inline_data": {"mime_type": "image/png", "data": png_base64(900, 600)},
                 "file_data": {"mime_type": "image/png", "file_uri": file_uri}},
                {"text": "What is in this photo?"}]},
            {"role": "model", "parts": [
                {"text": "A red square. <script>alert(1)</script> [x](javascript:alert(1))"},
                {"text": "", "thought_signature": "U0lHTkFUVVJF"}],
             "usage_metadata": {"promptTokenCount": 1234}}],
        "conversation_summaries": [{"summary": "SUMMARY-SECRET"}],
        "uploaded_files": {},
    });
    json!({"request": {
        "conversation": "conv-1",
        "title": "A red square",
        "export": export.to_string(),
        "include_images": include_images,
        "link_preview": link_preview,
    }})
}

async fn call(
    client: &reqwest::Client,
    url: &str,
    function: &str,
    body: Value,
) -> reqwest::Response {
    client.post(format!("{url}/api/{function}")).json(&body).send().await.unwrap()
}

/// A link `client` makes at `url` to [`request`]'s conversation, naming a File nobody has.
async fn shared(
    client: &reqwest::Client,
    url: &str,
    include_images: bool,
    link_preview: bool,
) -> app::share::SharedLink {
    let body = request("https://g/v1beta/files/none", include_images, link_preview);
    let res = call(client, url, "share_create", body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

fn assert_noindex(res: &reqwest::Response) {
    assert_eq!(res.headers()["x-robots-tag"], "noindex, nofollow", "{}", res.url());
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn a_shared_page_shows_the_snapshot_and_nothing_else() {
    let site = site(&[]).await;
    let sharer = browser();
    let file = upload_text(&sharer, &site.url, "notes.txt", "the sharer's notes").await;
    let res = call(&sharer, &site.url, "share_create", request(&file.uri, true, false)).await;
    assert_eq!(res.status(), 200);
    let link: app::share::SharedLink = res.json().await.unwrap();
    assert!(app::share::is_token(&link.token));
    let page_url = format!("{}{}", site.url, link.path());

    // Opened by someone else, signed out: the page.
    let viewer = browser();
    let res = get(&viewer, &page_url).await;
    assert_eq!(res.status(), 200);
    assert_noindex(&res);
    let policy = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("default-src 'none'") && !policy.contains("script-src"), "{policy}");
    assert!(res.headers().get("set-cookie").is_none(), "a view starts no session");
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"<meta name="robots" content="noindex, nofollow">"#));
    assert!(html.contains(r#"data-role="user""#) && html.contains(r#"data-role="model""#));
    assert!(html.contains("What is in this photo?") && html.contains("A red square."));
    assert!(html.contains(r#"data-testid="attachment-preview""#));
    assert!(html.contains("Continue this conversation"));
    assert!(html.contains(r#"property="og:title" content="A conversation shared from Parley""#));
    assert!(!html.contains("og:image"), "no link preview asked for");
    let file_id = file.name.trim_start_matches("files/");
    for forbidden in [
        file.uri.as_str(),
        file_id,
        "SUMMARY-SECRET",
        "U0lHTkFUVVJF",
        "1234",
        "<script",
        "javascript:",
        "conv-1",
    ] {
        assert!(!html.contains(forbidden), "{forbidden} on the page");
    }
    assert!(!html.contains("<script"), "no script at all");

    // The preview, under the link; another link's token cannot fetch it.
    let preview = get(&viewer, &format!("{page_url}/images/0")).await;
    assert_eq!(preview.status(), 200);
    assert_noindex(&preview);
    let jpeg = preview.bytes().await.unwrap();
    let small = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((small.width(), small.height()), (720, 480));
    let other = call(&sharer, &site.url, "share_create", request(&file.uri, false, true)).await;
    let other: app::share::SharedLink = other.json().await.unwrap();
    let other_url = format!("{}{}", site.url, other.path());
    assert_eq!(get(&viewer, &format!("{other_url}/images/0")).await.status(), 404, "images off");
    assert_eq!(get(&viewer, &format!("{page_url}/images/1")).await.status(), 404);
    assert_eq!(get(&viewer, &format!("{page_url}/card.jpg")).await.status(), 404, "no preview");

    // The card of a link with a preview: 1200×630, made once.
    let card = get(&viewer, &format!("{other_url}/card.jpg")).await;
    assert_eq!(card.status(), 200);
    let card = card.bytes().await.unwrap();
    let picture = image::load_from_memory(&card).unwrap();
    assert_eq!((picture.width(), picture.height()), (1200, 630));
    assert_eq!(get(&viewer, &format!("{other_url}/card.jpg")).await.bytes().await.unwrap(), card);
    let html = get(&viewer, &other_url).await.text().await.unwrap();
    assert!(html.contains(r#"property="og:title" content="A red square""#), "{html}");
    assert!(html.contains(&format!(r#"property="og:image" content="{}/card.jpg""#, other.path())));

    // Only the sharer lists, updates and revokes; a revoked link is gone everywhere.
    let mine: Vec<app::share::SharedLink> =
        call(&sharer, &site.url, "share_list", json!({})).await.json().await.unwrap();
    assert_eq!(mine.len(), 2);
    let theirs: Vec<app::share::SharedLink> =
        call(&viewer, &site.url, "share_list", json!({})).await.json().await.unwrap();
    assert!(theirs.is_empty());
    let mut update = request(&file.uri, true, false);
    update["token"] = json!(link.token);
    assert_eq!(call(&viewer, &site.url, "share_update", update.clone()).await.status(), 404);
    assert_eq!(
        call(&viewer, &site.url, "share_revoke", json!({"token": link.token})).await.status(),
        404
    );
    assert_eq!(call(&sharer, &site.url, "share_update", update).await.status(), 200);
    let copy = call(&viewer, &site.url, "share_continue", json!({"token": link.token})).await;
    assert_eq!(copy.status(), 200);
    let copy: String = copy.json().await.unwrap();
    assert!(copy.contains("inline_data") && !copy.contains(&file.uri));
    assert_eq!(
        call(&sharer, &site.url, "share_revoke", json!({"token": link.token})).await.status(),
        200
    );
    let gone = get(&viewer, &page_url).await;
    assert_eq!(gone.status(), 410);
    assert_noindex(&gone);
    assert!(gone.text().await.unwrap().contains("revoked"));
    assert_eq!(get(&viewer, &format!("{page_url}/images/0")).await.status(), 410);
    assert_eq!(
        call(&viewer, &site.url, "share_continue", json!({"token": link.token})).await.status(),
        410
    );
    assert_eq!(get(&viewer, &format!("{}/s/{}", site.url, "A".repeat(43))).await.status(), 404);

    let robots = get(&viewer, &format!("{}/robots.txt", site.url)).await.text().await.unwrap();
    assert!(robots.contains("Disallow: /s/"));
}

#[tokio::test]
async fn a_file_of_someone_else_cannot_be_shared() {
    let site = site(&[]).await;
    let (owner, thief) = (browser(), browser());
    let file = upload_text(&owner, &site.url, "private.txt", "not for you").await;
    let res = call(&thief, &site.url, "share_create", request(&file.uri, true, false)).await;
    assert_eq!(res.status(), 404, "as if it did not exist");
    let listed: Vec<app::share::SharedLink> =
        call(&thief, &site.url, "share_list", json!({})).await.json().await.unwrap();
    assert!(listed.is_empty(), "nothing was made");
}

#[tokio::test]
async fn signed_in_sharing_refuses_signed_out_viewers_before_any_content_and_off_refuses_all() {
    let site = site(&["--sharing", "signed-in"]).await;
    let sharer = browser();
    let link = shared(&sharer, &site.url, true, false).await;
    let page_url = format!("{}{}", site.url, link.path());
    let res = get(&browser(), &page_url).await;
    assert_eq!(res.status(), 401);
    assert_noindex(&res);
    let html = res.text().await.unwrap();
    assert!(!html.contains("What is in this photo?") && !html.contains("A red square"), "{html}");
    assert_eq!(get(&browser(), &format!("{page_url}/images/0")).await.status(), 401);
    assert_eq!(
        call(&browser(), &site.url, "share_continue", json!({"token": link.token})).await.status(),
        401
    );

    let off = self::site(&["--sharing", "off"]).await;
    let res = call(
        &sharer,
        &off.url,
        "share_create",
        request("https://g/v1beta/files/none", true, false),
    )
    .await;
    assert_eq!(res.status(), 404);
    assert_eq!(get(&browser(), &format!("{}/s/{}", off.url, link.token)).await.status(), 404);
}

/// A reader's requests under links count against `PARLEY_RATE_SHARE_VIEWS` by address (no
/// session): past it, 429 with `Retry-After` for that address only — the style sheet is not
/// counted, and a reader elsewhere still reads. With `PARLEY_PUBLIC_URL`, the link preview's
/// picture is an absolute URL under it.
#[tokio::test]
async fn views_of_links_are_limited_per_address_and_the_card_url_is_absolute() {
    let site =
        site(&["--rate-share-views", "4/min", "--public-url", "https://chat.example.org/"]).await;
    let sharer = browser();
    let link = shared(&sharer, &site.url, false, true).await;
    let page_url = format!("{}{}", site.url, link.path());

    let reader = browser();
    let html = get(&reader, &page_url).await.text().await.unwrap();
    let card = format!(
        r#"property="og:image" content="https://chat.example.org{}/card.jpg""#,
        link.path()
    );
    assert!(html.contains(&card), "{html}");
    for _ in 0..3 {
        assert_eq!(get(&reader, &page_url).await.status(), 200);
        assert_eq!(get(&reader, &format!("{}/s/share.css", site.url)).await.status(), 200);
    }
    let refused = get(&reader, &format!("{page_url}/card.jpg")).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));

    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(get(&elsewhere, &page_url).await.status(), 200, "another address still reads");
}
