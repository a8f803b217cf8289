//! The relay's resources under clients that misbehave: slow readers,
//! unfinished HTTP requests, floods, mass registration, connection caps,
//! frame limits, and what the relay sends and logs. Each test drives an
//! in-process relay on 127.0.0.1 and is bounded in count and time.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use rapport_protocol::{ClientMessage, ErrorCode, Seq, ServerMessage};
use rapport_relay::config::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Limits for the slow-reader tests: small frames and queue, generous rates.
fn slow_limits(send_timeout_ms: u64) -> Limits {
    Limits {
        max_frame_bytes: 64 * 1024,
        max_queued_bytes: 128 * 1024,
        send_timeout_ms,
        idle_timeout_ms: 60_000,
        ..test_limits()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_while_others_carry_on() {
    let relay = TestRelay::start(slow_limits(500)).await;
    let mut writer = Client::join(&relay.url, keys(1)).await;
    for i in 0..4 {
        let env = writer.seal(&format!("big-{i}"), &vec![i; 60 * 1024]);
        writer.push(vec![env]).await;
    }
    // A member with a tiny receive buffer asks for 4 MB of replies and
    // reads none of them.
    let mut slow = Client::join_from(relay.addr, LOCAL, Some(4096), keys(1)).await;
    for request in 0..64 {
        send(&mut slow.socket, &ClientMessage::Pull { request, since: Seq(request as u64 % 4), limit: 1 }).await;
    }
    // The relay must neither block on it nor keep it: within the send
    // deadline (plus slack) only the honest member's connection is left.
    assert!(
        eventually(Duration::from_secs(8), || relay.state.connection_count() == 1).await,
        "the slow reader is still connected: {} connections",
        relay.state.connection_count()
    );
    writer.ping().await;
    let env = writer.seal("after", b"still served");
    assert_eq!(writer.push(vec![env]).await.len(), 1);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_replies_pile_up_is_told_why_it_is_closed() {
    let relay = TestRelay::start(slow_limits(10_000)).await;
    let mut writer = Client::join(&relay.url, keys(1)).await;
    let env = writer.seal("big", &vec![1; 60 * 1024]);
    writer.push(vec![env]).await;
    let mut slow = Client::join_from(relay.addr, LOCAL, Some(4096), keys(1)).await;
    // 64 pulls of 60 KB (3.8 MB of replies) without reading, then a pause
    // long enough for the relay to find its 128 KB queue overflowing.
    for request in 0..64 {
        send(&mut slow.socket, &ClientMessage::Pull { request, since: Seq::ZERO, limit: 1 }).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Reading now, it gets what was sent, then the reason and a close frame.
    let (code, messages) = read_to_close(&mut slow.socket, Duration::from_secs(8)).await;
    let batches = messages.iter().filter(|m| matches!(m, ServerMessage::Batch { .. })).count();
    assert!(batches < 64, "{batches} replies");
    match messages.last() {
        Some(ServerMessage::Error(e)) => {
            assert!(e.fatal && e.code == ErrorCode::Unavailable, "{e:?}");
            assert!(e.message.contains("stopped reading"), "{e:?}");
        }
        other => panic!("expected the reason, got {other:?}"),
    }
    assert_eq!(code, Some(1013), "try again later");
    // It reconnects and catches up by cursor: nothing was lost.
    let mut again = Client::join(&relay.url, keys(1)).await;
    assert_eq!(again.pull_all().await.len(), 1);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_falls_behind_gets_behind_instead_of_unbounded_live_frames() {
    let limits = Limits { max_frame_bytes: 256 * 1024, max_queued_bytes: 512 * 1024, ..slow_limits(10_000) };
    let relay = TestRelay::start(limits).await;
    let mut writer = Client::join(&relay.url, keys(1)).await;
    let mut lagging = Client::join_from(relay.addr, LOCAL, Some(4096), keys(1)).await;
    // 40 live frames of 250 KB (10 MB) for a member that reads nothing for
    // now: far more than its 512 KB queue and the socket buffers (at most
    // 4 MB on Linux by default).
    let mut last = Seq::ZERO;
    for i in 0..40u8 {
        let env = writer.seal(&format!("r{i}"), &vec![i; 250 * 1024]);
        last = writer.push(vec![env]).await[0];
    }
    // Now it reads: live frames, and a Behind for every run of dropped ones,
    // until it has heard of the last push one way or the other.
    let mut live_seqs = Vec::new();
    let mut behinds = Vec::new();
    while live_seqs.last().max(behinds.last()) < Some(&last) {
        match next_message(&mut lagging.socket).await {
            Some(ServerMessage::Live { entries }) => live_seqs.extend(entries.iter().map(|e| e.seq)),
            Some(ServerMessage::Behind { head }) => behinds.push(head),
            other => panic!("expected Live or Behind, got {other:?}"),
        }
    }
    assert!(!behinds.is_empty(), "the member was told it is behind");
    assert!(live_seqs.len() < 40, "live frames beyond the queue were dropped: {}", live_seqs.len());
    // Every push was either delivered live or is covered by a later Behind.
    for seq in 1..=last.get() {
        assert!(live_seqs.contains(&Seq(seq)) || behinds.iter().any(|b| b.get() >= seq), "entry {seq} lost");
    }
    // The connection stays usable and catches up by cursor.
    let all = lagging.pull_all().await;
    assert_eq!(all.len(), 40);
    lagging.ping().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn unfinished_requests_and_silent_sockets_are_counted_and_dropped_after_the_header_timeout() {
    let limits = Limits { header_timeout_ms: 300, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let mut sockets = Vec::new();
    for i in 0..20 {
        let mut stream = tcp_from(relay.addr, LOCAL, None).await;
        if i % 2 == 0 {
            stream.write_all(b"GET /sync HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n").await.expect("write");
        }
        sockets.push(stream);
    }
    assert!(
        eventually(Duration::from_secs(2), || relay.state.connection_count() == 20).await,
        "counted from accept: {}",
        relay.state.connection_count()
    );
    for mut stream in sockets {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(_) | Err(_))), "closed by the relay, not left hanging");
    }
    assert!(eventually(Duration::from_secs(2), || relay.state.connection_count() == 0).await);
    // A well-behaved client is unaffected.
    Client::join(&relay.url, keys(1)).await.ping().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let limits = Limits { max_connections_per_address: 3, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tcp_from(relay.addr, LOCAL, None).await);
    }
    assert!(eventually(Duration::from_secs(2), || relay.state.connection_count() == 3).await);
    match tokio_tungstenite::connect_async(relay.url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    // Another address still gets in.
    Client::join_from(relay.addr, OTHER, None, keys(1)).await.ping().await;
    drop(held);
    relay.shutdown().await;
}

#[tokio::test]
async fn one_workspace_cannot_take_every_connection() {
    let limits = Limits { max_connections_per_workspace: 2, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let _a = Client::join(&relay.url, keys(1)).await;
    let _b = Client::join(&relay.url, keys(1)).await;
    let (mut socket, challenge) = connect(&relay.url).await;
    send(&mut socket, &hello(&keys(1), &challenge, true)).await;
    let error = expect_fatal(&mut socket).await;
    assert_code(&error, ErrorCode::Unavailable);
    assert!(error.message.contains("2 connections"), "{error:?}");
    Client::join(&relay.url, keys(2)).await.ping().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_request_flood_is_answered_briefly_then_closed() {
    let limits = Limits { rate_burst_frames: 5, rate_frames_per_sec: 20, ..Limits::default() };
    let relay = TestRelay::start(limits).await;
    let mut honest = Client::join(&relay.url, keys(1)).await;
    let mut flood = Client::join(&relay.url, keys(1)).await;
    for request in 0..200 {
        // The relay may close mid-flood.
        if flood
            .socket
            .send(Message::Binary(ClientMessage::Ping { request }.encode().expect("encode").into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let (code, messages) = read_to_close(&mut flood.socket, Duration::from_secs(5)).await;
    let refusals: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    let answered = refusals.iter().filter(|e| !e.fatal).count();
    assert!(answered <= 2 * rapport_relay::rate::ANSWERED_REFUSALS as usize, "{answered} refusals answered");
    let last = refusals.last().expect("a closing error");
    assert!(last.fatal && last.code == ErrorCode::RateLimited, "{last:?}");
    assert_eq!(code, Some(1008), "a close frame with a policy code");
    honest.ping().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_ping_flood_is_counted_and_closed() {
    let limits = Limits { rate_burst_frames: 5, rate_frames_per_sec: 20, ..Limits::default() };
    let relay = TestRelay::start(limits).await;
    let mut flood = Client::join(&relay.url, keys(1)).await;
    for _ in 0..500 {
        if flood.socket.send(Message::Ping(vec![1; 100].into())).await.is_err() {
            break;
        }
    }
    let (code, messages) = read_to_close(&mut flood.socket, Duration::from_secs(5)).await;
    assert!(
        messages.iter().any(|m| matches!(m, ServerMessage::Error(e) if e.fatal && e.code == ErrorCode::RateLimited)),
        "{messages:?}"
    );
    assert_eq!(code, Some(1008));
    relay.shutdown().await;
}

#[tokio::test]
async fn registration_is_limited_per_address() {
    let limits = Limits { registrations_per_hour: 3, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    for n in 1..=3 {
        Client::join(&relay.url, keys(n)).await;
    }
    let (mut socket, challenge) = connect(&relay.url).await;
    send(&mut socket, &hello(&keys(4), &challenge, true)).await;
    let error = expect_fatal(&mut socket).await;
    assert_code(&error, ErrorCode::RateLimited);
    assert!(error.retry_after_ms.is_some_and(|ms| ms > 60_000), "{error:?}");
    assert_eq!(relay.state.store().verifier(workspace(4)).await.expect("read"), None, "not created");
    // Joining an existing workspace is no registration.
    Client::join(&relay.url, keys(1)).await.ping().await;
    // Another address has its own allowance.
    Client::join_from(relay.addr, OTHER, None, keys(4)).await.ping().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_client_dies_at_once_still_reaches_the_other_members() {
    let relay = TestRelay::start(test_limits()).await;
    let mut observer = Client::join(&relay.url, keys(1)).await;
    let rounds = 20;
    for i in 0..rounds {
        let mut pusher = Client::join(&relay.url, keys(1)).await;
        let env = pusher.seal(&format!("r{i}"), b"last words");
        send(&mut pusher.socket, &ClientMessage::Push { request: 1, envelopes: vec![env] }).await;
        // Gone before the reply: no close handshake, just the socket.
        drop(pusher);
    }
    let mut seen = 0;
    while seen < rounds {
        seen += observer.live().await.len();
    }
    assert_eq!(observer.pull_all().await.len(), rounds);
    relay.shutdown().await;
}

#[tokio::test]
async fn no_frame_the_relay_sends_exceeds_the_announced_limit() {
    let max = 4096;
    let limits = Limits { max_frame_bytes: max as u32, max_envelopes_per_push: 1000, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let mut a = Client::join(&relay.url, keys(1)).await;
    let mut b = Client::join(&relay.url, keys(1)).await;

    // One envelope whose push frame fits but whose batch might not: refused.
    let mut size = 16;
    let mut last_fitting = None;
    loop {
        let env = a.seal("edge", &vec![7; size]);
        let push = ClientMessage::Push { request: 1, envelopes: vec![env.clone()] }.encode().expect("encode");
        if push.len() > max {
            break;
        }
        if rapport_relay::frames::fits_alone(&env, max) {
            last_fitting = Some(env);
        } else {
            let request = a.next_request();
            let err = a.error_reply(&ClientMessage::Push { request, envelopes: vec![env] }).await;
            assert_code(&err, ErrorCode::InvalidRequest);
            assert!(!err.fatal);
        }
        size += 1;
    }
    a.push(vec![last_fitting.expect("some envelope fits")]).await;

    // A push filling its frame with small envelopes: its live fan-out is
    // split so that no frame exceeds the limit.
    let mut envs = Vec::new();
    loop {
        let candidate: Vec<_> = envs.iter().cloned().chain([a.seal("many", &[1; 20])]).collect();
        let frame = ClientMessage::Push { request: 999, envelopes: candidate.clone() }.encode().expect("encode");
        if frame.len() > max {
            break;
        }
        envs = candidate;
    }
    let count = envs.len();
    a.push(envs).await;

    let mut live = 0;
    while live < count + 1 {
        let frame = match tokio::time::timeout(FRAME_TIMEOUT, futures_util::StreamExt::next(&mut b.socket)).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
            Ok(Some(Ok(Message::Ping(_)))) => continue,
            other => panic!("expected a live frame, got {other:?}"),
        };
        assert!(frame.len() <= max, "a {}-byte live frame", frame.len());
        match ServerMessage::decode(&frame).expect("decode") {
            ServerMessage::Live { entries } => live += entries.len(),
            other => panic!("expected Live, got {other:?}"),
        }
    }
    // Every batch fits too, including the one holding the largest entry.
    let mut cursor = Seq::ZERO;
    loop {
        let request = b.next_request();
        send(&mut b.socket, &ClientMessage::Pull { request, since: cursor, limit: 1000 }).await;
        let frame = match tokio::time::timeout(FRAME_TIMEOUT, futures_util::StreamExt::next(&mut b.socket)).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
            other => panic!("expected a batch, got {other:?}"),
        };
        assert!(frame.len() <= max, "a {}-byte batch", frame.len());
        match ServerMessage::decode(&frame).expect("decode") {
            ServerMessage::Batch { cursor: next, more, .. } => {
                cursor = next;
                if !more {
                    break;
                }
            }
            other => panic!("expected Batch, got {other:?}"),
        }
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn an_oversized_frame_gets_a_close_frame_not_a_reset() {
    let limits = Limits { max_frame_bytes: 64 * 1024, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    for size in [64 * 1024 + 1, 900 * 1024] {
        let mut bad = Client::join(&relay.url, keys(1)).await;
        let _ = bad.socket.send(Message::Binary(vec![1; size].into())).await;
        let (code, messages) = read_to_close(&mut bad.socket, Duration::from_secs(5)).await;
        assert!(
            matches!(messages.last(), Some(ServerMessage::Error(e)) if e.code == ErrorCode::FrameTooLarge),
            "{messages:?}"
        );
        assert_eq!(code, Some(1009), "close code 1009 (message too big) for {size} bytes");
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn healthz_says_up_and_nothing_more() {
    let relay = TestRelay::start(test_limits()).await;
    let _member = Client::join(&relay.url, keys(1)).await;
    let (status, headers, body) = http_get(relay.addr, "/healthz").await;
    assert_eq!(status, 200, "{headers}");
    assert_eq!(body, r#"{"status":"ok"}"#);
    relay.shutdown().await;
}

#[tokio::test]
async fn the_served_app_carries_the_documented_security_headers() {
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<html>rapport app</html>").expect("write");
    let relay = TestRelay::start_with(test_limits(), Some(site.path().to_path_buf())).await;
    for path in ["/", "/contacts/42"] {
        let (status, headers, _) = http_get(relay.addr, path).await;
        assert_eq!(status, 200);
        let headers = headers.to_ascii_lowercase();
        assert!(headers.contains("content-security-policy: default-src 'none';"), "{headers}");
        assert!(headers.contains("frame-ancestors 'none'"), "{headers}");
        assert!(headers.contains("referrer-policy: no-referrer"), "{headers}");
        assert!(headers.contains("x-content-type-options: nosniff"), "{headers}");
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_the_app_files_is_dropped() {
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<html>rapport app</html>").expect("write");
    // More than the socket buffers can hold (4 MB at most on Linux by default).
    std::fs::write(site.path().join("big.wasm"), vec![0u8; 16 * 1024 * 1024]).expect("write");
    let limits = Limits { send_timeout_ms: 500, ..test_limits() };
    let relay = TestRelay::start_with(limits, Some(site.path().to_path_buf())).await;
    let mut stream = tcp_from(relay.addr, LOCAL, Some(4096)).await;
    stream.write_all(b"GET /big.wasm HTTP/1.1\r\nHost: relay\r\n\r\n").await.expect("write");
    assert!(eventually(Duration::from_secs(2), || relay.state.connection_count() == 1).await);
    // It never reads: the relay gives up on it.
    assert!(
        eventually(Duration::from_secs(8), || relay.state.connection_count() == 0).await,
        "a client that reads nothing still holds a connection"
    );
    drop(stream);
    relay.shutdown().await;
}

/// Collects everything logged at info level and above, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_name_neither_erased_documents_nor_whole_peer_addresses() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: the relay's tasks log on this thread.
    let _default = tracing::subscriber::set_default(subscriber);
    let relay = TestRelay::start(test_limits()).await;
    let mut member = Client::join(&relay.url, keys(1)).await;
    let env = member.seal("contact-1", b"to be erased");
    let tag = env.doc_tag;
    member.push(vec![env]).await;
    let request = member.next_request();
    match member.request(&ClientMessage::DeleteDocument { request, doc_tag: tag }).await {
        ServerMessage::DocumentDeleted { removed, .. } => assert_eq!(removed, 1),
        other => panic!("expected DocumentDeleted, got {other:?}"),
    }
    // A fatal error is logged with the connection's span.
    member.socket.send(Message::Text("hello".into())).await.expect("send");
    assert_code(&expect_fatal(&mut member.socket).await, ErrorCode::Malformed);
    relay.shutdown().await;
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned();
    assert!(text.contains("closing connection"), "the capture works: {text}");
    assert!(!text.contains(&tag.to_string()), "an erased document's tag is logged: {text}");
    assert!(!text.contains("127.0.0.1:"), "a whole peer address is logged: {text}");
    assert!(text.contains("127.0.0.x"), "the truncated address is logged: {text}");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let (head, body) = response.split_once("\r\n\r\n").map(|(h, b)| (h.to_owned(), b.to_owned())).unwrap_or_default();
    (status, head, body)
}
