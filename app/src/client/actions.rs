//! What the page's controls do. Components call these and hold no logic of their own; each
//! exists in both builds — in the browser it acts, on the server (which only renders the page)
//! it does nothing — so that no component needs a `cfg` of its own.

use leptos::prelude::*;

use super::state::{Attachment, Chat, Message, Status};
use crate::{
    error::AppError,
    model::{Role, SiteInfo},
};

/// Runs `work` in the browser; nothing on the server.
fn in_browser<F: std::future::Future<Output = ()> + 'static>(work: impl FnOnce() -> F) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(work());
    #[cfg(not(feature = "hydrate"))]
    let _ = work;
}

/// Once the page is interactive: marks it hydrated (tests wait for it), restores the
/// conversations kept in the browser (the signed-in account's, or those made signed out) and,
/// signed in, starts syncing them.
pub fn on_hydrated(chat: Chat, info: OnceResource<Result<SiteInfo, AppError>>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        crate::browser::mark_hydrated();
        leptos::task::spawn_local(async move {
            let info = info.await.ok();
            let sharing = info.as_ref().is_some_and(|i| i.sharing != crate::share::Sharing::Off);
            chat.sharing.set(sharing);
            let account = info.and_then(|i| i.sign_in.account).map(|a| a.id);
            chat.account.set(account.clone());
            super::conversations::restore(chat).await;
            if let Some(account) = account {
                start_sync(chat, account).await;
            }
            if let Some(token) = continue_token() {
                match super::later::share_continue(chat, token).await {
                    Ok(continuing) => continuing.await,
                    Err(unloaded) => chat.storage_error.set(Some(unloaded.to_string())),
                }
            }
            super::later::preload().await;
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (chat, info);
}

/// The token of `/?continue=<token>` (a shared conversation to continue), if the page was
/// opened so.
#[cfg(feature = "hydrate")]
fn continue_token() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    let token = search.strip_prefix("?continue=")?.split('&').next()?;
    crate::share::is_token(token).then(|| token.to_string())
}

/// Starts the sync task, its module fetched first (tried again every 30 s while it cannot
/// be: the `Sync` status says offline meanwhile).
#[cfg(feature = "hydrate")]
async fn start_sync(chat: Chat, account: String) {
    use super::state::SyncStatus;
    while super::later::sync_start(chat, account.clone()).await.is_err() {
        chat.sync.set(Some(SyncStatus::Offline));
        crate::browser::device::sleep(30_000).await;
    }
}

/// Answers the offer made at the first sign-in on this browser: `keep` moves the
/// conversations made signed out here into the account.
pub fn adopt(chat: Chat, keep: bool) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        match super::later::sync_adopt(chat, keep).await {
            Ok(adopting) => adopting.await,
            Err(unloaded) => chat.storage_error.set(Some(unloaded.to_string())),
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (chat, keep);
    });
}

/// Loads `Recently deleted` into `into` (an error sentence on failure).
pub fn load_deleted(into: RwSignal<Option<Result<Vec<crate::sync::DeletedConversation>, String>>>) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        into.set(Some(deleted().await));
        #[cfg(not(feature = "hydrate"))]
        let _ = into;
    });
}

/// `Recently deleted`, or why it cannot be read.
#[cfg(feature = "hydrate")]
async fn deleted() -> Result<Vec<crate::sync::DeletedConversation>, String> {
    match super::later::sync_deleted().await {
        Ok(reading) => reading.await,
        Err(unloaded) => Err(unloaded.to_string()),
    }
}

/// Restores a deleted conversation on every device, then reloads `Recently deleted` into
/// `list`.
pub fn restore_deleted(
    id: String,
    list: RwSignal<Option<Result<Vec<crate::sync::DeletedConversation>, String>>>,
) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        match super::later::sync_restore(id).await {
            Ok(restoring) => match restoring.await {
                Ok(()) => list.set(Some(deleted().await)),
                Err(sentence) => list.set(Some(Err(sentence))),
            },
            Err(unloaded) => list.set(Some(Err(unloaded.to_string()))),
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, list);
    });
}

/// Keeps what was typed or picked before the wasm took over (read now, before hydration
/// touches the DOM; applied once the view is hydrated, since changing the view earlier would
/// make it differ from the server's HTML), and lets Esc stop an answer.
pub fn wire_composer(chat: Chat, draft: RwSignal<String>) {
    #[cfg(feature = "hydrate")]
    {
        let early = send_wrapper::SendWrapper::new(super::attach::pre_hydration_input());
        Effect::new(move |_| early.apply(draft, chat));
        let esc = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" && chat.answering.get_untracked() {
                chat.stop();
            }
        });
        on_cleanup(move || esc.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (chat, draft);
}

/// Shows the user's bubble at once (`pending`), clears the composer, and starts the turn.
pub fn send(chat: Chat, draft: RwSignal<String>) {
    let text = draft.get_untracked();
    let items = chat.pending.get_untracked();
    let attachments: Vec<Attachment> = items
        .iter()
        .map(|p| Attachment {
            name: p.name.clone(),
            mime_type: p.mime_type.clone(),
            size: p.size,
            preview: p.preview.clone(),
            uploaded: ArcRwSignal::new(None),
            expired: ArcRwSignal::new(false),
            progress: ArcRwSignal::new(None),
        })
        .collect();
    chat.pending.set(Vec::new());
    chat.notice.set(None);
    chat.sign_in_offer.set(None);
    draft.set(String::new());
    #[cfg(feature = "hydrate")]
    {
        let files = items.iter().map(|p| (*p.file).clone()).collect();
        let message = Message::user(text.trim_end().to_string(), attachments, files);
        chat.push(message.clone());
        leptos::task::spawn_local(run(chat, message));
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (text, attachments, items);
}

/// Drops the last answer and asks again.
pub fn regenerate(chat: Chat, id: u64) {
    if chat.busy.get_untracked() {
        return;
    }
    chat.remove(id);
    in_browser(|| ask(chat));
}

/// Replaces a user message's text, forgets everything after it, and sends it again (its
/// files are already uploaded and are not sent twice).
pub fn resend_edited(chat: Chat, message: Message, text: String) {
    if chat.busy.get_untracked() || text.trim().is_empty() {
        return;
    }
    message.text.set(text.trim_end().to_string());
    message.raw.set_value(None);
    message.error.set(None);
    chat.truncate_after(message.id);
    message.status.set(Status::Pending);
    in_browser(move || run(chat, message));
}

/// Retries a failed message: re-sends a user turn (its uploads included), or asks again
/// for a failed answer.
pub fn retry(chat: Chat, message: Message) {
    if chat.busy.get_untracked() {
        return;
    }
    message.error.set(None);
    if message.role == Role::User {
        message.status.set(Status::Pending);
        in_browser(move || run(chat, message));
    } else {
        chat.remove(message.id);
        in_browser(|| ask(chat));
    }
}

/// [`super::turn::run`] in the browser (its module fetched first, if it is not yet: when it
/// cannot be, the message fails with Retry).
async fn run(chat: Chat, message: Message) {
    #[cfg(feature = "hydrate")]
    match super::later::turn_run(chat, message.clone()).await {
        Ok(turn) => turn.await,
        Err(unloaded) => message.fail(unloaded.to_string()),
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (chat, message);
}

/// [`super::turn::ask`] in the browser (its module fetched first, if it is not yet: when it
/// cannot be, the notice over the composer says so).
async fn ask(chat: Chat) {
    #[cfg(feature = "hydrate")]
    match super::later::turn_ask(chat).await {
        Ok(turn) => turn.await,
        Err(unloaded) => chat.notice.set(Some(unloaded.to_string())),
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = chat;
}

/// Attaches the files picked in the file input of `ev`.
pub fn attach_picked(ev: &leptos::ev::Event, chat: Chat) {
    #[cfg(feature = "hydrate")]
    super::attach::from_input(ev, chat);
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, chat);
}

/// Attaches the images pasted by `ev`.
pub fn attach_pasted(ev: &leptos::ev::ClipboardEvent, chat: Chat) {
    #[cfg(feature = "hydrate")]
    super::attach::from_paste(ev, chat);
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, chat);
}

/// Attaches the files dropped by `ev`.
pub fn attach_dropped(ev: &leptos::ev::DragEvent, chat: Chat) {
    #[cfg(feature = "hydrate")]
    super::attach::from_drop(ev, chat);
    #[cfg(not(feature = "hydrate"))]
    ev.prevent_default();
    #[cfg(not(feature = "hydrate"))]
    let _ = chat;
}

/// Saves the open conversation's settings (model, "Cache files") with it.
pub fn persist(chat: Chat) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(super::conversations::persist(chat));
    #[cfg(not(feature = "hydrate"))]
    let _ = chat;
}

/// Opens the stored conversation `id`.
pub fn open_conversation(chat: Chat, id: String) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move { super::conversations::open(chat, &id).await });
    #[cfg(not(feature = "hydrate"))]
    let _ = (chat, id);
}

/// Starts a new conversation.
pub fn start_new(chat: Chat) {
    #[cfg(feature = "hydrate")]
    super::conversations::start_new(chat);
    #[cfg(not(feature = "hydrate"))]
    let _ = chat;
}

/// Downloads the open conversation as a JSON file.
pub fn export(chat: Chat) {
    #[cfg(feature = "hydrate")]
    super::conversations::export(chat);
    #[cfg(not(feature = "hydrate"))]
    let _ = chat;
}

/// Imports the conversation file picked in the file input of `ev`.
pub fn import_picked(ev: &leptos::ev::Event, chat: Chat) {
    #[cfg(feature = "hydrate")]
    {
        let input: web_sys::HtmlInputElement = event_target(ev);
        if let Some(file) = input.files().and_then(|f| f.item(0)) {
            input.set_value("");
            leptos::task::spawn_local(super::conversations::import(chat, file));
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, chat);
}

/// Deletes the open conversation.
pub fn delete_open(chat: Chat) {
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        match super::later::library_delete(chat, chat.id.get_untracked()).await {
            Ok(deleting) => deleting.await,
            Err(unloaded) => chat.storage_error.set(Some(unloaded.to_string())),
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = chat;
}

/// The theme chosen before (dark or not), and from now on the one `dark` says.
pub fn restore_theme(dark: RwSignal<bool>) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| dark.set(crate::browser::theme::restore()));
    #[cfg(not(feature = "hydrate"))]
    let _ = dark;
}

/// Switches to the dark theme or back, and remembers it.
pub fn choose_theme(dark: bool) {
    #[cfg(feature = "hydrate")]
    crate::browser::theme::choose(dark);
    #[cfg(not(feature = "hydrate"))]
    let _ = dark;
}

/// An answer's Markdown as HTML for the page: rendered safe by construction, then cleaned by
/// DOMPurify in the browser. (Answers are never rendered on the server; there it is text.)
pub fn render_answer(markdown: &str) -> String {
    #[cfg(feature = "hydrate")]
    return crate::browser::sanitize::clean(&crate::markdown::to_html(markdown), markdown);
    #[cfg(not(feature = "hydrate"))]
    format!("<p>{}</p>", crate::markdown::escape(markdown))
}

/// Colours the code blocks of a finished answer in `rendered` (highlight.js, loaded on first
/// need), whenever its text changes.
pub fn highlight_when_done(
    text: ArcRwSignal<String>,
    status: ArcRwSignal<Status>,
    rendered: NodeRef<leptos::html::Div>,
) {
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        text.track();
        if status.get() == Status::Done {
            if let Some(el) = rendered.get() {
                request_animation_frame(move || crate::browser::highlight::highlight_within(&el));
            }
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (text, status, rendered);
}

/// What a link call answers: `None` while it runs, then the link or why not.
pub type LinkState = RwSignal<Option<Result<crate::share::SharedLink, String>>>;

/// What the list of links shows: `None` while it loads, then the links or why not.
pub type LinksState = RwSignal<Option<Result<Vec<crate::share::SharedLink>, String>>>;

/// Shares the open conversation: a new link, or a new snapshot under `token` (`Update link`);
/// the answer goes to `into`.
pub fn share(
    chat: Chat,
    token: Option<String>,
    include_images: bool,
    link_preview: bool,
    into: LinkState,
) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        {
            into.set(None);
            let made =
                match super::later::share_make(chat, token, include_images, link_preview).await {
                    Ok(sharing) => sharing.await,
                    Err(unloaded) => Err(unloaded.to_string()),
                };
            into.set(Some(made));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (chat, token, include_images, link_preview, into);
    });
}

/// Loads the person's links into `into`.
pub fn load_links(into: LinksState) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        into.set(Some(links().await));
        #[cfg(not(feature = "hydrate"))]
        let _ = into;
    });
}

/// Revokes the link `token`, then reloads the list into `list`.
pub fn revoke_link(token: String, list: LinksState) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        {
            let revoked = match super::later::share_revoke(token, None).await {
                Ok(revoking) => revoking.await,
                Err(unloaded) => Err(unloaded.to_string()),
            };
            match revoked {
                Ok(()) => list.set(Some(links().await)),
                Err(sentence) => list.set(Some(Err(sentence))),
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (token, list);
    });
}

/// The person's links, or why they cannot be read.
#[cfg(feature = "hydrate")]
async fn links() -> Result<Vec<crate::share::SharedLink>, String> {
    match super::later::share_links().await {
        Ok(reading) => reading.await,
        Err(unloaded) => Err(unloaded.to_string()),
    }
}

/// Copies `text` to the clipboard (nothing when the browser refuses).
pub fn copy_text(text: String) {
    in_browser(move || async move {
        #[cfg(feature = "hydrate")]
        if let Some(window) = web_sys::window() {
            let _ = wasm_bindgen_futures::JsFuture::from(
                window.navigator().clipboard().write_text(&text),
            )
            .await;
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = text;
    });
}

/// The Files view's list (its module fetched first, if it is not yet).
pub async fn list_uploads() -> Result<Vec<crate::model::UploadRecord>, crate::error::AppError> {
    #[cfg(feature = "hydrate")]
    return match super::later::files_list().await {
        Ok(listing) => listing.await,
        Err(unloaded) => Err(crate::error::AppError::Transport(unloaded.to_string())),
    };
    #[cfg(not(feature = "hydrate"))]
    Ok(Vec::new())
}

/// Deletes a File from the Files view (its module fetched first, if it is not yet).
pub async fn delete_upload(uri: String) -> Result<(), crate::error::AppError> {
    #[cfg(feature = "hydrate")]
    return match super::later::files_delete(uri).await {
        Ok(deleting) => deleting.await,
        Err(unloaded) => Err(crate::error::AppError::Transport(unloaded.to_string())),
    };
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = uri;
        Ok(())
    }
}
