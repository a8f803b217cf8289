//! Concurrent edits, shown where people edit: the conflict card every
//! record page uses (each field set in two places at once, by its name,
//! with one button per value), and the notice an open edit form shows when
//! its record was changed elsewhere since it was opened.
//!
//! Both read the record's document through the engine
//! (`rapport_core::conflict`): the card lists `conflicts`, a pick writes
//! `conflict::pick`; the notice names `changed_since` the form's base.

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::conflict::{Choice, FieldConflict, ValueKind};
use rapport_core::form::Base;
use rapport_core::ids::RecordId;

use crate::browser;
use crate::state::{use_app, AppState};

/// Changes whenever another tab or sync changed record `id`.
fn external_stamp(id: RecordId) -> Memo<Option<u64>> {
    let app = use_app();
    Memo::new(move |_| {
        let (n, ids) = app.external.get();
        ids.contains(&id).then_some(n)
    })
}

/// What [`record_stamp`] compares: the external change counter, and the
/// row's last update and deleted flag.
type Stamp = (Option<u64>, Option<(rapport_core::Timestamp, bool)>);

/// Changes whenever record `id` may have changed: elsewhere, or here (its
/// row in the list).
fn record_stamp(id: RecordId) -> Memo<Stamp> {
    let app = use_app();
    let external = external_stamp(id);
    Memo::new(move |_| (external.get(), app.index.with(|i| i.get(id).map(|r| (r.updated_at, r.deleted)))))
}

/// A conflicted value as a person reads it: records by their name, times
/// in local time, the rest as core describes them.
fn shown(app: AppState, kind: ValueKind, choice: &Choice) -> String {
    match kind {
        ValueKind::Record => choice
            .shown
            .parse::<RecordId>()
            .ok()
            .and_then(|id| app.index.with_untracked(|i| i.get(id).map(|r| r.title.clone())))
            .unwrap_or_else(|| "Deleted record".into()),
        ValueKind::Instant => choice
            .shown
            .parse::<i64>()
            .map(|ms| browser::format_time(rapport_core::Timestamp::from_millis(ms)))
            .unwrap_or_else(|_| choice.shown.clone()),
        _ => choice.shown.clone(),
    }
}

/// The fields of record `id` that were set in two places at once, each
/// with its values: the one in use first ("Keep …"), then the ones it beat
/// ("Use …"). Every button's name says what it does ("Use Head of
/// Procurement for Job title"). Picking writes that value, which resolves
/// the conflict everywhere once synced; `on_picked` lets the page show the
/// record again. Renders nothing when there is no conflict.
#[component]
pub fn ConflictCard(
    id: RecordId,
    /// "contact", "deal"…: how the explanation names the record.
    noun: &'static str,
    #[prop(optional, into)] on_picked: Option<Callback<()>>,
) -> impl IntoView {
    let app = use_app();
    let stamp = record_stamp(id);
    let bump = RwSignal::new(0u32);
    let conflicts = LocalResource::new(move || {
        stamp.track();
        bump.track();
        let ws = app.workspace.get();
        async move { app.engine().conflicts(id, &ws).await }
    });
    let failure = RwSignal::new(None::<String>);
    let pick = move |field: FieldConflict, choice: Choice| {
        spawn_local(async move {
            let value = shown(app, field.kind, &choice);
            match app.pick(id, field.path.clone(), choice).await {
                Ok(()) => {
                    failure.set(None);
                    app.notify(format!("{} is now {value}", field.label), None);
                    bump.update(|n| *n += 1);
                    if let Some(done) = on_picked {
                        done.run(());
                    }
                }
                Err(e) => failure.set(Some(e)),
            }
        });
    };
    move || {
        let found = conflicts.get().unwrap_or_default();
        (!found.is_empty()).then(|| {
            view! {
                <section class="card conflicts" data-testid="conflicts" aria-labelledby="conflicts-h">
                    <h2 id="conflicts-h">"Edited in two places at once"</h2>
                    <p class="muted">{format!(
                        "These fields of this {noun} were changed in two places before the changes met. The value in use is first; pick another to use it instead. Notes are never a conflict: edits made to them at once are both kept, woven together, so read them through."
                    )}</p>
                    <ul class="conflict-list">
                        {found.into_iter().map(|field| {
                            let label = field.label.clone();
                            view! {
                                <li class="conflict" data-testid="conflict">
                                    <strong>{label.clone()}</strong>
                                    <div class="choices">
                                        {field.values.clone().into_iter().enumerate().map(|(i, choice)| {
                                            let value = shown(app, field.kind, &choice);
                                            let verb = if i == 0 { "Keep" } else { "Use" };
                                            let field = field.clone();
                                            view! {
                                                <button type="button" class="btn small" class:primary=i == 0
                                                    on:click=move |_| pick(field.clone(), choice.clone())>
                                                    {format!("{verb} {value}")}
                                                    <span class="visually-hidden">{format!(" for {}", field.label)}</span>
                                                    {(i == 0).then(|| view! { <span class="in-use">" (in use)"</span> })}
                                                </button>
                                            }
                                        }).collect_view()}
                                    </div>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                    {move || failure.get().map(|f| view! { <div class="banner error" role="alert">{f}</div> })}
                </section>
            }
        })
    }
}

/// Under an edit form's heading: says, as soon as it happens, that the
/// record was changed elsewhere (another tab, another device) since the
/// form was opened, and which fields. Saving keeps those changes (only
/// what this form changed is written); a field changed in both places
/// becomes a conflict on the record's page.
#[component]
pub fn ChangedElsewhere(id: RecordId, base: Base, noun: &'static str) -> impl IntoView {
    let app = use_app();
    // Elsewhere only: this tab's own save of the form is not news.
    let stamp = external_stamp(id);
    let base = StoredValue::new(base);
    let changed = LocalResource::new(move || {
        stamp.track();
        let ws = app.workspace.get();
        let base = base.get_value();
        async move { app.engine().changed_since(id, &base, &ws).await }
    });
    view! {
        <div role="status" data-testid="changed-elsewhere">
            {move || {
                let fields = changed.get().unwrap_or_default();
                (!fields.is_empty()).then(|| view! {
                    <div class="banner warn">
                        <strong>{format!("This {noun} was changed elsewhere since you opened it: {}.", fields.join(", "))}</strong>
                        " Saving keeps those changes and writes only the fields you change here; a field changed in both places will show both values to pick from."
                    </div>
                })
            }}
        </div>
    }
}
