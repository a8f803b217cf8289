//! Native timing of the row index behind the contact list (no browser):
//! `cargo run --release -p rapport-bench --example search -- 100000`.
//! Builds the rows of a generated workspace's contacts, then times building
//! the index, the first sorted listing and every keystroke of a few queries.

use std::time::Instant;

use rapport_bench::generate::{Params, Plan};
use rapport_bench::percentile;
use rapport_core::record::RecordKind;
use rapport_core::search::{Query, RowIndex, Sort};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let plan = Plan::new(Params {
        seed: 20_261_123,
        contacts: n,
        companies_per_contact: 0.1,
        deals_per_contact: 0.2,
        activities: false,
    });
    let t = Instant::now();
    let rows: Vec<_> = (0..n).map(|i| plan.contact_row(i)).collect();
    eprintln!("{n} rows generated in {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let json: Vec<String> = rows.iter().map(rapport_core::storage::encode_row).collect();
    let t = Instant::now();
    let decoded: Vec<_> = json.iter().map(|j| rapport_core::storage::decode_row(j).unwrap()).collect();
    println!("decode rows: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let index = RowIndex::from_rows(decoded);
    println!("index build: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let all = index.query(RecordKind::Contact, &Query::default(), Sort::default());
    println!("first sort: {:.1} ms ({} rows)", t.elapsed().as_secs_f64() * 1e3, all.len());
    let b = plan.contact_basics(n / 3);
    let queries = [
        format!("{} {}", b.given, b.family).to_lowercase(),
        "muller".into(),
        format!("@{}", plan.company_basics(1).domain),
        "07700 900".into(),
        "vip".into(),
        "globex".into(),
        "jose".into(),
        "zqxj".into(),
    ];
    let mut times = Vec::new();
    for q in &queries {
        let chars: Vec<char> = q.chars().collect();
        let mut steps: Vec<String> = (1..=chars.len()).map(|i| chars[..i].iter().collect()).collect();
        steps.push(chars[..chars.len() - 1].iter().collect());
        steps.push(String::new());
        for s in steps {
            let t = Instant::now();
            let r = index.query(RecordKind::Contact, &Query::parse(&s), Sort::default());
            let ms = t.elapsed().as_secs_f64() * 1e3;
            times.push(ms);
            if std::env::var_os("VERBOSE").is_some() {
                println!("  {s:?}: {ms:.2} ms, {} rows", r.len());
            }
        }
    }
    println!(
        "keystrokes: {} p50 {:.2} ms p95 {:.2} ms max {:.2} ms",
        times.len(),
        percentile(&times, 50.0),
        percentile(&times, 95.0),
        percentile(&times, 100.0)
    );
}
