//! One contact: details, concurrent values to resolve, the consent panel,
//! and delete with undo.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};
use rapport_core::contact::Contact;
use rapport_core::ids::RecordId;
use rapport_core::record::{Record, RecordKind};
use rapport_core::repo::OpenError;
use rapport_core::sales::activity::ActivityKind;

use super::conflicts::ConflictCard;
use super::consent::ConsentPanel;
use super::contacts::initials;
use super::follow_ups::FollowUps;
use super::privacy::PrivacyPanel;
use super::timeline::ActivityPanel;
use crate::browser;
use crate::state::{use_app, AppState};

#[component]
pub fn ContactPage() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let reload = RwSignal::new(0u32);
    let id_param = move || params.with(|p| p.get("id").unwrap_or_default());
    // Reload when another tab or sync changed this record.
    let external = Memo::new(move |_| {
        let (n, ids) = app.external.get();
        let id = id_param();
        ids.iter().any(|i| i.to_string() == id).then_some(n)
    });
    let loaded = LocalResource::new(move || {
        reload.track();
        external.track();
        let id = id_param();
        async move {
            let id: RecordId = id.parse().map_err(|_| OpenError::NotFound(RecordId::from_bytes([0; 16])))?;
            let result = app.engine().open::<Contact>(id).await;
            if let Err(OpenError::Corrupt { .. }) = &result {
                app.refresh_quarantine();
            }
            result
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok(c) => view! { <ContactView contact=c reload=reload/> }.into_any(),
                Err(e) => view! { <OpenFailure error=e/> }.into_any(),
            })}
        </Suspense>
    }
}

/// Why a contact cannot be shown, in words first and technical detail second.
#[component]
fn OpenFailure(error: OpenError) -> impl IntoView {
    let (headline, advice, detail) = match &error {
        OpenError::NotFound(_) => (
            "Contact not found".to_owned(),
            "There is no contact at this address on this device. It may have been erased, or the link is incomplete.",
            None,
        ),
        OpenError::Corrupt { reason, .. } => (
            "This contact could not be read and was set aside".to_owned(),
            "Its stored data on this device is damaged. The bytes are kept unchanged for recovery; other contacts are not affected.",
            Some(reason.clone()),
        ),
        OpenError::Storage(e) => ("This contact could not be loaded".to_owned(), "Reload the page to try again.", Some(e.to_string())),
    };
    view! {
        <section class="page">
            <div class="banner error" role="alert" data-testid="contact-error">
                <strong>{headline}</strong>
                <p>{advice}</p>
                {detail.map(|d| view! { <details><summary>"Technical detail"</summary><code>{d}</code></details> })}
            </div>
            <a class="btn" href=browser::href("/contacts")>"Back to contacts"</a>
        </section>
    }
}

fn delete(app: AppState, mut contact: Contact, deleted: bool) {
    spawn_local(async move {
        let engine = app.engine();
        contact.deleted = deleted;
        contact.touch(browser::now(), engine.member);
        let name = contact.display_name();
        let again = contact.clone();
        if app.persist(contact, false).await.is_ok() && deleted {
            let undo: Rc<dyn Fn()> = Rc::new(move || delete(app, again.clone(), false));
            app.notify(format!("Deleted {name}"), Some(("Undo".into(), undo)));
        } else if !deleted {
            app.notify(format!("Restored {name}"), None);
        }
    });
}

#[component]
fn ContactView(contact: Contact, reload: RwSignal<u32>) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let contact = RwSignal::new(contact);
    let c = contact.get_untracked();
    let id = c.id;
    let ws = app.workspace;
    // The "Log a call" button opens the activity form further down.
    let log_request = RwSignal::new(None::<ActivityKind>);
    let member = move |m: rapport_core::ids::MemberId| ws.with(|w| w.member_name(m));

    let on_delete = {
        let navigate = navigate.clone();
        move |_| {
            delete(app, contact.get_untracked(), true);
            navigate("/contacts", Default::default());
        }
    };
    let restore = move |_| {
        delete(app, contact.get_untracked(), false);
        contact.update(|c| c.deleted = false);
    };

    let custom_rows = ws.with_untracked(|w| {
        w.fields_for(RecordKind::Contact)
            .filter_map(|(k, d)| c.custom.get(k).map(|v| (d.label.clone(), v.clone())))
            .collect::<Vec<_>>()
    });

    view! {
        <section class="page contact-page" data-testid="contact-page">
            <div class="page-head contact-head">
                <span class="avatar large" aria-hidden="true">{initials(&c.display_name())}</span>
                <div class="head-text">
                    <h1 data-testid="contact-name">{c.display_name()}</h1>
                    {move || contact.with(|c| c.is_restricted()).then(|| view! { <span class="badge restricted" data-testid="restricted-badge">"Restricted"</span> })}
                    <p class="muted">{c.row().subtitle}</p>
                </div>
                <div class="head-actions">
                    <button class="btn" on:click=move |_| log_request.set(Some(ActivityKind::Call))>"Log a call"</button>
                    <a class="btn primary" href=browser::href(&format!("/contacts/{id}/edit"))>"Edit"</a>
                    <button class="btn danger" on:click=on_delete>"Delete"</button>
                </div>
            </div>
            {move || contact.with(|c| c.deleted).then(|| view! {
                <div class="banner warn" role="status">"This contact is deleted. " <button class="btn small" on:click=restore>"Restore"</button></div>
            })}
            <ConflictCard id=id noun="contact" on_picked=move |()| reload.update(|n| *n += 1)/>
            <div class="contact-grid">
                <div class="card details">
                    <h2>"Details"</h2>
                    <dl>
                        {c.emails.iter().map(|e| view! {
                            <dt>{format!("Email{}", if e.label.is_empty() { String::new() } else { format!(" ({})", e.label) })}</dt>
                            <dd><a href=format!("mailto:{}", e.value)>{e.value.clone()}</a></dd>
                        }).collect_view()}
                        {c.phones.iter().map(|p| view! {
                            <dt>{format!("Phone{}", if p.label.is_empty() { String::new() } else { format!(" ({})", p.label) })}</dt>
                            <dd><a href=format!("tel:{}", p.value)>{rapport_core::validate::format_phone(&p.value)}</a></dd>
                        }).collect_view()}
                        {(!c.company_name.is_empty() || c.company_id.is_some()).then(|| {
                            // The linked company's current name while it is live;
                            // greyed once deleted; the typed name otherwise.
                            let typed = c.company_name.clone();
                            let linked = c.company_id;
                            view! {
                                <dt>"Company"</dt>
                                <dd data-testid="contact-company">
                                    {move || match linked.and_then(|id| app.index.with(|i| i.get(id).map(|r| (id, r.title.clone(), r.deleted)))) {
                                        Some((id, name, false)) => view! { <a href=browser::href(&format!("/companies/{id}"))>{name}</a> }.into_any(),
                                        Some((_, name, true)) => view! { <span class="deleted-link">{format!("{name} (deleted)")}</span> }.into_any(),
                                        None => view! { <span>{typed.clone()}</span> }.into_any(),
                                    }}
                                </dd>
                            }
                        })}
                        {(!c.title.is_empty()).then(|| view! { <dt>"Job title"</dt><dd>{c.title.clone()}</dd> })}
                        {(!c.address.one_line().is_empty()).then(|| view! { <dt>"Address"</dt><dd>{c.address.one_line()}</dd> })}
                        <dt>"Owner"</dt><dd>{c.owner.map(member).unwrap_or_else(|| "No owner".into())}</dd>
                        {(!c.tags.is_empty()).then(|| view! {
                            <dt>"Tags"</dt>
                            <dd>{c.tags.iter().map(|t| view! { <span class="tag">{t.clone()}</span> }).collect_view()}</dd>
                        })}
                        {custom_rows.into_iter().map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> }).collect_view()}
                    </dl>
                    {(!c.notes.is_empty()).then(|| view! { <h3>"Notes"</h3><p class="notes">{c.notes.clone()}</p> })}
                    <p class="muted small">
                        {format!("Created {} by {} · Updated {} by {}",
                            browser::format_time(c.created_at), member(c.created_by),
                            browser::format_time(c.updated_at), member(c.updated_by))}
                    </p>
                </div>
                <ConsentPanel contact=contact/>
            </div>
            <FollowUps target=id target_kind=RecordKind::Contact/>
            <ActivityPanel target=id target_kind=RecordKind::Contact request=log_request/>
            <PrivacyPanel contact=contact/>
        </section>
    }
}
