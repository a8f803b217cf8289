//! `rapport-bench-gen`: writes a seeded workspace for the browser
//! benchmarks.
//!
//! ```text
//! rapport-bench-gen --contacts 10000 --out target/bench/data-10000.rbd
//!     [--seed 20261123] [--companies-per-contact 0.1] [--deals-per-contact 0.2]
//!     [--no-activities] [--threads N] [--if-changed]
//! ```
//!
//! With `--if-changed`, an existing file is kept when its sidecar's
//! fingerprint is this generator's (`Plan::fingerprint`: the format and
//! generator versions, the parameters and a hash of the first records of
//! every kind, so a change to the generator or to how rapport-core writes
//! records counts).
//!
//! Writes the data file (see `rapport_bench::format`) and, next to it,
//! `<out>.json`: counts and byte totals per record kind, the search queries
//! and the contacts to edit that the browser benchmark uses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use rapport_bench::format::{header, write_record};
use rapport_bench::generate::{Generated, Params, Plan};
use rapport_core::record::RecordKind;
use rapport_core::search::fold;
use serde_json::json;

struct Args {
    params: Params,
    out: PathBuf,
    threads: usize,
    if_changed: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: rapport-bench-gen --contacts N --out FILE [--seed S] [--companies-per-contact F] \
         [--deals-per-contact F] [--no-activities] [--threads N] [--if-changed]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut params =
        Params { seed: 20_261_123, contacts: 0, companies_per_contact: 0.1, deals_per_contact: 0.2, activities: true };
    let mut out = None;
    let mut if_changed = false;
    let mut threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--contacts" => params.contacts = value().parse().unwrap_or_else(|_| usage()),
            "--seed" => params.seed = value().parse().unwrap_or_else(|_| usage()),
            "--companies-per-contact" => params.companies_per_contact = value().parse().unwrap_or_else(|_| usage()),
            "--deals-per-contact" => params.deals_per_contact = value().parse().unwrap_or_else(|_| usage()),
            "--no-activities" => params.activities = false,
            "--if-changed" => if_changed = true,
            "--threads" => threads = value().parse().unwrap_or_else(|_| usage()),
            "--out" => out = Some(PathBuf::from(value())),
            _ => usage(),
        }
    }
    if params.contacts == 0 {
        usage();
    }
    Args { params, out: out.unwrap_or_else(|| usage()), threads: threads.max(1), if_changed }
}

/// Totals per record kind.
#[derive(Default, Clone)]
struct Tally {
    count: usize,
    doc_bytes: usize,
    row_bytes: usize,
    changes: usize,
}

/// A generated chunk of units: its encoded records, totals per kind and
/// number of consent events.
type Chunk = (Vec<u8>, BTreeMap<RecordKind, Tally>, usize);

/// One unit of work: a record and whatever hangs off it.
enum Unit {
    Workspace,
    Company(usize),
    Contact(usize),
    Deal(usize),
}

fn main() {
    let Args { params, out, threads, if_changed } = args();
    let started = Instant::now();
    let plan = Plan::new(params.clone());
    let print = plan.fingerprint();
    let mut side = out.clone().into_os_string();
    side.push(".json");
    if if_changed && out.is_file() {
        let existing = std::fs::read(&side).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if existing.as_ref().and_then(|v| v["fingerprint"].as_str()) == Some(print.as_str()) {
            println!("rapport-bench-gen: {} is up to date", out.display());
            return;
        }
    }
    let units: Vec<Unit> = std::iter::once(Unit::Workspace)
        .chain((0..plan.companies).map(Unit::Company))
        .chain((0..params.contacts).map(Unit::Contact))
        .chain((0..plan.deals).map(Unit::Deal))
        .collect();

    // Chunks of units generated on all cores, reassembled in order.
    const CHUNK: usize = 256;
    let n_chunks = units.len().div_ceil(CHUNK);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Chunk>>> = Mutex::new((0..n_chunks).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= n_chunks {
                    break;
                }
                let mut bytes = Vec::with_capacity(CHUNK * 2048);
                let mut tally: BTreeMap<RecordKind, Tally> = BTreeMap::new();
                let mut consent_events = 0;
                let mut emit = |g: Generated, bytes: &mut Vec<u8>| {
                    let row_len = write_record(bytes, &g);
                    let t = tally.entry(g.kind).or_default();
                    t.count += 1;
                    t.doc_bytes += g.doc.len();
                    t.row_bytes += row_len;
                    t.changes += g.changes;
                };
                for unit in &units[c * CHUNK..((c + 1) * CHUNK).min(units.len())] {
                    match unit {
                        Unit::Workspace => emit(plan.workspace(), &mut bytes),
                        Unit::Company(i) => emit(plan.company(*i).1, &mut bytes),
                        Unit::Contact(i) => {
                            let (contact, g) = plan.contact(*i);
                            consent_events += contact.consent.len();
                            emit(g, &mut bytes);
                            for (_, a) in plan.activities(*i) {
                                emit(a, &mut bytes);
                            }
                        }
                        Unit::Deal(i) => emit(plan.deal(*i).1, &mut bytes),
                    }
                }
                results.lock().expect("no panics")[c] = Some((bytes, tally, consent_events));
            });
        }
    });

    let mut tally: BTreeMap<RecordKind, Tally> = BTreeMap::new();
    let mut consent_events = 0;
    let mut body = Vec::new();
    for chunk in results.into_inner().expect("no panics") {
        let (bytes, t, events) = chunk.expect("every chunk generated");
        body.extend_from_slice(&bytes);
        consent_events += events;
        for (kind, v) in t {
            let e = tally.entry(kind).or_default();
            e.count += v.count;
            e.doc_bytes += v.doc_bytes;
            e.row_bytes += v.row_bytes;
            e.changes += v.changes;
        }
    }
    let records: usize = tally.values().map(|t| t.count).sum();
    let gen_ms = started.elapsed().as_secs_f64() * 1000.0;

    let meta = json!({
        "member_id": plan.members[0].to_string(),
        "workspace_id": plan.workspace.id.to_string(),
        "records": records,
        "contacts": params.contacts,
    });
    let mut file = header(&meta);
    file.extend_from_slice(&body);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).expect("output directory");
    }
    std::fs::write(&out, &file).expect("write data file");

    let n = params.contacts;
    let basics = plan.contact_basics(n / 3);
    let phone = (n / 2..n)
        .chain(0..n / 2)
        .find_map(|i| plan.contact(i).0.phone().filter(|p| p.starts_with("+44")).map(str::to_owned))
        .map(|p| format!("0{} {}", &p[3..7], &p[7..]))
        .unwrap_or_else(|| "7700".into());
    let queries = vec![
        fold(&format!("{} {}", basics.given, basics.family)),
        "muller".to_owned(),
        format!("@{}", plan.company_basics(1).domain),
        phone,
        "vip".to_owned(),
        "globex".to_owned(),
        "jose".to_owned(),
        "zqxj".to_owned(),
    ];
    let edit_ids: Vec<String> = (0..40).map(|k| plan.contact_basics(k * n / 40).id.to_string()).collect();
    let kinds: serde_json::Map<String, serde_json::Value> = tally
        .iter()
        .map(|(k, t)| {
            (
                k.as_str().to_owned(),
                json!({"count": t.count, "doc_bytes": t.doc_bytes, "row_bytes": t.row_bytes, "changes": t.changes}),
            )
        })
        .collect();
    let sidecar = json!({
        "fingerprint": print,
        "format": rapport_bench::format::VERSION,
        "seed": params.seed,
        "contacts": n,
        "companies_per_contact": params.companies_per_contact,
        "deals_per_contact": params.deals_per_contact,
        "activities": params.activities,
        "records": records,
        "consent_events": consent_events,
        "kinds": kinds,
        "file_bytes": file.len(),
        "gen_ms": gen_ms,
        "threads": threads,
        "member_id": plan.members[0].to_string(),
        "workspace_id": plan.workspace.id.to_string(),
        "queries": queries,
        "edit_ids": edit_ids,
    });
    std::fs::write(&side, serde_json::to_vec_pretty(&sidecar).expect("json")).expect("write sidecar");
    let contacts = &tally[&RecordKind::Contact];
    println!(
        "rapport-bench-gen: {records} records ({n} contacts, {} companies, {} deals, {} activities), \
         {consent_events} consent events, {:.1} MB in {:.1} s on {threads} threads; contact doc {:.0} B, row {:.0} B on average -> {}",
        tally.get(&RecordKind::Company).map_or(0, |t| t.count),
        tally.get(&RecordKind::Deal).map_or(0, |t| t.count),
        tally.get(&RecordKind::Activity).map_or(0, |t| t.count),
        file.len() as f64 / 1e6,
        gen_ms / 1000.0,
        contacts.doc_bytes as f64 / contacts.count as f64,
        contacts.row_bytes as f64 / contacts.count as f64,
        out.display()
    );
}
