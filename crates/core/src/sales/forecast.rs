//! What is computed from deal rows: the pipeline board's columns with their
//! totals, and the weighted forecast by expected-close month and by owner.
//!
//! Everything here reads rows (no documents) and the workspace's pipeline
//! settings, so the board and forecast of a large workspace are one pass
//! over memory. Amounts stay per currency ([`Totals`]): nothing is converted.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::ids::{MemberId, RecordId};
use crate::record::{RecordKind, Row};
use crate::workspace::Workspace;
use crate::Timestamp;

use super::deal::{self, columns, Standing};
use super::money::Totals;
use super::pipeline::{Outcome, StageId};

/// What the board and forecast need of a deal, read from its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealFacts {
    pub id: RecordId,
    pub title: String,
    pub owner: Option<MemberId>,
    pub value: i64,
    pub currency: String,
    pub pipeline: String,
    pub stage: StageId,
    pub status: Outcome,
    pub probability: Option<u8>,
    pub close: Option<NaiveDate>,
    pub company: Option<RecordId>,
    pub updated_at: Timestamp,
}

impl DealFacts {
    /// `None` for a row that is not a live deal.
    pub fn from_row(row: &Row) -> Option<Self> {
        if row.kind != RecordKind::Deal || row.deleted {
            return None;
        }
        Some(Self {
            id: row.id,
            title: row.title.clone(),
            owner: row.column("owner").parse().ok(),
            value: row.column(columns::VALUE).parse().unwrap_or(0),
            currency: match row.column(columns::CURRENCY) {
                "" => "EUR".to_owned(),
                c => c.to_owned(),
            },
            pipeline: row.column(columns::PIPELINE).to_owned(),
            stage: row.column(columns::STAGE).to_owned(),
            status: Outcome::parse(row.column(columns::STATUS)).unwrap_or_default(),
            probability: row.column(columns::PROBABILITY).parse().ok(),
            close: NaiveDate::parse_from_str(row.column(columns::CLOSE), "%Y-%m-%d").ok(),
            company: row.column(columns::COMPANY).parse().ok(),
            updated_at: row.updated_at,
        })
    }

    /// Live deals among `rows`.
    pub fn all<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Vec<Self> {
        rows.into_iter().filter_map(Self::from_row).collect()
    }

    pub fn probability(&self, ws: &Workspace) -> u8 {
        let standing = Standing {
            pipeline: self.pipeline.clone(),
            stage: self.stage.clone(),
            status: self.status,
            closed_at: None,
            reason: String::new(),
        };
        deal::effective_probability(ws, &standing, self.probability)
    }

    pub fn weighted(&self, ws: &Workspace) -> i64 {
        deal::weighted(self.value, self.probability(ws))
    }
}

/// One column of the board.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// `None` gathers deals whose stage this device does not know (a stage
    /// added on a newer version, or settings not yet synced), so that no deal
    /// disappears from the board.
    pub stage: Option<StageId>,
    pub name: String,
    pub outcome: Outcome,
    /// The stage's default probability.
    pub probability: u8,
    pub archived: bool,
    /// Soonest expected close first, then largest.
    pub deals: Vec<DealFacts>,
    pub value: Totals,
    pub weighted: Totals,
}

/// The board of one pipeline: its stages in order (an archived stage only
/// while deals are still in it), each with its deals and totals.
pub fn board(deals: &[DealFacts], ws: &Workspace, pipeline: &str) -> Vec<Column> {
    let Some(p) = ws.pipelines.get(pipeline) else { return Vec::new() };
    let mut columns: Vec<Column> = p
        .ordered_stages(true)
        .into_iter()
        .map(|(id, s)| Column {
            stage: Some(id.clone()),
            name: s.name.clone(),
            outcome: s.outcome,
            probability: s.probability,
            archived: s.archived,
            deals: Vec::new(),
            value: Totals::default(),
            weighted: Totals::default(),
        })
        .collect();
    let mut unknown = Column {
        stage: None,
        name: "Other stage".into(),
        outcome: Outcome::Open,
        probability: 0,
        archived: false,
        deals: Vec::new(),
        value: Totals::default(),
        weighted: Totals::default(),
    };
    for d in deals.iter().filter(|d| d.pipeline == pipeline) {
        let column = columns.iter_mut().find(|c| c.stage.as_deref() == Some(d.stage.as_str())).unwrap_or(&mut unknown);
        column.value.add(&d.currency, d.value);
        column.weighted.add(&d.currency, d.weighted(ws));
        column.deals.push(d.clone());
    }
    if !unknown.deals.is_empty() {
        columns.push(unknown);
    }
    columns.retain(|c| !c.archived || !c.deals.is_empty());
    for c in &mut columns {
        c.deals.sort_by(|a, b| {
            (a.close.is_none(), a.close, std::cmp::Reverse(a.value), &a.title, a.id).cmp(&(
                b.close.is_none(),
                b.close,
                std::cmp::Reverse(b.value),
                &b.title,
                b.id,
            ))
        });
    }
    columns
}

/// A calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(date: NaiveDate) -> Self {
        Self { year: date.year(), month: date.month() }
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// "Nov 2026".
    pub fn label(self) -> String {
        self.first_day().format("%b %Y").to_string()
    }
}

/// Sums for one row of the forecast.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    /// Open deals: full value.
    pub open: Totals,
    /// Open deals: value × probability.
    pub weighted: Totals,
    /// Won deals.
    pub won: Totals,
    /// Open deals, every currency.
    pub open_deals: usize,
    /// Won deals, every currency.
    pub won_deals: usize,
    /// Open and won deals by currency: a currency's chart counts only its
    /// own deals.
    pub counted: BTreeMap<String, usize>,
}

impl Line {
    fn add(&mut self, d: &DealFacts, ws: &Workspace) {
        match d.status {
            Outcome::Open => {
                self.open.add(&d.currency, d.value);
                self.weighted.add(&d.currency, d.weighted(ws));
                self.open_deals += 1;
            }
            Outcome::Won => {
                self.won.add(&d.currency, d.value);
                self.won_deals += 1;
            }
            Outcome::Lost => return,
        }
        *self.counted.entry(d.currency.clone()).or_default() += 1;
    }

    /// Open and won deals in `currency`.
    pub fn deals_in(&self, currency: &str) -> usize {
        self.counted.get(currency).copied().unwrap_or(0)
    }
}

/// The weighted forecast over a window of months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    /// Every month of the window, in order, even when empty.
    pub months: Vec<(Month, Line)>,
    /// Deals in the window, by owner (`None`: no owner), largest weighted
    /// amount in the workspace currency first.
    pub owners: Vec<(Option<MemberId>, Line)>,
    /// Open deals whose expected close is before the window: they need a
    /// new date (not counted in months or owners).
    pub overdue: Line,
    /// Open deals without an expected close date (not counted either).
    pub undated: Line,
    /// Monthly target in the workspace currency.
    pub target: Option<i64>,
    pub currency: String,
}

/// The forecast for `months` months from `from`, optionally of one
/// pipeline. Open deals count at their weighted value in the month they
/// are expected to close; won deals count fully in their close month; lost
/// deals do not count.
pub fn forecast(deals: &[DealFacts], ws: &Workspace, from: Month, months: u32, pipeline: Option<&str>) -> Forecast {
    let mut window: Vec<(Month, Line)> = Vec::new();
    let mut m = from;
    for _ in 0..months {
        window.push((m, Line::default()));
        m = m.next();
    }
    let end = m;
    let mut owners: BTreeMap<Option<MemberId>, Line> = BTreeMap::new();
    let mut overdue = Line::default();
    let mut undated = Line::default();
    for d in deals.iter().filter(|d| pipeline.is_none_or(|p| d.pipeline == p)) {
        match d.close.map(Month::of) {
            None if d.status == Outcome::Open => undated.add(d, ws),
            Some(month) if month < from && d.status == Outcome::Open => overdue.add(d, ws),
            Some(month) if month >= from && month < end => {
                if let Some((_, line)) = window.iter_mut().find(|(m, _)| *m == month) {
                    line.add(d, ws);
                }
                owners.entry(d.owner).or_default().add(d, ws);
            }
            _ => {}
        }
    }
    let mut owners: Vec<_> = owners.into_iter().collect();
    owners.sort_by(|a, b| b.1.weighted.get(&ws.currency).cmp(&a.1.weighted.get(&ws.currency)).then(a.0.cmp(&b.0)));
    Forecast { months: window, owners, overdue, undated, target: ws.monthly_target, currency: ws.currency.clone() }
}

#[cfg(test)]
mod tests;
