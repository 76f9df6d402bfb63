//! The code blocks of a shared page coloured on the server (the page runs no script): each
//! `<pre><code class="language-x">` that `ammonia` left, when `syntect` knows `x`, gets its
//! text as `<span class="hl-…">`s, styled by [`css`] (GitHub's light colours; base16 Ocean's
//! when the reader's system is dark). syntect escapes the text it wraps, and adds nothing but
//! spans with classes: the strict policy of the page still holds (no inline style).
//!
//! At most [`MAX_CODE_BYTES`] of code are coloured per page; the rest stays plain, so a page
//! of code costs a bounded time to render.

use std::sync::OnceLock;

use syntect::{
    highlighting::ThemeSet,
    html::{css_for_theme_with_class_style, ClassStyle, ClassedHTMLGenerator},
    parsing::SyntaxSet,
    util::LinesWithEndings,
};

/// Most bytes of code coloured on one page.
pub const MAX_CODE_BYTES: usize = 64 << 10;

/// The classes' prefix: nothing of the page's own style is named `hl-`.
const STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// How a code block opens after sanitizing (`app::markdown` writes the language as a plain
/// word, and `ammonia` keeps it so).
const OPEN: &str = "<pre><code class=\"language-";
const CLOSE: &str = "</code></pre>";

fn syntaxes() -> &'static SyntaxSet {
    static SYNTAXES: OnceLock<SyntaxSet> = OnceLock::new();
    SYNTAXES.get_or_init(SyntaxSet::load_defaults_newlines)
}

/// The style sheet of the `hl-` classes: light, and dark under `prefers-color-scheme: dark`.
pub fn css() -> &'static str {
    static CSS: OnceLock<String> = OnceLock::new();
    CSS.get_or_init(|| {
        let themes = ThemeSet::load_defaults();
        let sheet = |name: &str| {
            themes
                .themes
                .get(name)
                .and_then(|theme| css_for_theme_with_class_style(theme, STYLE).ok())
                .unwrap_or_default()
        };
        format!(
            "{}\n@media (prefers-color-scheme: dark) {{\n{}\n}}\n",
            sheet("InspiredGitHub"),
            sheet("base16-ocean.dark")
        )
    })
}

/// `html` (already sanitized) with its code blocks coloured while `budget` (bytes of code)
/// lasts; what is coloured is taken from it.
pub fn colour(html: &str, budget: &mut usize) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let block = &rest[at..];
        let Some((language, escaped, length)) = parts(block) else {
            out.push_str(block);
            return out;
        };
        match coloured(language, escaped, budget) {
            Some(spans) => {
                out.push_str(OPEN);
                out.push_str(language);
                out.push_str("\">");
                out.push_str(&spans);
                out.push_str(CLOSE);
            }
            None => out.push_str(&block[..length]),
        }
        rest = &block[length..];
    }
    out.push_str(rest);
    out
}

/// A block's language, its escaped text and its whole length, from its opening on.
fn parts(block: &str) -> Option<(&str, &str, usize)> {
    let after = &block[OPEN.len()..];
    let quote = after.find("\">")?;
    let text = &after[quote + 2..];
    let end = text.find(CLOSE)?;
    Some((&after[..quote], &text[..end], OPEN.len() + quote + 2 + end + CLOSE.len()))
}

/// The spans of `escaped` (HTML text) in `language`; `None` for a language syntect does not
/// know, a name that is not a plain word, or code past the budget.
fn coloured(language: &str, escaped: &str, budget: &mut usize) -> Option<String> {
    if language.is_empty()
        || !language.chars().all(|c| c.is_ascii_alphanumeric() || "+-#_.".contains(c))
    {
        return None;
    }
    let code = html_escape::decode_html_entities(escaped);
    if code.len() > *budget {
        return None;
    }
    let syntax = syntaxes().find_syntax_by_token(language)?;
    let mut spans = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes(), STYLE);
    for line in LinesWithEndings::from(&code) {
        spans.parse_html_for_line_which_includes_newline(line).ok()?;
    }
    *budget -= code.len();
    Some(spans.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_languages_are_coloured_others_and_the_rest_past_the_budget_left_plain() {
        let html = "<p>a</p><pre><code class=\"language-rust\">fn main() { let s = \"&lt;b&gt;\"; }\n</code></pre>\
                    <pre><code class=\"language-nonsense\">x &amp; y\n</code></pre>";
        let mut budget = MAX_CODE_BYTES;
        let out = colour(html, &mut budget);
        assert!(
            out.starts_with("<p>a</p><pre><code class=\"language-rust\"><span class=\"hl-"),
            "{out}"
        );
        assert!(out.contains("&lt;b&gt;") && !out.contains("<b>"), "the text stays escaped: {out}");
        assert!(
            out.ends_with("<pre><code class=\"language-nonsense\">x &amp; y\n</code></pre>"),
            "{out}"
        );
        assert!(budget < MAX_CODE_BYTES);

        let mut none = 3;
        assert_eq!(colour(html, &mut none), html, "past the budget: plain");
        assert!(css().contains(".hl-") && css().contains("prefers-color-scheme: dark"));
    }
}
