//! lkrtc-transport
