//! A simulated world for convergence tests: a tiny relay speaking the real
//! wire protocol in memory ([`SimRelay`]), clients whose drivers talk to it
//! through a [`Transport`] that only queues frames, and a virtual clock. The
//! test decides what is delivered when, so every interleaving is
//! reproducible.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use futures::executor::block_on;
use rapport_core::storage::memory::MemoryStorage;
use rapport_protocol::{
    verify, AuthVerifier, ChallengeNonce, ClientMessage, EntryKind, ErrorCode, Incarnation, LogEntry, Seq,
    ServerLimits, ServerMessage, WireError, WorkspaceId,
};
use rapport_sync::driver::{Event, Host, RepoApplier, SyncDriver, Transport, TransportError};
use rapport_sync::{SyncConfig, SyncProblem, SyncStatus};

use super::{fast_timing, new_repo, SeededRandom, Seen, TestRepo};

/// Small limits, so that paging and push batching happen with few edits.
pub const LIMITS: ServerLimits =
    ServerLimits { max_frame_bytes: 1 << 20, max_envelopes_per_push: 3, max_pull_entries: 2 };

struct SimConn {
    client: usize,
    challenge: ChallengeNonce,
    authed: bool,
    to_client: VecDeque<Vec<u8>>,
    /// The relay ended the connection after the frames queued.
    closing: bool,
    /// Deliver the next live frame before the one queued before it.
    reorder_next: bool,
}

fn is_live(frame: &[u8]) -> bool {
    matches!(ServerMessage::decode(frame), Ok(ServerMessage::Live { .. }))
}

impl SimConn {
    fn live_positions(&self) -> Vec<usize> {
        self.to_client.iter().enumerate().filter(|(_, f)| is_live(f)).map(|(i, _)| i).collect()
    }

    fn queue_live(&mut self, frame: Vec<u8>) {
        self.to_client.push_back(frame);
        if self.reorder_next {
            if let [.., a, b] = self.live_positions()[..] {
                self.to_client.swap(a, b);
                self.reorder_next = false;
            }
        }
    }
}

/// The relay protocol (docs/RELAY.md) for one workspace, in memory.
pub struct SimRelay {
    workspace: WorkspaceId,
    verifier: Option<AuthVerifier>,
    pub log: Vec<LogEntry>,
    conns: BTreeMap<u64, SimConn>,
    next_conn: u64,
}

fn encode(msg: &ServerMessage) -> Vec<u8> {
    msg.encode().expect("the simulated relay encodes")
}

impl SimRelay {
    pub fn new(workspace: WorkspaceId) -> Self {
        Self { workspace, verifier: None, log: Vec::new(), conns: BTreeMap::new(), next_conn: 1 }
    }

    pub fn head(&self) -> Seq {
        self.log.last().map_or(Seq::ZERO, |e| e.seq)
    }

    fn open(&mut self, client: usize) -> u64 {
        let id = self.next_conn;
        self.next_conn += 1;
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&id.to_le_bytes());
        let challenge = ChallengeNonce::from_bytes(nonce);
        let first = encode(&ServerMessage::Challenge { nonce: challenge });
        self.conns.insert(
            id,
            SimConn {
                client,
                challenge,
                authed: false,
                to_client: VecDeque::from([first]),
                closing: false,
                reorder_next: false,
            },
        );
        id
    }

    fn close(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    fn reply(&mut self, conn: u64, msg: &ServerMessage) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.to_client.push_back(encode(msg));
        }
    }

    fn fatal(&mut self, conn: u64, code: ErrorCode) {
        let error = WireError { request: None, code, message: format!("{code:?}"), fatal: true, retry_after_ms: None };
        self.reply(conn, &ServerMessage::Error(error));
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
        }
    }

    fn receive(&mut self, conn: u64, frame: &[u8]) {
        let Some(c) = self.conns.get(&conn) else { return };
        if c.closing {
            return;
        }
        let (authed, challenge) = (c.authed, c.challenge);
        let Ok(msg) = ClientMessage::decode(frame) else { return self.fatal(conn, ErrorCode::Malformed) };
        match msg {
            ClientMessage::Hello { workspace, signature, register } if !authed => {
                let verifier = match (self.verifier, register) {
                    (Some(v), _) => v,
                    (None, Some(v)) if workspace == self.workspace => v,
                    _ => return self.fatal(conn, ErrorCode::UnknownWorkspace),
                };
                if workspace != self.workspace || verify(&verifier, &workspace, &challenge, &signature).is_err() {
                    return self.fatal(conn, ErrorCode::Unauthorized);
                }
                self.verifier = Some(verifier);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.authed = true;
                }
                let head = self.head();
                self.reply(
                    conn,
                    &ServerMessage::Welcome { head, limits: LIMITS, incarnation: Incarnation::from_bytes([0x51; 16]) },
                );
            }
            _ if !authed => self.fatal(conn, ErrorCode::UnexpectedMessage),
            ClientMessage::Push { request, envelopes } => {
                assert!(
                    !envelopes.is_empty() && envelopes.len() <= LIMITS.max_envelopes_per_push as usize,
                    "the client keeps the push limits"
                );
                let first = self.head().0 + 1;
                let entries: Vec<LogEntry> = envelopes
                    .into_iter()
                    .enumerate()
                    .map(|(i, envelope)| LogEntry { seq: Seq(first + i as u64), kind: EntryKind::Change, envelope })
                    .collect();
                self.log.extend(entries.iter().cloned());
                let seqs = entries.iter().map(|e| e.seq).collect();
                self.reply(conn, &ServerMessage::Pushed { request, seqs });
                let live = encode(&ServerMessage::Live { entries });
                for (&id, other) in &mut self.conns {
                    if id != conn && other.authed && !other.closing {
                        other.queue_live(live.clone());
                    }
                }
            }
            ClientMessage::Pull { request, since, limit } => {
                if since > self.head() {
                    let error = WireError {
                        request: Some(request),
                        code: ErrorCode::CursorAhead,
                        message: "cursor ahead".into(),
                        fatal: false,
                        retry_after_ms: None,
                    };
                    return self.reply(conn, &ServerMessage::Error(error));
                }
                let limit = limit.clamp(1, LIMITS.max_pull_entries) as usize;
                let after: Vec<&LogEntry> = self.log.iter().filter(|e| e.seq > since).collect();
                let entries: Vec<LogEntry> = after.iter().take(limit).map(|e| (*e).clone()).collect();
                let more = after.len() > limit;
                let cursor = if more { entries.last().map_or(since, |e| e.seq) } else { self.head() };
                self.reply(conn, &ServerMessage::Batch { request, entries, cursor, more });
            }
            ClientMessage::Ping { request } => self.reply(conn, &ServerMessage::Pong { request }),
            ClientMessage::Hello { .. }
            | ClientMessage::ReplaceWithSnapshot { .. }
            | ClientMessage::DeleteDocument { .. } => self.fatal(conn, ErrorCode::UnexpectedMessage),
        }
    }

    /// Drops the live frames queued for a slow connection and says `Behind`.
    fn lag(&mut self, conn: u64) {
        let head = self.head();
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.authed || c.closing {
                return;
            }
            c.to_client.retain(|f| !is_live(f));
            c.to_client.push_back(encode(&ServerMessage::Behind { head }));
        }
    }

    /// Swaps the last two queued live frames (concurrent pushes delivered
    /// out of order), or the next one with the last when only one is queued.
    fn reorder(&mut self, conn: u64) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if let [.., a, b] = c.live_positions()[..] {
                c.to_client.swap(a, b);
            } else {
                c.reorder_next = true;
            }
        }
    }
}

/// A client's side of the simulated network.
#[derive(Debug, Default)]
pub struct Net {
    wants_connect: bool,
    conn: Option<u64>,
    to_relay: VecDeque<Vec<u8>>,
    /// Closed by the client: flush `to_relay` then close the relay side.
    closed: Vec<(u64, Vec<Vec<u8>>)>,
}

pub struct SimTransport(Rc<RefCell<Net>>);

impl Transport for SimTransport {
    fn connect(&self, _url: &str) {
        self.0.borrow_mut().wants_connect = true;
    }

    fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        let mut net = self.0.borrow_mut();
        if net.conn.is_none() {
            return Err(TransportError("not connected".into()));
        }
        net.to_relay.push_back(frame);
        Ok(())
    }

    fn close(&self) {
        let mut net = self.0.borrow_mut();
        net.wants_connect = false;
        if let Some(conn) = net.conn.take() {
            let pending = net.to_relay.drain(..).collect();
            net.closed.push((conn, pending));
        }
    }
}

pub struct SimHost {
    clock: Rc<Cell<u64>>,
    random: SeededRandom,
    timers: Rc<RefCell<Vec<u64>>>,
    pub seen: Rc<Seen>,
}

impl Host for SimHost {
    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn fill_random(&self, dest: &mut [u8]) {
        self.random.fill(dest)
    }

    fn wake_after(&self, ms: u64) {
        self.timers.borrow_mut().push(self.clock.get() + ms);
    }

    fn status_changed(&self, status: &SyncStatus) {
        *self.seen.status.borrow_mut() = Some(status.clone());
    }

    fn problem(&self, problem: &SyncProblem) {
        self.seen.problems.borrow_mut().push(problem.clone());
    }
}

pub type SimDriver = SyncDriver<TestRepo, RepoApplier<MemoryStorage>, SimTransport, SimHost>;

pub struct SimClient {
    pub repo: TestRepo,
    pub driver: SimDriver,
    net: Rc<RefCell<Net>>,
    timers: Rc<RefCell<Vec<u64>>>,
    pub seen: Rc<Seen>,
}

/// The relay, the clients and the clock.
pub struct World {
    pub relay: SimRelay,
    pub clients: Vec<SimClient>,
    pub clock: Rc<Cell<u64>>,
    pub config: SyncConfig,
}

impl World {
    /// `n` devices of one workspace; device 0 created it. Sync is on and
    /// every device is offline.
    pub fn new(n: usize, seed: u64) -> World {
        let config = SyncConfig::create("ws://sim.invalid/sync", [seed as u8 | 1; 48]).expect("config");
        let clock = Rc::new(Cell::new(1_700_000_000_000));
        let clients = (0..n)
            .map(|i| {
                let joined = if i == 0 {
                    config.clone()
                } else {
                    SyncConfig::join(&config.invite().expect("invite").to_fragment()).expect("join")
                };
                let repo = new_repo(i as u8 + 1, 0);
                block_on(rapport_sync::turn_on(&repo, &joined)).expect("turn on");
                let net = Rc::new(RefCell::new(Net::default()));
                let timers = Rc::new(RefCell::new(Vec::new()));
                let seen = Rc::new(Seen::default());
                let host = SimHost {
                    clock: clock.clone(),
                    random: SeededRandom::new(seed ^ ((i as u64 + 1) << 32)),
                    timers: timers.clone(),
                    seen: seen.clone(),
                };
                let driver = block_on(SyncDriver::open_with_timing(
                    &joined,
                    fast_timing(),
                    repo.clone(),
                    RepoApplier::new(repo.clone()),
                    SimTransport(net.clone()),
                    host,
                ))
                .expect("driver");
                SimClient { repo, driver, net, timers, seen }
            })
            .collect();
        World { relay: SimRelay::new(config.workspace), clients, clock, config }
    }

    /// Feeds an event to client `i` and carries out what it closed.
    pub fn handle(&mut self, i: usize, event: Event) {
        block_on(self.clients[i].driver.handle(event));
        let closed: Vec<_> = self.clients[i].net.borrow_mut().closed.drain(..).collect();
        for (conn, pending) in closed {
            for frame in pending {
                self.relay.receive(conn, &frame);
            }
            self.relay.close(conn);
        }
    }

    fn conn(&self, i: usize) -> Option<u64> {
        self.clients[i].net.borrow().conn
    }

    /// One step of client `i`'s network: accept a pending connection, or
    /// deliver one frame to the relay, or one frame from it. False when
    /// there was nothing to do.
    pub fn deliver(&mut self, i: usize) -> bool {
        let wants = {
            let net = self.clients[i].net.borrow();
            net.wants_connect && net.conn.is_none()
        };
        if wants {
            let conn = self.relay.open(i);
            {
                let mut net = self.clients[i].net.borrow_mut();
                net.wants_connect = false;
                net.conn = Some(conn);
            }
            self.handle(i, Event::Connected);
            return true;
        }
        let Some(conn) = self.conn(i) else { return false };
        let outgoing = self.clients[i].net.borrow_mut().to_relay.pop_front();
        if let Some(frame) = outgoing {
            self.relay.receive(conn, &frame);
            return true;
        }
        let incoming = self.relay.conns.get_mut(&conn).and_then(|c| c.to_client.pop_front());
        if let Some(frame) = incoming {
            self.handle(i, Event::Frame(frame));
            return true;
        }
        if self.relay.conns.get(&conn).is_none_or(|c| c.closing) {
            // The relay ended the connection (all its frames delivered).
            self.cut(i);
            return true;
        }
        false
    }

    /// The network between client `i` and the relay fails.
    pub fn cut(&mut self, i: usize) {
        let conn = {
            let mut net = self.clients[i].net.borrow_mut();
            net.to_relay.clear();
            net.wants_connect = false;
            net.conn.take()
        };
        if let Some(conn) = conn {
            self.relay.close(conn);
            self.handle(i, Event::Disconnected);
        } else if self.clients[i].net.borrow().wants_connect {
            self.handle(i, Event::Disconnected);
        }
    }

    pub fn lag(&mut self, i: usize) {
        if let Some(conn) = self.conn(i) {
            self.relay.lag(conn);
        }
    }

    pub fn reorder(&mut self, i: usize) {
        if let Some(conn) = self.conn(i) {
            self.relay.reorder(conn);
        }
    }

    /// Advances the clock and fires the timers that are due.
    pub fn wait(&mut self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
        let now = self.clock.get();
        for i in 0..self.clients.len() {
            let due = {
                let mut timers = self.clients[i].timers.borrow_mut();
                let before = timers.len();
                timers.retain(|&t| t > now);
                timers.len() != before
            };
            if due {
                self.handle(i, Event::Tick);
            }
        }
    }

    fn next_timer(&self) -> Option<u64> {
        self.clients.iter().filter_map(|c| c.timers.borrow().iter().copied().min()).min()
    }

    /// Every device up to date at the relay's head with an empty outbox.
    pub fn settled(&self) -> bool {
        let head = self.relay.head();
        self.clients.iter().all(|c| {
            c.driver.status() == SyncStatus::UpToDate
                && c.driver.cursor() == head
                && block_on(rapport_core::storage::Storage::outbox(c.repo.storage(), 1)).is_ok_and(|o| o.is_empty())
        })
    }

    /// Brings every device online and runs the network (and the clock)
    /// until everything is exchanged.
    pub fn heal(&mut self) {
        for i in 0..self.clients.len() {
            self.handle(i, Event::Start);
        }
        for _ in 0..100_000 {
            let mut progress = false;
            // One step per device in turn, so that their traffic interleaves.
            for i in 0..self.clients.len() {
                progress |= self.deliver(i);
            }
            if progress {
                continue;
            }
            if self.settled() {
                return;
            }
            let Some(next) = self.next_timer() else {
                panic!("stuck with nothing to deliver and no timer: {:?}", self.describe());
            };
            let now = self.clock.get();
            self.wait(next.saturating_sub(now).max(1));
        }
        panic!("did not settle: {:?}", self.describe());
    }

    pub fn describe(&self) -> Vec<(SyncStatus, Seq, Seq, Vec<SyncProblem>)> {
        self.clients
            .iter()
            .map(|c| (c.driver.status(), c.driver.cursor(), self.relay.head(), c.seen.problems.borrow().clone()))
            .collect()
    }
}
