//! One WebSocket connection, from challenge to close: the handshake (with
//! its timeout), then requests answered in order, live frames from other
//! members, keep-alive pings, the idle timeout and the rate limits.
//!
//! Anything a client sends that breaks the protocol ends *this* connection
//! with an `Error` frame (`fatal: true`) and a close frame; nothing a client
//! sends can panic the relay or touch another workspace, because the
//! workspace is fixed at authentication and every store call is scoped to it.
//!
//! Sending never blocks the session: frames go to a writer task through a
//! queue bounded in bytes (`--max-queued-bytes`), and the writer gives each
//! frame `--send-timeout-ms` to leave. A client whose replies overflow the
//! queue, or that takes no frame within the deadline, is closed (it catches
//! up by cursor when it reconnects); live frames may fill only half the
//! queue, those that do not fit are dropped and replaced by one `Behind`
//! once the queue has drained. So the idle
//! deadline, pings and shutdown keep running while a send is pending, and a
//! connection holds at most its queue plus the frame being written.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use rapport_protocol::{
    verify, AuthSignature, AuthVerifier, ChallengeNonce, ClientMessage, DecodeError, Envelope, ErrorCode, LogEntry,
    RequestId, Seq, ServerMessage, WireError, WorkspaceId, ENVELOPE_TAG_LEN, PROTOCOL_VERSION,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;
use tracing::{field, Instrument};

use crate::frames;
use crate::hub::LiveFrame;
use crate::rate::{ConnectionBudget, Verdict};
use crate::server::{truncated, AppState, ConnectionGuard};
use crate::store::{LogState, StoreError};

/// The upgraded connection (hyper's `Upgraded` wraps the connection's
/// [`crate::deadline::WriteDeadline`], so a stalled write fails there too).
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;
type Sink = SplitSink<Socket, Message>;
type Stream = SplitStream<Socket>;

/// How long the closing frames and the client's goodbye may take after a
/// fatal error.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The same while the relay shuts down.
const SHUTDOWN_CLOSE_GRACE: Duration = Duration::from_millis(250);
/// Frames (of any size) the outgoing queue holds at most.
const QUEUE_FRAMES: usize = 256;
/// Pings or pongs accepted before `Hello`.
const HANDSHAKE_KEEPALIVES: u32 = 8;

/// Why a connection ends.
enum End {
    /// The client closed or vanished; nothing more to send.
    Gone,
    /// The client took no frame within the send deadline; nothing more can
    /// be sent.
    Stalled,
    /// A refusal: send it, then close with this code and reason.
    Fatal(WireError, CloseCode, String),
    /// A frame of another protocol version: refuse it in an error frame of
    /// that version when the client can read one (an older app then says
    /// "update the app" instead of failing to read the reply), then close.
    Version(WireError, u8),
}

fn close_code_for(code: ErrorCode) -> CloseCode {
    match code {
        ErrorCode::UnsupportedVersion | ErrorCode::Malformed | ErrorCode::UnexpectedMessage => CloseCode::Protocol,
        ErrorCode::FrameTooLarge => CloseCode::Size,
        ErrorCode::Unavailable => CloseCode::Away,
        ErrorCode::Internal => CloseCode::Error,
        ErrorCode::RateLimited => CloseCode::Again,
        _ => CloseCode::Policy,
    }
}

fn fatal(code: ErrorCode, message: impl Into<String>) -> End {
    let message = message.into();
    End::Fatal(
        WireError { request: None, code, message, fatal: true, retry_after_ms: None },
        close_code_for(code),
        format!("{code:?}"),
    )
}

fn millis(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis().max(1)).unwrap_or(u32::MAX)
}

/// The client does not read its replies: more than the queue holds wait.
fn slow_consumer(queued: usize) -> End {
    End::Fatal(
        WireError {
            request: None,
            code: ErrorCode::Unavailable,
            message: format!(
                "this connection stopped reading: {queued} bytes of replies were waiting; \
                 reconnect and pull from your cursor"
            ),
            fatal: true,
            retry_after_ms: None,
        },
        CloseCode::Again,
        "SlowConsumer: replies were not read".into(),
    )
}

fn soft(request: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error(WireError { request, code, message: message.into(), fatal: false, retry_after_ms: None })
}

fn decode_error(e: DecodeError) -> End {
    let version = |found: u8, message: String| {
        End::Version(
            WireError {
                request: None,
                code: ErrorCode::UnsupportedVersion,
                message,
                fatal: true,
                retry_after_ms: None,
            },
            found,
        )
    };
    match e {
        DecodeError::UnsupportedVersion { found, supported } if found < supported => version(
            found,
            format!(
                "this app speaks sync protocol version {found} and this relay version {supported}: \
                 update the app (reload the page) to sync again"
            ),
        ),
        DecodeError::UnsupportedVersion { found, supported } => {
            version(found, format!("protocol version {found} is not supported; this relay speaks version {supported}"))
        }
        other => fatal(ErrorCode::Malformed, other.to_string()),
    }
}

/// What a received WebSocket message amounts to.
enum Incoming {
    /// A binary frame to decode.
    Frame(Bytes),
    /// A ping or pong of this many bytes: proof of life, nothing to answer
    /// (tungstenite answers pings itself).
    KeepAlive(usize),
}

impl Incoming {
    fn len(&self) -> usize {
        match self {
            Incoming::Frame(bytes) => bytes.len(),
            Incoming::KeepAlive(len) => *len,
        }
    }
}

fn classify(received: Option<Result<Message, tungstenite::Error>>, max: usize) -> Result<Incoming, End> {
    match received {
        None | Some(Ok(Message::Close(_))) => Err(End::Gone),
        Some(Err(tungstenite::Error::Capacity(_))) => {
            Err(fatal(ErrorCode::FrameTooLarge, format!("frames are limited to {max} bytes")))
        }
        Some(Err(_)) => Err(End::Gone),
        Some(Ok(Message::Text(_))) => {
            Err(fatal(ErrorCode::Malformed, "text frames are not part of the protocol; send binary frames"))
        }
        Some(Ok(Message::Ping(b) | Message::Pong(b))) => Ok(Incoming::KeepAlive(b.len())),
        Some(Ok(Message::Frame(_))) => Err(fatal(ErrorCode::Malformed, "raw frames are not part of the protocol")),
        Some(Ok(Message::Binary(bytes))) if bytes.len() > max => {
            Err(fatal(ErrorCode::FrameTooLarge, format!("a {}-byte frame exceeds the {max}-byte limit", bytes.len())))
        }
        Some(Ok(Message::Binary(bytes))) => Ok(Incoming::Frame(bytes)),
    }
}

/// Why the writer stopped on its own.
#[derive(Debug, Clone, Copy)]
enum WriterEnd {
    /// A frame did not leave within the send deadline.
    Stalled,
    /// The socket failed (the client is gone).
    Failed,
}

/// The sending half of a connection: a byte-bounded queue to a writer task.
struct Writer {
    tx: mpsc::Sender<Message>,
    queued: Arc<AtomicUsize>,
    budget: usize,
    /// Progress: the writer finished a frame.
    progress: Arc<Notify>,
    ended: oneshot::Receiver<WriterEnd>,
    finals: Option<oneshot::Sender<Vec<Message>>>,
    task: JoinHandle<Option<Sink>>,
}

/// The queue is over its bound.
struct Full(usize);

fn message_len(msg: &Message) -> usize {
    match msg {
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Text(t) => t.len(),
        Message::Close(_) | Message::Frame(_) => 2,
    }
}

impl Writer {
    fn spawn(sink: Sink, budget: usize, send_timeout: Duration) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        let queued = Arc::new(AtomicUsize::new(0));
        let progress = Arc::new(Notify::new());
        let (ended_tx, ended) = oneshot::channel();
        let (finals, finals_rx) = oneshot::channel();
        let task = tokio::spawn(
            write_loop(sink, rx, Arc::clone(&queued), Arc::clone(&progress), ended_tx, finals_rx, send_timeout)
                .in_current_span(),
        );
        Writer { tx, queued, budget, progress, ended, finals: Some(finals), task }
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Queues a reply unless the queue would exceed its bound (one frame
    /// always fits in an empty queue).
    fn enqueue(&self, msg: Message) -> Result<(), Full> {
        self.enqueue_within(msg, self.budget)
    }

    /// Queues a live frame or a ping unless the queue would exceed half its
    /// bound: the other half stays free for replies, so live traffic alone
    /// never gets a client closed.
    fn enqueue_hint(&self, msg: Message) -> Result<(), Full> {
        self.enqueue_within(msg, self.budget / 2)
    }

    fn enqueue_within(&self, msg: Message, bound: usize) -> Result<(), Full> {
        let len = message_len(&msg);
        let queued = self.queued();
        if queued > 0 && queued + len > bound {
            return Err(Full(queued));
        }
        self.queued.fetch_add(len, Ordering::SeqCst);
        self.tx.try_send(msg).map_err(|_| {
            self.queued.fetch_sub(len, Ordering::SeqCst);
            Full(queued)
        })
    }

    /// Sends `frames` once the frame being written is out (queued ones are
    /// dropped), then returns the sink; `None` if that fails or takes longer
    /// than `within`.
    async fn finish_with(mut self, frames: Vec<Message>, within: Duration) -> Option<Sink> {
        if let Some(finals) = self.finals.take() {
            let _ = finals.send(frames);
        }
        match tokio::time::timeout(within, &mut self.task).await {
            Ok(Ok(sink)) => sink,
            _ => {
                self.task.abort();
                None
            }
        }
    }

    fn abort(self) {
        self.task.abort();
    }
}

async fn write_loop(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Message>,
    queued: Arc<AtomicUsize>,
    progress: Arc<Notify>,
    ended: oneshot::Sender<WriterEnd>,
    mut finals: oneshot::Receiver<Vec<Message>>,
    send_timeout: Duration,
) -> Option<Sink> {
    loop {
        tokio::select! {
            biased;
            last = &mut finals => {
                rx.close();
                for msg in last.unwrap_or_default() {
                    match tokio::time::timeout(CLOSE_GRACE, sink.send(msg)).await {
                        Ok(Ok(())) => {}
                        _ => return None,
                    }
                }
                return Some(sink);
            }
            next = rx.recv() => {
                let Some(msg) = next else { return Some(sink) };
                let len = message_len(&msg);
                let sent = tokio::time::timeout(send_timeout, sink.send(msg)).await;
                queued.fetch_sub(len, Ordering::SeqCst);
                progress.notify_one();
                match sent {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => {
                        let _ = ended.send(WriterEnd::Failed);
                        return None;
                    }
                    Err(_) => {
                        let _ = ended.send(WriterEnd::Stalled);
                        return None;
                    }
                }
            }
        }
    }
}

/// Runs a connection to its end.
pub(crate) async fn run(socket: Socket, state: AppState, guard: ConnectionGuard, peer: SocketAddr) {
    let span = tracing::info_span!("conn", id = guard.id, peer = %truncated(peer.ip()), workspace = field::Empty);
    let limits = state.limits().clone();
    async move {
        tracing::debug!(%peer, "connected");
        let (sink, stream) = socket.split();
        let writer = Writer::spawn(sink, limits.max_queued_bytes, limits.send_timeout());
        let mut session = Session { stream, writer, state, id: guard.id, peer, lagging: None };
        let end = session.run().await.err().unwrap_or(End::Gone);
        session.finish(end).await;
        drop(guard);
    }
    .instrument(span)
    .await;
}

struct Session {
    stream: Stream,
    writer: Writer,
    state: AppState,
    id: u64,
    peer: SocketAddr,
    /// Live frames were dropped up to this sequence number; a `Behind` is
    /// owed once the queue drains.
    lagging: Option<Seq>,
}

impl Session {
    fn max_frame(&self) -> usize {
        self.state.limits().max_frame_bytes as usize
    }

    /// Queues a reply; a client that lets replies pile up is closed.
    fn reply(&self, msg: &ServerMessage) -> Result<(), End> {
        let frame = msg.encode().map_err(|e| {
            tracing::error!(error = %e, "could not encode a reply");
            fatal(ErrorCode::Internal, "the relay could not encode its reply")
        })?;
        self.writer.enqueue(Message::Binary(frame.into())).map_err(|Full(queued)| slow_consumer(queued))
    }

    /// Queues a live frame, or drops it and owes a `Behind`.
    fn live(&mut self, frame: Bytes, head: Seq) -> Result<(), End> {
        if let Some(owed) = self.lagging {
            self.lagging = Some(owed.max(head));
            return Ok(());
        }
        if self.writer.enqueue_hint(Message::Binary(frame)).is_err() {
            tracing::debug!("slow connection: dropping live frames");
            self.lagging = Some(head);
        }
        Ok(())
    }

    /// Sends the owed `Behind` once the queue is at most half full.
    fn catch_up(&mut self) -> Result<(), End> {
        if let Some(head) = self.lagging {
            if self.writer.queued() <= self.writer.budget / 2 {
                self.lagging = None;
                self.reply(&ServerMessage::Behind { head })?;
            }
        }
        Ok(())
    }

    async fn finish(self, end: End) {
        let Session { stream, writer, state, .. } = self;
        let (error, code, reason, version) = match end {
            End::Gone => {
                tracing::debug!("disconnected");
                writer.abort();
                return;
            }
            End::Stalled => {
                tracing::info!(
                    send_timeout_ms = state.limits().send_timeout_ms,
                    "closed a connection that stopped reading"
                );
                writer.abort();
                return;
            }
            End::Fatal(error, code, reason) => (error, code, reason, PROTOCOL_VERSION),
            End::Version(error, found) => (error, CloseCode::Protocol, "UnsupportedVersion".to_owned(), found),
        };
        match error.code {
            ErrorCode::Internal => tracing::error!(code = ?error.code, message = %error.message, "closing connection"),
            _ => tracing::info!(code = ?error.code, message = %error.message, "closing connection"),
        }
        let grace = if error.code == ErrorCode::Unavailable && reason == "Unavailable" {
            SHUTDOWN_CLOSE_GRACE
        } else {
            CLOSE_GRACE
        };
        let mut frames = Vec::with_capacity(2);
        if let Ok(frame) = error.encode_for_version(version) {
            frames.push(Message::Binary(frame.into()));
        }
        frames.push(Message::Close(Some(CloseFrame { code, reason: reason.into() })));
        // The frame being written gets its deadline, the closing ones theirs.
        let within = state.limits().send_timeout() + 3 * CLOSE_GRACE;
        let Some(sink) = writer.finish_with(frames, within).await else { return };
        let Ok(mut socket) = stream.reunite(sink) else { return };
        // Enough for the rest of a frame the client was sending.
        linger(socket.get_mut(), grace, 16 * state.limits().max_frame_bytes as usize).await;
    }

    async fn run(&mut self) -> Result<(), End> {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| {
            tracing::error!(error = %e, "no randomness for the challenge");
            fatal(ErrorCode::Internal, "the relay could not create a challenge")
        })?;
        let challenge = ChallengeNonce::from_bytes(nonce);
        self.reply(&ServerMessage::Challenge { nonce: challenge })?;

        let timeout = self.state.limits().handshake_timeout();
        let mut shutdown = self.state.shutdown_signal();
        let workspace = tokio::select! {
            outcome = tokio::time::timeout(timeout, self.handshake(&challenge)) => {
                outcome.map_err(|_| {
                    fatal(
                        ErrorCode::HandshakeTimeout,
                        format!("no valid Hello within {} ms", timeout.as_millis()),
                    )
                })??
            }
            _ = shutdown.wait_for(|stopping| *stopping) => {
                return Err(fatal(ErrorCode::Unavailable, "the relay is shutting down; reconnect later"));
            }
        };
        tracing::Span::current().record("workspace", field::display(workspace));
        self.serve(workspace).await
    }

    /// Waits for Hello and authenticates it; returns the workspace.
    async fn handshake(&mut self, challenge: &ChallengeNonce) -> Result<WorkspaceId, End> {
        let max = self.max_frame();
        let mut keepalives = 0;
        let frame = loop {
            match classify(self.stream.next().await, max)? {
                Incoming::Frame(bytes) => break bytes,
                Incoming::KeepAlive(_) => {
                    keepalives += 1;
                    if keepalives > HANDSHAKE_KEEPALIVES {
                        return Err(fatal(ErrorCode::UnexpectedMessage, "send Hello, not pings"));
                    }
                }
            }
        };
        match ClientMessage::decode(&frame).map_err(decode_error)? {
            ClientMessage::Hello { workspace, signature, register } => {
                let state = self.state.clone();
                authenticate(&state, self.peer, workspace, challenge, &signature, register).await?;
                Ok(workspace)
            }
            _ => Err(fatal(ErrorCode::UnexpectedMessage, "the first message must be Hello")),
        }
    }
}

/// After the closing frames: half-close, then read and discard what the
/// client still sends (the rest of an oversized frame, its close reply)
/// until it closes, so the kernel does not answer unread data with a reset
/// that would make the client lose the close frame.
async fn linger(io: &mut TokioIo<Upgraded>, grace: Duration, max_bytes: usize) {
    let _ = tokio::time::timeout(grace, async {
        let _ = io.shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        let mut read = 0;
        while read < max_bytes {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}

async fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    workspace: WorkspaceId,
    challenge: &ChallengeNonce,
    signature: &AuthSignature,
    register: Option<AuthVerifier>,
) -> Result<(), End> {
    let unauthorized = || fatal(ErrorCode::Unauthorized, "the challenge signature does not verify for this workspace");
    let store = state.store();
    let verifier = match (store.verifier(workspace).await.map_err(store_fatal)?, register) {
        (Some(stored), _) => stored,
        (None, Some(proposed)) => {
            // Prove possession before creating anything.
            verify(&proposed, &workspace, challenge, signature).map_err(|_| unauthorized())?;
            match state.allow_registration(peer.ip()) {
                Ok(()) => {}
                Err(Some(wait)) => {
                    let retry = millis(wait);
                    return Err(End::Fatal(
                        WireError {
                            request: None,
                            code: ErrorCode::RateLimited,
                            message: format!(
                                "this address registered {} workspaces within the hour; retry in {} s",
                                state.limits().registrations_per_hour,
                                retry.div_ceil(1000)
                            ),
                            fatal: true,
                            retry_after_ms: Some(retry),
                        },
                        CloseCode::Again,
                        "RateLimited: registrations".into(),
                    ));
                }
                Err(None) => {
                    return Err(fatal(
                        ErrorCode::UnknownWorkspace,
                        format!("workspace {workspace} does not exist on this relay, which registers no new workspaces"),
                    ))
                }
            }
            let (stored, created) = store.create_workspace(workspace, proposed).await.map_err(store_fatal)?;
            if !created {
                // Another member registered it meanwhile: joining is free.
                state.refund_registration(peer.ip());
            }
            if !stored.ct_eq(&proposed) {
                return Err(unauthorized());
            }
            if created {
                tracing::info!(%workspace, "workspace registered");
            }
            stored
        }
        (None, None) => {
            return Err(fatal(
                ErrorCode::UnknownWorkspace,
                format!(
                    "workspace {workspace} does not exist on this relay; its first member registers it by sending a verifier"
                ),
            ))
        }
    };
    verify(&verifier, &workspace, challenge, signature).map_err(|_| unauthorized())
}

impl Session {
    async fn serve(&mut self, workspace: WorkspaceId) -> Result<(), End> {
        let state = self.state.clone();
        let limits = state.limits().clone();
        // Subscribe before reading the head so nothing falls in between.
        let Some(mut subscription) = state.hub().try_subscribe(workspace, limits.max_connections_per_workspace) else {
            return Err(fatal(
                ErrorCode::Unavailable,
                format!(
                    "this workspace has {} connections, the most this relay allows; retry later",
                    limits.max_connections_per_workspace
                ),
            ));
        };
        let LogState { head, incarnation } = state.store().log_state(workspace).await.map_err(store_fatal)?;
        self.reply(&ServerMessage::Welcome { head, limits: limits.announced(), incarnation })?;
        tracing::debug!(%head, "authenticated");

        let mut budget = ConnectionBudget::new(&limits, Instant::now().into_std());
        let idle = limits.idle_timeout();
        let mut deadline = Instant::now() + idle;
        let ping_every = (idle / 3).max(Duration::from_millis(10));
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = state.shutdown_signal();
        let max = self.max_frame();
        let progress = Arc::clone(&self.writer.progress);

        loop {
            let lagging = self.lagging.is_some();
            tokio::select! {
                writer_end = &mut self.writer.ended => {
                    return Err(match writer_end {
                        Ok(WriterEnd::Stalled) => End::Stalled,
                        _ => End::Gone,
                    });
                }
                received = self.stream.next() => {
                    let incoming = classify(received, max)?;
                    let now = Instant::now();
                    match budget.judge(incoming.len(), now.into_std()) {
                        Verdict::Admit => deadline = now + idle,
                        Verdict::Refuse { wait, answer } => {
                            if answer {
                                let request = match &incoming {
                                    Incoming::Frame(frame) => frames::peek_request_id(frame),
                                    Incoming::KeepAlive(_) => None,
                                };
                                let retry = millis(wait);
                                self.reply(&ServerMessage::Error(WireError {
                                    request,
                                    code: ErrorCode::RateLimited,
                                    message: format!("rate limit exceeded; retry in {retry} ms"),
                                    fatal: false,
                                    retry_after_ms: Some(retry),
                                }))?;
                            }
                            continue;
                        }
                        Verdict::Close { wait } => {
                            return Err(End::Fatal(
                                WireError {
                                    request: None,
                                    code: ErrorCode::RateLimited,
                                    message: "closed: this connection kept exceeding the rate limits".into(),
                                    fatal: true,
                                    retry_after_ms: Some(millis(wait)),
                                },
                                CloseCode::Policy,
                                "RateLimited: kept exceeding the limits".into(),
                            ));
                        }
                    }
                    let Incoming::Frame(frame) = incoming else { continue };
                    let msg = ClientMessage::decode(&frame).map_err(decode_error)?;
                    self.handle(workspace, msg).await?;
                }
                live = subscription.receiver.recv() => match live {
                    Ok(LiveFrame { origin, frame, head }) => {
                        if origin != self.id {
                            self.live(frame, head)?;
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "slow connection skipped live frames");
                        let head = state.store().head(workspace).await.map_err(store_fatal)?;
                        self.lagging = Some(self.lagging.map_or(head, |owed| owed.max(head)));
                        self.catch_up()?;
                    }
                    Err(RecvError::Closed) => {
                        return Err(fatal(ErrorCode::Internal, "live channel closed"));
                    }
                },
                () = progress.notified(), if lagging => self.catch_up()?,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(fatal(
                        ErrorCode::IdleTimeout,
                        format!("nothing received for {} ms", idle.as_millis()),
                    ));
                }
                _ = ping.tick() => {
                    // A full queue already has frames on their deadline.
                    let _ = self.writer.enqueue_hint(Message::Ping(Bytes::new()));
                }
                _ = shutdown.changed() => {
                    return Err(fatal(ErrorCode::Unavailable, "the relay is shutting down; reconnect later"));
                }
            }
        }
    }

    /// Refuses envelopes that could not be pulled back within the frame
    /// limit; `None` when all fit.
    fn oversized(&self, request: RequestId, envelopes: &[Envelope]) -> Option<ServerMessage> {
        let max = self.max_frame();
        let bad = envelopes.iter().position(|e| !frames::fits_alone(e, max))?;
        Some(soft(
            Some(request),
            ErrorCode::InvalidRequest,
            format!(
                "envelope {bad} takes {} bytes; with the {} bytes of the batch that carries it, it must fit in {max}",
                frames::envelope_len(&envelopes[bad]),
                frames::BATCH_HEAD_MAX + frames::ENTRY_HEAD_MAX
            ),
        ))
    }

    async fn handle(&mut self, workspace: WorkspaceId, msg: ClientMessage) -> Result<(), End> {
        let state = self.state.clone();
        let limits = state.limits();
        let store = state.store();
        let reply = match msg {
            ClientMessage::Hello { .. } => soft(
                None,
                ErrorCode::UnexpectedMessage,
                "already authenticated; Hello is only valid as the first message",
            ),
            ClientMessage::Ping { request } => ServerMessage::Pong { request },
            ClientMessage::Push { request, envelopes } => {
                if envelopes.is_empty() {
                    soft(Some(request), ErrorCode::InvalidRequest, "a push needs at least one envelope")
                } else if envelopes.len() > limits.max_envelopes_per_push as usize {
                    soft(
                        Some(request),
                        ErrorCode::InvalidRequest,
                        format!(
                            "{} envelopes in one push; the limit is {}",
                            envelopes.len(),
                            limits.max_envelopes_per_push
                        ),
                    )
                } else if let Some(bad) = envelopes.iter().position(|e| e.ciphertext.len() < ENVELOPE_TAG_LEN) {
                    soft(
                        Some(request),
                        ErrorCode::InvalidRequest,
                        format!("envelope {bad} is shorter than an authentication tag"),
                    )
                } else if let Some(refusal) = self.oversized(request, &envelopes) {
                    refusal
                } else {
                    match store.append(workspace, envelopes).await {
                        Ok(entries) => {
                            let seqs = entries.iter().map(|e| e.seq).collect();
                            // Fan out first: the other members hear of the
                            // commit even if this client is already gone.
                            self.publish(workspace, entries);
                            ServerMessage::Pushed { request, seqs }
                        }
                        Err(e) => store_soft(request, e)?,
                    }
                }
            }
            ClientMessage::Pull { request, since, limit } => {
                let limit = limit.clamp(1, limits.max_pull_entries);
                let max_bytes = self.max_frame().saturating_sub(frames::BATCH_HEAD_MAX).max(1);
                match store.pull(workspace, since, limit, max_bytes).await {
                    Ok(page) => {
                        ServerMessage::Batch { request, entries: page.entries, cursor: page.cursor, more: page.more }
                    }
                    Err(e) => store_soft(request, e)?,
                }
            }
            ClientMessage::ReplaceWithSnapshot { request, snapshot, covers_through, incarnation } => {
                if snapshot.ciphertext.len() < ENVELOPE_TAG_LEN {
                    soft(Some(request), ErrorCode::InvalidRequest, "the snapshot is shorter than an authentication tag")
                } else if let Some(refusal) = self.oversized(request, std::slice::from_ref(&snapshot)) {
                    refusal
                } else {
                    match store.replace_with_snapshot(workspace, snapshot, covers_through, incarnation).await {
                        Ok(outcome) => {
                            let (seq, removed) = (outcome.entry.seq, outcome.removed);
                            self.publish(workspace, vec![outcome.entry]);
                            ServerMessage::SnapshotStored { request, seq, removed }
                        }
                        Err(e) => store_soft(request, e)?,
                    }
                }
            }
            ClientMessage::DeleteDocument { request, doc_tag } => {
                match store.delete_document(workspace, doc_tag).await {
                    Ok(removed) => {
                        // The tag is not logged: it would link the erased
                        // document to this connection in the logs.
                        tracing::debug!(removed, "document erased");
                        ServerMessage::DocumentDeleted { request, removed }
                    }
                    Err(e) => store_soft(request, e)?,
                }
            }
        };
        self.reply(&reply)
    }

    fn publish(&self, workspace: WorkspaceId, entries: Vec<LogEntry>) {
        for chunk in frames::live_frames(entries, self.max_frame()) {
            let head = chunk.last().map_or(Seq::ZERO, |e| e.seq);
            match (ServerMessage::Live { entries: chunk }).encode() {
                Ok(frame) => {
                    self.state.hub().publish(&workspace, LiveFrame { origin: self.id, frame: frame.into(), head })
                }
                // Live frames are hints; members catch up by pulling.
                Err(e) => tracing::error!(error = %e, "could not encode a live frame"),
            }
        }
    }
}

/// A store failure during the handshake or a keep-alive: ends the connection.
fn store_fatal(e: StoreError) -> End {
    match e {
        StoreError::WriterStopped => fatal(ErrorCode::Unavailable, "the relay is shutting down"),
        other => {
            tracing::error!(error = %other, "store failure");
            fatal(ErrorCode::Internal, "the relay's storage failed; try again later")
        }
    }
}

/// A store failure answering a request: a non-fatal error reply, except
/// when the store is gone.
fn store_soft(request: RequestId, e: StoreError) -> Result<ServerMessage, End> {
    let request = Some(request);
    Ok(match e {
        StoreError::CursorAhead { .. } => soft(request, ErrorCode::CursorAhead, e.to_string()),
        StoreError::SnapshotAhead { .. } => soft(request, ErrorCode::InvalidRequest, e.to_string()),
        StoreError::IncarnationChanged { .. } => soft(request, ErrorCode::IncarnationChanged, e.to_string()),
        StoreError::UnknownWorkspace(_) => soft(request, ErrorCode::UnknownWorkspace, e.to_string()),
        StoreError::WriterStopped => return Err(store_fatal(e)),
        StoreError::Corrupt(_) | StoreError::Backend(_) => {
            tracing::error!(error = %e, "store failure");
            soft(request, ErrorCode::Internal, "the relay's storage failed; the request was not applied")
        }
    })
}
