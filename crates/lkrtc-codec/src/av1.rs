//! AV1 main profile, 8-bit 4:2:0, decoded through libaom (Debian's libaom-dev, linked
//! statically). libaom follows a change of frame size on any frame, as a server switching the
//! spatial layers of an SVC stream produces.

use std::ffi::CStr;
use std::os::raw::{c_int, c_uint};
use std::ptr;

use lkrtc_video::VideoFrame;

use crate::i420::{copy_to_frame, SrcPlane};
use crate::{CodecError, VideoCodec, VideoDecoder};

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
