//! Video frames in LiveKit's eleven pixel formats, zero-copy plane access, and conversions
//! between the formats with libyuv.

mod buffer_type;
mod convert;
mod error;
mod video_frame;

pub use buffer_type::{FrameLayout, PlaneLayout, VideoBufferType, VideoRotation};
pub use convert::{convert, convert_into};
pub use error::VideoError;
pub use video_frame::{check_dimensions, VideoFrame, MAX_DIMENSION};
