//! The page's icons: one component, each icon's lines drawn once (24×24, stroked in the text's
//! colour, hidden from assistive technology — the button around an icon carries its name).

use leptos::prelude::*;

/// Which icon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glyph {
    /// Three lines: show the conversations.
    Menu,
    /// A plus: a new chat.
    Plus,
    /// An arrow down into a tray: export.
    Export,
    /// An arrow up from a tray: import.
    Import,
    /// A bin: delete.
    Trash,
    /// A paperclip: attach files.
    Paperclip,
    /// A crescent: the theme.
    Moon,
    /// A circling arrow: regenerate.
    Regenerate,
    /// A pen: edit.
    Edit,
    /// Three linked dots: share.
    Share,
}

impl Glyph {
    /// The icon's SVG path data, one entry per `<path>`.
    fn paths(self) -> &'static [&'static str] {
        match self {
            Glyph::Menu => &["M4 6h16M4 12h16M4 18h16"],
            Glyph::Plus => &["M12 5v14M5 12h14"],
            Glyph::Export => &["M12 3v12M7 10l5 5 5-5M5 21h14"],
            Glyph::Import => &["M12 21V9M7 14l5-5 5 5M5 3h14"],
            Glyph::Trash => &["M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"],
            Glyph::Paperclip => &[
                "M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48",
            ],
            Glyph::Moon => &["M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8Z"],
            Glyph::Regenerate => &["M21 12a9 9 0 1 1-3-6.7L21 8", "M21 3v5h-5"],
            Glyph::Edit => &["M12 20h9", "M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4Z"],
            Glyph::Share => &[
                "M18 8a3 3 0 1 0 0-6 3 3 0 0 0 0 6ZM6 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6ZM18 22a3 3 0 1 0 0-6 3 3 0 0 0 0 6Z",
                "M8.6 13.5l6.8 4M15.4 6.5l-6.8 4",
            ],
        }
    }
}

/// An icon `size` pixels square (18 by default).
#[component]
pub fn Icon(glyph: Glyph, #[prop(default = 18)] size: u32) -> impl IntoView {
    view! {
        <svg
            aria-hidden="true"
            viewBox="0 0 24 24"
            width=size
            height=size
            fill="none"
            stroke="currentColor"
            stroke-width="2"
            stroke-linecap="round"
            stroke-linejoin="round"
        >
            {glyph.paths().iter().map(|d| view! { <path d=*d /> }).collect_view()}
        </svg>
    }
}
