//! The privacy panel of a contact: restriction of processing, the access
//! export (JSON and a printable page), erasure with a preview of exactly
//! what goes, and the record's change history (who changed what, when).

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use rapport_core::audit;
use rapport_core::contact::Contact;
use rapport_core::privacy::access::{self, AccessRequest};
use rapport_core::privacy::plan_erasure;
use wasm_bindgen::JsCast;

use super::widgets::Dialog;
use crate::browser;
use crate::state::use_app;

/// Offers `text` to the user as a file download.
pub(crate) fn download(file_name: &str, mime: &str, text: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| "the browser refused to build the file")?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "the browser refused to offer the file")?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let anchor = document
        .create_element("a")
        .ok()
        .and_then(|a| a.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        .ok_or("no link element")?;
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

#[component]
pub fn PrivacyPanel(contact: RwSignal<Contact>) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let ws = app.workspace;
    let confirm_open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    // Re-read after every change to the contact shown here.
    let history = LocalResource::new(move || {
        let id = contact.with(|c| c.id);
        async move { app.engine().history(id).await }
    });
    let entries = move || history.get().unwrap_or_default();

    let toggle_restriction = move |_| {
        let engine = app.engine();
        let mut c = contact.get_untracked();
        let now = browser::now();
        if c.is_restricted() {
            c.lift_restriction(now, engine.member);
        } else {
            c.restrict(now, engine.member);
        }
        c.touch(now, engine.member);
        spawn_local(async move {
            match app.persist(c.clone(), false).await {
                Ok(_) => contact.set(c),
                Err(e) => error.set(Some(e)),
            }
        });
    };

    let request = move |f: &dyn Fn(&AccessRequest<'_>) -> Result<(), String>| {
        let c = contact.get_untracked();
        let rows: Vec<_> = app.index.with_untracked(|i| i.rows().to_vec());
        let related = access::related_rows(c.id, &rows);
        let workspace = ws.get_untracked();
        let entries = history.get_untracked().unwrap_or_default();
        let req = AccessRequest {
            contact: &c,
            history: &entries,
            related: &related,
            workspace: &workspace,
            generated_at: browser::now(),
            generated_by: app.engine().member,
        };
        if let Err(e) = f(&req) {
            error.set(Some(format!("The export could not be offered: {e}")));
        }
    };
    let export_json = move |_| {
        request(&|req| {
            let json = serde_json::to_string_pretty(&access::access_export(req)).map_err(|e| e.to_string())?;
            download(&access::file_name(req, "json"), "application/json", &json)
        })
    };
    let export_html = move |_| {
        request(&|req| download(&access::file_name(req, "html"), "text/html", &access::access_report_html(req)))
    };

    let plan = move || {
        let c = contact.get();
        app.index.with_untracked(|i| plan_erasure(&c, i.rows()))
    };
    // Leaving the page happens outside the dialog (whose content is rebuilt
    // each time it opens), once the erasure is done.
    let erased = RwSignal::new(false);
    Effect::new(move |_| {
        if erased.get() {
            navigate(&browser::href("/contacts"), Default::default());
        }
    });
    let erase = move |_| {
        busy.set(true);
        let plan = plan();
        let name = contact.with_untracked(Contact::display_name);
        spawn_local(async move {
            match app.erase(plan).await {
                Ok(()) => {
                    confirm_open.set(false);
                    app.notify(
                        format!(
                            "Erased {name} from this device; other devices and the sync server follow when they sync."
                        ),
                        None,
                    );
                    erased.set(true);
                }
                Err(e) => {
                    busy.set(false);
                    error.set(Some(e));
                }
            }
        });
    };
    let member = move |m: Option<rapport_core::ids::MemberId>| {
        m.map(|m| ws.with(|w| w.member_name(m))).unwrap_or_else(|| "Someone".into())
    };

    view! {
        <div class="card privacy" data-testid="privacy-panel">
            <h2>"Privacy"</h2>
            {move || error.get().map(|e| view! { <div class="banner error" role="alert">{e}</div> })}
            <div class="privacy-row">
                <div>
                    <strong>"Processing"</strong>
                    <p class="muted small" data-testid="restriction-status">
                        {move || contact.with(|c| match &c.restriction {
                            Some(r) => format!("Restricted since {} by {}: kept, but left out of campaigns, exports for a purpose and bulk actions.",
                                browser::format_time(r.since), ws.with(|w| w.member_name(r.by))),
                            None => "Not restricted.".to_owned(),
                        })}
                    </p>
                </div>
                <button class="btn small" on:click=toggle_restriction>
                    {move || if contact.with(Contact::is_restricted) { "Lift restriction" } else { "Restrict processing" }}
                </button>
            </div>
            <div class="privacy-row">
                <div>
                    <strong>"Access request"</strong>
                    <p class="muted small">"Everything this workspace holds about this person, with its change history."</p>
                </div>
                <div class="btn-group">
                    <button class="btn small" on:click=export_json>"Download data (JSON)"</button>
                    <button class="btn small" on:click=export_html>"Printable report"</button>
                </div>
            </div>
            <div class="privacy-row">
                <div>
                    <strong>"Erasure"</strong>
                    <p class="muted small">"Removes this person's data from every device and the sync server. This cannot be undone."</p>
                </div>
                <button class="btn small danger" on:click=move |_| confirm_open.set(true)>"Erase…"</button>
            </div>
            <h3>"Change history"</h3>
            <ol class="audit" data-testid="audit-history">
                {move || entries().into_iter().take(50).map(|e| view! {
                    <li>
                        <span>{format!("{} by {}", e.action.label(), member(e.member))}</span>
                        <span class="muted small">
                            {format!(" · {} · {}", browser::format_time(e.at),
                                e.fields.iter().map(|f| audit::field_label(f)).collect::<Vec<_>>().join(", "))}
                        </span>
                    </li>
                }).collect_view()}
            </ol>
            <Dialog open=confirm_open title=Signal::derive(move || format!("Erase {}?", contact.with(Contact::display_name))) testid="erase-dialog">
                <div data-testid="erase-preview">
                    {move || plan().preview_lines().into_iter().map(|line| view! { <p>{line}</p> }).collect_view()}
                </div>
                <div class="form-actions">
                    <button class="btn danger" on:click=erase disabled=move || busy.get()>
                        {move || if busy.get() { "Erasing…" } else { "Erase permanently" }}
                    </button>
                    <button class="btn" on:click=move |_| confirm_open.set(false)>"Cancel"</button>
                </div>
            </Dialog>
        </div>
    }
}
