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
        let (joining, invite_error) = match engine::take_invite_from_address() {
            None => (None, None),
            Some(invite) => match engine::preview_invite(&invite) {
                Ok(preview) => {
                    let joining =
                        confirm_join(preview).await.map(|member_name| engine::Joining { invite, member_name });
                    (joining, None)
                }
                Err(e) => (None, Some(format!("This invite link cannot be used: {e}"))),
            },
        };
        match engine::Engine::boot(joining).await {
            Ok(booted) => {
                let db_name = booted.engine.db_name.clone();
                let sync_config = booted.sync.clone();
                let join_error = booted.join_error.clone().or(invite_error);
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

/// Shows what an invite link would join and waits for the person's answer:
/// the name they gave, or `None` when they chose not to join. The screen is
/// unmounted before the app boots.
async fn confirm_join(preview: engine::InvitePreview) -> Option<String> {
    use wasm_bindgen::JsValue;
    let body = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body())?;
    let mut resolve_slot = None;
    let answer = js_sys::Promise::new(&mut |resolve, _reject| resolve_slot = Some(resolve));
    let resolve = resolve_slot?;
    let decide: views::join::Decide = std::rc::Rc::new(move |name: Option<String>| {
        let value = name.map_or(JsValue::NULL, |n| JsValue::from_str(&n));
        // Resolving a promise created here cannot fail.
        let _ = resolve.call1(&JsValue::NULL, &value);
    });
    clear_loading();
    let screen = leptos::mount::mount_to(body, move || {
        view! { <views::join::JoinConfirm preview=preview.clone() decide=decide.clone()/> }
    });
    let answer = wasm_bindgen_futures::JsFuture::from(answer).await.ok().and_then(|v| v.as_string());
    drop(screen);
    answer
}

/// Removes the static "Opening your workspace…" placeholder of index.html.
fn clear_loading() {
    if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("boot")) {
        el.remove();
    }
}
