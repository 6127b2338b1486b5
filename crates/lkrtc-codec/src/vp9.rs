//! VP9 profile 0 through libvpx, with libwebrtc's real-time settings for one spatial and one
//! temporal layer: one pass CBR, no lookahead, no frame drops, cyclic-refresh adaptive
//! quantization, row multithreading, keyframes only on request, speed chosen by frame size.

use std::os::raw::{c_int, c_uint};

use crate::vp8::{max_intra_pct, sys, VpxEncoder, TIMEBASE_HZ};
use crate::{check_config, clamp_fps, CodecError, EncoderConfig, VideoCodec};

/// libvpx's VP9 real-time speed for a frame size (libwebrtc: 5 to 9, faster for larger frames),
/// so a 2-core machine keeps 720p30 well under a frame time.
fn cpu_speed(width: u32, height: u32) -> c_int {
  let pixels = u64::from(width) * u64::from(height);
  if pixels <= 352 * 288 {
    6
  } else if pixels <= 640 * 480 {
    7
  } else {
    8
  }
}

/// libvpx threads for VP9, as libwebrtc chooses them: a second from 360p with more than 2
/// cores, four from 720p with more than 4; VP9's row threads share each frame's tiles.
fn vp9_threads(width: u32, height: u32, cores: usize) -> c_uint {
  let pixels = u64::from(width) * u64::from(height);
  if pixels >= 1280 * 720 && cores > 4 {
    4
  } else if pixels >= 640 * 360 && cores > 2 {
    2
  } else {
    1
  }
}

/// A VP9 encoder (on the shared libvpx frame loop) with libwebrtc's real-time settings.
pub(crate) fn new_encoder(config: &EncoderConfig) -> Result<VpxEncoder, CodecError> {
  check_config(VideoCodec::Vp9, config)?;
  // SAFETY: returns a pointer to libvpx's static VP9 encoder interface.
  let iface = unsafe { sys::vpx_codec_vp9_cx() };
  let mut cfg = VpxEncoder::default_config(VideoCodec::Vp9, iface)?;
  let fps = clamp_fps(config.max_framerate);
  let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
  let threads = vp9_threads(config.width, config.height, cores);
  cfg.g_w = config.width;
  cfg.g_h = config.height;
  cfg.g_profile = 0;
  cfg.g_timebase = sys::vpx_rational {
    num: 1,
    den: TIMEBASE_HZ as c_int,
  };
  cfg.g_threads = threads;
  cfg.g_lag_in_frames = 0;
  cfg.g_pass = sys::VPX_RC_ONE_PASS;
  // One layer: every frame refers to the previous, so resilience buys nothing (libwebrtc sets
  // it for SVC only).
  cfg.g_error_resilient = 0;
  cfg.rc_end_usage = sys::VPX_CBR;
  cfg.rc_target_bitrate = (config.bitrate_bps / 1000).max(1);
  cfg.rc_dropframe_thresh = 0;
  cfg.rc_resize_allowed = 0;
  cfg.rc_min_quantizer = 2;
  cfg.rc_max_quantizer = 52;
  cfg.rc_undershoot_pct = 50;
  cfg.rc_overshoot_pct = 50;
  cfg.rc_buf_initial_sz = 500;
  cfg.rc_buf_optimal_sz = 600;
  cfg.rc_buf_sz = 1000;
  // Keyframes on request only; the receiver asks with a PLI when it needs one.
  cfg.kf_mode = sys::VPX_KF_DISABLED;

  // Tile columns as log2: one per thread, so row-mt threads have columns to share.
  let tile_columns = c_uint::BITS - threads.max(1).leading_zeros() - 1;
  let controls: [(c_int, c_int); 9] = [
    (sys::VP8E_SET_CPUUSED as c_int, cpu_speed(config.width, config.height)),
    // Cyclic refresh: refreshes a share of blocks each frame, as libwebrtc's real-time mode.
    (sys::VP9E_SET_AQ_MODE as c_int, 3),
    (sys::VP9E_SET_ROW_MT as c_int, 1),
    (sys::VP9E_SET_TILE_COLUMNS as c_int, tile_columns as c_int),
    (sys::VP9E_SET_FRAME_PARALLEL_DECODING as c_int, 0),
    (sys::VP9E_SET_NOISE_SENSITIVITY as c_int, 0),
    (
      sys::VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int,
      max_intra_pct(fps) as c_int,
    ),
    (sys::VP8E_SET_STATIC_THRESHOLD as c_int, 1),
    // VP9E_CONTENT_SCREEN (1) or VP9E_CONTENT_DEFAULT (0).
    (sys::VP9E_SET_TUNE_CONTENT as c_int, c_int::from(config.screen_content)),
  ];
  let base = cpu_speed(config.width, config.height);
  // libvpx's VP9 real-time speeds go to 9.
  Ok(VpxEncoder::open(VideoCodec::Vp9, iface, config, cfg, &controls)?.adapt_speed(base, 9, 1))
}

#[cfg(test)]
mod settings_tests {
  use super::{cpu_speed, vp9_threads};

  #[test]
  fn vp9_threads_follow_frame_size_and_cores() {
    assert_eq!(vp9_threads(1280, 720, 2), 1);
    assert_eq!(vp9_threads(640, 360, 4), 2);
    assert_eq!(vp9_threads(1280, 720, 8), 4);
    assert_eq!(vp9_threads(320, 240, 16), 1);
  }

  #[test]
  fn larger_frames_use_faster_speeds() {
    assert_eq!(cpu_speed(320, 240), 6);
    assert_eq!(cpu_speed(640, 480), 7);
    assert_eq!(cpu_speed(1280, 720), 8);
  }
}
