//! The company list: instant search (name, domain, industry, city, tags),
//! sort, and a virtualised window of rows like the contact list.

use std::collections::HashMap;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use rapport_core::ids::RecordId;
use rapport_core::record::RecordKind;
use rapport_core::search::{Query, Sort, SortKey};

use crate::browser;
use crate::state::use_app;

/// Fixed row height (px); the CSS `.vrow` height must match.
const ROW_HEIGHT: f64 = 56.0;
const OVERSCAN: usize = 8;

/// Up to two initials of a company name, skipping words that start with a
/// symbol ("Babbage & Sons" → "BS").
pub fn company_initials(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next().filter(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

/// "No people", "1 person", "3 people".
pub fn people_text(n: usize) -> String {
    match n {
        0 => "No people".into(),
        1 => "1 person".into(),
        n => format!("{n} people"),
    }
}

#[component]
pub fn CompanyList() -> impl IntoView {
    let app = use_app();
    let navigate = use_navigate();
    let query_map = use_query_map();
    let search = RwSignal::new(query_map.with_untracked(|q| q.get("q").unwrap_or_default()));
    let sort = RwSignal::new(Sort::default());
    let scroll_top = RwSignal::new(0.0f64);
    let viewport_height = RwSignal::new(600.0f64);
    let viewport = NodeRef::<leptos::html::Div>::new();

    let matches = Memo::new(move |_| {
        let q = Query::parse(&search.get());
        let s = sort.get();
        app.index.with(|i| i.query(RecordKind::Company, &q, s))
    });
    let total =
        Memo::new(move |_| app.index.with(|i| i.query(RecordKind::Company, &Query::default(), Sort::default()).len()));
    // People per company, from the contacts' `company_id` column.
    let people = Memo::new(move |_| {
        app.index.with(|i| {
            let mut counts: HashMap<RecordId, usize> = HashMap::new();
            for r in i.rows().iter().filter(|r| r.kind == RecordKind::Contact && !r.deleted) {
                if let Ok(id) = r.column("company_id").parse::<RecordId>() {
                    *counts.entry(id).or_default() += 1;
                }
            }
            counts
        })
    });

    Effect::new(move |_| {
        search.track();
        sort.track();
        if let Some(el) = viewport.get_untracked() {
            el.set_scroll_top(0);
        }
        scroll_top.set(0.0);
    });

    let measure = move || {
        if let Some(el) = viewport.get_untracked() {
            viewport_height.set(f64::from(el.client_height()).max(ROW_HEIGHT));
        }
    };
    Effect::new(move |_| {
        if viewport.get().is_some() {
            measure();
        }
    });
    let resize = window_event_listener(leptos::ev::resize, move |_| measure());
    on_cleanup(move || resize.remove());

    let window = move || {
        let n = matches.with(Vec::len);
        let first = ((scroll_top.get() / ROW_HEIGHT) as usize).saturating_sub(OVERSCAN);
        let count = (viewport_height.get() / ROW_HEIGHT).ceil() as usize + 2 * OVERSCAN;
        let last = (first + count).min(n);
        matches.with(|m| (first..last).map(|i| (i, m[i])).collect::<Vec<_>>())
    };

    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let key = ev.key();
        if key != "ArrowDown" && key != "ArrowUp" && key != "Enter" {
            return;
        }
        let Some(el) = viewport.get_untracked() else { return };
        let current = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.active_element())
            .and_then(|a| a.get_attribute("data-pos"))
            .and_then(|p| p.parse::<usize>().ok());
        let n = matches.with_untracked(Vec::len);
        if n == 0 {
            return;
        }
        let target = match (key.as_str(), current) {
            ("Enter", Some(pos)) => {
                if let Some(p) = matches.with_untracked(|m| m.get(pos).copied()) {
                    let id = app.index.with_untracked(|i| i.row_at(p).id);
                    navigate(&format!("/companies/{id}"), Default::default());
                }
                return;
            }
            ("Enter", None) => return,
            ("ArrowDown", None) => 0,
            ("ArrowDown", Some(p)) => (p + 1).min(n - 1),
            ("ArrowUp", Some(p)) => p.saturating_sub(1),
            _ => return,
        };
        ev.prevent_default();
        let top = target as f64 * ROW_HEIGHT;
        let view_h = f64::from(el.client_height());
        let scroll = f64::from(el.scroll_top());
        if top < scroll || top + ROW_HEIGHT > scroll + view_h {
            let new_top = if top < scroll { top } else { top + ROW_HEIGHT - view_h };
            el.set_scroll_top(new_top as i32);
            scroll_top.set(new_top);
        }
        request_animation_frame(move || {
            if let Ok(Some(row)) = el.query_selector(&format!("[data-pos=\"{target}\"]")) {
                use wasm_bindgen::JsCast;
                if let Ok(row) = row.dyn_into::<web_sys::HtmlElement>() {
                    let _ = row.focus();
                }
            }
        });
    };

    view! {
        <section class="page contacts-page companies-page">
            <div class="page-head">
                <h1>"Companies"</h1>
                <span class="count" data-testid="company-count">
                    {move || {
                        let (shown, all) = (matches.with(Vec::len), total.get());
                        if shown == all { format!("{all} total") } else { format!("{shown} of {all}") }
                    }}
                </span>
                <a class="btn primary" href=browser::href("/companies/new")>"New company"</a>
            </div>
            <div class="toolbar" role="search">
                <label class="search">
                    <span class="visually-hidden">"Search companies"</span>
                    <input
                        type="search"
                        placeholder="Search by name, domain, industry, city or tag"
                        aria-label="Search companies"
                        data-testid="company-search"
                        prop:value=move || search.get()
                        on:input=move |ev| search.set(event_target_value(&ev))
                        on:keydown=on_key.clone()
                    />
                </label>
                <label class="sort">
                    <span>"Sort by"</span>
                    <select
                        aria-label="Sort by"
                        on:change=move |ev| {
                            let key = match event_target_value(&ev).as_str() {
                                "industry" => SortKey::Column("industry"),
                                "city" => SortKey::Column("city"),
                                "updated" => SortKey::Updated,
                                _ => SortKey::Name,
                            };
                            sort.update(|s| s.key = key);
                        }
                    >
                        <option value="name">"Name"</option>
                        <option value="industry">"Industry"</option>
                        <option value="city">"City"</option>
                        <option value="updated">"Last updated"</option>
                    </select>
                </label>
                <button
                    class="btn ghost"
                    on:click=move |_| sort.update(|s| s.descending = !s.descending)
                >
                    // Named by what it shows (the arrow is decoration), then what it does.
                    <span aria-hidden="true">{move || if sort.get().descending { "↓ " } else { "↑ " }}</span>
                    {move || if sort.get().descending { "Z–A" } else { "A–Z" }}
                    <span class="visually-hidden">": reverse the order"</span>
                </button>
            </div>
            {move || {
                if total.get() == 0 {
                    view! {
                        <div class="empty" data-testid="empty-companies">
                            <h2>"No companies yet"</h2>
                            <p>"Add the organisations you sell to. People, deals and activities link to them."</p>
                            <a class="btn primary" href=browser::href("/companies/new")>"Add your first company"</a>
                        </div>
                    }.into_any()
                } else if matches.with(Vec::is_empty) {
                    view! {
                        <div class="empty" data-testid="no-matches">
                            <h2>"No matches"</h2>
                            <p>{move || format!("No company matches “{}”.", search.get())}</p>
                            <button class="btn" on:click=move |_| search.set(String::new())>"Clear search"</button>
                        </div>
                    }.into_any()
                } else {
                    ().into_any()
                }
            }}
            <div class="list-head" aria-hidden="true" class:hidden=move || matches.with(Vec::is_empty)>
                <span>"Name"</span><span>"Domain"</span><span>"Industry"</span><span>"City"</span><span>"Tags"</span>
            </div>
            <div
                class="list-viewport"
                node_ref=viewport
                class:hidden=move || matches.with(Vec::is_empty)
                role="list"
                aria-label="Companies"
                data-testid="company-list"
                on:scroll=move |ev| {
                    use wasm_bindgen::JsCast;
                    if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                        scroll_top.set(f64::from(el.scroll_top()));
                    }
                }
                on:keydown=on_key
            >
                <div class="list-spacer" style:height=move || format!("{}px", matches.with(Vec::len) as f64 * ROW_HEIGHT)>
                    <For
                        each=window
                        key=|(i, pos)| (*i, *pos)
                        children=move |(i, pos)| {
                            let row = app.index.with_untracked(|idx| idx.row_at(pos).clone());
                            let href = browser::href(&format!("/companies/{}", row.id));
                            let id = row.id;
                            let subtitle = row.subtitle.clone();
                            let count = move || {
                                let n = people.with(|p| people_text(p.get(&id).copied().unwrap_or(0)));
                                if subtitle.is_empty() { n } else { format!("{n} · {subtitle}") }
                            };
                            view! {
                                <div class="vrow-item" role="listitem" style:transform=format!("translateY({}px)", i as f64 * ROW_HEIGHT)>
                                <a class="vrow" href=href data-pos=i data-testid="company-row">
                                    <span class="cell name">
                                        <span class="avatar square" aria-hidden="true">{company_initials(&row.title)}</span>
                                        <span class="name-text">
                                            <strong>{row.title.clone()}</strong>
                                            <small>{count}</small>
                                        </span>
                                    </span>
                                    <span class="cell email">{row.column("domain").to_owned()}</span>
                                    <span class="cell phone">{row.column("industry").to_owned()}</span>
                                    <span class="cell company">{row.column("city").to_owned()}</span>
                                    <span class="cell tags">
                                        {row.tags.iter().take(3).map(|t| view! { <span class="tag">{t.clone()}</span> }).collect_view()}
                                    </span>
                                </a>
                                </div>
                            }
                        }
                    />
                </div>
            </div>
        </section>
    }
}
