//! The Node binding of lkrtc: thin #[napi] wrappers over crates/lkrtc-video and crates/lkrtc-rtc.

mod error;
mod video_frame;
