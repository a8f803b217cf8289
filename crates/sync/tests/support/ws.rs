//! The real relay in-process (port 0, temporary data directory) and clients
//! that reach it through a tokio-tungstenite [`Transport`]. Everything runs
//! on one thread in a `LocalSet`, like the browser's main thread.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rapport_core::ids::RecordId;
use rapport_core::privacy::Tombstones;
use rapport_core::record::{RecordKind, Row};
use rapport_core::storage::memory::MemoryStorage;
use rapport_protocol::ClientMessage;
use rapport_relay::config::Limits;
use rapport_relay::server::{serve, AppState};
use rapport_relay::store::sqlite::SqliteStore;
use rapport_sync::config::load_cursor;
use rapport_sync::driver::{Applier, Event, Host, Interrupted, RepoApplier, SyncDriver, Transport, TransportError};
use rapport_sync::plaintext::open_envelope;
use rapport_sync::{Received, SyncConfig, SyncProblem, SyncStatus};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{
    erase_locally, fast_timing, learn_tombstones, new_repo, outbox_len, read_tombstones, SeededRandom, Seen, TestRepo,
};

/// How long any one wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestRelay {
    pub addr: SocketAddr,
    pub url: String,
    pub dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

fn limits() -> Limits {
    Limits { rate_frames_per_sec: 10_000, rate_burst_frames: 10_000, ..Limits::default() }
}

impl TestRelay {
    /// A relay on a free port over `dir`.
    pub async fn start(dir: PathBuf) -> TestRelay {
        Self::start_at("127.0.0.1:0".parse().expect("address"), dir).await
    }

    /// A relay on `addr` over `dir` (a restart keeps both).
    pub async fn start_at(addr: SocketAddr, dir: PathBuf) -> TestRelay {
        let store = SqliteStore::open(&dir).expect("store opens");
        let state = AppState::new(Arc::new(store), limits(), None);
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        TestRelay { addr, url: format!("ws://{addr}/sync"), dir, stop: Some(stop), task: Some(task) }
    }

    /// Graceful shutdown; waits for the server to return.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("serve task").expect("serve result");
        }
    }

    /// Every byte of every file in the data directory.
    pub fn raw_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).expect("data dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                out.extend(std::fs::read(&path).expect("read file"));
            }
        }
        out
    }
}

type Events = mpsc::UnboundedSender<Event>;

/// A tokio-tungstenite WebSocket behind the driver's [`Transport`]. Events
/// of a connection closed by `close` are dropped (a generation counter).
pub struct WsTransport {
    events: Events,
    writer: Rc<RefCell<Option<mpsc::UnboundedSender<Message>>>>,
    generation: Rc<Cell<u64>>,
    /// How many connections were opened.
    pub connects: Cell<u32>,
    /// Every message sent, decoded.
    pub sent: Rc<RefCell<Vec<ClientMessage>>>,
}

impl WsTransport {
    fn new(events: Events) -> Self {
        Self {
            events,
            writer: Rc::new(RefCell::new(None)),
            generation: Rc::new(Cell::new(0)),
            connects: Cell::new(0),
            sent: Rc::new(RefCell::new(Vec::new())),
        }
    }

    pub fn pushes_sent(&self) -> usize {
        self.sent.borrow().iter().filter(|m| matches!(m, ClientMessage::Push { .. })).count()
    }
}

impl Transport for WsTransport {
    fn connect(&self, url: &str) {
        self.connects.set(self.connects.get() + 1);
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let current = self.generation.clone();
        let writer = self.writer.clone();
        let events = self.events.clone();
        let url = url.to_owned();
        tokio::task::spawn_local(async move {
            let live = || current.get() == generation;
            let socket = match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((socket, _)) => socket,
                Err(_) => {
                    if live() {
                        let _ = events.send(Event::Disconnected);
                    }
                    return;
                }
            };
            if !live() {
                return;
            }
            let (mut sink, mut stream) = socket.split();
            let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
            *writer.borrow_mut() = Some(tx);
            let _ = events.send(Event::Connected);
            tokio::task::spawn_local(async move {
                while let Some(msg) = rx.recv().await {
                    if sink.send(msg).await.is_err() {
                        return;
                    }
                }
                let _ = sink.close().await;
            });
            while let Some(msg) = stream.next().await {
                if !live() {
                    return;
                }
                match msg {
                    Ok(Message::Binary(bytes)) => {
                        let _ = events.send(Event::Frame(bytes.to_vec()));
                    }
                    Ok(Message::Close(_)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            if live() {
                writer.borrow_mut().take();
                let _ = events.send(Event::Disconnected);
            }
        });
    }

    fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        if let Ok(msg) = ClientMessage::decode(&frame) {
            self.sent.borrow_mut().push(msg);
        }
        let writer = self.writer.borrow();
        let tx = writer.as_ref().ok_or_else(|| TransportError("no connection".into()))?;
        tx.send(Message::Binary(frame.into())).map_err(|_| TransportError("the writer stopped".into()))
    }

    fn close(&self) {
        self.generation.set(self.generation.get() + 1);
        // Dropping the sender ends the writer, which closes the socket
        // after the frames already queued.
        self.writer.borrow_mut().take();
    }
}

/// The tombstones a client's app knows, shared by its host (the driver's
/// guards ask it) and its applier (which updates it).
pub type Known = Rc<RefCell<Tombstones>>;

/// The host of a test client: a real clock, seeded randomness, timers that
/// post `Tick` into the client's event channel.
pub struct TestHost {
    events: Events,
    start: Instant,
    random: SeededRandom,
    pub seen: Rc<Seen>,
    tombstones: Known,
}

impl Host for TestHost {
    fn now_ms(&self) -> u64 {
        1_700_000_000_000 + self.start.elapsed().as_millis() as u64
    }

    fn fill_random(&self, dest: &mut [u8]) {
        self.random.fill(dest)
    }

    fn wake_after(&self, ms: u64) {
        let events = self.events.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let _ = events.send(Event::Tick);
        });
    }

    fn status_changed(&self, status: &SyncStatus) {
        *self.seen.status.borrow_mut() = Some(status.clone());
    }

    fn rows_changed(&self, rows: &[Row]) {
        self.seen.rows.borrow_mut().extend_from_slice(rows);
    }

    fn problem(&self, problem: &SyncProblem) {
        self.seen.problems.borrow_mut().push(problem.clone());
    }

    fn is_erased(&self, record: RecordId) -> bool {
        self.tombstones.borrow().is_erased(record)
    }
}

/// The app's applier: merges through the repository, and after a merge into
/// the workspace document learns its tombstones, purges what they erase
/// and asks the driver to delete on the relay what is still owed (posted
/// as an event, as the browser app would with `spawn_local`).
pub struct AppApplier {
    inner: RepoApplier<MemoryStorage>,
    repo: TestRepo,
    tombstones: Known,
    events: Events,
    /// The record of every entry handed to the applier, in order.
    pub applied: RefCell<Vec<RecordId>>,
}

impl Applier for AppApplier {
    async fn apply(&self, entries: &[Received], now_ms: u64) -> Result<Vec<Row>, Interrupted> {
        self.applied.borrow_mut().extend(entries.iter().map(|e| e.record));
        let result = self.inner.apply(entries, now_ms).await;
        let rows = match &result {
            Ok(rows) => rows,
            Err(interrupted) => &interrupted.rows,
        };
        if rows.iter().any(|r| r.kind == RecordKind::Workspace) {
            let owed = learn_tombstones(&self.repo, &self.tombstones).await;
            if !owed.is_empty() {
                let _ = self.events.send(Event::EraseOnRelay(owed));
            }
        }
        result
    }
}

pub type Driver = SyncDriver<TestRepo, AppApplier, WsTransport, TestHost>;

/// One device: a repository on memory storage and a sync driver.
pub struct Client {
    pub name: &'static str,
    pub n: u8,
    pub repo: TestRepo,
    pub config: SyncConfig,
    pub driver: Driver,
    /// The tombstones this device's app knows.
    pub tombstones: Known,
    events: mpsc::UnboundedReceiver<Event>,
    generation: u8,
}

impl Client {
    /// A new device `n` (fresh storage) syncing `config`; sync turned on.
    pub async fn new(name: &'static str, n: u8, config: SyncConfig) -> Client {
        let repo = new_repo(n, 0);
        Self::with_repo(name, n, config, repo, 0).await
    }

    /// A device over existing storage (an app restart).
    pub async fn with_repo(name: &'static str, n: u8, config: SyncConfig, repo: TestRepo, generation: u8) -> Client {
        rapport_sync::turn_on(&repo, &config).await.expect("sync turns on");
        let (tx, rx) = mpsc::unbounded_channel();
        // App start: the tombstones of the workspace as stored.
        let tombstones: Known = Rc::new(RefCell::new(read_tombstones(&repo).await));
        let host = TestHost {
            events: tx.clone(),
            start: Instant::now(),
            random: SeededRandom::new(u64::from(n) << 8 | u64::from(generation)),
            seen: Rc::new(Seen::default()),
            tombstones: tombstones.clone(),
        };
        let applier = AppApplier {
            inner: RepoApplier::new(repo.clone()),
            repo: repo.clone(),
            tombstones: tombstones.clone(),
            events: tx.clone(),
            applied: RefCell::new(Vec::new()),
        };
        let driver =
            SyncDriver::open_with_timing(&config, fast_timing(), repo.clone(), applier, WsTransport::new(tx), host)
                .await
                .expect("driver opens");
        let known = tombstones.borrow().clone();
        driver.erase_tombstoned(&known).await;
        Client { name, n, repo, config, driver, tombstones, events: rx, generation }
    }

    /// Erases `record` as the app does: tombstone in the workspace document,
    /// bytes removed, the edit queued, the relay asked to delete it.
    pub async fn erase(&mut self, workspace: RecordId, record: RecordId) {
        erase_locally(&self.repo, workspace, record, self.n, &self.tombstones).await;
        self.driver.local_changes().await;
        self.driver.erase_on_relay(vec![record]).await;
    }

    /// The records of every entry this device's applier was handed.
    pub fn applied(&self) -> Vec<RecordId> {
        self.driver.applier().applied.borrow().clone()
    }

    /// The records of every envelope this device pushed.
    pub fn pushed_records(&self) -> Vec<RecordId> {
        let keys = self.config.keys();
        self.driver
            .transport()
            .sent
            .borrow()
            .iter()
            .filter_map(|m| if let ClientMessage::Push { envelopes, .. } = m { Some(envelopes.clone()) } else { None })
            .flatten()
            .map(|e| open_envelope(&keys, &e).expect("its own envelopes open").0)
            .collect()
    }

    /// The app closes: the socket closes, nothing more is handled. Returns
    /// the storage, to start again over it.
    pub fn crash(self) -> TestRepo {
        self.driver.transport().close();
        self.repo
    }

    pub fn status(&self) -> SyncStatus {
        self.driver.status()
    }

    /// Handles events until `done` holds; panics after [`WAIT`].
    pub async fn run_until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(event)) => self.driver.handle(event).await,
                Ok(None) => panic!("{}: event channel closed", self.name),
                Err(_) => panic!("{}: timed out waiting until {what}; status {:?}", self.name, self.status()),
            }
        }
    }

    /// Handles whatever arrives within `quiet` of the last event.
    pub async fn drain(&mut self, quiet: Duration) {
        while let Ok(Some(event)) = tokio::time::timeout(quiet, self.events.recv()).await {
            self.driver.handle(event).await;
        }
    }

    /// Goes online and waits until everything is exchanged.
    pub async fn sync(&mut self) {
        self.driver.start().await;
        self.run_until("up to date", |c| c.status() == SyncStatus::UpToDate).await;
        assert_eq!(outbox_len(&self.repo).await, 0, "{}: outbox drained", self.name);
    }

    pub async fn go_offline(&mut self) {
        self.driver.stop().await;
        assert_eq!(self.status(), SyncStatus::Offline);
    }

    /// After a local edit.
    pub async fn edited(&mut self) {
        self.driver.local_changes().await;
    }

    pub async fn saved_cursor(&self) -> rapport_protocol::Seq {
        load_cursor(self.repo.storage()).await.expect("cursor")
    }

    pub fn has(&self, id: RecordId) -> bool {
        futures::executor::block_on(self.repo.storage().load(id)).ok().flatten().is_some()
    }
}

use rapport_core::storage::Storage as _;

/// Runs every client until all are up to date at the same position.
pub async fn converge(clients: &mut [&mut Client]) {
    let deadline = Instant::now() + WAIT;
    loop {
        for c in clients.iter_mut() {
            c.drain(Duration::from_millis(20)).await;
        }
        let head = clients.iter().map(|c| c.driver.head()).max().unwrap_or_default();
        let settled = clients.iter().all(|c| c.status() == SyncStatus::UpToDate && c.driver.cursor() == head);
        if settled {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence: {:?}",
            clients.iter().map(|c| (c.name, c.status(), c.driver.cursor(), c.driver.head())).collect::<Vec<_>>()
        );
    }
}
