//! Coloured video for integration tests: a feeder thread capturing solid colours, and readers
//! that recognise them by luma after the codec.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lkrtc_rtc::video_source::now_us;
use lkrtc_rtc::{
  LocalTrackPublication, LocalVideoTrack, RemoteVideoTrack, Room, RoomEvent, RoomOptions, TrackPublishOptions,
  VideoBufferType, VideoFrame, VideoRotation, VideoSource, VideoSourceOptions, VideoStream, VideoStreamOptions,
};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{next_event, token, TestServer};

pub const WIDTH: u32 = 320;
pub const HEIGHT: u32 = 240;

/// Solid colours as captured (RGBA) and their BT.601 limited-range luma as received.
pub const RED: ([u8; 3], f64) = ([255, 0, 0], 82.0);
pub const BLUE: ([u8; 3], f64) = ([0, 0, 255], 41.0);

pub fn solid(rgb: [u8; 3]) -> VideoFrame<Vec<u8>> {
  let mut data = vec![255u8; (WIDTH * HEIGHT * 4) as usize];
  for px in data.chunks_exact_mut(4) {
    px[..3].copy_from_slice(&rgb);
  }
  VideoFrame::new(WIDTH, HEIGHT, VideoBufferType::RGBA, data).unwrap()
}

/// Mean of the luma plane of an I420 frame.
pub fn mean_luma(frame: &VideoFrame<Vec<u8>>) -> f64 {
  let y = &frame.data()[..(frame.width() * frame.height()) as usize];
  y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len() as f64
}

/// Captures `colours[index]` at ~30 fps until stopped; the index can change under it.
pub struct Feeder {
  stop: Arc<AtomicBool>,
  pub colour: Arc<AtomicU8>,
  thread: Option<std::thread::JoinHandle<()>>,
}

impl Feeder {
  pub fn start(source: VideoSource) -> Feeder {
    let stop = Arc::new(AtomicBool::new(false));
    let colour = Arc::new(AtomicU8::new(0));
    let frames = [solid(RED.0), solid(BLUE.0)];
    let thread = {
      let (stop, colour) = (stop.clone(), colour.clone());
      std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
          let frame = &frames[usize::from(colour.load(Ordering::Relaxed))];
          let _ = source.capture_frame(&frame.as_ref(), now_us(), VideoRotation::Rotation0);
          std::thread::sleep(Duration::from_millis(33));
        }
      })
    };
    Feeder {
      stop,
      colour,
      thread: Some(thread),
    }
  }
}

impl Drop for Feeder {
  fn drop(&mut self) {
    self.stop.store(true, Ordering::Relaxed);
    if let Some(thread) = self.thread.take() {
      let _ = thread.join();
    }
  }
}

pub async fn subscribed(events: &mut tokio::sync::mpsc::UnboundedReceiver<RoomEvent>, secs: u64) -> RemoteVideoTrack {
  match next_event(events, secs, |e| matches!(e, RoomEvent::TrackSubscribed { .. })).await {
    RoomEvent::TrackSubscribed { track, participant, .. } => {
      assert_eq!(participant.identity, "alice");
      track
    }
    _ => unreachable!(),
  }
}

/// Reads until `n` frames of luma `want` (±12) arrived; other frames (older colour, the first
/// blurry keyframes) are skipped, up to a time limit.
pub async fn frames_of(stream: &mut VideoStream, want: f64, n: usize, secs: u64) -> Vec<i64> {
  let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
  let mut stamps = Vec::new();
  while stamps.len() < n {
    let event = tokio::time::timeout_at(deadline, stream.next())
      .await
      .unwrap_or_else(|_| panic!("{} of {n} frames of luma {want} in {secs} s", stamps.len()))
      .expect("the stream goes on");
    assert_eq!((event.frame.width(), event.frame.height()), (WIDTH, HEIGHT));
    if (mean_luma(&event.frame) - want).abs() <= 12.0 {
      stamps.push(event.timestamp_us);
    }
  }
  stamps
}

pub fn i420() -> VideoStreamOptions {
  VideoStreamOptions {
    format: Some(VideoBufferType::I420),
    ..Default::default()
  }
}

/// alice publishes a `Feeder` (red) as "camera"; bob subscribes and has read `red_frames` red frames.
pub struct RedSession {
  pub alice: Room,
  pub alice_events: UnboundedReceiver<RoomEvent>,
  pub track: LocalVideoTrack,
  pub publication: LocalTrackPublication,
  pub feeder: Feeder,
  pub bob: Room,
  pub bob_events: UnboundedReceiver<RoomEvent>,
  pub remote: RemoteVideoTrack,
  pub stream: VideoStream,
}

/// alice joins `room` and publishes a `Feeder` (red) as "camera".
pub async fn publish_camera(
  server: &TestServer,
  room: &str,
) -> (
  Room,
  UnboundedReceiver<RoomEvent>,
  LocalVideoTrack,
  LocalTrackPublication,
  Feeder,
) {
  let (alice, alice_events) = Room::connect(&server.url, &token("alice", room), RoomOptions::default())
    .await
    .expect("alice connects");
  let source = VideoSource::new(WIDTH, HEIGHT, VideoSourceOptions::default()).unwrap();
  let track = LocalVideoTrack::create_video_track("camera", &source);
  let publication = alice
    .local_participant()
    .publish_track(&track, TrackPublishOptions::default())
    .await
    .expect("publish");
  let feeder = Feeder::start(source);
  (alice, alice_events, track, publication, feeder)
}

pub async fn red_session(server: &TestServer, room: &str, red_frames: usize) -> RedSession {
  let (alice, alice_events, track, publication, feeder) = publish_camera(server, room).await;
  let (bob, mut bob_events) = Room::connect(&server.url, &token("bob", room), RoomOptions::default())
    .await
    .expect("bob connects");
  let remote = subscribed(&mut bob_events, 15).await;
  let mut stream = VideoStream::new(&remote, i420());
  frames_of(&mut stream, RED.1, red_frames, 15).await;
  RedSession {
    alice,
    alice_events,
    track,
    publication,
    feeder,
    bob,
    bob_events,
    remote,
    stream,
  }
}
