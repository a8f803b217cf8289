//! Creating and editing a company: every field labelled, validated by the
//! core on submit (`CompanyForm::apply`), errors next to their field and
//! focus moved to the first one.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_params_map};
use rapport_core::contact::Address;
use rapport_core::form::Base;
use rapport_core::form::FormErrors;
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::sales::company::{Company, CompanyForm, SIZES};

use super::conflicts::ChangedElsewhere;
use super::contact_form::CustomInput;
use super::widgets::{FieldError, TextField};
use crate::browser;
use crate::state::use_app;

#[component]
pub fn NewCompany() -> impl IntoView {
    view! { <CompanyEditor existing=None/> }
}

#[component]
pub fn EditCompany() -> impl IntoView {
    let app = use_app();
    let params = use_params_map();
    let loaded = LocalResource::new(move || {
        let id = params.with(|p| p.get("id").unwrap_or_default());
        async move {
            let id: RecordId = id.parse().map_err(|e: rapport_core::ids::BadId| e.to_string())?;
            app.engine().open_for_edit::<Company>(id).await.map_err(|e| e.to_string())
        }
    });
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || loaded.get().map(|r| match r {
                Ok((c, base)) => view! { <CompanyEditor existing=Some(c) base=Some(base)/> }.into_any(),
                Err(e) => view! { <div class="banner error" role="alert">{e}</div> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn CompanyEditor(
    existing: Option<Company>,
    /// The version `existing` was read at: saving writes only what this
    /// form changed since.
    #[prop(default = None)]
    base: Option<Base>,
) -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let is_new = existing.is_none();
    let form = existing
        .as_ref()
        .map(CompanyForm::from_company)
        .unwrap_or_else(|| CompanyForm { owner: app.engine().member.to_string(), ..Default::default() });
    let changed_notice = existing.as_ref().map(|r| r.id).zip(base.clone()).map(|(id, base)| {
        view! { <ChangedElsewhere id=id base=base noun="company"/> }
    });
    let existing = StoredValue::new(existing);
    let base = StoredValue::new(base);

    let name = RwSignal::new(form.name);
    let domain = RwSignal::new(form.domain);
    let industry = RwSignal::new(form.industry);
    let size = RwSignal::new(form.size);
    let street = RwSignal::new(form.address.street);
    let city = RwSignal::new(form.address.city);
    let region = RwSignal::new(form.address.region);
    let postal = RwSignal::new(form.address.postal_code);
    let country = RwSignal::new(form.address.country);
    let owner = RwSignal::new(form.owner);
    let tags = RwSignal::new(form.tags);
    let notes = RwSignal::new(form.notes);
    let custom = RwSignal::new(form.custom);
    let errors = RwSignal::new(FormErrors::new());
    let busy = RwSignal::new(false);
    let failure = RwSignal::new(None::<String>);

    let err = move |key: &'static str| Signal::derive(move || errors.with(|e| e.get(key).map(|e| e.to_string())));

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let form = CompanyForm {
            name: name.get_untracked(),
            domain: domain.get_untracked(),
            industry: industry.get_untracked(),
            size: size.get_untracked(),
            address: Address {
                street: street.get_untracked(),
                city: city.get_untracked(),
                region: region.get_untracked(),
                postal_code: postal.get_untracked(),
                country: country.get_untracked(),
            },
            owner: owner.get_untracked(),
            tags: tags.get_untracked(),
            notes: notes.get_untracked(),
            custom: custom.get_untracked(),
        };
        let engine = app.engine();
        let now = browser::now();
        let mut company =
            existing.get_value().unwrap_or_else(|| Company::new(browser::new_record_id(), now, engine.member));
        let ws = app.workspace.get_untracked();
        match form.apply(&mut company, &ws) {
            Err(found) => {
                errors.set(found);
                request_animation_frame(browser::focus_first_invalid);
            }
            Ok(()) => {
                errors.set(FormErrors::new());
                company.touch(now, engine.member);
                busy.set(true);
                let navigate = navigate.clone();
                spawn_local(async move {
                    let id = company.id;
                    let name = company.name.clone();
                    match app.persist_form(company, base.get_value()).await {
                        Ok(_) => {
                            app.notify(if is_new { format!("Created {name}") } else { format!("Saved {name}") }, None);
                            navigate(&format!("/companies/{id}"), Default::default());
                        }
                        Err(e) => {
                            busy.set(false);
                            failure.set(Some(e.replace("The contact was not created", "The company was not created")));
                        }
                    }
                });
            }
        }
    };

    let cancel_href = existing
        .with_value(|e| e.as_ref().map(|c| format!("/companies/{}", c.id)).unwrap_or_else(|| "/companies".into()));
    let heading =
        existing.with_value(|e| e.as_ref().map(|c| format!("Edit {}", c.name)).unwrap_or_else(|| "New company".into()));
    let members = move || {
        app.workspace.with(|w| w.members.iter().map(|(id, m)| (id.to_string(), m.name.clone())).collect::<Vec<_>>())
    };
    let custom_defs = move || {
        app.workspace
            .with(|w| w.fields_for(RecordKind::Company).map(|(k, d)| (k.clone(), d.clone())).collect::<Vec<_>>())
    };
    // Industries already in use, offered as suggestions.
    let industries = move || {
        app.index.with(|i| {
            i.rows()
                .iter()
                .filter(|r| r.kind == RecordKind::Company && !r.deleted)
                .map(|r| r.column("industry").to_owned())
                .filter(|s| !s.is_empty())
                .collect::<BTreeSet<_>>()
        })
    };
    let size_error = err("size");

    view! {
        <section class="page form-page">
            <div class="page-head">
                <h1>{heading}</h1>
            </div>
            {changed_notice}
            <form class="card form" on:submit=submit novalidate=true data-testid="company-form">
                {move || (!errors.with(BTreeMap::is_empty)).then(|| view! {
                    <div class="banner error" role="alert">"Some fields need attention. They are marked below."</div>
                })}
                <fieldset>
                    <legend>"Company"</legend>
                    <div class="grid2">
                        <TextField id="name" label="Company name" value=name error=err("name")/>
                        <TextField id="domain" label="Web domain" value=domain error=err("domain") hint="Like example.com"/>
                        <div class="field" class:invalid=move || err("industry").get().is_some()>
                            <label for="industry">"Industry"</label>
                            <input id="industry" type="text" autocomplete="off" list="industry-suggestions"
                                prop:value=move || industry.get() on:input=move |ev| industry.set(event_target_value(&ev))
                                aria-invalid=move || err("industry").get().is_some().then_some("true")/>
                            <datalist id="industry-suggestions">
                                {move || industries().into_iter().map(|s| view! { <option value=s/> }).collect_view()}
                            </datalist>
                            <FieldError id="industry-error".into() error=err("industry")/>
                        </div>
                        <div class="field" class:invalid=move || size_error.get().is_some()>
                            <label for="size">"Size (people)"</label>
                            <select id="size" on:change=move |ev| size.set(event_target_value(&ev))
                                aria-invalid=move || size_error.get().is_some().then_some("true")>
                                <option value="" selected=move || size.get().is_empty()>"Not known"</option>
                                {SIZES.iter().map(|s| view! {
                                    <option value=*s selected=move || size.get() == *s>{*s}</option>
                                }).collect_view()}
                            </select>
                            <FieldError id="size-error".into() error=size_error/>
                        </div>
                    </div>
                </fieldset>
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
                    <div class="field" class:invalid=move || err("notes").get().is_some()>
                        <label for="notes">"Notes"</label>
                        <textarea id="notes" rows="5" prop:value=move || notes.get() on:input=move |ev| notes.set(event_target_value(&ev))
                            aria-invalid=move || err("notes").get().is_some().then_some("true")></textarea>
                        <FieldError id="notes-error".into() error=err("notes")/>
                    </div>
                </fieldset>
                {move || failure.get().map(|f| view! { <div class="banner error" role="alert">{f}</div> })}
                <div class="form-actions">
                    <button type="submit" class="btn primary" disabled=move || busy.get()>
                        {move || if busy.get() { "Saving…" } else if is_new { "Create company" } else { "Save changes" }}
                    </button>
                    <a class="btn" href=browser::href(&cancel_href)>"Cancel"</a>
                </div>
            </form>
        </section>
    }
}
