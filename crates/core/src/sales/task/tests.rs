use super::*;

fn me() -> MemberId {
    MemberId::from_bytes([1; 16])
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, day).unwrap()
}

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

fn task(n: u8, title: &str, due: Option<NaiveDate>, time: Option<NaiveTime>) -> Task {
    let mut task = Task::new(RecordId::from_bytes([n; 16]), Timestamp::from_millis(1), me());
    task.title = title.into();
    task.due_date = due;
    task.due_time = time;
    task
}

fn facts(task: &Task) -> TaskFacts {
    TaskFacts::from_row(&task.row()).unwrap()
}

#[test]
fn a_task_round_trips_through_its_document_and_row() {
    let mut x = task(1, "Call back", Some(d(24)), Some(t(10, 30)));
    x.link = Some(RecordId::from_bytes([5; 16]));
    x.link_kind = Some(RecordKind::Contact);
    x.priority = Priority::High;
    x.notes = "About the renewal".into();
    let mut doc = AutoCommit::new();
    doc::init_root(&mut doc, "task", 1).unwrap();
    x.write_doc(&mut doc).unwrap();
    assert_eq!(Task::from_doc(&doc).unwrap(), x);
    let f = facts(&x);
    assert_eq!((f.due_date, f.due_time, f.priority, f.link), (x.due_date, x.due_time, Priority::High, x.link));
}

#[test]
fn tasks_fall_into_overdue_today_upcoming_and_done() {
    let today = d(23);
    let mut done = task(5, "Done", Some(d(20)), None);
    done.set_done(true, Timestamp::from_millis(2), me());
    let list = [
        task(1, "Yesterday", Some(d(22)), None),
        task(2, "This morning", Some(d(23)), Some(t(9, 0))),
        task(3, "Today", Some(d(23)), None),
        task(4, "Tomorrow", Some(d(24)), None),
        done,
        task(6, "Someday", None, None),
    ];
    let groups = group(list.iter().map(facts), Some(me()), today);
    let titles =
        |b: Bucket| groups.get(&b).map(|l| l.iter().map(|t| t.title.as_str()).collect::<Vec<_>>()).unwrap_or_default();
    assert_eq!(titles(Bucket::Overdue), ["Yesterday"]);
    assert_eq!(titles(Bucket::Today), ["Today", "This morning"], "all-day first, then by time");
    assert_eq!(titles(Bucket::Upcoming), ["Tomorrow"]);
    assert_eq!(titles(Bucket::Done), ["Done"]);
    assert_eq!(titles(Bucket::NoDate), ["Someday"]);
    let now = today.and_time(t(12, 0));
    assert!(facts(&list[1]).is_late(now));
    assert!(!facts(&list[2]).is_late(now), "an all-day task is not late on its day");
    assert!(facts(&list[0]).is_late(now));
    let nobody = group(list.iter().map(facts), Some(MemberId::from_bytes([2; 16])), today);
    assert!(nobody.is_empty(), "another member's list is theirs only");
}

#[test]
fn a_reminder_fires_once_when_a_task_falls_due() {
    let list: Vec<TaskFacts> = [
        task(1, "At ten", Some(d(23)), Some(t(10, 0))),
        task(2, "All day", Some(d(23)), None),
        task(3, "Tomorrow", Some(d(24)), Some(t(10, 0))),
    ]
    .iter()
    .map(facts)
    .collect();
    let at = |h, m| d(23).and_time(t(h, m));
    let titles =
        |since, now| newly_due(&list, Some(me()), since, now).iter().map(|t| t.title.clone()).collect::<Vec<_>>();
    assert_eq!(titles(at(8, 0), at(8, 59)), Vec::<String>::new());
    assert_eq!(titles(at(8, 59), at(9, 0)), ["All day"]);
    assert_eq!(titles(at(9, 0), at(10, 0)), ["At ten"]);
    assert_eq!(titles(at(10, 0), at(10, 1)), Vec::<String>::new(), "not again");
}

#[test]
fn done_can_be_undone_and_the_form_checks_its_fields() {
    let mut x = task(1, "Call", Some(d(23)), None);
    x.set_done(true, Timestamp::from_millis(5), me());
    assert!(x.is_done() && x.done_by == Some(me()));
    x.set_done(false, Timestamp::from_millis(6), me());
    assert!(!x.is_done());

    let before = x.clone();
    let bad = TaskForm { title: "".into(), due_time: "10:00".into(), priority: "urgent".into(), ..TaskForm::default() };
    let errors = bad.apply(&mut x).unwrap_err();
    assert_eq!(errors.keys().collect::<Vec<_>>(), ["due_date", "priority", "title"]);
    assert_eq!(x, before);
    let good = TaskForm {
        title: "Follow up".into(),
        due_date: "2026-11-23".into(),
        due_time: "16:00".into(),
        link: RecordId::from_bytes([7; 16]).to_string(),
        link_kind: "deal".into(),
        ..TaskForm::from_task(&x)
    };
    good.apply(&mut x).unwrap();
    assert_eq!((x.due_time, x.link_kind), (Some(t(16, 0)), Some(RecordKind::Deal)));
    assert_eq!(x.references()[0].role, Role::Mentions, "a task on a deal only mentions it");
}

#[test]
fn due_labels_read_relative_to_today() {
    let today = d(23);
    assert_eq!(due_label(today, None, today), "Today");
    assert_eq!(due_label(d(24), Some(t(10, 30)), today), "Tomorrow, 10:30");
    assert_eq!(due_label(d(22), None, today), "Yesterday");
    assert_eq!(due_label(d(30), Some(t(8, 5)), today), "Mon 30 Nov, 08:05");
    assert_eq!(due_label(NaiveDate::from_ymd_opt(2027, 1, 2).unwrap(), None, today), "2 Jan 2027");
}
