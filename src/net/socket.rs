//! A binary WebSocket to the relay. Events arrive through one callback as
//! [`SocketEvent`]s; the closures live as long as the socket.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{BinaryType, CloseEvent, Event, MessageEvent, WebSocket};

#[derive(Debug)]
pub enum SocketEvent {
    Open,
    Frame(Vec<u8>),
    /// The connection ended (or never opened).
    Closed,
}

type Handlers = (Closure<dyn FnMut(Event)>, Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(CloseEvent)>);

pub struct Socket {
    ws: WebSocket,
    handlers: RefCell<Option<Handlers>>,
}

/// Why the socket could not be created (a malformed URL, a blocked scheme).
#[derive(Debug, thiserror::Error)]
#[error("could not connect to the relay at {url}: {reason}")]
pub struct ConnectError {
    pub url: String,
    pub reason: String,
}

impl Socket {
    /// Opens a connection; `on_event` receives every event until [`Socket::close`].
    ///
    /// # Errors
    /// [`ConnectError`] when the browser refuses the URL.
    pub fn connect(url: &str, on_event: impl Fn(SocketEvent) + 'static) -> Result<Rc<Self>, ConnectError> {
        let ws = WebSocket::new(url).map_err(|e| ConnectError {
            url: url.to_owned(),
            reason: e.as_string().unwrap_or_else(|| "the address is not a valid ws:// or wss:// URL".into()),
        })?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_event = Rc::new(on_event);
        let open = {
            let on_event = on_event.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| on_event(SocketEvent::Open))
        };
        let message = {
            let on_event = on_event.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                // Text frames are not part of the protocol: pass them as bytes
                // so the engine reports them as malformed instead of ignoring.
                let bytes = match ev.data().dyn_into::<js_sys::ArrayBuffer>() {
                    Ok(buf) => js_sys::Uint8Array::new(&buf).to_vec(),
                    Err(other) => other.as_string().unwrap_or_default().into_bytes(),
                };
                on_event(SocketEvent::Frame(bytes));
            })
        };
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |_: CloseEvent| on_event(SocketEvent::Closed));
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        Ok(Rc::new(Self { ws, handlers: RefCell::new(Some((open, message, close))) }))
    }

    /// Sends one binary frame; false when the socket is not open.
    pub fn send(&self, frame: &[u8]) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_u8_array(frame).is_ok()
    }

    /// Closes the connection and stops events.
    pub fn close(&self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
        self.handlers.borrow_mut().take();
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.close();
    }
}
