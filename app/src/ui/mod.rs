//! The Leptos UI. Roles, names and attributes follow `shared/ui-contract.md`.

mod composer;
mod conversation;
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))] // the turn logic runs in the browser only
pub mod state;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};

use crate::api::get_site_info;
use composer::Composer;
use conversation::Conversation;
use state::Chat;

/// The HTML document around [`App`], rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
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
    // Effects run only in the browser, once the page is interactive: tests wait for this.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| crate::browser::mark_hydrated());
    view! {
        <Stylesheet id="leptos" href="/pkg/parley.css"/>
        <Title text="Parley — chat with Gemini about your files"/>
        <div class="page">
            <header class="topbar">
                <span class="brand">"Parley"</span>
                <Suspense fallback=|| ()>
                    {move || {
                        info.get()
                            .and_then(Result::ok)
                            .map(|i| {
                                if i.upstream.is_offline() {
                                    view! {
                                        <div class="banner" role="status" aria-label="Offline demo" data-testid="upstream">
                                            <strong>"Offline demo"</strong>
                                            " — answers come from Parley's built-in Gemini emulator, not from Gemini."
                                        </div>
                                    }
                                    .into_any()
                                } else {
                                    view! {
                                        <span class="upstream" data-testid="upstream" title="Where answers come from">
                                            {i.upstream.label()} " · " {i.model}
                                        </span>
                                    }
                                    .into_any()
                                }
                            })
                    }}
                </Suspense>
            </header>
            <main class="chat">
                <Conversation chat/>
                <Composer chat/>
            </main>
        </div>
    }
}
