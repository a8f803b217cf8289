//! HTTP surface of the relay: the shared [`AppState`], the router built by
//! [`app`] (`/sync` WebSocket, `/healthz`, optional static web app with the
//! documented security headers), the HTTP error type [`AppError`] and
//! [`serve`], the accept loop.
//!
//! Every TCP connection is counted from `accept`, before any byte is read:
//! against `--max-connections` and `--max-connections-per-address`. A
//! connection over a limit gets a short `503` and is closed. HTTP/1.1 is
//! served by hyper with a timeout on the request head, so a client that
//! sends partial headers, or nothing, is dropped after
//! `--header-timeout-ms`. The WebSocket upgrade hands the counted slot to
//! the session, which keeps it until the socket closes.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::config::Limits;
use crate::deadline::WriteDeadline;
use crate::hub::Hub;
use crate::rate::TokenBucket;
use crate::store::{Store, StoreError};

/// Connections over a limit being answered `503` at once; beyond this many
/// they are closed without an answer (each holds a descriptor for at most
/// [`REFUSAL_TIME`]).
pub const MAX_REFUSING: usize = 64;
/// How long a refused connection may take to be told `503`.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Descriptors the relay needs besides its connections and refusals: the
/// listener, the writer's database, WAL and shared memory, up to
/// [`crate::store::sqlite::MAX_CONCURRENT_READS`] readers with two each,
/// standard streams, and a margin.
pub const RESERVED_DESCRIPTORS: u64 = 128;
/// Remembered registration buckets before full (idle) ones are forgotten.
const MAX_REGISTRATION_ENTRIES: usize = 10_000;

/// The Content-Security-Policy of the web app, as documented in
/// docs/DEPLOY.md for static hosting.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self'; manifest-src 'self'; worker-src 'self'; connect-src 'self' ws: wss:; \
base-uri 'self'; form-action 'none'; frame-ancestors 'none'";

/// The key a per-address limit counts under: an IPv4 address, or the /64
/// prefix of an IPv6 address (one host often holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressKey(IpAddr);

impl AddressKey {
    /// The key of a peer address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey(IpAddr::V4(v4)),
                None => {
                    let mut segments = v6.segments();
                    segments[4..].fill(0);
                    AddressKey(IpAddr::V6(segments.into()))
                }
            },
        }
    }
}

/// A peer address as logged at info level: the last IPv4 octet or the host
/// half of an IPv6 address is hidden. Full addresses are logged at debug.
pub fn truncated(ip: IpAddr) -> String {
    match AddressKey::of(ip).0 {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.x")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    limits: Limits,
    static_dir: Option<PathBuf>,
    connections: AtomicUsize,
    per_address: Mutex<HashMap<AddressKey, usize>>,
    registrations: Mutex<HashMap<AddressKey, TokenBucket>>,
    refusing: AtomicUsize,
    next_connection_id: AtomicU64,
    shutdown: watch::Sender<bool>,
}

/// Why a connection is refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-connections` reached.
    Full,
    /// `--max-connections-per-address` reached for this address.
    AddressFull,
}

impl AppState {
    /// State over a store, with the given limits and optional web app
    /// directory.
    pub fn new(store: Arc<dyn Store>, limits: Limits, static_dir: Option<PathBuf>) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                hub: Arc::new(Hub::default()),
                limits,
                static_dir,
                connections: AtomicUsize::new(0),
                per_address: Mutex::new(HashMap::new()),
                registrations: Mutex::new(HashMap::new()),
                refusing: AtomicUsize::new(0),
                next_connection_id: AtomicU64::new(1),
                shutdown: watch::channel(false).0,
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The live fan-out hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Open connections (HTTP and WebSocket), counted from accept.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::SeqCst)
    }

    /// Tells every connection to close (with an `Unavailable` error) and
    /// refuses new ones.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Waits until every connection has ended, or `timeout`. Returns
    /// whether all ended.
    pub async fn wait_for_connections(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.connection_count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Counts a new connection from `ip`, or says which limit refuses it.
    ///
    /// # Errors
    /// The [`Refusal`] when a limit is reached.
    pub fn try_acquire_connection(&self, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let limits = &self.inner.limits;
        let key = AddressKey::of(ip);
        let mut per_address = self.inner.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        let count = per_address.get(&key).copied().unwrap_or(0);
        if count >= limits.max_connections_per_address {
            return Err(Refusal::AddressFull);
        }
        let max = limits.max_connections;
        self.inner
            .connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .map_err(|_| Refusal::Full)?;
        per_address.insert(key, count + 1);
        Ok(ConnectionGuard {
            state: self.clone(),
            key,
            id: self.inner.next_connection_id.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Takes one registration from `ip`'s hourly allowance, or says how long
    /// until one is available (`None`: registration is disabled).
    pub(crate) fn allow_registration(&self, ip: IpAddr) -> Result<(), Option<Duration>> {
        let per_hour = u64::from(self.inner.limits.registrations_per_hour);
        if per_hour == 0 {
            return Err(None);
        }
        let now = Instant::now();
        let mut buckets = self.inner.registrations.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_REGISTRATION_ENTRIES {
            // A full bucket is the same as no entry: forget those.
            buckets.retain(|_, bucket| !bucket.is_full(now));
        }
        let bucket = buckets.entry(AddressKey::of(ip)).or_insert_with(|| TokenBucket::per_hour(per_hour, now));
        bucket.try_take(1, now).map_err(Some)
    }

    /// Gives back a registration that created nothing.
    pub(crate) fn refund_registration(&self, ip: IpAddr) {
        let mut buckets = self.inner.registrations.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = buckets.get_mut(&AddressKey::of(ip)) {
            bucket.give_back(1);
        }
    }
}

/// Counts one open connection; releases it on drop.
pub struct ConnectionGuard {
    state: AppState,
    key: AddressKey,
    pub(crate) id: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let inner = &self.state.inner;
        let mut per_address = inner.per_address.lock().unwrap_or_else(PoisonError::into_inner);
        match per_address.get_mut(&self.key) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                per_address.remove(&self.key);
            }
        }
        inner.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's counted slot while it is plain HTTP; the WebSocket
/// upgrade takes the guard out for the session.
#[derive(Clone)]
struct Slot {
    guard: Arc<Mutex<Option<ConnectionGuard>>>,
    peer: SocketAddr,
}

/// Errors of the HTTP endpoints. Client-caused ones get a precise 4xx/503
/// and are not logged as errors; internal ones a generic 5xx and are.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Shutdown has begun.
    #[error("the relay is shutting down")]
    ShuttingDown,
    /// The store failed the health probe.
    #[error("storage is unavailable")]
    StoreUnavailable(#[source] StoreError),
    /// `/sync` without a valid WebSocket upgrade request.
    #[error("this endpoint speaks WebSocket only: {0}")]
    NotWebSocket(&'static str),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::ShuttingDown => {
                tracing::info!(error = %self, "refused a connection");
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::StoreUnavailable(source) => {
                tracing::error!(error = %source, "health check failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::NotWebSocket(_) => StatusCode::BAD_REQUEST,
        };
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// The relay's router: `GET /sync` (WebSocket), `GET /healthz`, and the
/// static web app (with `index.html` fallback) when a directory is set.
/// Every response carries the security headers of docs/DEPLOY.md.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new().route("/sync", get(sync_socket)).route("/healthz", get(healthz));
    if let Some(dir) = &state.inner.static_dir {
        let index = ServeFile::new(dir.join("index.html"));
        router = router.fallback_service(ServeDir::new(dir).fallback(index));
    }
    let headers: [(HeaderName, &'static str); 3] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let mut router = router.layer(TraceLayer::new_for_http());
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)));
    }
    router.with_state(state)
}

/// `200 {"status":"ok"}` after an O(1) probe of the store; nothing else.
async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.store().check().await.map_err(AppError::StoreUnavailable)?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

fn header_has(request: &Request, name: HeaderName, token: &str) -> bool {
    request
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

async fn sync_socket(
    State(state): State<AppState>,
    Extension(slot): Extension<Slot>,
    mut request: Request,
) -> Result<Response, AppError> {
    if state.is_shutting_down() {
        return Err(AppError::ShuttingDown);
    }
    if !header_has(&request, header::CONNECTION, "upgrade") || !header_has(&request, header::UPGRADE, "websocket") {
        return Err(AppError::NotWebSocket("expected Connection: upgrade and Upgrade: websocket"));
    }
    if request.headers().get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) != Some("13") {
        return Err(AppError::NotWebSocket("expected Sec-WebSocket-Version: 13"));
    }
    let key =
        request.headers().get(header::SEC_WEBSOCKET_KEY).ok_or(AppError::NotWebSocket("missing Sec-WebSocket-Key"))?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
        .ok_or(AppError::NotWebSocket("the connection cannot be upgraded"))?;
    let guard = slot
        .guard
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or(AppError::NotWebSocket("this connection was already upgraded"))?;
    let max = state.limits().max_frame_bytes as usize;
    let config = WebSocketConfig::default()
        // tungstenite's default 128 KiB read buffer is zero-filled per read
        // and held per connection: 8 KiB keeps 10,000 idle connections near
        // 150 MB instead of 1.4 GB (docs/BENCHMARKS.md).
        .read_buffer_size(8 * 1024)
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let peer = slot.peer;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                crate::session::run(socket, state, guard, peer).await;
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    Ok(response)
}

/// Answers a refused connection with a `503` and closes it, reading what
/// it sent first so the answer is not lost to a reset.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let message = match refusal {
        Refusal::Full => "the relay is at its connection limit; retry later",
        Refusal::AddressFull => "too many connections from this address; retry later",
    };
    let body = serde_json::json!({ "error": message }).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\nretry-after: 5\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_TIME, async {
        let mut head = [0u8; 4096];
        let mut seen = 0;
        // Up to the end of the request head (or 4 KiB of it).
        while seen < head.len() {
            match stream.read(&mut head[seen..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen += n,
            }
            if head[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        // Wait for the client to close so the kernel does not reset.
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Serves one accepted connection: HTTP/1.1 with a request-head timeout
/// and WebSocket upgrades, until it closes or the relay shuts down.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    guard: ConnectionGuard,
    router: Router,
    state: AppState,
) {
    let slot = Slot { guard: Arc::new(Mutex::new(Some(guard))), peer };
    let service_slot = slot.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(service_slot.clone());
        router.clone().oneshot(request.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(state.limits().header_timeout()).max_buf_size(64 * 1024);
    let io = TokioIo::new(WriteDeadline::new(stream, state.limits().send_timeout()));
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let mut shutdown = state.shutdown_signal();
    let stopping = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping => {
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_secs(1), connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "HTTP connection ended");
    }
    // Dropping the slot releases the count unless a session took it.
    drop(slot);
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then asks
/// every connection to close and waits (up to 5 s) for them to finish.
///
/// # Errors
/// None today: accept errors (such as running out of descriptors) are
/// logged and retried; the signature leaves room for fatal listener errors.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let router = app(state.clone());
    tokio::pin!(shutdown);
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: say so at most once a second and
                    // give connections time to end instead of spinning.
                    if last_accept_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, open = state.connection_count(), "cannot accept a connection");
                        last_accept_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if state.is_shutting_down() {
            break;
        }
        let _ = stream.set_nodelay(true);
        match state.try_acquire_connection(peer.ip()) {
            Ok(guard) => {
                tokio::spawn(serve_connection(stream, peer, guard, router.clone(), state.clone()));
            }
            Err(refusal) => {
                tracing::debug!(peer = %peer, ?refusal, "refused a connection");
                let refusing = &state.inner.refusing;
                if refusing.fetch_add(1, Ordering::SeqCst) < MAX_REFUSING {
                    let state = state.clone();
                    tokio::spawn(async move {
                        refuse(stream, refusal).await;
                        state.inner.refusing.fetch_sub(1, Ordering::SeqCst);
                    });
                } else {
                    refusing.fetch_sub(1, Ordering::SeqCst);
                    drop(stream);
                }
            }
        }
    }
    drop(listener);
    tracing::info!("shutting down: closing connections");
    state.begin_shutdown();
    if !state.wait_for_connections(Duration::from_secs(5)).await {
        tracing::warn!(open = state.connection_count(), "connections still open after 5 s; exiting anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(AddressKey::of(a), AddressKey::of(b));
        assert_ne!(AddressKey::of(a), AddressKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(AddressKey::of(mapped), AddressKey::of("192.0.2.7".parse().expect("ip")));
        assert_eq!(truncated("192.0.2.7".parse().expect("ip")), "192.0.2.x");
        assert_eq!(truncated(a), "2001:db8:1:2::/64");
    }
}
