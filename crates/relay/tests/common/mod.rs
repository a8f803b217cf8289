//! Test support: an in-process relay on port 0 over a temporary data
//! directory, and a real WebSocket client (tokio-tungstenite) speaking
//! rapport-protocol.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rapport_protocol::{
    ChallengeNonce, ClientMessage, DocTag, Envelope, ErrorCode, Incarnation, Keys, LogEntry, Seq, ServerLimits,
    ServerMessage, WireError, WorkspaceId, WorkspaceSecret,
};
use rapport_relay::config::Limits;
use rapport_relay::server::{serve, AppState};
use rapport_relay::store::sqlite::{SqliteStore, DB_FILE};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// Nonce source for test envelopes: unique within a test binary.
static NONCES: AtomicU64 = AtomicU64::new(1);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Keys of test workspace `n` (secret and id derived from `n`).
pub fn keys(n: u8) -> Keys {
    Keys::derive(&WorkspaceSecret::from_random_bytes([n; 32]), workspace(n))
}

pub fn workspace(n: u8) -> WorkspaceId {
    WorkspaceId::from_bytes([n; 16])
}

/// Limits for tests: defaults with generous rates (for requests and for
/// registrations: tests register many workspaces from 127.0.0.1).
pub fn test_limits() -> Limits {
    Limits {
        rate_frames_per_sec: 10_000,
        rate_burst_frames: 10_000,
        registrations_per_hour: 10_000,
        ..Limits::default()
    }
}

pub struct TestRelay {
    pub addr: SocketAddr,
    pub url: String,
    pub state: AppState,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestRelay {
    pub async fn start(limits: Limits) -> TestRelay {
        Self::start_with(limits, None).await
    }

    pub async fn start_with(limits: Limits, static_dir: Option<PathBuf>) -> TestRelay {
        let dir = tempfile::tempdir().expect("temporary data dir");
        let store = SqliteStore::open(dir.path()).expect("store opens");
        let state = AppState::new(Arc::new(store), limits, static_dir);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestRelay { addr, url: format!("ws://{addr}/sync"), state, dir, stop: Some(stop), task: Some(task) }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join(DB_FILE)
    }

    /// Triggers graceful shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve result");
        }
    }
}

/// Counts a document's rows straight from the SQLite file.
pub fn row_counts(db: &Path, ws: WorkspaceId, tag: DocTag) -> (i64, i64) {
    let conn = rusqlite::Connection::open(db).expect("open db file");
    let count = |table: &str| -> i64 {
        conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE workspace = ?1 AND doc_tag = ?2"),
            rusqlite::params![&ws.as_bytes()[..], &tag.as_bytes()[..]],
            |r| r.get(0),
        )
        .expect("count query")
    };
    (count("envelopes"), count("snapshots"))
}

/// Connects and reads the challenge.
pub async fn connect(url: &str) -> (Socket, ChallengeNonce) {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
    match next_message(&mut socket).await {
        Some(ServerMessage::Challenge { nonce }) => (socket, nonce),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// A TCP connection to `addr` from `source` (any 127.x.y.z address is
/// loopback on Linux, so tests can play several clients' addresses), with
/// a small receive buffer when asked (to make a client that does not read
/// fill up quickly).
pub async fn tcp_from(addr: SocketAddr, source: IpAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("receive buffer");
    }
    socket.bind(SocketAddr::new(source, 0)).expect("bind the source address");
    socket.connect(addr).await.expect("tcp connects")
}

/// [`connect`] over [`tcp_from`].
pub async fn connect_from(addr: SocketAddr, source: IpAddr, recv_buffer: Option<u32>) -> (Socket, ChallengeNonce) {
    let stream = tcp_from(addr, source, recv_buffer).await;
    let url = format!("ws://{addr}/sync");
    let (mut socket, _) =
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await.expect("websocket connects");
    match next_message(&mut socket).await {
        Some(ServerMessage::Challenge { nonce }) => (socket, nonce),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// Reads frames until the connection ends; returns the close frame's code
/// (`None` when it ended without one) and the protocol messages before it.
pub async fn read_to_close(socket: &mut Socket, within: Duration) -> (Option<u16>, Vec<ServerMessage>) {
    let mut messages = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await.expect("the connection ends in time") {
            Some(Ok(Message::Binary(bytes))) => messages.push(ServerMessage::decode(&bytes).expect("decode")),
            Some(Ok(Message::Close(frame))) => {
                let _ = socket.flush().await;
                return (frame.map(|f| u16::from(f.code)), messages);
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => return (None, messages),
        }
    }
}

/// Polls `check` every 20 ms for up to `within`; whether it held.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the next protocol message, skipping pings; `None` on close.
pub async fn next_message(socket: &mut Socket) -> Option<ServerMessage> {
    loop {
        let frame = tokio::time::timeout(FRAME_TIMEOUT, socket.next()).await.expect("a frame arrives in time");
        match frame {
            Some(Ok(Message::Binary(bytes))) => {
                return Some(ServerMessage::decode(&bytes).expect("relay frames decode"))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) => {
                // Send tungstenite's queued close reply so the relay can
                // finish at once.
                let _ = socket.flush().await;
                return None;
            }
            None | Some(Err(_)) => return None,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Expects a fatal error frame, then the connection closing.
pub async fn expect_fatal(socket: &mut Socket) -> WireError {
    let error = match next_message(socket).await {
        Some(ServerMessage::Error(e)) => e,
        other => panic!("expected an error frame, got {other:?}"),
    };
    assert!(error.fatal, "{error:?} should be fatal");
    assert_eq!(next_message(socket).await, None, "connection should close");
    error
}

pub fn hello(keys: &Keys, challenge: &ChallengeNonce, register: bool) -> ClientMessage {
    ClientMessage::Hello {
        workspace: keys.workspace(),
        signature: keys.sign_challenge(challenge),
        register: register.then(|| keys.verifier()),
    }
}

pub async fn send(socket: &mut Socket, msg: &ClientMessage) {
    socket.send(Message::Binary(msg.encode().expect("encode").into())).await.expect("send frame");
}

/// An authenticated member of a workspace.
pub struct Client {
    pub socket: Socket,
    pub keys: Keys,
    pub head: Seq,
    pub limits: ServerLimits,
    pub incarnation: Incarnation,
    next_request: u32,
    live: VecDeque<Vec<LogEntry>>,
}

impl Client {
    /// Connects, registers the workspace if new, authenticates.
    pub async fn join(url: &str, keys: Keys) -> Client {
        let (socket, challenge) = connect(url).await;
        Self::authenticate(socket, challenge, keys).await
    }

    /// [`Client::join`] from another source address, with an optional small
    /// receive buffer.
    pub async fn join_from(addr: SocketAddr, source: IpAddr, recv_buffer: Option<u32>, keys: Keys) -> Client {
        let (socket, challenge) = connect_from(addr, source, recv_buffer).await;
        Self::authenticate(socket, challenge, keys).await
    }

    async fn authenticate(mut socket: Socket, challenge: ChallengeNonce, keys: Keys) -> Client {
        send(&mut socket, &hello(&keys, &challenge, true)).await;
        match next_message(&mut socket).await {
            Some(ServerMessage::Welcome { head, limits, incarnation }) => {
                Client { socket, keys, head, limits, incarnation, next_request: 1, live: VecDeque::new() }
            }
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Seals `body` for record `record`; nonces are unique per client.
    pub fn seal(&self, record: &str, body: &[u8]) -> Envelope {
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&NONCES.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        self.keys.seal(self.keys.doc_tag(record), body, nonce).expect("seal")
    }

    pub fn next_request(&mut self) -> u32 {
        self.next_request += 1;
        self.next_request
    }

    /// The next reply, setting live frames aside.
    pub async fn reply(&mut self) -> ServerMessage {
        loop {
            match next_message(&mut self.socket).await {
                Some(ServerMessage::Live { entries }) => self.live.push_back(entries),
                Some(other) => return other,
                None => panic!("connection closed while waiting for a reply"),
            }
        }
    }

    pub async fn request(&mut self, msg: &ClientMessage) -> ServerMessage {
        send(&mut self.socket, msg).await;
        self.reply().await
    }

    pub async fn push(&mut self, envelopes: Vec<Envelope>) -> Vec<Seq> {
        let request = self.next_request();
        match self.request(&ClientMessage::Push { request, envelopes }).await {
            ServerMessage::Pushed { request: r, seqs } if r == request => seqs,
            other => panic!("expected Pushed, got {other:?}"),
        }
    }

    pub async fn pull(&mut self, since: Seq, limit: u32) -> (Vec<LogEntry>, Seq, bool) {
        let request = self.next_request();
        match self.request(&ClientMessage::Pull { request, since, limit }).await {
            ServerMessage::Batch { request: r, entries, cursor, more } if r == request => (entries, cursor, more),
            other => panic!("expected Batch, got {other:?}"),
        }
    }

    /// Pulls everything from `Seq::ZERO`, page by page.
    pub async fn pull_all(&mut self) -> Vec<LogEntry> {
        let mut all = Vec::new();
        let mut cursor = Seq::ZERO;
        loop {
            let (entries, next, more) = self.pull(cursor, 1000).await;
            all.extend(entries);
            cursor = next;
            if !more {
                return all;
            }
        }
    }

    pub async fn error_reply(&mut self, msg: &ClientMessage) -> WireError {
        match self.request(msg).await {
            ServerMessage::Error(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// Waits for the next live frame.
    pub async fn live(&mut self) -> Vec<LogEntry> {
        if let Some(entries) = self.live.pop_front() {
            return entries;
        }
        match next_message(&mut self.socket).await {
            Some(ServerMessage::Live { entries }) => entries,
            other => panic!("expected a live frame, got {other:?}"),
        }
    }

    /// Round trip that proves the connection still works.
    pub async fn ping(&mut self) {
        let request = self.next_request();
        match self.request(&ClientMessage::Ping { request }).await {
            ServerMessage::Pong { request: r } if r == request => {}
            other => panic!("expected Pong, got {other:?}"),
        }
    }

    /// Whether a live frame arrives within `wait`.
    pub async fn has_live_within(&mut self, wait: Duration) -> bool {
        if !self.live.is_empty() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Binary(bytes)))) => match ServerMessage::decode(&bytes).expect("decode") {
                    ServerMessage::Live { entries } => {
                        self.live.push_back(entries);
                        return true;
                    }
                    other => panic!("unexpected {other:?}"),
                },
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return false,
            }
        }
    }
}

pub fn assert_code(error: &WireError, code: ErrorCode) {
    assert_eq!(error.code, code, "{error:?}");
}

/// Starts the `rapport-relay` binary on a free port over `data_dir`, with
/// more `flags`; returns it and the URL from the "listening on" line it
/// prints.
pub async fn spawn_relay_binary(data_dir: &Path, flags: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rapport-relay"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(flags)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the relay binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the relay prints its URL in time")
        .expect("stdout readable")
        .expect("a line");
    let url = line
        .strip_prefix("rapport-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}
