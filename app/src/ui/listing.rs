//! A button opening a dialog that lists what the server holds for the person (`Shared links`,
//! `Recently deleted`): `Loading…`, the refusal as an alert, a sentence when there is
//! nothing, else one `li` per item.

use leptos::prelude::*;

/// What a listing dialog shows: `None` while it loads, the items, or why they could not be had.
pub type Listed<T> = RwSignal<Option<Result<Vec<T>, String>>>;

/// The button `title` (while `shown` holds) and its dialog of the same name: opening it empties
/// `state` and calls `load` (which fills it); `empty` is said when there is nothing; `row`
/// makes each item's `li`.
pub fn listing<T, V>(
    title: &'static str,
    empty: &'static str,
    shown: impl Fn() -> bool + Send + Sync + 'static,
    state: Listed<T>,
    load: fn(Listed<T>),
    row: impl Fn(T) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let open = RwSignal::new(false);
    view! {
        <Show when=shown>
            <button
                type="button"
                class="action recently-deleted"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| {
                    state.set(None);
                    open.set(true);
                    load(state);
                }
            >
                {title}
            </button>
        </Show>
        <Show when=move || open.get()>
            <div class="dialog deleted" role="dialog" aria-label=title>
                <div class="dialog-head">
                    <h2>{title}</h2>
                    <button type="button" class="action" on:click=move |_| open.set(false)>
                        "Close"
                    </button>
                </div>
                {
                    let row = row.clone();
                    move || match state.get() {
                        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                        Some(Err(sentence)) => {
                            view! {
                                <div class="alert" role="alert">
                                    {sentence}
                                </div>
                            }
                                .into_any()
                        }
                        Some(Ok(items)) if items.is_empty() => {
                            view! { <p class="muted">{empty}</p> }.into_any()
                        }
                        Some(Ok(items)) => {
                            view! {
                                <ul class="deleted-list">
                                    {items.into_iter().map(row.clone()).collect_view()}
                                </ul>
                            }
                                .into_any()
                        }
                    }
                }
            </div>
        </Show>
    }
}
