//! The team calendar: tasks by due date and meetings by their time, laid
//! out in weeks (Monday first) for a week or a month view, for one member
//! or the whole team.
//!
//! Meetings are stored as instants; the app passes a function that turns
//! one into the viewer's local date and time (the browser knows the zone),
//! which keeps this module pure and testable with a fixed offset.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime};

use crate::ids::{MemberId, RecordId};
use crate::record::{RecordKind, Row};
use crate::Timestamp;

use super::activity::{self, ActivityKind};
use super::task::TaskFacts;

/// What a calendar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Task { done: bool },
    Meeting,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: RecordId,
    pub kind: EntryKind,
    pub title: String,
    pub date: NaiveDate,
    /// `None` for an all-day task.
    pub time: Option<NaiveTime>,
    pub duration_minutes: Option<u32>,
    /// Assignee of a task; participants of a meeting.
    pub members: Vec<MemberId>,
}

/// Entries between `first` and `last` (inclusive), by day, each day sorted
/// all-day first, then by time and title. `member` keeps one member's
/// entries (tasks assigned to them, meetings they take part in).
pub fn entries<'a>(
    rows: impl IntoIterator<Item = &'a Row>,
    first: NaiveDate,
    last: NaiveDate,
    member: Option<MemberId>,
    to_local: impl Fn(Timestamp) -> NaiveDateTime,
) -> BTreeMap<NaiveDate, Vec<Entry>> {
    let mut out: BTreeMap<NaiveDate, Vec<Entry>> = BTreeMap::new();
    for row in rows {
        let entry = match row.kind {
            RecordKind::Task => TaskFacts::from_row(row).and_then(|t| {
                Some(Entry {
                    id: t.id,
                    kind: EntryKind::Task { done: t.done },
                    title: t.title,
                    date: t.due_date?,
                    time: t.due_time,
                    duration_minutes: None,
                    members: t.assignee.into_iter().collect(),
                })
            }),
            RecordKind::Activity
                if !row.deleted && row.column(activity::columns::TYPE) == ActivityKind::Meeting.as_str() =>
            {
                let local = to_local(activity::at(row));
                let mut members: Vec<MemberId> = row
                    .column(activity::columns::PARTICIPANTS)
                    .split_whitespace()
                    .filter_map(|m| m.parse().ok())
                    .collect();
                if members.is_empty() {
                    members.extend(row.column("owner").parse::<MemberId>().ok());
                }
                Some(Entry {
                    id: row.id,
                    kind: EntryKind::Meeting,
                    title: row.title.clone(),
                    date: local.date(),
                    time: Some(local.time()),
                    duration_minutes: row.column(activity::columns::DURATION).parse().ok(),
                    members,
                })
            }
            _ => None,
        };
        let Some(entry) = entry else { continue };
        if entry.date < first || entry.date > last || member.is_some_and(|m| !entry.members.contains(&m)) {
            continue;
        }
        out.entry(entry.date).or_default().push(entry);
    }
    for day in out.values_mut() {
        day.sort_by(|a, b| (a.time, &a.title, a.id).cmp(&(b.time, &b.title, b.id)));
    }
    out
}

/// The Monday that starts `date`'s week.
pub fn week_start(date: NaiveDate) -> NaiveDate {
    date - Days::new(u64::from(date.weekday().num_days_from_monday()))
}

/// The seven days of `date`'s week, Monday first.
pub fn week(date: NaiveDate) -> [NaiveDate; 7] {
    let start = week_start(date);
    std::array::from_fn(|i| start + Days::new(i as u64))
}

/// The weeks shown for the month of `date`: from the Monday on or before
/// the 1st to the Sunday on or after the last day (four to six weeks).
pub fn month_grid(date: NaiveDate) -> Vec<[NaiveDate; 7]> {
    let first = date.with_day(1).unwrap_or(date);
    let last = first.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).unwrap_or(first);
    let mut weeks = Vec::new();
    let mut monday = week_start(first);
    while monday <= last {
        weeks.push(week(monday));
        monday = monday + Days::new(7);
    }
    weeks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::sales::activity::Activity;
    use crate::sales::task::Task;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn member(n: u8) -> MemberId {
        MemberId::from_bytes([n; 16])
    }

    /// UTC+1, like Paris in winter.
    fn paris(t: Timestamp) -> NaiveDateTime {
        chrono::DateTime::from_timestamp_millis(t.as_millis() + 3_600_000).unwrap().naive_utc()
    }

    #[test]
    fn month_grids_start_on_monday_and_cover_the_month() {
        // November 2026 starts on a Sunday and ends on a Monday: six weeks.
        let grid = month_grid(d(2026, 11, 23));
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[0][0], d(2026, 10, 26));
        assert_eq!(grid[5][6], d(2026, 12, 6));
        // February 2027 starts on a Monday and has exactly four weeks.
        let feb = month_grid(d(2027, 2, 10));
        assert_eq!(feb.len(), 4);
        assert_eq!((feb[0][0], feb[3][6]), (d(2027, 2, 1), d(2027, 2, 28)));
        assert_eq!(week(d(2026, 11, 23))[0], d(2026, 11, 23));
        assert_eq!(week(d(2026, 11, 29))[0], d(2026, 11, 23));
    }

    #[test]
    fn tasks_and_meetings_land_on_their_local_day_for_the_chosen_member() {
        let mut t = Task::new(RecordId::from_bytes([1; 16]), Timestamp::from_millis(0), member(1));
        t.title = "Send quote".into();
        t.due_date = Some(d(2026, 11, 24));
        let mut other = t.clone();
        other.id = RecordId::from_bytes([2; 16]);
        other.assignee = Some(member(2));
        other.due_time = NaiveTime::from_hms_opt(8, 0, 0);
        // 23:30 UTC on the 24th is 00:30 on the 25th in Paris.
        let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap().and_hms_opt(23, 30, 0).unwrap().and_utc();
        let mut meeting = Activity::new(
            RecordId::from_bytes([3; 16]),
            ActivityKind::Meeting,
            Timestamp::from_millis(at.timestamp_millis()),
            Timestamp::from_millis(0),
            member(1),
        );
        meeting.participants.insert(member(2));
        let call = Activity::new(RecordId::from_bytes([4; 16]), ActivityKind::Call, meeting.at, meeting.at, member(1));
        let rows = [t.row(), other.row(), meeting.row(), call.row()];
        let all = entries(&rows, d(2026, 11, 23), d(2026, 11, 29), None, paris);
        assert_eq!(all[&d(2026, 11, 24)].iter().map(|e| e.id).collect::<Vec<_>>(), [t.id, other.id]);
        assert_eq!(all[&d(2026, 11, 25)][0].kind, EntryKind::Meeting);
        assert_eq!(all[&d(2026, 11, 25)][0].time, NaiveTime::from_hms_opt(0, 30, 0));
        let mine = entries(&rows, d(2026, 11, 23), d(2026, 11, 29), Some(member(1)), paris);
        assert_eq!(mine.values().flatten().count(), 2, "my task and the meeting I am in");
        let theirs = entries(&rows, d(2026, 11, 23), d(2026, 11, 29), Some(member(2)), paris);
        assert_eq!(theirs.values().flatten().count(), 2);
        let next_week = entries(&rows, d(2026, 11, 30), d(2026, 12, 6), None, paris);
        assert!(next_week.is_empty());
    }
}
