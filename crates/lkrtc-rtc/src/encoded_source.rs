//! A source of pre-encoded video (a camera's or an RTSP feed's H.264, a file's VP8): frames go
//! out as they come, never decoded or encoded again. Each publishing track reads a bounded FIFO
//! (a delta frame needs every frame since its keyframe, so frames are queued, not replaced);
//! whatever breaks that chain (a full queue, congestion, a new transport, unmuting) makes the
//! track skip to the next keyframe and ask the producer for one. The producer polls
//! [`EncodedVideoSource::take_feedback`] for those requests and for the target bitrate, as it
//! alone can make keyframes and change the rate.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use lkrtc_codec::bitstream;
use lkrtc_video::VideoRotation;

use crate::frame_metadata::FrameMetadata;
use crate::options::{VideoCodec, VideoSourceOptions};
use crate::video_source::{now_us, VideoSource};
use crate::{RtcError, RtcResult};

/// Frames a publishing track holds before the oldest is dropped: a second at 30 fps.
pub const ENCODED_QUEUE_CAPACITY: usize = 30;

/// One encoded frame handed to [`EncodedVideoSource::capture_frame`].
#[derive(Debug, Clone)]
pub struct EncodedFrameInput<'a> {
  /// One complete frame: VP8 or VP9 as its RTP payload format carries it, H.264 as an Annex-B
  /// access unit (keyframes with their SPS and PPS).
  pub data: &'a [u8],
  /// What the caller says the frame is; checked against the bitstream. `None`: read from it.
  pub keyframe: Option<bool>,
  /// The picture size; `None`: the source's current size (a VP8 keyframe states its own).
  pub size: Option<(u32, u32)>,
  /// Capture time, microseconds (`0`: now).
  pub timestamp_us: i64,
  /// How the frame is to be rotated for display.
  pub rotation: VideoRotation,
  /// Sent with the frame in LiveKit's packet trailer.
  pub metadata: Option<FrameMetadata>,
}

/// A frame queued for the tracks that publish the source.
#[derive(Debug)]
pub(crate) struct EncodedCapture {
  pub data: Vec<u8>,
  pub keyframe: bool,
  pub width: u32,
  pub height: u32,
  pub timestamp_us: i64,
  pub rotation: VideoRotation,
  pub metadata: Option<FrameMetadata>,
}

/// The hand-off between `capture_frame` and one track's sender: a bounded FIFO that drops its
/// oldest frame when full.
#[derive(Default)]
pub(crate) struct EncodedSlot {
  frames: Mutex<VecDeque<Arc<EncodedCapture>>>,
  ready: Condvar,
  closed: AtomicBool,
  /// Frames dropped because the queue was full.
  pub(crate) dropped: AtomicU64,
}

impl EncodedSlot {
  fn put(&self, frame: Arc<EncodedCapture>) {
    let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
    if frames.len() >= ENCODED_QUEUE_CAPACITY {
      frames.pop_front();
      self.dropped.fetch_add(1, Ordering::Relaxed);
    }
    frames.push_back(frame);
    self.ready.notify_one();
  }

  /// Waits up to `timeout` for the oldest frame. `Err` once the slot is closed.
  pub(crate) fn take(&self, timeout: Duration) -> Result<Option<Arc<EncodedCapture>>, ()> {
    let frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
    let (mut frames, _) = self
      .ready
      .wait_timeout_while(frames, timeout, |f| {
        f.is_empty() && !self.closed.load(Ordering::Acquire)
      })
      .unwrap_or_else(|e| e.into_inner());
    if self.closed.load(Ordering::Acquire) {
      return Err(());
    }
    Ok(frames.pop_front())
  }

  pub(crate) fn close(&self) {
    self.closed.store(true, Ordering::Release);
    let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
    frames.clear();
    self.ready.notify_all();
  }
}

/// What the network asks of the producer's encoder (WebRTC's rate control for it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncodedRateControl {
  /// The bitrate the link carries for this track now.
  pub target_bitrate_bps: u64,
  /// The frame rate it plans for.
  pub framerate_fps: f64,
}

/// Feedback gathered since the previous [`EncodedVideoSource::take_feedback`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct EncodedSourceFeedback {
  /// A subscriber (or lkrtc itself, after frames were lost) needs a keyframe.
  pub keyframe_requested: bool,
  /// A new target, when it changed since the last call.
  pub rate_control: Option<EncodedRateControl>,
}

#[derive(Default)]
struct FeedbackState {
  keyframe_requested: bool,
  rate: Option<EncodedRateControl>,
  /// The rate last handed out.
  told: Option<EncodedRateControl>,
}

/// The part of a [`VideoSource`] that makes it a source of encoded frames.
pub(crate) struct EncodedFeed {
  pub codec: VideoCodec,
  slots: Mutex<Vec<Arc<EncodedSlot>>>,
  feedback: Mutex<FeedbackState>,
}

impl EncodedFeed {
  pub(crate) fn new(codec: VideoCodec) -> Self {
    Self {
      codec,
      slots: Mutex::new(Vec::new()),
      feedback: Mutex::new(FeedbackState::default()),
    }
  }

  fn feedback(&self) -> std::sync::MutexGuard<'_, FeedbackState> {
    self.feedback.lock().unwrap_or_else(|e| e.into_inner())
  }

  pub(crate) fn request_keyframe(&self) {
    self.feedback().keyframe_requested = true;
  }

  /// The sender's current target. Handed out when it moved by 5% or more (or the frame rate
  /// changed), so a producer is not told of every wobble of the estimate.
  pub(crate) fn offer_rate(&self, rate: EncodedRateControl) {
    self.feedback().rate = Some(rate);
  }

  fn take(&self) -> EncodedSourceFeedback {
    let mut f = self.feedback();
    let keyframe_requested = std::mem::take(&mut f.keyframe_requested);
    let rate_control = match (f.rate, f.told) {
      (Some(now), Some(told))
        if now.framerate_fps == told.framerate_fps
          && (now.target_bitrate_bps as f64 - told.target_bitrate_bps as f64).abs()
            < told.target_bitrate_bps as f64 * 0.05 =>
      {
        None
      }
      (now, _) => now,
    };
    if rate_control.is_some() {
      f.told = rate_control;
    }
    EncodedSourceFeedback {
      keyframe_requested,
      rate_control,
    }
  }

  /// A new track's queue. `closed` is asked under the lock: the source's `close` sets its flag
  /// before it closes the feed, so a queue attached meanwhile is closed by one or the other.
  pub(crate) fn attach(&self, closed: impl Fn() -> bool) -> Arc<EncodedSlot> {
    let slot = Arc::new(EncodedSlot::default());
    let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
    if closed() {
      slot.close();
    } else {
      slots.push(slot.clone());
    }
    slot
  }

  pub(crate) fn detach(&self, slot: &Arc<EncodedSlot>) {
    slot.close();
    self
      .slots
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .retain(|s| !Arc::ptr_eq(s, slot));
  }

  pub(crate) fn close(&self) {
    for slot in self.slots.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
      slot.close();
    }
  }

  /// Queues `frame` for every publishing track; false when none publishes the source.
  pub(crate) fn deliver(&self, frame: EncodedCapture) -> bool {
    let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let frame = Arc::new(frame);
    for slot in &slots {
      slot.put(frame.clone());
    }
    !slots.is_empty()
  }
}

/// A source of pre-encoded VP8, VP9 or H.264 frames, published like a [`VideoSource`]: make a
/// track over [`EncodedVideoSource::source`] and publish it (one layer, in the source's codec).
/// Call [`EncodedVideoSource::capture_frame`] at the stream's own pace (it does not pace a file
/// for playback) and forward [`EncodedVideoSource::take_feedback`]'s requests to the encoder.
/// Cheap to clone; clones share the source.
#[derive(Clone, Debug)]
pub struct EncodedVideoSource {
  source: VideoSource,
}

impl EncodedVideoSource {
  /// A source of `codec` frames of `width` x `height` (the size it is published at). AV1 is
  /// refused: lkrtc does not packetize it.
  pub fn new(width: u32, height: u32, codec: VideoCodec) -> RtcResult<Self> {
    if codec == VideoCodec::Av1 {
      return Err(RtcError::InvalidArgument {
        name: "codec",
        reason: "pre-encoded AV1 is not supported; expected 'vp8', 'vp9' or 'h264'".into(),
      });
    }
    let source = VideoSource::with_feed(
      width,
      height,
      VideoSourceOptions::default(),
      Some(EncodedFeed::new(codec)),
    )?;
    Ok(Self { source })
  }

  /// The source to make a [`crate::LocalVideoTrack`] over.
  pub fn source(&self) -> &VideoSource {
    &self.source
  }

  /// The codec of its frames.
  pub fn codec(&self) -> VideoCodec {
    self.feed().codec
  }

  fn feed(&self) -> &EncodedFeed {
    self.source.encoded_feed().expect("an encoded source has a feed")
  }

  /// Checks `frame` against the codec's bitstream and queues a copy for every track publishing
  /// the source. `Ok(false)`: no track publishes it, the frame went nowhere.
  pub fn capture_frame(&self, frame: &EncodedFrameInput<'_>) -> RtcResult<bool> {
    if self.source.is_closed() {
      return Err(RtcError::Closed {
        what: "the encoded video source",
      });
    }
    let codec = self.codec();
    let info = bitstream::inspect(codec, frame.data).map_err(RtcError::Bitstream)?;
    if let Some(said) = frame.keyframe {
      if said != info.keyframe {
        return Err(RtcError::InvalidArgument {
          name: "keyframe",
          reason: format!(
            "the frame is marked {} but its {codec} bitstream is a {}",
            if said { "a keyframe" } else { "a delta frame" },
            if info.keyframe { "keyframe" } else { "delta frame" }
          ),
        });
      }
    }
    let (width, height) = match (frame.size, info.size) {
      (Some(given), Some(stated)) if given != stated => {
        return Err(RtcError::InvalidArgument {
          name: "width/height",
          reason: format!(
            "{}x{} given, but the {codec} keyframe states {}x{}",
            given.0, given.1, stated.0, stated.1
          ),
        })
      }
      (Some(size), _) | (None, Some(size)) => size,
      (None, None) => (self.source.width(), self.source.height()),
    };
    lkrtc_video::check_dimensions(i64::from(width), i64::from(height))?;
    self.source.note_frame(width, height);
    let timestamp_us = if frame.timestamp_us == 0 {
      now_us()
    } else {
      frame.timestamp_us
    };
    Ok(self.feed().deliver(EncodedCapture {
      data: frame.data.to_vec(),
      keyframe: info.keyframe,
      width,
      height,
      timestamp_us,
      rotation: frame.rotation,
      metadata: frame.metadata,
    }))
  }

  /// The keyframe requests and rate target gathered since the last call.
  pub fn take_feedback(&self) -> EncodedSourceFeedback {
    self.feed().take()
  }

  /// Stops accepting frames and ends the tracks' senders.
  pub fn close(&self) {
    self.source.close();
  }
}
