//! Conversations kept in the browser, in IndexedDB (through rexie): no 5 MB localStorage
//! wall, and image previews fit. Database `parley`, object store `conversations`, one record
//! per conversation keyed by its id:
//!
//! `{id, title, updated (ms since the epoch), hash, export}` where `export` is the
//! conversation's export-format text ([`crate::transcript`], version 1.2) and `hash` the
//! SHA-256 of its `conversation`, which is how an import of the same file is recognised.

use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

const DATABASE: &str = "parley";
const STORE: &str = "conversations";

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
        .version(1)
        .add_object_store(ObjectStore::new(STORE).key_path("id"))
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
        })
    }
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
