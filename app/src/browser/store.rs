//! Conversations kept in the browser, in IndexedDB (through rexie): no 5 MB localStorage
//! wall, and image previews fit. Database `parley`, object store `conversations`, one record
//! per conversation keyed by its id:
//!
//! `{id, title, updated (ms since the epoch), hash, export, account, dirty, deleted, sync}`
//! where `export` is the conversation's export-format text ([`crate::transcript`], version
//! 1.2), `hash` the SHA-256 of its `conversation` (how an import of the same file is
//! recognised), `account` the id of the account it belongs to (empty: made signed out, kept on
//! this browser only), `dirty` whether it changed here since the server last had it, `deleted`
//! whether it was deleted here and the server is still to hear of it, and `sync` what the page
//! knows of its copy on the server (JSON: `{base, created_ms, messages: [[id, revision,
//! hash], …]}`, see `client::sync`).
//!
//! Object store `settings` (version 2): values kept beside the conversations that must go
//! when they go — the sync cursor of each account, say: kept in localStorage, a cleared
//! IndexedDB would leave a cursor claiming conversations this browser no longer has.

use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

const DATABASE: &str = "parley";
const STORE: &str = "conversations";
const SETTINGS: &str = "settings";

/// A stored conversation.
pub struct Record {
    /// Its id.
    pub id: String,
    /// Its title, shown in the list.
    pub title: String,
    /// Last change, ms since the epoch.
    pub updated: f64,
    /// SHA-256 (hex) of its `conversation` JSON.
    pub hash: String,
    /// The export-format text.
    pub export: String,
    /// The account it belongs to; empty when it was made signed out.
    pub account: String,
    /// Changed here since the server last had it.
    pub dirty: bool,
    /// Deleted here; the server is still to hear of it.
    pub deleted: bool,
    /// What the page knows of its copy on the server (JSON), empty when none.
    pub sync: String,
}

/// Why storage failed, in words for the person.
pub fn describe(err: &rexie::Error) -> String {
    let text = err.to_string();
    if text.contains("Quota") || text.contains("quota") {
        "Your browser's storage for this site is full, so this conversation was not saved. \
         Delete old conversations or export them to free space."
            .into()
    } else {
        format!("This conversation could not be saved in the browser: {text}")
    }
}

async fn open() -> Result<Rexie, rexie::Error> {
    Rexie::builder(DATABASE)
        .version(2)
        .add_object_store(ObjectStore::new(STORE).key_path("id"))
        .add_object_store(ObjectStore::new(SETTINGS))
        .build()
        .await
}

fn get(object: &JsValue, key: &str) -> Option<JsValue> {
    js_sys::Reflect::get(object, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined())
}

impl Record {
    fn to_js(&self) -> JsValue {
        let object = js_sys::Object::new();
        for (key, value) in [
            ("id", JsValue::from_str(&self.id)),
            ("title", JsValue::from_str(&self.title)),
            ("updated", JsValue::from_f64(self.updated)),
            ("hash", JsValue::from_str(&self.hash)),
            ("export", JsValue::from_str(&self.export)),
            ("account", JsValue::from_str(&self.account)),
            ("dirty", JsValue::from_bool(self.dirty)),
            ("deleted", JsValue::from_bool(self.deleted)),
            ("sync", JsValue::from_str(&self.sync)),
        ] {
            let _ = js_sys::Reflect::set(&object, &JsValue::from_str(key), &value);
        }
        object.into()
    }

    fn from_js(value: &JsValue) -> Option<Record> {
        Some(Record {
            id: get(value, "id")?.as_string()?,
            title: get(value, "title").and_then(|v| v.as_string()).unwrap_or_default(),
            updated: get(value, "updated").and_then(|v| v.as_f64()).unwrap_or(0.0),
            hash: get(value, "hash").and_then(|v| v.as_string()).unwrap_or_default(),
            export: get(value, "export")?.as_string()?,
            account: text(value, "account"),
            dirty: flag(value, "dirty"),
            deleted: flag(value, "deleted"),
            sync: text(value, "sync"),
        })
    }
}

fn text(object: &JsValue, key: &str) -> String {
    get(object, key).and_then(|v| v.as_string()).unwrap_or_default()
}

fn flag(object: &JsValue, key: &str) -> bool {
    get(object, key).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// A stored conversation as listed: everything but its export text, and that text's length.
pub struct Stored {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Last change, ms since the epoch.
    pub updated: f64,
    /// SHA-256 (hex) of its `conversation` JSON.
    pub hash: String,
    /// Length of its export text (UTF-16 code units, about its bytes).
    pub size: u32,
    /// The account it belongs to; empty when it was made signed out.
    pub account: String,
    /// Changed here since the server last had it.
    pub dirty: bool,
    /// Deleted here; the server is still to hear of it.
    pub deleted: bool,
}

/// A record as listed, without copying its export text into wasm memory (a list of big
/// conversations stays cheap to read).
fn stored_from_js(value: &JsValue) -> Option<Stored> {
    let export = get(value, "export")?;
    Some(Stored {
        id: get(value, "id")?.as_string()?,
        title: get(value, "title").and_then(|v| v.as_string()).unwrap_or_default(),
        updated: get(value, "updated").and_then(|v| v.as_f64()).unwrap_or(0.0),
        hash: get(value, "hash").and_then(|v| v.as_string()).unwrap_or_default(),
        size: export.dyn_ref::<js_sys::JsString>()?.length(),
        account: text(value, "account"),
        dirty: flag(value, "dirty"),
        deleted: flag(value, "deleted"),
    })
}

/// Saves (or replaces) a conversation.
///
/// # Errors
/// The IndexedDB error (quota exceeded, storage blocked, …).
pub async fn save(record: &Record) -> Result<(), rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite)?;
    tx.store(STORE)?.put(&record.to_js(), None).await?;
    tx.done().await?;
    Ok(())
}

/// Reads the conversation `id` (if stored) and writes what `change` makes of it, in one
/// transaction: nothing else writes it in between. `None` from `change` leaves it as it was.
///
/// # Errors
/// The IndexedDB error.
pub async fn update(
    id: &str,
    change: impl FnOnce(Option<Record>) -> Option<Record>,
) -> Result<(), rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite)?;
    let store = tx.store(STORE)?;
    let value = store.get(JsValue::from_str(id)).await?;
    if let Some(record) = change(value.as_ref().and_then(Record::from_js)) {
        store.put(&record.to_js(), None).await?;
    }
    tx.done().await?;
    Ok(())
}

/// The conversation `id`, if stored.
///
/// # Errors
/// The IndexedDB error.
pub async fn load(id: &str) -> Result<Option<Record>, rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadOnly)?;
    let value = tx.store(STORE)?.get(JsValue::from_str(id)).await?;
    Ok(value.as_ref().and_then(Record::from_js))
}

/// Every stored conversation, most recently changed first.
///
/// # Errors
/// The IndexedDB error.
pub async fn list() -> Result<Vec<Stored>, rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadOnly)?;
    let values = tx.store(STORE)?.get_all(None, None).await?;
    let mut all: Vec<Stored> = values.iter().filter_map(stored_from_js).collect();
    all.sort_by(|a, b| b.updated.total_cmp(&a.updated));
    Ok(all)
}

/// Deletes the conversation `id`.
///
/// # Errors
/// The IndexedDB error.
pub async fn delete(id: &str) -> Result<(), rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[STORE], TransactionMode::ReadWrite)?;
    tx.store(STORE)?.delete(JsValue::from_str(id)).await?;
    tx.done().await?;
    Ok(())
}

/// The setting `key` (a string), if set.
///
/// # Errors
/// The IndexedDB error.
pub async fn setting(key: &str) -> Result<Option<String>, rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[SETTINGS], TransactionMode::ReadOnly)?;
    let value = tx.store(SETTINGS)?.get(JsValue::from_str(key)).await?;
    Ok(value.and_then(|v| v.as_string()))
}

/// Sets the setting `key` to `value` if it is still `from` (`None`: not set), in one
/// transaction; `false` when it was not (another page, or the database cleared meanwhile).
///
/// # Errors
/// The IndexedDB error (quota exceeded, …).
pub async fn replace_setting(
    key: &str,
    from: Option<&str>,
    value: &str,
) -> Result<bool, rexie::Error> {
    let db = open().await?;
    let tx = db.transaction(&[SETTINGS], TransactionMode::ReadWrite)?;
    let store = tx.store(SETTINGS)?;
    let key = JsValue::from_str(key);
    let now = store.get(key.clone()).await?.and_then(|v| v.as_string());
    let same = now.as_deref() == from;
    if same {
        store.put(&JsValue::from_str(value), Some(&key)).await?;
    }
    tx.done().await?;
    Ok(same)
}
