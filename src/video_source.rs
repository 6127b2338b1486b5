//! `VideoSource` and `LocalVideoTrack` of lkrtc-rtc for the TypeScript facade: a source takes
//! frames synchronously on the JS thread (a size check, one conversion to I420), a track names it.

use lkrtc_rtc as rtc;
use napi::bindgen_prelude::{BigInt, Either, Result, Uint8Array, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::error::{guard, JsResultExt};
use crate::video_frame::{frame_arg, VideoFrame, VideoRotation};

/// Where an application pushes raw frames of one fixed size.
#[napi]
pub struct NativeVideoSource {
  pub(crate) inner: rtc::VideoSource,
}

#[napi]
impl NativeVideoSource {
  #[napi(constructor)]
  pub fn new(width: u32, height: u32, is_screencast: bool) -> Result<Self, String> {
    let inner = rtc::VideoSource::new(width, height, rtc::VideoSourceOptions { is_screencast }).js()?;
    Ok(Self { inner })
  }

  #[napi(getter)]
  pub fn width(&self) -> u32 {
    self.inner.width()
  }

  #[napi(getter)]
  pub fn height(&self) -> u32 {
    self.inner.height()
  }

  #[napi(getter)]
  pub fn is_screencast(&self) -> bool {
    self.inner.is_screencast()
  }

  #[napi(getter)]
  pub fn is_closed(&self) -> bool {
    self.inner.is_closed()
  }

  #[napi(getter)]
  pub fn captured_frames(&self) -> i64 {
    self.inner.captured_frames() as i64
  }

  /// Hands `frame` (any `VideoBufferType`, any size) to every track publishing this source.
  /// `timestampUs == 0` means now. `userTimestamp` (a u64) and `frameId` go with the encoded
  /// frame (the facade checked them). Throws `ERR_CLOSED`.
  #[napi(
    ts_args_type = "frame: VideoFrame, timestampUs: number, rotation: VideoRotation, userTimestamp?: bigint, frameId?: number"
  )]
  pub fn capture_frame(
    &self,
    env: Env,
    frame: Either<&VideoFrame, Unknown>,
    timestamp_us: i64,
    rotation: VideoRotation,
    user_timestamp: Option<BigInt>,
    frame_id: Option<u32>,
  ) -> Result<(), String> {
    let frame = frame_arg(env.raw(), "frame", frame)?;
    let metadata = metadata_arg(user_timestamp, frame_id)?;
    guard(|| {
      frame
        .with_core(&env, |core| {
          self
            .inner
            .capture_frame_with_metadata(core, timestamp_us, rotation, metadata)
        })?
        .js()
    })
  }

  /// Stops accepting frames; tracks publishing this source stop sending.
  #[napi]
  pub fn close(&self) {
    self.inner.close();
  }
}

/// The frame metadata of a capture call: `userTimestamp` (a u64) and `frameId`.
fn metadata_arg(user_timestamp: Option<BigInt>, frame_id: Option<u32>) -> Result<Option<rtc::FrameMetadata>, String> {
  let user_timestamp = match user_timestamp {
    Some(t) => {
      let (negative, value, lossless) = t.get_u64();
      if negative || !lossless {
        return Err(crate::error::js_error(
          "ERR_INVALID_ARGUMENT",
          "invalid userTimestamp: expected an integer from 0 to 2^64-1",
        ));
      }
      Some(value)
    }
    None => None,
  };
  Ok(
    (user_timestamp.is_some() || frame_id.is_some()).then_some(rtc::FrameMetadata {
      user_timestamp,
      frame_id,
    }),
  )
}

/// What `takeFeedback` returns: keyframe requests and the rate target since the last call.
#[napi(object)]
pub struct NativeEncodedFeedback {
  pub keyframe_requested: bool,
  /// Present when the target changed since the last call.
  pub target_bitrate_bps: Option<f64>,
  pub framerate_fps: Option<f64>,
}

/// Where an application pushes pre-encoded VP8, VP9 or H.264 frames.
#[napi]
pub struct NativeEncodedVideoSource {
  pub(crate) inner: rtc::EncodedVideoSource,
}

#[napi]
impl NativeEncodedVideoSource {
  /// `codec`: 'vp8', 'vp9' or 'h264' (the facade checked the name).
  #[napi(constructor)]
  pub fn new(width: u32, height: u32, codec: String) -> Result<Self, String> {
    let codec = rtc::VideoCodec::from_name(&codec).js()?;
    let inner = rtc::EncodedVideoSource::new(width, height, codec).js()?;
    Ok(Self { inner })
  }

  #[napi(getter)]
  pub fn width(&self) -> u32 {
    self.inner.source().width()
  }

  #[napi(getter)]
  pub fn height(&self) -> u32 {
    self.inner.source().height()
  }

  #[napi(getter, ts_return_type = "'vp8' | 'h264' | 'vp9'")]
  pub fn codec(&self) -> &'static str {
    self.inner.codec().name()
  }

  #[napi(getter)]
  pub fn is_closed(&self) -> bool {
    self.inner.source().is_closed()
  }

  #[napi(getter)]
  pub fn captured_frames(&self) -> i64 {
    self.inner.source().captured_frames() as i64
  }

  /// Checks `data` against the codec and queues a copy for every track publishing the source;
  /// false when none does. `keyframe`, `width`/`height` (both or neither): what the caller
  /// says of the frame, checked. `timestampUs == 0` means now.
  #[napi]
  #[allow(clippy::too_many_arguments)]
  pub fn capture_frame(
    &self,
    data: Uint8Array,
    keyframe: Option<bool>,
    width: Option<u32>,
    height: Option<u32>,
    timestamp_us: i64,
    rotation: VideoRotation,
    user_timestamp: Option<BigInt>,
    frame_id: Option<u32>,
  ) -> Result<bool, String> {
    let metadata = metadata_arg(user_timestamp, frame_id)?;
    let size = width.zip(height);
    guard(|| {
      self
        .inner
        .capture_frame(&rtc::EncodedFrameInput {
          data: &data,
          keyframe,
          size,
          timestamp_us,
          rotation,
          metadata,
        })
        .js()
    })
  }

  #[napi]
  pub fn take_feedback(&self) -> NativeEncodedFeedback {
    let f = self.inner.take_feedback();
    NativeEncodedFeedback {
      keyframe_requested: f.keyframe_requested,
      target_bitrate_bps: f.rate_control.map(|r| r.target_bitrate_bps as f64),
      framerate_fps: f.rate_control.map(|r| r.framerate_fps),
    }
  }

  /// Stops accepting frames; tracks publishing this source stop sending.
  #[napi]
  pub fn close(&self) {
    self.inner.close();
  }
}

/// A video track over a source, ready to publish.
#[napi]
pub struct NativeLocalVideoTrack {
  pub(crate) inner: rtc::LocalVideoTrack,
}

#[napi]
impl NativeLocalVideoTrack {
  #[napi(factory)]
  pub fn create_video_track(name: String, source: &NativeVideoSource) -> Self {
    Self {
      inner: rtc::LocalVideoTrack::create_video_track(&name, &source.inner),
    }
  }

  /// A track over a source of pre-encoded frames.
  #[napi(factory)]
  pub fn create_encoded_video_track(name: String, source: &NativeEncodedVideoSource) -> Self {
    Self {
      inner: rtc::LocalVideoTrack::create_video_track(&name, source.inner.source()),
    }
  }

  #[napi(getter)]
  pub fn name(&self) -> String {
    self.inner.name()
  }

  /// The server's track sid once published.
  #[napi(getter)]
  pub fn sid(&self) -> Option<String> {
    self.inner.sid()
  }

  /// Mutes (true) or unmutes (false) the track.
  #[napi]
  pub fn set_muted(&self, muted: bool) {
    if muted {
      self.inner.mute()
    } else {
      self.inner.unmute()
    }
  }

  #[napi(getter)]
  pub fn muted(&self) -> bool {
    self.inner.is_muted()
  }
}
