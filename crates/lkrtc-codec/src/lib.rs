//! Real-time video encoders and decoders for lkrtc: VP8 and VP9 (libvpx, linked statically),
//! H.264 Constrained Baseline (openh264, built from source) and AV1 (libaom, linked statically). Encoders take I420 frames of the configured
//! size; decoders take one complete encoded frame and give back a tightly packed I420 frame.

mod av1;
pub mod bitstream;
mod error;
mod h264;
mod i420;
mod speed;
mod vp8;
mod vp9;

pub use error::CodecError;
pub use lkrtc_video::{VideoBufferType, VideoCodec, VideoFrame};

/// What an encoder is created with. The frame size is fixed for the encoder's life: to change
/// it, create a new encoder (its first frame is a keyframe).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderConfig {
  /// Frame width in pixels.
  pub width: u32,
  /// Frame height in pixels.
  pub height: u32,
  /// Target bitrate (constant bitrate rate control).
  pub bitrate_bps: u32,
  /// The frame rate the rate control plans for.
  pub max_framerate: f64,
  /// Screen content (text, UI, slides): the codecs' screen-content modes (VP8's screen content
  /// mode, VP9's screen tuning, openh264's screen usage), which keep edges and text sharp.
  pub screen_content: bool,
  /// Let the encoder's speed follow its measured encode time: faster settings (less quality
  /// per bit) while frames take over 60% of the frame interval, back when under 25%. For live
  /// sources on busy machines; off for reproducible output.
  pub adaptive_speed: bool,
}

/// One encoded frame. VP8, VP9: one frame as their RTP payload formats carry it. H.264: an
/// Annex-B byte stream (NAL units each after a `00 00 00 01` start code); every IDR frame
/// carries its SPS and PPS first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
  /// The encoded bytes.
  pub data: Vec<u8>,
  /// True for a frame that decodes without any before it.
  pub keyframe: bool,
  /// The timestamp the frame was encoded with, in microseconds.
  pub timestamp_us: i64,
}

/// A real-time encoder. Not `Sync`: use one from one thread at a time.
pub trait VideoEncoder: Send {
  /// The codec this encoder produces.
  fn codec(&self) -> VideoCodec;
  /// `frame` must be I420 of the configured size. The first frame and forced frames are
  /// keyframes; no other keyframes are made. `None` when the encoder produced no output.
  fn encode(
    &mut self,
    frame: &VideoFrame<&[u8]>,
    timestamp_us: i64,
    force_keyframe: bool,
  ) -> Result<Option<EncodedFrame>, CodecError>;
  /// New target bitrate, from the next frame on.
  fn set_bitrate(&mut self, bitrate_bps: u32);
  /// New frame rate for the rate control, from the next frame on.
  fn set_framerate(&mut self, fps: f64);
}

/// A decoder. After any `Err`, ask the sender for a keyframe (PLI): later delta frames may
/// show errors until one arrives.
pub trait VideoDecoder: Send {
  /// The codec this decoder reads.
  fn codec(&self) -> VideoCodec;
  /// One complete encoded frame in; an I420 frame out when one is ready.
  fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, CodecError>;
}

/// An encoder for `codec` with `config`.
pub fn new_encoder(codec: VideoCodec, config: &EncoderConfig) -> Result<Box<dyn VideoEncoder>, CodecError> {
  Ok(match codec {
    VideoCodec::Vp8 => Box::new(vp8::VpxEncoder::vp8(config)?),
    VideoCodec::H264 => Box::new(h264::H264Encoder::new(config)?),
    VideoCodec::Vp9 => Box::new(vp9::new_encoder(config)?),
    VideoCodec::Av1 => Box::new(av1::Av1Encoder::new(config)?),
  })
}

/// The library that encodes and decodes `codec` here, as WebRTC's statistics name it
/// (`encoderImplementation`, `decoderImplementation`).
pub fn library_name(codec: VideoCodec) -> &'static str {
  match codec {
    VideoCodec::Vp8 | VideoCodec::Vp9 => "libvpx",
    VideoCodec::H264 => "openh264",
    VideoCodec::Av1 => "libaom",
  }
}

/// The size of the pictures `codec`'s encoder sends for `width` x `height` frames: H.264 drops
/// an odd last column and row (4:2:0 H.264 codes even sizes only); the others send the frame.
pub fn coded_size(codec: VideoCodec, width: u32, height: u32) -> (u32, u32) {
  match codec {
    VideoCodec::H264 => h264::coded_size(width, height),
    VideoCodec::Vp8 | VideoCodec::Vp9 | VideoCodec::Av1 => (width, height),
  }
}

/// A decoder for `codec`.
pub fn new_decoder(codec: VideoCodec) -> Result<Box<dyn VideoDecoder>, CodecError> {
  Ok(match codec {
    VideoCodec::Vp8 | VideoCodec::Vp9 => Box::new(vp8::VpxDecoder::new(codec)?),
    VideoCodec::H264 => Box::new(h264::H264Decoder::new()?),
    VideoCodec::Av1 => Box::new(av1::Av1Decoder::new()?),
  })
}

/// Threads for encoding a `width` x `height` stream: more for larger frames, never more than
/// the machine has cores (so small streams leave cores to the others).
fn encoder_threads(width: u32, height: u32) -> usize {
  let pixels = u64::from(width) * u64::from(height);
  let wanted = if pixels >= 1920 * 1080 {
    4
  } else if pixels >= 1280 * 720 {
    3
  } else if pixels >= 640 * 480 {
    2
  } else {
    1
  };
  let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
  wanted.min(cores).max(1)
}

/// Checks the parts of `config` all encoders share.
fn check_config(codec: VideoCodec, config: &EncoderConfig) -> Result<(), CodecError> {
  let bad = |reason: String| Err(CodecError::InvalidConfig { codec, reason });
  if config.width == 0
    || config.height == 0
    || config.width > lkrtc_video::MAX_DIMENSION
    || config.height > lkrtc_video::MAX_DIMENSION
  {
    return bad(format!(
      "width and height must be 1..={}, got {}x{}",
      lkrtc_video::MAX_DIMENSION,
      config.width,
      config.height
    ));
  }
  if config.bitrate_bps < 1000 {
    return bad(format!("bitrate_bps must be at least 1000, got {}", config.bitrate_bps));
  }
  if !(config.max_framerate.is_finite() && config.max_framerate >= 1.0 && config.max_framerate <= 240.0) {
    return bad(format!("max_framerate must be 1..=240, got {}", config.max_framerate));
  }
  Ok(())
}

/// Checks that `frame` is I420 of the configured size.
fn check_frame(codec: VideoCodec, config: &EncoderConfig, frame: &VideoFrame<&[u8]>) -> Result<(), CodecError> {
  if frame.buffer_type() != VideoBufferType::I420 || frame.width() != config.width || frame.height() != config.height {
    return Err(CodecError::InvalidFrame {
      codec,
      expected_width: config.width,
      expected_height: config.height,
      given_type: frame.buffer_type(),
      given_width: frame.width(),
      given_height: frame.height(),
    });
  }
  Ok(())
}

/// A frame's pts in 90 kHz ticks, strictly increasing after `last` (libvpx's and libaom's rate
/// control need that); `last` becomes it.
fn next_pts(last: &mut Option<i64>, timestamp_us: i64) -> i64 {
  let mut pts = timestamp_us.saturating_mul(9) / 100;
  if let Some(prev) = *last {
    if pts <= prev {
      pts = prev + 1;
    }
  }
  *last = Some(pts);
  pts
}

/// Clamps a frame rate to what the rate control accepts.
fn clamp_fps(fps: f64) -> f64 {
  if fps.is_finite() {
    fps.clamp(1.0, 240.0)
  } else {
    30.0
  }
}

#[cfg(test)]
mod tests;
