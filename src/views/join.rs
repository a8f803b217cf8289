//! The join confirmation: opening an invite link shows what would be joined
//! (the workspace's name and its sync server) and asks for the person's name
//! before anything is joined; nothing is stored or sent until they agree.

use std::rc::Rc;

use leptos::prelude::*;

use crate::engine::InvitePreview;

/// The person's answer: the name they gave to join under, or `None` when
/// they chose not to join.
pub type Decide = Rc<dyn Fn(Option<String>)>;

#[component]
pub fn JoinConfirm(preview: InvitePreview, decide: Decide) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let missing = RwSignal::new(false);
    let decided = RwSignal::new(false);
    let workspace =
        preview.workspace_name.clone().unwrap_or_else(|| "A shared workspace (the link gives no name)".into());
    let title = preview
        .workspace_name
        .clone()
        .map_or_else(|| "Join a shared workspace?".to_owned(), |n| format!("Join “{n}”?"));
    let join = {
        let decide = decide.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let given = name.get_untracked().trim().to_owned();
            if given.is_empty() {
                missing.set(true);
                // Once the field is marked invalid.
                request_animation_frame(crate::browser::focus_first_invalid);
                return;
            }
            if !decided.get_untracked() {
                decided.set(true);
                decide(Some(given));
            }
        }
    };
    let decline = move |_| {
        if !decided.get_untracked() {
            decided.set(true);
            decide(None);
        }
    };
    view! {
        <main class="join-page" id="main">
            <form class="card form join-card" on:submit=join novalidate=true data-testid="join-confirm">
                <h1>{title}</h1>
                <p>"This link invites you to share a workspace with a team. Nothing is joined until you choose to."</p>
                <dl class="sync-facts">
                    <dt>"Workspace"</dt>
                    <dd data-testid="join-workspace">{workspace}</dd>
                    <dt>"Sync server"</dt>
                    <dd><code data-testid="join-relay">{preview.relay_url.clone()}</code></dd>
                </dl>
                <p class="hint">
                    "Joining copies the workspace's records to this device and sends your changes to its members "
                    "through that sync server, encrypted: the server cannot read them. Join only if you expected "
                    "this link from someone you trust."
                </p>
                <p class="hint">
                    "Anyone who has this link can join and read the workspace, so a link copied or forwarded "
                    "elsewhere can be used until the workspace's key is changed."
                </p>
                <div class="field">
                    <label for="join-name">"Your name"</label>
                    <input id="join-name" autocomplete="name" required=true autofocus=true
                        aria-invalid=move || missing.get().to_string()
                        aria-describedby="join-name-hint join-name-error"
                        prop:value=move || name.get()
                        on:input=move |ev| { name.set(event_target_value(&ev)); missing.set(false); }/>
                    <p class="hint" id="join-name-hint">"The others see it next to your changes."</p>
                    {move || missing.get().then(|| view! {
                        <p class="field-error" id="join-name-error" role="alert">"Enter your name to join"</p>
                    })}
                </div>
                <div class="form-actions">
                    <button type="submit" class="btn primary" disabled=move || decided.get()>"Join workspace"</button>
                    <button type="button" class="btn" on:click=decline disabled=move || decided.get()>"Don't join"</button>
                </div>
            </form>
        </main>
    }
}
