//! Reconnection against a real livekit-server that dies: killed mid-stream and started again on
//! the same ports (no memory of the room), both participants rejoin, the publisher republishes,
//! the subscriber resubscribes and the new colour arrives. A server that stays down ends the room
//! with a reason within the bounded retry time. A track paused by hand stays paused across a
//! resume and a rejoin.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::media::{frames_of, i420, publish_camera, red_session, subscribed, Feeder, RedSession, BLUE, RED};
use common::{next_event, published_track_sid, room_name, token, TestServer};
use lkrtc_rtc::{ConnectionState, Room, RoomEvent, RoomOptions, TrackEndReason, VideoStream};
use tokio::sync::mpsc::UnboundedReceiver;

/// Kills the server, turns the feeder blue, starts the server again on the same ports and waits
/// until both rooms (their event receivers) have rejoined.
async fn restart_and_rejoin(server: &mut TestServer, feeder: &Feeder, rooms: [&mut UnboundedReceiver<RoomEvent>; 2]) {
  server.kill();
  feeder.colour.store(1, Ordering::Relaxed);
  tokio::time::sleep(Duration::from_millis(500)).await;
  server.restart();
  let restarted_at = Instant::now();
  for events in rooms {
    next_event(events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
    next_event(events, 40, |e| matches!(e, RoomEvent::Reconnected)).await;
  }
  eprintln!("both rejoined {:?} after the restart", restarted_at.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_rejoin_and_video_flows_again_after_the_server_restarts() {
  let mut server = TestServer::start();
  let RedSession {
    alice,
    mut alice_events,
    track,
    publication: before,
    feeder,
    bob,
    mut bob_events,
    remote: first,
    mut stream,
  } = red_session(&server, &room_name("restart"), 5).await;

  restart_and_rejoin(&mut server, &feeder, [&mut alice_events, &mut bob_events]).await;
  assert_eq!(alice.connection_state(), ConnectionState::Connected);
  assert_eq!(bob.connection_state(), ConnectionState::Connected);

  // The publisher's track is published again, under a new sid, with the same source.
  let after = match next_event(&mut alice_events, 15, |e| {
    matches!(e, RoomEvent::LocalTrackPublished { .. })
  })
  .await
  {
    RoomEvent::LocalTrackPublished { publication } => publication,
    _ => unreachable!(),
  };
  assert_ne!(after.sid, before.sid, "a restarted server gives new sids");
  assert_eq!(after.name, "camera");
  assert_eq!(track.sid().as_deref(), Some(after.sid.as_str()));
  assert!(alice.local_participant().track_publications().contains_key(&after.sid));

  // The old track ended with the old session; the new one carries the new colour.
  let ended = tokio::time::timeout(Duration::from_secs(10), async {
    while stream.next().await.is_some() {}
  })
  .await;
  assert!(ended.is_ok(), "the old session's stream ends");
  assert!(first.is_ended());
  assert_eq!(first.end_reason(), Some(TrackEndReason::Rejoined));
  let second = subscribed(&mut bob_events, 30).await;
  assert_ne!(second.sid(), first.sid());
  // The old track names the new one as its successor, by the time it is announced.
  assert_eq!(first.successor().map(|t| t.sid()), Some(second.sid()));
  assert!(second.successor().is_none());
  let mut stream = VideoStream::new(&second, i420());
  let stamps = frames_of(&mut stream, BLUE.1, 10, 20).await;
  assert!(
    stamps.windows(2).all(|w| w[1] > w[0]),
    "timestamps increase: {stamps:?}"
  );
  let stats = alice
    .local_participant()
    .publish_stats(&after.sid)
    .expect("stats by the new sid");
  assert!(stats.frames_encoded >= 10, "{stats:?}");

  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_whose_server_stays_down_ends_with_the_reason_in_bounded_time() {
  let mut server = TestServer::start();
  let room = room_name("gone");
  let (alice, mut events) = Room::connect(&server.url, &token("alice", &room), RoomOptions::default())
    .await
    .expect("alice connects");
  server.kill();
  let lost_at = Instant::now();
  next_event(&mut events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
  let reason = match next_event(&mut events, 90, |e| matches!(e, RoomEvent::Disconnected { .. })).await {
    RoomEvent::Disconnected { reason } => reason,
    _ => unreachable!(),
  };
  assert_eq!(reason, "SIGNAL_CLOSE");
  let took = lost_at.elapsed();
  assert!(
    took > Duration::from_secs(20),
    "it retried with backoff, not once: {took:?}"
  );
  assert!(took < Duration::from_secs(75), "it gave up in bounded time: {took:?}");
  assert_eq!(alice.connection_state(), ConnectionState::Disconnected);
  alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_subscribed_by_hand_is_subscribed_again_after_the_server_restarts() {
  let mut server = TestServer::start();
  let room = room_name("manual-restart");
  let (alice, mut alice_events, _track, publication, feeder) = publish_camera(&server, &room).await;
  let manual = RoomOptions {
    auto_subscribe: false,
    ..RoomOptions::default()
  };
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), manual)
    .await
    .expect("bob connects");
  assert_eq!(
    published_track_sid(&bob, &mut bob_events, "alice").await,
    publication.sid
  );
  bob.set_subscribed(&publication.sid, true).await.expect("subscribe");
  let first = subscribed(&mut bob_events, 15).await;
  frames_of(&mut VideoStream::new(&first, i420()), RED.1, 5, 15).await;

  restart_and_rejoin(&mut server, &feeder, [&mut alice_events, &mut bob_events]).await;

  // No new set_subscribed: the choice made for the old track carries over to the new one.
  let second = subscribed(&mut bob_events, 30).await;
  assert_ne!(second.sid(), first.sid());
  assert_eq!(second.name(), "camera");
  frames_of(&mut VideoStream::new(&second, i420()), BLUE.1, 10, 20).await;

  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_unsubscribed_by_hand_stays_unsubscribed_after_the_server_restarts() {
  let mut server = TestServer::start();
  let RedSession {
    alice,
    mut alice_events,
    feeder,
    bob,
    mut bob_events,
    remote,
    mut stream,
    ..
  } = red_session(&server, &room_name("unsubscribed-restart"), 3).await;
  bob.set_subscribed(&remote.sid(), false).await.expect("unsubscribe");
  next_event(&mut bob_events, 10, |e| {
    matches!(e, RoomEvent::TrackUnsubscribed { .. })
  })
  .await;
  while stream.next().await.is_some() {}

  restart_and_rejoin(&mut server, &feeder, [&mut alice_events, &mut bob_events]).await;
  next_event(
    &mut bob_events,
    30,
    |e| matches!(e, RoomEvent::TrackPublished { publication, .. } if publication.name == "camera"),
  )
  .await;

  // The server subscribes bob by default; the carried choice undoes it at once. Count what
  // happens over a few seconds: every subscription is matched by an unsubscription.
  let mut held = 0i32;
  let until = tokio::time::Instant::now() + Duration::from_secs(6);
  while let Ok(Some(event)) = tokio::time::timeout_at(until, bob_events.recv()).await {
    match event {
      RoomEvent::TrackSubscribed { .. } => held += 1,
      RoomEvent::TrackUnsubscribed { .. } => held -= 1,
      _ => {}
    }
  }
  assert_eq!(held, 0, "bob holds no subscription to the republished track");

  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}

/// Whether `stream` yields a frame within `secs`.
async fn a_frame_within(stream: &mut VideoStream, secs: u64) -> bool {
  matches!(
    tokio::time::timeout(Duration::from_secs(secs), stream.next()).await,
    Ok(Some(_))
  )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_paused_by_hand_stays_paused_after_the_server_restarts() {
  let mut server = TestServer::start();
  let RedSession {
    alice,
    mut alice_events,
    feeder,
    bob,
    mut bob_events,
    remote,
    mut stream,
    ..
  } = red_session(&server, &room_name("paused-restart"), 3).await;
  bob.set_track_enabled(&remote.sid(), false).await.expect("pause");
  // Frames already on their way may still come; then none.
  tokio::time::sleep(Duration::from_secs(1)).await;
  while tokio::time::timeout(Duration::from_millis(10), stream.next())
    .await
    .is_ok()
  {}
  assert!(!a_frame_within(&mut stream, 3).await, "a paused track sends no frames");

  restart_and_rejoin(&mut server, &feeder, [&mut alice_events, &mut bob_events]).await;
  let second = subscribed(&mut bob_events, 30).await;
  assert_ne!(second.sid(), remote.sid());
  let mut stream = VideoStream::new(&second, i420());
  assert!(
    !a_frame_within(&mut stream, 5).await,
    "the track published again is paused as its predecessor was"
  );

  bob.set_track_enabled(&second.sid(), true).await.expect("resume");
  frames_of(&mut stream, BLUE.1, 5, 15).await;

  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_track_paused_by_hand_stays_paused_after_a_resume() {
  let server = TestServer::start();
  let RedSession {
    alice,
    feeder,
    bob,
    mut bob_events,
    remote,
    mut stream,
    ..
  } = red_session(&server, &room_name("paused-resume"), 3).await;
  bob.set_track_enabled(&remote.sid(), false).await.expect("pause");
  tokio::time::sleep(Duration::from_secs(1)).await;
  while tokio::time::timeout(Duration::from_millis(10), stream.next())
    .await
    .is_ok()
  {}

  bob.simulate_signal_loss();
  next_event(&mut bob_events, 10, |e| matches!(e, RoomEvent::Reconnected)).await;
  assert!(!a_frame_within(&mut stream, 4).await, "still paused after the resume");
  assert!(!remote.is_ended(), "a resume keeps the subscription");

  bob.set_track_enabled(&remote.sid(), true).await.expect("resume");
  frames_of(&mut stream, RED.1, 5, 15).await;

  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}

/// The server drops the subscriber's session alone (a node failure, simulated) while the
/// publisher stays: the subscriber joins again, is given the same track (same sid) again,
/// the track it had names that one as its successor, and the colour the publisher now sends
/// arrives on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_rejoins_alone_gets_the_same_track_again_and_its_frames() {
  let server = TestServer::start();
  let RedSession {
    alice,
    feeder,
    bob,
    mut bob_events,
    remote: first,
    ..
  } = red_session(&server, &room_name("sub-rejoin"), 3).await;

  bob.simulate_node_failure();
  next_event(&mut bob_events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
  next_event(&mut bob_events, 30, |e| matches!(e, RoomEvent::Reconnected)).await;
  feeder.colour.store(1, Ordering::Relaxed);
  let second = subscribed(&mut bob_events, 30).await;
  assert_eq!(
    second.sid(),
    first.sid(),
    "the publisher's track was not published again"
  );
  assert_eq!(first.end_reason(), Some(TrackEndReason::Rejoined));
  assert_eq!(
    first.successor().map(|t| t.sid()),
    Some(second.sid()),
    "the ended track names its successor"
  );
  let mut stream = VideoStream::new(&second, i420());
  frames_of(&mut stream, BLUE.1, 5, 15).await;
  assert_eq!(alice.connection_state(), ConnectionState::Connected);

  drop(feeder);
  bob.disconnect().await;
  alice.disconnect().await;
}
