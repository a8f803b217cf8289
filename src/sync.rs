//! The app's side of relay sync: runs a `rapport_sync::SyncDriver` in the
//! one tab that holds the workspace's sync lock, over a browser WebSocket,
//! applying received changes through the [`Engine`]'s hydrated documents.
//! Other tabs learn about changes and the sync status over the tab channel.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;
use rapport_core::record::Row;
use rapport_sync::{
    Applier, Event, Host, Interrupted, Received, SyncConfig, SyncDriver, SyncProblem, SyncStatus, Transport,
    TransportError,
};

use crate::engine::{Engine, IdbRepo};
use crate::net::socket::{Socket, SocketEvent};
use crate::state::AppState;

type Driver = SyncDriver<Rc<IdbRepo>, EngineApplier, BrowserTransport, BrowserHost>;

/// The running sync of this tab (present only in the leader tab).
pub struct SyncService {
    driver: Rc<Driver>,
}

impl SyncService {
    /// Tells the driver that local edits were queued (this tab or another).
    pub fn local_changes(&self) {
        let driver = self.driver.clone();
        spawn_local(async move { driver.local_changes().await });
    }

    /// Deletes these records' data on the relay (a local erasure).
    pub fn erase_on_relay(&self, ids: Vec<rapport_core::ids::RecordId>) {
        let driver = self.driver.clone();
        spawn_local(async move { driver.erase_on_relay(ids).await });
    }

    /// Asks the relay to delete every tombstoned record it has not yet
    /// confirmed deleting (erasures from any replica).
    pub fn erase_tombstoned(&self, tombstones: rapport_core::privacy::Tombstones) {
        let driver = self.driver.clone();
        spawn_local(async move { driver.erase_tombstoned(&tombstones).await });
    }

    /// Reconnects now (after the user fixed something, or came online).
    pub fn retry(&self) {
        let driver = self.driver.clone();
        spawn_local(async move { driver.handle(Event::Start).await });
    }
}

/// Starts sync for this tab's workspace, once this tab holds the lock.
pub fn start(app: AppState, config: SyncConfig, db_name: &str) {
    let lock = format!("rapport-sync:{db_name}");
    crate::net::leader::when_leader(&lock, move || {
        spawn_local(async move {
            let engine = app.engine();
            let transport = BrowserTransport::default();
            let host = BrowserHost { app };
            let applier = EngineApplier { engine: engine.clone() };
            match SyncDriver::open(&config, engine.repo(), applier, transport, host).await {
                Ok(driver) => {
                    let driver = Rc::new(driver);
                    let weak = Rc::downgrade(&driver);
                    driver.transport().set_handler(move |event| {
                        if let Some(driver) = weak.upgrade() {
                            spawn_local(async move { driver.handle(event).await });
                        }
                    });
                    listen_for_network(driver.clone());
                    let set_aside = driver.quarantined();
                    if !set_aside.is_empty() {
                        app.sync_set_aside_changed(&set_aside);
                    }
                    let service = Rc::new(SyncService { driver: driver.clone() });
                    app.sync.set_value(Some(service.clone()));
                    service.erase_tombstoned(app.workspace.with_untracked(|w| w.tombstones.clone()));
                    // Started offline: wait for the `online` event.
                    if crate::browser::online() {
                        driver.start().await;
                    } else {
                        app.sync_status_changed(&SyncStatus::Offline);
                    }
                }
                Err(e) => app.sync_status_changed(&SyncStatus::Error(SyncProblem::LocalStorage(e.to_string()))),
            }
        });
    });
}

/// The browser's network events drive the connection at once: going
/// offline stops sync (closes the socket, the indicator says so) rather
/// than waiting for a connection that can no longer carry anything to time
/// out; going online reconnects instead of waiting for the backoff.
fn listen_for_network(driver: Rc<Driver>) {
    let online = {
        let driver = driver.clone();
        window_event_listener(leptos::ev::online, move |_| {
            let driver = driver.clone();
            spawn_local(async move { driver.handle(Event::Start).await });
        })
    };
    let offline = window_event_listener(leptos::ev::offline, move |_| {
        let driver = driver.clone();
        spawn_local(async move { driver.handle(Event::Stop).await });
    });
    // The tab keeps syncing for its whole life.
    std::mem::forget(online);
    std::mem::forget(offline);
}

type EventHandler = Rc<dyn Fn(Event)>;

/// A WebSocket per connection attempt; its events go to the driver.
#[derive(Default)]
pub struct BrowserTransport {
    socket: RefCell<Option<Rc<Socket>>>,
    handler: RefCell<Option<EventHandler>>,
}

impl BrowserTransport {
    fn set_handler(&self, handler: impl Fn(Event) + 'static) {
        *self.handler.borrow_mut() = Some(Rc::new(handler));
    }
}

impl Transport for BrowserTransport {
    fn connect(&self, url: &str) {
        let Some(handler) = self.handler.borrow().clone() else { return };
        let on_event = {
            let handler = handler.clone();
            move |event: SocketEvent| {
                handler(match event {
                    SocketEvent::Open => Event::Connected,
                    SocketEvent::Frame(bytes) => Event::Frame(bytes),
                    SocketEvent::Closed => Event::Disconnected,
                })
            }
        };
        match Socket::connect(url, on_event) {
            Ok(socket) => {
                if let Some(old) = self.socket.replace(Some(socket)) {
                    old.close();
                }
            }
            // Report asynchronously: the driver is in the middle of handling.
            Err(_) => spawn_local(async move { handler(Event::Disconnected) }),
        }
    }

    fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        match self.socket.borrow().as_ref() {
            Some(socket) if socket.send(&frame) => Ok(()),
            _ => Err(TransportError("not connected".into())),
        }
    }

    fn close(&self) {
        if let Some(socket) = self.socket.take() {
            socket.close();
        }
    }
}

/// Merges received changes through the engine, so documents open in this
/// tab see them at once.
pub struct EngineApplier {
    engine: Rc<Engine>,
}

impl Applier for EngineApplier {
    async fn apply(&self, entries: &[Received], now_ms: u64) -> Result<Vec<Row>, Interrupted> {
        self.engine.apply_remote(entries, now_ms).await
    }
}

pub struct BrowserHost {
    app: AppState,
}

impl Host for BrowserHost {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn fill_random(&self, dest: &mut [u8]) {
        crate::browser::fill_random(dest);
    }

    fn wake_after(&self, ms: u64) {
        let app = self.app;
        spawn_local(async move {
            gloo_timers::future::TimeoutFuture::new(u32::try_from(ms).unwrap_or(u32::MAX)).await;
            if let Some(service) = app.sync.get_value() {
                service.driver.tick().await;
            }
        });
    }

    fn status_changed(&self, status: &SyncStatus) {
        self.app.sync_status_changed(status);
    }

    /// The engine merged the page into the documents this tab keeps open and
    /// returned every changed row: those rows go into the list as they are.
    /// Only the workspace document takes the full path (adoption when
    /// joining, tombstones, other tabs), through `AppState::synced_rows`.
    /// Sending every record there would reload each one from IndexedDB and
    /// keep it hydrated: on a first pull, every record of the workspace.
    fn rows_changed(&self, rows: &[Row]) {
        let app = self.app;
        let (workspace, records): (Vec<Row>, Vec<Row>) =
            rows.iter().cloned().partition(|r| r.kind == rapport_core::record::RecordKind::Workspace);
        if !workspace.is_empty() {
            app.synced_rows(&workspace);
        }
        if records.is_empty() {
            return;
        }
        let ids: Vec<_> = records.iter().map(|r| r.id).collect();
        if let Some(tabs) = app.tabs.get_value() {
            tabs.announce(&ids);
        }
        app.index.update(|index| records.into_iter().for_each(|row| index.upsert(row)));
        // Views showing one of these records read it again (hydrated here,
        // so they see the merge at once).
        app.external.update(|(n, changed)| {
            *n += 1;
            *changed = ids;
        });
    }

    fn is_erased(&self, record: rapport_core::ids::RecordId) -> bool {
        self.app.workspace.with_untracked(|w| w.tombstones.is_erased(record))
    }

    fn problem(&self, problem: &SyncProblem) {
        leptos::logging::warn!("sync: {}", problem.message());
    }

    fn quarantine_changed(&self, list: &rapport_sync::QuarantineList) {
        self.app.sync_set_aside_changed(list);
    }
}
