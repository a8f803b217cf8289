//! Rapport as an installed, offline web app: registers the service worker,
//! notices when a new version has been deployed, and asks the browser to
//! keep this site's data once the user has saved something.
//!
//! The worker (`sw.js` at the app's root, generated from `public/sw.js` by
//! `scripts/pwa-build.mjs`) keeps every file of one build in a cache and
//! answers page loads from it, so the app starts with no network. A deploy
//! changes `sw.js`; the browser installs the new worker next to the running
//! one, where it waits. This module turns that into [`Update::Ready`], the
//! banner (`views::update`) offers "Reload", and only when the user agrees
//! does [`Pwa::apply_update`] let the new worker take over and reload the
//! page. Nothing is ever reloaded without the user asking.
//!
//! Typical flow: `main` calls [`Pwa::start`] before the workspace opens, then
//! [`Pwa::provide`] inside the mounted app.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
// Leptos's executor starts with the first mount, after `Pwa::start`.
use wasm_bindgen_futures::{spawn_local, JsFuture};

use crate::browser;
use crate::state::{AppState, SaveState};

/// How often a long-running tab asks the server for a new `sw.js`. The
/// browser also checks on every page load; a check is one small request.
const UPDATE_CHECK_EVERY: Duration = Duration::from_secs(60 * 60);

/// Whether a newer version of the app than the one running is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// What runs is the newest version this browser knows of.
    None,
    /// A new version is downloaded (ready offline) and waits for a reload.
    Ready,
    /// The user asked for it: the new version is taking over, then the page
    /// reloads.
    Applying,
}

/// The app's service worker registration and update state, shared through
/// context. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Pwa {
    update: RwSignal<Update>,
    registration: StoredValue<Option<ServiceWorkerRegistration>, LocalStorage>,
}

impl Pwa {
    /// Registers the service worker (scoped to the app's public URL) and
    /// starts watching for updates. Does nothing where service workers are
    /// unavailable (plain http on a non-local host, some private modes): the
    /// app then still works online.
    pub fn start() -> Self {
        let pwa = Self { update: RwSignal::new(Update::None), registration: StoredValue::new_local(None) };
        let Some(container) = service_workers() else {
            leptos::logging::warn!("Service workers are not available here: Rapport will not open without a network.");
            return pwa;
        };
        spawn_local(async move {
            match register(&container).await {
                Ok(registration) => pwa.watch(&container, registration),
                Err(e) => leptos::logging::warn!("Rapport could not set itself up for offline use: {e}"),
            }
        });
        pwa
    }

    /// Makes the state available to views and asks for persistent storage
    /// after the first successful save (before that there is nothing to keep,
    /// and browsers that prompt would ask out of context).
    pub fn provide(self, app: AppState) {
        provide_context(self);
        let asked = StoredValue::new(false);
        Effect::new(move |_| {
            if app.save.get() == SaveState::Saved && !asked.get_value() {
                asked.set_value(true);
                spawn_local(async move {
                    if !persisted().await {
                        app.engine().request_persistence().await;
                    }
                });
            }
        });
    }

    pub fn update(&self) -> Signal<Update> {
        self.update.into()
    }

    /// Lets the waiting version take over and reloads the page once it has.
    /// Call only when nothing unsaved is on screen: the page reloads.
    pub fn apply_update(self) {
        if self.update.get_untracked() != Update::Ready {
            return;
        }
        self.update.set(Update::Applying);
        let waiting = self.registration.with_value(|r| r.as_ref().and_then(ServiceWorkerRegistration::waiting));
        match waiting {
            // `controllerchange` (see `watch`) reloads once it has taken over.
            Some(worker) => {
                let message = js_sys::Object::new();
                let _ = js_sys::Reflect::set(&message, &"type".into(), &"SKIP_WAITING".into());
                worker.post_message(&message);
                // Should the worker never take over (it failed, or another
                // tab's reload replaced it), reload anyway: that is what the
                // user asked for and the page has nothing unsaved.
                spawn_local(async {
                    gloo_timers::future::sleep(Duration::from_secs(10)).await;
                    reload();
                });
            }
            // Already active (another tab applied it): a reload loads it.
            None => reload(),
        }
    }

    /// Follows the registration: a worker found waiting at start, one that
    /// finishes installing later, and one that takes over.
    fn watch(self, container: &ServiceWorkerContainer, registration: ServiceWorkerRegistration) {
        // The first install (no controller yet) is not an update.
        let controlled = Rc::new(Cell::new(container.controller().is_some()));
        if controlled.get() && registration.waiting().is_some() {
            self.update.set(Update::Ready);
        }

        let on_update_found = {
            let registration = registration.clone();
            Closure::<dyn Fn()>::new(move || {
                let Some(worker) = registration.installing() else { return };
                let installed = {
                    let worker = worker.clone();
                    Closure::<dyn Fn()>::new(move || {
                        let has_controller = service_workers().is_some_and(|c| c.controller().is_some());
                        if worker.state() == "installed"
                            && has_controller
                            && self.update.get_untracked() == Update::None
                        {
                            self.update.set(Update::Ready);
                        }
                    })
                };
                let _ = worker.add_event_listener_with_callback("statechange", installed.as_ref().unchecked_ref());
                installed.forget();
            })
        };
        let _ = registration.add_event_listener_with_callback("updatefound", on_update_found.as_ref().unchecked_ref());
        on_update_found.forget();

        let on_controller_change = Closure::<dyn Fn()>::new(move || {
            match self.update.get_untracked() {
                Update::Applying => reload(),
                // Another tab let a new version take over: this page still
                // runs the old one, and a reload (when the user wants) loads
                // the new. (A first controller, after the first install, is
                // not a new version.)
                Update::None if controlled.get() => self.update.set(Update::Ready),
                _ => {}
            }
            controlled.set(true);
        });
        let _ = container
            .add_event_listener_with_callback("controllerchange", on_controller_change.as_ref().unchecked_ref());
        on_controller_change.forget();

        self.registration.set_value(Some(registration));

        // Tabs stay open for days: check now and then, and when the network
        // comes back.
        let check = Closure::<dyn Fn()>::new(move || self.check_for_update());
        if let Some(window) = web_sys::window() {
            let _ = window.add_event_listener_with_callback("online", check.as_ref().unchecked_ref());
        }
        check.forget();
        spawn_local(async move {
            loop {
                gloo_timers::future::sleep(UPDATE_CHECK_EVERY).await;
                self.check_for_update();
            }
        });
    }

    /// Asks the server for a newer `sw.js`. Offline, that fails; the next
    /// check will do.
    fn check_for_update(self) {
        let Some(registration) = self.registration.with_value(Clone::clone) else { return };
        spawn_local(async move {
            let _ = JsFuture::from(registration.update()).await;
        });
    }
}

/// Where the worker lives and what it controls: the app's public URL (the
/// `<base>` of index.html), so several deployments on one host stay apart.
async fn register(container: &ServiceWorkerContainer) -> Result<ServiceWorkerRegistration, String> {
    let base = browser::base_path();
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"scope".into(), &format!("{base}/").into());
    // Always fetch sw.js from the server when checking for a new version.
    let _ = js_sys::Reflect::set(&options, &"updateViaCache".into(), &"none".into());
    let registration = JsFuture::from(container.register(&format!("{base}/sw.js"), &options)).await.map_err(|e| {
        e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
    })?;
    Ok(registration.unchecked_into())
}

fn service_workers() -> Option<ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    let value = js_sys::Reflect::get(&navigator, &"serviceWorker".into()).ok()?;
    (!value.is_undefined() && !value.is_null()).then(|| value.unchecked_into())
}

/// Whether the browser already promised to keep this site's data.
async fn persisted() -> bool {
    let Some(promise) = web_sys::window().and_then(|w| w.navigator().storage().persisted().ok()) else { return false };
    JsFuture::from(promise).await.ok().and_then(|v| v.as_bool()).unwrap_or(false)
}

fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

// The few parts of the Service Worker API used here, bound directly rather
// than through more web-sys features.
#[wasm_bindgen]
extern "C" {
    /// `navigator.serviceWorker`
    #[wasm_bindgen(extends = web_sys::EventTarget)]
    #[derive(Clone)]
    type ServiceWorkerContainer;
    #[wasm_bindgen(method)]
    fn register(this: &ServiceWorkerContainer, url: &str, options: &js_sys::Object) -> js_sys::Promise;
    #[wasm_bindgen(method, getter)]
    fn controller(this: &ServiceWorkerContainer) -> Option<ServiceWorker>;

    #[wasm_bindgen(extends = web_sys::EventTarget)]
    #[derive(Clone)]
    type ServiceWorkerRegistration;
    #[wasm_bindgen(method, getter)]
    fn installing(this: &ServiceWorkerRegistration) -> Option<ServiceWorker>;
    #[wasm_bindgen(method, getter)]
    fn waiting(this: &ServiceWorkerRegistration) -> Option<ServiceWorker>;
    #[wasm_bindgen(method)]
    fn update(this: &ServiceWorkerRegistration) -> js_sys::Promise;

    #[wasm_bindgen(extends = web_sys::EventTarget)]
    #[derive(Clone)]
    type ServiceWorker;
    #[wasm_bindgen(method, getter)]
    fn state(this: &ServiceWorker) -> String;
    #[wasm_bindgen(method, js_name = postMessage)]
    fn post_message(this: &ServiceWorker, message: &JsValue);
}
