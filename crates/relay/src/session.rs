//! One WebSocket connection, from challenge to close: the handshake (with
//! its timeout), then requests answered in order, live frames from other
//! members, keep-alive pings, the idle timeout and the rate limits.
//!
//! Anything a client sends that breaks the protocol ends *this* connection
//! with an `Error` frame (`fatal: true`) and a close frame; nothing a client
//! sends can panic the relay or touch another workspace, because the
//! workspace is fixed at authentication and every store call is scoped to it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket};
use rapport_protocol::{
    verify, AuthSignature, AuthVerifier, ChallengeNonce, ClientMessage, DecodeError, ErrorCode, LogEntry, RequestId,
    ServerMessage, WireError, WorkspaceId, ENVELOPE_TAG_LEN,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{field, Instrument};

use crate::hub::LiveFrame;
use crate::rate::ConnectionBudget;
use crate::server::{AppState, ConnectionGuard};
use crate::store::StoreError;

/// How long to wait for the client's close reply after a fatal error.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// The same while the relay shuts down.
const SHUTDOWN_CLOSE_GRACE: Duration = Duration::from_millis(250);
/// Room kept in a batch frame for the message around its entries.
const BATCH_FRAME_RESERVE: usize = 256;

/// Why a connection ends.
enum End {
    /// The client closed or vanished; nothing more to send.
    Gone,
    /// A protocol-level refusal: send it, then close.
    Fatal(WireError),
}

fn fatal(code: ErrorCode, message: impl Into<String>) -> End {
    End::Fatal(WireError { request: None, code, message: message.into(), fatal: true, retry_after_ms: None })
}

fn soft(request: Option<RequestId>, code: ErrorCode, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error(WireError { request, code, message: message.into(), fatal: false, retry_after_ms: None })
}

fn close_code_for(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::UnsupportedVersion | ErrorCode::Malformed | ErrorCode::UnexpectedMessage => close_code::PROTOCOL,
        ErrorCode::FrameTooLarge => close_code::SIZE,
        ErrorCode::Unavailable => close_code::AWAY,
        ErrorCode::Internal => close_code::ERROR,
        _ => close_code::POLICY,
    }
}

fn decode_error(e: DecodeError) -> End {
    match e {
        DecodeError::UnsupportedVersion { found, supported } => fatal(
            ErrorCode::UnsupportedVersion,
            format!("protocol version {found} is not supported; this relay speaks version {supported}"),
        ),
        other => fatal(ErrorCode::Malformed, other.to_string()),
    }
}

/// What a received WebSocket message amounts to.
enum Incoming {
    /// A binary frame to decode.
    Frame(Bytes),
    /// A ping or pong: proof of life, nothing to answer.
    KeepAlive,
}

fn is_too_large(err: axum::Error) -> bool {
    err.into_inner().downcast_ref::<tungstenite::Error>().is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

fn classify(received: Option<Result<Message, axum::Error>>, max: usize) -> Result<Incoming, End> {
    match received {
        None | Some(Ok(Message::Close(_))) => Err(End::Gone),
        Some(Err(e)) => {
            if is_too_large(e) {
                Err(fatal(ErrorCode::FrameTooLarge, format!("frames are limited to {max} bytes")))
            } else {
                Err(End::Gone)
            }
        }
        Some(Ok(Message::Text(_))) => {
            Err(fatal(ErrorCode::Malformed, "text frames are not part of the protocol; send binary frames"))
        }
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(Incoming::KeepAlive),
        Some(Ok(Message::Binary(bytes))) if bytes.len() > max => {
            Err(fatal(ErrorCode::FrameTooLarge, format!("a {}-byte frame exceeds the {max}-byte limit", bytes.len())))
        }
        Some(Ok(Message::Binary(bytes))) => Ok(Incoming::Frame(bytes)),
    }
}

/// Runs a connection to its end.
pub(crate) async fn run(socket: WebSocket, state: AppState, guard: ConnectionGuard, peer: Option<SocketAddr>) {
    let span = tracing::info_span!("conn", id = guard.id, peer = field::Empty, workspace = field::Empty);
    if let Some(peer) = peer {
        span.record("peer", field::display(peer));
    }
    let mut session = Session { socket, state, id: guard.id };
    async move {
        tracing::debug!("connected");
        let end = session.run().await.err().unwrap_or(End::Gone);
        session.finish(end).await;
        drop(guard);
    }
    .instrument(span)
    .await;
}

struct Session {
    socket: WebSocket,
    state: AppState,
    id: u64,
}

impl Session {
    fn max_frame(&self) -> usize {
        self.state.limits().max_frame_bytes as usize
    }

    async fn send(&mut self, msg: &ServerMessage) -> Result<(), End> {
        let frame = msg.encode().map_err(|e| {
            tracing::error!(error = %e, "could not encode a reply");
            fatal(ErrorCode::Internal, "the relay could not encode its reply")
        })?;
        self.socket.send(Message::Binary(frame.into())).await.map_err(|_| End::Gone)
    }

    async fn finish(&mut self, end: End) {
        let End::Fatal(error) = end else {
            tracing::debug!("disconnected");
            return;
        };
        match error.code {
            ErrorCode::Internal => {
                tracing::error!(code = ?error.code, message = %error.message, "closing connection")
            }
            _ => tracing::info!(code = ?error.code, message = %error.message, "closing connection"),
        }
        let grace = if error.code == ErrorCode::Unavailable { SHUTDOWN_CLOSE_GRACE } else { CLOSE_GRACE };
        let close = CloseFrame { code: close_code_for(error.code), reason: format!("{:?}", error.code).into() };
        if self.send(&ServerMessage::Error(error)).await.is_err() {
            return;
        }
        if self.socket.send(Message::Close(Some(close))).await.is_err() {
            return;
        }
        // Read until the client's close reply so the error frame is not lost
        // to a TCP reset over unread data.
        let _ = tokio::time::timeout(grace, async {
            while let Some(Ok(msg)) = self.socket.recv().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }

    async fn run(&mut self) -> Result<(), End> {
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|e| {
            tracing::error!(error = %e, "no randomness for the challenge");
            fatal(ErrorCode::Internal, "the relay could not create a challenge")
        })?;
        let challenge = ChallengeNonce::from_bytes(nonce);
        self.send(&ServerMessage::Challenge { nonce: challenge }).await?;

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
        let frame = loop {
            match classify(self.socket.recv().await, max)? {
                Incoming::Frame(bytes) => break bytes,
                Incoming::KeepAlive => continue,
            }
        };
        match ClientMessage::decode(&frame).map_err(decode_error)? {
            ClientMessage::Hello { workspace, signature, register } => {
                let state = self.state.clone();
                authenticate(&state, workspace, challenge, &signature, register).await?;
                Ok(workspace)
            }
            _ => Err(fatal(ErrorCode::UnexpectedMessage, "the first message must be Hello")),
        }
    }
}

async fn authenticate(
    state: &AppState,
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
                let stored = store
                    .create_workspace(workspace, proposed)
                    .await
                    .map_err(store_fatal)?;
                if !stored.ct_eq(&proposed) {
                    return Err(unauthorized());
                }
                tracing::info!(%workspace, "workspace registered");
                stored
            }
            (None, None) => {
                return Err(fatal(
                    ErrorCode::UnknownWorkspace,
                    format!("workspace {workspace} does not exist on this relay; its first member registers it by sending a verifier"),
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
        let mut subscription = state.hub().subscribe(workspace);
        let head = state.store().head(workspace).await.map_err(store_fatal)?;
        self.send(&ServerMessage::Welcome { head, limits: limits.announced() }).await?;
        tracing::debug!(%head, "authenticated");

        let mut budget = ConnectionBudget::new(&limits, Instant::now().into_std());
        let idle = limits.idle_timeout();
        let mut deadline = Instant::now() + idle;
        let ping_every = (idle / 3).max(Duration::from_millis(10));
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut shutdown = state.shutdown_signal();
        let max = self.max_frame();

        loop {
            tokio::select! {
                received = self.socket.recv() => {
                    deadline = Instant::now() + idle;
                    let Incoming::Frame(frame) = classify(received, max)? else { continue };
                    let msg = ClientMessage::decode(&frame).map_err(decode_error)?;
                    if let Err(wait) = budget.admit(frame.len(), Instant::now().into_std()) {
                        let retry = u32::try_from(wait.as_millis().max(1)).unwrap_or(u32::MAX);
                        self.send(&ServerMessage::Error(WireError {
                            request: msg.request_id(),
                            code: ErrorCode::RateLimited,
                            message: format!("rate limit exceeded; retry in {retry} ms"),
                            fatal: false,
                            retry_after_ms: Some(retry),
                        })).await?;
                        continue;
                    }
                    self.handle(workspace, msg).await?;
                }
                live = subscription.receiver.recv() => match live {
                    Ok(LiveFrame { origin, frame }) => {
                        if origin != self.id {
                            self.socket.send(Message::Binary(frame)).await.map_err(|_| End::Gone)?;
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "slow connection skipped live frames");
                        let head = state.store().head(workspace).await.map_err(store_fatal)?;
                        self.send(&ServerMessage::Behind { head }).await?;
                    }
                    Err(RecvError::Closed) => {
                        return Err(fatal(ErrorCode::Internal, "live channel closed"));
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    return Err(fatal(
                        ErrorCode::IdleTimeout,
                        format!("nothing received for {} ms", idle.as_millis()),
                    ));
                }
                _ = ping.tick() => {
                    self.socket.send(Message::Ping(Bytes::new())).await.map_err(|_| End::Gone)?;
                }
                _ = shutdown.changed() => {
                    return Err(fatal(ErrorCode::Unavailable, "the relay is shutting down; reconnect later"));
                }
            }
        }
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
                } else {
                    match store.append(workspace, envelopes).await {
                        Ok(entries) => {
                            let seqs = entries.iter().map(|e| e.seq).collect();
                            self.send(&ServerMessage::Pushed { request, seqs }).await?;
                            self.publish(workspace, entries);
                            return Ok(());
                        }
                        Err(e) => store_soft(request, e)?,
                    }
                }
            }
            ClientMessage::Pull { request, since, limit } => {
                let limit = limit.clamp(1, limits.max_pull_entries);
                let max_bytes = self.max_frame().saturating_sub(BATCH_FRAME_RESERVE).max(1);
                match store.pull(workspace, since, limit, max_bytes).await {
                    Ok(page) => {
                        ServerMessage::Batch { request, entries: page.entries, cursor: page.cursor, more: page.more }
                    }
                    Err(e) => store_soft(request, e)?,
                }
            }
            ClientMessage::ReplaceWithSnapshot { request, snapshot, covers_through } => {
                if snapshot.ciphertext.len() < ENVELOPE_TAG_LEN {
                    soft(Some(request), ErrorCode::InvalidRequest, "the snapshot is shorter than an authentication tag")
                } else {
                    match store.replace_with_snapshot(workspace, snapshot, covers_through).await {
                        Ok(outcome) => {
                            self.send(&ServerMessage::SnapshotStored {
                                request,
                                seq: outcome.entry.seq,
                                removed: outcome.removed,
                            })
                            .await?;
                            self.publish(workspace, vec![outcome.entry]);
                            return Ok(());
                        }
                        Err(e) => store_soft(request, e)?,
                    }
                }
            }
            ClientMessage::DeleteDocument { request, doc_tag } => {
                match store.delete_document(workspace, doc_tag).await {
                    Ok(removed) => {
                        tracing::info!(%doc_tag, removed, "document erased");
                        ServerMessage::DocumentDeleted { request, removed }
                    }
                    Err(e) => store_soft(request, e)?,
                }
            }
        };
        self.send(&reply).await
    }

    fn publish(&self, workspace: WorkspaceId, entries: Vec<LogEntry>) {
        match (ServerMessage::Live { entries }).encode() {
            Ok(frame) => self.state.hub().publish(&workspace, LiveFrame { origin: self.id, frame: frame.into() }),
            // Live frames are hints; members catch up by pulling.
            Err(e) => tracing::error!(error = %e, "could not encode a live frame"),
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
        StoreError::UnknownWorkspace(_) => soft(request, ErrorCode::UnknownWorkspace, e.to_string()),
        StoreError::WriterStopped => return Err(store_fatal(e)),
        StoreError::Corrupt(_) | StoreError::Backend(_) => {
            tracing::error!(error = %e, "store failure");
            soft(request, ErrorCode::Internal, "the relay's storage failed; the request was not applied")
        }
    })
}
