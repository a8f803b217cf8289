//! Creating and editing a task (`/tasks/new`, `/tasks/:id/edit`): title,
//! due date and optional time, assignee, priority, the contact, company or
//! deal it is about (picked from rows in memory), notes. Validated by core's
//! `TaskForm::apply`; errors next to their field, focus on the first.
//!
//! `/tasks/new?link=<record id>` starts linked to that record; a new task
//! is due today unless the user clears the date.

use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use rapport_core::form::Base;
use rapport_core::form::FormErrors;
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::sales::task::{Priority, Task, TaskForm};
use rapport_core::search::{Query, Sort};

use super::conflicts::{ChangedElsewhere, ConflictCard};
use super::tasks::kind_label;
use super::widgets::{FieldError, TextField};
use super::{record_href, record_path};
use crate::browser;
use crate::state::{use_app, AppState};

/// Kinds a task can be linked to.
const LINKABLE: [RecordKind; 3] = [RecordKind::Contact, RecordKind::Company, RecordKind::Deal];

#[component]
pub fn NewTask() -> impl IntoView {
    view! { <TaskEditor existing=None/> }
}

#[component]
pub fn EditTask() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let loaded = LocalResource::new(move || {
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            let id: RecordId = id.parse().map_err(|_| "There is no task at this address.".to_owned())?;
            app.engine().open_for_edit::<Task>(id).await.map_err(|e| e.to_string())
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok((t, base)) if !t.deleted => view! { <TaskEditor existing=Some(t) base=Some(base)/> }.into_any(),
                Ok(_) => view! {
                    <section class="page">
                        <div class="banner warn" role="status">"This task was deleted."</div>
                        <a class="btn" href=browser::href("/tasks")>"Back to tasks"</a>
                    </section>
                }.into_any(),
                Err(e) => view! {
                    <section class="page">
                        <div class="banner error" role="alert">{format!("This task could not be opened: {e}")}</div>
                        <a class="btn" href=browser::href("/tasks")>"Back to tasks"</a>
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}

/// A live, linkable record's kind, from the row in memory.
fn linkable(app: AppState, id: RecordId) -> Option<(RecordId, RecordKind)> {
    app.index.with_untracked(|i| i.get(id).filter(|r| !r.deleted && LINKABLE.contains(&r.kind)).map(|r| (r.id, r.kind)))
}

fn delete(app: AppState, mut task: Task, deleted: bool) {
    spawn_local(async move {
        let engine = app.engine();
        task.deleted = deleted;
        task.touch(browser::now(), engine.member);
        let title = task.title.clone();
        let again = task.clone();
        match app.persist(task, false).await {
            Ok(_) if deleted => {
                let undo: Rc<dyn Fn()> = Rc::new(move || delete(app, again.clone(), false));
                app.notify(format!("Deleted task “{title}”"), Some(("Undo".into(), undo)));
            }
            Ok(_) => app.notify(format!("Restored task “{title}”"), None),
            Err(e) => app.notify(e, None),
        }
    });
}

#[component]
fn TaskEditor(
    existing: Option<Task>,
    /// The version `existing` was read at: saving writes only what this
    /// form changed since.
    #[prop(default = None)]
    base: Option<Base>,
) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let query = use_query_map();
    let is_new = existing.is_none();
    let me = app.engine().member;
    let form = existing.as_ref().map(TaskForm::from_task).unwrap_or_else(|| TaskForm {
        due_date: browser::today().format("%Y-%m-%d").to_string(),
        assignee: me.to_string(),
        priority: Priority::Normal.as_str().into(),
        ..TaskForm::default()
    });
    let initial_link = match &existing {
        Some(t) => t.link.zip(t.link_kind),
        None => query.with_untracked(|q| q.get("link")).and_then(|l| l.parse().ok()).and_then(|id| linkable(app, id)),
    };
    let came_from = (is_new).then_some(initial_link).flatten();
    let was_done = existing.as_ref().is_some_and(Task::is_done);
    // A task has no page of its own: its form shows its conflicts too.
    let changed_notice = existing.as_ref().map(|r| r.id).zip(base.clone()).map(|(id, base)| {
        view! {
            <ChangedElsewhere id=id base=base noun="task"/>
            <ConflictCard id=id noun="task"/>
        }
    });
    let existing = StoredValue::new(existing);
    let base = StoredValue::new(base);

    let title = RwSignal::new(form.title);
    let due_date = RwSignal::new(form.due_date);
    let due_time = RwSignal::new(form.due_time);
    let assignee = RwSignal::new(form.assignee);
    let priority = RwSignal::new(form.priority);
    let notes = RwSignal::new(form.notes);
    let link = RwSignal::new(initial_link);
    let done = RwSignal::new(was_done);
    let errors = RwSignal::new(FormErrors::new());
    let busy = RwSignal::new(false);
    let failure = RwSignal::new(None::<String>);
    let err = move |key: &'static str| Signal::derive(move || errors.with(|e| e.get(key).map(|e| e.to_string())));

    // Where to go after saving: the record a new linked task came from,
    // else the task list.
    let back = came_from.and_then(|(id, kind)| record_path(kind, id)).unwrap_or_else(|| "/tasks".into());

    let submit = {
        let navigate = navigate.clone();
        let back = back.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            if busy.get_untracked() {
                return;
            }
            let (link_id, link_kind) =
                link.get_untracked().map(|(id, kind)| (id.to_string(), kind.as_str().to_owned())).unwrap_or_default();
            let form = TaskForm {
                title: title.get_untracked(),
                due_date: due_date.get_untracked(),
                due_time: due_time.get_untracked(),
                assignee: assignee.get_untracked(),
                link: link_id,
                link_kind,
                priority: priority.get_untracked(),
                notes: notes.get_untracked(),
            };
            let engine = app.engine();
            let now = browser::now();
            let mut task =
                existing.get_value().unwrap_or_else(|| Task::new(browser::new_record_id(), now, engine.member));
            match form.apply(&mut task) {
                Err(found) => {
                    errors.set(found);
                    request_animation_frame(browser::focus_first_invalid);
                }
                Ok(()) => {
                    errors.set(FormErrors::new());
                    task.set_done(done.get_untracked(), now, engine.member);
                    task.touch(now, engine.member);
                    busy.set(true);
                    let navigate = navigate.clone();
                    let back = back.clone();
                    spawn_local(async move {
                        let name = task.title.clone();
                        match app.persist_form(task, base.get_value()).await {
                            Ok(_) => {
                                app.notify(
                                    if is_new {
                                        format!("Added task “{name}”")
                                    } else {
                                        format!("Saved task “{name}”")
                                    },
                                    None,
                                );
                                navigate(&back, Default::default());
                            }
                            Err(e) => {
                                busy.set(false);
                                failure.set(Some(e.replace("The contact was not created", "The task was not created")));
                            }
                        }
                    });
                }
            }
        }
    };

    let on_delete = {
        let navigate = navigate.clone();
        move |_| {
            if let Some(t) = existing.get_value() {
                delete(app, t, true);
                navigate("/tasks", Default::default());
            }
        }
    };

    let heading = existing
        .with_value(|e| e.as_ref().map(|t| format!("Edit task: {}", t.title)).unwrap_or_else(|| "New task".into()));
    let members = move || {
        app.workspace.with(|w| w.members.iter().map(|(id, m)| (id.to_string(), m.name.clone())).collect::<Vec<_>>())
    };

    view! {
        <section class="page form-page task-form-page">
            <div class="page-head">
                <h1>{heading}</h1>
            </div>
            {changed_notice}
            <form class="card form" on:submit=submit novalidate=true data-testid="task-form">
                {move || (!errors.with(FormErrors::is_empty)).then(|| view! {
                    <div class="banner error" role="alert">"Some fields need attention. They are marked below."</div>
                })}
                <fieldset>
                    <legend>"What and when"</legend>
                    <TextField id="title" label="Title" value=title error=err("title")/>
                    <div class="grid2">
                        <TextField id="due_date" label="Due date" value=due_date error=err("due_date") input_type="date"
                            hint="Leave empty for a task without a date"/>
                        <TextField id="due_time" label="Time (optional)" value=due_time error=err("due_time") input_type="time"
                            hint="Without a time, the reminder comes at 09:00"/>
                        <div class="field" class:invalid=move || err("assignee").get().is_some()>
                            <label for="assignee">"Assigned to"</label>
                            <select id="assignee" on:change=move |ev| assignee.set(event_target_value(&ev))
                                aria-invalid=move || err("assignee").get().is_some().then_some("true")>
                                <option value="" selected=move || assignee.get().is_empty()>"Nobody"</option>
                                {move || members().into_iter().map(|(id, name)| {
                                    let selected = assignee.get() == id;
                                    view! { <option value=id.clone() selected=selected>{name}</option> }
                                }).collect_view()}
                            </select>
                            <FieldError id="assignee-error".into() error=err("assignee")/>
                        </div>
                        <div class="field">
                            <label for="priority">"Priority"</label>
                            <select id="priority" on:change=move |ev| priority.set(event_target_value(&ev))>
                                {Priority::ALL.into_iter().map(|p| view! {
                                    <option value=p.as_str() selected=move || priority.get() == p.as_str()>{p.label()}</option>
                                }).collect_view()}
                            </select>
                        </div>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"About"</legend>
                    <RecordPicker link=link error=err("link")/>
                </fieldset>
                <fieldset>
                    <div class="field">
                        <label for="notes">"Notes"</label>
                        <textarea id="notes" rows="4" prop:value=move || notes.get()
                            on:input=move |ev| notes.set(event_target_value(&ev))></textarea>
                        <FieldError id="notes-error".into() error=err("notes")/>
                    </div>
                </fieldset>
                {(!is_new).then(|| view! {
                    <label class="check">
                        <input type="checkbox" prop:checked=move || done.get() on:change=move |ev| done.set(event_target_checked(&ev))/>
                        "Done"
                    </label>
                })}
                {move || failure.get().map(|f| view! { <div class="banner error" role="alert">{f}</div> })}
                <div class="form-actions">
                    <button type="submit" class="btn primary" disabled=move || busy.get()>
                        {move || if busy.get() { "Saving…" } else if is_new { "Add task" } else { "Save task" }}
                    </button>
                    <a class="btn" href=browser::href(&back)>"Cancel"</a>
                    {(!is_new).then(|| view! {
                        <button type="button" class="btn danger push-right" on:click=on_delete>"Delete task"</button>
                    })}
                </div>
            </form>
        </section>
    }
}

/// Picks the contact, company or deal a task is about: a search over the
/// rows in memory, results as buttons (arrow keys move between them,
/// Escape clears), the choice shown with a way to remove it.
#[component]
fn RecordPicker(
    link: RwSignal<Option<(RecordId, RecordKind)>>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let app = use_app();
    let search = RwSignal::new(String::new());
    let results = Memo::new(move |_| {
        let q = Query::parse(&search.get());
        if q.is_empty() {
            return Vec::new();
        }
        app.index.with(|i| {
            LINKABLE
                .iter()
                .flat_map(|kind| {
                    i.query(*kind, &q, Sort::default()).into_iter().take(5).map(|p| {
                        let r = i.row_at(p);
                        (r.id, r.kind, r.title.clone(), r.subtitle.clone())
                    })
                })
                .collect::<Vec<_>>()
        })
    });
    let chosen = move || {
        link.get().map(|(id, kind)| {
            let title = app.index.with(|i| i.get(id).map(|r| (r.title.clone(), r.deleted)));
            (id, kind, title)
        })
    };
    let pick = move |id: RecordId, kind: RecordKind| {
        link.set(Some((id, kind)));
        search.set(String::new());
    };
    // Arrow keys move between the input and the results.
    let focus = |id: String| {
        use wasm_bindgen::JsCast;
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&id))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let n = results.with_untracked(Vec::len);
        let current = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .and_then(|a| a.get_attribute("data-option"))
            .and_then(|k| k.parse::<usize>().ok());
        let target = match (ev.key().as_str(), current) {
            ("ArrowDown", None) if n > 0 => Some("link-option-0".to_owned()),
            ("ArrowDown", Some(k)) if k + 1 < n => Some(format!("link-option-{}", k + 1)),
            ("ArrowUp", Some(0)) => Some("link".to_owned()),
            ("ArrowUp", Some(k)) => Some(format!("link-option-{}", k - 1)),
            ("Escape", _) if !search.with_untracked(String::is_empty) => {
                search.set(String::new());
                Some("link".to_owned())
            }
            _ => None,
        };
        if let Some(t) = target {
            ev.prevent_default();
            focus(t);
        }
    };
    view! {
        <div class="picker" class:invalid=move || error.get().is_some() on:keydown=on_key>
            {move || match chosen() {
                Some((id, kind, found)) => {
                    let text = match &found {
                        Some((title, false)) => title.clone(),
                        Some((title, true)) => format!("{title} (deleted)"),
                        None => "Deleted record".to_owned(),
                    };
                    let live = matches!(found, Some((_, false)));
                    view! {
                        <div class="field">
                            <span class="label" id="link-label">"Linked record"</span>
                            <div class="picked" aria-labelledby="link-label" data-testid="linked-record">
                                <span class="kind-chip">{kind_label(kind)}</span>
                                {match record_href(kind, id).filter(|_| live) {
                                    Some(href) => view! { <a href=href>{text.clone()}</a> }.into_any(),
                                    None => view! { <span class="gone">{text.clone()}</span> }.into_any(),
                                }}
                                <button type="button" class="btn small ghost" on:click=move |_| {
                                    link.set(None);
                                    request_animation_frame(move || focus("link".to_owned()));
                                }>"Remove link"</button>
                            </div>
                        </div>
                    }.into_any()
                }
                None => view! {
                    <div class="field">
                        <label for="link">"Linked record"</label>
                        <input id="link" type="search" autocomplete="off"
                            placeholder="Search contacts, companies and deals"
                            aria-describedby="link-hint"
                            prop:value=move || search.get()
                            on:input=move |ev| search.set(event_target_value(&ev))/>
                        <p class="hint" id="link-hint">"Optional: the contact, company or deal this task is about"</p>
                    </div>
                }.into_any(),
            }}
            {move || {
                let found = results.get();
                if search.with(String::is_empty) || link.with(Option::is_some) {
                    return ().into_any();
                }
                if found.is_empty() {
                    return view! { <p class="muted small picker-none">"No contact, company or deal matches."</p> }.into_any();
                }
                view! {
                    <ul class="picker-results" aria-label="Matching records">
                        {found.into_iter().enumerate().map(|(k, (id, kind, title, subtitle))| view! {
                            <li>
                                <button type="button" id=format!("link-option-{k}") data-option=k on:click=move |_| pick(id, kind)>
                                    <span class="kind-chip">{kind_label(kind)}</span>
                                    <span class="picker-title">{title}</span>
                                    <span class="muted small">{subtitle}</span>
                                </button>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            <FieldError id="link-error".into() error=error/>
        </div>
    }
}
