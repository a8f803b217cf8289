//! The workspace-wide audit log (`/privacy/audit`): who changed what and
//! when in every record, plus every erasure, read from the documents' own
//! history and the workspace's members ([`rapport_core::audit`]).
//!
//! Reading every document's history takes a while in a big workspace, so
//! the page reads them one by one in the background (most recently updated
//! first), shows what it has so far with a progress bar, and stays usable
//! meanwhile. Filters (member, record kind, dates) and paging work on what
//! is loaded; the CSV and JSON exports hold the entries matching the filters
//! once everything is loaded.

use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::audit::{self, AuditAction, RecordAuditEntry, RecordHistory};
use rapport_core::ids::{MemberId, RecordId};
use rapport_core::privacy::Tombstones;
use rapport_core::record::RecordKind;
use rapport_core::Timestamp;

use super::privacy::download;
use super::retention::PrivacyNav;
use crate::browser;
use crate::state::use_app;

const PAGE: usize = 50;

/// Merges `fresh` (newest first) into `all` (newest first).
fn merge(all: &mut Vec<RecordAuditEntry>, fresh: Vec<RecordAuditEntry>) {
    if fresh.is_empty() {
        return;
    }
    let old = std::mem::take(all);
    let mut out = Vec::with_capacity(old.len() + fresh.len());
    let mut a = old.into_iter().peekable();
    let mut b = fresh.into_iter().peekable();
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.entry.at >= y.entry.at,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    *all = out;
}

fn kind_label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Workspace => "Workspace settings",
        RecordKind::Contact => "Contacts",
        RecordKind::Company => "Companies",
        RecordKind::Deal => "Deals",
        RecordKind::Activity => "Activities",
        RecordKind::Task => "Tasks",
        RecordKind::Ticket => "Tickets",
        RecordKind::Segment => "Segments",
        RecordKind::Campaign => "Campaigns",
    }
}

/// Local midnight at the start of a `YYYY-MM-DD` date (an `<input
/// type=date>` value), plus `days`.
fn local_day(value: &str, days: u32) -> Option<Timestamp> {
    let mut parts = value.trim().splitn(3, '-').map(str::parse::<u32>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next()) else {
        return None;
    };
    let date = js_sys::Date::new_with_year_month_day(y, m.checked_sub(1)? as i32, (d + days) as i32);
    let ms = date.get_time();
    ms.is_finite().then(|| Timestamp::from_millis(ms as i64))
}

/// What the filters select.
#[derive(Debug, Clone, Default, PartialEq)]
struct Filters {
    /// `None`: everyone; `Some(None)`: changes that name no member.
    member: Option<Option<MemberId>>,
    kind: Option<RecordKind>,
    from: Option<Timestamp>,
    /// Exclusive: midnight after the last day.
    until: Option<Timestamp>,
}

impl Filters {
    fn keeps(&self, e: &RecordAuditEntry) -> bool {
        self.member.is_none_or(|m| e.entry.member == m)
            && self.kind.is_none_or(|k| e.kind == k)
            && self.from.is_none_or(|f| e.entry.at >= f)
            && self.until.is_none_or(|u| e.entry.at < u)
    }
}

#[component]
pub fn AuditLog() -> impl IntoView {
    let app = use_app();
    let ws = app.workspace;
    let entries = RwSignal::new(Vec::<RecordAuditEntry>::new());
    // (records read, records to read)
    let progress = RwSignal::new((0usize, 0usize));
    let unreadable = RwSignal::new(Vec::<(String, String)>::new());

    // The records to read, captured when the page opens: the workspace
    // document first, then the rest most recently updated first.
    let (ws_id, ws_name, tombstones) = ws.with_untracked(|w| (w.id, w.name.clone(), w.tombstones.clone()));
    let mut targets: Vec<(RecordId, RecordKind, String, Timestamp)> =
        app.index.with_untracked(|i| i.rows().iter().map(|r| (r.id, r.kind, r.title.clone(), r.updated_at)).collect());
    targets.retain(|t| t.1 != RecordKind::Workspace);
    targets.sort_by_key(|t| Reverse(t.3));
    if !app.joining.get_untracked() {
        targets.insert(0, (ws_id, RecordKind::Workspace, ws_name, Timestamp::default()));
    }
    entries.set(audit::workspace_log([], &tombstones));
    progress.set((0, targets.len()));
    let alive = Arc::new(AtomicBool::new(true));
    on_cleanup({
        let alive = alive.clone();
        move || alive.store(false, Ordering::Relaxed)
    });
    spawn_local(async move {
        let total = targets.len();
        let mut batch = Vec::new();
        let mut published = js_sys::Date::now();
        for (n, (id, kind, title, _)) in targets.into_iter().enumerate() {
            if !alive.load(Ordering::Relaxed) {
                return;
            }
            match app.engine().history_of(id).await {
                Ok(list) => batch.push(RecordHistory { record: id, kind, title, entries: list }),
                Err(e) => {
                    unreadable.try_update(|u| u.push((title, e)));
                }
            }
            // Show what is loaded a few times a second, not after every record.
            if n + 1 == total || js_sys::Date::now() - published > 250.0 {
                let fresh = audit::workspace_log(std::mem::take(&mut batch), &Tombstones::new());
                entries.try_update(|all| merge(all, fresh));
                progress.try_set((n + 1, total));
                published = js_sys::Date::now();
                gloo_timers::future::TimeoutFuture::new(0).await;
            }
        }
    });
    let loading = move || progress.with(|(done, total)| done < total);

    // Filters.
    let member = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let from = RwSignal::new(String::new());
    let to = RwSignal::new(String::new());
    let page = RwSignal::new(0usize);
    let filters = Memo::new(move |_| Filters {
        member: match member.get().as_str() {
            "" => None,
            "unknown" => Some(None),
            id => id.parse::<MemberId>().ok().map(Some),
        },
        kind: kind.with(|k| k.parse::<RecordKind>().ok()),
        from: from.with(|f| local_day(f, 0)),
        until: to.with(|t| local_day(t, 1)),
    });
    let range_error = move || {
        filters.with(|f| match (f.from, f.until) {
            (Some(a), Some(b)) if a >= b => Some("The start date is after the end date.".to_owned()),
            _ => None,
        })
    };
    // Positions of the matching entries (cheap to recompute as entries arrive).
    let matching = Memo::new(move |_| {
        let f = filters.get();
        entries.with(|all| all.iter().enumerate().filter(|(_, e)| f.keeps(e)).map(|(i, _)| i).collect::<Vec<_>>())
    });
    let pages = move || matching.with(|m| m.len().div_ceil(PAGE)).max(1);
    let page_now = move || page.get().min(pages() - 1);
    let members = Memo::new(move |_| {
        let mut seen: BTreeSet<Option<MemberId>> = ws.with(|w| w.members.keys().copied().map(Some).collect());
        entries.with(|all| seen.extend(all.iter().map(|e| e.entry.member)));
        seen
    });
    let kinds = Memo::new(move |_| entries.with(|all| all.iter().map(|e| e.kind).collect::<BTreeSet<_>>()));
    let member_name = move |m: Option<MemberId>| match m {
        Some(m) => ws.with_untracked(|w| w.member_name(m)),
        None => "Unknown".to_owned(),
    };

    let export = move |format: &'static str| {
        let f = filters.get_untracked();
        let list: Vec<RecordAuditEntry> = entries.with_untracked(|all| {
            let by_person = match f.member {
                Some(Some(m)) => audit::by_member(all, m),
                _ => all.clone(),
            };
            by_person.into_iter().filter(|e| f.keeps(e)).collect()
        });
        let workspace = ws.get_untracked();
        let day = &browser::now().to_rfc3339()[..10];
        let result = match format {
            "csv" => download(
                &format!("rapport-audit-log-{day}.csv"),
                "text/csv;charset=utf-8",
                &audit::to_csv(&list, &workspace),
            ),
            _ => serde_json::to_string_pretty(&audit::to_json(&list, &workspace))
                .map_err(|e| e.to_string())
                .and_then(|json| download(&format!("rapport-audit-log-{day}.json"), "application/json", &json)),
        };
        if let Err(e) = result {
            app.notify(format!("The export could not be offered: {e}"), None);
        }
    };

    let entry_view = move |e: RecordAuditEntry| {
        let record = match (e.kind, e.entry.action) {
            (_, AuditAction::Erased) => view! { <span class="muted">"an erased record"</span> }.into_any(),
            (RecordKind::Workspace, _) => view! { <span>{e.title.clone()}</span> }.into_any(),
            (kind, _) => match super::record_href(kind, e.record) {
                Some(href) => view! { <a href=href>{e.title.clone()}</a> }.into_any(),
                None => view! { <span>{e.title.clone()}</span> }.into_any(),
            },
        };
        let kind = match e.kind {
            RecordKind::Workspace => "Settings",
            RecordKind::Contact => "Contact",
            other => other.as_str(),
        };
        let mut fields: Vec<String> = Vec::new();
        for f in &e.entry.fields {
            let label = audit::field_label(f);
            if !fields.contains(&label) {
                fields.push(label);
            }
        }
        let meta = format!(
            "{} · by {}{}",
            browser::format_time(e.entry.at),
            member_name(e.entry.member),
            if fields.is_empty() { String::new() } else { format!(" · {}", fields.join(", ")) }
        );
        view! {
            <li data-testid="log-entry">
                <div><strong>{e.entry.action.label()}</strong>" · "<span class="log-kind">{kind}</span>" "{record}</div>
                <div class="muted small">{meta}</div>
            </li>
        }
    };

    view! {
        <section class="page privacy-page">
            <div class="page-head"><h1>"Privacy"</h1></div>
            <PrivacyNav/>
            <div class="card" data-testid="audit-log">
                <h2>"Audit log"</h2>
                <p class="muted">"Who changed what, and when, in every record of this workspace, and who erased what. It names the fields that changed, never their values."</p>
                <div role="status" aria-live="polite" data-testid="audit-progress">
                    {move || {
                        let (done, total) = progress.get();
                        if done < total {
                            view! {
                                <div class="progress-line">
                                    <progress max=total value=done aria-label="History loaded"></progress>
                                    <span>{format!("Reading change history: {done} of {total} records…")}</span>
                                </div>
                            }.into_any()
                        } else {
                            view! { <p class="muted small">{format!("History of all {total} records loaded.")}</p> }.into_any()
                        }
                    }}
                </div>
                {move || unreadable.with(|u| (!u.is_empty()).then(|| view! {
                    <div class="banner warn" role="alert">
                        {format!("The history of {} could not be read and is left out: ", if u.len() == 1 { "1 record".to_owned() } else { format!("{} records", u.len()) })}
                        {u.iter().take(5).map(|(t, reason)| format!("{t} ({reason})")).collect::<Vec<_>>().join("; ")}
                    </div>
                }))}
                <div class="log-filters">
                    <div class="field">
                        <label for="log-member">"Member"</label>
                        <select id="log-member" on:change=move |ev| { member.set(event_target_value(&ev)); page.set(0); }>
                            <option value="">"Everyone"</option>
                            {move || members.get().into_iter().map(|m| {
                                let value = m.map(|m| m.to_string()).unwrap_or_else(|| "unknown".into());
                                let selected = member.get_untracked() == value;
                                view! { <option value=value selected=selected>{member_name(m)}</option> }
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="log-kind">"Record kind"</label>
                        <select id="log-kind" on:change=move |ev| { kind.set(event_target_value(&ev)); page.set(0); }>
                            <option value="">"All records"</option>
                            {move || kinds.get().into_iter().map(|k| {
                                let selected = kind.get_untracked() == k.as_str();
                                view! { <option value=k.as_str() selected=selected>{kind_label(k)}</option> }
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="log-from">"From"</label>
                        <input id="log-from" type="date" prop:value=move || from.get()
                            on:change=move |ev| { from.set(event_target_value(&ev)); page.set(0); }/>
                    </div>
                    <div class="field">
                        <label for="log-to">"To"</label>
                        <input id="log-to" type="date" prop:value=move || to.get()
                            on:change=move |ev| { to.set(event_target_value(&ev)); page.set(0); }/>
                    </div>
                </div>
                {move || range_error().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
                <div class="toolbar log-actions">
                    <span class="muted small" data-testid="log-count">
                        {move || {
                            let n = matching.with(Vec::len);
                            if n == 0 {
                                "No entries match.".to_owned()
                            } else {
                                let start = page_now() * PAGE;
                                format!("Entries {}–{} of {n}", start + 1, (start + PAGE).min(n))
                            }
                        }}
                    </span>
                    <div class="btn-group">
                        <button class="btn small" disabled=loading on:click=move |_| export("csv")>"Export CSV"</button>
                        <button class="btn small" disabled=loading on:click=move |_| export("json")>"Export JSON"</button>
                    </div>
                </div>
                {move || loading().then(|| view! { <p class="muted small">"Export is available once the whole history has been read. It holds the entries that match the filters."</p> })}
                <ol class="log" data-testid="log-entries">
                    {move || {
                        let start = page_now() * PAGE;
                        let shown: Vec<RecordAuditEntry> = matching.with(|m| entries.with(|all| {
                            m.iter().skip(start).take(PAGE).filter_map(|i| all.get(*i).cloned()).collect()
                        }));
                        shown.into_iter().map(entry_view).collect_view()
                    }}
                </ol>
                {move || (pages() > 1).then(|| view! {
                    <nav class="pager" aria-label="Audit log pages">
                        <button class="btn small" disabled=move || page_now() == 0 on:click=move |_| page.set(page_now().saturating_sub(1))>"Previous page"</button>
                        <span class="muted small">{move || format!("Page {} of {}", page_now() + 1, pages())}</span>
                        <button class="btn small" disabled=move || page_now() + 1 >= pages() on:click=move |_| page.set(page_now() + 1)>"Next page"</button>
                    </nav>
                })}
            </div>
        </section>
    }
}
