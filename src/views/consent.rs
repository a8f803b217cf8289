//! The consent panel: current status per purpose (derived from the ledger
//! by the core's merge rule), grant and withdraw with basis, source and
//! note, and the history of every consent event.

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::consent::{ConsentAction, ConsentSource, ConsentStatus, LawfulBasis, NewConsentEvent, PurposeId};
use rapport_core::contact::Contact;

use super::widgets::Dialog;
use crate::browser;
use crate::state::use_app;

#[component]
pub fn ConsentPanel(contact: RwSignal<Contact>) -> impl IntoView {
    let app = use_app();
    let ws = app.workspace;
    let dialog_open = RwSignal::new(false);
    let pending = RwSignal::new(None::<(PurposeId, ConsentAction)>);
    let basis = RwSignal::new(LawfulBasis::Consent);
    let source = RwSignal::new(ConsentSource::Form);
    let note = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);

    let purpose_name =
        move |p: &PurposeId| ws.with(|w| w.purposes.get(p).map(|d| d.name.clone())).unwrap_or_else(|| p.to_string());
    // Purposes of the workspace, plus any a synced ledger mentions that this
    // workspace does not define (never hide recorded consent).
    let purposes = move || {
        let mut list: Vec<PurposeId> = ws.with(|w| w.purposes.keys().cloned().collect());
        contact.with(|c| {
            for p in c.consent.purposes() {
                if !list.contains(&p) {
                    list.push(p);
                }
            }
        });
        list
    };

    let ask = move |purpose: PurposeId, action: ConsentAction| {
        let default_basis =
            ws.with_untracked(|w| w.purposes.get(&purpose).map(|p| p.lawful_basis)).unwrap_or(LawfulBasis::Consent);
        basis.set(default_basis);
        source.set(ConsentSource::Form);
        note.set(String::new());
        error.set(None);
        pending.set(Some((purpose, action)));
        dialog_open.set(true);
    };

    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some((purpose, action)) = pending.get_untracked() else { return };
        let engine = app.engine();
        let mut c = contact.get_untracked();
        c.consent.record(NewConsentEvent {
            id: browser::new_event_id(),
            purpose,
            action,
            recorded_at: browser::now(),
            lawful_basis: basis.get_untracked(),
            source: source.get_untracked(),
            recorded_by: engine.member,
            note: note.get_untracked().trim().to_owned(),
        });
        c.touch(browser::now(), engine.member);
        spawn_local(async move {
            match app.persist(c.clone(), false).await {
                Ok(_) => {
                    contact.set(c);
                    dialog_open.set(false);
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };

    let dialog_title = Signal::derive(move || match pending.get() {
        Some((p, ConsentAction::Granted)) => format!("Record consent: {}", purpose_name(&p)),
        Some((p, ConsentAction::Withdrawn)) => format!("Record withdrawal: {}", purpose_name(&p)),
        None => String::new(),
    });

    view! {
        <div class="card consent" data-testid="consent-panel">
            <h2>"Consent"</h2>
            <table class="consent-table">
                <thead><tr><th scope="col">"Purpose"</th><th scope="col">"Status"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>
                    {move || purposes().into_iter().map(|p| {
                        let status = contact.with(|c| c.consent.status(&p));
                        let name = purpose_name(&p);
                        let (p1, p2) = (p.clone(), p.clone());
                        let badge = match status {
                            ConsentStatus::Granted => "badge granted",
                            ConsentStatus::Withdrawn => "badge withdrawn",
                            ConsentStatus::NeverAsked => "badge never",
                        };
                        view! {
                            <tr data-testid=format!("consent-{p}")>
                                <th scope="row">{name.clone()}</th>
                                <td><span class=badge data-testid="consent-status">{status.label()}</span></td>
                                <td class="actions">
                                    <button class="btn small" disabled=status == ConsentStatus::Granted
                                        aria-label=format!("Grant {name}")
                                        on:click=move |_| ask(p1.clone(), ConsentAction::Granted)>"Grant"</button>
                                    <button class="btn small" disabled=status != ConsentStatus::Granted
                                        aria-label=format!("Withdraw {name}")
                                        on:click=move |_| ask(p2.clone(), ConsentAction::Withdrawn)>"Withdraw"</button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <h3>"History"</h3>
            {move || {
                let events: Vec<_> = contact.with(|c| c.consent.timeline(None).into_iter().cloned().collect());
                if events.is_empty() {
                    view! { <p class="muted" data-testid="consent-history-empty">"No consent recorded yet."</p> }.into_any()
                } else {
                    view! {
                        <ol class="timeline" data-testid="consent-history">
                            {events.into_iter().map(|e| {
                                let who = ws.with(|w| w.member_name(e.recorded_by));
                                let verb = match e.action { ConsentAction::Granted => "granted", ConsentAction::Withdrawn => "withdrawn" };
                                view! {
                                    <li class=format!("event {}", e.action.as_str())>
                                        <div><strong>{format!("{} {verb}", purpose_name(&e.purpose))}</strong></div>
                                        <div class="muted small">
                                            {format!("{} · {} · via {} · recorded by {who}", browser::format_time(e.recorded_at), e.lawful_basis.label(), e.source.label())}
                                        </div>
                                        {(!e.note.is_empty()).then(|| view! { <div class="note">{e.note.clone()}</div> })}
                                    </li>
                                }
                            }).collect_view()}
                        </ol>
                    }.into_any()
                }
            }}
            <Dialog open=dialog_open title=dialog_title testid="consent-dialog">
                <form class="form" on:submit=confirm>
                    {move || error.get().map(|e| view! { <div class="banner error" role="alert">{e}</div> })}
                    <div class="field">
                        <label for="consent-basis">"Lawful basis"</label>
                        <select id="consent-basis" on:change=move |ev| {
                            if let Ok(b) = event_target_value(&ev).parse() { basis.set(b) }
                        }>
                            {LawfulBasis::ALL.iter().copied().map(|b| view! {
                                <option value=b.as_str() selected=move || basis.get() == b>{b.label()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="consent-source">"Source"</label>
                        <select id="consent-source" on:change=move |ev| {
                            if let Ok(s) = event_target_value(&ev).parse() { source.set(s) }
                        }>
                            {ConsentSource::ALL.iter().copied().map(|s| view! {
                                <option value=s.as_str() selected=move || source.get() == s>{s.label()}</option>
                            }).collect_view()}
                        </select>
                    </div>
                    <div class="field">
                        <label for="consent-note">"Note (optional)"</label>
                        <textarea id="consent-note" rows="2" prop:value=move || note.get() on:input=move |ev| note.set(event_target_value(&ev))></textarea>
                    </div>
                    <div class="form-actions">
                        <button type="submit" class="btn primary">
                            {move || match pending.get() { Some((_, ConsentAction::Withdrawn)) => "Record withdrawal", _ => "Record consent" }}
                        </button>
                        <button type="button" class="btn" on:click=move |_| dialog_open.set(false)>"Cancel"</button>
                    </div>
                </form>
            </Dialog>
        </div>
    }
}
