//! Workspace settings: names, phone defaults, consent purposes, custom
//! fields, and this device's storage (usage, persistence, set-aside records).

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::consent::{LawfulBasis, PurposeId};
use rapport_core::record::RecordKind;
use rapport_core::validate::CustomFieldKind;
use rapport_core::workspace::{CustomFieldDef, Member, Purpose, Workspace};

use super::widgets::TextField;
use crate::browser;
use crate::state::use_app;

#[component]
pub fn Settings() -> impl IntoView {
    view! {
        <section class="page settings-page">
            <div class="page-head"><h1>"Settings"</h1></div>
            <GeneralSettings/>
            <super::sync_settings::SyncSettings/>
            <super::pipeline_settings::SalesSettingsLink/>
            <PurposeSettings/>
            <CustomFieldSettings/>
            <super::retention::RetentionSettings/>
            <StorageSettings/>
        </section>
    }
}

fn edit_workspace(f: impl FnOnce(&mut Workspace)) {
    let app = use_app();
    let mut ws = app.workspace.get_untracked();
    f(&mut ws);
    ws.updated_at = browser::now();
    app.workspace_saved(ws);
}

#[component]
fn GeneralSettings() -> impl IntoView {
    let app = use_app();
    let me = app.engine().member;
    let ws = app.workspace.get_untracked();
    let name = RwSignal::new(ws.name.clone());
    let my_name = RwSignal::new(ws.member_name(me));
    let calling = RwSignal::new(ws.default_calling_code.clone());
    let errors = RwSignal::new((None::<String>, None::<String>, None::<String>));
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, m, c) = (
            name.get_untracked().trim().to_owned(),
            my_name.get_untracked().trim().to_owned(),
            calling.get_untracked(),
        );
        let c = c.trim().trim_start_matches('+').to_owned();
        let e = (
            n.is_empty().then(|| "Required".to_owned()),
            m.is_empty().then(|| "Required".to_owned()),
            (c.is_empty() || c.len() > 3 || !c.chars().all(|ch| ch.is_ascii_digit()))
                .then(|| "Enter 1 to 3 digits, like 44 or 1".to_owned()),
        );
        let ok = e.0.is_none() && e.1.is_none() && e.2.is_none();
        errors.set(e);
        if ok {
            edit_workspace(|w| {
                w.name = n;
                w.default_calling_code = c;
                w.members.insert(me, Member { name: m });
            });
            app.notify("Settings saved", None);
        }
    };
    view! {
        <form class="card form" on:submit=save aria-labelledby="general-h">
            <h2 id="general-h">"Workspace"</h2>
            <div class="grid2">
                <TextField id="ws-name" label="Workspace name" value=name error=Signal::derive(move || errors.get().0)/>
                <TextField id="my-name" label="Your name" value=my_name error=Signal::derive(move || errors.get().1) hint="Shown on the changes and consent you record"/>
                <TextField id="calling-code" label="Default country calling code" value=calling error=Signal::derive(move || errors.get().2) hint="Used for phone numbers typed without +, e.g. 44 for the UK"/>
            </div>
            <div class="form-actions"><button type="submit" class="btn primary">"Save settings"</button></div>
            <OtherWorkspaces/>
        </form>
    }
}

/// Workspaces this device also holds (a local one and joined ones): each is
/// its own database, and one is open at a time.
#[component]
fn OtherWorkspaces() -> impl IntoView {
    let app = use_app();
    let current = app.engine().db_name.clone();
    let others: Vec<(String, String)> =
        crate::engine::known_workspaces().into_iter().filter(|(db, _)| *db != current).collect();
    (!others.is_empty()).then(|| {
        view! {
            <h3>"Other workspaces on this device"</h3>
            <ul class="plain-list" data-testid="other-workspaces">
                {others.into_iter().map(|(db, name)| view! {
                    <li class="row-between">
                        <span>{name.clone()}</span>
                        <button type="button" class="btn small" aria-label=format!("Open workspace {name}")
                            on:click=move |_| {
                                crate::engine::set_active_db(&db);
                                let _ = web_sys::window().map(|w| w.location().set_href(&browser::href("/contacts")));
                            }>"Open"</button>
                    </li>
                }).collect_view()}
            </ul>
        }
    })
}

#[component]
fn PurposeSettings() -> impl IntoView {
    let app = use_app();
    let name = RwSignal::new(String::new());
    let description = RwSignal::new(String::new());
    let basis = RwSignal::new(LawfulBasis::Consent);
    let error = RwSignal::new(None::<String>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let n = name.get_untracked().trim().to_owned();
        if n.is_empty() {
            error.set(Some("Required".into()));
            return;
        }
        let slug = app.workspace.with_untracked(|w| {
            let taken: Vec<String> = w.purposes.keys().map(|p| p.to_string()).collect();
            Workspace::slug_for(&n, taken.iter().map(String::as_str))
        });
        let Ok(id) = slug.parse::<PurposeId>() else {
            error.set(Some("Use letters or digits in the name".into()));
            return;
        };
        error.set(None);
        edit_workspace(|w| {
            w.purposes.insert(
                id,
                Purpose {
                    name: n.clone(),
                    description: description.get_untracked(),
                    lawful_basis: basis.get_untracked(),
                },
            );
        });
        name.set(String::new());
        description.set(String::new());
        app.notify(format!("Added purpose {n}"), None);
    };
    view! {
        <div class="card">
            <h2>"Consent purposes"</h2>
            <p class="muted">"Every contact's consent panel lists these purposes."</p>
            <ul class="plain-list" data-testid="purpose-list">
                {move || app.workspace.with(|w| w.purposes.values().map(|p| view! {
                    <li><strong>{p.name.clone()}</strong><span class="muted">{format!(" — {} · {}", p.description, p.lawful_basis.label())}</span></li>
                }).collect_view())}
            </ul>
            <form class="form inline-form" on:submit=add>
                <TextField id="purpose-name" label="New purpose name" value=name error=error/>
                <TextField id="purpose-description" label="Description" value=description error=Signal::derive(|| None::<String>)/>
                <div class="field">
                    <label for="purpose-basis">"Lawful basis"</label>
                    <select id="purpose-basis" on:change=move |ev| { if let Ok(b) = event_target_value(&ev).parse() { basis.set(b) } }>
                        {LawfulBasis::ALL.iter().copied().map(|b| view! { <option value=b.as_str()>{b.label()}</option> }).collect_view()}
                    </select>
                </div>
                <button type="submit" class="btn">"Add purpose"</button>
            </form>
        </div>
    }
}

#[component]
fn CustomFieldSettings() -> impl IntoView {
    let app = use_app();
    let label = RwSignal::new(String::new());
    let kind = RwSignal::new("text".to_owned());
    let options = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let options_error = RwSignal::new(None::<String>);
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let l = label.get_untracked().trim().to_owned();
        error.set(l.is_empty().then(|| "Required".to_owned()));
        let field_kind = match kind.get_untracked().as_str() {
            "number" => CustomFieldKind::Number,
            "date" => CustomFieldKind::Date,
            "choice" => {
                let opts: Vec<String> =
                    options.get_untracked().split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
                if opts.is_empty() {
                    options_error.set(Some("List the choices, separated by commas".into()));
                    return;
                }
                CustomFieldKind::Choice(opts)
            }
            _ => CustomFieldKind::Text,
        };
        options_error.set(None);
        if l.is_empty() {
            return;
        }
        let key = app.workspace.with_untracked(|w| Workspace::slug_for(&l, w.custom_fields.keys().map(String::as_str)));
        edit_workspace(|w| {
            w.custom_fields
                .insert(key, CustomFieldDef { label: l.clone(), kind: field_kind, applies_to: RecordKind::Contact });
        });
        label.set(String::new());
        options.set(String::new());
        app.notify(format!("Added field {l}"), None);
    };
    view! {
        <div class="card">
            <h2>"Custom contact fields"</h2>
            {move || {
                let defs: Vec<_> = app.workspace.with(|w| w.fields_for(RecordKind::Contact).map(|(_, d)| d.clone()).collect());
                if defs.is_empty() {
                    view! { <p class="muted">"No custom fields yet. Add one below; it appears on every contact form."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain-list" data-testid="custom-field-list">
                            {defs.into_iter().map(|d| view! { <li><strong>{d.label.clone()}</strong><span class="muted">{format!(" — {}", d.kind.label())}</span></li> }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
            <form class="form inline-form" on:submit=add>
                <TextField id="field-label" label="Field name" value=label error=error/>
                <div class="field">
                    <label for="field-kind">"Type"</label>
                    <select id="field-kind" on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="text">"Text"</option>
                        <option value="number">"Number"</option>
                        <option value="date">"Date"</option>
                        <option value="choice">"Choice"</option>
                    </select>
                </div>
                {move || (kind.get() == "choice").then(|| view! {
                    <TextField id="field-options" label="Choices" value=options error=options_error hint="Separate choices with commas"/>
                })}
                <button type="submit" class="btn">"Add field"</button>
            </form>
        </div>
    }
}

fn human_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[component]
fn StorageSettings() -> impl IntoView {
    let app = use_app();
    let estimate = LocalResource::new(move || async move { app.engine().estimate().await });
    let persisted = RwSignal::new(None::<bool>);
    let persist = move |_| {
        spawn_local(async move {
            persisted.set(Some(app.engine().request_persistence().await));
        })
    };
    view! {
        <div class="card" id="storage">
            <h2>"Storage on this device"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Measuring…"</p> }>
                {move || estimate.get().map(|e| match e {
                    Some((used, quota)) => {
                        let share = if quota > 0.0 { used / quota } else { 0.0 };
                        view! {
                            <p data-testid="storage-usage">{format!("{} used of {} available to this site.", human_bytes(used), human_bytes(quota))}</p>
                            {(share > 0.8).then(|| view! { <div class="banner warn" role="alert">"Storage is nearly full. Export or remove data you no longer need, or free space on this device."</div> })}
                        }.into_any()
                    }
                    None => view! { <p class="muted">"This browser does not report storage usage."</p> }.into_any(),
                })}
            </Suspense>
            <p>
                <button class="btn" on:click=persist>"Keep data on this device"</button>
                {move || persisted.get().map(|p| if p {
                    " The browser will keep this data even when space runs low."
                } else {
                    " The browser declined; data may be removed if the device runs out of space."
                })}
            </p>
            <h3>"Records set aside"</h3>
            {move || {
                let q = app.quarantined.get();
                if q.is_empty() {
                    view! { <p class="muted">"None. Every stored record could be read."</p> }.into_any()
                } else {
                    view! {
                        <ul class="plain-list" data-testid="quarantine-list">
                            {q.into_iter().map(|e| view! {
                                <li><code>{e.key.clone()}</code>" — "{e.reason.clone()}<span class="muted">{format!(" ({})", browser::format_time(e.at))}</span></li>
                            }).collect_view()}
                        </ul>
                        <p class="muted small">"Their stored bytes are kept unchanged so they can be recovered from another device or a backup."</p>
                    }.into_any()
                }
            }}
        </div>
    }
}
