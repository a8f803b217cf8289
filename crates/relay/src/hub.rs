//! Live fan-out: one broadcast channel per workspace with at least one
//! connected member. A committed push is encoded once as a `Live` frame and
//! handed to every other connection of the same workspace; a connection
//! that falls too far behind is told to pull instead (`Behind`).
//!
//! Sessions take frames off the channel as they come (into their own
//! byte-bounded queue, or dropping them when it is full), and the channel
//! frees a frame once every member has taken it, so a member that stops
//! reading holds no frames here.
//!
//! The hub also caps the connections of one workspace
//! (`--max-connections-per-workspace`): joining a full channel is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use rapport_protocol::{Seq, WorkspaceId};
use tokio::sync::broadcast;

/// Live frames buffered per workspace before slow receivers lag.
const CHANNEL_CAPACITY: usize = 256;

/// A frame for the members of a workspace.
#[derive(Debug, Clone)]
pub struct LiveFrame {
    /// The connection that caused it (which does not receive it).
    pub origin: u64,
    /// The encoded `ServerMessage::Live` frame.
    pub frame: Bytes,
    /// The newest sequence number in it: a receiver that drops the frame
    /// tells its client to pull up to here (`Behind`).
    pub head: Seq,
}

/// The per-workspace channels.
#[derive(Debug, Default)]
pub struct Hub {
    channels: Mutex<HashMap<WorkspaceId, broadcast::Sender<LiveFrame>>>,
}

/// A connection's membership of a workspace's channel; leaving (drop)
/// removes the channel when it was the last member.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<Hub>,
    workspace: WorkspaceId,
    /// Frames from the other members.
    pub receiver: broadcast::Receiver<LiveFrame>,
}

impl Hub {
    /// Joins a workspace's channel.
    pub fn subscribe(self: &Arc<Self>, workspace: WorkspaceId) -> Subscription {
        self.try_subscribe(workspace, usize::MAX).unwrap_or_else(|| unreachable!("no cap"))
    }

    /// Joins a workspace's channel unless `max` connections are in it.
    pub fn try_subscribe(self: &Arc<Self>, workspace: WorkspaceId, max: usize) -> Option<Subscription> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = channels.entry(workspace).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0);
        if tx.receiver_count() >= max {
            return None;
        }
        let receiver = tx.subscribe();
        Some(Subscription { hub: Arc::clone(self), workspace, receiver })
    }

    /// Sends a frame to the workspace's connected members; none is fine.
    pub fn publish(&self, workspace: &WorkspaceId, frame: LiveFrame) {
        let channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = channels.get(workspace) {
            // An error only means nobody is listening right now.
            let _ = tx.send(frame);
        }
    }

    /// Number of workspaces with connected members.
    pub fn active_workspaces(&self) -> usize {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.hub.channels.lock().unwrap_or_else(PoisonError::into_inner);
        // Our receiver is still alive here, so "only us" is a count of 1.
        if channels.get(&self.workspace).is_some_and(|tx| tx.receiver_count() <= 1) {
            channels.remove(&self.workspace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn members_of_one_workspace_hear_each_other_and_no_one_else() {
        let hub = Arc::new(Hub::default());
        let a = WorkspaceId::from_bytes([1; 16]);
        let b = WorkspaceId::from_bytes([2; 16]);
        let mut a1 = hub.subscribe(a);
        let mut b1 = hub.subscribe(b);
        hub.publish(&a, LiveFrame { origin: 7, frame: Bytes::from_static(b"x"), head: Seq(1) });
        assert_eq!(a1.receiver.recv().await.expect("frame").origin, 7);
        assert!(b1.receiver.try_recv().is_err());
    }

    #[test]
    fn the_last_member_leaving_removes_the_channel() {
        let hub = Arc::new(Hub::default());
        let a = WorkspaceId::from_bytes([1; 16]);
        let s1 = hub.subscribe(a);
        let s2 = hub.subscribe(a);
        assert_eq!(hub.active_workspaces(), 1);
        drop(s1);
        assert_eq!(hub.active_workspaces(), 1);
        drop(s2);
        assert_eq!(hub.active_workspaces(), 0);
    }

    #[test]
    fn a_full_workspace_refuses_one_more_member() {
        let hub = Arc::new(Hub::default());
        let a = WorkspaceId::from_bytes([1; 16]);
        let first = hub.try_subscribe(a, 2).expect("room");
        let _second = hub.try_subscribe(a, 2).expect("room");
        assert!(hub.try_subscribe(a, 2).is_none());
        assert!(hub.try_subscribe(WorkspaceId::from_bytes([2; 16]), 2).is_some(), "other workspaces unaffected");
        drop(first);
        assert!(hub.try_subscribe(a, 2).is_some());
    }
}
