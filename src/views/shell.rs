//! The app shell: navigation, the save status indicator, routes and toasts.

use leptos::prelude::*;
use leptos_router::components::{Redirect, Route, Router, Routes, A};
use leptos_router::path;

use super::audit_log::AuditLog;
use super::calendar::CalendarPage;
use super::companies::CompanyList;
use super::company_form::{EditCompany, NewCompany};
use super::company_page::CompanyPage;
use super::contact_form::{EditContact, NewContact};
use super::contact_page::ContactPage;
use super::contacts::ContactList;
use super::deal_form::{EditDeal, NewDeal};
use super::deal_page::DealPage;
use super::deals::DealsPage;
use super::forecast::ForecastPage;
use super::pipeline_settings::PipelineSettings;
use super::reminders::Reminders;
use super::retention::RetentionReview;
use super::settings::Settings;
use super::task_form::{EditTask, NewTask};
use super::tasks::{TaskCount, TasksPage};
use super::update::UpdateBanner;
use crate::browser;
use crate::state::{use_app, SaveState};

#[component]
pub fn App() -> impl IntoView {
    let app = use_app();
    Effect::new(move |_| {
        let name = app.workspace.with(|w| w.name.clone());
        if !app.joining.get() {
            crate::engine::remember_workspace(&app.engine().db_name, &name);
        }
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title(&format!("{name} · Rapport"));
        }
    });
    view! {
        <Router base=browser::base_path()>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <div class="app">
                <header class="topbar">
                    <a class="brand" href=browser::href("/contacts") aria-label="Rapport home">
                        <span class="brand-mark" aria-hidden="true">"R"</span>
                        <span class="brand-name">"Rapport"</span>
                    </a>
                    <nav class="mainnav" aria-label="Main">
                        <A href=browser::href("/contacts")>"Contacts"</A>
                        <A href=browser::href("/companies")>"Companies"</A>
                        <A href=browser::href("/deals")>"Deals"</A>
                        <A href=browser::href("/forecast")>"Forecast"</A>
                        <A href=browser::href("/tasks")>"Tasks"<TaskCount/></A>
                        <A href=browser::href("/calendar")>"Calendar"</A>
                        <A href=browser::href("/privacy")>"Privacy"</A>
                        <A href=browser::href("/settings")>"Settings"</A>
                    </nav>
                    <SyncIndicator/>
                    <SaveIndicator/>
                </header>
                <QuarantineBanner/>
                <UpdateBanner/>
                <JoiningBanner/>
                <Reminders/>
                <main id="main" class="content" tabindex="-1">
                    <Routes fallback=|| view! { <NotFound/> }>
                        <Route path=path!("/") view=|| view! { <Redirect path="/contacts"/> }/>
                        <Route path=path!("/index.html") view=|| view! { <Redirect path="/contacts"/> }/>
                        <Route path=path!("/contacts") view=ContactList/>
                        <Route path=path!("/contacts/new") view=NewContact/>
                        <Route path=path!("/contacts/:id") view=ContactPage/>
                        <Route path=path!("/contacts/:id/edit") view=EditContact/>
                        <Route path=path!("/companies") view=CompanyList/>
                        <Route path=path!("/companies/new") view=NewCompany/>
                        <Route path=path!("/companies/:id") view=CompanyPage/>
                        <Route path=path!("/companies/:id/edit") view=EditCompany/>
                        <Route path=path!("/settings") view=Settings/>
                        <Route path=path!("/settings/pipelines") view=PipelineSettings/>
                        <Route path=path!("/deals") view=DealsPage/>
                        <Route path=path!("/deals/new") view=NewDeal/>
                        <Route path=path!("/deals/:id") view=DealPage/>
                        <Route path=path!("/deals/:id/edit") view=EditDeal/>
                        <Route path=path!("/forecast") view=ForecastPage/>
                        <Route path=path!("/tasks") view=TasksPage/>
                        <Route path=path!("/tasks/new") view=NewTask/>
                        <Route path=path!("/tasks/:id/edit") view=EditTask/>
                        <Route path=path!("/calendar") view=CalendarPage/>
                        <Route path=path!("/privacy") view=|| view! { <Redirect path="/privacy/retention"/> }/>
                        <Route path=path!("/privacy/retention") view=RetentionReview/>
                        <Route path=path!("/privacy/audit") view=AuditLog/>
                    </Routes>
                </main>
            </div>
            <ToastArea/>
        </Router>
    }
}

/// Always visible in a shared workspace: offline, connecting, syncing with
/// progress, up to date, or what is wrong, in words.
#[component]
fn SyncIndicator() -> impl IntoView {
    let app = use_app();
    move || {
        app.sync_badge.get().map(|badge| {
            let class = format!("dot {}", badge.tone);
            let title = badge.detail.clone().unwrap_or_else(|| badge.label.clone());
            view! {
                <a class="sync-status" href=browser::href("/settings#sync") role="status" aria-live="polite"
                    data-testid="sync-status" title=title data-tone=badge.tone.clone()>
                    <span class=class aria-hidden="true"></span>
                    <span>{badge.label.clone()}</span>
                </a>
            }
        })
    }
}

#[component]
fn JoiningBanner() -> impl IntoView {
    let app = use_app();
    move || {
        app.joining.get().then(|| {
            view! {
                <div class="banner info" role="status" data-testid="joining-banner">
                    "Joining the shared workspace… Its records appear here as they arrive from the sync server."
                </div>
            }
        })
    }
}

/// Always visible: whether the last edit is durable on this device.
#[component]
fn SaveIndicator() -> impl IntoView {
    let app = use_app();
    let status = move || app.save.get();
    view! {
        <div class="save-status" role="status" aria-live="polite" data-testid="save-status">
            {move || match status() {
                SaveState::Idle => view! { <span class="dot ok" aria-hidden="true"></span><span>"Saved on this device"</span> }.into_any(),
                SaveState::Saving => view! { <span class="dot busy" aria-hidden="true"></span><span>"Saving…"</span> }.into_any(),
                SaveState::Saved => view! { <span class="dot ok" aria-hidden="true"></span><span>"All changes saved"</span> }.into_any(),
                SaveState::Failed(msg) => view! {
                    <span class="dot err" aria-hidden="true"></span>
                    <span class="save-error" title=msg.clone()>"Not saved"</span>
                    <button class="btn small" on:click=move |_| app.retry()>"Retry"</button>
                }.into_any(),
            }}
        </div>
        {move || match status() {
            SaveState::Failed(msg) => Some(view! { <div class="banner error" role="alert">{msg}</div> }),
            _ => None,
        }}
    }
}

#[component]
fn QuarantineBanner() -> impl IntoView {
    let app = use_app();
    move || {
        let n = app.quarantined.with(Vec::len);
        (n > 0).then(|| {
            let noun = if n == 1 { "record" } else { "records" };
            view! {
                <div class="banner warn" role="alert" data-testid="quarantine-banner">
                    {format!("{n} {noun} could not be read from this device's storage and {} set aside. Everything else is fine. ", if n == 1 { "was" } else { "were" })}
                    <a href=browser::href("/settings#storage")>"See details"</a>
                </div>
            }
        })
    }
}

#[component]
fn ToastArea() -> impl IntoView {
    let app = use_app();
    view! {
        <div class="toasts" role="status" aria-live="polite">
            {move || app.toast.get().map(|t| {
                let action = t.action.clone().map(|(label, f)| view! {
                    <button class="btn small" on:click=move |_| { f(); app.toast.set(None); }>{label}</button>
                });
                view! {
                    <div class="toast" data-testid="toast">
                        <span>{t.message.clone()}</span>
                        {action}
                        <button class="btn small ghost" aria-label="Dismiss" on:click=move |_| app.toast.set(None)>"✕"</button>
                    </div>
                }
            })}
        </div>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="empty">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address."</p>
            <a class="btn primary" href=browser::href("/contacts")>"Go to contacts"</a>
        </section>
    }
}

/// Shown instead of the app when local storage cannot be opened at all.
#[component]
pub fn BootFailure(message: String) -> impl IntoView {
    view! {
        <main class="boot-failure" role="alert">
            <h1>"Rapport could not open its data on this device"</h1>
            <p>{message}</p>
            <p>"Your data has not been changed. Check that this browser allows sites to store data (private windows may not), then reload the page."</p>
            <button class="btn primary" on:click=|_| { let _ = web_sys::window().map(|w| w.location().reload()); }>"Reload"</button>
        </main>
    }
}
