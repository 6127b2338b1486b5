//! The one error type of lkrtc-codec. Each variant has a stable code (`ERR_...`) that the
//! Node binding exposes as `error.code`.

use crate::VideoCodec;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
  #[error("unknown codec: expected \"vp8\" or \"h264\", got {given:?}")]
  UnknownCodec { given: String },
  #[error("invalid {codec} encoder config: {reason}")]
  InvalidConfig { codec: VideoCodec, reason: String },
  #[error("invalid frame for the {codec} encoder: expected I420 {expected_width}x{expected_height}, got {given_type} {given_width}x{given_height}")]
  InvalidFrame {
    codec: VideoCodec,
    expected_width: u32,
    expected_height: u32,
    given_type: lkrtc_video::VideoBufferType,
    given_width: u32,
    given_height: u32,
  },
  #[error("{codec} encoder init failed: {detail}")]
  EncoderInit { codec: VideoCodec, detail: String },
  #[error("{codec} decoder init failed: {detail}")]
  DecoderInit { codec: VideoCodec, detail: String },
  #[error("{codec} encode failed: {detail}")]
  Encode { codec: VideoCodec, detail: String },
  #[error("{codec} decode failed: {detail}")]
  Decode { codec: VideoCodec, detail: String },
}

impl CodecError {
  /// The stable code of this error, e.g. `ERR_DECODE`.
  pub fn code(&self) -> &'static str {
    match self {
      Self::UnknownCodec { .. } => "ERR_UNKNOWN_CODEC",
      Self::InvalidConfig { .. } => "ERR_INVALID_CONFIG",
      Self::InvalidFrame { .. } => "ERR_INVALID_FRAME",
      Self::EncoderInit { .. } => "ERR_ENCODER_INIT",
      Self::DecoderInit { .. } => "ERR_DECODER_INIT",
      Self::Encode { .. } => "ERR_ENCODE",
      Self::Decode { .. } => "ERR_DECODE",
    }
  }
}
