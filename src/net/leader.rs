//! One tab per workspace holds the relay connection. The Web Locks API
//! grants a named lock to one tab at a time and hands it to another tab when
//! the holder closes, which is exactly leader election for tabs.
//! Browsers without Web Locks treat every tab as the leader.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Calls `on_leader` once this tab holds the lock `name`. The lock is held
/// for the life of the tab.
pub fn when_leader(name: &str, on_leader: impl FnOnce() + 'static) {
    let Some(locks) = web_sys::window()
        .map(|w| w.navigator())
        .and_then(|n| js_sys::Reflect::get(&n, &"locks".into()).ok())
        .filter(|l| !l.is_undefined() && !l.is_null())
    else {
        on_leader();
        return;
    };
    let mut on_leader = Some(on_leader);
    // The callback returns a promise that never settles, so the lock stays
    // held until the tab goes away.
    let granted = Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(move |_lock: JsValue| {
        if let Some(f) = on_leader.take() {
            f();
        }
        js_sys::Promise::new(&mut |_, _| {})
    });
    let request =
        js_sys::Reflect::get(&locks, &"request".into()).ok().and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    match request {
        Some(request) => {
            let _ = request.call2(&locks, &JsValue::from_str(name), granted.as_ref().unchecked_ref());
            granted.forget();
        }
        None => {
            if let Ok(f) = granted.as_ref().clone().dyn_into::<js_sys::Function>() {
                let _ = f.call1(&JsValue::NULL, &JsValue::NULL);
            }
            granted.forget();
        }
    }
}
