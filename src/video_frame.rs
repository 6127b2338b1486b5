//! `VideoFrame` for JavaScript (`VideoBufferType` and `VideoRotation` are lkrtc-video's). The
//! frame keeps a reference to one `Uint8Array` over its bytes; `data` returns that view and
//! `getPlane` makes views into the same memory, so nothing is copied. Logic lives in
//! crates/lkrtc-video; the raw napi calls on JS memory in `js_memory`.

use lkrtc_video as core;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

pub use lkrtc_video::{VideoBufferType, VideoRotation};

use crate::error::{invalid_arg_type, js_error, JsResult, JsResultExt};
use crate::js_memory::{
  hold_view, new_buffer, number, optional_bool_property, type_name, typed_array_info, uint8_array_from_vec, uint8_view,
  uint8_view_over, value_type, ViewInfo, ViewRef,
};

/// Where one plane lies in `VideoFrame.data`.
#[napi(object)]
pub struct VideoPlane {
  /// Byte offset of the plane's first row from the start of `data`.
  pub offset: u32,
  /// Bytes per row.
  pub stride: u32,
  /// Number of rows.
  pub rows: u32,
  /// Bytes in the plane (`stride * rows`).
  pub length: u32,
}

/// Options of `VideoFrame.convert`.
#[napi(object)]
pub struct ConvertOptions {
  /// Flip the picture upside down (the first row becomes the last). Default `false`.
  pub flip_y: Option<bool>,
}

/// A video frame: dimensions, a pixel format and its bytes.
///
/// `data` is a view of the frame's memory, not a copy: writes through it (or through a view
/// from `getPlane`) are seen by `convert` and by anything that reads the frame later. A frame made
/// by `convert` owns memory allocated by lkrtc and handed to JavaScript without a copy; it is freed
/// when the last view of it is garbage collected.
#[napi]
pub struct VideoFrame {
  width: u32,
  height: u32,
  buffer_type: core::VideoBufferType,
  view: ViewRef,
}

#[napi]
impl VideoFrame {
  /// Wraps `data` (any `Uint8Array`, `Buffer` or `ArrayBuffer`, a view at any `byteOffset`), which
  /// must hold exactly the bytes of a `width` x `height` frame of `type`. The bytes are not copied.
  ///
  /// Throws an `Error` with `code`:
  /// - `ERR_INVALID_DIMENSIONS`: width or height is not an integer in 1..=16384;
  /// - `ERR_INVALID_BUFFER_TYPE`: `type` is not a `VideoBufferType`;
  /// - `ERR_INVALID_FRAME_SIZE`: `data` is not exactly the size the format needs;
  /// - `ERR_INVALID_ARG_TYPE`: an argument has the wrong JavaScript type.
  #[napi(
    constructor,
    ts_args_type = "width: number, height: number, type: VideoBufferType, data: Uint8Array | Uint8ClampedArray | Buffer | ArrayBuffer"
  )]
  pub fn new(
    env: Env,
    this: This,
    width: Unknown,
    height: Unknown,
    buffer_type: Unknown,
    data: Unknown,
  ) -> Result<Self, String> {
    let env = env.raw();
    let w = dimension(env, "width", width.raw())?;
    let h = dimension(env, "height", height.raw())?;
    let (width, height) = core::check_dimensions(w, h).js()?;
    let buffer_type = parse_buffer_type(env, buffer_type.raw())?;
    let view = uint8_view(env, data.raw())?;
    let given = typed_array_info(env, view)?.len;
    let expected = buffer_type.layout(width, height).size;
    if given != expected {
      return Err(core::VideoError::InvalidFrameSize {
        width,
        height,
        buffer_type,
        expected,
        given,
      })
      .js();
    }
    hold_view(env, this.raw(), view)?;
    Ok(Self {
      width,
      height,
      buffer_type,
      view: ViewRef::new(env, view)?,
    })
  }

  /// Width in pixels.
  #[napi(getter)]
  pub fn width(&self) -> u32 {
    self.width
  }

  /// Height in pixels.
  #[napi(getter)]
  pub fn height(&self) -> u32 {
    self.height
  }

  /// The pixel format.
  #[napi(getter, js_name = "type")]
  pub fn buffer_type(&self) -> VideoBufferType {
    self.buffer_type
  }

  /// All the bytes, as a view of the frame's memory (the same `Uint8Array` every time).
  #[napi(getter, ts_return_type = "Uint8Array")]
  pub fn data<'env>(&self, env: &'env Env) -> Result<Unknown<'env>, String> {
    let value = self.view.value(env.raw())?;
    // SAFETY: `value` was just read from a live reference in this env.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) })
  }

  /// The planes in order (Y, U, V, A for I420A; Y, UV for NV12; one plane for packed formats):
  /// offset into `data`, stride in bytes, rows and length. I010 strides count bytes (2 per sample).
  #[napi(getter)]
  pub fn planes(&self) -> Vec<VideoPlane> {
    self
      .buffer_type
      .layout(self.width, self.height)
      .planes()
      .iter()
      .map(|p| VideoPlane {
        offset: p.offset as u32,
        stride: p.stride as u32,
        rows: p.rows as u32,
        length: p.len as u32,
      })
      .collect()
  }

  /// A `Uint8Array` view (no copy) of plane `index` (see `planes`), or `undefined` past the last
  /// plane. Its length is the plane's `stride * rows`.
  #[napi(ts_args_type = "index: number", ts_return_type = "Uint8Array | undefined")]
  pub fn get_plane<'env>(&self, env: &'env Env, index: Unknown) -> Result<Either<Unknown<'env>, ()>, String> {
    let env = env.raw();
    let layout = self.buffer_type.layout(self.width, self.height);
    let Some(plane) = layout.planes().get(plane_index(env, index.raw())?) else {
      return Ok(Either::B(()));
    };
    let info = self.current_info(env)?;
    // The range lies inside the view, whose size `current_info` checked.
    let out = uint8_view_over(env, info.arraybuffer, info.byte_offset + plane.offset, plane.len)?;
    // SAFETY: `out` was just created in this env.
    Ok(Either::A(unsafe { Unknown::from_raw_unchecked(env, out) }))
  }

  /// Bytes per row of plane `index`, or `undefined` past the last plane.
  #[napi(ts_args_type = "index: number", ts_return_type = "number | undefined")]
  pub fn get_stride(&self, env: Env, index: Unknown) -> Result<Either<u32, ()>, String> {
    let layout = self.buffer_type.layout(self.width, self.height);
    Ok(match layout.planes().get(plane_index(env.raw(), index.raw())?) {
      Some(p) => Either::A(p.stride as u32),
      None => Either::B(()),
    })
  }

  /// A new frame of `type` with this frame's picture (BT.601 limited range, like libwebrtc).
  /// Every pair of formats converts; I420A keeps alpha (opaque when the source has none).
  /// `flipY` turns the picture upside down. libyuv writes straight into the new frame's memory
  /// (no copy), which is a collected frame's when one of the same size is waiting to be reused
  /// (no page faults). Runs synchronously; to reuse one destination frame after frame, see
  /// `convertInto`.
  #[napi(ts_args_type = "type: VideoBufferType, options?: ConvertOptions")]
  pub fn convert<'env>(
    &self,
    env: &'env Env,
    buffer_type: Unknown,
    options: Option<Unknown>,
  ) -> Result<ClassInstance<'env, VideoFrame>, String> {
    let js_env = env;
    let env = env.raw();
    let to = parse_buffer_type(env, buffer_type.raw())?;
    let flip_y = convert_options(env, options)?.flip_y.unwrap_or(false);
    let info = self.current_info(env)?;
    let size = to.layout(self.width, self.height).size;
    // A collected frame's memory when one of this size is waiting, else new memory, both lent
    // to JavaScript and given back to the pool by its finalizer.
    if let Some(buffer) = core::pool::take_to_lend(size) {
      let mut out = core::VideoFrame::new(self.width, self.height, to, buffer).js()?;
      let converted = {
        // SAFETY: `current_info` checked the source view is alive and exactly the frame's size;
        // no JS runs while the borrow lasts (it ends before the new frame's JS object is made).
        let src = unsafe { std::slice::from_raw_parts(info.data, info.len) };
        let src = core::VideoFrame::new(self.width, self.height, self.buffer_type, src).js()?;
        core::convert_into(&src, &mut out, flip_y)
      };
      if let Err(e) = converted {
        core::pool::give(out.into_data());
        return Err(e).js();
      }
      return VideoFrame::from_owned_js(js_env, out);
    }
    // Too much lent memory awaits its finalizers (a loop that never yields): memory V8 frees by
    // itself at collection.
    let (data, buffer) = new_buffer(env, size)?;
    // SAFETY: `current_info` checked the source view is alive and exactly the frame's size; the
    // new Buffer is distinct memory of `size` bytes; no JS runs while both borrows last.
    let (src, dst) = unsafe {
      (
        std::slice::from_raw_parts(info.data, info.len),
        std::slice::from_raw_parts_mut(data, size),
      )
    };
    let src = core::VideoFrame::new(self.width, self.height, self.buffer_type, src).js()?;
    let mut dst = core::VideoFrame::new(self.width, self.height, to, dst).js()?;
    core::convert_into(&src, &mut dst, flip_y).js()?;
    // `data` is a plain Uint8Array for every frame, whoever made it.
    let buffer = typed_array_info(env, buffer)?;
    let view = uint8_view_over(env, buffer.arraybuffer, buffer.byte_offset, size)?;
    let (width, height) = (self.width, self.height);
    VideoFrame {
      width,
      height,
      buffer_type: to,
      view: ViewRef::new(env, view)?,
    }
    .into_js(js_env, view)
  }

  /// Converts this frame into `dst`, overwriting its bytes: `dst`'s type is the target and its
  /// dimensions must match (else `ERR_DIMENSION_MISMATCH`). Allocates nothing for most pairs,
  /// so a pipeline can reuse one destination frame for every frame it converts.
  #[napi(ts_args_type = "dst: VideoFrame, options?: ConvertOptions")]
  pub fn convert_into(
    &self,
    env: Env,
    dst: Either<&VideoFrame, Unknown>,
    options: Option<Unknown>,
  ) -> Result<(), String> {
    let env = env.raw();
    let dst = frame_arg(env, "dst", dst)?;
    let flip_y = convert_options(env, options)?.flip_y.unwrap_or(false);
    let src_info = self.current_info(env)?;
    let dst_info = dst.current_info(env)?;
    // SAFETY: `current_info` checked both views are alive and exactly their frames' sizes; no JS
    // runs while the borrows last.
    let src_bytes = unsafe { std::slice::from_raw_parts(src_info.data, src_info.len) };
    // Views of one ArrayBuffer may overlap: read from a copy then, never alias the destination.
    let (src_start, dst_start) = (src_info.data as usize, dst_info.data as usize);
    let overlap = src_start < dst_start + dst_info.len && dst_start < src_start + src_info.len;
    let copy = overlap.then(|| src_bytes.to_vec());
    let src_bytes: &[u8] = copy.as_deref().unwrap_or(src_bytes);
    // SAFETY: as above; `src_bytes` no longer points into the destination's memory.
    let dst_bytes = unsafe { std::slice::from_raw_parts_mut(dst_info.data.cast_mut(), dst_info.len) };
    let src = core::VideoFrame::new(self.width, self.height, self.buffer_type, src_bytes).js()?;
    let mut out = core::VideoFrame::new(dst.width, dst.height, dst.buffer_type, dst_bytes).js()?;
    core::convert_into(&src, &mut out, flip_y).js()
  }
}

impl VideoFrame {
  /// The JS object of a frame made in Rust, holding its view (see [`hold_view`]).
  fn into_js(self, env: &Env, view: sys::napi_value) -> JsResult<ClassInstance<'_, VideoFrame>> {
    let instance = self
      .into_instance(env)
      .map_err(|e| js_error("ERR_INTERNAL", e.reason.clone()))?;
    hold_view(env.raw(), instance.as_object(env).raw(), view)?;
    Ok(instance)
  }

  /// A JS frame over a frame Rust made (e.g. a decoded one): its Vec becomes the backing store of
  /// an external ArrayBuffer, without a copy, held by the frame's JS object, so both are freed in
  /// the same garbage collection.
  pub(crate) fn from_owned_js(env: &Env, frame: core::VideoFrame) -> Result<ClassInstance<'_, VideoFrame>, String> {
    let (width, height, buffer_type) = (frame.width(), frame.height(), frame.buffer_type());
    let view = uint8_array_from_vec(env.raw(), frame.into_data())?;
    Self {
      width,
      height,
      buffer_type,
      view: ViewRef::new(env.raw(), view)?,
    }
    .into_js(env, view)
  }

  /// Lends this frame's bytes to Rust as a core frame, without a copy. `f` must not call into JS.
  pub(crate) fn with_core<R>(&self, env: &Env, f: impl FnOnce(&core::VideoFrame<&[u8]>) -> R) -> JsResult<R> {
    let info = self.current_info(env.raw())?;
    // SAFETY: `current_info` checked the view is alive and exactly the frame's size; no JS runs
    // while the borrow lasts, so nothing can detach or resize the buffer.
    let bytes = unsafe { std::slice::from_raw_parts(info.data, info.len) };
    let frame = core::VideoFrame::new(self.width, self.height, self.buffer_type, bytes).js()?;
    Ok(f(&frame))
  }

  /// The view's current memory, checked against the frame size: JS may have detached (transferred)
  /// its ArrayBuffer since the frame was made.
  fn current_info(&self, env: sys::napi_env) -> JsResult<ViewInfo> {
    let info = typed_array_info(env, self.view.value(env)?)?;
    let expected = self.buffer_type.layout(self.width, self.height).size;
    if info.len != expected || info.data.is_null() {
      let (width, height, buffer_type) = (self.width, self.height, self.buffer_type);
      return Err(core::VideoError::InvalidFrameSize {
        width,
        height,
        buffer_type,
        expected,
        given: info.len,
      })
      .js();
    }
    Ok(info)
  }
}

/// A `VideoFrame` argument: anything else (including an object that only inherits from
/// `VideoFrame.prototype`) is ERR_INVALID_ARG_TYPE naming `name`.
pub(crate) fn frame_arg<'a>(
  env: sys::napi_env,
  name: &str,
  value: Either<&'a VideoFrame, Unknown>,
) -> JsResult<&'a VideoFrame> {
  match value {
    Either::A(frame) => Ok(frame),
    Either::B(other) => Err(invalid_arg_type(name, "a VideoFrame", type_name(env, other.raw()))),
  }
}

/// A plane index: an integer >= 0 (past the last plane, however far, means no plane).
fn plane_index(env: sys::napi_env, value: sys::napi_value) -> JsResult<usize> {
  let expected = "an integer >= 0";
  let n = number(env, "index", value, expected)?;
  // NaN fails the comparison; infinities have a NaN fraction.
  if n >= 0.0 && n.fract() == 0.0 {
    Ok(n as usize)
  } else {
    Err(js_error(
      "ERR_INVALID_ARGUMENT",
      format!("invalid index: expected {expected}, got {n}"),
    ))
  }
}

/// `ConvertOptions` read by hand, so that a wrong type is ERR_INVALID_ARG_TYPE rather than
/// ignored (a string for `options`) or napi's status code (a string for `flipY`).
fn convert_options(env: sys::napi_env, options: Option<Unknown>) -> JsResult<ConvertOptions> {
  let Some(options) = options else {
    return Ok(ConvertOptions { flip_y: None });
  };
  let options = options.raw();
  if value_type(env, options) != sys::ValueType::napi_object {
    return Err(invalid_arg_type(
      "options",
      "an options object",
      type_name(env, options),
    ));
  }
  Ok(ConvertOptions {
    flip_y: optional_bool_property(env, options, c"flipY", "flipY")?,
  })
}

/// A width or height as i64, with non-integers (NaN, 1.5, Infinity) mapped outside the valid range.
fn dimension(env: sys::napi_env, name: &str, value: sys::napi_value) -> JsResult<i64> {
  let n = number(env, name, value, "a number")?;
  if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
    Ok(n as i64)
  } else {
    Err(js_error(
      "ERR_INVALID_DIMENSIONS",
      format!(
        "invalid {name}: expected an integer from 1 to {}, got {n}",
        core::MAX_DIMENSION
      ),
    ))
  }
}

fn parse_buffer_type(env: sys::napi_env, value: sys::napi_value) -> JsResult<core::VideoBufferType> {
  let n = number(env, "type", value, "a VideoBufferType (number)")?;
  if n.fract() == 0.0 && (0.0..=10.0).contains(&n) {
    core::VideoBufferType::from_u32(n as u32).js()
  } else {
    Err(js_error(
      "ERR_INVALID_BUFFER_TYPE",
      format!("invalid buffer type: expected a VideoBufferType (0..=10), got {n}"),
    ))
  }
}

/// What the pool of frame buffers holds and has served (see `lkrtc_video::pool`): for the
/// benchmarks and the soak.
#[napi(object, object_from_js = false)]
pub struct FramePoolStats {
  /// Buffers waiting to be reused.
  pub buffers: u32,
  /// Their bytes.
  pub bytes: f64,
  /// New frames whose memory was a collected frame's.
  pub reused: f64,
  /// New frames that needed new memory.
  pub allocated: f64,
  /// Bytes of lkrtc-made frames held by JavaScript (or collected, awaiting their finalizers).
  pub lent: f64,
}

/// The frame buffer pool's figures.
#[napi]
pub fn frame_pool_stats() -> FramePoolStats {
  let s = lkrtc_video::pool::stats();
  FramePoolStats {
    buffers: s.buffers as u32,
    bytes: s.bytes as f64,
    reused: s.reused as f64,
    allocated: s.allocated as f64,
    lent: lkrtc_video::pool::lent_bytes() as f64,
  }
}
