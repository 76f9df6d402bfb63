//! The conversations: the list (`nav` named `Conversations`, searchable by title), and the
//! actions on the open one — New chat, Export, Import, Delete conversation (confirmed in an
//! in-page dialog).

use leptos::prelude::*;

use crate::client::state::Chat;

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
                                        #[cfg(feature = "hydrate")]
                                        {
                                            let id = id.clone();
                                            leptos::task::spawn_local(async move {
                                                crate::client::conversations::open(chat, &id).await
                                            });
                                        }
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
                <svg
                    aria-hidden="true"
                    viewBox="0 0 24 24"
                    width="18"
                    height="18"
                    fill="none"
                    stroke="currentColor"
                    stroke-width="2"
                    stroke-linecap="round"
                >
                    <path d="M4 6h16M4 12h16M4 18h16" />
                </svg>
            </button>
            <button
                type="button"
                class="icon-button"
                aria-label="New chat"
                title="New chat"
                disabled=move || !idle()
                on:click=move |_| {
                    sidebar_open.set(false);
                    #[cfg(feature = "hydrate")] crate::client::conversations::start_new(chat);
                }
            >
                <svg
                    aria-hidden="true"
                    viewBox="0 0 24 24"
                    width="18"
                    height="18"
                    fill="none"
                    stroke="currentColor"
                    stroke-width="2"
                    stroke-linecap="round"
                >
                    <path d="M12 5v14M5 12h14" />
                </svg>
            </button>
            <button
                type="button"
                class="icon-button"
                aria-label="Export"
                title="Export conversation (JSON 1.2)"
                disabled=move || !has_messages()
                on:click=move |_| {
                    #[cfg(feature = "hydrate")] crate::client::conversations::export(chat);
                }
            >
                <svg
                    aria-hidden="true"
                    viewBox="0 0 24 24"
                    width="18"
                    height="18"
                    fill="none"
                    stroke="currentColor"
                    stroke-width="2"
                    stroke-linecap="round"
                    stroke-linejoin="round"
                >
                    <path d="M12 3v12M7 10l5 5 5-5M5 21h14" />
                </svg>
            </button>
            <label class="icon-button" title="Import conversation">
                <input
                    class="visually-hidden"
                    type="file"
                    accept="application/json,.json"
                    aria-label="Import conversation"
                    on:change=move |ev| {
                        #[cfg(feature = "hydrate")]
                        {
                            let input: web_sys::HtmlInputElement = event_target(&ev);
                            if let Some(file) = input.files().and_then(|f| f.item(0)) {
                                input.set_value("");
                                leptos::task::spawn_local(
                                    crate::client::conversations::import(chat, file),
                                );
                            }
                        }
                        #[cfg(not(feature = "hydrate"))]
                        let _ = ev;
                    }
                />
                <svg
                    aria-hidden="true"
                    viewBox="0 0 24 24"
                    width="18"
                    height="18"
                    fill="none"
                    stroke="currentColor"
                    stroke-width="2"
                    stroke-linecap="round"
                    stroke-linejoin="round"
                >
                    <path d="M12 21V9M7 14l5-5 5 5M5 3h14" />
                </svg>
            </label>
            <button
                type="button"
                class="icon-button danger"
                aria-label="Delete conversation"
                title="Delete conversation"
                disabled=move || !has_messages() || !idle()
                on:click=move |_| confirming.set(true)
            >
                <svg
                    aria-hidden="true"
                    viewBox="0 0 24 24"
                    width="18"
                    height="18"
                    fill="none"
                    stroke="currentColor"
                    stroke-width="2"
                    stroke-linecap="round"
                    stroke-linejoin="round"
                >
                    <path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3" />
                </svg>
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
                        "It is removed from this browser. Files stay on Gemini until they expire."
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
                                #[cfg(feature = "hydrate")]
                                leptos::task::spawn_local(
                                    crate::client::conversations::delete(
                                        chat,
                                        chat.id.get_untracked(),
                                    ),
                                );
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
