//! Receiving video: one `VideoStream` of lkrtc-rtc per JS stream. `next()` resolves with the
//! next decoded frame, handed to JS without a copy when the stream owns it alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use lkrtc_rtc as rtc;
use napi::bindgen_prelude::Result;
use napi::bindgen_prelude::{BigInt, ClassInstance, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio::sync::{Mutex, Notify};

use crate::error::{js_error, spawn_js, JsResultExt};
use crate::room::NativeRemoteVideoTrack;
use crate::video_frame::{VideoBufferType, VideoFrame, VideoRotation};
use crate::video_source::NativeLocalVideoTrack;

/// One received frame.
#[napi(object, object_from_js = false)]
pub struct NativeVideoFrameEvent<'env> {
  pub frame: ClassInstance<'env, VideoFrame>,
  /// Capture time in microseconds.
  pub timestamp_us: i64,
  pub rotation: VideoRotation,
  /// What the publisher attached to the frame; absent when it carried nothing.
  pub metadata: Option<NativeFrameMetadata>,
}

/// A frame's metadata (LiveKit's packet trailer).
#[napi(object, object_from_js = false)]
pub struct NativeFrameMetadata {
  /// Microseconds, as the publisher gave it.
  pub user_timestamp: Option<BigInt>,
  pub frame_id: Option<u32>,
}

impl From<rtc::FrameMetadata> for NativeFrameMetadata {
  fn from(m: rtc::FrameMetadata) -> Self {
    Self {
      user_timestamp: m.user_timestamp.map(BigInt::from),
      frame_id: m.frame_id,
    }
  }
}

struct Closer {
  closed: AtomicBool,
  notify: Notify,
}

/// The decoded frames of one remote video track.
#[napi]
pub struct NativeVideoStream {
  stream: Arc<Mutex<Option<rtc::VideoStream>>>,
  closer: Arc<Closer>,
  dropped: Arc<AtomicU64>,
}

#[napi]
impl NativeVideoStream {
  /// `capacity`: frames kept when the reader falls behind, the oldest dropped (0 = all);
  /// `format`: the frames' type (default I420, as decoded); `width` and `height` (both or
  /// neither): the size wanted, for adaptive stream.
  #[napi(constructor)]
  pub fn new(
    track: &NativeRemoteVideoTrack,
    capacity: u32,
    format: Option<VideoBufferType>,
    width: Option<u32>,
    height: Option<u32>,
  ) -> Result<Self, String> {
    let size = match (width, height) {
      (Some(width), Some(height)) => Some(rtc::VideoStreamOptions::check_size(width, height).js()?),
      (None, None) => None,
      _ => {
        return Err(js_error(
          "ERR_INVALID_ARGUMENT",
          "invalid size: expected both width and height, or neither",
        ))
      }
    };
    let stream = rtc::VideoStream::new(
      &track.inner,
      rtc::VideoStreamOptions {
        capacity: capacity as usize,
        format,
        size,
      },
    );
    Ok(Self::over(stream))
  }

  /// The frames captured on a local track's source from now on, as captured (converted to
  /// `format`); ends when the source is closed.
  #[napi(factory)]
  pub fn from_local(
    track: &NativeLocalVideoTrack,
    capacity: u32,
    format: Option<VideoBufferType>,
  ) -> Result<Self, String> {
    let stream = rtc::VideoStream::from_local(
      &track.inner,
      rtc::VideoStreamOptions {
        capacity: capacity as usize,
        format,
        size: None,
      },
    )
    .js()?;
    Ok(Self::over(stream))
  }

  fn over(stream: rtc::VideoStream) -> Self {
    Self {
      stream: Arc::new(Mutex::new(Some(stream))),
      closer: Arc::new(Closer {
        closed: AtomicBool::new(false),
        notify: Notify::new(),
      }),
      dropped: Arc::new(AtomicU64::new(0)),
    }
  }

  /// The next frame; `null` once the stream has ended (closed, track unsubscribed, room left).
  #[napi(ts_return_type = "Promise<NativeVideoFrameEvent | null>")]
  pub fn next<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<NativeVideoFrameEvent<'env>>>, String> {
    let (stream, closer, dropped) = (self.stream.clone(), self.closer.clone(), self.dropped.clone());
    spawn_js(
      env,
      async move {
        let mut guard = stream.lock().await;
        let notified = closer.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let event = match guard.as_mut() {
          Some(s) if !closer.closed.load(Ordering::Acquire) => tokio::select! {
            event = s.next() => event,
            _ = notified => None,
          },
          _ => None,
        };
        if let Some(s) = guard.as_ref() {
          dropped.store(s.dropped_frames(), Ordering::Relaxed);
        }
        if event.is_none() {
          // Ended or closed: detach from the track now rather than at GC.
          guard.take();
        }
        Ok(event)
      },
      |env, event| {
        let Some(event) = event else { return Ok(None) };
        // The track converts once per format and shares the frame between streams: take it
        // when this stream holds the only reference, copy it otherwise.
        let frame = Arc::try_unwrap(event.frame).unwrap_or_else(|shared| (*shared).clone());
        Ok(Some(NativeVideoFrameEvent {
          frame: VideoFrame::from_owned_js(env, frame)?,
          timestamp_us: event.timestamp_us,
          rotation: event.rotation,
          metadata: event.metadata.map(NativeFrameMetadata::from),
        }))
      },
    )
  }

  /// Frames dropped because the reader was slower than the track.
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
    self.closer.closed.store(true, Ordering::Release);
    self.closer.notify.notify_waiters();
    if let Ok(mut guard) = self.stream.try_lock() {
      if let Some(s) = guard.as_ref() {
        self.dropped.store(s.dropped_frames(), Ordering::Relaxed);
      }
      guard.take();
    }
  }
}
