//! The calendar (`/calendar`): a week or a month of tasks (by due date and
//! time) and meetings (activities of kind meeting, at their local time),
//! for me, a teammate or the whole team. Read from rows only, laid out by
//! core's `sales::calendar`. Each entry links to its record: a task to its
//! edit page, a meeting to the live record it was logged against (plain
//! text when there is none). On a phone the week is a list of days.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime};
use leptos::prelude::*;
use rapport_core::ids::{MemberId, RecordId};
use rapport_core::sales::calendar::{self, EntryKind};

use super::record_path;
use super::tasks::{filter_member, live_target, use_clock, MemberFilter};
use crate::browser;
use crate::state::use_app;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Week,
    Month,
}

/// Entries shown in a month cell before "n more".
const MONTH_CELL_ENTRIES: usize = 3;

/// A calendar entry ready to show.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    id: RecordId,
    kind: EntryKind,
    title: String,
    time: Option<NaiveTime>,
    end: Option<NaiveTime>,
    href: Option<String>,
    members: Vec<MemberId>,
}

fn week_title(days: &[NaiveDate; 7]) -> String {
    let (a, b) = (days[0], days[6]);
    if a.year() != b.year() {
        format!("{} – {}", a.format("%-d %b %Y"), b.format("%-d %b %Y"))
    } else if a.month() != b.month() {
        format!("{} – {}", a.format("%-d %b"), b.format("%-d %b %Y"))
    } else {
        format!("{} – {}", a.format("%-d"), b.format("%-d %b %Y"))
    }
}

fn long_day(d: NaiveDate) -> String {
    d.format("%A %-d %B").to_string()
}

#[component]
pub fn CalendarPage() -> impl IntoView {
    let app = use_app();
    let mode = RwSignal::new(Mode::Week);
    let anchor = RwSignal::new(browser::today());
    let who = RwSignal::new("me".to_owned());
    let clock = use_clock();
    let today = Memo::new(move |_| clock.get().date());

    let weeks = Memo::new(move |_| match mode.get() {
        Mode::Week => vec![calendar::week(anchor.get())],
        Mode::Month => calendar::month_grid(anchor.get()),
    });
    let entries = Memo::new(move |_| {
        let (first, last) = weeks.with(|w| (w.first().map(|d| d[0]), w.last().map(|d| d[6])));
        let (Some(first), Some(last)) = (first, last) else { return BTreeMap::new() };
        let member = filter_member(app, &who.get());
        app.index.with(|i| {
            calendar::entries(i.rows(), first, last, member, browser::to_local)
                .into_iter()
                .map(|(day, list)| {
                    let shown =
                        list.into_iter()
                            .map(|e| {
                                let href = match e.kind {
                                    EntryKind::Task { .. } => record_path(rapport_core::record::RecordKind::Task, e.id),
                                    EntryKind::Meeting => i
                                        .get(e.id)
                                        .and_then(|row| live_target(i, row))
                                        .and_then(|(kind, id)| record_path(kind, id)),
                                };
                                let end =
                                    e.time.zip(e.duration_minutes).filter(|(_, m)| *m > 0).map(|(t, m)| {
                                        t.overflowing_add_signed(chrono::Duration::minutes(i64::from(m))).0
                                    });
                                Shown {
                                    id: e.id,
                                    kind: e.kind,
                                    title: e.title,
                                    time: e.time,
                                    end,
                                    href,
                                    members: e.members,
                                }
                            })
                            .collect::<Vec<_>>();
                    (day, shown)
                })
                .collect::<BTreeMap<_, _>>()
        })
    });

    let step = move |forward: bool| {
        anchor.update(|a| {
            *a = match (mode.get_untracked(), forward) {
                (Mode::Week, true) => *a + Days::new(7),
                (Mode::Week, false) => *a - Days::new(7),
                (Mode::Month, true) => a.with_day(1).and_then(|d| d.checked_add_months(Months::new(1))).unwrap_or(*a),
                (Mode::Month, false) => a.with_day(1).and_then(|d| d.checked_sub_months(Months::new(1))).unwrap_or(*a),
            }
        })
    };
    let unit = move || if mode.get() == Mode::Week { "week" } else { "month" };
    let title = move || match mode.get() {
        Mode::Week => week_title(&calendar::week(anchor.get())),
        Mode::Month => anchor.get().format("%B %Y").to_string(),
    };
    let team = move || who.with(|w| w == "all");
    let names = move |members: &[MemberId]| {
        app.workspace.with_untracked(|w| members.iter().map(|m| w.member_name(*m)).collect::<Vec<_>>().join(", "))
    };
    let count = move || entries.with(|e| e.values().map(Vec::len).sum::<usize>());

    let entry_view = move |e: Shown, with_names: bool, compact: bool| {
        let (class, kind_text) = match e.kind {
            EntryKind::Task { done: true } => ("cal-entry task done", "task, done"),
            EntryKind::Task { done: false } => ("cal-entry task", "task"),
            EntryKind::Meeting => ("cal-entry meeting", "meeting"),
        };
        let time = match (e.time, e.end) {
            (Some(t), Some(end)) if !compact => format!("{}–{}", t.format("%H:%M"), end.format("%H:%M")),
            (Some(t), _) => t.format("%H:%M").to_string(),
            (None, _) => String::new(),
        };
        let who = (with_names && !e.members.is_empty()).then(|| names(&e.members));
        let inner = view! {
            <span class="cal-mark" aria-hidden="true"></span>
            {(!time.is_empty()).then(|| view! { <span class="cal-time">{time}</span> })}
            <span class="cal-title">{e.title.clone()}</span>
            <span class="visually-hidden">{format!(", {kind_text}")}</span>
            {who.map(|w| view! { <span class="cal-who">{w}</span> })}
        };
        match e.href {
            Some(path) => {
                view! { <a class=class href=browser::href(&path) data-testid="cal-entry">{inner}</a> }.into_any()
            }
            None => view! { <span class=class data-testid="cal-entry">{inner}</span> }.into_any(),
        }
    };

    let week_view = move || {
        let days = weeks.with(|w| w.first().copied());
        let Some(days) = days else { return ().into_any() };
        let with_names = team();
        view! {
            <div class="cal-week" data-testid="cal-week">
                {days.into_iter().map(|day| {
                    let list = entries.with(|e| e.get(&day).cloned().unwrap_or_default());
                    let is_today = day == today.get();
                    let head_id = format!("cal-day-{day}");
                    view! {
                        <section class="cal-day" class:today=is_today aria-labelledby=head_id.clone() data-date=day.to_string()>
                            <h2 class="cal-day-head" id=head_id.clone()>
                                <span class="dow">{day.format("%a").to_string()}</span>
                                <span class="dnum">{day.day()}</span>
                                <span class="dlong">{day.format("%B").to_string()}</span>
                                {is_today.then(|| view! { <span class="today-chip">"Today"</span> })}
                                <span class="visually-hidden">{format!(" ({})", long_day(day))}</span>
                            </h2>
                            {if list.is_empty() {
                                view! { <p class="cal-none">"Nothing planned"</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="cal-entries">
                                        {list.into_iter().map(|e| view! { <li>{entry_view(e, with_names, false)}</li> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        </section>
                    }
                }).collect_view()}
            </div>
        }
        .into_any()
    };

    let month_view = move || {
        let month = anchor.get().month();
        view! {
            <div class="cal-month" data-testid="cal-month">
                <div class="cal-dows" aria-hidden="true">
                    {["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map(|d| view! { <span>{d}</span> }).collect_view()}
                </div>
                {weeks.get().into_iter().map(|days| view! {
                    <div class="cal-row">
                        {days.into_iter().map(|day| {
                            let list = entries.with(|e| e.get(&day).cloned().unwrap_or_default());
                            let more = list.len().saturating_sub(MONTH_CELL_ENTRIES);
                            let is_today = day == today.get();
                            view! {
                                <div class="cal-cell" class:other-month=day.month() != month class:today=is_today
                                    role="group" aria-label=long_day(day) data-date=day.to_string()>
                                    <button class="cal-dnum" aria-label=format!("{}, {}: show that week", day.day(), long_day(day))
                                        on:click=move |_| { anchor.set(day); mode.set(Mode::Week); }>{day.day()}</button>
                                    {(!list.is_empty()).then(|| view! {
                                        <ul class="cal-entries">
                                            {list.into_iter().take(MONTH_CELL_ENTRIES).map(|e| view! { <li>{entry_view(e, false, true)}</li> }).collect_view()}
                                        </ul>
                                    })}
                                    {(more > 0).then(|| view! {
                                        <button class="cal-more" aria-label=format!("{more} more on {}: show that week", long_day(day))
                                            on:click=move |_| { anchor.set(day); mode.set(Mode::Week); }>
                                            {format!("{more} more")}
                                        </button>
                                    })}
                                </div>
                            }
                        }).collect_view()}
                    </div>
                }).collect_view()}
            </div>
        }
    };

    view! {
        <section class="page calendar-page">
            <div class="page-head">
                <h1>"Calendar"</h1>
                <a class="btn primary" href=browser::href("/tasks/new")>"New task"</a>
            </div>
            <div class="toolbar cal-toolbar">
                <div class="btn-group" role="group" aria-label="Move in time">
                    <button class="btn" aria-label=move || format!("Previous {}", unit()) on:click=move |_| step(false)>"‹"</button>
                    <button class="btn" on:click=move |_| anchor.set(today.get_untracked())>"Today"</button>
                    <button class="btn" aria-label=move || format!("Next {}", unit()) on:click=move |_| step(true)>"›"</button>
                </div>
                <h2 class="cal-range" aria-live="polite" data-testid="cal-range">{title}</h2>
                <div class="btn-group segmented" role="group" aria-label="View">
                    <button class="btn" class:active=move || mode.get() == Mode::Week
                        aria-pressed=move || if mode.get() == Mode::Week { "true" } else { "false" }
                        on:click=move |_| mode.set(Mode::Week)>"Week"</button>
                    <button class="btn" class:active=move || mode.get() == Mode::Month
                        aria-pressed=move || if mode.get() == Mode::Month { "true" } else { "false" }
                        on:click=move |_| mode.set(Mode::Month)>"Month"</button>
                </div>
                <MemberFilter id="cal-member" label="Show" everyone="Whole team" value=who/>
            </div>
            <p class="cal-legend muted small">
                <span class="cal-key meeting"><span class="cal-mark" aria-hidden="true"></span>"Meeting"</span>
                <span class="cal-key task"><span class="cal-mark" aria-hidden="true"></span>"Task"</span>
                <span>{move || match count() {
                    0 => format!("Nothing this {}. Tasks with a due date and meetings logged on a record show here.", unit()),
                    1 => "1 entry".to_owned(),
                    n => format!("{n} entries"),
                }}</span>
            </p>
            {move || match mode.get() {
                Mode::Week => week_view(),
                Mode::Month => month_view().into_any(),
            }}
        </section>
    }
}
