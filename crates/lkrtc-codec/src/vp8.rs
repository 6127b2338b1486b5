//! VP8 through libvpx, with libwebrtc's real-time settings: one pass CBR, no lookahead, no frame
//! drops, error resilient, keyframes only on request, speed and threads chosen by frame size.
//! Also the libvpx pieces VP9 shares: the bindings, error messages, the encoder's frame loop
//! ([`VpxEncoder`]: VP8 and VP9 differ only in their settings) and the decoder.

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint, c_ulong};
use std::ptr;

use lkrtc_video::VideoFrame;

use crate::i420::{copy_to_frame, SrcPlane};
use crate::speed::SpeedGovernor;
use crate::{
  check_config, check_frame, clamp_fps, CodecError, EncodedFrame, EncoderConfig, VideoCodec, VideoDecoder, VideoEncoder,
};

#[allow(dead_code, non_camel_case_types, non_snake_case, non_upper_case_globals, clippy::all)]
pub(crate) mod sys {
  include!(concat!(env!("OUT_DIR"), "/vpx_sys.rs"));
}

/// RTP's video clock; pts and durations are in its ticks, as libwebrtc does.
pub(crate) const TIMEBASE_HZ: i64 = 90_000;

/// libvpx's message for an error code, with the context's detail when there is one.
pub(crate) fn vpx_error(ctx: Option<&sys::vpx_codec_ctx_t>, err: sys::vpx_codec_err_t) -> String {
  // SAFETY: vpx_codec_err_to_string returns a pointer to a static, NUL-terminated string for any
  // value (unknown codes give "Unrecognized error code").
  let mut msg = unsafe { CStr::from_ptr(sys::vpx_codec_err_to_string(err)) }
    .to_string_lossy()
    .into_owned();
  if let Some(ctx) = ctx {
    if !ctx.err_detail.is_null() {
      // SAFETY: err_detail, when set, points to a NUL-terminated string owned by the context,
      // valid until the next call on it; it is copied out at once.
      let detail = unsafe { CStr::from_ptr(ctx.err_detail) }.to_string_lossy();
      msg = format!("{msg}: {detail}");
    }
  }
  msg
}

/// libvpx's cpu-used for a frame size: negative values are real-time speeds, lower is slower
/// and better. libwebrtc uses -6 on x86; larger frames go faster to keep the frame time down.
fn cpu_speed(width: u32, height: u32) -> c_int {
  let pixels = u64::from(width) * u64::from(height);
  if pixels < 352 * 288 {
    -4
  } else if pixels < 1280 * 720 {
    -6
  } else if pixels < 1920 * 1080 {
    -7
  } else {
    -8
  }
}

/// The fastest real-time VP8 speed the encoder may move to when its frames take too long
/// (libwebrtc uses -12 on slow ARM devices).
const VP8_FASTEST: c_int = 12;

/// libvpx threads for VP8, as libwebrtc chooses them: a second thread only from qHD up and with
/// at least 3 cores. libvpx's VP8 row threads wait for each other by spinning, so on a machine
/// with few cores (or busy ones) extra threads burn CPU for nothing: publishing 720p30 on a busy
/// 2-core machine took 64% of a core and dropped frames with 2 threads, 37% and none with one.
fn vp8_threads(width: u32, height: u32, cores: usize) -> c_uint {
  let pixels = u64::from(width) * u64::from(height);
  if pixels >= 1920 * 1080 && cores > 8 {
    8
  } else if pixels > 1280 * 960 && cores >= 6 {
    3
  } else if pixels > 640 * 480 && cores >= 3 {
    2
  } else {
    1
  }
}

/// The largest keyframe as a percentage of the per-frame bandwidth (libwebrtc's MaxIntraTarget
/// with a 600 ms optimal buffer), so a keyframe does not flood the link.
pub(crate) fn max_intra_pct(fps: f64) -> c_uint {
  ((600.0 * 0.5 * fps / 10.0) as c_uint).max(300)
}

/// A libvpx encoder (VP8 or VP9): the codecs' constructors choose the settings, everything from
/// there on is shared.
pub(crate) struct VpxEncoder {
  codec: VideoCodec,
  config: EncoderConfig,
  // Boxed: libvpx keeps pointers into the context and its config, so neither may move.
  ctx: Box<sys::vpx_codec_ctx_t>,
  cfg: Box<sys::vpx_codec_enc_cfg_t>,
  fps: f64,
  last_pts: Option<i64>,
  first: bool,
  /// The speed (`VP8E_SET_CPUUSED`, as a magnitude) following the encode time, and the sign
  /// the codec wants it with (VP8's real-time speeds are negative).
  speed: Option<(SpeedGovernor, c_int)>,
}

// SAFETY: the encoder context is only used through &mut self, never shared; libvpx contexts
// may move between threads as long as calls on one context do not overlap.
unsafe impl Send for VpxEncoder {}

/// The error of a failed encoder set-up for `codec`.
fn init_error(codec: VideoCodec) -> impl Fn(String) -> CodecError {
  move |detail| CodecError::EncoderInit { codec, detail }
}

impl VpxEncoder {
  /// libvpx's default configuration of the encoder `iface`, for the caller to adjust.
  pub(crate) fn default_config(
    codec: VideoCodec,
    iface: *const sys::vpx_codec_iface_t,
  ) -> Result<Box<sys::vpx_codec_enc_cfg_t>, CodecError> {
    // SAFETY: vpx_codec_enc_cfg_t is a plain C struct; all-zero is a valid value that
    // vpx_codec_enc_config_default overwrites.
    let mut cfg: Box<sys::vpx_codec_enc_cfg_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: `iface` is one of libvpx's static encoder interfaces; cfg is a valid, writable config.
    let err = unsafe { sys::vpx_codec_enc_config_default(iface, &mut *cfg, 0) };
    if err != sys::VPX_CODEC_OK {
      return Err(init_error(codec)(vpx_error(None, err)));
    }
    Ok(cfg)
  }

  /// Opens the encoder `iface` with `cfg`, then applies `controls` (id, value).
  pub(crate) fn open(
    codec: VideoCodec,
    iface: *const sys::vpx_codec_iface_t,
    config: &EncoderConfig,
    cfg: Box<sys::vpx_codec_enc_cfg_t>,
    controls: &[(c_int, c_int)],
  ) -> Result<Self, CodecError> {
    // SAFETY: vpx_codec_ctx_t is a plain C struct; libvpx expects it zeroed before init.
    let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: ctx and cfg are valid and boxed (stable addresses for the encoder's life); the ABI
    // version is the one the bindings were generated from.
    let err = unsafe { sys::vpx_codec_enc_init_ver(&mut *ctx, iface, &*cfg, 0, sys::VPX_ENCODER_ABI_VERSION as c_int) };
    if err != sys::VPX_CODEC_OK {
      return Err(init_error(codec)(vpx_error(Some(&ctx), err)));
    }
    let mut encoder = Self {
      codec,
      config: *config,
      ctx,
      cfg,
      fps: clamp_fps(config.max_framerate),
      last_pts: None,
      first: true,
      speed: None,
    };
    for &(id, value) in controls {
      encoder.control(id, value).map_err(init_error(codec))?;
    }
    Ok(encoder)
  }

  /// Lets the speed follow the encode time (with `adaptive_speed`), from `base` (as set) up to
  /// `fastest`; `sign` is the sign of the codec's speed values.
  pub(crate) fn adapt_speed(mut self, base: c_int, fastest: c_int, sign: c_int) -> Self {
    if self.config.adaptive_speed {
      self.speed = Some((SpeedGovernor::new(base, fastest), sign));
    }
    self
  }

  /// A VP8 encoder with libwebrtc's real-time settings.
  pub(crate) fn vp8(config: &EncoderConfig) -> Result<Self, CodecError> {
    check_config(VideoCodec::Vp8, config)?;
    // SAFETY: returns a pointer to libvpx's static VP8 encoder interface.
    let iface = unsafe { sys::vpx_codec_vp8_cx() };
    let mut cfg = Self::default_config(VideoCodec::Vp8, iface)?;
    let fps = clamp_fps(config.max_framerate);
    cfg.g_w = config.width;
    cfg.g_h = config.height;
    cfg.g_timebase = sys::vpx_rational {
      num: 1,
      den: TIMEBASE_HZ as c_int,
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cfg.g_threads = vp8_threads(config.width, config.height, cores);
    cfg.g_lag_in_frames = 0;
    cfg.g_pass = sys::VPX_RC_ONE_PASS;
    cfg.g_error_resilient = sys::VPX_ERROR_RESILIENT_DEFAULT;
    cfg.rc_end_usage = sys::VPX_CBR;
    cfg.rc_target_bitrate = (config.bitrate_bps / 1000).max(1);
    cfg.rc_dropframe_thresh = 0;
    cfg.rc_resize_allowed = 0;
    cfg.rc_min_quantizer = 2;
    cfg.rc_max_quantizer = 56;
    cfg.rc_undershoot_pct = 100;
    cfg.rc_overshoot_pct = 15;
    cfg.rc_buf_initial_sz = 500;
    cfg.rc_buf_optimal_sz = 600;
    cfg.rc_buf_sz = 1000;
    // Keyframes on request only; the receiver asks with a PLI when it needs one.
    cfg.kf_mode = sys::VPX_KF_DISABLED;

    let controls: [(c_int, c_int); 6] = [
      (sys::VP8E_SET_CPUUSED as c_int, cpu_speed(config.width, config.height)),
      (sys::VP8E_SET_NOISE_SENSITIVITY as c_int, 0),
      (sys::VP8E_SET_STATIC_THRESHOLD as c_int, 1),
      (
        sys::VP8E_SET_TOKEN_PARTITIONS as c_int,
        sys::VP8_ONE_TOKENPARTITION as c_int,
      ),
      (
        sys::VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int,
        max_intra_pct(fps) as c_int,
      ),
      (
        sys::VP8E_SET_SCREEN_CONTENT_MODE as c_int,
        c_int::from(config.screen_content),
      ),
    ];
    let base = -cpu_speed(config.width, config.height);
    Ok(Self::open(VideoCodec::Vp8, iface, config, cfg, &controls)?.adapt_speed(base, VP8_FASTEST, -1))
  }

  fn control(&mut self, id: c_int, value: c_int) -> Result<(), String> {
    // SAFETY: the context is initialised; every control used here takes one int (unsigned int
    // for the intra percentage, which has the same size and calling convention).
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
}

impl Drop for VpxEncoder {
  fn drop(&mut self) {
    // SAFETY: the context was initialised in new() and is destroyed once, here.
    unsafe { sys::vpx_codec_destroy(&mut *self.ctx) };
  }
}

impl VideoEncoder for VpxEncoder {
  fn codec(&self) -> VideoCodec {
    self.codec
  }

  fn encode(
    &mut self,
    frame: &VideoFrame<&[u8]>,
    timestamp_us: i64,
    force_keyframe: bool,
  ) -> Result<Option<EncodedFrame>, CodecError> {
    check_frame(self.codec, &self.config, frame)?;
    let codec = self.codec;
    let encode_err = |detail: String| CodecError::Encode { codec, detail };

    // Describe the caller's tight planes to libvpx without copying them.
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

    let pts = crate::next_pts(&mut self.last_pts, timestamp_us);
    let duration = (TIMEBASE_HZ as f64 / self.fps).round().max(1.0) as c_ulong;
    let flags: sys::vpx_enc_frame_flags_t = if force_keyframe || self.first {
      sys::VPX_EFLAG_FORCE_KF as sys::vpx_enc_frame_flags_t
    } else {
      0
    };
    let started = std::time::Instant::now();
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
    let interval_ms = 1000.0 / self.fps;
    let change = self.speed.as_mut().and_then(|(g, sign)| {
      g.record(started.elapsed().as_secs_f64() * 1000.0, interval_ms)
        .map(|s| s * *sign)
    });
    if let Some(value) = change {
      // A refused speed keeps the previous one; the frame is encoded either way.
      let _ = self.control(sys::VP8E_SET_CPUUSED as c_int, value);
    }

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
    // The frame duration given with each frame carries the rate; only the intra cap depends on it.
    let _ = self.control(
      sys::VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int,
      max_intra_pct(self.fps) as c_int,
    );
  }
}

/// A libvpx decoder: VP8, or VP9 profile 0. VP9 follows a change of frame size on any frame
/// (spatial layers switched by the server, or a resized encoder), as libvpx scales references.
pub(crate) struct VpxDecoder {
  ctx: Box<sys::vpx_codec_ctx_t>,
  codec: VideoCodec,
}

// SAFETY: as for the encoder: the context is used only through &mut self.
unsafe impl Send for VpxDecoder {}

impl VpxDecoder {
  pub(crate) fn new(codec: VideoCodec) -> Result<Self, CodecError> {
    // SAFETY: plain C structs; zeroed is the expected initial state.
    let mut ctx: Box<sys::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
    // SAFETY: as above; w/h 0 means "take the size from the stream".
    let mut cfg: sys::vpx_codec_dec_cfg_t = unsafe { std::mem::zeroed() };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cfg.threads = cores.min(4) as c_uint;
    // SAFETY: the interfaces are libvpx's static decoders.
    let iface = unsafe {
      match codec {
        VideoCodec::Vp8 => sys::vpx_codec_vp8_dx(),
        VideoCodec::Vp9 => sys::vpx_codec_vp9_dx(),
        VideoCodec::H264 | VideoCodec::Av1 => {
          return Err(CodecError::DecoderInit {
            codec,
            detail: "libvpx decodes VP8 and VP9 only".into(),
          })
        }
      }
    };
    // SAFETY: ctx is zeroed and boxed; iface is a static libvpx decoder interface.
    let err = unsafe { sys::vpx_codec_dec_init_ver(&mut *ctx, iface, &cfg, 0, sys::VPX_DECODER_ABI_VERSION as c_int) };
    if err != sys::VPX_CODEC_OK {
      return Err(CodecError::DecoderInit {
        codec,
        detail: vpx_error(Some(&ctx), err),
      });
    }
    Ok(Self { ctx, codec })
  }
}

impl Drop for VpxDecoder {
  fn drop(&mut self) {
    // SAFETY: initialised in new(), destroyed once here.
    unsafe { sys::vpx_codec_destroy(&mut *self.ctx) };
  }
}

impl VideoDecoder for VpxDecoder {
  fn codec(&self) -> VideoCodec {
    self.codec
  }

  fn decode(&mut self, data: &[u8]) -> Result<Option<VideoFrame>, CodecError> {
    let codec = self.codec;
    let decode_err = |detail: String| CodecError::Decode { codec, detail };
    // Empty input would mean "flush" to libvpx, not a frame.
    if data.is_empty() {
      return Err(decode_err("empty frame".into()));
    }
    let len = c_uint::try_from(data.len()).map_err(|_| decode_err(format!("frame too large: {} bytes", data.len())))?;
    // SAFETY: the context is initialised; data is valid for len bytes during the call.
    let err = unsafe { sys::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0) };
    if err != sys::VPX_CODEC_OK {
      return Err(decode_err(vpx_error(Some(&self.ctx), err)));
    }

    // VP8 only: in the decoder fuzz tests VP9 also flagged the keyframe that follows a damaged
    // keyframe, so a recovered stream would be refused for good. libwebrtc does not ask VP9
    // either; VP9 fails the decode call itself on the damage it detects.
    let mut corrupted: c_int = 0;
    let err = if self.codec == VideoCodec::Vp8 {
      // SAFETY: VP8D_GET_FRAME_CORRUPTED takes an int* and writes the flag of the last frame.
      unsafe { sys::vpx_codec_control_(&mut *self.ctx, sys::VP8D_GET_FRAME_CORRUPTED as c_int, &mut corrupted) }
    } else {
      sys::VPX_CODEC_OK
    };
    if err == sys::VPX_CODEC_OK && corrupted != 0 {
      return Err(decode_err(
        "frame decoded with errors (reference missing or data corrupt)".into(),
      ));
    }

    let mut frame = None;
    let mut iter: sys::vpx_codec_iter_t = ptr::null();
    loop {
      // SAFETY: the context is initialised; iter is libvpx's iteration state.
      let img = unsafe { sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
      if img.is_null() {
        break;
      }
      // SAFETY: libvpx returned a valid image, alive until the next decode call.
      let img = unsafe { &*img };
      frame = Some(image_to_frame(img).map_err(decode_err)?);
    }
    Ok(frame)
  }
}

/// Copies a decoded libvpx image into a tight I420 frame.
fn image_to_frame(img: &sys::vpx_image_t) -> Result<VideoFrame, String> {
  if img.fmt != sys::VPX_IMG_FMT_I420 {
    // VP9 profiles 1-3 (4:4:4, 10/12-bit) decode to other formats; lkrtc offers profile 0 only.
    return Err(format!("unsupported image format {} (only 8-bit 4:2:0)", img.fmt));
  }
  let (w, h) = (img.d_w, img.d_h);
  if w == 0 || h == 0 || w > lkrtc_video::MAX_DIMENSION || h > lkrtc_video::MAX_DIMENSION {
    return Err(format!("unexpected image size {w}x{h}"));
  }
  let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
  let dims = [(w as usize, h as usize), (cw, ch), (cw, ch)];
  let mut planes: Vec<SrcPlane<'_>> = Vec::with_capacity(3);
  for (i, &(pw, ph)) in dims.iter().enumerate() {
    let stride = img.stride[i];
    if img.planes[i].is_null() || stride < pw as c_int {
      return Err(format!("plane {i} missing or stride {stride} below width {pw}"));
    }
    let stride = stride as usize;
    let len = stride * (ph - 1) + pw;
    // SAFETY: libvpx's plane i holds ph rows of `stride` bytes (the last row at least pw), owned
    // by the decoder and valid until the next decode call; the slice does not outlive this fn.
    let data = unsafe { std::slice::from_raw_parts(img.planes[i] as *const u8, len) };
    planes.push(SrcPlane { data, stride });
  }
  let [y, u, v]: [SrcPlane<'_>; 3] = planes.try_into().map_err(|_| "plane count".to_string())?;
  copy_to_frame(w, h, [y, u, v])
}

#[cfg(test)]
mod thread_tests {
  use super::vp8_threads;

  #[test]
  fn vp8_uses_one_thread_unless_frames_are_large_and_cores_plenty() {
    assert_eq!(vp8_threads(1280, 720, 2), 1);
    assert_eq!(vp8_threads(1920, 1080, 2), 1);
    assert_eq!(vp8_threads(640, 480, 16), 1);
    assert_eq!(vp8_threads(1280, 720, 4), 2);
    assert_eq!(vp8_threads(1920, 1080, 6), 3);
    assert_eq!(vp8_threads(1920, 1080, 16), 8);
  }
}
