//! Answers as HTML: CommonMark (with tables, strikethrough and task lists) rendered by
//! pulldown-cmark, safe by construction, then cleaned in the browser by DOMPurify
//! (`crate::browser`'s `sanitize`, in the browser build: the well-kept sanitizer that uses the
//! browser's own parser). Two layers, so that nothing in an answer can run: no `<script>`, no event
//! handler, no `javascript:` URL, no `<iframe>`, no inline style.
//!
//! What this module guarantees on its own:
//! * raw HTML inside the Markdown is shown as text, not interpreted (a model quoting
//!   `<img onerror=…>` means to show it);
//! * link targets keep only `http:`, `https:`, `mailto:` and relative URLs; others become `#`;
//! * images become links to their source (an answer cannot make the browser fetch a URL);
//! * a fenced code block's language becomes `class="language-x"` only when it is a plain word.

use pulldown_cmark::{html, CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

/// Longest answer rendered as Markdown, bytes (1 MiB); anything beyond is shown as text.
pub const MAX_MARKDOWN_BYTES: usize = 1024 * 1024;

/// `markdown` as HTML that carries nothing runnable (before DOMPurify cleans it again).
pub fn to_html(markdown: &str) -> String {
    if markdown.len() > MAX_MARKDOWN_BYTES {
        return format!("<p>{}</p>", escape(markdown));
    }
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        // Raw HTML in an answer is text to show, not markup to obey.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))) => {
            let token: String =
                lang.split_whitespace().next().unwrap_or("").chars().take(20).collect();
            let plain = token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#'));
            let lang = if plain { token } else { String::new() };
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang.into())))
        }
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        // An image is offered as a link to its source: loading it would tell a third party
        // that the answer was read.
        Event::Start(Tag::Image { dest_url, title, id, .. }) => Event::Start(Tag::Link {
            link_type: LinkType::Inline,
            dest_url: safe_url(dest_url),
            title,
            id,
        }),
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events);
    // Text is escaped, so `<a href=` only starts real links: they open in a new tab.
    out.replace("<a href=", r#"<a target="_blank" rel="noopener noreferrer" href="#)
}

/// `url` when its scheme is `http`, `https` or `mailto` (or it has none), else `#`.
fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let trimmed: String =
        url.chars().filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control()).collect();
    let scheme = trimmed.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    let has_scheme = scheme.as_ref().is_some_and(|s| !s.contains(['/', '?', '#']));
    match scheme {
        Some(s) if has_scheme && !matches!(s.as_str(), "http" | "https" | "mailto") => {
            CowStr::Borrowed("#")
        }
        _ => url,
    }
}

/// `text` with `&`, `<`, `>` and `"` escaped.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders() {
        let html = to_html(
            "# Title\n\n**bold** and `code`\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |",
        );
        for needle in [
            "<h1>Title</h1>",
            "<strong>bold</strong>",
            "<code>code</code>",
            "<li>a</li>",
            "<table>",
            "<td>1</td>",
        ] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
        let code = to_html("```rust\nfn main() {}\n```");
        assert!(code.contains(r#"<code class="language-rust">fn main() {}"#), "{code}");
        let odd = to_html("```\"><script>\nx\n```");
        assert!(odd.contains("<pre><code>"), "{odd}");
    }

    #[test]
    fn nothing_in_an_answer_can_run() {
        let attacks = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click](java\tscript:alert(1))",
            "[click](  javascript:alert(1))",
            "![x](javascript:alert(1))",
            "![x](https://tracker.example/pixel.png)",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://example.com\"></iframe>",
            "<svg onload=alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "[x](vbscript:msgbox(1))",
            "```\"><script>alert(1)</script>\n```",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
            "[x](https://ok.example \"title\\\" onmouseover=\\\"alert(1)\")",
        ];
        for attack in attacks {
            let html = to_html(attack).to_ascii_lowercase();
            // Text is escaped, so every `<` left opens a real tag: check each one.
            for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
                let name = tag.split_whitespace().next().unwrap_or("");
                assert!(
                    !["script", "iframe", "svg", "img", "object", "embed", "style"].contains(&name),
                    "{attack} → {html}"
                );
                let attrs = tag.split_whitespace().skip(1).collect::<Vec<_>>().join(" ");
                // Attribute values are quoted: an `on…=` outside quotes would be a handler.
                let unquoted: String = attrs.split('"').step_by(2).collect();
                assert!(
                    !unquoted.contains(" on") && !unquoted.starts_with("on"),
                    "{attack} → {html}"
                );
                assert!(
                    !tag.contains("javascript:")
                        && !tag.contains("style=")
                        && !tag.contains("data:"),
                    "{attack} → {html}"
                );
                assert!(!tag.contains("vbscript:"), "{attack} → {html}");
            }
        }
        // Raw HTML is shown, not dropped.
        assert!(to_html("<b>hi</b>").contains("&lt;b&gt;hi&lt;/b&gt;"));
    }

    #[test]
    fn links_are_kept_and_open_in_a_new_tab() {
        let html = to_html("[docs](https://ai.google.dev) and [mail](mailto:a@b.c) and [rel](/x)");
        assert!(html.contains(r#"href="https://ai.google.dev""#), "{html}");
        assert!(html.contains(r#"href="mailto:a@b.c""#) && html.contains(r#"href="/x""#), "{html}");
        assert!(
            html.contains(r#"rel="noopener noreferrer""#) && html.contains(r#"target="_blank""#),
            "{html}"
        );
        assert!(to_html("[x](javascript:alert(1))").contains(r##"href="#""##));
    }

    #[test]
    fn huge_answers_are_text() {
        let huge = "<b>x</b>".repeat(MAX_MARKDOWN_BYTES / 8 + 1);
        assert!(to_html(&huge).starts_with("<p>&lt;b&gt;"));
    }
}
