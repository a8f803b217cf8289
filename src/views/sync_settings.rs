//! Settings → Sync: share this workspace through a relay and hand out the
//! invite link, or see how a shared workspace syncs.

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_sync::SyncConfig;

use super::widgets::TextField;
use crate::browser;
use crate::state::{use_app, Sharing};

/// The relay the README's run command starts; a sensible first suggestion.
const LOCAL_RELAY: &str = "ws://127.0.0.1:8787/sync";

#[component]
pub fn SyncSettings() -> impl IntoView {
    let app = use_app();
    view! {
        <div class="card" id="sync" data-testid="sync-settings">
            <h2>"Sync and sharing"</h2>
            {move || match app.sharing.get() {
                None => view! { <ShareForm/> }.into_any(),
                Some(sharing) => view! { <SharedInfo sharing=sharing/> }.into_any(),
            }}
        </div>
    }
}

#[component]
fn ShareForm() -> impl IntoView {
    let app = use_app();
    let relay = RwSignal::new(LOCAL_RELAY.to_owned());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let share = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let url = relay.get_untracked().trim().to_owned();
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            error.set(Some("Enter the sync server's address, starting with wss:// (or ws:// on this computer)".into()));
            return;
        }
        let config = match SyncConfig::create(url, browser::random()) {
            Ok(c) => c,
            Err(e) => {
                error.set(Some(e.to_string()));
                return;
            }
        };
        error.set(None);
        busy.set(true);
        spawn_local(async move {
            let engine = app.engine();
            match engine.share(&config).await {
                Ok(()) => {
                    app.sharing.set(Some(Sharing::of(&config)));
                    crate::sync::start(app, config, &engine.db_name);
                    app.notify("This workspace is now shared. Send the invite link to your team.", None);
                }
                Err(e) => error.set(Some(format!("Sharing could not start: {e}"))),
            }
            busy.set(false);
        });
    };
    view! {
        <p class="muted">
            "This workspace is only on this device. Share it through a sync server to work on it from other "
            "browsers. Everything is encrypted here before it is sent: the server stores only ciphertext, and "
            "the key travels only inside the invite link."
        </p>
        <form class="form inline-form" on:submit=share>
            <TextField id="relay-url" label="Sync server address" value=relay error=error input_type="url"/>
            <button type="submit" class="btn primary" disabled=move || busy.get()>
                {move || if busy.get() { "Sharing…" } else { "Share this workspace" }}
            </button>
        </form>
    }
}

#[component]
fn SharedInfo(sharing: Sharing) -> impl IntoView {
    let app = use_app();
    let copied = RwSignal::new(false);
    let invite = {
        let sharing = sharing.clone();
        Memo::new(move |_| app.workspace.with(|w| sharing.invite_url(&w.name)))
    };
    let copy = move |_| {
        let invite = invite.get_untracked();
        if let Some(clipboard) = web_sys::window().map(|w| w.navigator().clipboard()) {
            let _ = clipboard.write_text(&invite);
            copied.set(true);
        }
    };
    let status = move || app.sync_badge.get();
    view! {
        <dl class="sync-facts">
            <dt>"Sync server"</dt>
            <dd><code>{sharing.relay_url.clone()}</code></dd>
            <dt>"Status"</dt>
            <dd data-testid="sync-settings-status">
                {move || status().map(|b| b.label).unwrap_or_else(|| "Not connected".into())}
                {move || status().and_then(|b| b.detail).map(|d| view! { <p class="muted small">{d}</p> })}
            </dd>
            {move || {
                let set_aside = status().map(|b| b.set_aside).unwrap_or_default();
                (!set_aside.is_empty()).then(|| view! {
                    <dt>"Changes set aside"</dt>
                    <dd>
                        <ul class="plain-list" data-testid="sync-set-aside" aria-label="Changes set aside">
                            {set_aside.into_iter().map(|line| view! { <li>{line}</li> }).collect_view()}
                        </ul>
                        <p class="muted small">
                            "This device could not read these changes from your team, so it set them aside and "
                            "kept syncing everything else. They stay on the sync server; nothing was deleted."
                        </p>
                    </dd>
                })
            }}
        </dl>
        <div class="field">
            <label for="invite-link">"Invite link"</label>
            <div class="copy-row">
                <input id="invite-link" readonly=true prop:value=move || invite.get() data-testid="invite-link"
                    on:focus=|ev| {
                        use wasm_bindgen::JsCast;
                        if let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                            input.select();
                        }
                    }/>
                <button type="button" class="btn" on:click=copy>{move || if copied.get() { "Copied" } else { "Copy link" }}</button>
            </div>
            <p class="hint">
                "Anyone with this link can read and change this workspace. Send it only to your team, over a "
                "channel you trust. The part after # never reaches the server."
            </p>
        </div>
        {move || app.sync.get_value().map(|s| view! {
            <button class="btn" on:click=move |_| s.retry()>"Sync now"</button>
        })}
    }
}
