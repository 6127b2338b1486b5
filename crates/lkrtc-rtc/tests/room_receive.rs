//! Receiving video through a real livekit-server, lkrtc to lkrtc: alice publishes solid colours,
//! bob subscribes and must see every colour, in order, with the publisher's capture timestamps.
//! Also: stream capacity and drops, two subscribers, and streams ending on unpublish/disconnect.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{next_event, published_track_sid, room_name, token, TestServer};
use lkrtc_rtc::video_source::now_us;
use lkrtc_rtc::{
  LocalVideoTrack, RemoteVideoTrack, Room, RoomEvent, RoomOptions, TrackEndReason, TrackPublishOptions, TrackSource,
  VideoBufferType, VideoCodec, VideoFrame, VideoFrameEvent, VideoQuality, VideoRotation, VideoSource,
  VideoSourceOptions, VideoStream, VideoStreamOptions,
};
use tokio::sync::mpsc::UnboundedReceiver;

/// Every test here encodes and decodes 640x480 in real time: on a small machine they would
/// starve each other, so they take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const FRAME_INTERVAL: Duration = Duration::from_millis(66);
/// Frames per colour: ~1 s at ~15 fps.
const FRAMES_PER_COLOUR: usize = 15;

const GREY: [u8; 3] = [128, 128, 128];
const COLOURS: [(&str, [u8; 3]); 5] = [
  ("red", [255, 0, 0]),
  ("green", [0, 255, 0]),
  ("blue", [0, 0, 255]),
  ("white", [255, 255, 255]),
  ("black", [0, 0, 0]),
];

async fn subscribed_track(events: &mut UnboundedReceiver<RoomEvent>) -> RemoteVideoTrack {
  match next_event(events, 15, |e| matches!(e, RoomEvent::TrackSubscribed { .. })).await {
    RoomEvent::TrackSubscribed { track, participant, .. } => {
      assert_eq!(participant.identity, "alice");
      track
    }
    _ => unreachable!(),
  }
}

async fn next_frame(stream: &mut VideoStream, secs: u64) -> Option<VideoFrameEvent> {
  tokio::time::timeout(Duration::from_secs(secs), stream.next())
    .await
    .expect("a frame (or the end) in time")
}

fn solid_rgba(rgb: [u8; 3]) -> VideoFrame<Vec<u8>> {
  let mut data = vec![255u8; (WIDTH * HEIGHT * 4) as usize];
  for px in data.chunks_exact_mut(4) {
    px[..3].copy_from_slice(&rgb);
  }
  VideoFrame::new(WIDTH, HEIGHT, VideoBufferType::RGBA, data).unwrap()
}

/// Mean colour of an RGBA (or, converted here, I420) frame, sampled on a grid.
fn mean_rgb(frame: &VideoFrame<Vec<u8>>) -> [f64; 3] {
  let rgba;
  let data = if frame.buffer_type() == VideoBufferType::RGBA {
    frame.data()
  } else {
    rgba = lkrtc_video::convert(frame, VideoBufferType::RGBA, false).unwrap();
    rgba.data()
  };
  let mut sum = [0f64; 3];
  let mut n = 0f64;
  for px in data.chunks_exact(4).step_by(37) {
    for c in 0..3 {
      sum[c] += f64::from(px[c]);
    }
    n += 1.0;
  }
  sum.map(|s| s / n)
}

/// The palette entry (grey = None... or a colour index) the mean is within `tolerance` of.
fn classify(mean: [f64; 3]) -> Option<Option<usize>> {
  const TOLERANCE: f64 = 40.0;
  let near = |rgb: [u8; 3]| (0..3).all(|c| (mean[c] - f64::from(rgb[c])).abs() <= TOLERANCE);
  if near(GREY) {
    return Some(None);
  }
  COLOURS.iter().position(|(_, rgb)| near(*rgb)).map(Some)
}

/// Publishes: grey until `go` is set (so the subscriber is ready before the first colour), then
/// every colour for ~1 s each, then stops. Returns (capture timestamp, colour) of each frame
/// sent after `go`.
struct Feeder {
  go: Arc<AtomicBool>,
  stop: Arc<AtomicBool>,
  thread: std::thread::JoinHandle<Vec<(i64, usize)>>,
}

impl Feeder {
  fn start(source: VideoSource, colours: bool) -> Feeder {
    let go = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (go2, stop2) = (go.clone(), stop.clone());
    let thread = std::thread::spawn(move || {
      let grey = solid_rgba(GREY);
      let frames: Vec<_> = COLOURS.iter().map(|(_, rgb)| solid_rgba(*rgb)).collect();
      let mut sent = Vec::new();
      let capture = |frame: &VideoFrame<Vec<u8>>| {
        let ts = now_us();
        source
          .capture_frame(&frame.as_ref(), ts, VideoRotation::Rotation0)
          .ok()
          .map(|_| ts)
      };
      while !go2.load(Ordering::Relaxed) && !stop2.load(Ordering::Relaxed) {
        if capture(&grey).is_none() {
          return sent;
        }
        std::thread::sleep(FRAME_INTERVAL);
      }
      if colours {
        for (i, frame) in frames.iter().enumerate() {
          for _ in 0..FRAMES_PER_COLOUR {
            match capture(frame) {
              Some(ts) => sent.push((ts, i)),
              None => return sent,
            }
            std::thread::sleep(FRAME_INTERVAL);
          }
        }
        // Hold the last colour until stopped, so the receiver sees a stable run of it.
        while !stop2.load(Ordering::Relaxed) {
          match capture(&frames[COLOURS.len() - 1]) {
            Some(ts) => sent.push((ts, COLOURS.len() - 1)),
            None => return sent,
          }
          std::thread::sleep(FRAME_INTERVAL);
        }
      } else {
        while !stop2.load(Ordering::Relaxed) {
          if capture(&grey).is_none() {
            return sent;
          }
          std::thread::sleep(FRAME_INTERVAL);
        }
      }
      sent
    });
    Feeder { go, stop, thread }
  }

  fn go(&self) {
    self.go.store(true, Ordering::Relaxed);
  }

  fn finish(self) -> Vec<(i64, usize)> {
    self.stop.store(true, Ordering::Relaxed);
    self.thread.join().unwrap()
  }
}

struct Publisher {
  room: Room,
  source: VideoSource,
  publication_sid: String,
}

async fn publish(server: &TestServer, room: &str, codec: VideoCodec) -> (Publisher, UnboundedReceiver<RoomEvent>) {
  let (alice, alice_events) = Room::connect(&server.url, &token("alice", room), RoomOptions::default())
    .await
    .expect("alice connects");
  let source = VideoSource::new(WIDTH, HEIGHT, VideoSourceOptions::default()).unwrap();
  let track = LocalVideoTrack::create_video_track("cam", &source);
  let publication = alice
    .local_participant()
    .publish_track(
      &track,
      TrackPublishOptions {
        source: TrackSource::Camera,
        video_codec: codec,
        video_encoding: None,
        // The size received is asserted: one layer (with simulcast the server may forward the
        // lower one first).
        simulcast: false,
        ..Default::default()
      },
    )
    .await
    .expect("publish");
  (
    Publisher {
      room: alice,
      source,
      publication_sid: publication.sid,
    },
    alice_events,
  )
}

/// Receives until the last colour was seen in a stable run (or `secs` passed); returns
/// (colour class, timestamp) per frame.
async fn receive_colours(
  stream: &mut VideoStream,
  format: VideoBufferType,
  secs: u64,
) -> Vec<(Option<Option<usize>>, i64)> {
  let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
  let mut seen = Vec::new();
  let mut last_run = 0;
  while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, stream.next()).await {
    assert_eq!(ev.frame.buffer_type(), format);
    assert_eq!((ev.frame.width(), ev.frame.height()), (WIDTH, HEIGHT));
    let class = classify(mean_rgb(&ev.frame));
    seen.push((class, ev.timestamp_us));
    if class == Some(Some(COLOURS.len() - 1)) {
      last_run += 1;
      if last_run >= 5 {
        break;
      }
    } else {
      last_run = 0;
    }
  }
  seen
}

/// The colours seen as runs of at least 3 consecutive frames, in order, grey and unstable
/// (transition) frames left out.
fn stable_runs(seen: &[(Option<Option<usize>>, i64)]) -> Vec<usize> {
  let mut runs: Vec<(Option<Option<usize>>, usize)> = Vec::new();
  for (class, _) in seen {
    match runs.last_mut() {
      Some((c, n)) if c == class => *n += 1,
      _ => runs.push((*class, 1)),
    }
  }
  let mut out: Vec<usize> = Vec::new();
  for (class, n) in runs {
    if let (Some(Some(i)), true) = (class, n >= 3) {
      if out.last() != Some(&i) {
        out.push(i);
      }
    }
  }
  out
}

/// Received timestamps vs the sender's: strictly increasing, and after the first second each
/// within 50 ms of the captureFrame timestamp of a frame of the same colour. Returns the worst and
/// the median error after the first second, in µs.
fn check_timestamps(received: &[(Option<Option<usize>>, i64)], sent: &[(i64, usize)]) -> (i64, i64) {
  for pair in received.windows(2) {
    assert!(
      pair[1].1 > pair[0].1,
      "timestamps go back: {} then {}",
      pair[0].1,
      pair[1].1
    );
  }
  let first_sent = sent.first().expect("frames were sent").0;
  let mut errors = Vec::new();
  for (i, (class, ts)) in received.iter().enumerate() {
    if *ts <= first_sent + 1_000_000 {
      continue;
    }
    let error = sent.iter().map(|(s, _)| (s - ts).abs()).min().unwrap();
    assert!(error <= 50_000, "a received timestamp is {error} µs from any sent one");
    // Inside a run of one colour (not at its edges, where the encoder may still be converging
    // from the previous colour) the frame must have been captured as that colour.
    let inside_run = i > 0 && i + 1 < received.len() && received[i - 1].0 == *class && received[i + 1].0 == *class;
    if let (Some(Some(seen)), true) = (class, inside_run) {
      assert!(
        sent
          .iter()
          .any(|(s, colour)| colour == seen && (s - ts).abs() <= 50_000),
        "no {} frame was sent within 50 ms of a received {} frame's timestamp",
        COLOURS[*seen].0,
        COLOURS[*seen].0
      );
    }
    errors.push(error);
  }
  assert!(errors.len() > 10, "only {} frames after the first second", errors.len());
  errors.sort();
  (errors[errors.len() - 1], errors[errors.len() / 2])
}

async fn colours_arrive_in_order(codec: VideoCodec, format: Option<VideoBufferType>) {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("colours");
  let (alice, _alice_events) = publish(&server, &room, codec).await;
  let feeder = Feeder::start(alice.source.clone(), true);
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), RoomOptions::default())
    .await
    .expect("bob connects");
  let track = subscribed_track(&mut bob_events).await;
  assert_eq!(track.sid(), alice.publication_sid);
  let mut stream = VideoStream::new(
    &track,
    VideoStreamOptions {
      capacity: 0,
      format,
      size: None,
    },
  );
  let first = next_frame(&mut stream, 15).await.expect("a first frame");
  assert_eq!(classify(mean_rgb(&first.frame)), Some(None), "grey first");
  feeder.go();
  let format = format.unwrap_or(VideoBufferType::I420);
  let seen = receive_colours(&mut stream, format, 20).await;
  let sent = feeder.finish();
  let stats = alice.room.local_participant().publish_stats(&alice.publication_sid);
  eprintln!("{codec}: publisher {stats:?}");
  let runs = stable_runs(&seen);
  let names: Vec<_> = runs.iter().map(|&i| COLOURS[i].0).collect();
  eprintln!(
    "{codec} {format}: {} frames received for {} sent; runs {names:?}; dropped {}",
    seen.len(),
    sent.len(),
    stream.dropped_frames()
  );
  assert_eq!(runs, (0..COLOURS.len()).collect::<Vec<_>>(), "colours seen: {names:?}");
  assert_eq!(stream.dropped_frames(), 0, "capacity 0 never drops");
  let (worst, median) = check_timestamps(&seen, &sent);
  eprintln!("{codec} {format}: timestamp error after 1 s: worst {worst} µs, median {median} µs");
  bob.disconnect().await;
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_colours_arrive_in_order_as_rgba_with_capture_timestamps() {
  colours_arrive_in_order(VideoCodec::Vp8, Some(VideoBufferType::RGBA)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_colours_arrive_in_order_as_rgba_with_capture_timestamps() {
  colours_arrive_in_order(VideoCodec::H264, Some(VideoBufferType::RGBA)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp8_colours_arrive_as_i420_without_a_format() {
  colours_arrive_in_order(VideoCodec::Vp8, None).await;
}

/// Starts alice publishing grey and bob subscribed to it.
async fn grey_session(
  server: &TestServer,
  room: &str,
) -> (Publisher, Feeder, Room, UnboundedReceiver<RoomEvent>, RemoteVideoTrack) {
  let (alice, _alice_events) = publish(server, room, VideoCodec::Vp8).await;
  let feeder = Feeder::start(alice.source.clone(), false);
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", room), RoomOptions::default())
    .await
    .expect("bob connects");
  let track = subscribed_track(&mut bob_events).await;
  (alice, feeder, bob, bob_events, track)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_drops_with_capacity_one_and_keeps_everything_with_capacity_zero() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("capacity");
  let (alice, feeder, bob, _bob_events, track) = grey_session(&server, &room).await;
  let mut newest = VideoStream::new(
    &track,
    VideoStreamOptions {
      capacity: 1,
      format: None,
      size: None,
    },
  );
  let mut every = VideoStream::new(
    &track,
    VideoStreamOptions {
      capacity: 0,
      format: None,
      size: None,
    },
  );
  next_frame(&mut newest, 15).await.expect("a first frame");
  // Read one frame every 300 ms for 2 s: the track delivers ~15 fps. Then stop publishing.
  let mut newest_read = 1;
  for _ in 0..7 {
    tokio::time::sleep(Duration::from_millis(300)).await;
    next_frame(&mut newest, 5).await.expect("a frame");
    newest_read += 1;
  }
  let dropped = newest.dropped_frames();
  newest.close();
  feeder.finish();
  // The unbounded stream kept them all.
  let mut every_read = 0;
  while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), every.next()).await {
    every_read += 1;
  }
  eprintln!(
    "capacity 1: read {newest_read}, dropped {dropped}; capacity 0: read {every_read}, dropped {}",
    every.dropped_frames()
  );
  assert!(dropped >= 5, "capacity 1 dropped {dropped}");
  assert_eq!(every.dropped_frames(), 0);
  assert!(every_read >= newest_read + dropped as usize - 2, "{every_read}");
  bob.disconnect().await;
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_of_one_publisher_both_receive() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("two");
  let (alice, _alice_events) = publish(&server, &room, VideoCodec::Vp8).await;
  let feeder = Feeder::start(alice.source.clone(), false);
  let mut viewers = Vec::new();
  for name in ["bob", "carol"] {
    let (viewer, mut events) = Room::connect(&server.url, &token(name, &room), RoomOptions::default())
      .await
      .expect("viewer connects");
    let track = subscribed_track(&mut events).await;
    let stream = VideoStream::new(&track, VideoStreamOptions::default());
    viewers.push((viewer, events, stream));
  }
  for (viewer, _, stream) in viewers.iter_mut() {
    for _ in 0..5 {
      let ev = next_frame(stream, 15).await.expect("a frame");
      assert_eq!(classify(mean_rgb(&ev.frame)), Some(None));
    }
    viewer.disconnect().await;
  }
  feeder.finish();
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublishing_ends_the_stream() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("unpublish");
  let (alice, feeder, bob, mut bob_events, track) = grey_session(&server, &room).await;
  let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
  next_frame(&mut stream, 15).await.expect("a first frame");
  alice
    .room
    .local_participant()
    .unpublish_track(&alice.publication_sid)
    .await
    .expect("unpublish");
  next_event(&mut bob_events, 10, |e| {
    matches!(e, RoomEvent::TrackUnsubscribed { .. })
  })
  .await;
  while next_frame(&mut stream, 10).await.is_some() {}
  assert_eq!(track.end_reason(), Some(TrackEndReason::Unpublished));
  feeder.finish();
  bob.disconnect().await;
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnecting_ends_the_stream() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("disconnect");
  let (alice, feeder, bob, _bob_events, track) = grey_session(&server, &room).await;
  let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
  next_frame(&mut stream, 15).await.expect("a first frame");
  assert_eq!(track.end_reason(), None);
  bob.disconnect().await;
  while next_frame(&mut stream, 10).await.is_some() {}
  assert_eq!(track.end_reason(), Some(TrackEndReason::Disconnected));
  // A stream opened on a track of a room that is gone ends at once.
  let mut late = VideoStream::new(&track, VideoStreamOptions::default());
  assert!(next_frame(&mut late, 5).await.is_none());
  feeder.finish();
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auto_subscribe_a_requested_track_is_received() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("manual");
  let (alice, _alice_events) = publish(&server, &room, VideoCodec::Vp8).await;
  let feeder = Feeder::start(alice.source.clone(), false);
  let options = RoomOptions {
    auto_subscribe: false,
    ..RoomOptions::default()
  };
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), options)
    .await
    .expect("bob connects");
  // The track is known from the join (or announced right after it), but not subscribed.
  let sid = published_track_sid(&bob, &mut bob_events, "alice").await;
  assert_eq!(sid, alice.publication_sid);
  let err = bob.set_subscribed("TR_nonexistent", true).await.unwrap_err();
  assert_eq!(err.code(), "ERR_TRACK_NOT_FOUND");
  bob.set_subscribed(&sid, true).await.expect("subscribe");
  let track = subscribed_track(&mut bob_events).await;
  let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
  let ev = next_frame(&mut stream, 15).await.expect("a frame");
  assert_eq!(classify(mean_rgb(&ev.frame)), Some(None));
  bob.set_subscribed(&sid, false).await.expect("unsubscribe");
  next_event(&mut bob_events, 10, |e| {
    matches!(e, RoomEvent::TrackUnsubscribed { .. })
  })
  .await;
  while next_frame(&mut stream, 10).await.is_some() {}
  assert_eq!(track.end_reason(), Some(TrackEndReason::Unsubscribed));
  feeder.finish();
  bob.disconnect().await;
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_leaving_ends_the_stream() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("leaving");
  let (alice, feeder, bob, mut bob_events, track) = grey_session(&server, &room).await;
  let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
  next_frame(&mut stream, 15).await.expect("a first frame");
  alice.room.disconnect().await;
  next_event(&mut bob_events, 10, |e| {
    matches!(e, RoomEvent::TrackUnsubscribed { .. })
  })
  .await;
  while next_frame(&mut stream, 10).await.is_some() {}
  assert!(track.is_ended());
  assert_eq!(track.end_reason(), Some(TrackEndReason::ParticipantLeft));
  feeder.finish();
  bob.disconnect().await;
}

/// Frames keep arriving across a resume (signal connection lost and re-established).
async fn frames_flow_after_a_resume(of_publisher: bool) {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("resume");
  let (alice, mut alice_events) = publish(&server, &room, VideoCodec::Vp8).await;
  let feeder = Feeder::start(alice.source.clone(), false);
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), RoomOptions::default())
    .await
    .expect("bob connects");
  let track = subscribed_track(&mut bob_events).await;
  let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
  next_frame(&mut stream, 15).await.expect("a first frame");
  let (resumed, events) = if of_publisher {
    (&alice.room, &mut alice_events)
  } else {
    (&bob, &mut bob_events)
  };
  resumed.simulate_signal_loss();
  next_event(events, 10, |e| matches!(e, RoomEvent::Reconnected)).await;
  // Drain what was decoded before, then require fresh frames.
  while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), stream.next()).await {}
  for _ in 0..10 {
    next_frame(&mut stream, 10).await.expect("frames after the resume");
  }
  assert!(!track.is_ended());
  feeder.finish();
  bob.disconnect().await;
  alice.room.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_after_the_publisher_resumes() {
  frames_flow_after_a_resume(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_after_the_subscriber_resumes() {
  frames_flow_after_a_resume(false).await;
}

/// Captures one solid colour every frame interval until stopped.
fn feed_colour(source: VideoSource, rgb: [u8; 3], stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
  std::thread::spawn(move || {
    let frame = solid_rgba(rgb);
    while !stop.load(Ordering::Relaxed) {
      if source
        .capture_frame(&frame.as_ref(), now_us(), VideoRotation::Rotation0)
        .is_err()
      {
        return;
      }
      std::thread::sleep(FRAME_INTERVAL);
    }
  })
}

/// LiveKit gives a republished track the subscriber m-line of the previous one (same mid, new
/// msid and SSRCs): every publication must reach the subscriber, in its own colour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_republished_track_is_received_each_time() {
  let _turn = ONE_AT_A_TIME.lock().await;
  let server = TestServer::start();
  let room = room_name("republish");
  let (alice, _alice_events) = Room::connect(&server.url, &token("alice", &room), RoomOptions::default())
    .await
    .expect("alice connects");
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", &room), RoomOptions::default())
    .await
    .expect("bob connects");
  // The first publication and three republications, each in its own colour.
  let order = [0usize, 2, 1, 3];
  let mut received = Vec::new();
  for &colour in &order {
    let (name, rgb) = COLOURS[colour];
    let source = VideoSource::new(WIDTH, HEIGHT, VideoSourceOptions::default()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = feed_colour(source.clone(), rgb, stop.clone());
    let track = LocalVideoTrack::create_video_track(name, &source);
    let publication = alice
      .local_participant()
      .publish_track(&track, TrackPublishOptions::default())
      .await
      .expect("publish");
    let remote = match next_event(&mut bob_events, 15, |e| matches!(e, RoomEvent::TrackSubscribed { .. })).await {
      RoomEvent::TrackSubscribed { track, .. } => track,
      _ => unreachable!(),
    };
    assert_eq!(
      remote.sid(),
      publication.sid,
      "bob subscribed to the {name} publication"
    );
    let mut stream = VideoStream::new(
      &remote,
      VideoStreamOptions {
        capacity: 0,
        format: Some(VideoBufferType::RGBA),
        size: None,
      },
    );
    // Frames of this publication's colour, within 10 s of its subscription.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut classes = Vec::new();
    let mut matching = 0;
    while matching < 5 {
      match tokio::time::timeout_at(deadline, stream.next()).await {
        Ok(Some(ev)) => {
          let class = classify(mean_rgb(&ev.frame));
          matching += usize::from(class == Some(Some(colour)));
          classes.push(class);
        }
        Ok(None) | Err(_) => break,
      }
    }
    eprintln!("{name}: {} frames, {matching} of its colour", classes.len());
    received.push((name, matching));
    alice
      .local_participant()
      .unpublish_track(&publication.sid)
      .await
      .expect("unpublish");
    next_event(&mut bob_events, 10, |e| {
      matches!(e, RoomEvent::TrackUnsubscribed { .. })
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    feeder.join().unwrap();
    source.close();
  }
  assert!(
    received.iter().all(|(_, matching)| *matching >= 5),
    "frames of each publication's colour: {received:?}"
  );
  bob.disconnect().await;
  alice.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_of_an_unknown_track_or_a_bad_size_are_refused() {
  let server = TestServer::start();
  let (bob, _events) = Room::connect(
    &server.url,
    &token("bob", &room_name("bad-settings")),
    RoomOptions::default(),
  )
  .await
  .expect("bob connects");
  let err = bob.set_video_quality("TR_nope", VideoQuality::Low).await.unwrap_err();
  assert_eq!(err.code(), "ERR_TRACK_NOT_FOUND");
  let err = bob.set_track_enabled("TR_nope", false).await.unwrap_err();
  assert_eq!(err.code(), "ERR_TRACK_NOT_FOUND");
  let err = bob.set_video_dimensions("TR_nope", 0, 180).await.unwrap_err();
  assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
  assert!(err.to_string().contains("width"), "{err}");
  let err = bob.set_video_dimensions("TR_nope", 320, 20_000).await.unwrap_err();
  assert!(
    err.to_string().contains("height") && err.to_string().contains("16384"),
    "{err}"
  );
  bob.disconnect().await;
}
