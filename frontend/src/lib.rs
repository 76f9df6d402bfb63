//! Parley's browser entry point: hydrates the server-rendered page ([`app::App`]).
//! Built to wasm32 by cargo-leptos (`lib-package = "frontend"`).

/// Called by the hydration script that `leptos::HydrationScripts` puts in the page.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
