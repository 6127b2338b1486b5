//! The one error type of lkrtc-video. Each variant has a stable code (`ERR_...`) that the
//! Node binding exposes as `error.code`.

use crate::VideoBufferType;

/// Why a frame, a format or a conversion was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
  /// A width or height outside 1..=`max`.
  #[error("invalid dimensions: expected positive integers up to {max}, got {width}x{height}")]
  InvalidDimensions {
    /// The width given.
    width: i64,
    /// The height given.
    height: i64,
    /// The largest accepted dimension.
    max: u32,
  },
  /// A number that is not a `VideoBufferType`.
  #[error("invalid buffer type: expected a VideoBufferType (0..=10), got {given}")]
  InvalidBufferType {
    /// The number given.
    given: i64,
  },
  /// A number that is not a `VideoRotation`.
  #[error("invalid rotation: expected a VideoRotation (0..=3), got {given}")]
  InvalidRotation {
    /// The number given.
    given: i64,
  },
  /// Bytes that are not exactly the size the format needs.
  #[error("invalid frame size: a {width}x{height} {buffer_type} frame needs exactly {expected} bytes, got {given}")]
  InvalidFrameSize {
    /// The frame's width.
    width: u32,
    /// The frame's height.
    height: u32,
    /// The frame's format.
    buffer_type: VideoBufferType,
    /// The bytes the frame needs.
    expected: usize,
    /// The bytes given.
    given: usize,
  },
  /// A destination frame of another size than the source.
  #[error("dimension mismatch: expected a {width}x{height} destination frame, got {given_width}x{given_height}")]
  DimensionMismatch {
    /// The source's width.
    width: u32,
    /// The source's height.
    height: u32,
    /// The destination's width.
    given_width: u32,
    /// The destination's height.
    given_height: u32,
  },
  /// A pair of formats with no conversion.
  #[error("unsupported conversion from {from} to {to}")]
  UnsupportedConversion {
    /// The source format.
    from: VideoBufferType,
    /// The target format.
    to: VideoBufferType,
  },
  /// A codec name that is not `vp8`, `h264`, `vp9` or `av1`.
  #[error("unknown codec: expected \"vp8\", \"h264\", \"vp9\" or \"av1\", got {given:?}")]
  UnknownCodec {
    /// The name given.
    given: String,
  },
  /// libyuv refused a conversion it should have made.
  #[error("conversion from {from} to {to} failed in libyuv (code {code})")]
  ConversionFailed {
    /// The source format.
    from: VideoBufferType,
    /// The target format.
    to: VideoBufferType,
    /// libyuv's return code.
    code: i32,
  },
}

impl VideoError {
  /// The stable code of this error, e.g. `ERR_INVALID_FRAME_SIZE`.
  pub fn code(&self) -> &'static str {
    match self {
      Self::InvalidDimensions { .. } => "ERR_INVALID_DIMENSIONS",
      Self::InvalidBufferType { .. } => "ERR_INVALID_BUFFER_TYPE",
      Self::InvalidRotation { .. } => "ERR_INVALID_ROTATION",
      Self::InvalidFrameSize { .. } => "ERR_INVALID_FRAME_SIZE",
      Self::DimensionMismatch { .. } => "ERR_DIMENSION_MISMATCH",
      Self::UnsupportedConversion { .. } => "ERR_UNSUPPORTED_CONVERSION",
      Self::ConversionFailed { .. } => "ERR_CONVERSION_FAILED",
      Self::UnknownCodec { .. } => "ERR_UNKNOWN_CODEC",
    }
  }
}
