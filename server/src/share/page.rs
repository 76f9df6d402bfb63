//! The shared page's HTML, rendered by Leptos on the server: the snapshot's messages as
//! `article`s (`data-role="user"`/`"model"`, as in the chat), an answer's Markdown rendered
//! (`app::markdown`, safe by construction) and then sanitized by `ammonia`, attachment chips
//! with names and sizes only, image previews from under the link, code coloured on the server
//! (`highlight`), and `Continue this conversation`. One style sheet of its own
//! (`/s/share.css`), no script.

use axum::response::Html;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use leptos::prelude::*;
use parley_chat::share::{snapshot::Shot, Opened};

/// The page's style sheet, served at `/s/share.css`: `share.css`, then the code colours.
pub fn style() -> &'static str {
    static STYLE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    STYLE.get_or_init(|| format!("{}{}", include_str!("share.css"), super::highlight::css()))
}

/// The sentence of the link preview when its sharer asked for none.
const GENERIC: &str = "A conversation shared from Parley";

/// The page of an open link; its OpenGraph picture under `public_url` (the site's origin)
/// when there is one, as OpenGraph wants an absolute URL, else a path.
pub fn render(opened: &Opened, public_url: Option<&str>) -> Html<String> {
    let link = &opened.link;
    let snapshot = &opened.snapshot;
    let base = link.path();
    let (preview_title, card) = if link.link_preview {
        (snapshot.title.clone(), Some(format!("{}{base}/card.jpg", public_url.unwrap_or(""))))
    } else {
        (GENERIC.to_string(), None)
    };
    let shared_on = date(link.updated_ms);
    let about = match &snapshot.model {
        Some(model) => format!("{model} · shared {shared_on}"),
        None => format!("Shared {shared_on}"),
    };
    let mut budget = super::highlight::MAX_CODE_BYTES;
    let messages = snapshot
        .messages
        .iter()
        .map(|shot| message(shot, &base, link.include_images, &mut budget))
        .collect_view();
    // The head as text: the OpenGraph tags' `property` attribute has no Leptos name.
    let mut head = format!(
        "<meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, \
         initial-scale=1\"><meta name=\"robots\" content=\"noindex, nofollow\"><meta \
         name=\"referrer\" content=\"no-referrer\"><title>{}</title><meta property=\"og:title\" \
         content=\"{}\"><meta property=\"og:description\" content=\"{GENERIC}\"><meta \
         property=\"og:type\" content=\"article\"><meta name=\"twitter:title\" content=\"{}\">",
        text(&format!("{} — Parley", snapshot.title)),
        attr(&preview_title),
        attr(&preview_title),
    );
    if let Some(card) = card {
        head.push_str(&format!(
            "<meta property=\"og:image\" content=\"{0}\"><meta property=\"og:image:width\" \
             content=\"1200\"><meta property=\"og:image:height\" content=\"630\"><meta \
             name=\"twitter:card\" content=\"summary_large_image\"><meta name=\"twitter:image\" \
             content=\"{0}\">",
            attr(&card)
        ));
    }
    head.push_str("<link rel=\"stylesheet\" href=\"/s/share.css\">");
    let page = view! {
            <body>
                <main>
                    <header>
                        <h1>{snapshot.title.clone()}</h1>
                        <p class="about">{about}</p>
                    </header>
                    {messages}
                    <footer>
                        <a class="continue" role="button" href=format!("/?continue={}", link.token)>
                            "Continue this conversation"
                        </a>
                        <p class="about">"Shared from Parley. Its files were not shared."</p>
                    </footer>
                </main>
            </body>
    };
    Html(format!("<!DOCTYPE html><html lang=\"en\"><head>{head}</head>{}</html>", page.to_html()))
}

/// One message; its code coloured while `budget` (bytes of code on the page) lasts.
fn message(shot: &Shot, base: &str, include_images: bool, budget: &mut usize) -> impl IntoView {
    let text = if shot.role == "model" {
        super::highlight::colour(&sanitized(&app::markdown::to_html(&shot.text)), budget)
    } else {
        // What a person typed is text, line breaks kept by the style sheet.
        format!("<p>{}</p>", app::markdown::escape(&shot.text))
    };
    let attachments = shot
        .attachments
        .iter()
        .map(|a| {
            let label = if a.size_bytes > 0 {
                format!("{} · {}", a.name, app::model::human_size(a.size_bytes))
            } else {
                a.name.clone()
            };
            let picture = a.image.filter(|_| include_images).map(|n| {
                view! {
                    <img
                        data-testid="attachment-preview"
                        src=format!("{base}/images/{n}")
                        alt=a.name.clone()
                        loading="lazy"
                    />
                }
            });
            view! {
                <figure class="attachment">
                    {picture}
                    <figcaption class="chip">{label}</figcaption>
                </figure>
            }
        })
        .collect_view();
    view! {
        <article data-role=shot.role.clone()>
            <div class="attachments">{attachments}</div>
            <div class="text" inner_html=text></div>
        </article>
    }
}

/// `html` as `ammonia` leaves it: the tags Markdown makes, links with `rel="noopener
/// noreferrer"`, a code block's `class` (its language); nothing that runs or loads.
fn sanitized(html: &str) -> String {
    ammonia::Builder::default()
        .add_tag_attributes("code", &["class"])
        .rm_tags(&["img"])
        .clean(html)
        .to_string()
}

/// The short page of a link that cannot be shown (`sign_in`: with a link to sign in).
pub fn notice(sentence: &'static str, sign_in: bool) -> Html<String> {
    let page = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="robots" content="noindex, nofollow" />
                <title>"Parley"</title>
                <link rel="stylesheet" href="/s/share.css" />
            </head>
            <body>
                <main class="notice">
                    <h1>{sentence}</h1>
                    {sign_in.then(|| view! { <p><a href="/">"Sign in"</a></p> })}
                    <p><a href="/">"Go to Parley"</a></p>
                </main>
            </body>
        </html>
    };
    Html(format!("<!DOCTYPE html>{}", page.to_html()))
}

/// `YYYY-MM-DD` (UTC) of `ms` since the epoch.
fn date(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string().chars().take(10).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_markdown_stays_inert() {
        for hostile in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "![x](https://tracker.example/pixel.png)",
            "<iframe src=https://evil.example></iframe>",
            "<a href=\"#\" onclick=\"alert(1)\">x</a>",
            "```js\" onmouseover=\"alert(1)\nx\n```",
        ] {
            let mut budget = crate::share::highlight::MAX_CODE_BYTES;
            let html = crate::share::highlight::colour(
                &sanitized(&app::markdown::to_html(hostile)),
                &mut budget,
            );
            // Shown as text is fine; no element may run or load anything.
            for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
                let name = tag.split_whitespace().next().unwrap_or("");
                assert!(!["script", "iframe", "img"].contains(&name), "{hostile} → {html}");
                assert!(!tag.contains(" on") && !tag.contains("javascript:"), "{hostile} → {html}");
            }
        }
        let code = sanitized(&app::markdown::to_html("```rust\nfn main() {}\n```"));
        assert!(code.contains("class=\"language-rust\""), "{code}");
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_764_000_000_000), "2025-11-24");
    }
}
