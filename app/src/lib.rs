//! # app — what the browser and the server share
//!
//! * [`model`]: the conversation types, kept in the browser in Gemini's `contents` shape
//!   (`docs/export-format.md`), and the records the server returns;
//! * [`error::AppError`]: the one error type of Parley's server functions, with sentences a
//!   person can read;
//! * [`api`]: the server functions (`site_info`, `upload_file`, `chat`, `check_files`,
//!   `list_uploads`, `delete_upload`);
//! * [`markdown`]: answers rendered as HTML that carries nothing runnable (DOMPurify cleans it
//!   again in the browser);
//! * [`transcript`]: the export/import format (version 1.2), validated;
//! * the page in three layers, the arrows running one way — `ui` (the Leptos components:
//!   [`App`], [`shell`]) → `client` (the page's state and what changes it) → `browser` (web
//!   APIs only, feature `hydrate`);
//! * `server` (feature `ssr`): the server functions' bodies.

#![recursion_limit = "256"]

pub mod api;
pub mod client;
pub mod error;
pub mod markdown;
pub mod model;
pub mod transcript;
mod ui;

#[cfg(feature = "hydrate")]
mod browser;
#[cfg(feature = "ssr")]
pub mod server;

pub use ui::{shell, App};
