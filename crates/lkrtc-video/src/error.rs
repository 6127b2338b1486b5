//! The one error type of lkrtc-video. Each variant has a stable code (`ERR_...`) that the
//! Node binding exposes as `error.code`.

use crate::VideoBufferType;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
  #[error("invalid dimensions: expected positive integers up to {max}, got {width}x{height}")]
  InvalidDimensions { width: i64, height: i64, max: u32 },
  #[error("invalid buffer type: expected a VideoBufferType (0..=10), got {given}")]
  InvalidBufferType { given: i64 },
  #[error("invalid rotation: expected a VideoRotation (0..=3), got {given}")]
  InvalidRotation { given: i64 },
  #[error("invalid frame size: a {width}x{height} {buffer_type} frame needs exactly {expected} bytes, got {given}")]
  InvalidFrameSize {
    width: u32,
    height: u32,
    buffer_type: VideoBufferType,
    expected: usize,
    given: usize,
  },
  #[error("dimension mismatch: expected a {width}x{height} destination frame, got {given_width}x{given_height}")]
  DimensionMismatch {
    width: u32,
    height: u32,
    given_width: u32,
    given_height: u32,
  },
  #[error("unsupported conversion from {from} to {to}")]
  UnsupportedConversion { from: VideoBufferType, to: VideoBufferType },
  #[error("conversion from {from} to {to} failed in libyuv (code {code})")]
  ConversionFailed {
    from: VideoBufferType,
    to: VideoBufferType,
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
    }
  }
}
