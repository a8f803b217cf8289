//! Retention: the workspace policy (a card in Settings) and the review page
//! (`/privacy/retention`) that lists the contacts the policy puts up, so a
//! person can anonymise or erase them in bulk, with a preview, a
//! confirmation and progress. The pages under `/privacy` share a small
//! navigation ([`PrivacyNav`]).

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;
use rapport_core::contact::Contact;
use rapport_core::ids::RecordId;
use rapport_core::privacy::plan_erasure;
use rapport_core::privacy::retention::{self, activity_facts, RetentionAction, RetentionCandidate, RetentionPolicy};
use rapport_core::workspace::Workspace;

use super::widgets::{Dialog, TextField};
use crate::browser;
use crate::state::{use_app, AppState};

/// Links between the workspace-wide privacy pages.
#[component]
pub fn PrivacyNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label="Privacy pages">
            <A href=browser::href("/privacy/retention")>"Retention review"</A>
            <A href=browser::href("/privacy/audit")>"Audit log"</A>
        </nav>
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The policy in one sentence.
fn describe(policy: &RetentionPolicy) -> String {
    let mut text = format!(
        "Contacts with no activity for {} and no open deal or ticket come up for review",
        plural(policy.inactive_months as usize, "month", "months")
    );
    if !policy.exempt_tags.is_empty() {
        let tags: Vec<&str> = policy.exempt_tags.iter().map(String::as_str).collect();
        text.push_str(&format!(", except those tagged {}", tags.join(", ")));
    }
    text.push_str(&format!(". Suggested action: {}.", policy.action.label().to_lowercase()));
    text
}

fn save_workspace(app: AppState, f: impl FnOnce(&mut Workspace)) {
    let mut ws = app.workspace.get_untracked();
    f(&mut ws);
    ws.updated_at = browser::now();
    app.workspace_saved(ws);
}

/// The retention policy card of the Settings page.
#[component]
pub fn RetentionSettings() -> impl IntoView {
    let app = use_app();
    let current = app.workspace.with_untracked(|w| w.retention.clone());
    let months = RwSignal::new(current.as_ref().map_or_else(|| "24".to_owned(), |p| p.inactive_months.to_string()));
    let tags = RwSignal::new(
        current.as_ref().map(|p| p.exempt_tags.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default(),
    );
    let action = RwSignal::new(current.as_ref().map_or(RetentionAction::Anonymise, |p| p.action));
    let error = RwSignal::new(None::<String>);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(m) = months.get_untracked().trim().parse::<u32>().ok().filter(|m| (1..=600).contains(m)) else {
            error.set(Some("Enter a whole number of months from 1 to 600, like 24".into()));
            browser::focus_first_invalid();
            return;
        };
        error.set(None);
        let exempt: BTreeSet<String> =
            tags.get_untracked().split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
        let policy = RetentionPolicy { inactive_months: m, exempt_tags: exempt, action: action.get_untracked() };
        save_workspace(app, |w| w.retention = Some(policy));
        app.notify("Retention policy saved", None);
    };
    let remove = move |_| {
        save_workspace(app, |w| w.retention = None);
        app.notify("Retention policy removed: no contact comes up for review", None);
    };
    view! {
        <form class="card form" id="retention" on:submit=save aria-labelledby="retention-h" data-testid="retention-settings">
            <h2 id="retention-h">"Retention"</h2>
            <p class="muted" data-testid="retention-current">
                {move || app.workspace.with(|w| match &w.retention {
                    Some(p) => format!("Current policy: {}", describe(p)),
                    None => "No policy yet: no contact comes up for review.".to_owned(),
                })}
            </p>
            <div class="grid2">
                <TextField id="retention-months" label="Review contacts inactive for (months)" value=months
                    input_type="number" error=error hint="Whole months without any activity or edit, e.g. 24"/>
                <TextField id="retention-exempt" label="Never review contacts tagged" value=tags
                    error=Signal::derive(|| None::<String>) hint="Separate tags with commas, e.g. keep, partner"/>
                <div class="field">
                    <label for="retention-action">"Suggested action"</label>
                    <select id="retention-action" on:change=move |ev| {
                        action.set(if event_target_value(&ev) == "erase" { RetentionAction::Erase } else { RetentionAction::Anonymise });
                    }>
                        <option value="anonymise" selected=move || action.get() == RetentionAction::Anonymise>"Anonymise (keep counts, drop what identifies them)"</option>
                        <option value="erase" selected=move || action.get() == RetentionAction::Erase>"Erase (remove them everywhere)"</option>
                    </select>
                </div>
            </div>
            <div class="form-actions">
                <button type="submit" class="btn primary">"Save policy"</button>
                {move || app.workspace.with(|w| w.retention.is_some()).then(|| view! {
                    <button type="button" class="btn" on:click=remove>"Remove policy"</button>
                })}
            </div>
            <p class="settings-links">
                <a href=browser::href("/privacy/retention")>"Review contacts"</a>
                " · "
                <a href=browser::href("/privacy/audit")>"Audit log: who changed what, when"</a>
            </p>
        </form>
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Progress {
    action: RetentionAction,
    done: usize,
    total: usize,
}

fn doing(action: RetentionAction) -> &'static str {
    match action {
        RetentionAction::Anonymise => "Anonymising",
        RetentionAction::Erase => "Erasing",
    }
}

fn done_word(action: RetentionAction) -> &'static str {
    match action {
        RetentionAction::Anonymise => "Anonymised",
        RetentionAction::Erase => "Erased",
    }
}

/// Anonymises one contact and brings its new row into the list.
async fn anonymise_one(app: AppState, id: RecordId) -> Result<(), String> {
    let ws = app.workspace.get_untracked();
    let row = app.engine().anonymise(id, &ws).await?;
    app.index.update(|i| i.upsert(row));
    // Other tabs reload it; the tab holding the relay connection sends the
    // new epoch (queued as a snapshot with the replacement).
    if let Some(tabs) = app.tabs.get_value() {
        tabs.announce(&[id]);
    }
    if let Some(sync) = app.sync.get_value() {
        sync.local_changes();
    }
    Ok(())
}

/// Erases one contact through the same path as its own Erase button.
async fn erase_one(app: AppState, id: RecordId) -> Result<(), String> {
    let contact = app
        .engine()
        .open::<Contact>(id)
        .await
        .map_err(|e| format!("it could not be opened ({e}), so nothing of it was erased."))?;
    let plan = app.index.with_untracked(|i| plan_erasure(&contact, i.rows()));
    app.erase(plan).await.map_err(|e| format!("{e}."))
}

/// The review list: `/privacy/retention`.
#[component]
pub fn RetentionReview() -> impl IntoView {
    let app = use_app();
    let now = browser::now();
    let policy = Memo::new(move |_| app.workspace.with(|w| w.retention.clone()));
    // Candidates, and how many linked records could not be read.
    let review = Memo::new(move |_| -> (Vec<RetentionCandidate>, usize) {
        let Some(policy) = policy.get() else { return (Vec::new(), 0) };
        app.index.with(|i| {
            let index = activity_facts(i.rows());
            (retention::review(&policy, i.rows(), &index.facts, now), index.unreadable.len())
        })
    });
    let selected = RwSignal::new(BTreeSet::<RecordId>::new());
    // New candidates start selected, restricted ones not; candidates that
    // left the list leave the selection.
    let seen = StoredValue::new(BTreeSet::<RecordId>::new());
    Effect::new(move |_| {
        review.with(|(candidates, _)| {
            let fresh: Vec<&RetentionCandidate> =
                candidates.iter().filter(|c| seen.with_value(|s| !s.contains(&c.id))).collect();
            seen.update_value(|s| s.extend(fresh.iter().map(|c| c.id)));
            let present: BTreeSet<RecordId> = candidates.iter().map(|c| c.id).collect();
            selected.update(|sel| {
                sel.retain(|id| present.contains(id));
                sel.extend(fresh.iter().filter(|c| !c.restricted).map(|c| c.id));
            });
        });
    });
    let shown = RwSignal::new(100usize);
    let progress = RwSignal::new(None::<Progress>);
    // (is an error, message)
    let outcome = RwSignal::new(None::<(bool, String)>);
    let dialog_open = RwSignal::new(false);
    let pending = RwSignal::new(RetentionAction::Anonymise);
    let running = move || progress.with(Option::is_some);
    let chosen = move || -> Vec<RetentionCandidate> {
        review.with(|(c, _)| selected.with(|s| c.iter().filter(|c| s.contains(&c.id)).cloned().collect()))
    };
    let n_selected = move || selected.with(BTreeSet::len);

    let ask = move |action: RetentionAction| {
        pending.set(action);
        outcome.set(None);
        dialog_open.set(true);
    };
    let run = move |_| {
        let action = pending.get_untracked();
        let targets: Vec<(RecordId, String)> = chosen().into_iter().map(|c| (c.id, c.title)).collect();
        let total = targets.len();
        dialog_open.set(false);
        if total == 0 {
            return;
        }
        progress.set(Some(Progress { action, done: 0, total }));
        spawn_local(async move {
            let mut done = 0;
            let mut failure = None;
            for (id, title) in targets {
                let result = match action {
                    RetentionAction::Anonymise => anonymise_one(app, id).await,
                    RetentionAction::Erase => erase_one(app, id).await,
                };
                match result {
                    Ok(()) => {
                        done += 1;
                        progress.try_set(Some(Progress { action, done, total }));
                    }
                    Err(e) => {
                        failure = Some((title, e));
                        break;
                    }
                }
                // Let the page show the progress between contacts.
                gloo_timers::future::TimeoutFuture::new(0).await;
            }
            progress.try_set(None);
            let message = match failure {
                None => (false, format!("{} {}.", done_word(action), plural(done, "contact", "contacts"))),
                Some((title, e)) => {
                    let rest = total - done - 1;
                    let after = if rest == 0 {
                        String::new()
                    } else {
                        format!(" and the {} after it", plural(rest, "contact", "contacts"))
                    };
                    (
                        true,
                        format!(
                            "{} {done} of {total} contacts, then stopped: {title} could not be {}: {e} \
                             {title}{after} were not changed and are still selected; try again or check them one by one.",
                            done_word(action),
                            done_word(action).to_lowercase(),
                        ),
                    )
                }
            };
            outcome.try_set(Some(message));
        });
    };

    let candidate_item = move |c: RetentionCandidate| {
        let id = c.id;
        let box_id = format!("candidate-{id}");
        let detail = format!(
            "Last activity {} · {} without activity",
            browser::format_time(c.last_activity),
            plural(c.inactive_months as usize, "month", "months")
        );
        let title = c.title.clone();
        view! {
            <li class="candidate" class:is-restricted=c.restricted data-testid="candidate">
                <input type="checkbox" id=box_id.clone()
                    prop:checked=move || selected.with(|s| s.contains(&id))
                    disabled=running
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        selected.update(|s| { if on { s.insert(id); } else { s.remove(&id); } });
                    }/>
                <div class="who">
                    <label for=box_id>{c.title.clone()}
                        {c.restricted.then(|| view! { <span class="badge restricted small" data-testid="candidate-restricted">"Restricted"</span> })}
                    </label>
                    <span class="muted small">{detail}</span>
                </div>
                <a class="btn small ghost" href=browser::href(&format!("/contacts/{id}")) aria-label=format!("View {title}")>"View"</a>
            </li>
        }
    };

    view! {
        <section class="page privacy-page">
            <div class="page-head"><h1>"Privacy"</h1></div>
            <PrivacyNav/>
            <div class="card" data-testid="retention-review">
                <h2>"Retention review"</h2>
                {move || match policy.get() {
                    None => view! {
                        <div class="empty-inline">
                            <p>"No retention policy is set, so no contact comes up for review."</p>
                            <a class="btn primary" href=browser::href("/settings#retention")>"Set a policy in Settings"</a>
                        </div>
                    }.into_any(),
                    Some(p) => view! {
                        <p data-testid="retention-policy">{describe(&p)}" "
                            <a href=browser::href("/settings#retention")>"Change policy"</a></p>
                    }.into_any(),
                }}
                {move || (review.with(|r| r.1) > 0).then(|| view! {
                    <div class="banner warn" role="alert">
                        {format!("{} could not be read, so the contacts they belong to are unknown: someone listed here may still have recent activity or open work. Check before acting.",
                            plural(review.with(|r| r.1), "linked record", "linked records"))}
                    </div>
                })}
                {move || {
                    let (n, restricted) = review.with(|(c, _)| (c.len(), c.iter().filter(|c| c.restricted).count()));
                    if policy.with(Option::is_none) {
                        ().into_any()
                    } else if n == 0 {
                        view! { <p class="muted" data-testid="no-candidates">"No contact matches the policy right now."</p> }.into_any()
                    } else {
                        view! {
                            <p class="muted">{format!("{} to review, longest inactive first.", plural(n, "contact", "contacts"))}
                                {(restricted > 0).then(|| format!(" Restricted contacts ({restricted} here) are not selected: restriction often means a dispute or a legal claim, so look at them before acting."))}
                            </p>
                            <div class="toolbar">
                                <button class="btn small" disabled=running on:click=move |_| selected.set(review.with_untracked(|(c, _)| c.iter().map(|c| c.id).collect()))>"Select all"</button>
                                <button class="btn small" disabled=running on:click=move |_| selected.set(BTreeSet::new())>"Clear selection"</button>
                                <span class="muted small" data-testid="selected-count">{move || format!("{} of {n} selected", n_selected())}</span>
                            </div>
                            <ul class="candidates">
                                {move || review.with(|(c, _)| c.iter().take(shown.get()).cloned().map(candidate_item).collect_view())}
                            </ul>
                            {move || (n > shown.get()).then(|| view! {
                                <button class="btn small show-more" on:click=move |_| shown.update(|s| *s += 100)>
                                    {format!("Show more ({} not shown)", n - shown.get())}
                                </button>
                            })}
                        }.into_any()
                    }
                }}
                <div class="bulk-bar">
                    <button class="btn" class:primary=move || policy.with(|p| p.as_ref().map(|p| p.action)) == Some(RetentionAction::Anonymise)
                        disabled=move || n_selected() == 0 || running()
                        on:click=move |_| ask(RetentionAction::Anonymise)>
                        {move || format!("Anonymise selected ({})…", n_selected())}
                    </button>
                    <button class="btn danger" disabled=move || n_selected() == 0 || running()
                        on:click=move |_| ask(RetentionAction::Erase)>
                        {move || format!("Erase selected ({})…", n_selected())}
                    </button>
                </div>
                <div role="status" aria-live="polite" data-testid="retention-progress">
                    {move || progress.get().map(|p| view! {
                        <div class="progress-line">
                            <progress max=p.total value=p.done aria-label="Progress"></progress>
                            <span>{format!("{} contacts: {} of {} done", doing(p.action), p.done, p.total)}</span>
                        </div>
                    })}
                    {move || outcome.get().and_then(|(failed, m)| (!failed).then(|| view! { <p class="banner ok" data-testid="retention-done">{m}</p> }))}
                </div>
                {move || outcome.get().and_then(|(failed, m)| failed.then(|| view! { <div class="banner error" role="alert" data-testid="retention-error">{m}</div> }))}
            </div>
            <Dialog open=dialog_open testid="retention-dialog"
                title=Signal::derive(move || format!("{} {}?", pending.get().label(), plural(n_selected(), "contact", "contacts")))>
                {move || {
                    let action = pending.get();
                    let list = chosen();
                    let restricted = list.iter().filter(|c| c.restricted).count();
                    let more = list.len().saturating_sub(8);
                    view! {
                        <p data-testid="retention-preview">{action.preview(list.len())}</p>
                        <ul class="plain-list compact">
                            {list.iter().take(8).map(|c| view! { <li>{c.title.clone()}</li> }).collect_view()}
                            {(more > 0).then(|| view! { <li class="muted">{format!("and {more} more")}</li> })}
                        </ul>
                        {(restricted > 0).then(|| view! {
                            <p class="banner warn">{format!("{} restricted. Make sure no dispute or legal claim needs their data before you continue.",
                                if restricted == 1 { "1 of them is".to_owned() } else { format!("{restricted} of them are") })}</p>
                        })}
                        <div class="form-actions">
                            <button class="btn" class:danger=action == RetentionAction::Erase class:primary=action == RetentionAction::Anonymise
                                on:click=run>
                                {match action {
                                    RetentionAction::Anonymise => format!("Anonymise {}", plural(list.len(), "contact", "contacts")),
                                    RetentionAction::Erase => format!("Erase {} permanently", plural(list.len(), "contact", "contacts")),
                                }}
                            </button>
                            <button class="btn" on:click=move |_| dialog_open.set(false)>"Cancel"</button>
                        </div>
                    }
                }}
            </Dialog>
        </section>
    }
}
