//! The page's state and what changes it, between the components (`ui`) and the web APIs
//! (`browser`): the arrows run `ui → client → browser`, never back.
//!
//! * [`actions`]: what the page's controls do — the one thing components call, in both builds;
//! * [`labels`]: what the page writes about things (a file's badge, a File's state, expiry);
//! * [`state`]: the signals of the chat (messages, attachments, the conversation list);
//! * [`messages`]: the page's messages ⇄ the stored and exported form ([`crate::transcript`]);
//! * [`sync`]: a signed-in person's conversations ⇄ the server, between their devices;
//! * in the browser (feature `hydrate`): `conversations` (kept in IndexedDB: save, open,
//!   delete, export, import), `turn` (one chat turn: upload, then stream the answer) and
//!   `attach` (picked, dropped and pasted files become pending attachments), `later` (the
//!   turn, the sync and sharing as wasm modules loaded once the page is interactive), `share`
//!   (links to conversations).

pub mod actions;
#[cfg(feature = "hydrate")]
pub mod attach;
#[cfg(feature = "hydrate")]
pub mod conversations;
pub mod labels;
#[cfg(feature = "hydrate")]
pub mod later;
pub mod messages;
#[cfg(feature = "hydrate")]
pub mod share;
pub mod state;
pub mod sync;
#[cfg(feature = "hydrate")]
pub mod turn;
