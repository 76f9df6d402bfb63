//! Signed in: the `Sync` status in the top bar, the offer of the conversations made signed
//! out on this browser (at the account's first sign-in here), and `Recently deleted`.

use leptos::prelude::*;

use super::listing::{listing, Listed};
use crate::client::{actions, state::Chat};
use crate::sync::DeletedConversation;

/// `role="status"` named `Sync`: `Synced`, `Syncing…`, `Offline — changes will sync` or
/// `Not synced` (with the reason as its title). Nothing signed out.
#[component]
pub fn SyncStatus(chat: Chat) -> impl IntoView {
    move || {
        chat.sync.get().map(|status| {
            let reason = match &status {
                crate::client::state::SyncStatus::Refused(sentence) => sentence.clone(),
                _ => String::new(),
            };
            view! {
                <span class="sync" role="status" aria-label="Sync" title=reason.clone()>
                    {status.label()}
                    {(!reason.is_empty())
                        .then(|| {
                            view! { <span class="visually-hidden">{format!(": {reason}")}</span> }
                        })}
                </span>
            }
        })
    }
}

/// At the account's first sign-in on a browser holding conversations made signed out:
/// `Keep in my account` or `Leave on this device`.
#[component]
pub fn AdoptOffer(chat: Chat) -> impl IntoView {
    view! {
        <Show when=move || { chat.adopt.get() > 0 }>
            <div
                class="dialog"
                role="dialog"
                aria-modal="true"
                aria-labelledby="adopt-title"
                aria-describedby="adopt-text"
            >
                <h2 id="adopt-title">"Keep these conversations?"</h2>
                <p id="adopt-text">
                    {move || match chat.adopt.get() {
                        1 => {
                            "This browser holds a conversation from before you signed in."
                                .to_string()
                        }
                        n => {
                            format!(
                                "This browser holds {n} conversations from before you signed in.",
                            )
                        }
                    }}
                    " Keep them in your account to have them on all your devices, or leave them on this device only."
                </p>
                <div class="dialog-buttons">
                    <button
                        type="button"
                        class="action"
                        on:click=move |_| actions::adopt(chat, false)
                    >
                        "Leave on this device"
                    </button>
                    <button type="button" class="send" on:click=move |_| actions::adopt(chat, true)>
                        "Keep in my account"
                    </button>
                </div>
            </div>
        </Show>
    }
}

/// `Recently deleted` (signed in): the account's deleted conversations with `Restore`, for
/// 30 days after their deletion.
#[component]
pub fn RecentlyDeleted(chat: Chat) -> impl IntoView {
    let list: Listed<DeletedConversation> = RwSignal::new(None);
    listing(
        "Recently deleted",
        "Nothing deleted in the last 30 days.",
        move || chat.account.with(Option::is_some),
        list,
        actions::load_deleted,
        move |item| {
            let id = item.id.clone();
            let days = ((item.purge_ms as f64 - crate::client::state::now_ms()) / 86_400_000.0)
                .ceil()
                .max(0.0) as i64;
            view! {
                <li>
                    <span class="deleted-title">{item.title.clone()}</span>
                    <span class="muted">{format!("kept {days} more days")}</span>
                    <button
                        type="button"
                        class="action"
                        aria-label=format!("Restore {}", item.title)
                        on:click=move |_| actions::restore_deleted(id.clone(), list)
                    >
                        "Restore"
                    </button>
                </li>
            }
        },
    )
}
