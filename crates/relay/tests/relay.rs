//! Integration tests: a real relay on port 0 driven by real WebSocket
//! clients.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rapport_protocol::{ClientMessage, EntryKind, ErrorCode, Incarnation, Seq, ServerMessage, PROTOCOL_VERSION};
use rapport_relay::config::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_member_pushes_and_pulls_back_what_only_members_can_read() {
    let relay = TestRelay::start(test_limits()).await;
    let mut alice = Client::join(&relay.url, keys(1)).await;
    assert_eq!(alice.head, Seq::ZERO);
    let env = alice.seal("contact-1", b"Ada Lovelace");
    assert_eq!(alice.push(vec![env.clone()]).await, vec![Seq(1)]);

    let mut bob = Client::join(&relay.url, keys(1)).await;
    assert_eq!(bob.head, Seq(1), "Welcome tells the head");
    let (entries, cursor, more) = bob.pull(Seq::ZERO, 100).await;
    assert_eq!((cursor, more), (Seq(1), false));
    assert_eq!(entries[0].envelope, env);
    assert_eq!(bob.keys.open(&entries[0].envelope).as_deref(), Ok(&b"Ada Lovelace"[..]));
    relay.shutdown().await;
}

#[tokio::test]
async fn auth_is_refused_without_the_secret() {
    let relay = TestRelay::start(test_limits()).await;
    let _owner = Client::join(&relay.url, keys(1)).await;

    // Same workspace id, another secret: the signature does not verify,
    // with or without a verifier of its own.
    let intruder =
        rapport_protocol::Keys::derive(&rapport_protocol::WorkspaceSecret::from_random_bytes([99; 32]), workspace(1));
    for register in [false, true] {
        let (mut socket, challenge) = connect(&relay.url).await;
        send(&mut socket, &hello(&intruder, &challenge, register)).await;
        assert_code(&expect_fatal(&mut socket).await, ErrorCode::Unauthorized);
    }

    // The right keys but a signature over another challenge (a replay).
    let (mut socket, _challenge) = connect(&relay.url).await;
    let stale = rapport_protocol::ChallengeNonce::from_bytes([0; 32]);
    send(&mut socket, &hello(&keys(1), &stale, false)).await;
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::Unauthorized);

    // An unknown workspace without a verifier to register.
    let (mut socket, challenge) = connect(&relay.url).await;
    send(&mut socket, &hello(&keys(2), &challenge, false)).await;
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::UnknownWorkspace);

    // A fresh workspace registered with a verifier whose secret the client
    // does not hold is refused, and not created.
    let (mut socket, challenge) = connect(&relay.url).await;
    send(
        &mut socket,
        &ClientMessage::Hello {
            workspace: workspace(3),
            signature: intruder.sign_challenge(&challenge),
            register: Some(keys(3).verifier()),
        },
    )
    .await;
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::Unauthorized);
    assert_eq!(relay.state.store().verifier(workspace(3)).await.expect("read"), None);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_client_of_workspace_a_cannot_read_or_erase_workspace_b() {
    let relay = TestRelay::start(test_limits()).await;
    let mut a = Client::join(&relay.url, keys(1)).await;
    let mut b = Client::join(&relay.url, keys(2)).await;
    let env = a.seal("contact-1", b"secret of A");
    let tag = env.doc_tag;
    a.push(vec![env]).await;

    let (entries, cursor, _) = b.pull(Seq::ZERO, 100).await;
    assert!(entries.is_empty());
    assert_eq!(cursor, Seq::ZERO);
    assert!(!b.has_live_within(Duration::from_millis(100)).await);

    // B names A's document tag: only B's (empty) data is touched.
    let request = b.next_request();
    match b.request(&ClientMessage::DeleteDocument { request, doc_tag: tag }).await {
        ServerMessage::DocumentDeleted { removed, .. } => assert_eq!(removed, 0),
        other => panic!("expected DocumentDeleted, got {other:?}"),
    }
    assert_eq!(row_counts(&relay.db_path(), workspace(1), tag), (1, 0));
    assert_eq!(a.pull_all().await.len(), 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn oversized_frames_get_an_error_and_a_close_while_others_keep_working() {
    let limits = Limits { max_frame_bytes: 64 * 1024, max_envelopes_per_push: 10, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let mut good = Client::join(&relay.url, keys(1)).await;

    for size in [64 * 1024 + 1, 1024 * 1024] {
        let mut bad = Client::join(&relay.url, keys(1)).await;
        // The relay may stop reading mid-frame, so the send itself may fail.
        let _ = bad.socket.send(Message::Binary(vec![PROTOCOL_VERSION; size].into())).await;
        assert_code(&expect_fatal(&mut bad.socket).await, ErrorCode::FrameTooLarge);

        let env = good.seal("contact-1", b"still fine");
        assert_eq!(good.push(vec![env]).await.len(), 1);
    }
    // Before authentication too.
    let (mut socket, _) = connect(&relay.url).await;
    let _ = socket.send(Message::Binary(vec![PROTOCOL_VERSION; 100 * 1024].into())).await;
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::FrameTooLarge);

    // A push that fits in a frame but holds too many envelopes is refused
    // without closing.
    let envs: Vec<_> = (0..11).map(|_| good.seal("c", b"")).collect();
    let request = good.next_request();
    let err = good.error_reply(&ClientMessage::Push { request, envelopes: envs }).await;
    assert_code(&err, ErrorCode::InvalidRequest);
    assert!(!err.fatal);
    assert_eq!(err.request, Some(request));
    good.ping().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_a_close_while_others_keep_working() {
    let relay = TestRelay::start(test_limits()).await;
    let mut good = Client::join(&relay.url, keys(1)).await;

    let cases: Vec<(&str, Message, ErrorCode)> = vec![
        ("garbage", Message::Binary(vec![PROTOCOL_VERSION, 0xff, 0xfe, 0xfd].into()), ErrorCode::Malformed),
        ("empty", Message::Binary(Vec::new().into()), ErrorCode::Malformed),
        ("wrong version", Message::Binary(vec![42, 0, 0].into()), ErrorCode::UnsupportedVersion),
        ("text", Message::Text("hello".into()), ErrorCode::Malformed),
    ];
    for (name, frame, code) in cases {
        // Before authentication...
        let (mut socket, _) = connect(&relay.url).await;
        socket.send(frame.clone()).await.expect("send");
        assert_eq!(expect_fatal(&mut socket).await.code, code, "{name} before Hello");
        // ...and after.
        let mut member = Client::join(&relay.url, keys(1)).await;
        member.socket.send(frame).await.expect("send");
        assert_eq!(expect_fatal(&mut member.socket).await.code, code, "{name} after Hello");
    }

    // An app of protocol version 1 (before incarnations) sends its Hello:
    // the refusal is a version-1 frame it can read, telling it to update.
    let (mut socket, challenge) = connect(&relay.url).await;
    let mut frame = hello(&keys(1), &challenge, false).encode().expect("encode");
    frame[0] = 1;
    socket.send(Message::Binary(frame.into())).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a reply in time");
    let Some(Ok(Message::Binary(bytes))) = reply else { panic!("expected an error frame, got {reply:?}") };
    assert_eq!(bytes[0], 1, "encoded in the app's version");
    let mut readable = bytes.to_vec();
    readable[0] = PROTOCOL_VERSION; // Error frames are the same in both versions.
    match ServerMessage::decode(&readable) {
        Ok(ServerMessage::Error(e)) => {
            assert_eq!((e.code, e.fatal), (ErrorCode::UnsupportedVersion, true));
            assert!(e.message.contains("update the app"), "{}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }

    // A truncated Hello.
    let (mut socket, challenge) = connect(&relay.url).await;
    let frame = hello(&keys(1), &challenge, false).encode().expect("encode");
    socket.send(Message::Binary(frame[..frame.len() - 3].to_vec().into())).await.expect("send");
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::Malformed);

    // A request before Hello.
    let (mut socket, _) = connect(&relay.url).await;
    send(&mut socket, &ClientMessage::Ping { request: 1 }).await;
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::UnexpectedMessage);

    // Pseudo-random hostile frames after authentication.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..20 {
        let mut member = Client::join(&relay.url, keys(1)).await;
        let len = 1 + (i * 7) % 60;
        let bytes: Vec<u8> = std::iter::once(PROTOCOL_VERSION)
            .chain((0..len).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }))
            .collect();
        member.socket.send(Message::Binary(bytes.into())).await.expect("send");
        // Either a well-formed request by chance (answered) or an error.
        if let Some(ServerMessage::Error(e)) = next_message(&mut member.socket).await {
            if e.fatal {
                assert_eq!(next_message(&mut member.socket).await, None);
            }
        }
    }

    let env = good.seal("contact-1", b"unharmed");
    good.push(vec![env]).await;
    assert_eq!(good.pull_all().await.len(), 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn pulling_since_a_cursor_pages_with_a_more_flag() {
    let relay = TestRelay::start(test_limits()).await;
    let mut c = Client::join(&relay.url, keys(1)).await;
    for batch in 0..5 {
        let envs = (0..5).map(|i| c.seal(&format!("r{batch}-{i}"), b"x")).collect();
        c.push(envs).await;
    }
    let (page, cursor, more) = c.pull(Seq::ZERO, 10).await;
    assert_eq!(page.iter().map(|e| e.seq.get()).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    assert_eq!((cursor, more), (Seq(10), true));
    let (page, cursor, more) = c.pull(cursor, 10).await;
    assert_eq!((page.len(), cursor, more), (10, Seq(20), true));
    let (page, cursor, more) = c.pull(cursor, 10).await;
    assert_eq!((page.len(), cursor, more), (5, Seq(25), false));
    let (page, cursor, more) = c.pull(cursor, 10).await;
    assert_eq!((page.len(), cursor, more), (0, Seq(25), false));

    // limit 0 is raised to 1; a cursor past the head is a typed error.
    let (page, _, more) = c.pull(Seq::ZERO, 0).await;
    assert_eq!((page.len(), more), (1, true));
    let request = c.next_request();
    let err = c.error_reply(&ClientMessage::Pull { request, since: Seq(99), limit: 10 }).await;
    assert_code(&err, ErrorCode::CursorAhead);
    assert!(!err.fatal);
    relay.shutdown().await;
}

#[tokio::test]
async fn pushes_are_delivered_live_to_other_members_only() {
    let relay = TestRelay::start(test_limits()).await;
    let mut alice = Client::join(&relay.url, keys(1)).await;
    let mut bob = Client::join(&relay.url, keys(1)).await;
    let mut other = Client::join(&relay.url, keys(2)).await;

    let envs = vec![alice.seal("c1", b"one"), alice.seal("c2", b"two")];
    let seqs = alice.push(envs.clone()).await;
    let live = bob.live().await;
    assert_eq!(live.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(live.iter().map(|e| e.envelope.clone()).collect::<Vec<_>>(), envs);
    assert!(live.iter().all(|e| e.kind == EntryKind::Change));
    assert_eq!(bob.keys.open(&live[1].envelope).as_deref(), Ok(&b"two"[..]));

    assert!(!alice.has_live_within(Duration::from_millis(100)).await, "no echo");
    assert!(!other.has_live_within(Duration::from_millis(50)).await, "no leak");
    relay.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_really_replaces_the_rows_it_covers() {
    let relay = TestRelay::start(test_limits()).await;
    let mut alice = Client::join(&relay.url, keys(1)).await;
    let mut bob = Client::join(&relay.url, keys(1)).await;
    let tag = alice.keys.doc_tag("deal-7");
    let other_tag = alice.keys.doc_tag("deal-8");
    let envs = vec![alice.seal("deal-7", b"v1"), alice.seal("deal-8", b"x"), alice.seal("deal-7", b"v2")];
    alice.push(envs).await;
    bob.live().await;
    let late = alice.seal("deal-7", b"v3");
    alice.push(vec![late]).await;
    bob.live().await;
    assert_eq!(row_counts(&relay.db_path(), workspace(1), tag), (3, 0));

    // A snapshot computed against another incarnation of the log is
    // refused, and deletes nothing.
    let incarnation = alice.incarnation;
    let stale = Incarnation::from_bytes([0x57; 16]);
    assert_ne!(stale, incarnation);
    let snapshot = alice.seal("deal-7", b"computed against a lost log");
    let request = alice.next_request();
    let err = alice
        .error_reply(&ClientMessage::ReplaceWithSnapshot {
            request,
            snapshot,
            covers_through: Seq(3),
            incarnation: stale,
        })
        .await;
    assert_code(&err, ErrorCode::IncarnationChanged);
    assert_eq!(row_counts(&relay.db_path(), workspace(1), tag), (3, 0));

    // The snapshot covers seq 1..=3; seq 4 came after and stays.
    let snapshot = alice.seal("deal-7", b"compacted v1+v2");
    let request = alice.next_request();
    match alice
        .request(&ClientMessage::ReplaceWithSnapshot { request, snapshot, covers_through: Seq(3), incarnation })
        .await
    {
        ServerMessage::SnapshotStored { seq, removed, .. } => {
            assert_eq!((seq, removed), (Seq(5), 2))
        }
        other => panic!("expected SnapshotStored, got {other:?}"),
    }
    assert_eq!(row_counts(&relay.db_path(), workspace(1), tag), (1, 1));
    assert_eq!(row_counts(&relay.db_path(), workspace(1), other_tag), (1, 0));

    let live = bob.live().await;
    assert_eq!((live[0].seq, live[0].kind), (Seq(5), EntryKind::Snapshot));
    let all = bob.pull_all().await;
    let plain: Vec<_> = all.iter().map(|e| bob.keys.open(&e.envelope).expect("opens")).collect();
    assert_eq!(plain, [b"x".to_vec(), b"v3".to_vec(), b"compacted v1+v2".to_vec()]);

    // A snapshot ahead of the log is refused.
    let snapshot = alice.seal("deal-7", b"future");
    let request = alice.next_request();
    let err = alice
        .error_reply(&ClientMessage::ReplaceWithSnapshot { request, snapshot, covers_through: Seq(50), incarnation })
        .await;
    assert_code(&err, ErrorCode::InvalidRequest);
    relay.shutdown().await;
}

#[tokio::test]
async fn deleting_a_document_removes_all_its_rows() {
    let relay = TestRelay::start(test_limits()).await;
    let mut c = Client::join(&relay.url, keys(1)).await;
    let tag = c.keys.doc_tag("contact-erased");
    let keep = c.keys.doc_tag("contact-kept");
    let envs = vec![
        c.seal("contact-erased", b"Jane Doe"),
        c.seal("contact-kept", b"John Roe"),
        c.seal("contact-erased", b"jane@example.com"),
    ];
    c.push(envs).await;
    let snapshot = c.seal("contact-erased", b"Jane Doe, compacted");
    let request = c.next_request();
    let incarnation = c.incarnation;
    c.request(&ClientMessage::ReplaceWithSnapshot { request, snapshot, covers_through: Seq(1), incarnation }).await;
    assert_eq!(row_counts(&relay.db_path(), workspace(1), tag), (1, 1));

    let request = c.next_request();
    match c.request(&ClientMessage::DeleteDocument { request, doc_tag: tag }).await {
        ServerMessage::DocumentDeleted { request: r, removed } => assert_eq!((r, removed), (request, 2)),
        other => panic!("expected DocumentDeleted, got {other:?}"),
    }
    assert_eq!(row_counts(&relay.db_path(), workspace(1), tag), (0, 0));
    assert_eq!(row_counts(&relay.db_path(), workspace(1), keep), (1, 0));
    let all = c.pull_all().await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].envelope.doc_tag, keep);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_each_see_every_acknowledged_push_once() {
    let relay = TestRelay::start(test_limits()).await;
    let url = relay.url.clone();
    let tasks: Vec<_> = (0..50u8)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let ws = 10 + i % 5;
                let mut c = Client::join(&url, keys(ws)).await;
                let mut acked = Vec::new();
                for n in 0..4 {
                    let env = c.seal(&format!("client-{i}"), format!("{i}/{n}").as_bytes());
                    acked.extend(c.push(vec![env]).await);
                }
                (ws, acked, c)
            })
        })
        .collect();
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("client task"));
    }
    assert_eq!(relay.state.connection_count(), 50);
    for (ws, acked, mut c) in clients {
        let all = c.pull_all().await;
        assert_eq!(all.len(), 40, "10 clients x 4 pushes in workspace {ws}");
        let seqs: Vec<u64> = all.iter().map(|e| e.seq.get()).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
        assert!(acked.iter().all(|s| seqs.contains(&s.get())));
        assert!(all.iter().all(|e| c.keys.open(&e.envelope).is_ok()));
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_handshake_timeout() {
    let limits = Limits { handshake_timeout_ms: 200, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let (mut socket, _) = connect(&relay.url).await;
    let started = std::time::Instant::now();
    assert_code(&expect_fatal(&mut socket).await, ErrorCode::HandshakeTimeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    relay.shutdown().await;
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_one_answering_pings_is_kept() {
    let limits = Limits { idle_timeout_ms: 300, ..test_limits() };
    let relay = TestRelay::start(limits).await;

    // This client keeps reading, so tungstenite answers the relay's pings.
    let mut lively = Client::join(&relay.url, keys(1)).await;
    assert!(!lively.has_live_within(Duration::from_millis(800)).await);
    lively.ping().await;

    // This one reads nothing for a while: no pongs, so it goes idle.
    let mut silent = Client::join(&relay.url, keys(1)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_code(&expect_fatal(&mut silent.socket).await, ErrorCode::IdleTimeout);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_short_burst_is_refused_a_few_times_without_closing_the_connection() {
    let limits = Limits { rate_burst_frames: 5, rate_frames_per_sec: 20, ..Limits::default() };
    let relay = TestRelay::start(limits).await;
    let mut c = Client::join(&relay.url, keys(1)).await;
    for request in 0..10 {
        send(&mut c.socket, &ClientMessage::Ping { request }).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    // Five admitted; of the five refused, only the first four are answered.
    for _ in 0..9 {
        match c.reply().await {
            ServerMessage::Pong { .. } => pongs += 1,
            ServerMessage::Error(e) => {
                assert_code(&e, ErrorCode::RateLimited);
                assert!(!e.fatal);
                assert!(e.request.is_some());
                assert!(e.retry_after_ms.is_some_and(|ms| ms > 0 && ms <= 50));
                limited += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((pongs, limited), (5, rapport_relay::rate::ANSWERED_REFUSALS));
    tokio::time::sleep(Duration::from_millis(60)).await;
    // The tenth frame got no answer: the next reply is this ping's.
    c.ping().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_with_503() {
    let limits = Limits { max_connections: 2, ..test_limits() };
    let relay = TestRelay::start(limits).await;
    let _a = Client::join(&relay.url, keys(1)).await;
    let _b = Client::join(&relay.url, keys(1)).await;
    match tokio_tungstenite::connect_async(relay.url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected HTTP 503, got {other:?}"),
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_connected_members_to_come_back_later() {
    let relay = TestRelay::start(test_limits()).await;
    let mut c = Client::join(&relay.url, keys(1)).await;
    relay.state.begin_shutdown();
    assert_code(&expect_fatal(&mut c.socket).await, ErrorCode::Unavailable);
    relay.shutdown().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn healthz_reports_ok() {
    let relay = TestRelay::start(test_limits()).await;
    let (status, body) = http_get(relay.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""status":"ok""#), "{body}");
    relay.shutdown().await;
}

#[tokio::test]
async fn the_web_app_is_served_with_an_index_fallback() {
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("index.html"), "<html>rapport app</html>").expect("write");
    std::fs::write(site.path().join("app.js"), "console.log('js')").expect("write");
    let relay = TestRelay::start_with(test_limits(), Some(site.path().to_path_buf())).await;
    assert_eq!(http_get(relay.addr, "/app.js").await, (200, "console.log('js')".into()));
    let (status, body) = http_get(relay.addr, "/contacts/42").await;
    assert_eq!((status, body.as_str()), (200, "<html>rapport app</html>"));
    let (status, _) = http_get(relay.addr, "/healthz").await;
    assert_eq!(status, 200);
    // The sync endpoint still works next to the static files.
    Client::join(&relay.url, keys(1)).await.ping().await;
    relay.shutdown().await;
}
