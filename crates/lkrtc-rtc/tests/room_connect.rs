//! Joining a real livekit-server: success, typed failures within bounded time, and two lkrtc
//! participants seeing each other come and go.

mod common;

use std::time::{Duration, Instant};

use common::{next_event, room_name, token, TestServer};
use lkrtc_rtc::{ConnectionState, Room, RoomEvent, RoomOptions};

fn options() -> RoomOptions {
  RoomOptions {
    connect_timeout: Duration::from_secs(10),
    ..Default::default()
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_and_knows_the_room() {
  let server = TestServer::start();
  let room = room_name("connect");
  let (r, mut events) = Room::connect(&server.url, &token("alice", &room), options())
    .await
    .expect("connect");
  assert_eq!(r.name(), room);
  assert!(r.sid().starts_with("RM_"), "{}", r.sid());
  assert_eq!(r.local_participant().identity(), "alice");
  assert!(r.local_participant().sid().starts_with("PA_"));
  assert!(r.is_connected());
  assert!(r.remote_participants().is_empty());
  next_event(&mut events, 5, |e| {
    matches!(
      e,
      RoomEvent::ConnectionStateChanged {
        state: ConnectionState::Connected
      }
    )
  })
  .await;
  r.disconnect().await;
  assert_eq!(r.connection_state(), ConnectionState::Disconnected);
  let ev = next_event(&mut events, 5, |e| matches!(e, RoomEvent::Disconnected { .. })).await;
  assert!(matches!(ev, RoomEvent::Disconnected { reason } if reason == "CLIENT_INITIATED"));
  assert!(events.recv().await.is_none(), "the stream ends after Disconnected");
  // idempotent
  r.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_unauthorized_promptly() {
  let server = TestServer::start();
  let bad = lkrtc_rtc::create_token(&lkrtc_rtc::TokenOptions {
    api_key: "devkey".into(),
    api_secret: "not-the-secret".into(),
    identity: "mallory".into(),
    room: room_name("auth"),
    ..Default::default()
  })
  .unwrap();
  let started = Instant::now();
  let err = Room::connect(&server.url, &bad, options()).await.unwrap_err();
  assert_eq!(err.code(), "ERR_UNAUTHORIZED", "{err}");
  assert!(
    !err.to_string().contains(&bad),
    "the token must not leak into errors: {err}"
  );
  assert!(
    started.elapsed() < Duration::from_secs(3),
    "took {:?}",
    started.elapsed()
  );
  let err = Room::connect(&server.url, "garbage", options()).await.unwrap_err();
  assert_eq!(err.code(), "ERR_UNAUTHORIZED", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_connection_refused_promptly() {
  let port = std::net::TcpListener::bind("127.0.0.1:0")
    .unwrap()
    .local_addr()
    .unwrap()
    .port();
  let started = Instant::now();
  let err = Room::connect(&format!("ws://127.0.0.1:{port}"), &token("a", "r"), options())
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_CONNECTION_REFUSED", "{err}");
  assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_a_connect_timeout() {
  // Accepts TCP and never answers the upgrade.
  let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
  let port = listener.local_addr().unwrap().port();
  let hold = tokio::spawn(async move {
    let mut held = Vec::new();
    while let Ok((s, _)) = listener.accept().await {
      held.push(s);
    }
  });
  let started = Instant::now();
  let opts = RoomOptions {
    connect_timeout: Duration::from_millis(500),
    ..Default::default()
  };
  let err = Room::connect(&format!("ws://127.0.0.1:{port}"), &token("a", "r"), opts)
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_CONNECT_TIMEOUT", "{err}");
  assert!(started.elapsed() < Duration::from_secs(2));
  hold.abort();
}

#[tokio::test]
async fn bad_urls_are_invalid() {
  for url in ["", "localhost:7880", "ftp://127.0.0.1:1", "ws://"] {
    let err = Room::connect(url, "t", options()).await.unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_URL", "{url}: {err}");
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_see_each_other() {
  let server = TestServer::start();
  let room = room_name("pair");
  let (alice, mut alice_events) = Room::connect(&server.url, &token("alice", &room), options())
    .await
    .expect("alice");
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), options())
    .await
    .expect("bob");
  // bob finds alice already there; alice is told that bob arrived
  assert!(bob.remote_participants().contains_key("alice"));
  let ev = next_event(&mut alice_events, 10, |e| {
    matches!(e, RoomEvent::ParticipantConnected { .. })
  })
  .await;
  let RoomEvent::ParticipantConnected { participant } = ev else {
    unreachable!()
  };
  assert_eq!(participant.identity, "bob");
  assert_eq!(participant.name, "bob name");
  assert!(alice.remote_participants().contains_key("bob"));

  bob.disconnect().await;
  let ev = next_event(&mut alice_events, 10, |e| {
    matches!(e, RoomEvent::ParticipantDisconnected { .. })
  })
  .await;
  let RoomEvent::ParticipantDisconnected { participant } = ev else {
    unreachable!()
  };
  assert_eq!(participant.identity, "bob");
  assert!(alice.remote_participants().is_empty());
  next_event(&mut bob_events, 5, |e| matches!(e, RoomEvent::Disconnected { .. })).await;
  alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_identity_ends_the_first_session_with_its_reason() {
  let server = TestServer::start();
  let room = room_name("dup");
  let (first, mut first_events) = Room::connect(&server.url, &token("alice", &room), options())
    .await
    .expect("first");
  let (second, _second_events) = Room::connect(&server.url, &token("alice", &room), options())
    .await
    .expect("second");
  let ev = next_event(&mut first_events, 10, |e| matches!(e, RoomEvent::Disconnected { .. })).await;
  assert!(
    matches!(&ev, RoomEvent::Disconnected { reason } if reason == "DUPLICATE_IDENTITY"),
    "{ev:?}"
  );
  assert!(first_events.recv().await.is_none());
  assert_eq!(first.connection_state(), ConnectionState::Disconnected);
  let err = first
    .local_participant()
    .publish_track(
      &lkrtc_rtc::LocalVideoTrack::create_video_track(
        "cam",
        &lkrtc_rtc::VideoSource::new(16, 16, Default::default()).unwrap(),
      ),
      Default::default(),
    )
    .await
    .unwrap_err();
  assert_eq!(err.code(), "ERR_NOT_CONNECTED");
  first.disconnect().await;
  second.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_server_starts_a_resume_that_disconnect_cuts_short() {
  let server = TestServer::start();
  let (room, mut events) = Room::connect(&server.url, &token("alice", &room_name("lost")), options())
    .await
    .expect("connect");
  drop(server);
  next_event(&mut events, 5, |e| matches!(e, RoomEvent::Reconnecting)).await;
  assert_eq!(room.connection_state(), ConnectionState::Reconnecting);
  let started = Instant::now();
  room.disconnect().await;
  assert!(
    started.elapsed() < Duration::from_secs(2),
    "disconnect took {:?}",
    started.elapsed()
  );
  let ev = next_event(&mut events, 5, |e| matches!(e, RoomEvent::Disconnected { .. })).await;
  assert!(
    matches!(&ev, RoomEvent::Disconnected { reason } if reason == "CLIENT_INITIATED"),
    "{ev:?}"
  );
  assert!(!room.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_signal_connection_is_resumed() {
  let server = TestServer::start();
  let room = room_name("resume");
  let (alice, mut alice_events) = Room::connect(&server.url, &token("alice", &room), options())
    .await
    .expect("alice");
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), options())
    .await
    .expect("bob");
  next_event(&mut alice_events, 10, |e| {
    matches!(e, RoomEvent::ParticipantConnected { .. })
  })
  .await;
  alice.simulate_signal_loss();
  next_event(&mut alice_events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
  next_event(&mut alice_events, 10, |e| matches!(e, RoomEvent::Reconnected)).await;
  assert!(alice.is_connected());
  // The resumed session still hears about the room.
  bob.disconnect().await;
  next_event(&mut alice_events, 10, |e| {
    matches!(e, RoomEvent::ParticipantDisconnected { .. })
  })
  .await;
  next_event(&mut bob_events, 5, |e| matches!(e, RoomEvent::Disconnected { .. })).await;
  alice.disconnect().await;
}
