//! Waiting for an open or delete request unless the browser reports it
//! `blocked` (another connection, usually another tab, keeps an older
//! version of the database open and does not close it).
//!
//! A blocked request is not cancelled by the browser: it stays queued and
//! completes once the other connections close. We give the caller an answer
//! right away and let the request finish in the background.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Set once by the request's `blocked` event handler.
#[derive(Debug, Default)]
pub(crate) struct BlockedSignal {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl BlockedSignal {
    pub(crate) fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    pub(crate) fn fire(&self) {
        self.fired.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Polls `request` until it completes (`Some(output)`) or `signal` fires
/// first (`None`; `request` is still pending and can be awaited later).
pub(crate) async fn unless_blocked<F>(request: &mut Pin<Box<F>>, signal: &BlockedSignal) -> Option<F::Output>
where
    F: Future + ?Sized,
{
    poll_fn(|cx| {
        if let Poll::Ready(output) = request.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if signal.fired.get() {
            return Poll::Ready(None);
        }
        *signal.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    })
    .await
}
