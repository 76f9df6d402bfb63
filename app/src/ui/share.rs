//! Sharing by link: `Share` on the open conversation (a dialog making or updating its link,
//! with `Include images`, `Link preview`, the link and `Copy link`), and `Shared links` (each
//! link with `Revoke`).

use leptos::prelude::*;

use super::{
    icon::{Glyph, Icon},
    listing::listing,
};
use crate::client::{
    actions::{self, LinkState, LinksState},
    state::Chat,
};

/// The link's full address, as it is shared.
fn address(path: &str) -> String {
    #[cfg(feature = "hydrate")]
    if let Some(origin) = web_sys::window().and_then(|w| w.location().origin().ok()) {
        return format!("{origin}{path}");
    }
    path.to_string()
}

/// `Share`, and its dialog.
#[component]
pub fn ShareButton(chat: Chat) -> impl IntoView {
    let open = RwSignal::new(false);
    let include_images = RwSignal::new(true);
    let link_preview = RwSignal::new(false);
    let made: LinkState = RwSignal::new(None);
    let links: LinksState = RwSignal::new(None);
    // The open conversation's link, made now or before.
    let current = move || {
        made.get().and_then(Result::ok).or_else(|| {
            let id = chat.id.get();
            links.get().and_then(Result::ok)?.into_iter().find(|l| l.conversation == id)
        })
    };
    let busy = RwSignal::new(false);
    Effect::new(move |_| {
        if made.with(Option::is_some) {
            busy.set(false);
        }
    });
    view! {
        <Show when=move || chat.sharing.get()>
            <button
                type="button"
                class="icon-button"
                aria-label="Share"
                title="Share by link"
                disabled=move || chat.messages.with(Vec::is_empty) || chat.busy.get()
                on:click=move |_| {
                    made.set(None);
                    links.set(None);
                    open.set(true);
                    actions::load_links(links);
                }
            >
                <Icon glyph=Glyph::Share />
            </button>
        </Show>
        <Show when=move || open.get()>
            <div class="dialog share" role="dialog" aria-label="Share">
                <div class="dialog-head">
                    <h2>"Share this conversation"</h2>
                    <button type="button" class="action" on:click=move |_| open.set(false)>
                        "Close"
                    </button>
                </div>
                <p>
                    "Anyone with the link sees the conversation as it is now; later messages are not included. Its files are not shared."
                </p>
                <label class="check">
                    <input
                        type="checkbox"
                        prop:checked=move || include_images.get()
                        on:change=move |ev| include_images.set(event_target_checked(&ev))
                    />
                    "Include images"
                </label>
                <label class="check">
                    <input
                        type="checkbox"
                        prop:checked=move || link_preview.get()
                        on:change=move |ev| link_preview.set(event_target_checked(&ev))
                    />
                    "Link preview"
                </label>
                {move || {
                    made.get()
                        .and_then(Result::err)
                        .map(|sentence| {
                            view! {
                                <div class="alert" role="alert">
                                    {sentence}
                                </div>
                            }
                        })
                }}
                <div class="dialog-buttons">
                    <button
                        type="button"
                        class="send"
                        disabled=move || busy.get()
                        on:click=move |_| {
                            busy.set(true);
                            let token = current().map(|l| l.token);
                            actions::share(
                                chat,
                                token,
                                include_images.get_untracked(),
                                link_preview.get_untracked(),
                                made,
                            );
                        }
                    >
                        {move || if current().is_some() { "Update link" } else { "Create link" }}
                    </button>
                </div>
                {move || {
                    current()
                        .map(|link| {
                            let url = address(&link.path());
                            let copied = url.clone();
                            view! {
                                <div class="share-link">
                                    <input type="text" readonly aria-label="Link" prop:value=url />
                                    <button
                                        type="button"
                                        class="action"
                                        on:click=move |_| actions::copy_text(copied.clone())
                                    >
                                        "Copy link"
                                    </button>
                                </div>
                            }
                        })
                }}
            </div>
        </Show>
    }
}

/// `Shared links`: the person's links, each with `Revoke`.
#[component]
pub fn SharedLinks(chat: Chat) -> impl IntoView {
    let links: LinksState = RwSignal::new(None);
    listing(
        "Shared links",
        "No shared links.",
        move || chat.sharing.get(),
        links,
        actions::load_links,
        move |link| {
            let token = link.token.clone();
            let path = link.path();
            view! {
                <li>
                    <a class="deleted-title" href=path.clone() target="_blank" rel="noreferrer">
                        {link.title.clone()}
                    </a>
                    <span class="muted">{address(&path)}</span>
                    <button
                        type="button"
                        class="action"
                        on:click=move |_| actions::revoke_link(token.clone(), links)
                    >
                        "Revoke"
                    </button>
                </li>
            }
        },
    )
}
