//! The Files view's thumbnails: made on the server from the retained original, only for the
//! principal who uploaded it, never of a decompression bomb.

use super::common::*;

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 200])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    picture.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
    bytes.into_inner()
}

/// The Files view's record of the upload named `name`.
async fn record(site: &Site, name: &str) -> app::model::UploadRecord {
    let all = list_uploads(&site.client, &site.url).await;
    all.into_iter().find(|r| r.display_name == name).unwrap()
}

#[tokio::test]
async fn an_image_has_a_thumbnail_for_its_uploader_only() {
    let site = site(&[]).await;
    let photo = png(900, 600);
    let form = upload_form(&photo.len().to_string(), "image/png", "photo.png", photo);
    assert_eq!(upload(&site, form).await.status(), 200);
    upload_text(&site.client, &site.url, "notes.txt", "hello").await;

    let photo = record(&site, "photo.png").await;
    let path = photo.thumbnail.expect("an image kept on the server has a thumbnail");
    assert!(record(&site, "notes.txt").await.thumbnail.is_none(), "text shows its type");
    let res = site.client.get(format!("{}{path}", site.url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(res.headers()["cache-control"].to_str().unwrap().starts_with("private"));
    let jpeg = res.bytes().await.unwrap();
    let small = image::load_from_memory(&jpeg).unwrap();
    assert_eq!((small.width(), small.height()), (256, 171));
    // Made once: asked again, the same bytes.
    let again = site.client.get(format!("{}{path}", site.url)).send().await.unwrap();
    assert_eq!(again.bytes().await.unwrap(), jpeg);

    // Another browser, and ids that are not a File of this one: 404 alike.
    let other = browser();
    assert_eq!(other.get(format!("{}{path}", site.url)).send().await.unwrap().status(), 404);
    for bad in ["/thumbnails/nope", "/thumbnails/..%2F..%2Fetc", "/thumbnails/a%20b"] {
        let res = site.client.get(format!("{}{bad}", site.url)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }
}

#[tokio::test]
async fn a_decompression_bomb_gets_no_thumbnail_and_costs_nothing() {
    let site = site(&[]).await;
    // A PNG whose header claims 100,000 × 100,000 pixels (40 GB decoded).
    let mut bomb = png(8, 8);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let form = upload_form(&bomb.len().to_string(), "image/png", "bomb.png", bomb);
    assert_eq!(upload(&site, form).await.status(), 200);
    let path = record(&site, "bomb.png").await.thumbnail.unwrap();
    let started = std::time::Instant::now();
    let res = site.client.get(format!("{}{path}", site.url)).send().await.unwrap();
    assert_eq!(res.status(), 404, "refused, not rendered");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let info = site.client.post(format!("{}/api/site_info", site.url)).send().await.unwrap();
    assert_eq!(info.status(), 200, "the server is still answering");
}
