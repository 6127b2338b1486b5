// napi registers exported items only outside `cfg(test)`, where they would look unused.
#![cfg_attr(test, allow(dead_code))]
//! The Node binding of lkrtc: thin #[napi] wrappers over crates/lkrtc-video and crates/lkrtc-rtc.
//! The TypeScript facade in lib/ builds the public API on top.

mod encoded_stream;
mod error;
mod js_memory;
mod log;
mod room;
mod token;
mod video_frame;
mod video_source;
mod video_stream;
