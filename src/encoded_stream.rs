//! Receiving encoded video: one `EncodedVideoStream` of lkrtc-rtc per JS stream. `next()`
//! resolves with the next frame as it arrived, before decoding.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use lkrtc_rtc as rtc;
use napi::bindgen_prelude::{Buffer, PromiseRaw, Result};
use napi::Env;
use napi_derive::napi;
use tokio::sync::{Mutex, Notify};

use crate::error::spawn_js;
use crate::room::NativeRemoteVideoTrack;
use crate::video_frame::VideoRotation;
use crate::video_stream::NativeFrameMetadata;

/// One encoded frame.
#[napi(object, object_from_js = false)]
pub struct NativeEncodedFrameEvent {
  /// The frame as the sender's encoder made it.
  pub data: Buffer,
  #[napi(ts_type = "'vp8' | 'h264' | 'vp9' | 'av1'")]
  pub codec: String,
  pub keyframe: bool,
  /// Capture time in microseconds.
  pub timestamp_us: i64,
  /// The RTP timestamp (90 kHz).
  pub rtp_timestamp: u32,
  pub rotation: VideoRotation,
  pub metadata: Option<NativeFrameMetadata>,
}

/// The encoded frames of one remote video track.
#[napi]
pub struct NativeEncodedVideoStream {
  stream: Arc<Mutex<Option<rtc::EncodedVideoStream>>>,
  closed: Arc<(AtomicBool, Notify)>,
  dropped: Arc<AtomicU64>,
  keyframes: rtc::KeyframeRequester,
}

#[napi]
impl NativeEncodedVideoStream {
  /// `capacity`: frames kept for a slow reader (0: the default, 60).
  #[napi(constructor)]
  pub fn new(track: &NativeRemoteVideoTrack, capacity: u32) -> Self {
    let capacity = if capacity == 0 {
      rtc::DEFAULT_ENCODED_CAPACITY
    } else {
      capacity as usize
    };
    let stream = rtc::EncodedVideoStream::new(&track.inner, capacity);
    Self {
      keyframes: stream.keyframe_requester(),
      stream: Arc::new(Mutex::new(Some(stream))),
      closed: Arc::new((AtomicBool::new(false), Notify::new())),
      dropped: Arc::new(AtomicU64::new(0)),
    }
  }

  /// Asks the track's publisher for a keyframe.
  #[napi]
  pub fn request_keyframe(&self) {
    self.keyframes.request();
  }

  /// The next frame; `null` once the stream has ended (closed, track unsubscribed, room left).
  #[napi(ts_return_type = "Promise<NativeEncodedFrameEvent | null>")]
  pub fn next<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<NativeEncodedFrameEvent>>, String> {
    let (stream, closed, dropped) = (self.stream.clone(), self.closed.clone(), self.dropped.clone());
    spawn_js(
      env,
      async move {
        let mut guard = stream.lock().await;
        let notified = closed.1.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let event = match guard.as_mut() {
          Some(s) if !closed.0.load(Ordering::Acquire) => tokio::select! {
            event = s.next() => event,
            _ = notified => None,
          },
          _ => None,
        };
        if let Some(s) = guard.as_ref() {
          dropped.store(s.dropped_frames(), Ordering::Relaxed);
        }
        if event.is_none() {
          guard.take();
        }
        Ok(event)
      },
      |_env, event| {
        let Some(event) = event else { return Ok(None) };
        let data = Arc::try_unwrap(event.data).unwrap_or_else(|shared| (*shared).clone());
        Ok(Some(NativeEncodedFrameEvent {
          data: Buffer::from(data),
          codec: event.codec.name().to_string(),
          keyframe: event.keyframe,
          timestamp_us: event.timestamp_us,
          rtp_timestamp: event.rtp_timestamp,
          rotation: event.rotation,
          metadata: event.metadata.map(NativeFrameMetadata::from),
        }))
      },
    )
  }

  /// Frames lost to a slow reader (the stream then resumed at a keyframe).
  #[napi(getter)]
  pub fn dropped_frames(&self) -> i64 {
    if let Ok(guard) = self.stream.try_lock() {
      if let Some(s) = guard.as_ref() {
        self.dropped.store(s.dropped_frames(), Ordering::Relaxed);
      }
    }
    self.dropped.load(Ordering::Relaxed) as i64
  }

  /// Ends the stream: a pending `next()` resolves with `null`. Idempotent.
  #[napi]
  pub fn close(&self) {
    self.closed.0.store(true, Ordering::Release);
    self.closed.1.notify_waiters();
    if let Ok(mut guard) = self.stream.try_lock() {
      if let Some(s) = guard.as_ref() {
        self.dropped.store(s.dropped_frames(), Ordering::Relaxed);
      }
      guard.take();
    }
  }
}
