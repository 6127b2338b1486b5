//! VP9 profile 0 through libvpx, with libwebrtc's real-time settings for one spatial and one
//! temporal layer: one pass CBR, no lookahead, no frame drops, cyclic-refresh adaptive
//! quantization, row multithreading, keyframes only on request, speed chosen by frame size.

use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use lkrtc_video::VideoFrame;

use crate::vp8::{max_intra_pct, sys, vpx_error, TIMEBASE_HZ};
use crate::{check_config, check_frame, clamp_fps, CodecError, EncodedFrame, EncoderConfig, VideoCodec, VideoEncoder};

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

pub(crate) struct Vp9Encoder {
  config: EncoderConfig,
  // Boxed: libvpx keeps pointers into the context and its config, so neither may move.
  ctx: Box<sys::vpx_codec_ctx_t>,
  cfg: Box<sys::vpx_codec_enc_cfg_t>,
  fps: f64,
  last_pts: Option<i64>,
  first: bool,
}

// SAFETY: the encoder context is only used through &mut self, never shared; libvpx contexts
// may move between threads as long as calls on one context do not overlap.
unsafe impl Send for Vp9Encoder {}

impl Vp9Encoder {
  pub(crate) fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
    check_config(VideoCodec::Vp9, config)?;
    let init_err = |detail: String| CodecError::EncoderInit {
      codec: VideoCodec::Vp9,
      detail,
    };

    // SAFETY: vpx_codec_enc_cfg_t is a plain C struct; all-zero is a valid value that
    // vpx_codec_enc_config_default overwrites.
    let mut cfg: Box<sys::vpx_codec_enc_cfg_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: the interface pointer is libvpx's static VP9 encoder; cfg is a valid, writable config.
    let err = unsafe { sys::vpx_codec_enc_config_default(sys::vpx_codec_vp9_cx(), &mut *cfg, 0) };
    if err != sys::VPX_CODEC_OK {
      return Err(init_err(vpx_error(None, err)));
    }

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

    // SAFETY: vpx_codec_ctx_t is a plain C struct; libvpx expects it zeroed before init.
    let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: ctx and cfg are valid and boxed (stable addresses for the encoder's life); the ABI
    // version is the one the bindings were generated from.
    let err = unsafe {
      sys::vpx_codec_enc_init_ver(
        &mut *ctx,
        sys::vpx_codec_vp9_cx(),
        &*cfg,
        0,
        sys::VPX_ENCODER_ABI_VERSION as c_int,
      )
    };
    if err != sys::VPX_CODEC_OK {
      return Err(init_err(vpx_error(Some(&ctx), err)));
    }
    let mut encoder = Self {
      config: *config,
      ctx,
      cfg,
      fps,
      last_pts: None,
      first: true,
    };

    // Tile columns as log2: one per thread, so row-mt threads have columns to share.
    let tile_columns = c_uint::BITS - threads.max(1).leading_zeros() - 1;
    let controls: [(c_int, c_int); 8] = [
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
    ];
    for (id, value) in controls {
      encoder.control(id, value).map_err(init_err)?;
    }
    Ok(encoder)
  }

  fn control(&mut self, id: c_int, value: c_int) -> Result<(), String> {
    // SAFETY: the context is initialised; every control used here takes one int (unsigned int
    // for some, which has the same size and calling convention).
    let err = unsafe { sys::vpx_codec_control_(&mut *self.ctx, id, value) };
    if err != sys::VPX_CODEC_OK {
      return Err(format!("control {id} = {value}: {}", vpx_error(Some(&self.ctx), err)));
    }
    Ok(())
  }

  /// Continues the stream at another size without a keyframe (VP9 predicts from scaled
  /// references): what a decoder sees when a server switches spatial layers.
  #[cfg(test)]
  pub(crate) fn resize_without_keyframe(&mut self, width: u32, height: u32) -> Result<(), String> {
    self.cfg.g_w = width;
    self.cfg.g_h = height;
    // SAFETY: the context is initialised and cfg is a valid config for it.
    let err = unsafe { sys::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
    if err != sys::VPX_CODEC_OK {
      return Err(vpx_error(Some(&self.ctx), err));
    }
    self.config.width = width;
    self.config.height = height;
    Ok(())
  }

  /// pts in 90 kHz ticks, strictly increasing as libvpx's rate control needs.
  fn pts(&mut self, timestamp_us: i64) -> i64 {
    let mut pts = timestamp_us.saturating_mul(9) / 100;
    if let Some(last) = self.last_pts {
      if pts <= last {
        pts = last + 1;
      }
    }
    self.last_pts = Some(pts);
    pts
  }
}

impl Drop for Vp9Encoder {
  fn drop(&mut self) {
    // SAFETY: the context was initialised in new() and is destroyed once, here.
    unsafe { sys::vpx_codec_destroy(&mut *self.ctx) };
  }
}

impl VideoEncoder for Vp9Encoder {
  fn codec(&self) -> VideoCodec {
    VideoCodec::Vp9
  }

  fn encode(
    &mut self,
    frame: &VideoFrame<&[u8]>,
    timestamp_us: i64,
    force_keyframe: bool,
  ) -> Result<Option<EncodedFrame>, CodecError> {
    check_frame(VideoCodec::Vp9, &self.config, frame)?;
    let encode_err = |detail: String| CodecError::Encode {
      codec: VideoCodec::Vp9,
      detail,
    };

    // SAFETY: vpx_image_t is a plain C struct; all-zero is valid before vpx_img_wrap fills it.
    let mut img: sys::vpx_image_t = unsafe { std::mem::zeroed() };
    let data = frame.data();
    // SAFETY: img is writable; data holds a full I420 frame of g_w x g_h (checked above). libvpx
    // only reads the source image, so casting away const is sound.
    let wrapped = unsafe {
      sys::vpx_img_wrap(
        &mut img,
        sys::VPX_IMG_FMT_I420,
        self.config.width,
        self.config.height,
        1,
        data.as_ptr() as *mut u8,
      )
    };
    if wrapped.is_null() {
      return Err(encode_err("vpx_img_wrap failed".into()));
    }
    // vpx_img_wrap rounds odd chroma widths down; use the frame's real (rounded up) layout.
    let layout = frame.layout();
    for (i, p) in layout.planes().iter().enumerate().take(3) {
      img.planes[i] = data[p.offset..].as_ptr() as *mut u8;
      img.stride[i] = p.stride as c_int;
    }

    let pts = self.pts(timestamp_us);
    let duration = (TIMEBASE_HZ as f64 / self.fps).round().max(1.0) as c_ulong;
    let flags: sys::vpx_enc_frame_flags_t = if force_keyframe || self.first {
      sys::VPX_EFLAG_FORCE_KF as sys::vpx_enc_frame_flags_t
    } else {
      0
    };
    // SAFETY: the context is initialised; img points into `data`, which outlives this call, and
    // with no lookahead (lag 0) libvpx copies the frame before returning.
    let err = unsafe {
      sys::vpx_codec_encode(
        &mut *self.ctx,
        &img,
        pts,
        duration,
        flags,
        sys::VPX_DL_REALTIME as c_ulong,
      )
    };
    if err != sys::VPX_CODEC_OK {
      return Err(encode_err(vpx_error(Some(&self.ctx), err)));
    }
    self.first = false;

    let mut out: Option<EncodedFrame> = None;
    let mut iter: sys::vpx_codec_iter_t = ptr::null();
    loop {
      // SAFETY: the context is initialised; iter is the iteration state libvpx expects.
      let pkt = unsafe { sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
      if pkt.is_null() {
        break;
      }
      // SAFETY: libvpx returned a valid packet that lives until the next call on the context.
      let pkt = unsafe { &*pkt };
      if pkt.kind != sys::VPX_CODEC_CX_FRAME_PKT {
        continue;
      }
      // SAFETY: for VPX_CODEC_CX_FRAME_PKT the `frame` member of the union is the active one.
      let f = unsafe { &pkt.data.frame };
      if f.buf.is_null() {
        continue;
      }
      // SAFETY: buf points to sz bytes owned by the context, valid until the next call on it.
      let bytes = unsafe { std::slice::from_raw_parts(f.buf as *const u8, f.sz) };
      let keyframe = f.flags & sys::VPX_FRAME_IS_KEY != 0;
      match &mut out {
        Some(o) => {
          o.data.extend_from_slice(bytes);
          o.keyframe |= keyframe;
        }
        None => {
          out = Some(EncodedFrame {
            data: bytes.to_vec(),
            keyframe,
            timestamp_us,
          })
        }
      }
    }
    Ok(out)
  }

  fn set_bitrate(&mut self, bitrate_bps: u32) {
    let kbps = (bitrate_bps / 1000).max(1);
    if kbps == self.cfg.rc_target_bitrate {
      return;
    }
    self.cfg.rc_target_bitrate = kbps;
    self.config.bitrate_bps = bitrate_bps;
    // SAFETY: the context is initialised and cfg is a valid config for it. A failure leaves the
    // previous rate in force, which is the best this infallible setter can do.
    unsafe { sys::vpx_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
  }

  fn set_framerate(&mut self, fps: f64) {
    self.fps = clamp_fps(fps);
    let _ = self.control(
      sys::VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int,
      max_intra_pct(self.fps) as c_int,
    );
  }
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
