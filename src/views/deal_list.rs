//! `/deals?view=list`: every deal in a table, from rows only, filtered by
//! pipeline, status, owner and close date and sorted by value, close date,
//! stage, owner or title. Filters live in the address, so the forecast can
//! link to "open deals whose close date has passed".

use std::cmp::Ordering;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use rapport_core::record::RecordKind;
use rapport_core::sales::forecast::{DealFacts, Month};
use rapport_core::sales::money::{self, Totals};
use rapport_core::sales::pipeline::Outcome;
use rapport_core::workspace::Workspace;

use super::deals::{deal_facts, format_date, live_title, stage_label, use_query_setter};
use crate::browser;
use crate::state::use_app;

const PAGE: usize = 200;

/// Where a deal's stage sits: pipeline order, then stage order.
fn stage_rank(ws: &Workspace, d: &DealFacts) -> (usize, usize) {
    let pipelines = ws.ordered_pipelines(true);
    let p = pipelines.iter().position(|(id, _)| **id == d.pipeline).unwrap_or(usize::MAX);
    let s = ws
        .pipelines
        .get(&d.pipeline)
        .and_then(|p| p.ordered_stages(true).iter().position(|(id, _)| **id == d.stage))
        .unwrap_or(usize::MAX);
    (p, s)
}

/// Whether `d` passes the filters `f` (`pipeline`, `status`, `owner`, `close`).
fn keep(d: &DealFacts, f: &Filters, this_month: Month) -> bool {
    (f.pipeline.is_empty() || d.pipeline == f.pipeline)
        && (f.status.is_empty() || d.status.as_str() == f.status)
        && match f.owner.as_str() {
            "" => true,
            "none" => d.owner.is_none(),
            o => d.owner.is_some_and(|m| m.to_string() == o),
        }
        && match f.close.as_str() {
            // As the forecast counts them: open, expected before this month.
            "passed" => d.status == Outcome::Open && d.close.is_some_and(|c| Month::of(c) < this_month),
            "none" => d.status == Outcome::Open && d.close.is_none(),
            _ => true,
        }
}

#[derive(Clone, PartialEq, Default)]
struct Filters {
    pipeline: String,
    status: String,
    owner: String,
    close: String,
    sort: String,
    desc: bool,
}

impl Filters {
    fn any(&self) -> bool {
        !(self.pipeline.is_empty() && self.status.is_empty() && self.owner.is_empty() && self.close.is_empty())
    }
}

#[component]
pub fn DealList() -> impl IntoView {
    let app = use_app();
    let query = use_query_map();
    let set = StoredValue::new_local(use_query_setter("/deals"));
    let filters = Memo::new(move |_| {
        query.with(|q| Filters {
            pipeline: q.get("pipeline").unwrap_or_default(),
            status: q.get("status").unwrap_or_default(),
            owner: q.get("owner").unwrap_or_default(),
            close: q.get("close").unwrap_or_default(),
            sort: q.get("sort").unwrap_or_else(|| "close".into()),
            desc: q.get("dir").as_deref() == Some("desc"),
        })
    });
    let deals = deal_facts(app);
    let shown = RwSignal::new(PAGE);
    let this_month = Month::of(browser::today());

    let rows = Memo::new(move |_| {
        let f = filters.get();
        let mut list: Vec<DealFacts> =
            deals.with(|ds| ds.iter().filter(|d| keep(d, &f, this_month)).cloned().collect());
        app.workspace.with(|ws| {
            let owner_name = |d: &DealFacts| d.owner.map(|o| ws.member_name(o).to_lowercase());
            list.sort_by(|a, b| {
                let primary = match f.sort.as_str() {
                    "value" => a.value.cmp(&b.value),
                    "stage" => stage_rank(ws, a).cmp(&stage_rank(ws, b)),
                    "owner" => match (owner_name(a), owner_name(b)) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    },
                    "title" => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
                    // Close date; undated last either way.
                    _ => match (a.close, b.close) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => Ordering::Equal,
                    },
                };
                let primary = if f.desc { primary.reverse() } else { primary };
                primary.then_with(|| a.title.cmp(&b.title)).then(a.id.cmp(&b.id))
            });
        });
        list
    });
    Effect::new(move |_| {
        filters.track();
        shown.set(PAGE);
    });

    let pipelines = move || {
        app.workspace.with(|ws| {
            ws.ordered_pipelines(false).into_iter().map(|(id, p)| (id.clone(), p.name.clone())).collect::<Vec<_>>()
        })
    };
    let members = move || {
        app.workspace.with(|w| w.members.iter().map(|(id, m)| (id.to_string(), m.name.clone())).collect::<Vec<_>>())
    };
    let select =
        move |key: &'static str| move |ev: leptos::ev::Event| set.with_value(|s| s(key, event_target_value(&ev)));
    let today = browser::today();

    view! {
        <div class="toolbar deal-filters" role="group" aria-label="Filter and sort deals">
            <label class="sort">
                <span>"Pipeline"</span>
                <select aria-label="Pipeline" on:change=select("pipeline")>
                    <option value="" selected=move || filters.with(|f| f.pipeline.is_empty())>"All pipelines"</option>
                    {move || pipelines().into_iter().map(|(id, name)| {
                        let selected = filters.with(|f| f.pipeline == id);
                        view! { <option value=id selected=selected>{name}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="sort">
                <span>"Status"</span>
                <select aria-label="Status" on:change=select("status")>
                    {[("", "Any status"), ("open", "Open"), ("won", "Won"), ("lost", "Lost")].into_iter().map(|(v, l)| {
                        view! { <option value=v selected=move || filters.with(|f| f.status == v)>{l}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="sort">
                <span>"Owner"</span>
                <select aria-label="Owner" on:change=select("owner")>
                    <option value="" selected=move || filters.with(|f| f.owner.is_empty())>"Anyone"</option>
                    {move || members().into_iter().map(|(id, name)| {
                        let selected = filters.with(|f| f.owner == id);
                        view! { <option value=id selected=selected>{name}</option> }
                    }).collect_view()}
                    <option value="none" selected=move || filters.with(|f| f.owner == "none")>"No owner"</option>
                </select>
            </label>
            <label class="sort">
                <span>"Close date"</span>
                <select aria-label="Close date" on:change=select("close")>
                    {[("", "Any close date"), ("passed", "Passed (before this month)"), ("none", "No close date")].into_iter().map(|(v, l)| {
                        view! { <option value=v selected=move || filters.with(|f| f.close == v)>{l}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label class="sort">
                <span>"Sort by"</span>
                <select aria-label="Sort by" on:change=select("sort")>
                    {[("close", "Close date"), ("value", "Value"), ("stage", "Stage"), ("owner", "Owner"), ("title", "Title")].into_iter().map(|(v, l)| {
                        view! { <option value=v selected=move || filters.with(|f| f.sort == v)>{l}</option> }
                    }).collect_view()}
                </select>
            </label>
            <button type="button" class="btn ghost"
                on:click=move |_| { let desc = filters.with_untracked(|f| f.desc); set.with_value(|s| s("dir", if desc { String::new() } else { "desc".into() })); }>
                // Named by what it shows (the arrow is decoration), then what it does.
                <span aria-hidden="true">{move || if filters.with(|f| f.desc) { "↓ " } else { "↑ " }}</span>
                {move || if filters.with(|f| f.desc) { "Descending" } else { "Ascending" }}
                <span class="visually-hidden">": reverse the order"</span>
            </button>
        </div>
        {move || {
            let total = rows.with(Vec::len);
            if deals.with(Vec::is_empty) {
                return view! {
                    <div class="empty" data-testid="empty-deals">
                        <h2>"No deals yet"</h2>
                        <p>"Deals you add are listed here; filter them by pipeline, status, owner or close date."</p>
                        <a class="btn primary" href=browser::href("/deals/new")>"Add your first deal"</a>
                    </div>
                }.into_any();
            }
            if total == 0 {
                return view! {
                    <div class="empty" data-testid="no-matching-deals">
                        <h2>"No deals match these filters"</h2>
                        <p>"Change a filter above, or show every deal."</p>
                        <a class="btn" href=browser::href("/deals?view=list")>"Clear filters"</a>
                    </div>
                }.into_any();
            }
            let (mut value, mut weighted) = (Totals::default(), Totals::default());
            let cur = app.workspace.with(|ws| {
                rows.with(|rs| for d in rs {
                    value.add(&d.currency, d.value);
                    weighted.add(&d.currency, d.weighted(ws));
                });
                ws.currency.clone()
            });
            let sort = filters.with(|f| (f.sort.clone(), f.desc));
            let aria_sort = move |key: &str| (sort.0 == key).then_some(if sort.1 { "descending" } else { "ascending" });
            view! {
                <p class="muted list-summary" data-testid="deal-list-summary">
                    {format!("{total} {} · {} total · {} weighted", if total == 1 { "deal" } else { "deals" }, value.short(&cur), weighted.short(&cur))}
                    {filters.with(|f| f.any()).then(|| view! { " · " <a href=browser::href("/deals?view=list")>"Clear filters"</a> })}
                </p>
                <div class="table-wrap">
                    <table class="deal-table" data-testid="deal-table">
                        <thead>
                            <tr>
                                <th scope="col" aria-sort=aria_sort("title")>"Deal"</th>
                                <th scope="col">"Company"</th>
                                <th scope="col" class="num" aria-sort=aria_sort("value")>"Value"</th>
                                <th scope="col" aria-sort=aria_sort("stage")>"Stage"</th>
                                <th scope="col" class="num">"Probability"</th>
                                <th scope="col" aria-sort=aria_sort("close")>"Close date"</th>
                                <th scope="col" aria-sort=aria_sort("owner")>"Owner"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows.with(|rs| rs.iter().take(shown.get()).cloned().collect::<Vec<_>>()).into_iter().map(|d| {
                                let (stage, probability) = app.workspace.with(|ws| {
                                    let many = ws.ordered_pipelines(false).len() > 1;
                                    (stage_label(ws, &d.pipeline, &d.stage, many), d.probability(ws))
                                });
                                let company = d.company.and_then(|c| live_title(app, c, RecordKind::Company).map(|t| (c, t)));
                                let owner = d.owner.map(|o| app.workspace.with(|w| w.member_name(o)));
                                let late = d.status == Outcome::Open && d.close.is_some_and(|c| c < today);
                                view! {
                                    <tr data-testid="deal-row">
                                        <th scope="row"><a href=browser::href(&format!("/deals/{}", d.id))>{d.title.clone()}</a></th>
                                        <td data-label="Company">{company.map(|(id, t)| view! { <a href=browser::href(&format!("/companies/{id}"))>{t}</a> })}</td>
                                        <td data-label="Value" class="num" title=money::format(d.value, &d.currency)>{money::format(d.value, &d.currency)}</td>
                                        <td data-label="Stage">
                                            {stage}
                                            {(d.status != Outcome::Open).then(|| view! { " " <span class=format!("badge outcome {}", d.status.as_str())>{d.status.label()}</span> })}
                                        </td>
                                        <td data-label="Probability" class="num">{format!("{probability}%")}</td>
                                        <td data-label="Close date" class:late=late>
                                            {d.close.map(format_date).unwrap_or_else(|| "—".into())}
                                            {late.then_some(" (passed)")}
                                        </td>
                                        <td data-label="Owner">{owner.unwrap_or_else(|| "No owner".into())}</td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {(total > shown.get()).then(|| view! {
                    <button type="button" class="btn show-more" on:click=move |_| shown.update(|n| *n += PAGE)>
                        {format!("Show more ({} of {total} shown)", shown.get())}
                    </button>
                })}
            }.into_any()
        }}
    }
}
