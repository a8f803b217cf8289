//! Activities on a record's page: the timeline (what was logged against the
//! record, newest first, read from rows only) and the compact form to log a
//! call, email, meeting or note.
//!
//! # Using it on a record page
//!
//! ```ignore
//! use crate::views::timeline::{ActivityPanel, LogActivity, Timeline};
//!
//! // One card: heading, the log form, the timeline.
//! view! { <ActivityPanel target=deal.id target_kind=RecordKind::Deal/> }
//!
//! // Or the two parts wherever the page wants them.
//! view! {
//!     <LogActivity target=deal.id target_kind=RecordKind::Deal/>
//!     <Timeline target=deal.id/>
//! }
//! ```
//!
//! - [`Timeline`] lists the live activities whose references name `target`
//!   (`sales::activity::timeline` over the row index), each with its type,
//!   subject, when, duration, outcome, who logged it, an excerpt and links to
//!   the other records it is linked to (live ones as links, deleted ones in
//!   grey, erased ones left out). Each can be edited in a dialog or deleted
//!   (soft, with Undo).
//! - [`LogActivity`] links what it logs to the target: a contact goes in
//!   `contacts` (with the contact's company when it is linked and live), a
//!   company in `company`, a deal in `deal` with the deal's company and
//!   contacts as its row names them.
//! - Both take an optional `request: RwSignal<Option<ActivityKind>>`: setting
//!   it to `Some(kind)` from a button elsewhere on the page opens the form
//!   with that type chosen, scrolls to it and puts focus in the subject (the
//!   contact page's one-click "Log a call").

use std::collections::BTreeSet;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::form::Base;
use rapport_core::form::{self, FormErrors};
use rapport_core::ids::RecordId;
use rapport_core::privacy::references::{row_references, RowReferences};
use rapport_core::record::{RecordKind, Row};
use rapport_core::sales::activity::{self, columns, Activity, ActivityForm, ActivityKind};
use rapport_core::sales::deal;
use rapport_core::validate::FieldError as CoreFieldError;
use rapport_core::Timestamp;
use wasm_bindgen::JsCast;

use super::conflicts::{ChangedElsewhere, ConflictCard};
use super::record_href;
use super::widgets::{Dialog, FieldError};
use crate::browser;
use crate::state::{use_app, AppState};

/// How many timeline entries show before "Show more".
const PAGE: usize = 20;

/// "45 min", "1 h", "1 h 30 min".
pub fn duration_text(minutes: u32) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Calls and meetings take time; emails and notes do not.
fn has_duration(kind: ActivityKind) -> bool {
    matches!(kind, ActivityKind::Call | ActivityKind::Meeting)
}

/// "Log call", "Log meeting", "Add note".
fn submit_label(kind: ActivityKind) -> String {
    match kind {
        ActivityKind::Note => "Add note".into(),
        k => format!("Log {}", k.as_str()),
    }
}

/// A small line icon for each type (drawn, so it looks the same everywhere).
fn kind_icon(kind: Option<ActivityKind>) -> impl IntoView {
    let paths: &[&str] = match kind {
        Some(ActivityKind::Call) => {
            &["M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2"]
        }
        Some(ActivityKind::Email) => {
            &["M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1z", "M3 7l9 6 9-6"]
        }
        Some(ActivityKind::Meeting) => {
            &["M5 5h14a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V7a2 2 0 0 1 2-2z", "M16 3v4M8 3v4M3 10h18"]
        }
        _ => &["M14 3H6a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V9z", "M14 3v6h6M8 13h8M8 17h5"],
    };
    view! {
        <svg class="activity-svg" viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor"
            stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">
            {paths.iter().map(|d| view! { <path d=*d/> }).collect_view()}
        </svg>
    }
}

/// The records a new activity is linked to, as form values (record ids).
#[derive(Debug, Clone, Default, PartialEq)]
struct Links {
    contacts: Vec<String>,
    company: String,
    deal: String,
}

/// What a new activity logged against `target` is linked to (see the module
/// doc), read from rows; only live records are linked.
fn links_for(app: AppState, target: RecordId, kind: RecordKind) -> Links {
    app.index.with_untracked(|i| {
        let live = |id: RecordId| i.get(id).is_some_and(|r| !r.deleted);
        let live_text =
            |s: &str| s.parse::<RecordId>().ok().filter(|id| live(*id)).map(|id| id.to_string()).unwrap_or_default();
        match kind {
            RecordKind::Contact => {
                let company = i.get(target).map(|r| live_text(r.column("company_id"))).unwrap_or_default();
                Links { contacts: vec![target.to_string()], company, deal: String::new() }
            }
            RecordKind::Company => Links { company: target.to_string(), ..Links::default() },
            RecordKind::Deal => {
                let row = i.get(target);
                let company = row.map(|r| live_text(r.column(deal::columns::COMPANY))).unwrap_or_default();
                let contacts = match row.map(row_references) {
                    Some(RowReferences::Read(refs)) => refs
                        .into_iter()
                        .filter(|r| r.field == "contacts" && live(r.target))
                        .map(|r| r.target.to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                Links { contacts, company, deal: target.to_string() }
            }
            _ => Links::default(),
        }
    })
}

/// One record an activity is linked to, as the timeline shows it.
#[derive(Debug, Clone, PartialEq)]
struct Link {
    label: String,
    /// `None` for a deleted record (shown in grey, not as a link).
    href: Option<String>,
}

/// One timeline entry, computed from rows.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    id: RecordId,
    kind: Option<ActivityKind>,
    kind_label: String,
    subject: Option<String>,
    at: Timestamp,
    duration: Option<String>,
    outcome: String,
    by: String,
    excerpt: String,
    links: Vec<Link>,
}

fn entry(app: AppState, row: &Row, target: RecordId, rows: &rapport_core::search::RowIndex) -> Entry {
    let kind = ActivityKind::parse(row.column(columns::TYPE));
    let kind_label = kind.map(ActivityKind::label).unwrap_or("Activity").to_owned();
    let subject = (row.title != kind_label).then(|| row.title.clone());
    let mut links = Vec::new();
    if let RowReferences::Read(refs) = row_references(row) {
        let mut seen = BTreeSet::new();
        for r in refs {
            if r.target == target || !seen.insert(r.target) {
                continue;
            }
            // Erased (or not yet synced) records are left out.
            if let Some(linked) = rows.get(r.target) {
                let href = if linked.deleted { None } else { record_href(linked.kind, linked.id) };
                links.push(Link { label: linked.title.clone(), href });
            }
        }
    }
    let by = row.column("owner").parse().map(|m| app.workspace.with(|w| w.member_name(m))).unwrap_or_default();
    Entry {
        id: row.id,
        kind,
        kind_label,
        subject,
        at: activity::at(row),
        duration: row.column(columns::DURATION).parse::<u32>().ok().filter(|m| *m > 0).map(duration_text),
        outcome: row.column(columns::OUTCOME).to_owned(),
        by,
        excerpt: row.subtitle.clone(),
        links,
    }
}

/// Soft-deletes (or restores) an activity, with Undo in the toast.
fn set_deleted(app: AppState, id: RecordId, deleted: bool) {
    spawn_local(async move {
        let engine = app.engine();
        let Ok(mut a) = engine.open::<Activity>(id).await else {
            app.notify("That activity could not be opened on this device.", None);
            return;
        };
        a.deleted = deleted;
        a.touch(browser::now(), engine.member);
        let what = format!("{} “{}”", a.kind.label().to_lowercase(), a.title());
        if app.persist(a, false).await.is_ok() {
            if deleted {
                let undo: Rc<dyn Fn()> = Rc::new(move || set_deleted(app, id, false));
                app.notify(format!("Deleted {what}"), Some(("Undo".into(), undo)));
            } else {
                app.notify(format!("Restored {what}"), None);
            }
        }
    });
}

/// The activities linked to `target`, newest first, with edit and delete.
#[component]
pub fn Timeline(
    /// The record whose page this is.
    target: RecordId,
) -> impl IntoView {
    let app = use_app();
    let entries = Memo::new(move |_| {
        app.index.with(|i| {
            activity::timeline(target, i.rows()).into_iter().map(|row| entry(app, row, target, i)).collect::<Vec<_>>()
        })
    });
    let shown = RwSignal::new(PAGE);
    let editing = RwSignal::new(None::<RecordId>);
    let dialog_open = RwSignal::new(false);
    Effect::new(move |_| {
        if !dialog_open.get() {
            editing.set(None);
        }
    });
    let dialog_title = Signal::derive(|| "Edit activity".to_owned());

    view! {
        <div class="activity-timeline" data-testid="timeline">
            <h3 class="visually-hidden">"Timeline"</h3>
            {move || {
                let all = entries.get();
                if all.is_empty() {
                    return view! {
                        <p class="muted activity-empty" data-testid="timeline-empty">
                            "Nothing logged yet. Calls, emails, meetings and notes you log here appear in this timeline, newest first."
                        </p>
                    }.into_any();
                }
                let total = all.len();
                let items = all.into_iter().take(shown.get()).map(|e| {
                    let id = e.id;
                    let name = match &e.subject {
                        Some(s) => format!("{} “{s}”", e.kind_label.to_lowercase()),
                        None => e.kind_label.to_lowercase(),
                    };
                    let kind_class = format!("activity-icon {}", e.kind.map(ActivityKind::as_str).unwrap_or("note"));
                    let meta = [Some(browser::format_time(e.at)), e.duration.clone(), (!e.outcome.is_empty()).then(|| e.outcome.clone()), (!e.by.is_empty()).then(|| format!("by {}", e.by))]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" · ");
                    let links = e.links.clone();
                    view! {
                        <li class="activity-item" data-testid="activity-item" data-kind=e.kind.map(ActivityKind::as_str).unwrap_or("")>
                            <span class=kind_class aria-hidden="true">{kind_icon(e.kind)}</span>
                            <div class="activity-main">
                                <p class="activity-head">
                                    <span class="activity-kind">{e.kind_label.clone()}</span>
                                    {e.subject.clone().map(|s| view! { <strong class="activity-subject">{s}</strong> })}
                                </p>
                                <p class="activity-meta">{meta}</p>
                                {(!e.excerpt.is_empty()).then(|| view! { <p class="activity-excerpt">{e.excerpt.clone()}</p> })}
                                {(!links.is_empty()).then(|| view! {
                                    <p class="activity-links">
                                        <span class="muted">"Linked to "</span>
                                        {links.into_iter().enumerate().map(|(n, l)| view! {
                                            {(n > 0).then_some(", ")}
                                            {match l.href {
                                                Some(href) => view! { <a href=href>{l.label}</a> }.into_any(),
                                                None => view! { <span class="deleted-link">{format!("{} (deleted)", l.label)}</span> }.into_any(),
                                            }}
                                        }).collect_view()}
                                    </p>
                                })}
                            </div>
                            <div class="activity-actions">
                                <button type="button" class="btn ghost small" aria-label=format!("Edit {name}")
                                    on:click=move |_| { editing.set(Some(id)); dialog_open.set(true); }>"Edit"</button>
                                <button type="button" class="btn ghost small danger" aria-label=format!("Delete {name}")
                                    on:click=move |_| set_deleted(app, id, true)>"Delete"</button>
                            </div>
                        </li>
                    }
                }).collect_view();
                view! {
                    <ol class="activity-list" aria-label="Activity timeline">{items}</ol>
                    {(total > shown.get()).then(|| view! {
                        <button type="button" class="btn small show-more" on:click=move |_| shown.update(|n| *n += PAGE)>
                            {format!("Show more ({} older)", total - shown.get_untracked())}
                        </button>
                    })}
                }.into_any()
            }}
            <Dialog open=dialog_open title=dialog_title testid="activity-dialog">
                {move || editing.get().map(|id| view! { <EditActivity id=id on_done=Callback::new(move |_| dialog_open.set(false))/> })}
            </Dialog>
        </div>
    }
}

/// Loads an activity and shows it in the editor.
#[component]
fn EditActivity(id: RecordId, on_done: Callback<Option<RecordId>>) -> impl IntoView {
    let app = use_app();
    let loaded = LocalResource::new(move || async move { app.engine().open_for_edit::<Activity>(id).await });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok((a, base)) => {
                    let kind = a.kind;
                    view! {
                        <ChangedElsewhere id=id base=base.clone() noun="activity"/>
                        <ConflictCard id=id noun="activity"/>
                        <ActivityEditor prefix="edit-activity".into() existing=Some(a) base=Some(base) initial_kind=kind
                            links=None on_done=on_done/>
                    }.into_any()
                }
                Err(e) => view! { <div class="banner error" role="alert">{format!("This activity could not be opened: {e}")}</div> }.into_any(),
            })}
        </Suspense>
    }
}

/// The compact form to log a call, email, meeting or note against `target`.
/// Closed, it is a row of buttons (one per type); a button opens the form
/// with that type chosen and focus in the subject.
#[component]
pub fn LogActivity(
    /// The record whose page this is.
    target: RecordId,
    /// What kind of record `target` is (decides how the activity is linked).
    target_kind: RecordKind,
    /// Set to `Some(kind)` to open the form from elsewhere on the page.
    #[prop(optional)]
    request: Option<RwSignal<Option<ActivityKind>>>,
) -> impl IntoView {
    let app = use_app();
    let prefix = format!("log{}", (js_sys::Math::random() * 1e9) as u64);
    let chosen = RwSignal::new(None::<ActivityKind>);
    let is_open = Memo::new(move |_| chosen.get().is_some());
    let container = NodeRef::<leptos::html::Div>::new();
    if let Some(request) = request {
        Effect::new(move |_| {
            if let Some(kind) = request.get() {
                request.set(None);
                // Already open: keep what was typed, just bring it into view.
                if chosen.get_untracked().is_none() {
                    chosen.set(Some(kind));
                }
                if let Some(el) = container.get_untracked() {
                    let el: &web_sys::Element = el.unchecked_ref();
                    el.scroll_into_view();
                }
            }
        });
    }
    let quick_id = {
        let prefix = prefix.clone();
        move |k: ActivityKind| format!("{prefix}-quick-{}", k.as_str())
    };
    let on_done = {
        let quick_id = quick_id.clone();
        Callback::new(move |_: Option<RecordId>| {
            let kind = chosen.get_untracked().unwrap_or_default();
            chosen.set(None);
            // Focus goes back to where the user started.
            let id = quick_id(kind);
            request_animation_frame(move || focus_by_id(&id));
        })
    };
    let links = move || links_for(app, target, target_kind);
    view! {
        <div class="log-activity" node_ref=container data-testid="log-activity">
            {move || if is_open.get() {
                let kind = chosen.get_untracked().unwrap_or_default();
                view! {
                    <ActivityEditor prefix=prefix.clone() existing=None initial_kind=kind
                        links=Some(Callback::new(move |_: ()| links())) on_done=on_done/>
                }.into_any()
            } else {
                let quick_id = quick_id.clone();
                view! {
                    <div class="log-quick" role="group" aria-label="Log an activity">
                        <span class="log-quick-label">"Log"</span>
                        {ActivityKind::ALL.into_iter().map(|k| view! {
                            <button type="button" class="btn small" id=quick_id(k) on:click=move |_| chosen.set(Some(k))>
                                {kind_icon(Some(k))}
                                <span>{k.label()}</span>
                            </button>
                        }).collect_view()}
                    </div>
                }.into_any()
            }}
        </div>
    }
}

/// A card with the heading "Activity", [`LogActivity`] and [`Timeline`].
#[component]
pub fn ActivityPanel(
    target: RecordId,
    target_kind: RecordKind,
    #[prop(optional)] request: Option<RwSignal<Option<ActivityKind>>>,
) -> impl IntoView {
    let request = request.unwrap_or_else(|| RwSignal::new(None));
    view! {
        <section class="card activity-panel" aria-labelledby="activity-heading" data-testid="activity-panel">
            <h2 id="activity-heading">"Activity"</h2>
            <LogActivity target=target target_kind=target_kind request=request/>
            <Timeline target=target/>
        </section>
    }
}

fn focus_by_id(id: &str) {
    if let Some(el) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id(id)) {
        if let Ok(el) = el.dyn_into::<web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
}

/// A local date and time as `<input type=datetime-local>` wants it.
fn local_input(local: chrono::NaiveDateTime) -> String {
    local.format("%Y-%m-%dT%H:%M").to_string()
}

/// The activity form: new (linked through `links`) or editing `existing`.
#[component]
fn ActivityEditor(
    /// Prefix of the element ids (unique on the page).
    prefix: String,
    existing: Option<Activity>,
    /// The version `existing` was read at: saving writes only what this
    /// form changed since.
    #[prop(default = None)]
    base: Option<Base>,
    initial_kind: ActivityKind,
    /// What a new activity is linked to: (contacts, company, deal) ids.
    links: Option<Callback<(), Links>>,
    /// Called with the saved activity's id, or `None` when cancelled.
    on_done: Callback<Option<RecordId>>,
) -> impl IntoView {
    let app = use_app();
    let is_new = existing.is_none();
    let base = StoredValue::new(base);
    let form = existing.as_ref().map(ActivityForm::from_activity).unwrap_or_default();
    let kind = RwSignal::new(initial_kind);
    let subject = RwSignal::new(form.subject);
    let when =
        RwSignal::new(local_input(existing.as_ref().map_or_else(browser::local_now, |a| browser::to_local(a.at))));
    let duration = RwSignal::new(form.duration_minutes);
    let outcome = RwSignal::new(form.outcome);
    let body = RwSignal::new(form.body);
    let me = app.engine().member.to_string();
    let participants: RwSignal<BTreeSet<String>> =
        RwSignal::new(if is_new { BTreeSet::from([me]) } else { form.participants.into_iter().collect() });
    let errors = RwSignal::new(FormErrors::new());
    let busy = RwSignal::new(false);
    let failure = RwSignal::new(None::<String>);
    let existing = StoredValue::new(existing);

    let id = {
        let prefix = prefix.clone();
        move |field: &str| format!("{prefix}-{field}")
    };
    let err = move |key: &'static str| Signal::derive(move || errors.with(|e| e.get(key).map(|e| e.to_string())));
    let invalid = move |key: &'static str| move || errors.with(|e| e.contains_key(key)).then_some("true");

    // Focus the subject when the form opens.
    {
        let subject_id = id("subject");
        request_animation_frame(move || focus_by_id(&subject_id));
    }

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let k = kind.get_untracked();
        let at = match form::date_time(&when.get_untracked()) {
            Ok(Some(local)) => Ok(browser::from_local(local)),
            Ok(None) => Err(CoreFieldError::Required),
            Err(e) => Err(e),
        };
        let Links { contacts, company, deal } = match (existing.get_value(), links) {
            (Some(a), _) => {
                let f = ActivityForm::from_activity(&a);
                Links { contacts: f.contacts, company: f.company, deal: f.deal }
            }
            (None, Some(links)) => links.run(()),
            (None, None) => Links::default(),
        };
        let form = ActivityForm {
            kind: k.as_str().into(),
            subject: subject.get_untracked(),
            body: body.get_untracked(),
            duration_minutes: if has_duration(k) { duration.get_untracked() } else { String::new() },
            outcome: if k == ActivityKind::Note { String::new() } else { outcome.get_untracked() },
            contacts,
            company,
            deal,
            participants: participants.get_untracked().into_iter().collect(),
        };
        let engine = app.engine();
        let now = browser::now();
        let mut activity = existing.get_value().unwrap_or_else(|| {
            Activity::new(browser::new_record_id(), k, *at.as_ref().unwrap_or(&now), now, engine.member)
        });
        let mut found = form.apply(&mut activity).err().unwrap_or_default();
        if let Err(e) = &at {
            found.insert("at".into(), e.clone());
        }
        if !found.is_empty() {
            errors.set(found);
            request_animation_frame(browser::focus_first_invalid);
            return;
        }
        errors.set(FormErrors::new());
        activity.at = at.unwrap_or(now);
        activity.touch(now, engine.member);
        busy.set(true);
        spawn_local(async move {
            let id = activity.id;
            let what = activity.kind.label();
            match app.persist_form(activity, base.get_value()).await {
                Ok(_) => {
                    app.notify(if is_new { format!("{what} logged") } else { format!("{what} saved") }, None);
                    on_done.run(Some(id));
                }
                Err(e) => {
                    busy.set(false);
                    failure.set(Some(e.replace("The contact was not created", "Nothing was logged")));
                }
            }
        });
    };
    let cancel = move || on_done.run(None);
    let members = move || {
        app.workspace.with(|w| w.members.iter().map(|(id, m)| (id.to_string(), m.name.clone())).collect::<Vec<_>>())
    };

    let (subject_id, at_id, duration_id, outcome_id, body_id, outcomes_id) =
        (id("subject"), id("at"), id("duration"), id("outcome"), id("body"), id("outcomes"));
    let kind_name = id("kind");
    view! {
        <form class="activity-form" novalidate=true on:submit=submit data-testid="activity-form"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                // Escape closes the inline form (a dialog closes itself).
                if ev.key() == "Escape" && is_new {
                    ev.prevent_default();
                    cancel();
                }
            }>
            {move || errors.with(|e| e.get("contacts").map(|m| m.to_string())).map(|m| view! {
                <div class="banner error" role="alert">{m}</div>
            })}
            {move || failure.get().map(|f| view! { <div class="banner error" role="alert">{f}</div> })}
            <fieldset class="kind-choice">
                <legend class="visually-hidden">"Type"</legend>
                {ActivityKind::ALL.into_iter().map(|k| {
                    let name = kind_name.clone();
                    view! {
                        <label class="seg">
                            <input type="radio" name=name value=k.as_str() prop:checked=move || kind.get() == k
                                on:change=move |_| kind.set(k)/>
                            <span>{kind_icon(Some(k))}{k.label()}</span>
                        </label>
                    }
                }).collect_view()}
            </fieldset>
            <div class="activity-fields">
                <div class="field subject-field" class:invalid=move || err("subject").get().is_some()>
                    <label for=subject_id.clone()>"Subject"</label>
                    <input id=subject_id.clone() type="text" autocomplete="off"
                        placeholder=move || match kind.get() {
                            ActivityKind::Call => "What was the call about?",
                            ActivityKind::Email => "Email subject",
                            ActivityKind::Meeting => "What is the meeting about?",
                            ActivityKind::Note => "Short title (optional)",
                        }
                        prop:value=move || subject.get() on:input=move |ev| subject.set(event_target_value(&ev))
                        aria-invalid=invalid("subject")/>
                    <FieldError id=format!("{subject_id}-error") error=err("subject")/>
                </div>
                <div class="field when-field" class:invalid=move || err("at").get().is_some()>
                    <label for=at_id.clone()>{move || if kind.get() == ActivityKind::Meeting { "Date and time" } else { "When" }}</label>
                    <input id=at_id.clone() type="datetime-local" prop:value=move || when.get()
                        on:input=move |ev| when.set(event_target_value(&ev))
                        on:change=move |ev| when.set(event_target_value(&ev))
                        aria-invalid=invalid("at")/>
                    <FieldError id=format!("{at_id}-error") error=err("at")/>
                </div>
                {
                    let duration_id = duration_id.clone();
                    move || has_duration(kind.get()).then(|| view! {
                        <div class="field" class:invalid=move || err("duration_minutes").get().is_some()>
                            <label for=duration_id.clone()>"Duration (minutes)"</label>
                            <input id=duration_id.clone() type="text" inputmode="numeric" autocomplete="off"
                                prop:value=move || duration.get() on:input=move |ev| duration.set(event_target_value(&ev))
                                aria-invalid=invalid("duration_minutes")/>
                            <FieldError id=format!("{duration_id}-error") error=err("duration_minutes")/>
                        </div>
                    })
                }
                {
                    let (outcome_id, outcomes_id) = (outcome_id.clone(), outcomes_id.clone());
                    move || (kind.get() != ActivityKind::Note).then(|| view! {
                        <div class="field" class:invalid=move || err("outcome").get().is_some()>
                            <label for=outcome_id.clone()>"Outcome"</label>
                            <input id=outcome_id.clone() type="text" autocomplete="off" list=outcomes_id.clone()
                                prop:value=move || outcome.get() on:input=move |ev| outcome.set(event_target_value(&ev))
                                aria-invalid=invalid("outcome")/>
                            <datalist id=outcomes_id.clone()>
                                {kind.get().outcomes().iter().map(|o| view! { <option value=*o/> }).collect_view()}
                            </datalist>
                            <FieldError id=format!("{outcome_id}-error") error=err("outcome")/>
                        </div>
                    })
                }
            </div>
            <div class="field" class:invalid=move || err("body").get().is_some()>
                <label for=body_id.clone()>"Notes"</label>
                <textarea id=body_id.clone() rows="3" prop:value=move || body.get()
                    on:input=move |ev| body.set(event_target_value(&ev)) aria-invalid=invalid("body")></textarea>
                <FieldError id=format!("{body_id}-error") error=err("body")/>
            </div>
            {move || {
                let all = members();
                (all.len() > 1).then(|| view! {
                    <fieldset class="participants">
                        <legend>"Team members who took part"</legend>
                        {all.into_iter().map(|(mid, name)| {
                            let m = mid.clone();
                            view! {
                                <label class="check">
                                    <input type="checkbox" prop:checked=move || participants.with(|p| p.contains(&mid))
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            participants.update(|p| { if on { p.insert(m.clone()); } else { p.remove(&m); } });
                                        }/>
                                    {name}
                                </label>
                            }
                        }).collect_view()}
                    </fieldset>
                })
            }}
            <div class="form-actions">
                <button type="submit" class="btn primary" disabled=move || busy.get()>
                    {move || if busy.get() { "Saving…".to_owned() } else if is_new { submit_label(kind.get()) } else { "Save changes".to_owned() }}
                </button>
                <button type="button" class="btn" on:click=move |_| cancel()>"Cancel"</button>
            </div>
        </form>
    }
}
