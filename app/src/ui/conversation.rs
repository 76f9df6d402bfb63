//! The message list (`role="log"`, name `Conversation`) and its bubbles.

use leptos::prelude::*;

use crate::client::state::{Attachment, Chat, Message, Progress, Status, MESSAGES_SHOWN};
use crate::model::{human_size, Role};

/// An answer's Markdown as HTML for the page: rendered safe by construction, then cleaned by
/// DOMPurify in the browser. (Answers are never rendered on the server; there it is text.)
fn render_answer(markdown: &str) -> String {
    #[cfg(feature = "hydrate")]
    return crate::browser::sanitize::clean(&crate::markdown::to_html(markdown), markdown);
    #[cfg(not(feature = "hydrate"))]
    format!("<p>{}</p>", crate::markdown::escape(markdown))
}

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
    // A finished answer's code blocks are coloured (highlight.js, loaded on first need).
    #[cfg(feature = "hydrate")]
    {
        let (text, status) = (text.clone(), status.clone());
        Effect::new(move |_| {
            text.track();
            if status.get() == Status::Done {
                if let Some(el) = rendered.get() {
                    request_animation_frame(move || {
                        crate::browser::highlight::highlight_within(&el)
                    });
                }
            }
        });
    }
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
                        inner_html=move || text.with(|t| render_answer(t))
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
            Role::Model if status_for_actions.get() == Status::Done && idle() && chat.is_last(id) => Some(
                view! {
                    <div class="actions">
                        <button type="button" class="action" on:click=move |_| regenerate(chat, id)>
                            <svg
                                aria-hidden="true"
                                viewBox="0 0 24 24"
                                width="15"
                                height="15"
                                fill="none"
                                stroke="currentColor"
                                stroke-width="2"
                                stroke-linecap="round"
                                stroke-linejoin="round"
                            >
                                <path d="M21 12a9 9 0 1 1-3-6.7L21 8" />
                                <path d="M21 3v5h-5" />
                            </svg>
                            "Regenerate"
                        </button>
                    </div>
                }
                .into_any(),
            ),
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
                                <svg
                                    aria-hidden="true"
                                    viewBox="0 0 24 24"
                                    width="15"
                                    height="15"
                                    fill="none"
                                    stroke="currentColor"
                                    stroke-width="2"
                                    stroke-linecap="round"
                                    stroke-linejoin="round"
                                >
                                    <path d="M12 20h9" />
                                    <path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4Z" />
                                </svg>
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
                                resend_edited(
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
                                    on:click=move |_| retry(chat, retry_message.clone())
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

/// Drops the last answer and asks again.
fn regenerate(chat: Chat, id: u64) {
    if chat.busy.get_untracked() {
        return;
    }
    chat.remove(id);
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(crate::client::turn::ask(chat));
}

/// Replaces a user message's text, forgets everything after it, and sends it again (its
/// files are already uploaded and are not sent twice).
fn resend_edited(chat: Chat, message: Message, text: String) {
    if chat.busy.get_untracked() || text.trim().is_empty() {
        return;
    }
    message.text.set(text.trim_end().to_string());
    message.raw.set_value(None);
    message.error.set(None);
    chat.truncate_after(message.id);
    message.status.set(Status::Pending);
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(crate::client::turn::run(chat, message));
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

/// The family of a MIME type, for styling a file badge: `image`, `audio`, `video`, `pdf`,
/// `text` or `file`.
pub fn kind_of(mime_type: &str) -> &'static str {
    match mime_type.split('/').next().unwrap_or("") {
        "image" => "image",
        "audio" => "audio",
        "video" => "video",
        "text" => "text",
        _ if mime_type == "application/pdf" => "pdf",
        _ => "file",
    }
}

/// A file badge's label: the name's extension, upper-cased, at most 4 characters
/// (`report.pdf` → `PDF`), else `FILE`.
pub fn badge_for(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| {
            !ext.is_empty() && ext.len() <= 4 && ext.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| "FILE".into())
}

/// Retries a failed message: re-sends a user turn (its uploads included), or asks again
/// for a failed answer.
fn retry(chat: Chat, message: Message) {
    if chat.busy.get_untracked() {
        return;
    }
    message.error.set(None);
    #[cfg(feature = "hydrate")]
    {
        if message.role == Role::User {
            message.status.set(Status::Pending);
            leptos::task::spawn_local(crate::client::turn::run(chat, message));
        } else {
            chat.remove(message.id);
            leptos::task::spawn_local(crate::client::turn::ask(chat));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges() {
        assert_eq!(badge_for("report.pdf"), "PDF");
        assert_eq!(badge_for("clip.webm"), "WEBM");
        assert_eq!(badge_for("archive.tar.gz"), "GZ");
        assert_eq!(badge_for("README"), "FILE");
        assert_eq!(badge_for("weird.extension"), "FILE");
        assert_eq!(kind_of("application/pdf"), "pdf");
        assert_eq!(kind_of("image/heic"), "image");
    }
}
