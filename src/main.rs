//! Rapport's web app: a Leptos client-side app over the domain core.
//!
//! Start-up opens the local workspace from IndexedDB ([`engine::Engine::boot`])
//! before mounting, so the first screen already shows data: no spinner waits
//! for a network.

mod browser;
mod engine;
mod net;
mod pwa;
mod state;
mod sync;
mod tabs;
mod views;

use leptos::prelude::*;

fn main() {
    console_error_panic_hook::set_once();
    let pwa = pwa::Pwa::start();
    // Leptos's executor starts with the first mount; boot runs before it.
    wasm_bindgen_futures::spawn_local(async move {
        match engine::Engine::boot().await {
            Ok(booted) => {
                let db_name = booted.engine.db_name.clone();
                let sync_config = booted.sync.clone();
                let join_error = booted.join_error.clone();
                let state = state::AppState::new(booted);
                let channel = tabs::TabChannel::open(
                    &db_name,
                    move |ids| {
                        // Another tab stored these: refresh them here, and
                        // if this tab holds the relay connection, send them.
                        if let Some(sync) = state.sync.get_value() {
                            sync.local_changes();
                        }
                        state.take_external(ids);
                    },
                    move |badge| {
                        state.sync_badge.set(Some(badge));
                        state.learn_sharing();
                    },
                );
                state.tabs.set_value(channel.map(std::rc::Rc::new));
                clear_loading();
                leptos::mount::mount_to_body(move || {
                    provide_context(state);
                    pwa.provide(state);
                    view! { <views::shell::App/> }
                });
                // After the mount, which starts Leptos's task executor.
                if let Some(config) = sync_config {
                    sync::start(state, config, &db_name);
                }
                // Finish any erasure learned of before (or interrupted by) a restart.
                leptos::task::spawn_local(state.purge_erased());
                if let Some(message) = join_error {
                    state.notify(message, None);
                }
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
