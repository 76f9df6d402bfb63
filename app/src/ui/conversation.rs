//! The message list (`role="log"`, name `Conversation`) and its bubbles.

use leptos::prelude::*;

use super::icon::{Glyph, Icon};

use crate::client::{
    actions,
    labels::{badge_for, kind_of},
    state::{Attachment, Chat, Message, Progress, Status, MESSAGES_SHOWN},
};
use crate::model::{human_size, Role};

/// The conversation log with the typing indicator under it.
#[component]
pub fn Conversation(chat: Chat) -> impl IntoView {
    let log = NodeRef::<leptos::html::Div>::new();
    // Follows the conversation: a new message always scrolls to the end; a growing answer or
    // an alert does when the person is already near the end (so reading back is not undone).
    let seen = StoredValue::new(0usize);
    Effect::new(move |_| {
        let count = chat.messages.with(Vec::len);
        chat.messages.with(|m| {
            if let Some(last) = m.last() {
                last.text.track();
                last.error.track();
                last.status.track();
            }
        });
        chat.typing.track();
        chat.storage_error.track();
        if let Some(el) = log.get() {
            let near_end = el.scroll_height() - el.scroll_top() - el.client_height() < 160;
            if count != seen.get_value() || near_end {
                // After this update is painted, so that the new height counts.
                request_animation_frame(move || el.set_scroll_top(el.scroll_height()));
            }
            seen.set_value(count);
        }
    });
    view! {
        <div class="log" role="log" aria-label="Conversation" aria-live="polite" node_ref=log>
            <Show when=move || chat.messages.with(Vec::is_empty)>
                <div class="empty">
                    <h1>"Ask Gemini about your files"</h1>
                    <p>"Attach photos, PDFs, audio, video or text, then ask a question."</p>
                </div>
            </Show>
            <Show when=move || { chat.first_shown.get() > 0 }>
                <button
                    type="button"
                    class="action earlier"
                    on:click=move |_| show_earlier(chat, log)
                >
                    {move || {
                        let hidden = chat.first_shown.get().min(chat.messages.with(Vec::len));
                        format!("Show earlier messages ({hidden} more)")
                    }}
                </button>
            </Show>
            {move || {
                chat.summary
                    .get()
                    .map(|summary| {
                        view! {
                            <div class="summary-note" role="note">
                                <details>
                                    <summary>
                                        {format!(
                                            "Earlier messages summarized (the first {} messages are sent as this summary)",
                                            summary.turns,
                                        )}
                                    </summary>
                                    <p class="summary-text">{summary.text}</p>
                                </details>
                            </div>
                        }
                    })
            }}
            <For
                each=move || {
                    let first = chat.first_shown.get();
                    chat.messages.with(|m| m[first.min(m.len())..].to_vec())
                }
                key=|m| m.id
                let:message
            >
                <MessageView message chat />
            </For>
            <Show when=move || chat.typing.get()>
                <div class="typing" role="status" aria-label="Gemini is typing">
                    <span class="dots" aria-hidden="true">
                        <i></i>
                        <i></i>
                        <i></i>
                    </span>
                    "Gemini is typing…"
                </div>
            </Show>
        </div>
    }
}

/// Renders up to [`MESSAGES_SHOWN`] more of the older messages, keeping what the person was
/// looking at where it was.
fn show_earlier(chat: Chat, log: NodeRef<leptos::html::Div>) {
    let from_end = log.get_untracked().map(|el| el.scroll_height() - el.scroll_top());
    chat.first_shown.update(|first| *first = first.saturating_sub(MESSAGES_SHOWN));
    if let (Some(el), Some(from_end)) = (log.get_untracked(), from_end) {
        request_animation_frame(move || el.set_scroll_top(el.scroll_height() - from_end));
    }
}

#[component]
fn MessageView(message: Message, chat: Chat) -> impl IntoView {
    let id = message.id;
    let status = message.status.clone();
    let text = message.text.clone();
    let error = message.error.clone();
    let stopped = message.stopped.clone();
    let role = message.role;
    let retry_message = message.clone();
    let edit_message = message.clone();
    let attachments = message.attachments.clone();
    let editing = RwSignal::new(false);
    let edit_draft = RwSignal::new(String::new());
    let rendered = NodeRef::<leptos::html::Div>::new();
    actions::highlight_when_done(text.clone(), status.clone(), rendered);
    let body = {
        let text = text.clone();
        move || {
            let text = text.clone();
            match role {
                // Answers are Markdown, sanitized: nothing in them can run.
                Role::Model => view! {
                    <div
                        class="text markdown"
                        node_ref=rendered
                        inner_html=move || text.with(|t| actions::render_answer(t))
                    ></div>
                }
                .into_any(),
                Role::User => view! { <div class="text">{move || text.get()}</div> }.into_any(),
            }
        }
    };
    let idle = move || !chat.busy.get();
    let status_for_actions = status.clone();
    let actions = move || {
        let settled =
            matches!(status_for_actions.get(), Status::Done | Status::Error | Status::Sent);
        match role {
            Role::Model
                if status_for_actions.get() == Status::Done && idle() && chat.is_last(id) =>
            {
                Some(
                    view! {
                        <div class="actions">
                            <button
                                type="button"
                                class="action"
                                on:click=move |_| actions::regenerate(chat, id)
                            >
                                <Icon glyph=Glyph::Regenerate size=15 />
                                "Regenerate"
                            </button>
                        </div>
                    }
                    .into_any(),
                )
            }
            Role::User if settled && idle() && !editing.get() => {
                let text = text.clone();
                Some(
                    view! {
                        <div class="actions">
                            <button
                                type="button"
                                class="action"
                                on:click=move |_| {
                                    edit_draft.set(text.get_untracked());
                                    editing.set(true);
                                }
                            >
                                <Icon glyph=Glyph::Edit size=15 />
                                "Edit"
                            </button>
                        </div>
                    }
                    .into_any(),
                )
            }
            _ => None,
        }
    };
    view! {
        <article
            class="message"
            data-role=role.as_str()
            data-status=move || status.get().as_str()
            aria-label=if role == Role::User { "You" } else { "Gemini" }
        >
            <div class="bubble">
                {(!attachments.is_empty())
                    .then(|| {
                        view! {
                            <div class="attachments">
                                {attachments.into_iter().map(attachment_view).collect_view()}
                            </div>
                        }
                    })} <Show when=move || editing.get() fallback=body.clone()>
                    <form
                        class="edit"
                        on:submit={
                            let edit_message = edit_message.clone();
                            move |ev| {
                                ev.prevent_default();
                                editing.set(false);
                                actions::resend_edited(
                                    chat,
                                    edit_message.clone(),
                                    edit_draft.get_untracked(),
                                );
                            }
                        }
                    >
                        <textarea
                            aria-label="Edit message"
                            prop:value=move || edit_draft.get()
                            on:input=move |ev| edit_draft.set(event_target_value(&ev))
                        ></textarea>
                        <div class="edit-buttons">
                            <button
                                type="button"
                                class="action"
                                on:click=move |_| editing.set(false)
                            >
                                "Cancel"
                            </button>
                            <button
                                type="submit"
                                class="send"
                                disabled=move || edit_draft.with(|d| d.trim().is_empty())
                            >
                                "Save and send"
                            </button>
                        </div>
                    </form>
                </Show> <Show when=move || stopped.get()>
                    <p class="stopped">"Stopped"</p>
                </Show>
            </div>
            {
                let (usage, status) = (message.usage.clone(), message.status.clone());
                move || {
                    usage
                        .get()
                        .filter(|_| status.get() == Status::Done)
                        .map(|u| view! { <p class="usage">{u.line()}</p> })
                }
            }
            {actions}
            {move || {
                error
                    .get()
                    .map(|sentence| {
                        let retry_message = retry_message.clone();
                        view! {
                            <div class="alert" role="alert">
                                <span>{sentence}</span>
                                <button
                                    type="button"
                                    class="retry"
                                    on:click=move |_| actions::retry(chat, retry_message.clone())
                                >
                                    "Retry"
                                </button>
                            </div>
                        }
                    })
            }}
        </article>
    }
}

fn attachment_view(attachment: Attachment) -> impl IntoView {
    let progress = attachment.progress.clone();
    let name = attachment.name.clone();
    view! {
        <div class="attachment">
            {file_view(attachment)}
            {move || {
                progress
                    .get()
                    .map(|p| {
                        let (percent, label) = match p {
                            Progress::Sending(n) => (n, format!("Uploading {name}")),
                            Progress::Processing => (100, format!("Processing {name}")),
                        };
                        let text = match p {
                            Progress::Sending(n) => format!("Uploading… {n}%"),
                            Progress::Processing => "Processing…".to_string(),
                        };
                        view! {
                            <div class="upload-progress">
                                <progress
                                    max="100"
                                    value=percent
                                    aria-valuenow=percent
                                    aria-label=label
                                ></progress>
                                <span>{text}</span>
                            </div>
                        }
                    })
            }}
        </div>
    }
}

fn file_view(attachment: Attachment) -> impl IntoView {
    let Attachment { name, mime_type, size, preview, expired, .. } = attachment;
    let label = format!("{name} · {}", human_size(size));
    let size_text = if size > 0 { human_size(size) } else { String::new() };
    move || {
        match preview.get() {
        _ if expired.get() => view! {
            <span class="chip expired" data-testid="attachment-chip">
                <span class="chip-name">{crate::model::EXPIRED_CONTENT}</span>
                <span class="expired-note" role="note">
                    {format!(
                        "“{name}” expired on Gemini and can no longer be used in this conversation.",
                    )}
                </span>
            </span>
        }
        .into_any(),
        Some(src) => view! {
            <img
                class="preview"
                data-testid="attachment-preview"
                src=src
                alt=name.clone()
                title=label.clone()
            />
        }
        .into_any(),
        None => view! {
            <span class="chip" data-testid="attachment-chip" title=mime_type.clone()>
                <span class="chip-icon" data-kind=kind_of(&mime_type) aria-hidden="true">
                    {badge_for(&name)}
                </span>
                <span class="chip-name">{name.clone()}</span>
                <span class="chip-size">{size_text.clone()}</span>
            </span>
        }
        .into_any(),
    }
    }
}
