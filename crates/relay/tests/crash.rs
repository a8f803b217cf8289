//! Crash durability of the real binary over many kill cycles: several
//! clients push in bursts, the relay is killed with SIGKILL while pushes
//! are in flight, restarted on the same data directory, and the clients
//! reconnect and carry on. After every restart no acknowledged envelope is
//! lost, none is stored twice, and every client's pushes are acknowledged
//! again.
//!
//! `CRASH_CYCLES` sets the number of kill cycles (default 3, quick enough
//! for the test command; scripts/bench.sh runs 100). `CRASH_REPORT` names
//! a JSON file for the figures (restart times, acknowledged pushes).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rapport_protocol::{ClientMessage, Seq, ServerMessage};
use tokio::process::Child;

/// Concurrent writers, each its own connection to the same workspace.
const WRITERS: usize = 3;
/// Envelopes per push (a burst).
const BURST: usize = 4;
/// Upper bound on the whole run, whatever `CRASH_CYCLES` says.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// Starts `rapport-relay` on a free port; the URL from its first line.
async fn spawn_relay(data_dir: &Path) -> (Child, String) {
    spawn_relay_binary(data_dir, &[]).await
}

/// One writer's cycle: connect, push bursts until the relay dies (or the
/// cycle's deadline passes); returns the acknowledged (seq, body) pairs.
async fn write_until_killed(
    mut client: Client,
    writer: usize,
    first: usize,
    acks: Arc<Vec<AtomicUsize>>,
    deadline: tokio::time::Instant,
) -> (Vec<(Seq, String)>, usize) {
    let mut acked = Vec::new();
    let mut n = first;
    while tokio::time::Instant::now() < deadline {
        let bodies: Vec<String> = (0..BURST).map(|i| format!("writer {writer} change {}", n + i)).collect();
        n += BURST;
        let envelopes = bodies.iter().map(|b| client.seal(&format!("record-{writer}"), b.as_bytes())).collect();
        let request = client.next_request();
        // A send into a dead relay fails: nothing of this burst was acked.
        let frame = ClientMessage::Push { request, envelopes }.encode().expect("encode");
        use futures_util::SinkExt;
        if client.socket.send(tokio_tungstenite::tungstenite::Message::Binary(frame.into())).await.is_err() {
            return (acked, n);
        }
        loop {
            match next_message(&mut client.socket).await {
                Some(ServerMessage::Pushed { request: r, seqs }) if r == request => {
                    assert_eq!(seqs.len(), BURST, "one seq per envelope");
                    acked.extend(seqs.into_iter().zip(bodies));
                    acks[writer].fetch_add(1, Ordering::SeqCst);
                    break;
                }
                // Other writers' changes, live.
                Some(ServerMessage::Live { .. }) => continue,
                // The relay died: only what was acknowledged counts.
                None => return (acked, n),
                Some(other) => panic!("writer {writer}: unexpected {other:?}"),
            }
        }
    }
    (acked, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_push_is_lost_or_duplicated_across_repeated_kill_9() {
    let cycles: usize = std::env::var("CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    assert!(cycles >= 1, "CRASH_CYCLES must be at least 1");
    let run_deadline = Instant::now() + RUN_LIMIT;
    let data = tempfile::tempdir().expect("tempdir");
    let (mut relay, mut url) = spawn_relay(data.path()).await;

    // Every acknowledged envelope so far: body -> seq.
    let mut acked: HashMap<String, Seq> = HashMap::new();
    let mut next_change = [0usize; WRITERS];
    let mut restart_ms = Vec::with_capacity(cycles);
    let mut pushes_per_cycle = Vec::with_capacity(cycles);
    for cycle in 0..cycles {
        assert!(Instant::now() < run_deadline, "the run took longer than {RUN_LIMIT:?} (cycle {cycle})");
        // Kill after a varying number of acknowledged bursts, so the kill
        // lands at different points of the writers' pushes.
        let kill_after = 4 + (cycle * 7) % 13;
        let acks: Arc<Vec<AtomicUsize>> = Arc::new((0..WRITERS).map(|_| AtomicUsize::new(0)).collect());
        // Every writer reconnects to the restarted relay (resumes) first.
        let mut clients = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            clients.push(Client::join(&url, keys(21)).await);
        }
        let cycle_deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let writers: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(w, c)| tokio::spawn(write_until_killed(c, w, next_change[w], Arc::clone(&acks), cycle_deadline)))
            .collect();
        // Kill once every writer has been acknowledged at least once and
        // the cycle's total is reached, with more bursts in flight.
        let ready = || {
            let counts: Vec<usize> = acks.iter().map(|a| a.load(Ordering::SeqCst)).collect();
            counts.iter().all(|&c| c >= 1) && counts.iter().sum::<usize>() >= kill_after
        };
        while !ready() && tokio::time::Instant::now() < cycle_deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        relay.start_kill().expect("SIGKILL");
        relay.wait().await.expect("the relay exits");
        let mut cycle_acks = 0;
        for (w, task) in writers.into_iter().enumerate() {
            let (pairs, next) = task.await.expect("writer task");
            assert!(!pairs.is_empty(), "cycle {cycle}: writer {w} was never acknowledged (did not resume)");
            next_change[w] = next;
            cycle_acks += pairs.len();
            for (seq, body) in pairs {
                assert!(acked.insert(body.clone(), seq).is_none(), "{body} acknowledged twice");
            }
        }
        assert!(cycle_acks >= kill_after * BURST, "cycle {cycle}: only {cycle_acks} envelopes acknowledged");
        pushes_per_cycle.push(cycle_acks);

        let started = Instant::now();
        (relay, url) = spawn_relay(data.path()).await;
        restart_ms.push(started.elapsed().as_secs_f64() * 1000.0);

        // Everything acknowledged is there, once, under its seq.
        let mut reader = Client::join(&url, keys(21)).await;
        let stored = reader.pull_all().await;
        let mut seen: HashMap<String, Seq> = HashMap::new();
        let mut last = Seq::ZERO;
        for entry in &stored {
            assert!(entry.seq > last, "cycle {cycle}: seqs not strictly increasing at {}", entry.seq);
            last = entry.seq;
            let body = reader.keys.open(&entry.envelope).expect("stored envelopes open");
            let body = String::from_utf8(body).expect("utf-8 body");
            assert!(seen.insert(body.clone(), entry.seq).is_none(), "cycle {cycle}: {body} is stored twice");
        }
        for (body, seq) in &acked {
            assert_eq!(seen.get(body), Some(seq), "cycle {cycle}: acknowledged {body} (seq {seq}) lost after kill -9");
        }
        assert!(reader.head >= last, "cycle {cycle}: head {} behind the log's last entry {last}", reader.head);
    }

    // Every writer resumes on the last incarnation and is acknowledged.
    for (w, next) in next_change.iter().enumerate() {
        let mut client = Client::join(&url, keys(21)).await;
        let body = format!("writer {w} change {next}");
        let seqs = client.push(vec![client.seal(&format!("record-{w}"), body.as_bytes())]).await;
        assert!(seqs[0] > Seq::ZERO);
    }
    relay.start_kill().expect("SIGKILL");
    relay.wait().await.expect("the relay exits");

    if let Ok(path) = std::env::var("CRASH_REPORT") {
        restart_ms.sort_by(f64::total_cmp);
        let pick = |q: f64| restart_ms[((restart_ms.len() - 1) as f64 * q).round() as usize];
        let report = serde_json::json!({
            "cycles": cycles,
            "writers": WRITERS,
            "burst": BURST,
            "acknowledged": acked.len(),
            "acknowledged_per_cycle_min": pushes_per_cycle.iter().min(),
            "acknowledged_per_cycle_max": pushes_per_cycle.iter().max(),
            "restart_ms_p50": pick(0.5),
            "restart_ms_p95": pick(0.95),
            "restart_ms_max": pick(1.0),
            "lost": 0,
            "duplicated": 0,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&report).expect("json")).expect("write CRASH_REPORT");
    }
}
