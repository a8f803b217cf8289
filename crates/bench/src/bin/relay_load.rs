//! `rapport-relay-load`: a native load generator for the relay.
//!
//! Starts the relay binary on loopback with a fresh data directory, then:
//! 1. opens `--idle` WebSocket clients (spread over `--workspaces`
//!    workspaces, each registered by its first member), authenticates each
//!    one and keeps it open and idle (answering the relay's pings), and
//!    reads the relay's resident memory;
//! 2. with those still connected, pushes envelopes for `--push-secs`
//!    seconds in two ways: batched (`--batch` envelopes per push, as a
//!    client catching up after a day offline) from `--batch-pushers`
//!    connections, and one envelope per push (interactive edits) from
//!    `--single-pushers` connections; every workspace has other members
//!    connected, so each push is also fanned out live;
//! 3. with the idle clients still connected, measures one-envelope pushes
//!    from 40 honest connections for `--push-secs`, then again while
//!    `--hostile` hostile connections from other loopback addresses attack
//!    (unfinished HTTP requests, silent sockets, members that stop reading,
//!    ping and push floods), and checks that the relay closed every held
//!    hostile socket within its deadline;
//! 4. stops the relay and prints one JSON object with the results.
//!
//! ```text
//! rapport-relay-load --relay target/release/rapport-relay [--idle 10000] [--workspaces 1000]
//!     [--push-secs 10] [--batch 100] [--batch-pushers 8] [--single-pushers 200] [--body 300]
//!     [--hostile 1000]
//! ```
//!
//! The relay runs with its default limits (rate limits and timeouts
//! included) except `--max-connections`, `--max-connections-per-address`
//! (the honest clients all come from 127.0.0.1) and
//! `--registrations-per-hour`, raised just enough for the clients.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rapport_bench::percentile;
use rapport_protocol::{ClientMessage, ErrorCode, Keys, ServerMessage, WorkspaceId, WorkspaceSecret};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    relay: PathBuf,
    idle: usize,
    workspaces: usize,
    push_secs: u64,
    batch: usize,
    batch_pushers: usize,
    single_pushers: usize,
    body: usize,
    hostile: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: rapport-relay-load --relay PATH [--idle N] [--workspaces N] [--push-secs S] [--batch N] \
         [--batch-pushers N] [--single-pushers N] [--body BYTES] [--hostile N]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        relay: PathBuf::new(),
        idle: 10_000,
        workspaces: 1_000,
        push_secs: 10,
        batch: 100,
        batch_pushers: 8,
        single_pushers: 200,
        body: 300,
        hostile: 1_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v = it.next().unwrap_or_else(|| usage());
        let n = || v.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--relay" => a.relay = PathBuf::from(&v),
            "--idle" => a.idle = n(),
            "--workspaces" => a.workspaces = n().max(1),
            "--push-secs" => a.push_secs = n() as u64,
            "--batch" => a.batch = n().max(1),
            "--batch-pushers" => a.batch_pushers = n(),
            "--single-pushers" => a.single_pushers = n(),
            "--body" => a.body = n(),
            "--hostile" => a.hostile = n(),
            _ => usage(),
        }
    }
    if a.relay.as_os_str().is_empty() {
        usage();
    }
    a
}

/// Keys of benchmark workspace `n`.
fn keys(n: u64) -> Keys {
    let mut secret = [7u8; 32];
    secret[..8].copy_from_slice(&n.to_le_bytes());
    let mut id = [9u8; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    Keys::derive(&WorkspaceSecret::from_random_bytes(secret), WorkspaceId::from_bytes(id))
}

/// Resident and peak memory of a process, in bytes (from /proc).
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Small client buffers: ten thousand clients live in this process too.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024).write_buffer_size(0)
}

async fn recv(socket: &mut Socket) -> Result<ServerMessage, Error> {
    loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => return Ok(ServerMessage::decode(&bytes)?),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => return Err(format!("unexpected frame {other:?}").into()),
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection closed".into()),
        }
    }
}

async fn send(socket: &mut Socket, msg: &ClientMessage) -> Result<(), Error> {
    socket.send(Message::Binary(msg.encode()?.into())).await?;
    Ok(())
}

/// Connects and authenticates as a member of `keys`' workspace.
async fn join(url: &str, keys: &Keys) -> Result<Socket, Error> {
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(client_config()), false).await?;
    let challenge = match recv(&mut socket).await? {
        ServerMessage::Challenge { nonce } => nonce,
        other => return Err(format!("expected a challenge, got {other:?}").into()),
    };
    let hello = ClientMessage::Hello {
        workspace: keys.workspace(),
        signature: keys.sign_challenge(&challenge),
        register: Some(keys.verifier()),
    };
    send(&mut socket, &hello).await?;
    match recv(&mut socket).await? {
        ServerMessage::Welcome { .. } => Ok(socket),
        other => Err(format!("expected Welcome, got {other:?}").into()),
    }
}

/// Keeps a connection open, reading (and so answering pings, and draining
/// live frames) until `stop`; counts live entries received.
async fn hold(mut socket: Socket, stop: Arc<AtomicBool>, live: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Err(_) => continue,
            Ok(Some(Ok(Message::Binary(bytes)))) => {
                if let Ok(ServerMessage::Live { entries }) = ServerMessage::decode(&bytes) {
                    live.fetch_add(entries.len() as u64, Ordering::Relaxed);
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) => return,
        }
    }
    let _ = socket.close(None).await;
}

#[derive(Default)]
struct PushStats {
    envelopes: u64,
    pushes: u64,
    rate_limited: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
}

/// Pushes `per_push` envelopes at a time, waiting for each `Pushed`, until
/// `deadline`.
async fn pusher(
    mut socket: Socket,
    keys: Keys,
    per_push: usize,
    body: usize,
    deadline: Instant,
    salt: u64,
) -> PushStats {
    let mut stats = PushStats::default();
    let mut request: u32 = 0;
    let mut nonce_counter: u64 = salt << 40;
    let plaintext = vec![0x5au8; body];
    while Instant::now() < deadline {
        request = request.wrapping_add(1);
        let envelopes: Vec<_> = (0..per_push)
            .map(|i| {
                nonce_counter += 1;
                let mut nonce = [0u8; 24];
                nonce[..8].copy_from_slice(&nonce_counter.to_le_bytes());
                let record = format!("record-{}", (nonce_counter + i as u64) % 5_000);
                keys.seal(keys.doc_tag(&record), &plaintext, nonce).expect("seal")
            })
            .collect();
        let started = Instant::now();
        if send(&mut socket, &ClientMessage::Push { request, envelopes }).await.is_err() {
            stats.errors += 1;
            break;
        }
        loop {
            match recv(&mut socket).await {
                Ok(ServerMessage::Pushed { request: r, seqs }) if r == request => {
                    stats.envelopes += seqs.len() as u64;
                    stats.pushes += 1;
                    stats.latencies_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
                Ok(ServerMessage::Error(e)) if e.code == ErrorCode::RateLimited => {
                    stats.rate_limited += 1;
                    let wait = u64::from(e.retry_after_ms.unwrap_or(10));
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    break;
                }
                Ok(ServerMessage::Error(_)) => {
                    stats.errors += 1;
                    break;
                }
                Ok(_) => continue, // live frames of other members, Behind
                Err(_) => {
                    stats.errors += 1;
                    return stats;
                }
            }
        }
    }
    let _ = socket.close(None).await;
    stats
}

/// One push scenario: `pushers` connections, each in a workspace with
/// `listeners_each` other members connected.
async fn push_scenario(
    url: &str,
    first_workspace: u64,
    pushers: usize,
    workspaces: usize,
    per_push: usize,
    body: usize,
    secs: u64,
) -> Result<serde_json::Value, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(AtomicU64::new(0));
    let mut listeners = Vec::new();
    for w in 0..workspaces {
        let socket = join(url, &keys(first_workspace + w as u64)).await?;
        listeners.push(tokio::spawn(hold(socket, stop.clone(), live.clone())));
    }
    let mut sockets = Vec::new();
    for p in 0..pushers {
        let k = keys(first_workspace + (p % workspaces) as u64);
        sockets.push((join(url, &k).await?, k));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, (s, k))| tokio::spawn(pusher(s, k, per_push, body, deadline, first_workspace + i as u64)))
        .collect();
    let mut total = PushStats::default();
    for t in tasks {
        let s = t.await?;
        total.envelopes += s.envelopes;
        total.pushes += s.pushes;
        total.rate_limited += s.rate_limited;
        total.errors += s.errors;
        total.latencies_ms.extend(s.latencies_ms);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for l in listeners {
        let _ = l.await;
    }
    Ok(json!({
        "pushers": pushers,
        "workspaces": workspaces,
        "envelopes_per_push": per_push,
        "body_bytes": body,
        "seconds": elapsed,
        "envelopes": total.envelopes,
        "envelopes_per_sec": total.envelopes as f64 / elapsed,
        "pushes": total.pushes,
        "rate_limited": total.rate_limited,
        "errors": total.errors,
        "push_ms_p50": percentile(&total.latencies_ms, 50.0),
        "push_ms_p95": percentile(&total.latencies_ms, 95.0),
        "live_entries_received": live.load(Ordering::Relaxed),
    }))
}

/// A TCP connection to the relay from another loopback address (any
/// 127.x.y.z is loopback on Linux), optionally with a small receive buffer.
async fn tcp_from(addr: SocketAddr, source: IpAddr, recv_buffer: Option<u32>) -> Result<TcpStream, Error> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::new(source, 0))?;
    Ok(socket.connect(addr).await?)
}

/// [`join`] from another loopback address.
async fn join_from(addr: SocketAddr, source: IpAddr, recv_buffer: Option<u32>, keys: &Keys) -> Result<Socket, Error> {
    let stream = tcp_from(addr, source, recv_buffer).await?;
    let url = format!("ws://{addr}/sync");
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(stream), Some(client_config())).await?;
    let challenge = match recv(&mut socket).await? {
        ServerMessage::Challenge { nonce } => nonce,
        other => return Err(format!("expected a challenge, got {other:?}").into()),
    };
    let hello = ClientMessage::Hello {
        workspace: keys.workspace(),
        signature: keys.sign_challenge(&challenge),
        register: Some(keys.verifier()),
    };
    send(&mut socket, &hello).await?;
    match recv(&mut socket).await? {
        ServerMessage::Welcome { .. } => Ok(socket),
        other => Err(format!("expected Welcome, got {other:?}").into()),
    }
}

/// Reads and discards until the relay closes `stream`; whether it did
/// within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(within, async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} }).await.is_ok()
}

/// Honest one-envelope pushes without and then with `hostile` attackers
/// from 127.0.0.2 and up: 40% unfinished requests, 20% silent sockets, 20%
/// members that ask for 12 MB and never read, 10% ping floods and 10%
/// push floods (reconnecting as soon as the relay closes them).
async fn hostile_scenario(
    url: &str,
    first_workspace: u64,
    hostile: usize,
    body: usize,
    secs: u64,
    pid: u32,
) -> Result<serde_json::Value, Error> {
    let addr: SocketAddr = url.trim_start_matches("ws://").trim_end_matches("/sync").parse()?;
    let source = |i: usize| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 200) as u8));
    let quiet = push_scenario(url, first_workspace, 40, 10, 1, body, secs).await?;

    // The attackers' workspace, with a 200 KB entry to ask for.
    let attackers = keys(first_workspace + 100);
    let mut owner = join_from(addr, source(0), None, &attackers).await?;
    let big = attackers.seal(attackers.doc_tag("big"), &vec![1u8; 200 * 1024], [3; 24])?;
    send(&mut owner, &ClientMessage::Push { request: 1, envelopes: vec![big] }).await?;
    let _ = recv(&mut owner).await?;

    let (partial, silent, slow) = (hostile * 4 / 10, hostile * 2 / 10, hostile * 2 / 10);
    let floods = hostile.saturating_sub(partial + silent + slow);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut held = Vec::new();
    for i in 0..partial + silent {
        let mut stream = tcp_from(addr, source(i), None).await?;
        if i < partial {
            stream.write_all(b"GET /sync HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n").await?;
        }
        held.push(stream);
    }
    let mut slow_sockets = Vec::new();
    for i in 0..slow {
        let mut socket = join_from(addr, source(i), Some(4096), &attackers).await?;
        // 12 MB of replies: more than the socket buffers (4 MB at most on
        // Linux by default) and the relay's 2 MB queue.
        for request in 0..60 {
            send(&mut socket, &ClientMessage::Pull { request, since: rapport_protocol::Seq(0), limit: 1 }).await?;
        }
        slow_sockets.push(socket);
    }
    let flood_cycles = Arc::new(AtomicUsize::new(0));
    let mut flooders = Vec::new();
    for i in 0..floods {
        let (stop, cycles, attackers) = (stop.clone(), flood_cycles.clone(), attackers.clone());
        flooders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut socket) = join_from(addr, source(i), None, &attackers).await else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let frame = if i % 2 == 0 {
                    Message::Ping(vec![0; 64].into())
                } else {
                    let env = attackers.seal(attackers.doc_tag("flood"), &[1; 64], [i as u8; 24]).expect("seal");
                    let push = ClientMessage::Push { request: 1, envelopes: vec![env] };
                    Message::Binary(push.encode().expect("encode").into())
                };
                for _ in 0..2_000 {
                    if socket.send(frame.clone()).await.is_err() {
                        break;
                    }
                }
                let _ = tokio::time::timeout(Duration::from_secs(20), async {
                    while let Some(Ok(_)) = socket.next().await {}
                })
                .await;
                cycles.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    let (rss_attack_start, _) = memory(pid);
    let loaded = push_scenario(url, first_workspace, 40, 10, 1, body, secs).await?;
    let (rss_attack, _) = memory(pid);
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
    // The relay's default deadlines (10 s for a request head, 30 s for a
    // frame to leave) plus slack.
    let deadline = started + Duration::from_secs(40);
    let mut held_closed = 0;
    for stream in &mut held {
        if closed_within(stream, deadline.saturating_duration_since(Instant::now())).await {
            held_closed += 1;
        }
    }
    let mut slow_closed = 0;
    for socket in &mut slow_sockets {
        let MaybeTlsStream::Plain(stream) = socket.get_mut() else { continue };
        if closed_within(stream, deadline.saturating_duration_since(Instant::now())).await {
            slow_closed += 1;
        }
    }
    let p50 = |v: &serde_json::Value| v["push_ms_p50"].as_f64().unwrap_or(0.0);
    let p95 = |v: &serde_json::Value| v["push_ms_p95"].as_f64().unwrap_or(0.0);
    Ok(json!({
        "hostile": hostile,
        "unfinished_requests": partial,
        "silent_sockets": silent,
        "slow_readers": slow,
        "flooders": floods,
        "flood_connections_closed": flood_cycles.load(Ordering::Relaxed),
        "held_closed": held_closed,
        "held": held.len(),
        "slow_closed": slow_closed,
        "push_ms_p50_quiet": p50(&quiet),
        "push_ms_p95_quiet": p95(&quiet),
        "push_ms_p50_attack": p50(&loaded),
        "push_ms_p95_attack": p95(&loaded),
        "p50_ratio": p50(&loaded) / p50(&quiet).max(1e-6),
        "p95_ratio": p95(&loaded) / p95(&quiet).max(1e-6),
        "rss_attack_start": rss_attack_start,
        "rss_attack": rss_attack,
        "quiet": quiet,
        "attack": loaded,
    }))
}

async fn healthz(addr: &str) -> Option<serde_json::Value> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    serde_json::from_str(text.split("\r\n\r\n").nth(1)?).ok()
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let a = args();
    let data_dir = std::env::temp_dir().join(format!("rapport-relay-load-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir)?;
    let max_connections = a.idle + 2 * (a.batch_pushers + a.single_pushers) + 2 * a.hostile + 1_000;
    let registrations = a.workspaces + 2_000;
    let mut child = tokio::process::Command::new(&a.relay)
        .args(["--bind", "127.0.0.1:0", "--max-connections", &max_connections.to_string()])
        .args(["--max-connections-per-address", &max_connections.to_string()])
        .args(["--registrations-per-hour", &registrations.to_string()])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("relay exited")?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let url = loop {
        let line = lines.next_line().await?.ok_or("relay exited before listening")?;
        if let Some(url) = line.strip_prefix("rapport-relay listening on ") {
            break url.trim().to_owned();
        }
    };
    let addr = url.trim_start_matches("ws://").trim_end_matches("/sync").to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss_start, _) = memory(pid);
    eprintln!("[relay-load] relay {url} (pid {pid}), {} MB resident", rss_start / 1_000_000);

    // 1. Idle clients.
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let workspace_keys: Arc<Vec<Keys>> = Arc::new((0..a.workspaces as u64).map(keys).collect());
    let started = Instant::now();
    let mut joins = Vec::with_capacity(a.idle);
    for i in 0..a.idle {
        let (url, gate, ks) = (url.clone(), gate.clone(), workspace_keys.clone());
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let t = Instant::now();
            let socket = join(&url, &ks[i % ks.len()]).await.ok()?;
            Some((socket, t.elapsed().as_secs_f64() * 1000.0))
        }));
    }
    let mut held = Vec::with_capacity(a.idle);
    let mut handshake_ms = Vec::with_capacity(a.idle);
    let mut failed = 0usize;
    for j in joins {
        match j.await? {
            Some((socket, ms)) => {
                handshake_ms.push(ms);
                held.push(tokio::spawn(hold(socket, stop.clone(), live.clone())));
            }
            None => failed += 1,
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!("[relay-load] {} clients connected in {connect_secs:.1} s ({failed} failed)", held.len());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_idle, _) = memory(pid);
    let health = healthz(&addr).await;
    eprintln!("[relay-load] {} MB resident with {} idle clients", rss_idle / 1_000_000, held.len());

    // 2. Throughput, with the idle clients still connected.
    let base = a.workspaces as u64 + 1;
    let batched = push_scenario(&url, base, a.batch_pushers, a.batch_pushers, a.batch, a.body, a.push_secs).await?;
    eprintln!("[relay-load] batched: {:.0} envelopes/s", batched["envelopes_per_sec"].as_f64().unwrap_or(0.0));
    let (rss_after_batched, _) = memory(pid);
    let single_ws = (a.single_pushers / 4).max(1);
    let single = push_scenario(&url, base + 1_000, a.single_pushers, single_ws, 1, a.body, a.push_secs).await?;
    eprintln!("[relay-load] single: {:.0} envelopes/s", single["envelopes_per_sec"].as_f64().unwrap_or(0.0));
    let hostile = if a.hostile > 0 {
        let h = hostile_scenario(&url, base + 2_000, a.hostile, a.body, a.push_secs, pid).await?;
        eprintln!("[relay-load] hostile: push p50 x{:.2} under attack", h["p50_ratio"].as_f64().unwrap_or(0.0));
        h
    } else {
        serde_json::Value::Null
    };
    let (rss_end, hwm) = memory(pid);

    stop.store(true, Ordering::Relaxed);
    for h in held {
        let _ = h.await;
    }
    let _ = tokio::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let db_bytes: u64 = std::fs::read_dir(&data_dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    let _ = std::fs::remove_dir_all(&data_dir);

    let out = json!({
        "idle": {
            "target": a.idle,
            "connected": handshake_ms.len(),
            "failed": failed,
            "workspaces": a.workspaces,
            "connect_seconds": connect_secs,
            "handshake_ms_p50": percentile(&handshake_ms, 50.0),
            "handshake_ms_p95": percentile(&handshake_ms, 95.0),
            "healthz": health,
        },
        "rss_start": rss_start,
        "rss_idle": rss_idle,
        "rss_per_idle_client": (rss_idle.saturating_sub(rss_start)) as f64 / handshake_ms.len().max(1) as f64,
        "rss_after_batched": rss_after_batched,
        "rss_end": rss_end,
        "rss_peak": hwm,
        "batched": batched,
        "single": single,
        "hostile": hostile,
        "store_bytes": db_bytes,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
