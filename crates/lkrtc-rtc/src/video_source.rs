//! Where an application pushes raw frames. `capture_frame` runs on the caller's thread and stays
//! cheap: a size check, one conversion to I420 and a store into each publisher's latest-wins
//! slot. A real-time source drops stale frames rather than queueing them. Local streams
//! (previews, recorders) get each frame as captured, in their format, through their bounded
//! queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};

use crate::encoded_source::{EncodedFeed, EncodedSlot};
use crate::frame_metadata::FrameMetadata;
use crate::options::VideoSourceOptions;
use crate::stream_queue::{self, StreamQueue};
use crate::{RtcError, RtcResult};

/// A frame ready for an encoder.
#[derive(Debug)]
pub struct CapturedFrame {
  /// The frame, converted to I420.
  pub i420: VideoFrame<Vec<u8>>,
  /// Capture time, microseconds.
  pub timestamp_us: i64,
  /// How the frame is to be rotated for display.
  pub rotation: VideoRotation,
  /// Sent with the encoded frame in LiveKit's packet trailer.
  pub metadata: Option<FrameMetadata>,
}

/// The hand-off between `capture_frame` and one encoder: holds at most the newest frame.
#[derive(Default)]
pub(crate) struct FrameSlot {
  frame: Mutex<Option<Arc<CapturedFrame>>>,
  ready: Condvar,
  closed: AtomicBool,
  /// Frames replaced before the encoder took them.
  pub(crate) dropped: AtomicU64,
}

impl FrameSlot {
  fn put(&self, frame: Arc<CapturedFrame>) {
    let mut guard = self.frame.lock().unwrap_or_else(|e| e.into_inner());
    if guard.replace(frame).is_some() {
      self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    self.ready.notify_one();
  }

  /// Waits up to `timeout` for a frame. `Err` once the slot is closed.
  pub(crate) fn take(&self, timeout: Duration) -> Result<Option<Arc<CapturedFrame>>, ()> {
    let guard = self.frame.lock().unwrap_or_else(|e| e.into_inner());
    let (mut guard, _) = self
      .ready
      .wait_timeout_while(guard, timeout, |f| f.is_none() && !self.closed.load(Ordering::Acquire))
      .unwrap_or_else(|e| e.into_inner());
    if self.closed.load(Ordering::Acquire) {
      return Err(());
    }
    Ok(guard.take())
  }

  pub(crate) fn close(&self) {
    self.closed.store(true, Ordering::Release);
    let _guard = self.frame.lock().unwrap_or_else(|e| e.into_inner());
    self.ready.notify_all();
  }
}

/// Told of a change of a source's frame size; false once it is no longer interested.
pub(crate) type SizeWatcher = Box<dyn Fn(u32, u32) -> bool + Send + Sync>;

struct SourceInner {
  /// The size of the frames it takes now (width in the high half): the size given at creation
  /// until a frame of another size comes.
  size: AtomicU64,
  watchers: Mutex<Vec<SizeWatcher>>,
  options: VideoSourceOptions,
  closed: AtomicBool,
  sinks: Mutex<Vec<Arc<FrameSlot>>>,
  /// Local streams of the frames as captured.
  taps: Mutex<Vec<Arc<StreamQueue>>>,
  captured: AtomicU64,
  /// Set for a source of pre-encoded frames ([`crate::EncodedVideoSource`]).
  encoded: Option<EncodedFeed>,
}

/// A source of raw video frames. Frames may change size (a resized window, a camera switching
/// mode): the encoders follow, starting again with a keyframe. Cheap to clone; clones share the
/// source.
#[derive(Clone)]
pub struct VideoSource {
  inner: Arc<SourceInner>,
}

impl std::fmt::Debug for VideoSource {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("VideoSource")
      .field("width", &self.width())
      .field("height", &self.height())
      .finish()
  }
}

/// Microseconds since the Unix epoch: the clock of timestamps lkrtc stamps itself.
pub fn now_us() -> i64 {
  SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .map(|d| d.as_micros() as i64)
    .unwrap_or(0)
}

impl VideoSource {
  /// A source of `width` x `height` frames (the size it is published at; frames of another
  /// size may follow).
  pub fn new(width: u32, height: u32, options: VideoSourceOptions) -> RtcResult<Self> {
    Self::with_feed(width, height, options, None)
  }

  pub(crate) fn with_feed(
    width: u32,
    height: u32,
    options: VideoSourceOptions,
    encoded: Option<EncodedFeed>,
  ) -> RtcResult<Self> {
    lkrtc_video::check_dimensions(i64::from(width), i64::from(height))?;
    Ok(Self {
      inner: Arc::new(SourceInner {
        size: AtomicU64::new(pack(width, height)),
        watchers: Mutex::new(Vec::new()),
        options,
        closed: AtomicBool::new(false),
        sinks: Mutex::new(Vec::new()),
        taps: Mutex::new(Vec::new()),
        captured: AtomicU64::new(0),
        encoded,
      }),
    })
  }

  /// The width of the frames it takes now.
  pub fn width(&self) -> u32 {
    (self.inner.size.load(Ordering::Acquire) >> 32) as u32
  }

  /// The height of the frames it takes now.
  pub fn height(&self) -> u32 {
    self.inner.size.load(Ordering::Acquire) as u32
  }

  /// The feed of a source of pre-encoded frames; `None` for raw frames.
  pub(crate) fn encoded_feed(&self) -> Option<&EncodedFeed> {
    self.inner.encoded.as_ref()
  }

  /// Counts a frame of `width` x `height`, telling the watchers when the size changed.
  pub(crate) fn note_frame(&self, width: u32, height: u32) {
    let size = pack(width, height);
    if self.inner.size.swap(size, Ordering::AcqRel) != size {
      let mut watchers = self.inner.watchers.lock().unwrap_or_else(|e| e.into_inner());
      watchers.retain(|w| w(width, height));
    }
    self.inner.captured.fetch_add(1, Ordering::Relaxed);
  }

  /// Calls `watcher` on every change of the frame size, until it returns false.
  pub(crate) fn watch_size(&self, watcher: SizeWatcher) {
    self
      .inner
      .watchers
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .push(watcher);
  }

  /// Whether it shows a screen.
  pub fn is_screencast(&self) -> bool {
    self.inner.options.is_screencast
  }

  /// Frames accepted so far.
  pub fn captured_frames(&self) -> u64 {
    self.inner.captured.load(Ordering::Relaxed)
  }

  /// Whether `close` was called.
  pub fn is_closed(&self) -> bool {
    self.inner.closed.load(Ordering::Acquire)
  }

  /// Hands a frame to every track publishing this source. `timestamp_us == 0` means now;
  /// explicit timestamps (any monotonic microsecond clock) drive the RTP timing.
  pub fn capture_frame(&self, frame: &VideoFrame<&[u8]>, timestamp_us: i64, rotation: VideoRotation) -> RtcResult<()> {
    self.capture_frame_with_metadata(frame, timestamp_us, rotation, None)
  }

  /// [`VideoSource::capture_frame`] with `metadata`, which travels with the encoded frame to
  /// every subscriber in LiveKit's packet trailer (see [`crate::frame_metadata`]).
  pub fn capture_frame_with_metadata(
    &self,
    frame: &VideoFrame<&[u8]>,
    timestamp_us: i64,
    rotation: VideoRotation,
    metadata: Option<FrameMetadata>,
  ) -> RtcResult<()> {
    if self.is_closed() {
      return Err(RtcError::Closed {
        what: "the video source",
      });
    }
    if let Some(feed) = self.encoded_feed() {
      return Err(RtcError::InvalidArgument {
        name: "frame",
        reason: format!(
          "this source publishes pre-encoded {} frames; expected EncodedVideoSource.captureFrame, not raw frames",
          feed.codec
        ),
      });
    }
    self.note_frame(frame.width(), frame.height());
    let timestamp_us = if timestamp_us == 0 { now_us() } else { timestamp_us };
    let taps = self.inner.taps.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !taps.is_empty() {
      stream_queue::deliver(&taps, frame, None, timestamp_us, rotation, metadata);
    }
    let sinks = self.inner.sinks.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if sinks.is_empty() {
      // Nobody publishes this source yet: nothing to convert.
      return Ok(());
    }
    let captured = Arc::new(CapturedFrame {
      i420: to_i420(frame)?,
      timestamp_us,
      rotation,
      metadata,
    });
    for sink in sinks {
      sink.put(captured.clone());
    }
    Ok(())
  }

  /// Stops accepting frames and ends the encoders and the local streams fed by this source.
  pub fn close(&self) {
    self.inner.closed.store(true, Ordering::Release);
    for sink in self.inner.sinks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
      sink.close();
    }
    for tap in self.inner.taps.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
      tap.close();
    }
    if let Some(feed) = self.encoded_feed() {
      feed.close();
    }
  }

  /// Adds a local stream; one added to a closed source ends at once.
  pub(crate) fn tap(&self, queue: Arc<StreamQueue>) {
    let mut taps = self.inner.taps.lock().unwrap_or_else(|e| e.into_inner());
    // Checked under the lock, so `close` cannot slip in between.
    if self.is_closed() {
      queue.close();
    } else {
      taps.push(queue);
    }
  }

  pub(crate) fn untap(&self, queue: &Arc<StreamQueue>) {
    self
      .inner
      .taps
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .retain(|q| !Arc::ptr_eq(q, queue));
  }

  pub(crate) fn attach(&self) -> Arc<FrameSlot> {
    let slot = Arc::new(FrameSlot::default());
    let mut sinks = self.inner.sinks.lock().unwrap_or_else(|e| e.into_inner());
    // Checked under the lock: `close` sets the flag before it drains the sinks.
    if self.is_closed() {
      slot.close();
    } else {
      sinks.push(slot.clone());
    }
    slot
  }

  /// A queue of the encoded frames for one publishing track (`None` for a raw source).
  pub(crate) fn attach_encoded(&self) -> Option<Arc<EncodedSlot>> {
    Some(self.encoded_feed()?.attach(|| self.is_closed()))
  }

  pub(crate) fn detach_encoded(&self, slot: &Arc<EncodedSlot>) {
    if let Some(feed) = self.encoded_feed() {
      feed.detach(slot);
    }
  }

  pub(crate) fn detach(&self, slot: &Arc<FrameSlot>) {
    slot.close();
    self
      .inner
      .sinks
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .retain(|s| !Arc::ptr_eq(s, slot));
  }
}

fn pack(width: u32, height: u32) -> u64 {
  (u64::from(width) << 32) | u64::from(height)
}

/// One copy into a fresh I420 buffer (libyuv when converting).
fn to_i420(frame: &VideoFrame<&[u8]>) -> RtcResult<VideoFrame<Vec<u8>>> {
  if frame.buffer_type() == VideoBufferType::I420 {
    let mut out = VideoFrame::new_zeroed(frame.width(), frame.height(), VideoBufferType::I420)?;
    out.data_mut().copy_from_slice(frame.data());
    return Ok(out);
  }
  Ok(lkrtc_video::convert(frame, VideoBufferType::I420, false)?)
}

#[cfg(test)]
mod tests {
  use super::*;

  fn i420(w: u32, h: u32, fill: u8) -> VideoFrame<Vec<u8>> {
    let mut f = VideoFrame::new_zeroed(w, h, VideoBufferType::I420).unwrap();
    f.data_mut().fill(fill);
    f
  }

  #[test]
  fn a_frame_of_another_size_changes_the_size_and_tells_the_watchers_once() {
    let source = VideoSource::new(640, 480, VideoSourceOptions::default()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    source.watch_size(Box::new(move |w, h| {
      s2.lock().unwrap().push((w, h));
      true
    }));
    let slot = source.attach();
    for (w, h) in [(640, 480), (320, 240), (320, 240), (641, 359)] {
      source
        .capture_frame(&i420(w, h, 7).as_ref(), 0, VideoRotation::Rotation0)
        .unwrap();
      assert_eq!((source.width(), source.height()), (w, h));
      let got = slot.take(Duration::from_millis(10)).unwrap().unwrap();
      assert_eq!((got.i420.width(), got.i420.height()), (w, h));
    }
    assert_eq!(*seen.lock().unwrap(), vec![(320, 240), (641, 359)]);
  }

  #[test]
  fn a_watcher_that_lost_interest_is_dropped() {
    let source = VideoSource::new(4, 4, VideoSourceOptions::default()).unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let c2 = calls.clone();
    source.watch_size(Box::new(move |_, _| {
      c2.fetch_add(1, Ordering::Relaxed);
      false
    }));
    source
      .capture_frame(&i420(8, 8, 0).as_ref(), 0, VideoRotation::Rotation0)
      .unwrap();
    source
      .capture_frame(&i420(4, 4, 0).as_ref(), 0, VideoRotation::Rotation0)
      .unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
  }

  #[test]
  fn the_slot_keeps_only_the_newest_frame() {
    let source = VideoSource::new(4, 4, VideoSourceOptions::default()).unwrap();
    let slot = source.attach();
    for n in 1..=3 {
      source
        .capture_frame(&i420(4, 4, n).as_ref(), i64::from(n) * 1000, VideoRotation::Rotation90)
        .unwrap();
    }
    let frame = slot.take(Duration::from_millis(10)).unwrap().unwrap();
    assert_eq!(
      (frame.timestamp_us, frame.i420.data()[0], frame.rotation),
      (3000, 3, VideoRotation::Rotation90)
    );
    assert_eq!(slot.dropped.load(Ordering::Relaxed), 2);
    assert!(slot.take(Duration::from_millis(1)).unwrap().is_none());
  }

  #[test]
  fn closed_sources_refuse_frames_and_wake_encoders() {
    let source = VideoSource::new(4, 4, VideoSourceOptions::default()).unwrap();
    let slot = source.attach();
    let waiter = std::thread::spawn(move || slot.take(Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(20));
    source.close();
    assert!(waiter.join().unwrap().is_err());
    let err = source
      .capture_frame(&i420(4, 4, 0).as_ref(), 0, VideoRotation::Rotation0)
      .unwrap_err();
    assert_eq!(err.code(), "ERR_CLOSED");
  }

  #[test]
  fn rgba_frames_are_converted_to_i420() {
    let source = VideoSource::new(4, 2, VideoSourceOptions::default()).unwrap();
    let slot = source.attach();
    let rgba = VideoFrame::new(4, 2, VideoBufferType::RGBA, vec![255u8; 4 * 2 * 4]).unwrap();
    source
      .capture_frame(&rgba.as_ref(), 5, VideoRotation::Rotation0)
      .unwrap();
    let frame = slot.take(Duration::from_millis(10)).unwrap().unwrap();
    assert_eq!(frame.i420.buffer_type(), VideoBufferType::I420);
    assert!(
      frame.i420.plane(0).unwrap().iter().all(|&y| y > 200),
      "white stays white"
    );
  }

  #[test]
  fn zero_timestamp_means_now() {
    let source = VideoSource::new(4, 4, VideoSourceOptions::default()).unwrap();
    let slot = source.attach();
    let before = now_us();
    source
      .capture_frame(&i420(4, 4, 0).as_ref(), 0, VideoRotation::Rotation0)
      .unwrap();
    assert!(slot.take(Duration::from_millis(10)).unwrap().unwrap().timestamp_us >= before);
  }
}
