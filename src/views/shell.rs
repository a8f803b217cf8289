//! The app shell: navigation, the save status indicator, routes and toasts.

use leptos::prelude::*;
use leptos_router::components::{Redirect, Route, Router, Routes, A};
use leptos_router::hooks::use_location;
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
                    <a class="brand" href=browser::href("/contacts")>
                        <span class="brand-mark" aria-hidden="true">"R"</span>
                        <span class="brand-name">"Rapport"</span>
                    </a>
                    <nav class="mainnav" aria-label="Main" data-testid="desktop-nav">
                        {SECTIONS.iter().map(section_link).collect_view()}
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
            <PhoneNav/>
            <ToastArea/>
            <RouteFocus/>
        </Router>
    }
}

/// A section of the app, as the navigation lists it.
struct Section {
    label: &'static str,
    path: &'static str,
    /// In the phone's bottom bar; the others are under "More".
    on_phone_bar: bool,
}

static SECTIONS: [Section; 8] = [
    Section { label: "Contacts", path: "/contacts", on_phone_bar: true },
    Section { label: "Companies", path: "/companies", on_phone_bar: true },
    Section { label: "Deals", path: "/deals", on_phone_bar: true },
    Section { label: "Forecast", path: "/forecast", on_phone_bar: false },
    Section { label: "Tasks", path: "/tasks", on_phone_bar: true },
    Section { label: "Calendar", path: "/calendar", on_phone_bar: false },
    Section { label: "Privacy", path: "/privacy", on_phone_bar: false },
    Section { label: "Settings", path: "/settings", on_phone_bar: false },
];

fn section_link(section: &'static Section) -> impl IntoView {
    let count = (section.path == "/tasks").then(|| view! { <TaskCount/> });
    view! { <A href=browser::href(section.path)>{section.label}{count}</A> }
}

/// The phone's navigation: the main sections in a bottom bar within reach
/// of a thumb, the others in a "More" list that opens above it. The list is
/// a disclosure (a button with `aria-expanded`), so it works from the
/// keyboard as a button and links do; Escape closes it and returns focus.
#[component]
fn PhoneNav() -> impl IntoView {
    let open = RwSignal::new(false);
    let location = use_location();
    // Any navigation (a link in the list, the back button) closes it.
    Effect::new(move |_| {
        location.pathname.track();
        open.set(false);
    });
    let more_current = move || {
        let path = location.pathname.get();
        let path = path.strip_prefix(browser::base_path()).unwrap_or(&path).to_owned();
        SECTIONS.iter().filter(|s| !s.on_phone_bar).any(|s| path == s.path || path.starts_with(&format!("{}/", s.path)))
    };
    let button = NodeRef::<leptos::html::Button>::new();
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && open.get_untracked() {
            open.set(false);
            if let Some(b) = button.get_untracked() {
                let _ = b.focus();
            }
        }
    };
    view! {
        <nav class="phonenav" aria-label="Main" data-testid="phone-nav" on:keydown=on_key>
            <div class="phonebar">
                {SECTIONS.iter().filter(|s| s.on_phone_bar).map(section_link).collect_view()}
                <button type="button" class="more-button" class:current=more_current node_ref=button
                    aria-expanded=move || open.get().to_string() aria-controls="more-menu"
                    on:click=move |_| open.update(|o| *o = !*o)>
                    "More"
                </button>
            </div>
            // After the button in the document, so Tab goes from "More" into
            // the list; shown above the bar.
            <div class="more-menu" id="more-menu" hidden=move || !open.get() data-testid="more-menu">
                {SECTIONS.iter().filter(|s| !s.on_phone_bar).map(section_link).collect_view()}
            </div>
        </nav>
    }
}

/// Moves focus to the new page's heading or first field after every route
/// change (not on the first load), so keyboard and screen-reader users start
/// at the page they opened instead of at the top of the document. The page
/// may still be loading its record, so this tries again on later frames
/// (about a second at most).
#[component]
fn RouteFocus() -> impl IntoView {
    let location = use_location();
    Effect::new(move |previous: Option<String>| {
        let path = location.pathname.get();
        if previous.is_some_and(|p| p != path) {
            let form_page = path.ends_with("/new") || path.ends_with("/edit");
            focus_when_ready(form_page, 60);
        }
        path
    });
}

fn focus_when_ready(form_page: bool, tries: u32) {
    request_animation_frame(move || {
        if !browser::focus_page_start(form_page) && tries > 0 {
            focus_when_ready(form_page, tries - 1);
        }
    });
}

/// Always visible in a shared workspace: offline, connecting, syncing with
/// progress, up to date, or what is wrong, in words.
#[component]
fn SyncIndicator() -> impl IntoView {
    let app = use_app();
    // The live region is a plain container; the link inside keeps its
    // native role, named by what it shows.
    view! {
        <div class="sync-region" role="status" aria-live="polite">
            {move || {
                app.sync_badge.get().map(|badge| {
                    let class = format!("dot {}", badge.tone);
                    let title = badge.detail.clone().unwrap_or_else(|| badge.label.clone());
                    view! {
                        <a class="sync-status" href=browser::href("/settings#sync")
                            data-testid="sync-status" title=title data-tone=badge.tone.clone()>
                            <span class=class aria-hidden="true"></span>
                            <span>{badge.label.clone()}</span>
                        </a>
                    }
                })
            }}
        </div>
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
