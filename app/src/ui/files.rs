//! The Files view: this session's uploads with name, size, state, time to expiry, whether a
//! retained copy exists, and Delete (upstream and in the registry; conversations then show
//! `expired content` for it).

use leptos::prelude::*;

use crate::client::{
    actions::{delete_upload, list_uploads},
    labels::{state_label, time_to_expiry},
    state::Chat,
};
use crate::model::{human_size, UploadRecord};

/// The badge before a file's name, as its cell's style (one attribute: the wasm stays small):
/// an image the server keeps shows its thumbnail, any other file its MIME type.
fn file_badge(record: &UploadRecord) -> String {
    match &record.thumbnail {
        Some(src) => format!("--thumb:url({src})"),
        // The server's MIME types are essences (`image/png`): nothing to escape.
        None => format!("--kind:\"{}\"", record.mime_type),
    }
}

/// The `Files` button and the dialog it opens.
#[component]
pub fn FilesView(chat: Chat) -> impl IntoView {
    let open = RwSignal::new(false);
    let version = RwSignal::new(0u32);
    let error = RwSignal::new(None::<String>);
    let rows = LocalResource::new(move || {
        version.track();
        let wanted = open.get();
        async move {
            if wanted {
                list_uploads().await
            } else {
                Ok(Vec::new())
            }
        }
    });
    let delete = move |record: UploadRecord| {
        leptos::task::spawn_local(async move {
            match delete_upload(record.uri.clone()).await {
                Ok(()) => {
                    chat.mark_expired(&record.uri);
                    error.set(None);
                }
                Err(e) => {
                    error.set(Some(format!("“{}” could not be deleted. {e}", record.display_name)))
                }
            }
            version.update(|v| *v += 1);
        });
    };
    view! {
        <button
            type="button"
            class="files-button"
            on:click=move |_| open.update(|o| *o = !*o)
            aria-expanded=move || open.get().to_string()
        >
            "Files"
        </button>
        <Show when=move || open.get()>
            <div class="dialog files" role="dialog" aria-label="Files">
                <div class="dialog-head">
                    <h2>"Your uploaded files"</h2>
                    <button type="button" class="action" on:click=move |_| open.set(false)>
                        "Close"
                    </button>
                </div>
                {move || {
                    error
                        .get()
                        .map(|e| {
                            view! {
                                <div class="alert" role="alert">
                                    {e}
                                </div>
                            }
                        })
                }}
                <Suspense fallback=|| {
                    view! { <p class="muted">"Loading…"</p> }
                }>
                    {move || {
                        rows.get()
                            .map(|result| match result {
                                Err(e) => {
                                    view! {
                                        <div class="alert" role="alert">
                                            {e.to_string()}
                                        </div>
                                    }
                                        .into_any()
                                }
                                Ok(rows) if rows.is_empty() => {
                                    view! { <p class="muted">"No uploads yet."</p> }.into_any()
                                }
                                Ok(rows) => {
                                    view! {
                                        // Explicit roles: on a phone the rows are laid out as
                                        // cards (style/main.css), which must stay a table.
                                        <table role="table">
                                            <thead>
                                                <tr role="row">
                                                    <th scope="col" role="columnheader">
                                                        "Name"
                                                    </th>
                                                    <th scope="col" role="columnheader">
                                                        "Size"
                                                    </th>
                                                    <th scope="col" role="columnheader">
                                                        "State"
                                                    </th>
                                                    <th scope="col" role="columnheader">
                                                        "Expires"
                                                    </th>
                                                    <th scope="col" role="columnheader">
                                                        "Kept on server"
                                                    </th>
                                                    <th scope="col" role="columnheader">
                                                        <span class="visually-hidden">"Actions"</span>
                                                    </th>
                                                </tr>
                                            </thead>
                                            <tbody>
                                                {rows
                                                    .into_iter()
                                                    .map(|record| {
                                                        let name = record.display_name.clone();
                                                        let row = record.clone();
                                                        view! {
                                                            <tr role="row">
                                                                <td class="file-name" role="cell" style=file_badge(&record)>
                                                                    {record.display_name.clone()}
                                                                </td>
                                                                <td role="cell" data-label="Size">
                                                                    {human_size(record.size_bytes)}
                                                                </td>
                                                                <td role="cell" data-label="State">
                                                                    {state_label(record.state)}
                                                                </td>
                                                                <td role="cell" data-label="Expires">
                                                                    {time_to_expiry(
                                                                        record.expiration_time.as_deref(),
                                                                        record.state,
                                                                    )}
                                                                </td>
                                                                <td role="cell" data-label="Kept on server">
                                                                    {if record.retained { "Yes" } else { "No" }}
                                                                </td>
                                                                <td role="cell" class="file-actions">
                                                                    <button
                                                                        type="button"
                                                                        class="action danger"
                                                                        aria-label=format!("Delete {name}")
                                                                        on:click=move |_| delete(row.clone())
                                                                    >
                                                                        "Delete"
                                                                    </button>
                                                                </td>
                                                            </tr>
                                                        }
                                                    })
                                                    .collect_view()}
                                            </tbody>
                                        </table>
                                    }
                                        .into_any()
                                }
                            })
                    }}
                </Suspense>
            </div>
        </Show>
    }
}
