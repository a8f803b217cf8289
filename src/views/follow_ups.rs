//! Follow-ups on a record's page (contact, company, deal): the open tasks
//! linked to it, each with its complete checkbox, and a quick form to add
//! one (title, due date defaulting to today, optional time), assigned to me.

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::form::FormErrors;
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::sales::task::{self, Bucket, Task, TaskForm};

use super::tasks::{task_facts, use_clock, TaskLine};
use super::widgets::FieldError;
use crate::browser;
use crate::state::use_app;

#[component]
pub fn FollowUps(target: RecordId, target_kind: RecordKind) -> impl IntoView {
    let app = use_app();
    let clock = use_clock();
    let today = Memo::new(move |_| clock.get().date());
    let open = Memo::new(move |_| {
        let mut groups = task::group(task_facts(app).into_iter().filter(|t| t.link == Some(target)), None, today.get());
        [Bucket::Overdue, Bucket::Today, Bucket::Upcoming, Bucket::NoDate]
            .into_iter()
            .flat_map(|b| groups.remove(&b).unwrap_or_default())
            .collect::<Vec<_>>()
    });

    let title = RwSignal::new(String::new());
    let due = RwSignal::new(browser::today().format("%Y-%m-%d").to_string());
    let time = RwSignal::new(String::new());
    let errors = RwSignal::new(FormErrors::new());
    let busy = RwSignal::new(false);
    let err = move |key: &'static str| Signal::derive(move || errors.with(|e| e.get(key).map(|e| e.to_string())));
    let title_input = NodeRef::<leptos::html::Input>::new();

    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let engine = app.engine();
        let now = browser::now();
        let form = TaskForm {
            title: title.get_untracked(),
            due_date: due.get_untracked(),
            due_time: time.get_untracked(),
            assignee: engine.member.to_string(),
            link: target.to_string(),
            link_kind: target_kind.as_str().into(),
            priority: String::new(),
            notes: String::new(),
        };
        let mut task = Task::new(browser::new_record_id(), now, engine.member);
        if let Err(found) = form.apply(&mut task) {
            errors.set(found);
            request_animation_frame(|| {
                // The first invalid field of this form (the page may have others).
                use wasm_bindgen::JsCast;
                if let Some(el) = web_sys::window()
                    .and_then(|w| w.document())
                    .and_then(|d| d.query_selector(".follow-up-form [aria-invalid=\"true\"]").ok().flatten())
                    .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
                {
                    let _ = el.focus();
                }
            });
            return;
        }
        errors.set(FormErrors::new());
        busy.set(true);
        spawn_local(async move {
            let name = task.title.clone();
            match app.persist(task, true).await {
                Ok(_) => {
                    title.set(String::new());
                    time.set(String::new());
                    app.notify(format!("Added follow-up “{name}”"), None);
                    if let Some(i) = title_input.get_untracked() {
                        let _ = i.focus();
                    }
                }
                Err(e) => app.notify(e.replace("The contact was not created", "The follow-up was not added"), None),
            }
            busy.set(false);
        });
    };

    let described = |id: &'static str| {
        let key = match id {
            "follow-up-title" => "title",
            "follow-up-due" => "due_date",
            _ => "due_time",
        };
        move || errors.with(|e| e.contains_key(key)).then(|| format!("{id}-error"))
    };
    let invalid = move |key: &'static str| move || errors.with(|e| e.contains_key(key)).then_some("true");

    view! {
        <section class="card follow-ups" aria-labelledby="follow-ups-title" data-testid="follow-ups">
            <div class="row-between">
                <h2 id="follow-ups-title">"Follow-ups"</h2>
                <a class="btn small ghost" href=browser::href(&format!("/tasks/new?link={target}"))>"New task with details"</a>
            </div>
            {move || {
                let list = open.get();
                if list.is_empty() {
                    view! { <p class="muted group-empty">"No open follow-ups. Add one below and it shows in Tasks and on the calendar."</p> }.into_any()
                } else {
                    view! {
                        <ul class="task-list">
                            {list.into_iter().map(|f| view! { <TaskLine facts=f clock=clock hide_link=true/> }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
            <form class="follow-up-form" on:submit=add novalidate=true>
                <div class="field grow" class:invalid=move || err("title").get().is_some()>
                    <label for="follow-up-title">"Follow-up"</label>
                    <input id="follow-up-title" node_ref=title_input placeholder="Call back about the quote"
                        prop:value=move || title.get() on:input=move |ev| title.set(event_target_value(&ev))
                        aria-invalid=invalid("title") aria-describedby=described("follow-up-title")/>
                    <FieldError id="follow-up-title-error".into() error=err("title")/>
                </div>
                <div class="field" class:invalid=move || err("due_date").get().is_some()>
                    <label for="follow-up-due">"Due date"</label>
                    <input id="follow-up-due" type="date"
                        prop:value=move || due.get() on:input=move |ev| due.set(event_target_value(&ev))
                        aria-invalid=invalid("due_date") aria-describedby=described("follow-up-due")/>
                    <FieldError id="follow-up-due-error".into() error=err("due_date")/>
                </div>
                <div class="field" class:invalid=move || err("due_time").get().is_some()>
                    <label for="follow-up-time">"Time (optional)"</label>
                    <input id="follow-up-time" type="time"
                        prop:value=move || time.get() on:input=move |ev| time.set(event_target_value(&ev))
                        aria-invalid=invalid("due_time") aria-describedby=described("follow-up-time")/>
                    <FieldError id="follow-up-time-error".into() error=err("due_time")/>
                </div>
                <button type="submit" class="btn primary" disabled=move || busy.get()>"Add follow-up"</button>
            </form>
        </section>
    }
}
