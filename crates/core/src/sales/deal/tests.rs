use automerge::AutoCommit;
use proptest::prelude::*;

use super::*;

fn me() -> MemberId {
    MemberId::from_bytes([1; 16])
}

fn ws() -> Workspace {
    Workspace::new(RecordId::from_bytes([9; 16]), "Acme", me(), "Sam", Timestamp::from_millis(1))
}

fn entry(n: u8) -> EntryId {
    EntryId::from_bytes([n; 16])
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

fn deal() -> Deal {
    let mut d = Deal::new(
        RecordId::from_bytes([2; 16]),
        "sales".into(),
        "lead".into(),
        entry(1),
        Timestamp::from_millis(10),
        me(),
    );
    d.title = "Widgets for Acme".into();
    d.value = 1_000_000;
    d
}

fn doc_of(d: &Deal) -> AutoCommit {
    let mut doc = AutoCommit::new();
    crate::doc::init_root(&mut doc, "deal", 1).unwrap();
    d.write_doc(&mut doc).unwrap();
    doc
}

#[test]
fn a_deal_round_trips_through_its_document() {
    let mut d = deal();
    d.contacts.insert(RecordId::from_bytes([3; 16]));
    d.company = Some(RecordId::from_bytes([4; 16]));
    d.probability = Some(30);
    d.expected_close = NaiveDate::from_ymd_opt(2027, 1, 31);
    d.tags.insert("renewal".into());
    d.move_to(&ws(), "sales", "proposal", "", entry(2), Timestamp::from_millis(20), today(), me()).unwrap();
    assert_eq!(Deal::from_doc(&doc_of(&d)).unwrap(), d);
}

#[test]
fn moving_records_history_and_follows_the_stage_outcome() {
    let ws = ws();
    let mut d = deal();
    d.move_to(&ws, "sales", "proposal", "", entry(2), Timestamp::from_millis(20), today(), me()).unwrap();
    assert_eq!((d.standing.status, d.standing.closed_at), (Outcome::Open, None));
    assert_eq!(
        d.move_to(&ws, "sales", "lost", " ", entry(3), Timestamp::from_millis(30), today(), me()),
        Err(MoveError::LostNeedsReason)
    );
    assert_eq!(d.standing.stage, "proposal", "a refused move changes nothing");
    d.move_to(&ws, "sales", "won", "Best price", entry(3), Timestamp::from_millis(30), today(), me()).unwrap();
    assert_eq!(d.standing.status, Outcome::Won);
    assert_eq!(d.standing.closed_at, Some(Timestamp::from_millis(30)));
    assert_eq!(d.expected_close, Some(today()), "a won deal without a date closes today");
    assert_eq!(effective_probability(&ws, &d.standing, Some(20)), 100);
    let steps: Vec<_> = d.history_in_order().iter().map(|c| c.to.1.as_str()).collect();
    assert_eq!(steps, ["lead", "proposal", "won"]);
    // Reopening clears the close.
    d.move_to(&ws, "sales", "negotiation", "", entry(4), Timestamp::from_millis(40), today(), me()).unwrap();
    assert_eq!((d.standing.status, d.standing.closed_at, d.standing.reason.as_str()), (Outcome::Open, None, ""));
    assert_eq!(
        d.move_to(&ws, "sales", "nowhere", "", entry(5), Timestamp::from_millis(50), today(), me()),
        Err(MoveError::UnknownStage)
    );
}

#[test]
fn probability_comes_from_the_stage_unless_overridden() {
    let ws = ws();
    let mut d = deal();
    assert_eq!(effective_probability(&ws, &d.standing, d.probability), 10);
    d.probability = Some(35);
    assert_eq!(effective_probability(&ws, &d.standing, d.probability), 35);
    assert_eq!(weighted(1_000_000, 35), 350_000);
    assert_eq!(weighted(5, 50), 3, "rounded half up");
    assert_eq!(weighted(i64::MAX, 100), i64::MAX, "no overflow");
}

#[test]
fn the_form_validates_everything_and_moves_through_the_history() {
    let ws = ws();
    let mut d = deal();
    let before = d.clone();
    let bad = DealForm {
        title: " ".into(),
        value: "12,5x".into(),
        currency: "EUR".into(),
        probability: "120".into(),
        expected_close: "31/01/2027".into(),
        pipeline: "sales".into(),
        stage: "lost".into(),
        ..DealForm::default()
    };
    let errors = bad.apply(&mut d, &ws, entry(2), Timestamp::from_millis(20), today(), me()).unwrap_err();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["expected_close", "probability", "reason", "title", "value"]);
    assert_eq!(d, before);

    let mut good = DealForm::from_deal(&d);
    good.value = "12,500.50".into();
    good.stage = "proposal".into();
    good.probability = String::new();
    good.contacts = vec![RecordId::from_bytes([3; 16]).to_string()];
    good.apply(&mut d, &ws, entry(2), Timestamp::from_millis(20), today(), me()).unwrap();
    assert_eq!(d.value, 1_250_050);
    assert_eq!(d.standing.stage, "proposal");
    assert_eq!(d.history.len(), 2);
    assert_eq!(DealForm::from_deal(&d).value, "12500.50");
}

#[test]
fn a_new_deal_created_straight_into_won_or_lost_closes_without_a_second_history_entry() {
    let ws = ws();
    let new_in = |stage: &str| {
        Deal::new(
            RecordId::from_bytes([5; 16]),
            "sales".into(),
            stage.into(),
            entry(1),
            Timestamp::from_millis(10),
            me(),
        )
    };
    let form = |stage: &str, reason: &str| DealForm {
        title: "Renewal".into(),
        currency: "EUR".into(),
        pipeline: "sales".into(),
        stage: stage.into(),
        reason: reason.into(),
        ..DealForm::default()
    };
    let mut lost = new_in("lost");
    let errors =
        form("lost", "").apply(&mut lost, &ws, entry(2), Timestamp::from_millis(20), today(), me()).unwrap_err();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["reason"], "a lost deal needs a reason even when new");
    form("lost", "Went with a competitor")
        .apply(&mut lost, &ws, entry(2), Timestamp::from_millis(20), today(), me())
        .unwrap();
    assert_eq!(lost.standing.status, Outcome::Lost);
    assert_eq!(lost.standing.closed_at, Some(Timestamp::from_millis(20)));
    assert_eq!(lost.standing.reason, "Went with a competitor");
    assert_eq!(lost.history.len(), 1);

    let mut won = new_in("won");
    form("won", "").apply(&mut won, &ws, entry(2), Timestamp::from_millis(20), today(), me()).unwrap();
    assert_eq!((won.standing.status, won.expected_close, won.history.len()), (Outcome::Won, Some(today()), 1));
    // Saving it again changes nothing more.
    let again = won.clone();
    form("won", "").apply(&mut won, &ws, entry(3), Timestamp::from_millis(30), today(), me()).unwrap();
    assert_eq!((won.standing.clone(), won.history.len()), (again.standing, 1));
}

#[test]
fn erasing_a_contact_scrubs_it_from_the_deal_and_its_row() {
    let mut d = deal();
    let ada = RecordId::from_bytes([3; 16]);
    d.contacts.insert(ada);
    assert!(d.row().column(REFS_COLUMN).contains(&ada.to_string()));
    assert_eq!(d.scrub(ada), ["contacts"]);
    assert!(!d.row().column(REFS_COLUMN).contains(&ada.to_string()));
}

/// A stage in the default pipeline, with a reason when it needs one.
fn stage_strategy() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["lead", "qualified", "proposal", "negotiation", "won", "lost"])
}

proptest! {
    /// Any number of members moving the same deal at once, merged in any
    /// order: every replica ends on the same standing, which is one of the
    /// moves made, with a status that matches that stage, and the history
    /// keeps every move.
    #[test]
    fn concurrent_stage_moves_converge(
        moves in prop::collection::vec(prop::collection::vec(stage_strategy(), 1..4), 2..5),
        order_seed in any::<u64>(),
    ) {
        let ws = ws();
        let mut base = doc_of(&deal());
        let mut replicas: Vec<AutoCommit> = Vec::new();
        let mut made = Vec::new();
        let mut n = 10u8;
        for (r, stages) in moves.iter().enumerate() {
            let mut doc = base.fork().with_actor(automerge::ActorId::from(vec![r as u8 + 1; 16]));
            for stage in stages {
                let mut d = Deal::from_doc(&doc).unwrap();
                n += 1;
                let at = Timestamp::from_millis(100 + i64::from(n));
                let before = d.history.len();
                if d.move_to(&ws, "sales", stage, "reason", entry(n), at, today(), me()).is_ok() && d.history.len() > before {
                    d.write_doc(&mut doc).unwrap();
                    made.push(*stage);
                }
            }
            replicas.push(doc);
        }
        // Merge everything into every replica, each in its own order.
        let mut snapshots: Vec<AutoCommit> = replicas.iter_mut().map(AutoCommit::fork).collect();
        let mut rng = order_seed;
        let mut results = Vec::new();
        for mut doc in replicas {
            let mut others: Vec<usize> = (0..snapshots.len()).collect();
            for i in (1..others.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                others.swap(i, (rng >> 33) as usize % (i + 1));
            }
            for i in others {
                doc.merge(&mut snapshots[i].fork()).unwrap();
            }
            results.push(Deal::from_doc(&doc).unwrap());
        }
        let first = &results[0];
        for r in &results {
            prop_assert_eq!(&r.standing, &first.standing);
            prop_assert_eq!(&r.history, &first.history);
        }
        let stage = ws.stage("sales", &first.standing.stage).unwrap();
        prop_assert_eq!(first.standing.status, stage.outcome, "status matches the winning stage");
        prop_assert!(first.standing.stage == "lead" || made.contains(&first.standing.stage.as_str()));
        prop_assert_eq!(first.history.len(), 1 + made.len(), "every move is in the history");
    }
}
