//! The composer: message box, attach, pending attachments, Send / Stop.

use leptos::prelude::*;

use super::conversation::{badge_for, kind_of};
#[cfg(feature = "hydrate")]
use crate::client::state::Message;
use crate::client::state::{Attachment, Chat, PendingAttachment};
use crate::model::{accept_attribute, human_size};

/// Message box, attachments and Send (Stop while an answer streams). Enter sends;
/// Shift+Enter inserts a newline; Esc stops the answer; pasting an image attaches it.
#[component]
pub fn Composer(
    chat: Chat,
    info: OnceResource<Result<crate::model::SiteInfo, crate::error::AppError>>,
) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let pending = chat.pending;
    // Whatever was typed or picked before the wasm took over is kept, not lost: read now,
    // before hydration touches the DOM, and applied once the view is hydrated (changing the
    // view's state earlier would make it differ from the server's HTML).
    #[cfg(feature = "hydrate")]
    {
        let early = send_wrapper::SendWrapper::new(crate::client::attach::pre_hydration_input());
        Effect::new(move |_| early.apply(draft, chat));
        let esc = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && chat.answering.get_untracked() {
                chat.stop();
            }
        });
        on_cleanup(move || esc.remove());
    }
    let can_send = move || {
        !chat.busy.get() && (!draft.with(|d| d.trim().is_empty()) || !pending.with(Vec::is_empty))
    };
    let send = move || {
        if can_send() {
            send(chat, draft);
        }
    };
    view! {
        <form
            class="composer"
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <super::DismissibleAlert message=chat.notice class="notice" />
            <Show when=move || pending.with(|p| !p.is_empty())>
                <ul class="pending-list" aria-label="Attachments to send">
                    <For each=move || pending.get() key=|p| p.id let:item>
                        <PendingView item pending />
                    </For>
                </ul>
            </Show>
            <div class="composer-row">
                <label class="attach" title="Attach files">
                    <input
                        class="visually-hidden"
                        type="file"
                        multiple
                        accept=accept_attribute()
                        aria-label="Attach files"
                        on:change=move |ev| {
                            #[cfg(feature = "hydrate")]
                            crate::client::attach::from_input(&ev, chat);
                            #[cfg(not(feature = "hydrate"))]
                            let _ = ev;
                        }
                    />
                    <svg
                        aria-hidden="true"
                        viewBox="0 0 24 24"
                        width="22"
                        height="22"
                        fill="none"
                        stroke="currentColor"
                        stroke-width="2"
                        stroke-linecap="round"
                        stroke-linejoin="round"
                    >
                        <path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48" />
                    </svg>
                </label>
                <textarea
                    aria-label="Message"
                    placeholder="Ask about your files…"
                    rows="1"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:paste=move |ev| {
                        #[cfg(feature = "hydrate")] crate::client::attach::from_paste(&ev, chat);
                        #[cfg(not(feature = "hydrate"))]
                        let _ = ev;
                    }
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                            ev.prevent_default();
                            send();
                        }
                    }
                ></textarea>
                <Show
                    when=move || chat.answering.get()
                    fallback=move || {
                        view! {
                            <button type="submit" class="send" disabled=move || !can_send()>
                                "Send"
                            </button>
                        }
                    }
                >
                    <button
                        type="button"
                        class="send stop"
                        title="Stop (Esc)"
                        on:click=move |_| chat.stop()
                    >
                        "Stop"
                    </button>
                </Show>
            </div>
            <super::settings::ConversationSettings chat info />
        </form>
    }
}

#[component]
fn PendingView(
    item: PendingAttachment,
    pending: RwSignal<Vec<PendingAttachment>>,
) -> impl IntoView {
    let id = item.id;
    let preview = item.preview.clone();
    let name = item.name.clone();
    let kind = kind_of(&item.mime_type);
    let badge = badge_for(&item.name);
    view! {
        <li class="pending" data-testid="pending-attachment">
            {move || match preview.get() {
                Some(src) => view! { <img class="thumb" src=src alt="" /> }.into_any(),
                None => {
                    view! {
                        <span class="thumb chip-icon" data-kind=kind aria-hidden="true">
                            {badge.clone()}
                        </span>
                    }
                        .into_any()
                }
            }}
            <span class="pending-name">{item.name.clone()}</span>
            <span class="pending-size">{human_size(item.size)}</span>
            <button
                type="button"
                class="remove"
                aria-label=format!("Remove {name}")
                on:click=move |_| pending.update(|p| p.retain(|x| x.id != id))
            >
                "×"
            </button>
        </li>
    }
}

/// Shows the user's bubble at once (`pending`), clears the composer, and starts the turn.
fn send(chat: Chat, draft: RwSignal<String>) {
    let text = draft.get_untracked();
    let items = chat.pending.get_untracked();
    let attachments: Vec<Attachment> = items
        .iter()
        .map(|p| Attachment {
            name: p.name.clone(),
            mime_type: p.mime_type.clone(),
            size: p.size,
            preview: p.preview.clone(),
            uploaded: ArcRwSignal::new(None),
            expired: ArcRwSignal::new(false),
            progress: ArcRwSignal::new(None),
        })
        .collect();
    chat.pending.set(Vec::new());
    chat.notice.set(None);
    draft.set(String::new());
    #[cfg(feature = "hydrate")]
    {
        let files = items.iter().map(|p| (*p.file).clone()).collect();
        let message = Message::user(text.trim_end().to_string(), attachments, files);
        chat.push(message.clone());
        leptos::task::spawn_local(crate::client::turn::run(chat, message));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (text, attachments);
}
