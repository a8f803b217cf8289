//! Tabs of one browser share a workspace through IndexedDB; this channel
//! (BroadcastChannel) tells the other tabs which records one of them just
//! stored, so they refresh those records at once instead of showing stale
//! copies, and shares the sync status of the tab that holds the relay
//! connection. Messages carry record ids and status only, never record
//! content.

use rapport_core::ids::RecordId;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{BroadcastChannel, MessageEvent};

use crate::state::SyncBadge;

pub struct TabChannel {
    channel: BroadcastChannel,
    /// Kept alive as long as the channel listens.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl TabChannel {
    /// Joins the channel of `name` (one per local database); `on_change`
    /// receives the ids other tabs announce, `on_status` their sync status.
    pub fn open(
        name: &str,
        on_change: impl Fn(Vec<RecordId>) + 'static,
        on_status: impl Fn(SyncBadge) + 'static,
    ) -> Option<Self> {
        let channel = BroadcastChannel::new(&format!("rapport:{name}")).ok()?;
        let closure = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            let Some(text) = ev.data().as_string() else { return };
            if let Some(ids) = text.strip_prefix("changed:") {
                let ids: Vec<RecordId> = ids.split(',').filter_map(|s| s.parse().ok()).collect();
                if !ids.is_empty() {
                    on_change(ids);
                }
            } else if let Some(json) = text.strip_prefix("status:") {
                if let Ok(badge) = serde_json::from_str(json) {
                    on_status(badge);
                }
            }
        });
        channel.set_onmessage(Some(closure.as_ref().unchecked_ref()));
        Some(Self { channel, _on_message: closure })
    }

    /// Tells the other tabs that these records changed in storage.
    pub fn announce(&self, ids: &[RecordId]) {
        let text = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let _ = self.channel.post_message(&JsValue::from_str(&format!("changed:{text}")));
    }

    /// Shares the sync status with tabs that do not hold the connection.
    pub fn announce_status(&self, badge: &SyncBadge) {
        if let Ok(json) = serde_json::to_string(badge) {
            let _ = self.channel.post_message(&JsValue::from_str(&format!("status:{json}")));
        }
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}
