//! `/forecast`: the weighted pipeline by expected-close month for the next
//! six months (`sales::forecast::forecast`), as CSS bars against the monthly
//! target with the same numbers in a table, the split by owner, and the open
//! deals that need a date. Amounts stay per currency, never converted.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use rapport_core::sales::forecast::{forecast, Forecast, Line, Month};
use rapport_core::sales::money::{self, Totals};

use super::deals::{deal_facts, use_query_setter};
use crate::browser;
use crate::state::use_app;

const MONTHS: u32 = 6;

/// "€12,500.00 + $300.00", or "—" when there is nothing.
fn full(t: &Totals) -> String {
    let parts: Vec<String> = t.0.iter().filter(|(_, v)| **v != 0).map(|(c, v)| money::format(*v, c)).collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(" + ")
    }
}

/// Currencies with any amount in the forecast, the workspace's first.
fn currencies(f: &Forecast) -> Vec<String> {
    let mut out = vec![f.currency.clone()];
    let lines = f.months.iter().map(|(_, l)| l).chain(f.owners.iter().map(|(_, l)| l)).chain([&f.overdue, &f.undated]);
    for l in lines {
        for t in [&l.weighted, &l.won, &l.open] {
            for (c, v) in &t.0 {
                if *v != 0 && !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
    }
    out
}

#[component]
pub fn ForecastPage() -> impl IntoView {
    let app = use_app();
    let query = use_query_map();
    let set = StoredValue::new_local(use_query_setter("/forecast"));
    let deals = deal_facts(app);
    let pipeline = Memo::new(move |_| {
        let p = query.with(|q| q.get("pipeline")).unwrap_or_default();
        app.workspace.with(|w| w.pipelines.contains_key(&p)).then_some(p)
    });
    let from = Month::of(browser::today());
    let result = Memo::new(move |_| {
        let p = pipeline.get();
        app.workspace.with(|ws| deals.with(|d| forecast(d, ws, from, MONTHS, p.as_deref())))
    });
    let pipelines = move || {
        app.workspace.with(|ws| {
            ws.ordered_pipelines(false).into_iter().map(|(id, p)| (id.clone(), p.name.clone())).collect::<Vec<_>>()
        })
    };
    let list_link = move |close: &str| {
        let p = pipeline.get().map(|p| format!("&pipeline={p}")).unwrap_or_default();
        browser::href(&format!("/deals?view=list&status=open&close={close}{p}"))
    };

    view! {
        <section class="page forecast-page">
            <div class="page-head">
                <h1>"Forecast"</h1>
                <label class="sort">
                    <span>"Pipeline"</span>
                    <select aria-label="Pipeline" on:change=move |ev| set.with_value(|s| s("pipeline", event_target_value(&ev)))>
                        <option value="" selected=move || pipeline.get().is_none()>"All pipelines"</option>
                        {move || pipelines().into_iter().map(|(id, name)| {
                            let selected = pipeline.get().as_deref() == Some(id.as_str());
                            view! { <option value=id selected=selected>{name}</option> }
                        }).collect_view()}
                    </select>
                </label>
            </div>
            <p class="muted intro">
                {format!("The next {MONTHS} months from {}. Open deals count at value × probability in the month they are expected to close; won deals count in full; lost deals not at all. Currencies are never converted.", from.label())}
            </p>
            {move || {
                if deals.with(Vec::is_empty) {
                    return view! {
                        <div class="empty" data-testid="empty-forecast">
                            <h2>"Nothing to forecast yet"</h2>
                            <p>"Add deals with a value and an expected close date; the forecast adds them up by month and by owner."</p>
                            <a class="btn primary" href=browser::href("/deals/new")>"Add a deal"</a>
                        </div>
                    }.into_any();
                }
                let f = result.get();
                view! {
                    {currencies(&f).into_iter().map(|c| view! { <CurrencyChart forecast=f.clone() currency=c/> }).collect_view()}
                    <div class="card">
                        <h2 id="owners-h">"By owner"</h2>
                        {if f.owners.is_empty() {
                            view! { <p class="muted">{format!("No deals are expected to close between {} and {}.", from.label(), f.months.last().map(|(m, _)| m.label()).unwrap_or_default())}</p> }.into_any()
                        } else {
                            view! {
                                <div class="table-wrap">
                                    <table class="data-table" aria-labelledby="owners-h" data-testid="owner-table">
                                        <thead><tr>
                                            <th scope="col">"Owner"</th>
                                            <th scope="col" class="num">"Open deals"</th>
                                            <th scope="col" class="num">"Weighted"</th>
                                            <th scope="col" class="num">"Won deals"</th>
                                            <th scope="col" class="num">"Won"</th>
                                        </tr></thead>
                                        <tbody>
                                            {f.owners.iter().map(|(owner, line)| {
                                                let name = owner.map(|o| app.workspace.with(|w| w.member_name(o))).unwrap_or_else(|| "No owner".into());
                                                view! {
                                                    <tr data-testid="owner-row">
                                                        <th scope="row">{name}</th>
                                                        <td class="num">{line.open_deals}</td>
                                                        <td class="num" data-testid="owner-weighted">{full(&line.weighted)}</td>
                                                        <td class="num">{line.won_deals}</td>
                                                        <td class="num">{full(&line.won)}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }}
                    </div>
                    <div class="card attention">
                        <h2>"Needs a date"</h2>
                        <p class="muted small">"These open deals are not in the months above."</p>
                        <ul class="plain-list">
                            <AttentionLine testid="overdue-line" label="Close date passed" line=f.overdue.clone()
                                detail=format!("expected to close before {}", from.label()) href=list_link("passed") action="Review them"/>
                            <AttentionLine testid="undated-line" label="No close date" line=f.undated.clone()
                                detail="no expected close date".into() href=list_link("none") action="Give them a date"/>
                        </ul>
                    </div>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn AttentionLine(
    testid: &'static str,
    label: &'static str,
    line: Line,
    detail: String,
    href: String,
    action: &'static str,
) -> impl IntoView {
    let n = line.open_deals;
    view! {
        <li class="row-between" data-testid=testid>
            <span>
                <strong>{label}</strong>": "
                <span data-testid="attention-count">{format!("{n} open {}", if n == 1 { "deal" } else { "deals" })}</span>
                <span class="muted">{format!(" {detail}")}{(n > 0).then(|| format!(" · {} weighted", full(&line.weighted)))}</span>
            </span>
            {(n > 0).then(|| view! { <a class="btn small" href=href aria-label=format!("{action}: {label}")>{action}</a> })}
        </li>
    }
}

/// The months of one currency as bars (won in full, then weighted open),
/// with the target line for the workspace currency, and the same numbers
/// as a table.
#[component]
fn CurrencyChart(forecast: Forecast, currency: String) -> impl IntoView {
    let target = (currency == forecast.currency).then_some(forecast.target).flatten();
    let months: Vec<(Month, i64, i64, usize)> = forecast
        .months
        .iter()
        .map(|(m, l)| (*m, l.weighted.get(&currency), l.won.get(&currency), l.deals_in(&currency)))
        .collect();
    let top = months.iter().map(|(_, w, won, _)| w + won).chain(target).max().unwrap_or(0).max(1);
    let pct = move |v: i64| format!("{:.2}%", v as f64 * 100.0 / top as f64);
    let heading = format!("Expected by month, {currency}");
    let heading_id = format!("chart-h-{currency}");
    let summary_id = format!("chart-table-{currency}");
    let cur = currency.clone();
    view! {
        <div class="card forecast-card" data-testid="forecast-chart" data-currency=currency.clone()>
            <h2 id=heading_id.clone()>{heading}</h2>
            <div class="legend muted small" aria-hidden="true">
                <span class="key won"></span>"Won" <span class="key weighted"></span>"Weighted open"
                {target.map(|t| view! { <span class="key target"></span>{format!("Target {}", money::format_short(t, &cur))} })}
            </div>
            // The bars repeat the table below; screen readers read the table.
            <div class="bars" class:with-target=target.is_some() aria-hidden="true">
                {target.map(|t| view! {
                    <div class="target-zone">
                        <div class="target-line" style:bottom=pct(t)>
                            <span>{format!("Target {}", money::format_short(t, &cur))}</span>
                        </div>
                    </div>
                })}
                {months.iter().map(|(m, weighted, won, _)| {
                    let total = weighted + won;
                    let met = target.is_some_and(|t| total >= t);
                    view! {
                        <div class="bar-col">
                            <div class="bar-stack" style:height=pct(total)>
                                <span class="bar-value" class:met=met>{money::format_short(total, &cur)}</span>
                                <div class="bar won" style:flex-grow=won.to_string()></div>
                                <div class="bar weighted" style:flex-grow=weighted.to_string()></div>
                            </div>
                            <span class="bar-month">{m.first_day().format("%b").to_string()}</span>
                        </div>
                    }
                }).collect_view()}
            </div>
            <div class="table-wrap">
                <table class="data-table" id=summary_id aria-labelledby=heading_id data-testid="month-table">
                    <thead><tr>
                        <th scope="col">"Month"</th>
                        <th scope="col" class="num">"Deals"</th>
                        <th scope="col" class="num">"Weighted open"</th>
                        <th scope="col" class="num">"Won"</th>
                        <th scope="col" class="num">"Expected"</th>
                        {target.map(|_| view! { <th scope="col" class="num">"Against target"</th> })}
                    </tr></thead>
                    <tbody>
                        {months.into_iter().map(|(m, weighted, won, n)| {
                            let total = weighted + won;
                            view! {
                                <tr data-testid="month-row">
                                    <th scope="row">{m.label()}</th>
                                    <td class="num">{n}</td>
                                    <td class="num" data-testid="month-weighted">{money::format(weighted, &currency)}</td>
                                    <td class="num">{money::format(won, &currency)}</td>
                                    <td class="num" data-testid="month-total">{money::format(total, &currency)}</td>
                                    {target.map(|t| {
                                        let share = (total as f64 * 100.0 / t.max(1) as f64).round();
                                        view! { <td class="num">{format!("{share}%")}</td> }
                                    })}
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </div>
    }
}
