//! lkrtc-codec
