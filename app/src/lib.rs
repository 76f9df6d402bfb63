//! # app — what the browser and the server share
//!
//! * [`model`]: the conversation types, stored in the browser in Gemini's `contents` shape
//!   (seed `002_24809307f446f481.txt`), and the records the server returns;
//! * [`error::AppError`]: the one error type of Parley's server functions, with sentences a
//!   person can read;
//! * [`api`]: the server functions (`site_info`, `upload_file`, `chat`);
//! * [`markdown`]: answers rendered as HTML that carries nothing runnable (DOMPurify cleans it
//!   again in the browser);
//! * [`transcript`]: the export/import format (version 1.2, seed 002), validated;
//! * the Leptos UI ([`App`], [`shell`]), hydrated in the browser by the `frontend` crate.
//!
//! Server-only code lives in `server` (feature `ssr`), browser-only code in `browser`
//! (feature `hydrate`).

#![recursion_limit = "256"]

pub mod api;
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
