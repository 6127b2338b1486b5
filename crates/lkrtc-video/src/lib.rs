#![doc = include_str!("../README.md")]

mod buffer_type;
mod codec;
mod convert;
mod error;
pub mod pool;
mod scale;
mod video_frame;

pub use buffer_type::{FrameLayout, PlaneLayout, VideoBufferType, VideoRotation};
pub use codec::VideoCodec;
pub use convert::{convert, convert_into};
pub use error::VideoError;
pub use scale::{scale_i420, scale_i420_into};
pub use video_frame::{check_dimensions, VideoFrame, MAX_DIMENSION};
