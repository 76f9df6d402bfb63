//! The Leptos components, and nothing else: their state and behaviour are in
//! [`crate::client`]. Roles, names and attributes follow the UI contract (`docs/ui-contract.md`).

mod account;
mod composer;
mod conversation;
mod files;
mod icon;
mod listing;
mod settings;
mod share;
mod sidebar;
mod sync;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};

use self::icon::{Glyph, Icon};
use crate::api::get_site_info;
use crate::client::{actions, state::Chat};
use account::AccountMenu;
use composer::Composer;
use conversation::Conversation;
use files::FilesView;
use sidebar::{ConversationActions, Sidebar};
use sync::{AdoptOffer, SyncStatus};

/// The HTML document around [`App`], rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    crate::server::set_content_security_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                // No icon: the browser does not ask for /favicon.ico (a not-found page) on
                // every visit.
                <link rel="icon" href="data:," />
                // The sanitizer for answers, ready before the wasm runs (deferred, in order).
                <script src="/vendor/dompurify/purify.min.js" defer></script>
                <AutoReload options=options.clone() />
                <HashedStylesheet options=options.clone() id="leptos" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The chat page.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let chat = Chat::new();
    let info = OnceResource::new(get_site_info());
    let dragging = RwSignal::new(false);
    let sidebar_open = RwSignal::new(false);
    // Effects run only in the browser, once the page is interactive: tests wait for this.
    actions::on_hydrated(chat, info);
    view! {
        <Title text="Parley — chat with Gemini about your files" />
        <div class="page">
            <header class="topbar">
                <span class="brand">"Parley"</span>
                <ConversationActions chat sidebar_open />
                <FilesView chat />
                <ThemeToggle />
                <SyncStatus chat />
                <AccountMenu info />
                <Suspense fallback=|| ()>
                    {move || {
                        info.try_get()
                            .flatten()
                            .and_then(Result::ok)
                            .map(|i| {
                                if i.upstream.is_offline() {
                                    // `try_get`: a render still resolving after its request's owner is gone (the
                                    // browser left) renders nothing rather than panicking.
                                    view! {
                                        <div
                                            class="banner"
                                            role="status"
                                            aria-label="Offline demo"
                                            data-testid="upstream"
                                        >
                                            <strong>"Offline demo"</strong>
                                            " — answers come from Parley's built-in Gemini emulator, not from Gemini."
                                        </div>
                                    }
                                        .into_any()
                                } else {
                                    view! {
                                        <span
                                            class="upstream"
                                            data-testid="upstream"
                                            title="Where answers come from"
                                        >
                                            {i.upstream.label()}
                                            " · "
                                            {i.model}
                                        </span>
                                    }
                                        .into_any()
                                }
                            })
                    }}
                </Suspense>
            </header>
            <div class="workspace">
                <Sidebar chat open=sidebar_open />
                <main
                    class="chat"
                    class:dragging=move || dragging.get()
                    on:dragover=move |ev| {
                        ev.prevent_default();
                        dragging.set(true);
                    }
                    on:dragleave=move |_| dragging.set(false)
                    on:drop=move |ev| {
                        dragging.set(false);
                        actions::attach_dropped(&ev, chat);
                    }
                >
                    <DismissibleAlert message=chat.storage_error class="storage" />
                    <Conversation chat />
                    <Composer chat info />
                </main>
            </div>
            <AdoptOffer chat />
        </div>
    }
}

/// A button that switches between the light and the dark theme (the system's until used).
#[component]
fn ThemeToggle() -> impl IntoView {
    let dark = RwSignal::new(false);
    actions::restore_theme(dark);
    view! {
        <button
            type="button"
            class="theme"
            aria-label="Dark theme"
            title="Dark theme"
            aria-pressed=move || dark.get().to_string()
            on:click=move |_| {
                let next = !dark.get_untracked();
                dark.set(next);
                actions::choose_theme(next);
            }
        >
            <Icon glyph=Glyph::Moon />
        </button>
    }
}

/// A `role="alert"` showing `message` while it is set, with a `Dismiss` button that clears it
/// — and, while `sign_in` holds a path, a `Sign in` link to it.
#[component]
fn DismissibleAlert(
    message: RwSignal<Option<String>>,
    class: &'static str,
    #[prop(optional)] sign_in: Option<RwSignal<Option<String>>>,
) -> impl IntoView {
    move || {
        message.get().map(|sentence| {
            let link = sign_in.and_then(|s| s.get());
            view! {
                <div class=format!("alert {class}") role="alert">
                    <span>{sentence}</span>
                    {link
                        .map(|href| {
                            view! {
                                <a class="sign-in-offer" href=href>
                                    "Sign in"
                                </a>
                            }
                        })}
                    <button
                        type="button"
                        class="retry"
                        on:click=move |_| {
                            message.set(None);
                            if let Some(s) = sign_in {
                                s.set(None);
                            }
                        }
                    >
                        "Dismiss"
                    </button>
                </div>
            }
        })
    }
}
