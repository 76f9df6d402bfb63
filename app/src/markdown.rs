//! Answers as HTML: CommonMark (with tables, strikethrough and task lists) rendered by
//! pulldown-cmark, then cleaned by ammonia, so that nothing in an answer can run: no
//! `<script>`, no event handler, no `javascript:` URL, no `<iframe>`, no inline style.
//!
//! Raw HTML inside the Markdown is shown as text rather than interpreted (a model quoting
//! `<img onerror=…>` means to show it), and ammonia cleans what Markdown itself produced.
//! Fenced code blocks keep their language as `class="language-x"` on `<code>`.

use std::collections::HashSet;

use pulldown_cmark::{html, CodeBlockKind, Event, Options, Parser, Tag};

/// Longest answer rendered as Markdown, bytes (1 MiB); anything beyond is shown as text.
pub const MAX_MARKDOWN_BYTES: usize = 1024 * 1024;

/// `markdown` as safe HTML.
pub fn to_safe_html(markdown: &str) -> String {
    if markdown.len() > MAX_MARKDOWN_BYTES {
        return format!("<p>{}</p>", escape(markdown));
    }
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        // Raw HTML in an answer is text to show, not markup to obey.
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))) => {
            // Only a plain language token survives as a class.
            let token: String = lang.split_whitespace().next().unwrap_or("").chars().take(20).collect();
            let clean = token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#'));
            let lang = if clean { token } else { String::new() };
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang.into())))
        }
        other => other,
    });
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, events);
    sanitizer().clean(&unsafe_html).to_string()
}

/// ammonia's defaults (no scripts, handlers, styles or dangerous URL schemes; links get
/// `rel="noopener noreferrer"`), plus `language-*` classes on `<code>` and task-list
/// checkboxes, and links opening in a new tab.
fn sanitizer() -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::default();
    builder
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .set_tag_attribute_value("input", "disabled", "")
        .add_allowed_classes("code", LANGUAGE_CLASSES.iter().copied())
        .set_tag_attribute_value("a", "target", "_blank")
        .url_schemes(HashSet::from(["http", "https", "mailto"]));
    builder
}

/// The `language-*` classes kept on code blocks.
const LANGUAGE_CLASSES: &[&str] = &[
    "language-bash", "language-c", "language-cpp", "language-csharp", "language-css", "language-diff",
    "language-go", "language-html", "language-java", "language-javascript", "language-js", "language-json",
    "language-kotlin", "language-markdown", "language-php", "language-python", "language-py", "language-ruby",
    "language-rust", "language-sh", "language-shell", "language-sql", "language-swift", "language-toml",
    "language-ts", "language-typescript", "language-xml", "language-yaml",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders() {
        let html = to_safe_html("# Title\n\n**bold** and `code`\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |");
        for needle in ["<h1>Title</h1>", "<strong>bold</strong>", "<code>code</code>", "<li>a</li>", "<table>", "<td>1</td>"] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
        let code = to_safe_html("```rust\nfn main() {}\n```");
        assert!(code.contains(r#"<code class="language-rust">fn main() {}"#), "{code}");
    }

    #[test]
    fn nothing_in_an_answer_can_run() {
        let attacks = [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "![x](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://example.com\"></iframe>",
            "<svg onload=alert(1)>",
            "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
            "```\"><script>alert(1)</script>\n```",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
        ];
        for attack in attacks {
            let html = to_safe_html(attack).to_ascii_lowercase();
            // Text is escaped, so every `<` left opens a real tag: check each one.
            for tag in html.split('<').skip(1).map(|t| t.split('>').next().unwrap_or("")) {
                let name = tag.split_whitespace().next().unwrap_or("");
                assert!(!["script", "iframe", "svg", "object", "embed", "style"].contains(&name), "{attack} → {html}");
                assert!(!tag.split_whitespace().skip(1).any(|attr| attr.starts_with("on")), "{attack} → {html}");
                assert!(!tag.contains("javascript:") && !tag.contains("style=") && !tag.contains("data:"), "{attack} → {html}");
            }
        }
        // Raw HTML is shown, not dropped.
        assert!(to_safe_html("<b>hi</b>").contains("&lt;b&gt;hi&lt;/b&gt;"));
    }

    #[test]
    fn links_are_safe_and_open_in_a_new_tab() {
        let html = to_safe_html("[docs](https://ai.google.dev)");
        assert!(html.contains(r#"href="https://ai.google.dev""#), "{html}");
        assert!(html.contains(r#"rel="noopener noreferrer""#) && html.contains(r#"target="_blank""#), "{html}");
    }

    #[test]
    fn huge_answers_are_text() {
        let huge = "<b>x</b>".repeat(MAX_MARKDOWN_BYTES / 8 + 1);
        let html = to_safe_html(&huge);
        assert!(html.starts_with("<p>&lt;b&gt;"));
    }
}
