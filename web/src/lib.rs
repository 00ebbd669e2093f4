//! Partida's console: pages rendered on the server and hydrated in the browser, over command-api
//! and query-api. The browser talks only to this server (server functions and `/live`); the
//! APIs' addresses stay here.

pub mod api;
pub mod app;
mod components;
pub mod money;
mod pages;
#[cfg(feature = "ssr")]
pub mod server;
pub mod url;

/// The browser's entry point: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
