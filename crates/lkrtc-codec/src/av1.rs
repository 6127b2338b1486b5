//! AV1 main profile, 8-bit 4:2:0, encoded and decoded through libaom (Debian's libaom-dev,
//! linked statically). The encoder uses libaom's real-time mode with libwebrtc's settings for
//! one layer; the decoder follows a change of frame size on any frame, as a server switching
//! the spatial layers of an SVC stream produces.

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint};
use std::ptr;

use lkrtc_video::VideoFrame;

use crate::i420::{copy_to_frame, SrcPlane};
use crate::speed::SpeedGovernor;
use crate::{
  check_config, check_frame, clamp_fps, CodecError, EncodedFrame, EncoderConfig, VideoCodec, VideoDecoder, VideoEncoder,
};

#[allow(dead_code, non_camel_case_types, non_snake_case, non_upper_case_globals, clippy::all)]
pub(crate) mod sys {
  include!(concat!(env!("OUT_DIR"), "/aom_sys.rs"));
}

/// libaom's message for an error code, with the context's detail when there is one.
fn aom_error(ctx: Option<&sys::aom_codec_ctx_t>, err: sys::aom_codec_err_t) -> String {
  // SAFETY: aom_codec_err_to_string returns a static, NUL-terminated string for any value.
  let mut msg = unsafe { CStr::from_ptr(sys::aom_codec_err_to_string(err)) }
    .to_string_lossy()
    .into_owned();
  if let Some(ctx) = ctx {
    if !ctx.err_detail.is_null() {
      // SAFETY: err_detail, when set, is a NUL-terminated string owned by the context, valid
      // until the next call on it; copied out at once.
      let detail = unsafe { CStr::from_ptr(ctx.err_detail) }.to_string_lossy();
      msg = format!("{msg}: {detail}");
    }
  }
  msg
}

pub(crate) struct Av1Decoder {
  ctx: Box<sys::aom_codec_ctx_t>,
}

// SAFETY: the context is used only through &mut self, never shared; libaom contexts may move
// between threads as long as calls on one do not overlap.
unsafe impl Send for Av1Decoder {}

impl Av1Decoder {
  pub(crate) fn new() -> Result<Self, CodecError> {
    // SAFETY: plain C structs; zeroed is the expected initial state.
    let mut ctx: Box<sys::aom_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: as above; w/h 0: the size comes from the stream.
    let mut cfg: sys::aom_codec_dec_cfg_t = unsafe { std::mem::zeroed() };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cfg.threads = cores.min(4) as c_uint;
    cfg.allow_lowbitdepth = 1;
    // SAFETY: ctx is zeroed and boxed; the interface is libaom's static AV1 decoder.
    let err = unsafe {
      sys::aom_codec_dec_init_ver(
        &mut *ctx,
        sys::aom_codec_av1_dx(),
        &cfg,
        0,
        sys::AOM_DECODER_ABI_VERSION as c_int,
      )
    };
    if err != sys::AOM_CODEC_OK {
      return Err(CodecError::DecoderInit {
        codec: VideoCodec::Av1,
        detail: aom_error(Some(&ctx), err),
      });
    }
    Ok(Self { ctx })
  }
}

impl Drop for Av1Decoder {
  fn drop(&mut self) {
    // SAFETY: initialised in new(), destroyed once here.
    unsafe { sys::aom_codec_destroy(&mut *self.ctx) };
  }
}

impl VideoDecoder for Av1Decoder {
  fn codec(&self) -> VideoCodec {
    VideoCodec::Av1
  }

  fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, CodecError> {
    let decode_err = |detail: String| CodecError::Decode {
      codec: VideoCodec::Av1,
      detail,
    };
    // Empty input would mean "flush" to libaom, not a frame.
    if data.is_empty() {
      return Err(decode_err("empty frame".into()));
    }
    // SAFETY: the context is initialised; data is valid for its length during the call.
    let err = unsafe { sys::aom_codec_decode(&mut *self.ctx, data.as_ptr(), data.len(), ptr::null_mut()) };
    if err != sys::AOM_CODEC_OK {
      return Err(decode_err(aom_error(Some(&self.ctx), err)));
    }
    let mut frame = None;
    let mut iter: sys::aom_codec_iter_t = ptr::null();
    loop {
      // SAFETY: the context is initialised; iter is libaom's iteration state.
      let img = unsafe { sys::aom_codec_get_frame(&mut *self.ctx, &mut iter) };
      if img.is_null() {
        break;
      }
      // SAFETY: libaom returned a valid image, alive until the next decode call.
      let img = unsafe { &*img };
      frame = Some(image_to_frame(img).map_err(decode_err)?);
    }
    Ok(frame)
  }
}

/// Copies a decoded libaom image into a tight I420 frame. 8-bit pictures may come in 16-bit
/// samples (libaom built for high bit depth); their low bytes are the picture.
fn image_to_frame(img: &sys::aom_image_t) -> Result<VideoFrame, String> {
  let high = img.fmt == sys::AOM_IMG_FMT_I42016;
  if img.fmt != sys::AOM_IMG_FMT_I420 && !high {
    return Err(format!("unsupported image format {:#x} (only 4:2:0)", img.fmt));
  }
  if img.bit_depth != 8 {
    return Err(format!("unsupported bit depth {} (only 8-bit)", img.bit_depth));
  }
  let (w, h) = (img.d_w, img.d_h);
  if w == 0 || h == 0 || w > lkrtc_video::MAX_DIMENSION || h > lkrtc_video::MAX_DIMENSION {
    return Err(format!("unexpected image size {w}x{h}"));
  }
  let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
  let dims = [(w as usize, h as usize), (cw, ch), (cw, ch)];
  let sample = if high { 2 } else { 1 };
  let mut narrowed: Vec<Vec<u8>> = Vec::new();
  let mut raw: Vec<(&[u8], usize)> = Vec::with_capacity(3);
  for (i, &(pw, ph)) in dims.iter().enumerate() {
    let stride = img.stride[i];
    if img.planes[i].is_null() || stride < (pw * sample) as c_int {
      return Err(format!("plane {i} missing or stride {stride} below width {pw}"));
    }
    let stride = stride as usize;
    let len = stride * (ph - 1) + pw * sample;
    // SAFETY: libaom's plane i holds ph rows of `stride` bytes (the last at least pw samples),
    // owned by the decoder and valid until the next decode call; not kept beyond this fn.
    let data = unsafe { std::slice::from_raw_parts(img.planes[i] as *const u8, len) };
    raw.push((data, stride));
  }
  if high {
    for (i, &(data, stride)) in raw.iter().enumerate() {
      let (pw, ph) = dims[i];
      let mut plane = Vec::with_capacity(pw * ph);
      for y in 0..ph {
        let row = &data[y * stride..y * stride + pw * 2];
        plane.extend(row.chunks_exact(2).map(|s| s[0]));
      }
      narrowed.push(plane);
    }
    let [y, u, v] = [0, 1, 2].map(|i| SrcPlane {
      data: &narrowed[i],
      stride: dims[i].0,
    });
    return copy_to_frame(w, h, [y, u, v]);
  }
  let [y, u, v] = [0, 1, 2].map(|i| SrcPlane {
    data: raw[i].0,
    stride: raw[i].1,
  });
  copy_to_frame(w, h, [y, u, v])
}

/// RTP's video clock: timestamps are given to libaom in 90 kHz ticks.
const TIMEBASE_HZ: i64 = 90_000;

/// libaom's real-time speed for a frame size, as libwebrtc picks it: 6 for small pictures (best
/// quality, cheap at that size), then faster with size. Measured here (libaom 3.6, 2 cores):
/// 640x360 takes ~23 ms a frame at speed 6 and ~9 at 7; 1280x720 ~16 ms at 7 and ~13 at 8.
fn cpu_speed(width: u32, height: u32) -> c_int {
  let pixels = u64::from(width) * u64::from(height);
  if pixels <= 352 * 288 {
    6
  } else if pixels <= 640 * 480 {
    7
  } else if pixels <= 1280 * 720 {
    8
  } else {
    9
  }
}

/// An AV1 encoder: one pass CBR, no lookahead, keyframes on request only, cyclic-refresh
/// adaptive quantization, row multithreading; the tools libwebrtc turns off for real time off.
pub(crate) struct Av1Encoder {
  ctx: Box<sys::aom_codec_ctx_t>,
  cfg: Box<sys::aom_codec_enc_cfg_t>,
  config: EncoderConfig,
  fps: f64,
  last_pts: Option<i64>,
  first: bool,
  /// The speed (`AOME_SET_CPUUSED`) following the encode time, with `adaptive_speed`.
  speed: Option<SpeedGovernor>,
}

/// libaom's fastest real-time speed.
const AV1_FASTEST: c_int = 10;

// SAFETY: as for the decoder: one context, used through &mut self only.
unsafe impl Send for Av1Encoder {}

impl Av1Encoder {
  pub(crate) fn new(config: &EncoderConfig) -> Result<Self, CodecError> {
    let codec = VideoCodec::Av1;
    check_config(codec, config)?;
    let init_err = |detail: String| CodecError::EncoderInit { codec, detail };
    // SAFETY: returns a pointer to libaom's static AV1 encoder interface.
    let iface = unsafe { sys::aom_codec_av1_cx() };
    // SAFETY: a plain C struct, filled in by aom_codec_enc_config_default.
    let mut cfg: Box<sys::aom_codec_enc_cfg_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: iface is valid; cfg is writable.
    let err = unsafe { sys::aom_codec_enc_config_default(iface, &mut *cfg, sys::AOM_USAGE_REALTIME) };
    if err != sys::AOM_CODEC_OK {
      return Err(init_err(aom_error(None, err)));
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = crate::encoder_threads(config.width, config.height).min(cores) as c_uint;
    cfg.g_usage = sys::AOM_USAGE_REALTIME;
    cfg.g_w = config.width;
    cfg.g_h = config.height;
    cfg.g_timebase = sys::aom_rational {
      num: 1,
      den: TIMEBASE_HZ as c_int,
    };
    cfg.g_threads = threads;
    cfg.g_lag_in_frames = 0;
    cfg.g_pass = sys::AOM_RC_ONE_PASS;
    cfg.g_error_resilient = 0;
    cfg.g_input_bit_depth = 8;
    cfg.rc_end_usage = sys::AOM_CBR;
    cfg.rc_target_bitrate = (config.bitrate_bps / 1000).max(1);
    cfg.rc_dropframe_thresh = 0;
    cfg.rc_resize_mode = 0;
    cfg.rc_superres_mode = 0;
    cfg.rc_min_quantizer = 10;
    cfg.rc_max_quantizer = 56;
    cfg.rc_undershoot_pct = 50;
    cfg.rc_overshoot_pct = 50;
    cfg.rc_buf_initial_sz = 600;
    cfg.rc_buf_optimal_sz = 600;
    cfg.rc_buf_sz = 1000;
    // Keyframes on request only; the receiver asks with a PLI when it needs one.
    cfg.kf_mode = sys::AOM_KF_DISABLED;
    // SAFETY: plain C struct; zeroed before init.
    let mut ctx: Box<sys::aom_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: ctx is zeroed and boxed, cfg valid for this interface.
    let err = unsafe { sys::aom_codec_enc_init_ver(&mut *ctx, iface, &*cfg, 0, sys::AOM_ENCODER_ABI_VERSION as c_int) };
    if err != sys::AOM_CODEC_OK {
      return Err(init_err(aom_error(Some(&ctx), err)));
    }
    let mut encoder = Self {
      ctx,
      cfg,
      config: *config,
      fps: clamp_fps(config.max_framerate),
      last_pts: None,
      first: true,
      speed: config
        .adaptive_speed
        .then(|| SpeedGovernor::new(cpu_speed(config.width, config.height), AV1_FASTEST)),
    };
    let tile_columns = c_uint::BITS - threads.max(1).leading_zeros() - 1;
    let screen = c_int::from(config.screen_content);
    let controls: [(u32, c_int); 19] = [
      (sys::AOME_SET_CPUUSED, cpu_speed(config.width, config.height)),
      (sys::AV1E_SET_ENABLE_CDEF, 1),
      (sys::AV1E_SET_ENABLE_TPL_MODEL, 0),
      (sys::AV1E_SET_DELTAQ_MODE, 0),
      (sys::AV1E_SET_ENABLE_ORDER_HINT, 0),
      // Cyclic refresh, as libwebrtc's real-time mode.
      (sys::AV1E_SET_AQ_MODE, 3),
      (sys::AOME_SET_MAX_INTRA_BITRATE_PCT, 300),
      (sys::AV1E_SET_COEFF_COST_UPD_FREQ, 3),
      (sys::AV1E_SET_MODE_COST_UPD_FREQ, 3),
      (sys::AV1E_SET_MV_COST_UPD_FREQ, 3),
      (sys::AV1E_SET_ROW_MT, 1),
      (sys::AV1E_SET_TILE_COLUMNS, tile_columns as c_int),
      (sys::AV1E_SET_ENABLE_GLOBAL_MOTION, 0),
      (sys::AV1E_SET_ENABLE_WARPED_MOTION, 0),
      (sys::AV1E_SET_ENABLE_OBMC, 0),
      (sys::AV1E_SET_NOISE_SENSITIVITY, 0),
      (sys::AV1E_SET_ENABLE_SMOOTH_INTERINTRA, 0),
      // AOM_CONTENT_SCREEN (1) or AOM_CONTENT_DEFAULT (0); palettes help text and UI.
      (sys::AV1E_SET_TUNE_CONTENT, screen),
      (sys::AV1E_SET_ENABLE_PALETTE, screen),
    ];
    for (id, value) in controls {
      encoder.control(id, value).map_err(init_err)?;
    }
    Ok(encoder)
  }

  fn control(&mut self, id: u32, value: c_int) -> Result<(), String> {
    // SAFETY: the context is initialised; every control used here takes one int.
    let err = unsafe { sys::aom_codec_control(&mut *self.ctx, id as c_int, value) };
    if err != sys::AOM_CODEC_OK {
      return Err(format!("control {id} = {value}: {}", aom_error(Some(&self.ctx), err)));
    }
    Ok(())
  }
}

impl Drop for Av1Encoder {
  fn drop(&mut self) {
    // SAFETY: initialised in new(), destroyed once here.
    unsafe { sys::aom_codec_destroy(&mut *self.ctx) };
  }
}

impl VideoEncoder for Av1Encoder {
  fn codec(&self) -> VideoCodec {
    VideoCodec::Av1
  }

  fn encode(
    &mut self,
    frame: &VideoFrame<&[u8]>,
    timestamp_us: i64,
    force_keyframe: bool,
  ) -> Result<Option<EncodedFrame>, CodecError> {
    let codec = VideoCodec::Av1;
    check_frame(codec, &self.config, frame)?;
    let encode_err = |detail: String| CodecError::Encode { codec, detail };
    // SAFETY: a plain C struct; aom_img_wrap fills it.
    let mut img: sys::aom_image_t = unsafe { std::mem::zeroed() };
    let data = frame.data();
    // SAFETY: img is writable; data holds a full I420 frame of the configured size (checked);
    // libaom only reads the source image.
    let wrapped = unsafe {
      sys::aom_img_wrap(
        &mut img,
        sys::AOM_IMG_FMT_I420,
        self.config.width,
        self.config.height,
        1,
        data.as_ptr() as *mut u8,
      )
    };
    if wrapped.is_null() {
      return Err(encode_err("aom_img_wrap failed".into()));
    }
    // Odd sizes: the frame's own plane layout (chroma rounded up).
    let layout = frame.layout();
    for (i, p) in layout.planes().iter().enumerate().take(3) {
      img.planes[i] = data[p.offset..].as_ptr() as *mut u8;
      img.stride[i] = p.stride as c_int;
    }
    let pts = crate::next_pts(&mut self.last_pts, timestamp_us);
    let duration = (TIMEBASE_HZ as f64 / self.fps).round().max(1.0) as std::os::raw::c_ulong;
    let flags = if force_keyframe || self.first {
      sys::AOM_EFLAG_FORCE_KF as sys::aom_enc_frame_flags_t
    } else {
      0
    };
    let started = std::time::Instant::now();
    // SAFETY: the context is initialised; img points into `data`, which outlives the call; with
    // no lookahead libaom is done with the picture when it returns.
    let err = unsafe { sys::aom_codec_encode(&mut *self.ctx, &img, pts, duration, flags) };
    if err != sys::AOM_CODEC_OK {
      return Err(encode_err(aom_error(Some(&self.ctx), err)));
    }
    self.first = false;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let interval_ms = 1000.0 / self.fps;
    if let Some(speed) = self.speed.as_mut().and_then(|g| g.record(elapsed_ms, interval_ms)) {
      // A refused speed keeps the previous one; the frame is encoded either way.
      let _ = self.control(sys::AOME_SET_CPUUSED, speed);
    }
    let mut out: Option<EncodedFrame> = None;
    let mut iter: sys::aom_codec_iter_t = ptr::null();
    loop {
      // SAFETY: the context is initialised; iter is libaom's iteration state.
      let pkt = unsafe { sys::aom_codec_get_cx_data(&mut *self.ctx, &mut iter) };
      if pkt.is_null() {
        break;
      }
      // SAFETY: a valid packet, alive until the next call on the context.
      let pkt = unsafe { &*pkt };
      if pkt.kind != sys::AOM_CODEC_CX_FRAME_PKT {
        continue;
      }
      // SAFETY: for AOM_CODEC_CX_FRAME_PKT the `frame` member of the union is the active one.
      let f = unsafe { &pkt.data.frame };
      if f.buf.is_null() || f.sz == 0 {
        continue;
      }
      // SAFETY: buf points to sz bytes owned by the context until the next call on it.
      let bytes = unsafe { std::slice::from_raw_parts(f.buf as *const u8, f.sz) };
      let keyframe = f.flags & sys::AOM_FRAME_IS_KEY != 0;
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
    // SAFETY: the context is initialised and cfg valid for it; on failure the previous rate
    // stays in force.
    unsafe { sys::aom_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
  }

  fn set_framerate(&mut self, fps: f64) {
    // The frame duration given with each frame carries the rate.
    self.fps = clamp_fps(fps);
  }
}
