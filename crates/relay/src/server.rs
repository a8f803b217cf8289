//! HTTP surface of the relay: the shared [`AppState`], the router built by
//! [`app`] (`/sync` WebSocket, `/healthz`, optional static web app), the
//! HTTP error type [`AppError`] and [`serve`] with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::config::Limits;
use crate::hub::Hub;
use crate::store::{Store, StoreError};

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
    next_connection_id: AtomicU64,
    shutdown: watch::Sender<bool>,
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

    /// Open WebSocket connections.
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

    /// Waits until every WebSocket connection has ended, or `timeout`.
    /// Returns whether all ended.
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

    fn try_acquire_connection(&self) -> Option<ConnectionGuard> {
        let max = self.inner.limits.max_connections;
        let admitted = self
            .inner
            .connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1))
            .is_ok();
        admitted.then(|| ConnectionGuard {
            state: self.clone(),
            id: self.inner.next_connection_id.fetch_add(1, Ordering::Relaxed),
        })
    }
}

/// Counts one open connection; releases it on drop.
pub(crate) struct ConnectionGuard {
    state: AppState,
    pub(crate) id: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.state.inner.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Errors of the HTTP endpoints. Client-caused ones get a precise 4xx/503
/// and are not logged as errors; internal ones a generic 5xx and are.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The relay is at `--max-connections`.
    #[error("the relay is at its connection limit; retry later")]
    TooManyConnections,
    /// Shutdown has begun.
    #[error("the relay is shutting down")]
    ShuttingDown,
    /// The store failed the health probe.
    #[error("storage is unavailable")]
    StoreUnavailable(#[source] StoreError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::TooManyConnections | AppError::ShuttingDown => {
                tracing::info!(error = %self, "refused a connection");
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::StoreUnavailable(source) => {
                tracing::error!(error = %source, "health check failed");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response()
    }
}

/// The relay's router: `GET /sync` (WebSocket), `GET /healthz`, and the
/// static web app (with `index.html` fallback) when a directory is set.
pub fn app(state: AppState) -> Router {
    let mut router = Router::new().route("/sync", get(sync_socket)).route("/healthz", get(healthz));
    if let Some(dir) = &state.inner.static_dir {
        let index = ServeFile::new(dir.join("index.html"));
        router = router.fallback_service(ServeDir::new(dir).fallback(index));
    }
    router.layer(TraceLayer::new_for_http()).with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.store().check().await.map_err(AppError::StoreUnavailable)?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "connections": state.connection_count(),
        "live_workspaces": state.hub().active_workspaces(),
    })))
}

async fn sync_socket(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if state.is_shutting_down() {
        return Err(AppError::ShuttingDown);
    }
    let guard = state.try_acquire_connection().ok_or(AppError::TooManyConnections)?;
    let max = state.limits().max_frame_bytes as usize;
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    Ok(upgrade
        // tungstenite's default 128 KiB read buffer is zero-filled per read
        // and held per connection: 8 KiB keeps 10,000 idle connections near
        // 150 MB instead of 1.4 GB (docs/BENCHMARKS.md).
        .read_buffer_size(8 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| crate::session::run(socket, state, guard, peer)))
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then asks
/// every WebSocket to close and waits (up to 5 s) for them to finish.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let signal_state = state.clone();
    axum::serve(listener, app(state.clone()).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing connections");
            signal_state.begin_shutdown();
        })
        .await?;
    if !state.wait_for_connections(Duration::from_secs(5)).await {
        tracing::warn!(open = state.connection_count(), "connections still open after 5 s; exiting anyway");
    }
    Ok(())
}
