//! # parley-protocol — what Parley's browser and server exchange
//!
//! * [`model`]: the conversation, kept in the browser in Gemini's `contents` shape, the
//!   records the server returns (`UploadedFile`, `UploadRecord`, `FileCheck`), the options a
//!   chat request carries and the events its answer streams (`ChatEvent`);
//! * [`transcript`]: the export/import format (version 1.2, `docs/export-format.md`), validated
//!   with limits;
//! * [`sync`]: conversations synced between a signed-in person's devices (writes, pages of
//!   changes, the event stream);
//! * [`share`]: conversations shared by link (what the page sends, what it is told);
//! * [`account`]: signing in as the page sees it (providers, the account, why a sign-in
//!   failed);
//! * [`error::AppError`]: the one error a person sees, each variant a sentence, with its HTTP
//!   status.
//!
//! No Leptos and nothing platform-bound: the crate builds for `wasm32-unknown-unknown` (the
//! page) as for the server, and the conversation engine (`parley-chat`) speaks it without the
//! web framework. The `server-fn` feature adds the one piece of glue a Leptos server function
//! needs: `AppError` as its error type.

pub mod account;
pub mod error;
pub mod model;
pub mod share;
pub mod sync;
pub mod transcript;

pub use error::AppError;
