//! Shared links, measured through a real `parley` process:
//!
//! * a 100-message conversation without images shared, then its page `/s/<token>` asked for
//!   200 times as a phone would (brotli accepted): time to the first byte (p50/p95) and the
//!   bytes transferred (the issue's target: at most 30 KB);
//! * the link-preview card (1200 × 630): the first request, which makes it with the `image`
//!   crate from a 720 × 480 preview, and the next ones, which read it back.
//!
//! ```text
//! cargo bench -p parley --bench share
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::Instant;

use base64::Engine;
use serde_json::{json, Value};
use support::{free_port, quantile, Killed};

const VIEWS: usize = 200;
const MESSAGES: usize = 100;

async fn parley(data: &std::path::Path) -> (String, Killed) {
    let port = free_port();
    let args = [
        "--gemini-api-key=",
        "--rate-files",
        "off",
        "--max-connections-per-address",
        "0",
        "--session-secret",
        "0123456789abcdef0123456789abcdef",
    ];
    (format!("http://127.0.0.1:{port}"), support::parley(port, data, &args, &[]).await)
}

/// A conversation of `MESSAGES` messages of ordinary length (a question, a Markdown answer),
/// with a picture in the first one when `picture` is given.
fn conversation(picture: Option<&str>) -> Value {
    let messages: Vec<Value> = (0..MESSAGES)
        .map(|n| {
            if n % 2 == 0 {
                let mut parts = vec![json!({"text": format!("Question {n}: what does the report say about quarter {}?", n / 2)})];
                if let (0, Some(data)) = (n, picture) {
                    parts.insert(0, json!({"inline_data": {"mime_type": "image/jpeg", "data": data}}));
                }
                json!({"role": "user", "parts": parts})
            } else {
                json!({"role": "model", "parts": [{"text": format!(
                    "In quarter {}, **revenue** grew by {}%.\n\n- costs fell\n- margins held\n\nSee the table on page {}.",
                    n / 2, n % 7 + 2, n + 3
                )}]})
            }
        })
        .collect();
    json!({"version": "1.2", "conversation": messages, "uploaded_files": {}})
}

async fn share(http: &reqwest::Client, site: &str, export: &Value, preview: bool) -> String {
    let body = json!({"request": {
        "conversation": "bench", "title": "Quarterly report", "export": export.to_string(),
        "include_images": true, "link_preview": preview,
    }});
    let res = http.post(format!("{site}/api/share_create")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let link: Value = res.json().await.unwrap();
    format!("{site}/s/{}", link["token"].as_str().unwrap())
}

fn picture() -> String {
    let image = image::RgbImage::from_fn(720, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Jpeg).unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes.into_inner())
}

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().unwrap();
    let (site, _process) = parley(data.path()).await;
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();

    let page = share(&http, &site, &conversation(None), false).await;
    let phone = reqwest::Client::new();
    let (mut first_byte, mut sent) = (Vec::with_capacity(VIEWS), 0);
    for _ in 0..VIEWS {
        let started = Instant::now();
        let res = phone.get(&page).header("accept-encoding", "br, gzip").send().await.unwrap();
        first_byte.push(started.elapsed());
        assert_eq!(res.status(), 200);
        sent = res.bytes().await.unwrap().len();
    }
    let whole = phone.get(&page).send().await.unwrap().bytes().await.unwrap().len();
    first_byte.sort();
    println!(
        "a shared page of {MESSAGES} messages, no images: first byte p50 {:.1} ms, p95 {:.1} ms; \
         {sent} bytes as sent to a browser accepting brotli ({whole} bytes of HTML)",
        quantile(&first_byte, 0.5),
        quantile(&first_byte, 0.95),
    );

    let with_card = share(&http, &site, &conversation(Some(&picture())), true).await;
    let started = Instant::now();
    let res = phone.get(format!("{with_card}/card.jpg")).send().await.unwrap();
    let card = res.bytes().await.unwrap();
    let made = started.elapsed();
    let mut kept = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        phone.get(format!("{with_card}/card.jpg")).send().await.unwrap().bytes().await.unwrap();
        kept.push(started.elapsed());
    }
    kept.sort();
    println!(
        "the 1200×630 card: made in {:.1} ms ({} bytes), then read back in {:.1} ms (p50)",
        made.as_secs_f64() * 1e3,
        card.len(),
        quantile(&kept, 0.5),
    );
}
