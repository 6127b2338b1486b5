//! Reconnection against a real livekit-server that dies: killed mid-stream and started again on
//! the same ports (no memory of the room), both participants rejoin, the publisher republishes,
//! the subscriber resubscribes and the new colour arrives. A server that stays down ends the room
//! with a reason within the bounded retry time.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::media::{frames_of, i420, red_session, subscribed, RedSession, BLUE};
use common::{next_event, room_name, token, TestServer};
use lkrtc_rtc::{ConnectionState, Room, RoomEvent, RoomOptions, TrackEndReason, VideoStream};

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

  server.kill();
  feeder.colour.store(1, Ordering::Relaxed);
  tokio::time::sleep(Duration::from_millis(500)).await;
  server.restart();
  let restarted_at = Instant::now();

  for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
    next_event(events, 10, |e| matches!(e, RoomEvent::Reconnecting)).await;
    next_event(events, 40, |e| matches!(e, RoomEvent::Reconnected)).await;
    eprintln!("{who} rejoined {:?} after the restart", restarted_at.elapsed());
  }
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
