//! Creating and editing a contact: every field labelled, validated by the
//! core on submit, errors shown next to their field and focus moved to the
//! first one.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use rapport_core::contact::{Address, Contact, ContactForm, EntryForm, FormErrors};
use rapport_core::form::Base;
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::sales::company;
use rapport_core::search::{Query, Sort};
use rapport_core::validate::CustomFieldKind;

use super::conflicts::ChangedElsewhere;
use super::widgets::{FieldError, TextField};
use crate::browser;
use crate::state::use_app;

/// `/contacts/new`, or `/contacts/new?company=Acme` from a company page
/// (the company name filled in, which links the new person to it).
/// How many company names the contact form offers while typing.
const COMPANY_SUGGESTIONS: usize = 20;

#[component]
pub fn NewContact() -> impl IntoView {
    let company = use_query_map().with_untracked(|q| q.get("company")).filter(|c| !c.trim().is_empty());
    view! { <ContactEditor existing=None company=company/> }
}

/// How the typed company name links to a company record.
#[derive(Debug, Clone, PartialEq)]
enum CompanyLink {
    /// Nothing typed.
    None,
    /// Exactly one live company has this name.
    Linked(RecordId, String),
    /// Several live companies have this name: not linked.
    Ambiguous,
    /// No company record has this name: kept as typed.
    NoMatch,
}

fn company_link(rows: &[rapport_core::record::Row], typed: &str) -> CompanyLink {
    if typed.trim().is_empty() {
        return CompanyLink::None;
    }
    // One pass over the rows, by the rule of `company::match_by_name`.
    let mut same = company::named(rows, typed);
    match (same.next(), same.next()) {
        (None, _) => CompanyLink::NoMatch,
        (Some(row), None) => CompanyLink::Linked(row.id, row.title.clone()),
        (Some(_), Some(_)) => CompanyLink::Ambiguous,
    }
}

#[component]
pub fn EditContact() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let loaded = LocalResource::new(move || {
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            let id: RecordId = id.parse().map_err(|e: rapport_core::ids::BadId| e.to_string())?;
            app.engine().open_for_edit::<Contact>(id).await.map_err(|e| e.to_string())
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok((c, base)) => view! { <ContactEditor existing=Some(c) base=Some(base)/> }.into_any(),
                Err(e) => view! { <div class="banner error" role="alert">{e}</div> }.into_any(),
            })}
        </Suspense>
    }
}

#[derive(Clone)]
struct Line {
    key: u64,
    form: EntryForm,
}

fn lines(entries: Vec<EntryForm>, default_label: &str) -> Vec<Line> {
    let mut out: Vec<Line> = entries.into_iter().enumerate().map(|(i, form)| Line { key: i as u64, form }).collect();
    if out.is_empty() {
        out.push(Line { key: 0, form: EntryForm { label: default_label.into(), primary: true, ..Default::default() } });
    }
    out
}

#[component]
fn ContactEditor(
    existing: Option<Contact>,
    /// The version `existing` was read at: saving writes only what this
    /// form changed since, and is refused once the contact has been
    /// anonymised (rewritten into a later epoch) meanwhile.
    #[prop(default = None)]
    base: Option<Base>,
    #[prop(default = None)] company: Option<String>,
) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let is_new = existing.is_none();
    let form = existing.as_ref().map(ContactForm::from_contact).unwrap_or_else(|| ContactForm {
        owner: app.engine().member.to_string(),
        company_name: company.unwrap_or_default(),
        ..Default::default()
    });
    let existing = StoredValue::new(existing);
    let base = StoredValue::new(base);

    let given = RwSignal::new(form.given_name);
    let family = RwSignal::new(form.family_name);
    let company = RwSignal::new(form.company_name);
    let title = RwSignal::new(form.title);
    let street = RwSignal::new(form.address.street);
    let city = RwSignal::new(form.address.city);
    let region = RwSignal::new(form.address.region);
    let postal = RwSignal::new(form.address.postal_code);
    let country = RwSignal::new(form.address.country);
    let tags = RwSignal::new(form.tags);
    let owner = RwSignal::new(form.owner);
    let notes = RwSignal::new(form.notes);
    let custom = RwSignal::new(form.custom);
    let emails = RwSignal::new(lines(form.emails, "work"));
    let phones = RwSignal::new(lines(form.phones, "mobile"));
    let errors = RwSignal::new(FormErrors::new());
    let busy = RwSignal::new(false);
    let failure = RwSignal::new(None::<String>);

    let err = move |key: &'static str| Signal::derive(move || errors.with(|e| e.get(key).map(|e| e.to_string())));

    // The company the typed name links to: the one live company with exactly
    // that name; else, while the name is unchanged, the link the contact
    // already had (its company may have been renamed since), if still live.
    let original =
        existing.with_value(|c| c.as_ref().and_then(|c| c.company_id.map(|id| (c.company_name.clone(), id))));
    let link = Memo::new(move |_| {
        let typed = company.get();
        app.index.with(|i| match company_link(i.rows(), &typed) {
            CompanyLink::Linked(id, name) => CompanyLink::Linked(id, name),
            other => match &original {
                Some((name, id)) if name.trim() == typed.trim() => match i.get(*id) {
                    Some(r) if !r.deleted => CompanyLink::Linked(*id, r.title.clone()),
                    _ => other,
                },
                _ => other,
            },
        })
    });
    let linked_company = move || match link.get_untracked() {
        CompanyLink::Linked(id, _) => Some(id),
        _ => None,
    };
    // The companies matching what is typed, through the row index's
    // search, at most COMPANY_SUGGESTIONS of them: a workspace with 10,000
    // companies must not build 10,000 options per keystroke.
    let company_names = move || {
        let typed = company.get();
        app.index.with(|i| {
            let mut names: Vec<String> = i
                .query(RecordKind::Company, &Query::parse(&typed), Sort::default())
                .into_iter()
                .map(|p| i.row_at(p))
                .filter(|r| !r.deleted)
                .map(|r| r.title.clone())
                .take(COMPANY_SUGGESTIONS)
                .collect();
            names.dedup();
            names
        })
    };
    let company_error = err("company_name");

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let entries = |l: RwSignal<Vec<Line>>| l.get_untracked().into_iter().map(|l| l.form).collect::<Vec<_>>();
        let form = ContactForm {
            given_name: given.get_untracked(),
            family_name: family.get_untracked(),
            emails: entries(emails),
            phones: entries(phones),
            // A linked person shows the company's own spelling of its name.
            company_name: match link.get_untracked() {
                CompanyLink::Linked(_, name) => name,
                _ => company.get_untracked(),
            },
            company_id: linked_company().map(|id| id.to_string()).unwrap_or_default(),
            title: title.get_untracked(),
            address: Address {
                street: street.get_untracked(),
                city: city.get_untracked(),
                region: region.get_untracked(),
                postal_code: postal.get_untracked(),
                country: country.get_untracked(),
            },
            tags: tags.get_untracked(),
            owner: owner.get_untracked(),
            notes: notes.get_untracked(),
            custom: custom.get_untracked(),
        };
        let engine = app.engine();
        let now = browser::now();
        let mut contact =
            existing.get_value().unwrap_or_else(|| Contact::new(browser::new_record_id(), now, engine.member));
        let ws = app.workspace.get_untracked();
        match form.apply(&mut contact, &ws, &mut browser::new_entry_id) {
            Err(found) => {
                errors.set(found);
                // Focus the first invalid field in page order once it is marked.
                request_animation_frame(browser::focus_first_invalid);
            }
            Ok(()) => {
                errors.set(FormErrors::new());
                contact.touch(now, engine.member);
                busy.set(true);
                let navigate = navigate.clone();
                spawn_local(async move {
                    let id = contact.id;
                    let name = contact.display_name();
                    let saved = match base.get_value() {
                        Some(base) => app.persist_edit(contact, base).await,
                        None => app.persist(contact, true).await,
                    };
                    match saved {
                        Ok(_) => {
                            app.notify(if is_new { format!("Created {name}") } else { format!("Saved {name}") }, None);
                            navigate(&format!("/contacts/{id}"), Default::default());
                        }
                        Err(e) => {
                            busy.set(false);
                            failure.set(Some(e));
                        }
                    }
                });
            }
        }
    };

    let changed_notice = existing.with_value(|e| e.as_ref().map(|c| c.id)).zip(base.get_value()).map(|(id, base)| {
        view! { <ChangedElsewhere id=id base=base noun="contact"/> }
    });
    let cancel_href = existing
        .with_value(|e| e.as_ref().map(|c| format!("/contacts/{}", c.id)).unwrap_or_else(|| "/contacts".into()));
    let heading = existing.with_value(|e| {
        e.as_ref().map(|c| format!("Edit {}", c.display_name())).unwrap_or_else(|| "New contact".into())
    });
    let members = move || {
        app.workspace.with(|w| w.members.iter().map(|(id, m)| (id.to_string(), m.name.clone())).collect::<Vec<_>>())
    };
    let custom_defs = move || {
        app.workspace
            .with(|w| w.fields_for(RecordKind::Contact).map(|(k, d)| (k.clone(), d.clone())).collect::<Vec<_>>())
    };

    view! {
        <section class="page form-page">
            <div class="page-head">
                <h1>{heading}</h1>
            </div>
            {changed_notice}
            <form class="card form" on:submit=submit novalidate=true data-testid="contact-form">
                {move || (!errors.with(BTreeMap::is_empty)).then(|| view! {
                    <div class="banner error" role="alert">"Some fields need attention. They are marked below."</div>
                })}
                <fieldset>
                    <legend>"Name and role"</legend>
                    <div class="grid2">
                        <TextField id="given_name" label="Given name" value=given error=err("given_name") autocomplete="off"/>
                        <TextField id="family_name" label="Family name" value=family error=err("family_name")/>
                        <div class="field" class:invalid=move || company_error.get().is_some()>
                            <label for="company_name">"Company"</label>
                            <input
                                id="company_name"
                                name="company_name"
                                type="text"
                                autocomplete="off"
                                list="company-names"
                                prop:value=move || company.get()
                                on:input=move |ev| company.set(event_target_value(&ev))
                                aria-invalid=move || company_error.get().is_some().then_some("true")
                                aria-describedby="company_name-hint"
                            />
                            <datalist id="company-names">
                                {move || company_names().into_iter().map(|n| view! { <option value=n/> }).collect_view()}
                            </datalist>
                            <p class="hint" id="company_name-hint" data-testid="company-link-hint">
                                {move || match link.get() {
                                    CompanyLink::None => "Pick one of your companies to link this person to it".to_owned(),
                                    CompanyLink::Linked(_, name) => format!("Linked to the company {name}"),
                                    CompanyLink::Ambiguous => "Several companies have this name, so it is not linked".to_owned(),
                                    CompanyLink::NoMatch => "No company has this name; it is kept as typed".to_owned(),
                                }}
                            </p>
                            <FieldError id="company_name-error".into() error=company_error/>
                        </div>
                        <TextField id="title" label="Job title" value=title error=err("title")/>
                    </div>
                </fieldset>
                <EntryLines kind="emails" legend="Email addresses" singular="email" lines=emails errors=errors/>
                <EntryLines kind="phones" legend="Phone numbers" singular="phone" lines=phones errors=errors/>
                <fieldset>
                    <legend>"Address"</legend>
                    <div class="grid2">
                        <TextField id="address-street" label="Street" value=street error=err("address.street")/>
                        <TextField id="address-city" label="City" value=city error=err("address.city")/>
                        <TextField id="address-region" label="Region" value=region error=err("address.region")/>
                        <TextField id="address-postal_code" label="Postal code" value=postal error=err("address.postal_code")/>
                        <TextField id="address-country" label="Country" value=country error=err("address.country")/>
                    </div>
                </fieldset>
                <fieldset>
                    <legend>"Ownership and tags"</legend>
                    <div class="grid2">
                        <div class="field">
                            <label for="owner">"Owner"</label>
                            <select id="owner" on:change=move |ev| owner.set(event_target_value(&ev))>
                                <option value="" selected=move || owner.get().is_empty()>"No owner"</option>
                                {move || members().into_iter().map(|(id, name)| {
                                    let selected = owner.get() == id;
                                    view! { <option value=id.clone() selected=selected>{name}</option> }
                                }).collect_view()}
                            </select>
                        </div>
                        <TextField id="tags" label="Tags" value=tags error=err("tags") hint="Separate tags with commas"/>
                    </div>
                </fieldset>
                {move || {
                    let defs = custom_defs();
                    (!defs.is_empty()).then(|| view! {
                        <fieldset>
                            <legend>"More fields"</legend>
                            <div class="grid2">
                                {defs.into_iter().map(|(key, def)| view! { <CustomInput key=key def_kind=def.kind label=def.label custom=custom errors=errors/> }).collect_view()}
                            </div>
                        </fieldset>
                    })
                }}
                <fieldset>
                    <legend>"Notes"</legend>
                    <div class="field">
                        <label for="notes">"Notes"</label>
                        <textarea id="notes" rows="5" prop:value=move || notes.get() on:input=move |ev| notes.set(event_target_value(&ev))></textarea>
                        <FieldError id="notes-error".into() error=err("notes")/>
                    </div>
                </fieldset>
                {move || failure.get().map(|f| view! { <div class="banner error" role="alert">{f}</div> })}
                <div class="form-actions">
                    <button type="submit" class="btn primary" disabled=move || busy.get()>
                        {move || if busy.get() { "Saving…" } else if is_new { "Create contact" } else { "Save changes" }}
                    </button>
                    <a class="btn" href=browser::href(&cancel_href)>"Cancel"</a>
                </div>
            </form>
        </section>
    }
}

/// The email or phone lines of the form: value, label, primary choice.
#[component]
fn EntryLines(
    kind: &'static str,
    legend: &'static str,
    singular: &'static str,
    lines: RwSignal<Vec<Line>>,
    errors: RwSignal<FormErrors>,
) -> impl IntoView {
    let set = move |key: u64, f: &dyn Fn(&mut EntryForm)| {
        lines.update(|ls| {
            if let Some(l) = ls.iter_mut().find(|l| l.key == key) {
                f(&mut l.form);
            }
        })
    };
    let add = move |_| {
        lines.update(|ls| {
            let key = ls.iter().map(|l| l.key + 1).max().unwrap_or(0);
            let primary = ls.is_empty();
            ls.push(Line { key, form: EntryForm { primary, ..Default::default() } });
        })
    };
    let (input_type, autocomplete) = if kind == "emails" { ("email", "email") } else { ("tel", "tel") };
    let cap = if singular == "email" { "Email" } else { "Phone" };
    let numbered = move || lines.get().into_iter().enumerate().collect::<Vec<_>>();
    view! {
        <fieldset>
            <legend>{legend}</legend>
            <For
                each=numbered
                key=|(i, l)| (*i, l.key)
                children=move |(i, line)| {
                    let key = line.key;
                    let id = format!("{singular}-{i}");
                    let error_key = format!("{kind}.{i}");
                    let error = Signal::derive(move || errors.with(|e| e.get(&error_key).map(|e| e.to_string())));
                    let value = move || lines.with(|ls| ls.iter().find(|l| l.key == key).map(|l| l.form.value.clone()).unwrap_or_default());
                    let label = move || lines.with(|ls| ls.iter().find(|l| l.key == key).map(|l| l.form.label.clone()).unwrap_or_default());
                    let primary = move || lines.with(|ls| ls.iter().any(|l| l.key == key && l.form.primary));
                    let error_id = format!("{id}-error");
                    view! {
                        <div class="entry-line" class:invalid=move || error.get().is_some()>
                            <div class="field grow">
                                <label for=id.clone()>{format!("{cap} {}", i + 1)}</label>
                                <input
                                    id=id.clone()
                                    type=input_type
                                    autocomplete=autocomplete
                                    prop:value=value
                                    aria-invalid=move || error.get().is_some().then_some("true")
                                    aria-describedby=move || error.get().is_some().then(|| error_id.clone())
                                    on:input=move |ev| { let v = event_target_value(&ev); set(key, &|f| f.value = v.clone()) }
                                />
                                <FieldError id=format!("{id}-error") error=error/>
                            </div>
                            <div class="field label-field">
                                <label for=format!("{id}-label")>{format!("{cap} {} label", i + 1)}</label>
                                <input
                                    id=format!("{id}-label")
                                    list=format!("{kind}-labels")
                                    prop:value=label
                                    on:input=move |ev| { let v = event_target_value(&ev); set(key, &|f| f.label = v.clone()) }
                                />
                            </div>
                            <label class="check">
                                <input
                                    type="radio"
                                    name=format!("{kind}-primary")
                                    prop:checked=primary
                                    on:change=move |_| lines.update(|ls| ls.iter_mut().for_each(|l| l.form.primary = l.key == key))
                                />
                                "Primary"
                            </label>
                            <button
                                type="button"
                                class="btn ghost small"
                                aria-label=format!("Remove {singular} {}", i + 1)
                                on:click=move |_| lines.update(|ls| ls.retain(|l| l.key != key))
                            >"Remove"</button>
                        </div>
                    }
                }
            />
            <datalist id=format!("{kind}-labels")>
                <option value="work"/><option value="home"/><option value="mobile"/><option value="other"/>
            </datalist>
            <button type="button" class="btn small" on:click=add>{format!("Add {singular}")}</button>
        </fieldset>
    }
}

#[component]
pub(crate) fn CustomInput(
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
    let set = {
        let key = key.clone();
        move |v: String| {
            custom.update(|c| {
                c.insert(key.clone(), v);
            })
        }
    };
    let input = match def_kind {
        CustomFieldKind::Choice(options) => {
            let value = value.clone();
            view! {
                <select id=id.clone() on:change=move |ev| set(event_target_value(&ev))>
                    <option value="">"—"</option>
                    {options.into_iter().map(|o| {
                        let selected = value() == o;
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
            }.into_any()
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
