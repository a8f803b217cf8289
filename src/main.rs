//! Rapport's web app: a Leptos client-side app over the domain core.
//!
//! Start-up opens the local workspace from IndexedDB ([`engine::Engine::boot`])
//! before mounting, so the first screen already shows data: no spinner waits
//! for a network.

mod browser;
mod engine;
mod state;
mod tabs;
mod views;

use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    // Leptos's executor starts with the first mount; boot runs before it.
    wasm_bindgen_futures::spawn_local(async {
        match engine::Engine::boot().await {
            Ok(booted) => {
                let state = state::AppState::new(booted.engine, booted.workspace, booted.rows, booted.quarantined);
                let channel = tabs::TabChannel::open(engine::DB_NAME, move |ids| state.take_external(ids));
                state.tabs.set_value(channel.map(std::rc::Rc::new));
                clear_loading();
                leptos::mount::mount_to_body(move || {
                    provide_context(state);
                    view! { <views::shell::App/> }
                });
            }
            Err(e) => {
                clear_loading();
                let message = e.to_string();
                leptos::mount::mount_to_body(move || view! { <views::shell::BootFailure message=message.clone()/> });
            }
        }
    });
}

/// Removes the static "Opening your workspace…" placeholder of index.html.
fn clear_loading() {
    if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("boot")) {
        el.remove();
    }
}
