//! The message list (`role="log"`, name `Conversation`) and its bubbles.

use leptos::prelude::*;

use super::state::{Attachment, Chat, Message};
use crate::model::{human_size, Role};

/// The conversation log with the typing indicator under it.
#[component]
pub fn Conversation(chat: Chat) -> impl IntoView {
    view! {
        <div class="log" role="log" aria-label="Conversation" aria-live="polite">
            <Show when=move || chat.messages.with(Vec::is_empty)>
                <div class="empty">
                    <h1>"Ask Gemini about your files"</h1>
                    <p>"Attach photos, PDFs, audio, video or text, then ask a question."</p>
                </div>
            </Show>
            <For each=move || chat.messages.get() key=|m| m.id let:message>
                <MessageView message chat/>
            </For>
            <Show when=move || chat.typing.get()>
                <div class="typing" role="status" aria-label="Gemini is typing">
                    <span class="dots" aria-hidden="true"><i></i><i></i><i></i></span>
                    "Gemini is typing…"
                </div>
            </Show>
        </div>
    }
}

#[component]
fn MessageView(message: Message, chat: Chat) -> impl IntoView {
    let status = message.status.clone();
    let text = message.text.clone();
    let error = message.error.clone();
    let role = message.role;
    let retry_message = message.clone();
    let attachments = message.attachments.clone();
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
                    })}
                <div class="text">{move || text.get()}</div>
            </div>
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

fn attachment_view(attachment: Attachment) -> impl IntoView {
    let Attachment { name, mime_type, size, preview, .. } = attachment;
    let label = format!("{name} · {}", human_size(size));
    move || match preview.get() {
        Some(src) => view! {
            <img class="preview" data-testid="attachment-preview" src=src alt=name.clone() title=label.clone()/>
        }
        .into_any(),
        None => view! {
            <span class="chip" data-testid="attachment-chip" title=mime_type.clone()>
                <span class="chip-icon" data-kind=kind_of(&mime_type) aria-hidden="true">{badge_for(&name)}</span>
                <span class="chip-name">{name.clone()}</span>
                <span class="chip-size">{human_size(size)}</span>
            </span>
        }
        .into_any(),
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
        .filter(|ext| !ext.is_empty() && ext.len() <= 4 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .map(str::to_ascii_uppercase)
        .unwrap_or_else(|| "FILE".into())
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
            message.status.set(super::state::Status::Pending);
            leptos::task::spawn_local(crate::browser::turn::run(chat, message));
        } else {
            chat.remove(message.id);
            leptos::task::spawn_local(crate::browser::turn::ask(chat));
        }
    }
}
