//! The open conversation's settings, under the message box: what is left of the person's
//! budget (when one applies), its "Model", its "Cache files" switch (when the site offers
//! caching) with what caching did, and its tokens so far.

use leptos::prelude::*;

use crate::{
    client::state::Chat,
    error::AppError,
    model::{grouped, SiteInfo},
};

/// The "Model" select, the "Cache files" switch and the conversation's token total.
#[component]
pub fn ConversationSettings(
    chat: Chat,
    info: OnceResource<Result<SiteInfo, AppError>>,
) -> impl IntoView {
    let choose = move |model: Option<String>| {
        chat.model.set(model);
        crate::client::actions::persist(chat);
    };
    let switch = move |on: bool| {
        chat.cache_files.set(on);
        chat.cache_state.set(None);
        crate::client::actions::persist(chat);
    };
    view! {
        <div class="conversation-settings">
            <Suspense fallback=|| ()>
                {move || {
                    info.try_get()
                        .flatten()
                        .and_then(Result::ok)
                        .map(|site| {
                            let loaded = site.budget;
                            let budget_text = move || {
                                chat.budget.get().or_else(|| loaded.clone())
                            };
                            let no_budget = {
                                let budget_text = budget_text.clone();
                                move || budget_text().is_none()
                            };
                            let default = site.model.clone();
                            let offered: Vec<String> = site
                                .models
                                .iter()
                                .map(|m| m.id.clone())
                                .collect();
                            let offered_here = offered.clone();
                            let shown = move || {
                                chat.model
                                    .get()
                                    .filter(|m| offered_here.contains(m))
                                    .unwrap_or_else(|| default.clone())
                            };
                            Effect::new(move |_| {
                                if chat.model.get().is_some_and(|m| !offered.contains(&m)) {
                                    chat.model.set(None);
                                }
                            });
                            let is_shown = shown.clone();
                            // As the banner's: nothing rather than a panic once the owner is gone.
                            // A conversation's model that this site does not offer (an import, or
                            // a list changed since) shows, and is asked for, as the default.
                            view! {
                                <p
                                    class="budget"
                                    role="status"
                                    aria-label="Budget"
                                    hidden=no_budget
                                >
                                    {budget_text}
                                </p>
                                <label class="model-choice">
                                    <span>"Model"</span>
                                    <select
                                        aria-label="Model"
                                        prop:value=shown
                                        on:change=move |ev| choose(Some(event_target_value(&ev)))
                                    >
                                        {site
                                            .models
                                            .into_iter()
                                            .map(|m| {
                                                let is_shown = is_shown.clone();
                                                let id = m.id.clone();
                                                view! {
                                                    <option
                                                        value=m.id.clone()
                                                        selected=move || is_shown() == id
                                                    >
                                                        {m.display_name}
                                                    </option>
                                                }
                                            })
                                            .collect_view()}
                                    </select>
                                </label>
                                {site
                                    .context_caching
                                    .then(|| {
                                        view! {
                                            <label class="cache-switch">
                                                <input
                                                    type="checkbox"
                                                    role="switch"
                                                    aria-label="Cache files"
                                                    aria-describedby="cache-note"
                                                    prop:checked=move || chat.cache_files.get()
                                                    on:change=move |ev| switch(event_target_checked(&ev))
                                                />
                                                "Cache files"
                                            </label>
                                            <span id="cache-note" class="cache-note">
                                                {move || {
                                                    chat.cache_files
                                                        .get()
                                                        .then(|| chat.cache_state.get().map(|c| c.sentence()))
                                                        .flatten()
                                                }}
                                            </span>
                                        }
                                    })}
                            }
                        })
                }}
            </Suspense>
            <span class="usage-total">
                {move || {
                    chat.total_usage()
                        .map(|u| {
                            format!("This conversation: {} tokens", grouped(u.total_token_count))
                        })
                }}
            </span>
        </div>
    }
}
