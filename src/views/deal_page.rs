//! One deal (`/deals/:id`): value, stage with a progress bar, probability
//! and weighted value, close date, owner, company and people (live ones as
//! links), won/lost reason, the stage history, the activity timeline, and
//! delete with undo.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::repo::OpenError;
use rapport_core::sales::deal::{self, Deal};
use rapport_core::sales::money;
use rapport_core::sales::pipeline::Outcome;
use rapport_core::workspace::Workspace;

use super::conflicts::ConflictCard;
use super::deals::{format_date, live_title, stage_label};
use super::follow_ups::FollowUps;
use super::timeline::ActivityPanel;
use crate::browser;
use crate::state::{use_app, AppState};

#[component]
pub fn DealPage() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let id_param = move || params.with(|p| p.get("id").unwrap_or_default());
    // Reload when another tab or sync changed this deal.
    let external = Memo::new(move |_| {
        let (n, ids) = app.external.get();
        let id = id_param();
        ids.iter().any(|i| i.to_string() == id).then_some(n)
    });
    // And after a move from elsewhere in this tab (the row changes).
    let row_stamp = Memo::new(move |_| {
        let id = id_param().parse::<RecordId>().ok()?;
        app.index.with(|i| i.get(id).map(|r| (r.updated_at, r.deleted)))
    });
    let loaded = LocalResource::new(move || {
        external.track();
        row_stamp.track();
        let id = id_param();
        async move {
            let id: RecordId = id.parse().map_err(|_| OpenError::NotFound(RecordId::from_bytes([0; 16])))?;
            let result = app.engine().open::<Deal>(id).await;
            if let Err(OpenError::Corrupt { .. }) = &result {
                app.refresh_quarantine();
            }
            result
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok(d) => view! { <DealView deal=d/> }.into_any(),
                Err(e) => {
                    let (headline, detail) = match &e {
                        OpenError::NotFound(_) => ("Deal not found", "There is no deal at this address on this device. It may have been erased, or the link is incomplete.".to_owned()),
                        OpenError::Corrupt { reason, .. } => ("This deal could not be read and was set aside", format!("Its stored data on this device is damaged ({reason}). Other records are not affected.")),
                        OpenError::Storage(s) => ("This deal could not be loaded", format!("Reload the page to try again. ({s})")),
                    };
                    view! {
                        <section class="page">
                            <div class="banner error" role="alert" data-testid="deal-error"><strong>{headline}</strong><p>{detail}</p></div>
                            <a class="btn" href=browser::href("/deals")>"Back to deals"</a>
                        </section>
                    }.into_any()
                }
            })}
        </Suspense>
    }
}

fn set_deleted(app: AppState, mut deal: Deal, deleted: bool) {
    spawn_local(async move {
        let engine = app.engine();
        deal.deleted = deleted;
        deal.touch(browser::now(), engine.member);
        let name = deal.title.clone();
        let again = deal.clone();
        if app.persist(deal, false).await.is_ok() {
            if deleted {
                let undo: Rc<dyn Fn()> = Rc::new(move || set_deleted(app, again.clone(), false));
                app.notify(format!("Deleted {name}"), Some(("Undo".into(), undo)));
            } else {
                app.notify(format!("Restored {name}"), None);
            }
        }
    });
}

/// The steps shown in the progress bar: the open stages in order, then the
/// outcome the deal reached (or Won, still ahead).
fn steps(ws: &Workspace, d: &Deal) -> Vec<(String, &'static str)> {
    let Some(p) = ws.pipelines.get(&d.standing.pipeline) else { return Vec::new() };
    let stages = p.ordered_stages(false);
    let open: Vec<_> = stages.iter().filter(|(_, s)| s.outcome == Outcome::Open).collect();
    let here = open.iter().position(|(id, _)| **id == d.standing.stage);
    let mut out: Vec<(String, &'static str)> = open
        .iter()
        .enumerate()
        .map(|(i, (_, s))| {
            let state = match (d.standing.status, here) {
                (Outcome::Open, Some(h)) if i < h => "done",
                (Outcome::Open, Some(h)) if i == h => "current",
                (Outcome::Open, _) => "todo",
                _ => "done",
            };
            (s.name.clone(), state)
        })
        .collect();
    match d.standing.status {
        Outcome::Open => {
            if let Some((_, won)) = stages.iter().find(|(_, s)| s.outcome == Outcome::Won) {
                out.push((won.name.clone(), "todo"));
            }
        }
        status => {
            let name = ws
                .stage(&d.standing.pipeline, &d.standing.stage)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| status.label().into());
            out.push((name, if status == Outcome::Won { "won" } else { "lost" }));
        }
    }
    out
}

#[component]
fn DealView(deal: Deal) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let ws = app.workspace;
    let d = StoredValue::new(deal);
    let deleted = RwSignal::new(d.with_value(|d| d.deleted));
    let id = d.with_value(|d| d.id);
    let member = move |m: rapport_core::ids::MemberId| ws.with_untracked(|w| w.member_name(m));

    let on_delete = move |_| {
        set_deleted(app, d.get_value(), true);
        navigate("/deals", Default::default());
    };
    let restore = move |_| {
        set_deleted(app, d.get_value(), false);
        deleted.set(false);
    };

    let dv = d.get_value();
    let (stage_name, probability, default_probability, steps, many) = ws.with_untracked(|w| {
        (
            stage_label(w, &dv.standing.pipeline, &dv.standing.stage, false),
            deal::effective_probability(w, &dv.standing, dv.probability),
            w.stage(&dv.standing.pipeline, &dv.standing.stage).map(|s| s.probability),
            steps(w, &dv),
            w.ordered_pipelines(false).len() > 1,
        )
    });
    let pipeline_name = ws.with_untracked(|w| w.pipelines.get(&dv.standing.pipeline).map(|p| p.name.clone()));
    let weighted = deal::weighted(dv.value, probability);
    let probability_note = match (dv.standing.status, dv.probability) {
        (Outcome::Won, _) => "won deals count fully".to_owned(),
        (Outcome::Lost, _) => "lost deals count for nothing".to_owned(),
        (_, Some(_)) => match default_probability {
            Some(p) => format!("set on this deal; the stage's default is {p}%"),
            None => "set on this deal".to_owned(),
        },
        (_, None) => "the stage's default".to_owned(),
    };
    let today = browser::today();
    let late = dv.standing.status == Outcome::Open && dv.expected_close.is_some_and(|c| c < today);
    let company = dv.company.map(|c| (c, live_title(app, c, RecordKind::Company)));
    let contacts: Vec<(RecordId, Option<String>)> =
        dv.contacts.iter().map(|c| (*c, live_title(app, *c, RecordKind::Contact))).collect();
    let history: Vec<(String, String)> = ws.with_untracked(|w| {
        dv.history_in_order()
            .into_iter()
            .map(|c| {
                let to = stage_label(w, &c.to.0, &c.to.1, many || c.from.as_ref().is_some_and(|f| f.0 != c.to.0));
                let what = match &c.from {
                    None => format!("Created in {to}"),
                    Some(f) => format!("Moved from {} to {to}", stage_label(w, &f.0, &f.1, many && f.0 != c.to.0)),
                };
                (what, format!("{} · {}", w.member_name(c.by), browser::format_time(c.at)))
            })
            .collect()
    });
    let custom_rows = ws.with_untracked(|w| {
        w.fields_for(RecordKind::Deal)
            .filter_map(|(k, def)| dv.custom.get(k).map(|v| (def.label.clone(), v.clone())))
            .collect::<Vec<_>>()
    });
    let status = dv.standing.status;

    view! {
        <section class="page deal-page" data-testid="deal-page">
            <div class="page-head deal-head">
                <div class="head-text">
                    <p class="muted small crumbs"><a href=browser::href("/deals")>"Deals"</a>{pipeline_name.map(|p| format!(" · {p}"))}</p>
                    <h1 data-testid="deal-title">{dv.title.clone()}</h1>
                    <p class="deal-value-line">
                        <strong data-testid="deal-value">{money::format(dv.value, &dv.currency)}</strong>
                        " · "
                        <span data-testid="deal-stage">{stage_name.clone()}</span>
                        {(status != Outcome::Open).then(|| view! { " " <span class=format!("badge outcome {}", status.as_str())>{status.label()}</span> })}
                    </p>
                </div>
                <div class="head-actions">
                    <a class="btn primary" href=browser::href(&format!("/deals/{id}/edit"))>"Edit"</a>
                    <button class="btn danger" on:click=on_delete>"Delete"</button>
                </div>
            </div>
            {move || deleted.get().then(|| view! {
                <div class="banner warn" role="status">"This deal is deleted. " <button class="btn small" on:click=restore>"Restore"</button></div>
            })}
            // A pick changes the deal's row, which reloads this page.
            <ConflictCard id=id noun="deal"/>
            <ol class="stage-bar" aria-label="Stage progress" data-testid="stage-bar">
                {steps.into_iter().map(|(name, state)| {
                    let current = matches!(state, "current" | "won" | "lost");
                    let sr = match state { "done" => "passed", "current" => "current stage", "won" => "won", "lost" => "lost", _ => "ahead" };
                    view! {
                        <li class=format!("step {state}") aria-current=current.then_some("step")>
                            <span class="step-name">{name}</span>
                            <span class="visually-hidden">{format!(" ({sr})")}</span>
                        </li>
                    }
                }).collect_view()}
            </ol>
            <div class="contact-grid">
                <div class="card details">
                    <h2>"Details"</h2>
                    <dl>
                        <dt>"Value"</dt><dd>{money::format(dv.value, &dv.currency)}</dd>
                        <dt>"Stage"</dt><dd>{stage_name}</dd>
                        <dt>"Probability"</dt><dd data-testid="deal-probability">{format!("{probability}%")}<span class="muted">{format!(" ({probability_note})")}</span></dd>
                        <dt>"Weighted value"</dt><dd data-testid="deal-weighted">{money::format(weighted, &dv.currency)}</dd>
                        <dt>"Expected close"</dt>
                        <dd class:late=late>
                            {dv.expected_close.map(format_date).unwrap_or_else(|| "Not set".into())}
                            {late.then_some(" (passed)")}
                        </dd>
                        {(status != Outcome::Open).then(|| view! {
                            <dt>{if status == Outcome::Won { "Won" } else { "Lost" }}</dt>
                            <dd data-testid="deal-outcome">
                                {dv.standing.closed_at.map(browser::format_time).unwrap_or_default()}
                            </dd>
                            <dt>"Reason"</dt>
                            <dd data-testid="deal-reason">{if dv.standing.reason.is_empty() { "No reason given".to_owned() } else { dv.standing.reason.clone() }}</dd>
                        })}
                        <dt>"Owner"</dt><dd>{dv.owner.map(member).unwrap_or_else(|| "No owner".into())}</dd>
                        <dt>"Company"</dt>
                        <dd data-testid="deal-company">
                            {match company {
                                None => view! { <span class="muted">"None"</span> }.into_any(),
                                Some((cid, Some(name))) => view! { <a href=browser::href(&format!("/companies/{cid}"))>{name}</a> }.into_any(),
                                Some((_, None)) => view! { <span class="muted gone">"Deleted company"</span> }.into_any(),
                            }}
                        </dd>
                        <dt>"Contacts"</dt>
                        <dd data-testid="deal-contacts">
                            {if contacts.is_empty() {
                                view! { <span class="muted">"None"</span> }.into_any()
                            } else {
                                view! {
                                    <ul class="inline-list">
                                        {contacts.into_iter().map(|(cid, name)| view! {
                                            <li>{match name {
                                                Some(n) => view! { <a href=browser::href(&format!("/contacts/{cid}"))>{n}</a> }.into_any(),
                                                None => view! { <span class="muted gone">"Deleted contact"</span> }.into_any(),
                                            }}</li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        </dd>
                        {(!dv.tags.is_empty()).then(|| view! {
                            <dt>"Tags"</dt>
                            <dd>{dv.tags.iter().map(|t| view! { <span class="tag">{t.clone()}</span> }).collect_view()}</dd>
                        })}
                        {custom_rows.into_iter().map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> }).collect_view()}
                    </dl>
                    {(!dv.notes.is_empty()).then(|| view! { <h3>"Notes"</h3><p class="notes">{dv.notes.clone()}</p> })}
                    <p class="muted small">
                        {format!("Created {} by {} · Updated {} by {}",
                            browser::format_time(dv.created_at), member(dv.created_by),
                            browser::format_time(dv.updated_at), member(dv.updated_by))}
                    </p>
                </div>
                <div class="card">
                    <h2>"Stage history"</h2>
                    <ol class="timeline stage-history" data-testid="stage-history">
                        {history.into_iter().rev().map(|(what, who)| view! {
                            <li class="event"><strong>{what}</strong><br/><span class="muted small">{who}</span></li>
                        }).collect_view()}
                    </ol>
                </div>
            </div>
            <DealActivity id=id/>
        </section>
    }
}

/// The deal's follow-up tasks, and its activity timeline with the form to
/// log a call, email, meeting or note against it.
#[component]
fn DealActivity(id: RecordId) -> impl IntoView {
    view! {
        <FollowUps target=id target_kind=RecordKind::Deal/>
        <ActivityPanel target=id target_kind=RecordKind::Deal/>
    }
}
