//! The composer: message box, attach, pending attachments, Send / Stop.

use leptos::prelude::*;

use super::icon::{Glyph, Icon};

use crate::client::{
    actions,
    labels::{badge_for, kind_of},
    state::{Chat, PendingAttachment},
};
use crate::model::{accept_attribute, human_size};

/// Message box, attachments and Send (Stop while an answer streams). Enter sends;
/// Shift+Enter inserts a newline; Esc stops the answer; pasting an image attaches it.
#[component]
pub fn Composer(
    chat: Chat,
    info: OnceResource<Result<crate::model::SiteInfo, crate::error::AppError>>,
) -> impl IntoView {
    let draft = chat.draft;
    let pending = chat.pending;
    // Whatever was typed or picked before the wasm took over is kept, not lost.
    actions::wire_composer(chat, draft);
    let can_send = move || {
        !chat.busy.get() && (!draft.with(|d| d.trim().is_empty()) || !pending.with(Vec::is_empty))
    };
    let send = move || {
        if can_send() {
            actions::send(chat, draft);
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
            <super::DismissibleAlert
                message=chat.notice
                class="notice"
                sign_in=chat.sign_in_offer
            />
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
                        on:change=move |ev| actions::attach_picked(&ev, chat)
                    />
                    <Icon glyph=Glyph::Paperclip size=22 />
                </label>
                <textarea
                    aria-label="Message"
                    placeholder="Ask about your files…"
                    rows="1"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                    on:paste=move |ev| actions::attach_pasted(&ev, chat)
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
