//! A signed-in person's conversations, synced with the server (`docs/sync.md`): the browser
//! keeps every conversation in IndexedDB (the page reads it first, and works offline); this
//! brings the server's changes down and sends this browser's up.
//!
//! * [`convert`]: a stored conversation ⇄ its synced form (both builds, tested);
//! * in the browser: one task per page runs rounds — pull what changed after this browser's
//!   cursor, then push every conversation changed (or deleted) here — whenever something
//!   changes here (`kick`), the account's event stream says something changed elsewhere,
//!   or the connection comes back. Offline, changes wait in IndexedDB (`dirty`) and the
//!   `Sync` status says so.

pub mod convert;
#[cfg(feature = "hydrate")]
mod engine;

#[cfg(feature = "hydrate")]
pub use engine::{adopt, deleted, kick, restore, start};
