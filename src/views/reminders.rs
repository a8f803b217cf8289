//! Reminders while the app is open: when one of my tasks falls due, an
//! in-app reminder (a banner under the top bar that stays in view while
//! scrolling, with Open and Mark done) and, if the user turned them on, a
//! desktop notification.
//!
//! - One tab reminds: the one holding the Web Lock
//!   `rapport-reminders:<database>` (the same leader election as sync, with
//!   its own lock); when it closes, another tab takes over.
//! - Every 30 seconds the leader asks core's `task::newly_due` for my tasks
//!   that fell due since its last check (kept in memory). The first check
//!   window starts when the tab becomes the leader, so tasks already due
//!   when the app opens are not announced: they are listed under Overdue
//!   and Today, and the navigation badge counts them. A task without a time
//!   falls due at 09:00 on its day (`task::ALL_DAY_REMINDER`).
//! - A task is announced once per due moment: moving it to a later time
//!   reminds again then.
//! - Desktop notifications are only asked for when the user presses the
//!   button on the Tasks page, never unprompted.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use rapport_core::ids::RecordId;
use rapport_core::sales::task::{self, due_label};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

use super::record_path;
use super::tasks::{set_done, task_facts};
use crate::browser;
use crate::state::{use_app, AppState};

/// How often the leader tab looks for tasks that fell due.
const CHECK_EVERY_MS: u32 = 30_000;

#[derive(Debug, Clone, PartialEq)]
struct Reminder {
    id: RecordId,
    title: String,
    when: String,
    link: Option<RecordId>,
}

/// The reminders area, mounted once in the shell.
#[component]
pub fn Reminders() -> impl IntoView {
    let app = use_app();
    let shown = RwSignal::new(Vec::<Reminder>::new());
    let navigate = use_navigate();
    let lock = format!("rapport-reminders:{}", app.engine().db_name);
    crate::net::leader::when_leader(&lock, move || spawn_local(watch(app, shown)));

    // A reminder whose task was completed (here or elsewhere) goes away.
    let visible = move || {
        let shown = shown.get();
        // With nothing shown, the rows are not read (nor tracked): every
        // saved or received record would otherwise rebuild the task list.
        if shown.is_empty() {
            return shown;
        }
        let open: HashSet<RecordId> = task_facts(app).into_iter().filter(|t| !t.done).map(|t| t.id).collect();
        shown.into_iter().filter(|r| open.contains(&r.id)).collect::<Vec<_>>()
    };
    let dismiss = move |id: RecordId| shown.update(|s| s.retain(|r| r.id != id));
    let open_path = move |r: &Reminder| {
        r.link
            .and_then(|l| {
                app.index.with_untracked(|i| i.get(l).filter(|row| !row.deleted).map(|row| (row.kind, row.id)))
            })
            .and_then(|(kind, id)| record_path(kind, id))
            .unwrap_or_else(|| format!("/tasks/{}/edit", r.id))
    };
    view! {
        <section class="reminders" aria-label="Reminders" aria-live="assertive" data-testid="reminders">
            <For
                each=visible
                key=|r| r.id
                children=move |r| {
                    let id = r.id;
                    let path = open_path(&r);
                    let navigate = navigate.clone();
                    view! {
                        <div class="reminder" role="group" aria-label=format!("Reminder: {}", r.title) data-testid="reminder">
                            <div class="reminder-text">
                                <span class="reminder-kicker">"Reminder"</span>
                                <strong>{r.title.clone()}</strong>
                                <span>{format!("Due {}", r.when)}</span>
                            </div>
                            <div class="reminder-actions">
                                <button class="btn small" on:click=move |_| {
                                    dismiss(id);
                                    navigate(&path, Default::default());
                                }>"Open"</button>
                                <button class="btn small primary" on:click=move |_| {
                                    dismiss(id);
                                    set_done(app, id, true);
                                }>"Mark done"</button>
                                <button class="btn small ghost" aria-label=format!("Dismiss reminder for {}", r.title)
                                    on:click=move |_| dismiss(id)>"✕"</button>
                            </div>
                        </div>
                    }
                }
            />
        </section>
    }
}

/// The leader's loop: every [`CHECK_EVERY_MS`], announce my tasks that fell
/// due since the previous check.
async fn watch(app: AppState, shown: RwSignal<Vec<Reminder>>) {
    let mut since = browser::local_now();
    let mut announced: HashSet<(RecordId, NaiveDateTime)> = HashSet::new();
    loop {
        gloo_timers::future::TimeoutFuture::new(CHECK_EVERY_MS).await;
        let now = browser::local_now();
        if now <= since {
            // The clock went back (a daylight-saving change, a corrected
            // clock): keep the later mark so nothing is announced twice.
            continue;
        }
        let me = app.engine().member;
        let facts = task_facts(app);
        let due: Vec<Reminder> = task::newly_due(&facts, Some(me), since, now)
            .into_iter()
            .filter_map(|t| {
                let date = t.due_date?;
                announced.insert((t.id, task::due_at(date, t.due_time))).then(|| Reminder {
                    id: t.id,
                    title: t.title.clone(),
                    when: due_label(date, t.due_time, now.date()),
                    link: t.link,
                })
            })
            .collect();
        since = now;
        for r in &due {
            notify_desktop(r);
        }
        if !due.is_empty() {
            shown.update(|s| {
                s.retain(|old| !due.iter().any(|r| r.id == old.id));
                s.extend(due);
            });
        }
    }
}

/// `Notification.permission`: "granted", "denied", "default", or `None`
/// where the browser has no notifications.
fn permission() -> Option<String> {
    let ctor = notification_ctor()?;
    js_sys::Reflect::get(&ctor, &"permission".into()).ok()?.as_string()
}

fn notification_ctor() -> Option<JsValue> {
    let window = web_sys::window()?;
    js_sys::Reflect::get(&window, &"Notification".into()).ok().filter(|c| c.is_function())
}

/// Shows a desktop notification when the user allowed them. Clicking it
/// brings the app's window forward. Browsers that only show notifications
/// through a service worker (Chrome on Android) get one from there.
fn notify_desktop(r: &Reminder) {
    if permission().as_deref() != Some("granted") {
        return;
    }
    let Some(ctor) = notification_ctor().and_then(|c| c.dyn_into::<js_sys::Function>().ok()) else { return };
    let title = format!("Due: {}", r.title);
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"body".into(), &format!("Rapport task, due {}", r.when).into());
    let _ = js_sys::Reflect::set(&options, &"tag".into(), &format!("task-{}", r.id).into());
    let args = js_sys::Array::of2(&title.clone().into(), &options);
    match js_sys::Reflect::construct(&ctor, &args) {
        Ok(notification) => {
            let on_click = Closure::<dyn FnMut()>::new(|| {
                if let Some(w) = web_sys::window() {
                    let _ = w.focus();
                }
            });
            let _ = js_sys::Reflect::set(&notification, &"onclick".into(), on_click.as_ref());
            on_click.forget();
        }
        Err(_) => {
            // "Illegal constructor": use the service worker's registration.
            spawn_local(async move {
                let Some(sw) = web_sys::window()
                    .and_then(|w| js_sys::Reflect::get(&w.navigator(), &"serviceWorker".into()).ok())
                    .filter(|s| !s.is_undefined())
                else {
                    return;
                };
                let Some(ready) =
                    js_sys::Reflect::get(&sw, &"ready".into()).ok().and_then(|p| p.dyn_into::<js_sys::Promise>().ok())
                else {
                    return;
                };
                let Ok(registration) = wasm_bindgen_futures::JsFuture::from(ready).await else { return };
                if let Some(show) = js_sys::Reflect::get(&registration, &"showNotification".into())
                    .ok()
                    .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
                {
                    let _ = show.call2(&registration, &title.into(), &options);
                }
            });
        }
    }
}

/// The button that turns on desktop reminders (asking the browser for
/// permission only when pressed), or what their state is.
#[component]
pub fn NotificationToggle() -> impl IntoView {
    let state = RwSignal::new(permission());
    let ask = move |_| {
        let Some(request) = notification_ctor().and_then(|c| {
            js_sys::Reflect::get(&c, &"requestPermission".into())
                .ok()
                .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        }) else {
            return;
        };
        let Some(ctor) = notification_ctor() else { return };
        spawn_local(async move {
            if let Ok(promise) = request.call0(&ctor).and_then(|p| p.dyn_into::<js_sys::Promise>()) {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            }
            state.set(permission());
        });
    };
    move || {
        match state.get().as_deref() {
        None => ().into_any(),
        Some("granted") => view! {
            <p class="notify-state muted small" data-testid="notifications-on">"Desktop reminders are on."</p>
        }
        .into_any(),
        Some("denied") => view! {
            <p class="notify-state muted small">
                "Desktop reminders are blocked for this site. Allow notifications in the browser's site settings to get them."
            </p>
        }
        .into_any(),
        Some(_) => view! {
            <button class="btn" on:click=ask>"Turn on desktop reminders"</button>
        }
        .into_any(),
    }
    }
}
