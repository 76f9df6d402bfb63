//! The conversations: the list (`nav` named `Conversations`, searchable by title), and the
//! actions on the open one — New chat, Export, Import, Delete conversation (confirmed in an
//! in-page dialog).

use leptos::prelude::*;

use super::icon::{Glyph, Icon};
use super::share::{ShareButton, SharedLinks};
use super::sync::RecentlyDeleted;

use crate::client::{actions, state::Chat};

/// The list of stored conversations, with search.
#[component]
pub fn Sidebar(chat: Chat, open: RwSignal<bool>) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let shown = move || {
        let q = query.get().to_lowercase();
        chat.list
            .get()
            .into_iter()
            .filter(|c| q.is_empty() || c.title.to_lowercase().contains(&q))
            .collect::<Vec<_>>()
    };
    view! {
        <nav class="sidebar" class:open=move || open.get() aria-label="Conversations">
            <input
                class="search"
                type="search"
                placeholder="Search conversations"
                aria-label="Search conversations"
                prop:value=move || query.get()
                on:input=move |ev| query.set(event_target_value(&ev))
            />
            <ul class="conversations">
                <For each=shown key=|c| (c.id.clone(), c.title.clone()) let:item>
                    {
                        let id = item.id.clone();
                        let current = {
                            let id = id.clone();
                            move || (chat.id.get() == id).then_some("page")
                        };
                        view! {
                            <li>
                                <a
                                    href=format!("#{}", item.id)
                                    aria-current=current
                                    on:click=move |ev| {
                                        ev.prevent_default();
                                        open.set(false);
                                        actions::open_conversation(chat, id.clone());
                                    }
                                >
                                    {item.title.clone()}
                                </a>
                            </li>
                        }
                    }
                </For>
            </ul>
            <Show when=move || chat.list.with(Vec::is_empty)>
                <p class="muted">"Your conversations will appear here."</p>
            </Show>
            <RecentlyDeleted chat />
            <SharedLinks chat />
        </nav>
    }
}

/// New chat, Export, Import and Delete conversation.
#[component]
pub fn ConversationActions(chat: Chat, sidebar_open: RwSignal<bool>) -> impl IntoView {
    let confirming = RwSignal::new(false);
    let idle = move || !chat.busy.get();
    let has_messages = move || chat.messages.with(|m| !m.is_empty());
    view! {
        <div class="conversation-actions">
            <button
                type="button"
                class="icon-button menu"
                aria-label="Show conversations"
                aria-expanded=move || sidebar_open.get().to_string()
                on:click=move |_| sidebar_open.update(|o| *o = !*o)
            >
                <Icon glyph=Glyph::Menu />
            </button>
            <button
                type="button"
                class="icon-button"
                aria-label="New chat"
                title="New chat"
                disabled=move || !idle()
                on:click=move |_| {
                    sidebar_open.set(false);
                    actions::start_new(chat);
                }
            >
                <Icon glyph=Glyph::Plus />
            </button>
            <button
                type="button"
                class="icon-button"
                aria-label="Export"
                title="Export conversation (JSON 1.2)"
                disabled=move || !has_messages()
                on:click=move |_| actions::export(chat)
            >
                <Icon glyph=Glyph::Export />
            </button>
            <label class="icon-button" title="Import conversation">
                <input
                    class="visually-hidden"
                    type="file"
                    accept="application/json,.json"
                    aria-label="Import conversation"
                    on:change=move |ev| actions::import_picked(&ev, chat)
                />
                <Icon glyph=Glyph::Import />
            </label>
            <ShareButton chat />
            <button
                type="button"
                class="icon-button danger"
                aria-label="Delete conversation"
                title="Delete conversation"
                disabled=move || !has_messages() || !idle()
                on:click=move |_| confirming.set(true)
            >
                <Icon glyph=Glyph::Trash />
            </button>
            <Show when=move || confirming.get()>
                <div
                    class="dialog"
                    role="alertdialog"
                    aria-modal="true"
                    aria-labelledby="delete-title"
                    aria-describedby="delete-text"
                >
                    <h2 id="delete-title">"Delete this conversation?"</h2>
                    <p id="delete-text">
                        {move || {
                            if chat.account.with(Option::is_some) {
                                "It is removed from all your devices; Recently deleted can restore it for 30 days. Files stay on Gemini until they expire."
                            } else {
                                "It is removed from this browser. Files stay on Gemini until they expire."
                            }
                        }}
                    </p>
                    <div class="dialog-buttons">
                        <button
                            type="button"
                            class="action"
                            on:click=move |_| confirming.set(false)
                        >
                            "Cancel"
                        </button>
                        <button
                            type="button"
                            class="send danger"
                            on:click=move |_| {
                                confirming.set(false);
                                actions::delete_open(chat);
                            }
                        >
                            "Delete"
                        </button>
                    </div>
                </div>
            </Show>
        </div>
    }
}
