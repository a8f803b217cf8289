//! What padding envelope plaintexts to size buckets costs, over a generated
//! workspace (no browser, no relay):
//! `cargo run --release -p rapport-bench --example padding -- 10000`.
//! Measures the first upload (every contact's whole document) and one
//! typical edit per contact (a job title), unpadded and padded, and how many
//! distinct sizes the relay sees in each case.

use std::collections::BTreeSet;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT};
use rapport_bench::generate::{Params, Plan};
use rapport_sync::plaintext::{encode_plaintext, encode_plaintext_unpadded};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let plan = Plan::new(Params {
        seed: 20_261_123,
        contacts: n,
        companies_per_contact: 0.1,
        deals_per_contact: 0.2,
        activities: false,
    });
    let titles = ["Buyer", "Head of Procurement", "CTO", "Account Manager", "Chief Executive Officer"];
    let mut docs = Sizes::default();
    let mut edits = Sizes::default();
    for i in 0..n {
        let (_, generated) = plan.contact(i);
        docs.add(generated.id, &generated.doc);
        let Ok(mut doc) = AutoCommit::load(&generated.doc) else { continue };
        let heads = doc.get_heads();
        if doc.put(ROOT, "title", titles[i % titles.len()]).is_err() {
            continue;
        }
        edits.add(generated.id, &doc.save_after(&heads));
    }
    println!("| what | plaintexts | unpadded | padded | overhead | distinct sizes unpadded → padded |");
    println!("|---|---:|---:|---:|---:|---|");
    docs.print("whole documents (first upload)");
    edits.print("one job-title edit each");
}

#[derive(Default)]
struct Sizes {
    count: usize,
    unpadded: usize,
    padded: usize,
    exact: BTreeSet<usize>,
    buckets: BTreeSet<usize>,
}

impl Sizes {
    fn add(&mut self, id: rapport_core::ids::RecordId, bytes: &[u8]) {
        let exact = encode_plaintext_unpadded(id, bytes).len();
        let padded = encode_plaintext(id, bytes).len();
        self.count += 1;
        self.unpadded += exact;
        self.padded += padded;
        self.exact.insert(exact);
        self.buckets.insert(padded);
    }

    fn print(&self, what: &str) {
        let overhead = (self.padded as f64 / self.unpadded.max(1) as f64 - 1.0) * 100.0;
        println!(
            "| {what} | {} | {:.1} kB | {:.1} kB | +{overhead:.0}% | {} → {} |",
            self.count,
            self.unpadded as f64 / 1e3,
            self.padded as f64 / 1e3,
            self.exact.len(),
            self.buckets.len()
        );
    }
}
