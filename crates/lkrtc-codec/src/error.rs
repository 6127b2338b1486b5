//! The one error type of lkrtc-codec. Each variant has a stable code (`ERR_...`) that the
//! Node binding exposes as `error.code`.

use crate::VideoCodec;

/// Why an encoder or decoder could not be made or could not code a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
  /// An [`crate::EncoderConfig`] outside what the encoders accept.
  #[error("invalid {codec} encoder config: {reason}")]
  InvalidConfig {
    /// The encoder's codec.
    codec: VideoCodec,
    /// What is wrong, and what was expected.
    reason: String,
  },
  /// A frame that is not I420 of the encoder's size.
  #[error("invalid frame for the {codec} encoder: expected I420 {expected_width}x{expected_height}, got {given_type} {given_width}x{given_height}")]
  InvalidFrame {
    /// The encoder's codec.
    codec: VideoCodec,
    /// The encoder's width.
    expected_width: u32,
    /// The encoder's height.
    expected_height: u32,
    /// The frame's format.
    given_type: lkrtc_video::VideoBufferType,
    /// The frame's width.
    given_width: u32,
    /// The frame's height.
    given_height: u32,
  },
  /// The codec library refused to make an encoder.
  #[error("{codec} encoder init failed: {detail}")]
  EncoderInit {
    /// The encoder's codec.
    codec: VideoCodec,
    /// The library's message.
    detail: String,
  },
  /// The codec library refused to make a decoder.
  #[error("{codec} decoder init failed: {detail}")]
  DecoderInit {
    /// The decoder's codec.
    codec: VideoCodec,
    /// The library's message.
    detail: String,
  },
  /// Encoding a frame failed.
  #[error("{codec} encode failed: {detail}")]
  Encode {
    /// The encoder's codec.
    codec: VideoCodec,
    /// The library's message.
    detail: String,
  },
  /// An encoded frame that is not valid in its codec's bitstream syntax.
  #[error("invalid {codec} frame: {reason}")]
  InvalidBitstream {
    /// The frame's codec.
    codec: VideoCodec,
    /// What is wrong, and what was expected.
    reason: String,
  },
  /// Decoding a frame failed: ask the sender for a keyframe.
  #[error("{codec} decode failed: {detail}")]
  Decode {
    /// The decoder's codec.
    codec: VideoCodec,
    /// The library's message.
    detail: String,
  },
}

impl CodecError {
  /// The stable code of this error, e.g. `ERR_DECODE`.
  pub fn code(&self) -> &'static str {
    match self {
      Self::InvalidConfig { .. } => "ERR_INVALID_CONFIG",
      Self::InvalidFrame { .. } => "ERR_INVALID_FRAME",
      Self::EncoderInit { .. } => "ERR_ENCODER_INIT",
      Self::DecoderInit { .. } => "ERR_DECODER_INIT",
      Self::Encode { .. } => "ERR_ENCODE",
      Self::Decode { .. } => "ERR_DECODE",
      Self::InvalidBitstream { .. } => "ERR_INVALID_BITSTREAM",
    }
  }
}
