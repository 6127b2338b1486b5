//! Where an application pushes raw frames. `capture_frame` runs on the caller's thread and stays
//! cheap: a size check, one conversion to I420 and a store into each publisher's latest-wins
//! slot. A real-time source drops stale frames rather than queueing them. Local streams
//! (previews, recorders) get each frame as captured, in their format, through their bounded
//! queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};

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

struct SourceInner {
  width: u32,
  height: u32,
  options: VideoSourceOptions,
  closed: AtomicBool,
  sinks: Mutex<Vec<Arc<FrameSlot>>>,
  /// Local streams of the frames as captured.
  taps: Mutex<Vec<Arc<StreamQueue>>>,
  captured: AtomicU64,
}

/// A source of raw video frames of one fixed size. Cheap to clone; clones share the source.
#[derive(Clone)]
pub struct VideoSource {
  inner: Arc<SourceInner>,
}

impl std::fmt::Debug for VideoSource {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("VideoSource")
      .field("width", &self.inner.width)
      .field("height", &self.inner.height)
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
  /// A source of `width` x `height` frames.
  pub fn new(width: u32, height: u32, options: VideoSourceOptions) -> RtcResult<Self> {
    lkrtc_video::check_dimensions(i64::from(width), i64::from(height))?;
    Ok(Self {
      inner: Arc::new(SourceInner {
        width,
        height,
        options,
        closed: AtomicBool::new(false),
        sinks: Mutex::new(Vec::new()),
        taps: Mutex::new(Vec::new()),
        captured: AtomicU64::new(0),
      }),
    })
  }

  /// Frame width.
  pub fn width(&self) -> u32 {
    self.inner.width
  }

  /// Frame height.
  pub fn height(&self) -> u32 {
    self.inner.height
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
    if self.is_closed() {
      return Err(RtcError::Closed {
        what: "the video source",
      });
    }
    if frame.width() != self.inner.width || frame.height() != self.inner.height {
      return Err(RtcError::FrameSizeMismatch {
        expected_width: self.inner.width,
        expected_height: self.inner.height,
        given_width: frame.width(),
        given_height: frame.height(),
      });
    }
    self.inner.captured.fetch_add(1, Ordering::Relaxed);
    let timestamp_us = if timestamp_us == 0 { now_us() } else { timestamp_us };
    let taps = self.inner.taps.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !taps.is_empty() {
      stream_queue::deliver(&taps, frame, None, timestamp_us, rotation);
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
    if self.is_closed() {
      slot.close();
    } else {
      self
        .inner
        .sinks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(slot.clone());
    }
    slot
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
  fn size_mismatch_says_expected_and_given() {
    let source = VideoSource::new(640, 480, VideoSourceOptions::default()).unwrap();
    let frame = i420(320, 240, 0);
    let err = source
      .capture_frame(&frame.as_ref(), 0, VideoRotation::Rotation0)
      .unwrap_err();
    assert_eq!(err.code(), "ERR_FRAME_SIZE_MISMATCH");
    assert!(
      err.to_string().contains("640x480") && err.to_string().contains("320x240"),
      "{err}"
    );
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
