//! Tabs of one browser share a workspace through IndexedDB; this channel
//! (BroadcastChannel) tells the other tabs which records one of them just
//! stored, so they refresh those records at once instead of showing stale
//! copies. Messages carry record ids only, never record content.

use std::cell::RefCell;

use rapport_core::ids::RecordId;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

pub struct TabChannel {
    channel: BroadcastChannel,
    _on_message: RefCell<Option<Closure<dyn FnMut(MessageEvent)>>>,
}

impl TabChannel {
    /// Joins the channel of `name` (one per local database); `on_change`
    /// receives the ids other tabs announce.
    pub fn open(name: &str, on_change: impl Fn(Vec<RecordId>) + 'static) -> Option<Self> {
        let channel = BroadcastChannel::new(&format!("rapport:{name}")).ok()?;
        let closure = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let ids: Vec<RecordId> = ev
                .data()
                .as_string()
                .map(|text| text.split(',').filter_map(|s| s.parse().ok()).collect())
                .unwrap_or_default();
            if !ids.is_empty() {
                on_change(ids);
            }
        });
        channel.set_onmessage(Some(closure.as_ref().unchecked_ref()));
        Some(Self { channel, _on_message: RefCell::new(Some(closure)) })
    }

    /// Tells the other tabs that these records changed in storage.
    pub fn announce(&self, ids: &[RecordId]) {
        let text = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let _ = self.channel.post_message(&JsValue::from_str(&text));
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}
