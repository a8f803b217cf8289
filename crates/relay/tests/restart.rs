//! Durability of the real binary: every acknowledged push survives
//! `kill -9` and a restart on the same data directory, and a database
//! copied back from an older copy gives the log a new incarnation.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rapport_protocol::{ClientMessage, Seq, ServerMessage};
use rapport_relay::config::Limits;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `rapport-relay` on a free port and returns it with its URL, read
/// from the "listening on" line it prints.
async fn spawn_relay(data_dir: &Path) -> (Child, String) {
    spawn_relay_with(data_dir, &[]).await
}

/// [`spawn_relay`] with more flags.
async fn spawn_relay_with(data_dir: &Path, flags: &[&str]) -> (Child, String) {
    spawn_relay_binary(data_dir, flags).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_push_survives_kill_9_and_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut relay, url) = spawn_relay(data.path()).await;
    assert!(url.starts_with("ws://127.0.0.1:") && url.ends_with("/sync"), "{url}");

    // Two writers push one envelope at a time; the relay is killed while
    // their pushes are still in flight.
    let acks = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let url = url.clone();
            let acks = Arc::clone(&acks);
            tokio::spawn(async move {
                let mut c = Client::join(&url, keys(7)).await;
                let mut acked = Vec::new();
                for n in 0.. {
                    let body = format!("writer {w} change {n}");
                    let env = c.seal(&format!("record-{w}"), body.as_bytes());
                    let request = c.next_request();
                    send(&mut c.socket, &ClientMessage::Push { request, envelopes: vec![env] }).await;
                    loop {
                        match next_message(&mut c.socket).await {
                            Some(ServerMessage::Pushed { seqs, .. }) => {
                                acked.push((seqs[0], body));
                                acks.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            // The other writer's changes, live.
                            Some(ServerMessage::Live { .. }) => continue,
                            // The relay died: keep only what was acknowledged.
                            _ => return acked,
                        }
                    }
                }
                acked
            })
        })
        .collect();
    // Kill once a good number is acknowledged, with more in flight.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acks.load(Ordering::SeqCst) < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    relay.start_kill().expect("SIGKILL");
    relay.wait().await.expect("relay exits");
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer task"));
    }
    assert!(acked.len() >= 20, "only {} pushes acknowledged before the kill", acked.len());

    let (mut relay, url) = spawn_relay(data.path()).await;
    let mut reader = Client::join(&url, keys(7)).await;
    assert!(reader.head >= acked.iter().map(|(s, _)| *s).max().unwrap_or(Seq::ZERO));
    let stored = reader.pull_all().await;
    for (seq, body) in &acked {
        let entry = stored
            .iter()
            .find(|e| e.seq == *seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} is missing after restart"));
        assert_eq!(reader.keys.open(&entry.envelope).as_deref(), Ok(body.as_bytes()));
    }
    // The log continues after the highest number ever handed out.
    let next = reader.push(vec![reader.seal("record-x", b"after restart")]).await;
    assert!(next[0] > reader.head);
    relay.start_kill().expect("SIGKILL");
    relay.wait().await.expect("relay exits");
}

#[tokio::test]
async fn the_binary_refuses_impossible_limits_with_a_clear_message() {
    let data = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_rapport-relay"))
        .args(["--bind", "127.0.0.1:0", "--max-frame-bytes", "4096", "--rate-burst-bytes", "100"])
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--rate-burst-bytes"), "{stderr}");
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_shuts_the_binary_down_gracefully() {
    let data = tempfile::tempdir().expect("tempdir");
    let (mut relay, url) = spawn_relay(data.path()).await;
    let mut c = Client::join(&url, keys(8)).await;
    let pid = relay.id().expect("pid");
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.expect("kill runs");
    assert!(status.success());
    assert_code(&expect_fatal(&mut c.socket).await, rapport_protocol::ErrorCode::Unavailable);
    let exit =
        tokio::time::timeout(Duration::from_secs(10), relay.wait()).await.expect("exits in time").expect("exit status");
    assert!(exit.success(), "{exit:?}");
}

/// Runs the binary under `sh` with the given descriptor limits.
#[cfg(target_os = "linux")]
fn under_limits(soft: u32, hard: u32, data: &Path, flags: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rapport-relay"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(flags)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_binary_raises_its_descriptor_limit_or_refuses_to_start() {
    let data = tempfile::tempdir().expect("tempdir");
    // The default 10,000 connections cannot fit under a hard limit of 256.
    let output = under_limits(100, 256, data.path(), &[]).output().await.expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--max-connections 10000") && stderr.contains("hard limit is 256"), "{stderr}");

    // 50 connections fit: the soft limit is raised from 100 to what they need.
    let mut child = under_limits(100, 256, data.path(), &["--max-connections", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let line = tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).lines().next_line())
        .await
        .expect("listening in time")
        .expect("stdout readable")
        .expect("a line");
    assert!(line.starts_with("rapport-relay listening on "), "{line}");
    let pid = child.id().expect("pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    let soft: u64 = open_files.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("soft limit");
    assert_eq!(soft, rapport_relay::limits::descriptors_needed(&Limits { max_connections: 50, ..Limits::default() }));
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Stops the relay with SIGTERM (it closes its database cleanly).
#[cfg(unix)]
async fn terminate(mut relay: Child) {
    let pid = relay.id().expect("pid");
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await.expect("kill runs");
    assert!(status.success());
    let exit =
        tokio::time::timeout(Duration::from_secs(10), relay.wait()).await.expect("exits in time").expect("exit status");
    assert!(exit.success(), "{exit:?}");
}

/// Copies the database file (and a WAL file, if one was left) from `from`
/// to `to`, as an operator's backup or restore does.
fn copy_database(from: &Path, to: &Path) {
    let db = rapport_relay::store::sqlite::DB_FILE;
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("{db}{suffix}");
        let _ = std::fs::remove_file(to.join(&name));
        if suffix != "-shm" && from.join(&name).exists() {
            std::fs::copy(from.join(&name), to.join(&name)).expect("copy");
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_copied_back_from_a_backup_gives_the_log_a_new_incarnation() {
    let data = tempfile::tempdir().expect("tempdir");
    let backup = tempfile::tempdir().expect("tempdir");
    let (relay, url) = spawn_relay(data.path()).await;
    let mut c = Client::join(&url, keys(9)).await;
    c.push(vec![c.seal("record-a", b"one"), c.seal("record-a", b"two")]).await;
    let first = c.incarnation;
    drop(c);
    terminate(relay).await;
    copy_database(data.path(), backup.path());

    // A clean restart keeps the incarnation; these pushes will be lost.
    let (relay, url) = spawn_relay(data.path()).await;
    let mut c = Client::join(&url, keys(9)).await;
    assert_eq!(c.incarnation, first, "a restart is not a restore");
    c.push(vec![c.seal("record-a", b"three"), c.seal("record-b", b"four")]).await;
    assert_eq!(c.head, Seq(2));
    drop(c);
    terminate(relay).await;

    copy_database(backup.path(), data.path());
    let (relay, url) = spawn_relay(data.path()).await;
    let c = Client::join(&url, keys(9)).await;
    assert_eq!(c.head, Seq(2), "the restored log");
    let restored = c.incarnation;
    assert_ne!(restored, first, "sequence numbers 3 and 4 will be handed out again: a new incarnation says so");
    drop(c);
    terminate(relay).await;

    // Detected once; the operator's flag renews it again.
    let (relay, url) = spawn_relay(data.path()).await;
    assert_eq!(Client::join(&url, keys(9)).await.incarnation, restored);
    terminate(relay).await;
    let (relay, url) = spawn_relay_with(data.path(), &["--new-incarnation"]).await;
    let c = Client::join(&url, keys(9)).await;
    assert_ne!(c.incarnation, restored);
    assert_eq!(c.head, Seq(2), "a new incarnation keeps the log");
    drop(c);
    terminate(relay).await;
}
