//! Creating and editing a deal (`/deals/new`, `/deals/:id/edit`): every
//! field labelled and validated by `DealForm::apply`, errors next to their
//! field with focus on the first. The company comes from company rows, the
//! people from a small search over contact rows (chosen ones shown as
//! removable chips). `/deals/new?company=<id>&contact=<id>` prefills.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use rapport_core::form::Base;
use rapport_core::form::FormErrors;
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::sales::deal::{Deal, DealForm};
use rapport_core::sales::pipeline::Outcome;
use rapport_core::search::{Query, Sort};
use rapport_core::validate::CustomFieldKind;

use super::conflicts::ChangedElsewhere;
use super::deals::live_title;
use super::widgets::{FieldError, TextField};
use crate::browser;
use crate::state::use_app;

#[component]
pub fn NewDeal() -> impl IntoView {
    view! { <DealEditor existing=None/> }
}

#[component]
pub fn EditDeal() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let loaded = LocalResource::new(move || {
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            let id: RecordId = id.parse().map_err(|e: rapport_core::ids::BadId| e.to_string())?;
            app.engine().open_for_edit::<Deal>(id).await.map_err(|e| e.to_string())
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok((d, base)) => view! { <DealEditor existing=Some(d) base=Some(base)/> }.into_any(),
                Err(e) => view! {
                    <section class="page">
                        <div class="banner error" role="alert">{format!("This deal could not be opened: {e}")}</div>
                        <a class="btn" href=browser::href("/deals")>"Back to deals"</a>
                    </section>
                }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn DealEditor(
    existing: Option<Deal>,
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
    let form = existing.as_ref().map(DealForm::from_deal).unwrap_or_else(|| {
        let ws = app.workspace.get_untracked();
        let (pipeline, stage) = ws.default_stage().unwrap_or_default();
        // Prefill from the page the user came from (a company or a contact).
        let param = |k: &str| query.with_untracked(|q| q.get(k)).and_then(|v| v.parse::<RecordId>().ok());
        let contact = param("contact").filter(|c| live_title(app, *c, RecordKind::Contact).is_some());
        let company = param("company")
            .or_else(|| {
                contact.and_then(|c| {
                    app.index.with_untracked(|i| i.get(c).and_then(|r| r.column("company_id").parse().ok()))
                })
            })
            .filter(|c| live_title(app, *c, RecordKind::Company).is_some());
        DealForm {
            currency: ws.currency.clone(),
            pipeline,
            stage,
            owner: me.to_string(),
            company: company.map(|c| c.to_string()).unwrap_or_default(),
            contacts: contact.map(|c| vec![c.to_string()]).unwrap_or_default(),
            ..Default::default()
        }
    });
    let changed_notice = existing.as_ref().map(|r| r.id).zip(base.clone()).map(|(id, base)| {
        view! { <ChangedElsewhere id=id base=base noun="deal"/> }
    });
    let existing = StoredValue::new(existing);
    let base = StoredValue::new(base);

    let title = RwSignal::new(form.title);
    let value = RwSignal::new(form.value);
    let currency = RwSignal::new(form.currency);
    let pipeline = RwSignal::new(form.pipeline);
    let stage = RwSignal::new(form.stage);
    let reason = RwSignal::new(form.reason);
    let probability = RwSignal::new(form.probability);
    let close = RwSignal::new(form.expected_close);
    let owner = RwSignal::new(form.owner);
    let company = RwSignal::new(form.company);
    let contacts = RwSignal::new(form.contacts);
    let tags = RwSignal::new(form.tags);
    let notes = RwSignal::new(form.notes);
    let custom = RwSignal::new(form.custom);
    let errors = RwSignal::new(FormErrors::new());
    let busy = RwSignal::new(false);
    let failure = RwSignal::new(None::<String>);

    let err = move |key: &'static str| Signal::derive(move || errors.with(|e| e.get(key).map(|e| e.to_string())));

    // The chosen stage's outcome and default probability.
    let stage_info = Memo::new(move |_| {
        app.workspace.with(|ws| ws.stage(&pipeline.get(), &stage.get()).map(|s| (s.outcome, s.probability)))
    });
    let outcome = move || stage_info.get().map(|(o, _)| o).unwrap_or_default();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let form = DealForm {
            title: title.get_untracked(),
            value: value.get_untracked(),
            currency: currency.get_untracked(),
            pipeline: pipeline.get_untracked(),
            stage: stage.get_untracked(),
            reason: if outcome() == Outcome::Open { String::new() } else { reason.get_untracked() },
            probability: probability.get_untracked(),
            expected_close: close.get_untracked(),
            owner: owner.get_untracked(),
            company: company.get_untracked(),
            contacts: contacts.get_untracked(),
            tags: tags.get_untracked(),
            notes: notes.get_untracked(),
            custom: custom.get_untracked(),
        };
        let now = browser::now();
        let ws = app.workspace.get_untracked();
        let mut deal = existing.get_value().unwrap_or_else(|| {
            Deal::new(
                browser::new_record_id(),
                form.pipeline.clone(),
                form.stage.clone(),
                browser::new_entry_id(),
                now,
                me,
            )
        });
        match form.apply(&mut deal, &ws, browser::new_entry_id(), now, browser::today(), me) {
            Err(found) => {
                errors.set(found);
                request_animation_frame(browser::focus_first_invalid);
            }
            Ok(()) => {
                errors.set(FormErrors::new());
                deal.touch(now, me);
                busy.set(true);
                let navigate = navigate.clone();
                spawn_local(async move {
                    let id = deal.id;
                    let name = deal.title.clone();
                    match app.persist_form(deal, base.get_value()).await {
                        Ok(_) => {
                            app.notify(if is_new { format!("Created {name}") } else { format!("Saved {name}") }, None);
                            navigate(&format!("/deals/{id}"), Default::default());
                        }
                        Err(e) => {
                            busy.set(false);
                            failure.set(Some(e.replace("The contact was not created", "The deal was not created")));
                        }
                    }
                });
            }
        }
    };

    let cancel_href =
        existing.with_value(|e| e.as_ref().map(|d| format!("/deals/{}", d.id)).unwrap_or_else(|| "/deals".into()));
    let heading =
        existing.with_value(|e| e.as_ref().map(|d| format!("Edit {}", d.title)).unwrap_or_else(|| "New deal".into()));
    let members = move || {
        app.workspace.with(|w| w.members.iter().map(|(id, m)| (id.to_string(), m.name.clone())).collect::<Vec<_>>())
    };
    let pipelines = move || {
        app.workspace.with(|ws| {
            ws.ordered_pipelines(false).into_iter().map(|(id, p)| (id.clone(), p.name.clone())).collect::<Vec<_>>()
        })
    };
    // The pipeline's stages; the current one stays listed even when archived.
    let stages = move || {
        let current = stage.get();
        app.workspace.with(|ws| {
            let mut out: Vec<(String, String)> = ws
                .pipelines
                .get(&pipeline.get())
                .map(|p| {
                    p.ordered_stages(true)
                        .into_iter()
                        .filter(|(id, s)| !s.archived || **id == current)
                        .map(|(id, s)| {
                            (id.clone(), if s.archived { format!("{} (archived)", s.name) } else { s.name.clone() })
                        })
                        .collect()
                })
                .unwrap_or_default();
            if !current.is_empty() && !out.iter().any(|(id, _)| *id == current) {
                out.push((current.clone(), "Unknown stage".into()));
            }
            out
        })
    };
    let companies = move || {
        let chosen = company.get();
        app.index.with(|i| {
            let mut out: Vec<(String, String)> = i
                .rows()
                .iter()
                .filter(|r| r.kind == RecordKind::Company && !r.deleted)
                .map(|r| (r.id.to_string(), r.title.clone()))
                .collect();
            out.sort_by_key(|(_, t)| t.to_lowercase());
            if !chosen.is_empty() && !out.iter().any(|(id, _)| *id == chosen) {
                out.insert(0, (chosen.clone(), "A deleted company".into()));
            }
            out
        })
    };
    let custom_defs = move || {
        app.workspace.with(|w| w.fields_for(RecordKind::Deal).map(|(k, d)| (k.clone(), d.clone())).collect::<Vec<_>>())
    };
    let on_pipeline = move |ev: leptos::ev::Event| {
        let p = event_target_value(&ev);
        let first = app.workspace.with_untracked(|ws| ws.pipelines.get(&p).and_then(|p| p.first_open_stage().cloned()));
        pipeline.set(p);
        stage.set(first.unwrap_or_default());
    };
    let probability_hint = move || match stage_info.get() {
        Some((Outcome::Won, _)) => "Won deals count at 100%.".to_owned(),
        Some((Outcome::Lost, _)) => "Lost deals count at 0%.".to_owned(),
        Some((_, p)) => format!("Leave empty to use the stage's {p}%."),
        None => "Leave empty to use the stage's default.".to_owned(),
    };

    view! {
        <section class="page form-page">
            <div class="page-head"><h1>{heading}</h1></div>
            {changed_notice}
            <form class="card form" on:submit=submit novalidate=true data-testid="deal-form">
                {move || (!errors.with(BTreeMap::is_empty)).then(|| view! {
                    <div class="banner error" role="alert">"Some fields need attention. They are marked below."</div>
                })}
                <fieldset>
                    <legend>"Deal"</legend>
                    <div class="grid2">
                        <TextField id="title" label="Title" value=title error=err("title")/>
                        <div class="money-fields">
                            <TextField id="value" label="Value" value=value error=err("value") hint="Like 12,500 or 12500.50"/>
                            <div class="field currency-field" class:invalid=move || err("currency").get().is_some()>
                                <label for="currency">"Currency"</label>
                                <input id="currency" list="currency-codes" maxlength="3" autocomplete="off"
                                    prop:value=move || currency.get()
                                    on:input=move |ev| currency.set(event_target_value(&ev))
                                    aria-invalid=move || err("currency").get().is_some().then_some("true")
                                    aria-describedby=move || err("currency").get().is_some().then_some("currency-error")/>
                                <datalist id="currency-codes">
                                    {["EUR", "USD", "GBP", "CHF", "JPY", "SEK", "NOK", "DKK", "PLN", "CAD", "AUD"].into_iter().map(|c| view! { <option value=c/> }).collect_view()}
                                </datalist>
                                <FieldError id="currency-error".into() error=err("currency")/>
                            </div>
                        </div>
                        <div class="field">
                            <label for="pipeline">"Pipeline"</label>
                            <select id="pipeline" on:change=on_pipeline>
                                {move || pipelines().into_iter().map(|(id, name)| {
                                    let selected = pipeline.get() == id;
                                    view! { <option value=id selected=selected>{name}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                        <div class="field" class:invalid=move || err("stage").get().is_some()>
                            <label for="stage">"Stage"</label>
                            <select id="stage" on:change=move |ev| stage.set(event_target_value(&ev))
                                aria-invalid=move || err("stage").get().is_some().then_some("true")
                                aria-describedby=move || err("stage").get().is_some().then_some("stage-error")>
                                {move || stages().into_iter().map(|(id, name)| {
                                    let selected = stage.get() == id;
                                    view! { <option value=id selected=selected>{name}</option> }
                                }).collect_view()}
                            </select>
                            <FieldError id="stage-error".into() error=err("stage")/>
                        </div>
                        {move || (outcome() != Outcome::Open).then(|| {
                            let lost = outcome() == Outcome::Lost;
                            view! {
                                <div class="field span2" class:invalid=move || err("reason").get().is_some()>
                                    <label for="reason">{if lost { "Why it was lost" } else { "Why it was won (optional)" }}</label>
                                    <input id="reason" prop:value=move || reason.get() on:input=move |ev| reason.set(event_target_value(&ev))
                                        aria-invalid=move || err("reason").get().is_some().then_some("true")
                                        aria-describedby=move || err("reason").get().is_some().then_some("reason-error")/>
                                    <FieldError id="reason-error".into() error=err("reason")/>
                                </div>
                            }
                        })}
                        <div class="field" class:invalid=move || err("probability").get().is_some()>
                            <label for="probability">"Probability (%)"</label>
                            <input id="probability" inputmode="numeric" autocomplete="off"
                                placeholder=move || stage_info.get().map(|(_, p)| format!("{p}% (stage default)")).unwrap_or_default()
                                prop:value=move || probability.get() on:input=move |ev| probability.set(event_target_value(&ev))
                                aria-invalid=move || err("probability").get().is_some().then_some("true")
                                aria-describedby=move || if err("probability").get().is_some() { "probability-hint probability-error" } else { "probability-hint" }/>
                            <p class="hint" id="probability-hint">{probability_hint}</p>
                            <FieldError id="probability-error".into() error=err("probability")/>
                        </div>
                        <TextField id="expected_close" label="Expected close date" input_type="date" value=close error=err("expected_close")/>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"People"</legend>
                    <div class="grid2">
                        <div class="field">
                            <label for="owner">"Owner"</label>
                            <select id="owner" on:change=move |ev| owner.set(event_target_value(&ev))>
                                <option value="" selected=move || owner.get().is_empty()>"No owner"</option>
                                {move || members().into_iter().map(|(id, name)| {
                                    let selected = owner.get() == id;
                                    view! { <option value=id selected=selected>{name}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                        <div class="field">
                            <label for="company">"Company"</label>
                            <select id="company" on:change=move |ev| company.set(event_target_value(&ev))>
                                <option value="" selected=move || company.get().is_empty()>"No company"</option>
                                {move || companies().into_iter().map(|(id, name)| {
                                    let selected = company.get() == id;
                                    view! { <option value=id selected=selected>{name}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                    </div>
                    <ContactPicker chosen=contacts/>
                </fieldset>
                <fieldset>
                    <legend>"More"</legend>
                    <TextField id="tags" label="Tags" value=tags error=err("tags") hint="Separate tags with commas"/>
                    {move || {
                        let defs = custom_defs();
                        (!defs.is_empty()).then(|| view! {
                            <div class="grid2">
                                {defs.into_iter().map(|(key, def)| view! { <CustomInput key=key def_kind=def.kind label=def.label custom=custom errors=errors/> }).collect_view()}
                            </div>
                        })
                    }}
                    <div class="field">
                        <label for="notes">"Notes"</label>
                        <textarea id="notes" rows="4" prop:value=move || notes.get() on:input=move |ev| notes.set(event_target_value(&ev))></textarea>
                        <FieldError id="notes-error".into() error=err("notes")/>
                    </div>
                </fieldset>
                {move || failure.get().map(|f| view! { <div class="banner error" role="alert">{f}</div> })}
                <div class="form-actions">
                    <button type="submit" class="btn primary" disabled=move || busy.get()>
                        {move || if busy.get() { "Saving…" } else if is_new { "Create deal" } else { "Save changes" }}
                    </button>
                    <a class="btn" href=browser::href(&cancel_href)>"Cancel"</a>
                </div>
            </form>
        </section>
    }
}

/// Linked contacts: a search over contact rows; picks show as chips.
#[component]
fn ContactPicker(chosen: RwSignal<Vec<String>>) -> impl IntoView {
    let app = use_app();
    let search = RwSignal::new(String::new());
    let results = Memo::new(move |_| {
        let q = search.get();
        if q.trim().is_empty() {
            return Vec::new();
        }
        let picked = chosen.get();
        app.index.with(|i| {
            i.query(RecordKind::Contact, &Query::parse(&q), Sort::default())
                .into_iter()
                .map(|p| i.row_at(p))
                .filter(|r| !picked.contains(&r.id.to_string()))
                .take(8)
                .map(|r| (r.id.to_string(), r.title.clone(), r.subtitle.clone()))
                .collect::<Vec<_>>()
        })
    });
    let pick = move |id: String| {
        chosen.update(|c| {
            if !c.contains(&id) {
                c.push(id);
            }
        });
        search.set(String::new());
        request_animation_frame(|| {
            if let Some(el) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id("contact-picker"))
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
            {
                let _ = el.focus();
            }
        });
    };
    let chips = move || {
        chosen
            .get()
            .into_iter()
            .map(|id| {
                let name = id.parse().ok().and_then(|rid| live_title(app, rid, RecordKind::Contact));
                (id, name)
            })
            .collect::<Vec<_>>()
    };
    view! {
        <div class="field contact-picker">
            <label for="contact-picker">"Contacts"</label>
            <ul class="chips" aria-label="Linked contacts" data-testid="contact-chips">
                {move || chips().into_iter().map(|(id, name)| {
                    let shown = name.clone().unwrap_or_else(|| "Deleted contact".into());
                    let remove = id.clone();
                    view! {
                        <li class="chip" class:gone=name.is_none()>
                            <span>{shown.clone()}</span>
                            <button type="button" class="chip-remove" aria-label=format!("Remove {shown}")
                                on:click=move |_| chosen.update(|c| c.retain(|x| *x != remove))>"✕"</button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <input id="contact-picker" type="search" autocomplete="off" placeholder="Search contacts to link"
                aria-describedby="contact-picker-hint"
                prop:value=move || search.get()
                on:input=move |ev| search.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Enter" {
                        // Enter links the first match instead of submitting the form.
                        ev.prevent_default();
                        if let Some((id, _, _)) = results.with_untracked(|r| r.first().cloned()) {
                            pick(id);
                        }
                    } else if ev.key() == "Escape" {
                        search.set(String::new());
                    }
                }/>
            <p class="hint" id="contact-picker-hint">"Type a name, email or phone; Enter links the first match."</p>
            {move || {
                let found = results.get();
                let typed = !search.with(|s| s.trim().is_empty());
                if !typed {
                    return None;
                }
                Some(if found.is_empty() {
                    view! { <p class="muted small" role="status">"No contact matches."</p> }.into_any()
                } else {
                    view! {
                        <ul class="picker-results" aria-label="Matching contacts">
                            {found.into_iter().map(|(id, name, sub)| view! {
                                <li>
                                    <button type="button" class="picker-option" on:click=move |_| pick(id.clone())>
                                        <strong>{format!("Link {name}")}</strong>
                                        {(!sub.is_empty()).then(|| view! { <small class="muted">{sub}</small> })}
                                    </button>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                })
            }}
        </div>
    }
}

/// One custom field of a deal, by its kind.
#[component]
fn CustomInput(
    key: String,
    def_kind: CustomFieldKind,
    label: String,
    custom: RwSignal<BTreeMap<String, String>>,
    errors: RwSignal<FormErrors>,
) -> impl IntoView {
    let id = format!("custom-{key}");
    let error_key = format!("custom.{key}");
    let error = Signal::derive(move || errors.with(|e| e.get(&error_key).map(|e| e.to_string())));
    let value = {
        let key = key.clone();
        move || custom.with(|c| c.get(&key).cloned().unwrap_or_default())
    };
    let set = move |v: String| {
        custom.update(|c| {
            c.insert(key.clone(), v);
        })
    };
    let input = match def_kind {
        CustomFieldKind::Choice(options) => {
            let current = value();
            view! {
                <select id=id.clone() on:change=move |ev| set(event_target_value(&ev))>
                    <option value="">"—"</option>
                    {options.into_iter().map(|o| {
                        let selected = current == o;
                        view! { <option value=o.clone() selected=selected>{o.clone()}</option> }
                    }).collect_view()}
                </select>
            }
            .into_any()
        }
        other => {
            let (t, mode) = match other {
                CustomFieldKind::Date => ("date", "text"),
                CustomFieldKind::Number => ("text", "decimal"),
                _ => ("text", "text"),
            };
            view! {
                <input id=id.clone() type=t inputmode=mode prop:value=value on:input=move |ev| set(event_target_value(&ev))
                    aria-invalid=move || error.get().is_some().then_some("true")/>
            }
            .into_any()
        }
    };
    view! {
        <div class="field" class:invalid=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            {input}
            <FieldError id=format!("{id}-error") error=error/>
        </div>
    }
}
