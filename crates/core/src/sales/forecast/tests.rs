use super::*;
use crate::ids::EntryId;
use crate::record::Record;
use crate::sales::deal::Deal;

fn member(n: u8) -> MemberId {
    MemberId::from_bytes([n; 16])
}

fn ws() -> Workspace {
    let mut ws = Workspace::new(RecordId::from_bytes([9; 16]), "Acme", member(1), "Sam", Timestamp::from_millis(1));
    ws.monthly_target = Some(2_000_000);
    ws
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A deal row in `stage` of the default pipeline, worth `euros`.
fn deal(n: u8, stage: &str, euros: i64, close: Option<NaiveDate>, owner: u8) -> Row {
    let ws = ws();
    let mut d = Deal::new(
        RecordId::from_bytes([n; 16]),
        "sales".into(),
        "lead".into(),
        EntryId::from_bytes([n; 16]),
        Timestamp::from_millis(1),
        member(owner),
    );
    d.title = format!("Deal {n}");
    d.value = euros * 100;
    d.expected_close = close;
    d.move_to(
        &ws,
        "sales",
        stage,
        "reason",
        EntryId::from_bytes([n + 100; 16]),
        Timestamp::from_millis(2),
        date(2026, 11, 23),
        member(owner),
    )
    .unwrap();
    d.row()
}

#[test]
fn board_columns_hold_their_deals_and_hand_computed_totals() {
    let ws = ws();
    let mut gbp = deal(4, "proposal", 1_000, None, 1);
    gbp.columns.insert(columns::CURRENCY.into(), "GBP".into());
    let mut deleted = deal(6, "lead", 999, None, 1);
    deleted.deleted = true;
    let rows = [
        deal(1, "lead", 10_000, Some(date(2026, 12, 1)), 1),
        deal(2, "lead", 5_000, Some(date(2026, 11, 30)), 2),
        deal(3, "proposal", 20_000, None, 1),
        gbp,
        deal(5, "won", 7_000, Some(date(2026, 11, 2)), 2),
        deleted,
    ];
    let deals = DealFacts::all(&rows);
    let cols = board(&deals, &ws, "sales");
    let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]);
    // Lead: 10,000 + 5,000 at 10% = 1,500.
    assert_eq!(cols[0].value.get("EUR"), 1_500_000);
    assert_eq!(cols[0].weighted.get("EUR"), 150_000);
    assert_eq!(
        cols[0].deals.iter().map(|d| d.title.as_str()).collect::<Vec<_>>(),
        ["Deal 2", "Deal 1"],
        "soonest close first"
    );
    // Proposal: EUR 20,000 at 50% and GBP 1,000 at 50%, kept apart.
    assert_eq!((cols[2].value.get("EUR"), cols[2].weighted.get("EUR")), (2_000_000, 1_000_000));
    assert_eq!((cols[2].value.get("GBP"), cols[2].weighted.get("GBP")), (100_000, 50_000));
    assert_eq!(cols[4].weighted.get("EUR"), 700_000, "won counts fully");
    assert!(
        cols.iter().all(|c| c.deals.iter().all(|d| d.id != RecordId::from_bytes([6; 16]))),
        "deleted deals are gone"
    );
}

#[test]
fn deals_in_an_unknown_or_archived_stage_stay_on_the_board() {
    let mut ws = ws();
    let mut odd = deal(1, "lead", 100, None, 1);
    odd.columns.insert(columns::STAGE.into(), "from-a-newer-app".into());
    let rows = [odd, deal(2, "qualified", 100, None, 1)];
    ws.pipelines.get_mut("sales").unwrap().archive_stage("qualified").unwrap();
    ws.pipelines.get_mut("sales").unwrap().archive_stage("proposal").unwrap();
    let cols = board(&DealFacts::all(&rows), &ws, "sales");
    let names: Vec<_> = cols.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Lead", "Qualified", "Negotiation", "Won", "Lost", "Other stage"]);
}

#[test]
fn the_forecast_weights_open_deals_by_close_month_and_owner() {
    let ws = ws();
    let rows = [
        deal(1, "lead", 10_000, Some(date(2026, 12, 1)), 1), // Dec: 1,000 weighted
        deal(2, "negotiation", 8_000, Some(date(2026, 12, 20)), 2), // Dec: 6,000 weighted
        deal(3, "proposal", 4_000, Some(date(2026, 11, 5)), 1), // Nov: 2,000 weighted
        deal(4, "won", 3_000, Some(date(2026, 11, 2)), 2),   // Nov: 3,000 won
        deal(5, "lost", 9_000, Some(date(2026, 11, 2)), 1),  // not counted
        deal(6, "qualified", 2_000, Some(date(2026, 10, 31)), 1), // close date passed
        deal(7, "qualified", 1_000, None, 2),                // no date
        deal(8, "lead", 50_000, Some(date(2027, 3, 1)), 1),  // outside the window
    ];
    let f = forecast(&DealFacts::all(&rows), &ws, Month { year: 2026, month: 11 }, 3, None);
    let months: Vec<_> = f.months.iter().map(|(m, l)| (m.label(), l.weighted.get("EUR"), l.won.get("EUR"))).collect();
    assert_eq!(
        months,
        [("Nov 2026".into(), 200_000, 300_000), ("Dec 2026".into(), 700_000, 0), ("Jan 2027".into(), 0, 0)]
    );
    assert_eq!(f.months[1].1.open.get("EUR"), 1_800_000);
    assert_eq!((f.overdue.open_deals, f.overdue.weighted.get("EUR")), (1, 50_000));
    assert_eq!((f.undated.open_deals, f.undated.weighted.get("EUR")), (1, 25_000));
    let owners: Vec<_> = f.owners.iter().map(|(o, l)| (*o, l.weighted.get("EUR"), l.won.get("EUR"))).collect();
    assert_eq!(owners, [(Some(member(2)), 600_000, 300_000), (Some(member(1)), 300_000, 0)]);
    assert_eq!(f.target, Some(2_000_000));
}

#[test]
fn a_forecast_can_be_limited_to_one_pipeline() {
    let ws = ws();
    let mut other = deal(1, "lead", 10_000, Some(date(2026, 11, 30)), 1);
    other.columns.insert(columns::PIPELINE.into(), "partners".into());
    let rows = [other, deal(2, "lead", 10_000, Some(date(2026, 11, 30)), 1)];
    let all = forecast(&DealFacts::all(&rows), &ws, Month { year: 2026, month: 11 }, 1, None);
    let sales = forecast(&DealFacts::all(&rows), &ws, Month { year: 2026, month: 11 }, 1, Some("sales"));
    assert_eq!(all.months[0].1.open_deals, 2);
    assert_eq!(sales.months[0].1.open_deals, 1);
}

#[test]
fn each_currency_counts_only_its_own_deals() {
    let ws = ws();
    let in_usd = |n: u8, stage: &str| {
        let mut row = deal(n, stage, 1_000, Some(date(2027, 1, 15)), 1);
        row.columns.insert(columns::CURRENCY.into(), "USD".into());
        row
    };
    let rows = [
        deal(1, "lead", 10_000, Some(date(2027, 1, 10)), 1),
        deal(2, "won", 5_000, Some(date(2027, 1, 12)), 1),
        deal(3, "lost", 5_000, Some(date(2027, 1, 12)), 1),
        in_usd(4, "lead"),
    ];
    let f = forecast(&DealFacts::all(&rows), &ws, Month { year: 2027, month: 1 }, 1, None);
    let jan = &f.months[0].1;
    assert_eq!((jan.deals_in("EUR"), jan.deals_in("USD"), jan.deals_in("GBP")), (2, 1, 0));
    assert_eq!(jan.open_deals + jan.won_deals, 3, "the totals still count every currency");
}
