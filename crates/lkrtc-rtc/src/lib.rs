//! lkrtc-rtc
