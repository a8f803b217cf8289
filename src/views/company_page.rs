//! One company: details, its people (contacts linked through `company_id`),
//! its deals, the activity timeline with the log form, and delete with undo.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};
use rapport_core::ids::RecordId;
use rapport_core::record::{Record, RecordKind};
use rapport_core::repo::OpenError;
use rapport_core::sales::company::Company;
use rapport_core::sales::deal;

use super::companies::company_initials;
use super::conflicts::ConflictCard;
use super::contacts::initials;
use super::follow_ups::FollowUps;
use super::timeline::ActivityPanel;
use crate::browser;
use crate::state::{use_app, AppState};

#[component]
pub fn CompanyPage() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let id_param = move || params.with(|p| p.get("id").unwrap_or_default());
    // Reload when another tab or sync changed this record.
    let external = Memo::new(move |_| {
        let (n, ids) = app.external.get();
        let id = id_param();
        ids.iter().any(|i| i.to_string() == id).then_some(n)
    });
    // And after a conflict pick here.
    let reload = RwSignal::new(0u32);
    let loaded = LocalResource::new(move || {
        external.track();
        reload.track();
        let id = id_param();
        async move {
            let id: RecordId = id.parse().map_err(|_| OpenError::NotFound(RecordId::from_bytes([0; 16])))?;
            let result = app.engine().open::<Company>(id).await;
            if let Err(OpenError::Corrupt { .. }) = &result {
                app.refresh_quarantine();
            }
            result
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok(c) => view! { <CompanyView company=c reload=reload/> }.into_any(),
                Err(e) => view! { <OpenFailure error=e/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn OpenFailure(error: OpenError) -> impl IntoView {
    let (headline, advice, detail) = match &error {
        OpenError::NotFound(_) => (
            "Company not found",
            "There is no company at this address on this device. It may have been erased, or the link is incomplete.",
            None,
        ),
        OpenError::Corrupt { reason, .. } => (
            "This company could not be read and was set aside",
            "Its stored data on this device is damaged. The bytes are kept unchanged for recovery; other records are not affected.",
            Some(reason.clone()),
        ),
        OpenError::Storage(e) => ("This company could not be loaded", "Reload the page to try again.", Some(e.to_string())),
    };
    view! {
        <section class="page">
            <div class="banner error" role="alert" data-testid="company-error">
                <strong>{headline}</strong>
                <p>{advice}</p>
                {detail.map(|d| view! { <details><summary>"Technical detail"</summary><code>{d}</code></details> })}
            </div>
            <a class="btn" href=browser::href("/companies")>"Back to companies"</a>
        </section>
    }
}

fn set_deleted(app: AppState, mut company: Company, deleted: bool, on_done: Option<Callback<bool>>) {
    spawn_local(async move {
        let engine = app.engine();
        company.deleted = deleted;
        company.touch(browser::now(), engine.member);
        let name = company.name.clone();
        let again = company.clone();
        if app.persist(company, false).await.is_ok() {
            if let Some(done) = on_done {
                done.run(deleted);
            }
            if deleted {
                let undo: Rc<dyn Fn()> = Rc::new(move || set_deleted(app, again.clone(), false, None));
                app.notify(format!("Deleted {name}"), Some(("Undo".into(), undo)));
            } else {
                app.notify(format!("Restored {name}"), None);
            }
        }
    });
}

/// A deal of this company, from its row.
#[derive(Debug, Clone, PartialEq)]
struct DealLine {
    id: RecordId,
    title: String,
    value: String,
    stage: String,
    status: String,
}

#[component]
fn CompanyView(company: Company, reload: RwSignal<u32>) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let company = RwSignal::new(company);
    let c = company.get_untracked();
    let id = c.id;
    let ws = app.workspace;
    let member = move |m: rapport_core::ids::MemberId| ws.with(|w| w.member_name(m));

    let on_delete = move |_| {
        let navigate = navigate.clone();
        let done = Callback::new(move |_| navigate("/companies", Default::default()));
        set_deleted(app, company.get_untracked(), true, Some(done));
    };
    let restore = move |_| {
        let done = Callback::new(move |deleted: bool| company.update(|c| c.deleted = deleted));
        set_deleted(app, company.get_untracked(), false, Some(done));
    };

    // People: live contacts whose `company_id` is this company.
    let people = Memo::new(move |_| {
        let key = id.to_string();
        app.index.with(|i| {
            let mut out: Vec<(RecordId, String, String)> = i
                .rows()
                .iter()
                .filter(|r| r.kind == RecordKind::Contact && !r.deleted && r.column("company_id") == key)
                .map(|r| (r.id, r.title.clone(), r.column("title").to_owned()))
                .collect();
            out.sort_by_key(|(_, name, _)| rapport_core::search::fold(name));
            out
        })
    });
    // Deals: live deals whose `company` column is this company.
    let deals = Memo::new(move |_| {
        let key = id.to_string();
        app.index.with(|i| {
            let mut out: Vec<DealLine> = i
                .rows()
                .iter()
                .filter(|r| r.kind == RecordKind::Deal && !r.deleted && r.column(deal::columns::COMPANY) == key)
                .map(|r| {
                    let stage = ws.with(|w| {
                        w.stage(r.column(deal::columns::PIPELINE), r.column(deal::columns::STAGE))
                            .map(|s| s.name.clone())
                            .unwrap_or_default()
                    });
                    DealLine {
                        id: r.id,
                        title: r.title.clone(),
                        value: r.subtitle.clone(),
                        stage,
                        status: r.column(deal::columns::STATUS).to_owned(),
                    }
                })
                .collect();
            // Open deals first, then by title.
            out.sort_by(|a, b| (a.status != "open", &a.title).cmp(&(b.status != "open", &b.title)));
            out
        })
    });

    let custom_rows = ws.with_untracked(|w| {
        w.fields_for(RecordKind::Company)
            .filter_map(|(k, d)| c.custom.get(k).map(|v| (d.label.clone(), v.clone())))
            .collect::<Vec<_>>()
    });
    let add_person = browser::href(&format!("/contacts/new?company={}", urlencode(&c.name)));
    let subtitle = c.row().subtitle;

    view! {
        <section class="page contact-page company-page" data-testid="company-page">
            <div class="page-head contact-head">
                <span class="avatar large square" aria-hidden="true">{company_initials(&c.name)}</span>
                <div class="head-text">
                    <h1 data-testid="company-name">{c.name.clone()}</h1>
                    <p class="muted">
                        {(!c.domain.is_empty()).then(|| view! {
                            <a href=format!("https://{}", c.domain) target="_blank" rel="noopener noreferrer">{c.domain.clone()}</a>
                            {(!subtitle.is_empty()).then_some(" · ")}
                        })}
                        {subtitle.clone()}
                    </p>
                </div>
                <div class="head-actions">
                    <a class="btn primary" href=browser::href(&format!("/companies/{id}/edit"))>"Edit"</a>
                    <button class="btn danger" on:click=on_delete>"Delete"</button>
                </div>
            </div>
            {move || company.with(|c| c.deleted).then(|| view! {
                <div class="banner warn" role="status">"This company is deleted. " <button class="btn small" on:click=restore>"Restore"</button></div>
            })}
            <ConflictCard id=id noun="company" on_picked=move |()| reload.update(|n| *n += 1)/>
            <div class="company-grid">
                <div class="company-side">
                    <div class="card details">
                        <h2>"Details"</h2>
                        <dl>
                            {(!c.industry.is_empty()).then(|| view! { <dt>"Industry"</dt><dd>{c.industry.clone()}</dd> })}
                            {(!c.size.is_empty()).then(|| view! { <dt>"Size"</dt><dd>{format!("{} people", c.size)}</dd> })}
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
                    <section class="card people" aria-labelledby="people-heading" data-testid="company-people">
                        <div class="row-between card-head">
                            <h2 id="people-heading">{move || format!("People ({})", people.with(Vec::len))}</h2>
                            <a class="btn small" href=add_person.clone()>"Add a person"</a>
                        </div>
                        {move || {
                            let list = people.get();
                            if list.is_empty() {
                                view! { <p class="muted">"No one linked yet. A contact whose company is this name is linked to it."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="plain-list link-list">
                                        {list.into_iter().map(|(pid, name, title)| view! {
                                            <li>
                                                <span class="avatar" aria-hidden="true">{initials(&name)}</span>
                                                <span class="name-text">
                                                    <a href=browser::href(&format!("/contacts/{pid}"))>{name.clone()}</a>
                                                    {(!title.is_empty()).then(|| view! { <small>{title.clone()}</small> })}
                                                </span>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            }
                        }}
                    </section>
                    <section class="card deals" aria-labelledby="deals-heading" data-testid="company-deals">
                        <div class="row-between card-head">
                            <h2 id="deals-heading">{move || format!("Deals ({})", deals.with(Vec::len))}</h2>
                            <a class="btn small" href=browser::href(&format!("/deals/new?company={id}"))>"New deal"</a>
                        </div>
                        {move || {
                            let list = deals.get();
                            if list.is_empty() {
                                view! { <p class="muted">"No deals yet. Deals whose company is this one are listed here."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="plain-list link-list">
                                        {list.into_iter().map(|d| {
                                            let badge = match d.status.as_str() {
                                                "won" => Some(("Won", "badge granted")),
                                                "lost" => Some(("Lost", "badge withdrawn")),
                                                _ => None,
                                            };
                                            view! {
                                                <li class="deal-line">
                                                    <span class="name-text">
                                                        <a href=browser::href(&format!("/deals/{}", d.id))>{d.title.clone()}</a>
                                                        <small>{[d.value.clone(), d.stage.clone()].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" · ")}</small>
                                                    </span>
                                                    {badge.map(|(text, class)| view! { <span class=class>{text}</span> })}
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            }
                        }}
                    </section>
                </div>
                <div class="company-main">
                    <FollowUps target=id target_kind=RecordKind::Company/>
                    <ActivityPanel target=id target_kind=RecordKind::Company/>
                </div>
            </div>
        </section>
    }
}

/// Percent-encodes a query value.
fn urlencode(s: &str) -> String {
    js_sys::encode_uri_component(s).into()
}
