//! Tasks: "My tasks" (or a teammate's, or everyone's) grouped as overdue,
//! today, upcoming, no due date and done, read from rows only; completing a
//! task with its checkbox (with Undo); and the pieces the follow-ups panel,
//! the calendar and the navigation share (a task line, a linked record that
//! never shows as a broken link, the member filter, a ticking local clock).

use std::rc::Rc;
use std::time::Duration;

use chrono::NaiveDateTime;
use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::ids::{MemberId, RecordId};
use rapport_core::record::{RecordKind, Row};
use rapport_core::sales::task::{self, due_label, Bucket, Task, TaskFacts};
use rapport_core::search::{Query, Sort};

use super::record_href;
use super::reminders::NotificationToggle;
use crate::browser;
use crate::state::{use_app, AppState};

/// "Contact", "Company", "Deal".
pub fn kind_label(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Contact => "Contact",
        RecordKind::Company => "Company",
        RecordKind::Deal => "Deal",
        RecordKind::Activity => "Activity",
        RecordKind::Task => "Task",
        _ => "Record",
    }
}

/// Every live task, from the rows in memory.
pub fn task_facts(app: AppState) -> Vec<TaskFacts> {
    app.index.with(|i| {
        i.query(RecordKind::Task, &Query::default(), Sort::default())
            .into_iter()
            .filter_map(|p| TaskFacts::from_row(i.row_at(p)))
            .collect()
    })
}

/// The local wall-clock time, refreshed every 30 seconds while the calling
/// component is mounted (for "late" marks and today's date).
pub fn use_clock() -> RwSignal<NaiveDateTime> {
    let now = RwSignal::new(browser::local_now());
    if let Ok(handle) = set_interval_with_handle(move || now.set(browser::local_now()), Duration::from_secs(30)) {
        on_cleanup(move || handle.clear());
    }
    now
}

/// Marks a task done (or open again). Completing offers Undo in a toast.
pub fn set_done(app: AppState, id: RecordId, done: bool) {
    spawn_local(async move {
        let engine = app.engine();
        let mut task = match engine.open::<Task>(id).await {
            Ok(t) => t,
            Err(e) => {
                app.notify(format!("This task could not be opened: {e}"), None);
                return;
            }
        };
        task.set_done(done, browser::now(), engine.member);
        let title = task.title.clone();
        match app.persist(task, false).await {
            Ok(_) if done => {
                let undo: Rc<dyn Fn()> = Rc::new(move || set_done(app, id, false));
                app.notify(format!("Completed “{title}”"), Some(("Undo".into(), undo)));
            }
            Ok(_) => app.notify(format!("“{title}” is open again"), None),
            Err(e) => app.notify(e, None),
        }
    });
}

/// The member a filter value stands for: `me`, `all` (none) or a member id.
pub fn filter_member(app: AppState, value: &str) -> Option<MemberId> {
    match value {
        "all" => None,
        "me" | "" => Some(app.engine().member),
        id => id.parse().ok().or(Some(app.engine().member)),
    }
}

/// A select of me, each teammate, and everyone.
#[component]
pub fn MemberFilter(
    id: &'static str,
    label: &'static str,
    everyone: &'static str,
    value: RwSignal<String>,
) -> impl IntoView {
    let app = use_app();
    let me = app.engine().member;
    let others = move || {
        app.workspace.with(|w| {
            w.members
                .iter()
                .filter(|(m, _)| **m != me)
                .map(|(m, x)| (m.to_string(), x.name.clone()))
                .collect::<Vec<_>>()
        })
    };
    view! {
        <label class="member-filter" for=id>
            <span>{label}</span>
            <select id=id on:change=move |ev| value.set(event_target_value(&ev))>
                <option value="me" selected=move || value.get() == "me">"Me"</option>
                {move || others().into_iter().map(|(m, name)| {
                    let selected = value.get() == m;
                    view! { <option value=m selected=selected>{name}</option> }
                }).collect_view()}
                <option value="all" selected=move || value.get() == "all">{everyone}</option>
            </select>
        </label>
    }
}

/// The record a task (or meeting) is about: a link while it is live, grey
/// text once it is deleted or gone from this device.
#[component]
pub fn LinkedRecord(id: RecordId) -> impl IntoView {
    let app = use_app();
    move || {
        app.index.with(|i| match i.get(id) {
            Some(row) if !row.deleted => match record_href(row.kind, row.id) {
                Some(href) => view! {
                    <a class="linked" href=href>
                        // Named by what it shows first, then the kind of record.
                        {row.title.clone()}
                        <span class="visually-hidden">{format!(" ({})", kind_label(row.kind).to_lowercase())}</span>
                    </a>
                }
                .into_any(),
                None => view! { <span class="linked">{row.title.clone()}</span> }.into_any(),
            },
            Some(row) => view! { <span class="linked gone">{format!("{} (deleted)", row.title)}</span> }.into_any(),
            None => view! { <span class="linked gone">"Deleted record"</span> }.into_any(),
        })
    }
}

/// The first live record an activity row points at (its contacts, then its
/// company, then its deal).
pub fn live_target(rows: &rapport_core::search::RowIndex, row: &Row) -> Option<(RecordKind, RecordId)> {
    use rapport_core::privacy::references::{row_references, RowReferences};
    let RowReferences::Read(refs) = row_references(row) else { return None };
    refs.iter().find_map(|r| rows.get(r.target).filter(|t| !t.deleted).map(|t| (t.kind, t.id)))
}

/// One task: its checkbox (labelled with the title) completes it; due date
/// and time (marked late once past), priority, assignee and linked record.
#[component]
pub fn TaskLine(facts: TaskFacts, clock: RwSignal<NaiveDateTime>, #[prop(optional)] hide_link: bool) -> impl IntoView {
    let app = use_app();
    let id = facts.id;
    let check_id = format!("task-{id}");
    let done = facts.done;
    let title = facts.title.clone();
    let edit_label = format!("Edit {title}");
    let due = {
        let f = facts.clone();
        move || {
            let now = clock.get();
            f.due_date.map(|d| (due_label(d, f.due_time, now.date()), f.bucket(now.date()), f.is_late(now)))
        }
    };
    let assignee = facts
        .assignee
        .map(|m| app.workspace.with_untracked(|w| w.member_name(m)))
        .unwrap_or_else(|| "Unassigned".into());
    let priority = facts.priority;
    let link = facts.link.filter(|_| !hide_link);
    view! {
        <li class="task-line" class:done=done data-testid="task">
            <input
                type="checkbox"
                id=check_id.clone()
                class="task-check"
                prop:checked=done
                on:change=move |ev| set_done(app, id, event_target_checked(&ev))
            />
            <div class="task-body">
                <label for=check_id class="task-title">{title}</label>
                <div class="task-meta">
                    {move || due().map(|(label, bucket, late)| {
                        let overdue = bucket == Bucket::Overdue;
                        view! {
                            <span class="due" class:overdue=overdue class:late=late && !done>
                                <span class="visually-hidden">"Due "</span>{label}
                            </span>
                            {(late && bucket == Bucket::Today).then(|| view! { <span class="badge late">"Late"</span> })}
                        }
                    })}
                    <span class=format!("prio prio-{}", priority.as_str())>
                        {format!("{} priority", priority.label())}
                    </span>
                    <span class="assignee"><span class="visually-hidden">"Assigned to "</span>{assignee}</span>
                    {link.map(|l| view! { <LinkedRecord id=l/> })}
                </div>
            </div>
            <a class="btn ghost small" href=browser::href(&format!("/tasks/{id}/edit")) aria-label=edit_label>"Edit"</a>
        </li>
    }
}

/// The number of my tasks overdue or due today, for the navigation badge.
#[component]
pub fn TaskCount() -> impl IntoView {
    let app = use_app();
    let clock = use_clock();
    let today = Memo::new(move |_| clock.get().date());
    let count = Memo::new(move |_| {
        let me = app.engine().member;
        let today = today.get();
        task_facts(app)
            .into_iter()
            .filter(|t| t.assignee == Some(me) && matches!(t.bucket(today), Bucket::Overdue | Bucket::Today))
            .count()
    });
    move || {
        let n = count.get();
        (n > 0).then(|| {
            view! {
                <span class="nav-badge" data-testid="task-count">
                    <span aria-hidden="true">{n}</span>
                    <span class="visually-hidden">{format!(", {n} due today or overdue")}</span>
                </span>
            }
        })
    }
}

const DONE_PAGE: usize = 20;

#[component]
pub fn TasksPage() -> impl IntoView {
    let app = use_app();
    let who = RwSignal::new("me".to_owned());
    let clock = use_clock();
    let today = Memo::new(move |_| clock.get().date());
    let groups = Memo::new(move |_| {
        let member = filter_member(app, &who.get());
        task::group(task_facts(app), member, today.get())
    });
    let total = Memo::new(move |_| groups.with(|g| g.values().map(Vec::len).sum::<usize>()));
    let done_shown = RwSignal::new(DONE_PAGE);
    // Done tasks, most recently completed first.
    let done = Memo::new(move |_| {
        let mut list = groups.with(|g| g.get(&Bucket::Done).cloned().unwrap_or_default());
        app.index.with(|i| {
            list.sort_by_cached_key(|t| {
                let at: i64 = i.get(t.id).and_then(|r| r.column(task::columns::DONE).parse().ok()).unwrap_or(0);
                std::cmp::Reverse(at)
            })
        });
        list
    });
    let for_whom = move || match who.get().as_str() {
        "me" => "you".to_owned(),
        "all" => "anyone".to_owned(),
        id => id.parse().ok().map(|m| app.workspace.with(|w| w.member_name(m))).unwrap_or_default(),
    };

    let section = move |bucket: Bucket, empty: &'static str| {
        let list = move || groups.with(|g| g.get(&bucket).cloned().unwrap_or_default());
        let heading_id = format!("tasks-{}", bucket.label().to_lowercase().replace(' ', "-"));
        let class = format!("task-group card group-{heading_id}");
        let (labelled_by, testid) = (heading_id.clone(), heading_id.clone());
        view! {
            <section class=class class:has-tasks=move || !list().is_empty() aria-labelledby=labelled_by data-testid=testid>
                <h2 id=heading_id>
                    {bucket.label()}
                    <span class="group-count">{move || list().len()}</span>
                </h2>
                {move || {
                    let items = list();
                    if items.is_empty() {
                        view! { <p class="muted group-empty">{empty}</p> }.into_any()
                    } else {
                        view! {
                            <ul class="task-list">
                                {items.into_iter().map(|f| view! { <TaskLine facts=f clock=clock/> }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }}
            </section>
        }
    };

    view! {
        <section class="page tasks-page">
            <div class="page-head">
                <h1>"Tasks"</h1>
                <a class="btn primary" href=browser::href("/tasks/new")>"New task"</a>
            </div>
            <div class="toolbar">
                <MemberFilter id="task-member" label="Show tasks for" everyone="Everyone" value=who/>
                <NotificationToggle/>
            </div>
            {move || (total.get() == 0).then(|| view! {
                <div class="empty" data-testid="no-tasks">
                    <h2>"No tasks yet"</h2>
                    <p>{move || format!("Nothing is assigned to {}. Add a task here, or a follow-up from a contact's page.", for_whom())}</p>
                    <a class="btn primary" href=browser::href("/tasks/new")>"Add a task"</a>
                </div>
            })}
            <div class="task-groups" class:hidden=move || total.get() == 0>
                {section(Bucket::Overdue, "Nothing overdue.")}
                {section(Bucket::Today, "Nothing due today.")}
                {section(Bucket::Upcoming, "Nothing planned ahead. Give a task a due date to see it here.")}
                {section(Bucket::NoDate, "Every open task has a due date.")}
                <details class="task-group card done-group" data-testid="tasks-done">
                    <summary>
                        <h2 id="tasks-done">"Done" <span class="group-count">{move || done.with(Vec::len)}</span></h2>
                    </summary>
                    {move || {
                        let items = done.get();
                        if items.is_empty() {
                            return view! { <p class="muted group-empty">"Completed tasks appear here."</p> }.into_any();
                        }
                        let more = items.len().saturating_sub(done_shown.get());
                        view! {
                            <ul class="task-list">
                                {items.into_iter().take(done_shown.get()).map(|f| view! { <TaskLine facts=f clock=clock/> }).collect_view()}
                            </ul>
                            {(more > 0).then(|| view! {
                                <button class="btn small show-more" on:click=move |_| done_shown.update(|n| *n += DONE_PAGE)>
                                    {format!("Show {} more", more.min(DONE_PAGE))}
                                </button>
                            })}
                        }.into_any()
                    }}
                </details>
            </div>
        </section>
    }
}
