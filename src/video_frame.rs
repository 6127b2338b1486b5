//! `VideoFrame`, `VideoBufferType` and `VideoRotation` for JavaScript. The frame keeps a reference
//! to one `Uint8Array` over its bytes; `data` returns that view and `getPlane` makes views into
//! the same memory, so nothing is copied. Logic lives in crates/lkrtc-video.

use std::ffi::c_void;
use std::ptr;

use lkrtc_video as core;
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::error::{invalid_arg_type, js_error, napi_failure, JsResult, JsResultExt};

/// A pixel format. The numbers are LiveKit's (`VideoBufferType` in its protocol). Packed formats
/// are named by byte order in memory: `RGBA` is R, G, B, A. Planar formats are tightly packed,
/// plane after plane; chroma planes are `ceil(width / 2)` wide (and `ceil(height / 2)` tall for
/// the 4:2:0 formats).
#[napi]
#[allow(clippy::upper_case_acronyms)]
pub enum VideoBufferType {
  /// 4 bytes per pixel: R, G, B, A.
  RGBA = 0,
  /// 4 bytes per pixel: A, B, G, R.
  ABGR = 1,
  /// 4 bytes per pixel: A, R, G, B.
  ARGB = 2,
  /// 4 bytes per pixel: B, G, R, A.
  BGRA = 3,
  /// 3 bytes per pixel: R, G, B.
  RGB24 = 4,
  /// 4:2:0 planar: Y, U, V planes.
  I420 = 5,
  /// 4:2:0 planar with alpha: Y, U, V, then a full-size A plane.
  I420A = 6,
  /// 4:2:2 planar: Y, then U and V at half width, full height.
  I422 = 7,
  /// 4:4:4 planar: Y, U, V, all full size.
  I444 = 8,
  /// 4:2:0 planar, 10 bits in little-endian 16-bit samples (2 bytes per sample).
  I010 = 9,
  /// 4:2:0 semi-planar: Y, then one plane of interleaved U, V pairs.
  NV12 = 10,
}

/// The rotation to apply when a frame is shown. The numbers are LiveKit's.
#[napi]
pub enum VideoRotation {
  Rotation0 = 0,
  Rotation90 = 1,
  Rotation180 = 2,
  Rotation270 = 3,
}

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
    to_js_type(self.buffer_type)
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
    let mut out = ptr::null_mut();
    // SAFETY: the range lies inside the view, whose size `current_info` checked.
    let status = unsafe {
      sys::napi_create_typedarray(
        env,
        sys::TypedarrayType::uint8_array,
        plane.len,
        info.arraybuffer,
        info.byte_offset + plane.offset,
        &mut out,
      )
    };
    ok(status, "creating a plane view")?;
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
  /// (no copy). Runs synchronously; to reuse memory frame after frame, see
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
    let (mut data, mut buffer) = (ptr::null_mut(), ptr::null_mut());
    // A Node Buffer rather than an ArrayBuffer: Node leaves it uninitialized where V8 zeroes,
    // and zeroing fresh memory (page faults) would cost more than the conversion itself.
    // SAFETY: plain napi call; Node returns `size` bytes it owns and frees at GC.
    ok(
      unsafe { sys::napi_create_buffer(env, size, &mut data, &mut buffer) },
      "napi_create_buffer",
    )?;
    // SAFETY: `current_info` checked the source view is alive and exactly the frame's size; the
    // new Buffer is distinct memory of `size` bytes; no JS runs while both borrows last.
    let (src, dst) = unsafe {
      (
        std::slice::from_raw_parts(info.data, info.len),
        std::slice::from_raw_parts_mut(data.cast::<u8>(), size),
      )
    };
    let src = core::VideoFrame::new(self.width, self.height, self.buffer_type, src).js()?;
    let mut dst = core::VideoFrame::new(self.width, self.height, to, dst).js()?;
    core::convert_into(&src, &mut dst, flip_y).js()?;
    // `data` is a plain Uint8Array for every frame, whoever made it.
    let buffer = typed_array_info(env, buffer)?;
    let mut view = ptr::null_mut();
    // SAFETY: the view spans exactly the Buffer's bytes.
    let status = unsafe {
      sys::napi_create_typedarray(
        env,
        sys::TypedarrayType::uint8_array,
        size,
        buffer.arraybuffer,
        buffer.byte_offset,
        &mut view,
      )
    };
    ok(status, "napi_create_typedarray")?;
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

pub(crate) fn to_js_rotation(r: core::VideoRotation) -> VideoRotation {
  match r {
    core::VideoRotation::Rotation0 => VideoRotation::Rotation0,
    core::VideoRotation::Rotation90 => VideoRotation::Rotation90,
    core::VideoRotation::Rotation180 => VideoRotation::Rotation180,
    core::VideoRotation::Rotation270 => VideoRotation::Rotation270,
  }
}

pub(crate) fn from_js_rotation(r: VideoRotation) -> core::VideoRotation {
  match r {
    VideoRotation::Rotation0 => core::VideoRotation::Rotation0,
    VideoRotation::Rotation90 => core::VideoRotation::Rotation90,
    VideoRotation::Rotation180 => core::VideoRotation::Rotation180,
    VideoRotation::Rotation270 => core::VideoRotation::Rotation270,
  }
}

pub(crate) fn from_js_type(t: VideoBufferType) -> core::VideoBufferType {
  use core::VideoBufferType as C;
  match t {
    VideoBufferType::RGBA => C::Rgba,
    VideoBufferType::ABGR => C::Abgr,
    VideoBufferType::ARGB => C::Argb,
    VideoBufferType::BGRA => C::Bgra,
    VideoBufferType::RGB24 => C::Rgb24,
    VideoBufferType::I420 => C::I420,
    VideoBufferType::I420A => C::I420A,
    VideoBufferType::I422 => C::I422,
    VideoBufferType::I444 => C::I444,
    VideoBufferType::I010 => C::I010,
    VideoBufferType::NV12 => C::Nv12,
  }
}

fn to_js_type(t: core::VideoBufferType) -> VideoBufferType {
  use core::VideoBufferType as C;
  match t {
    C::Rgba => VideoBufferType::RGBA,
    C::Abgr => VideoBufferType::ABGR,
    C::Argb => VideoBufferType::ARGB,
    C::Bgra => VideoBufferType::BGRA,
    C::Rgb24 => VideoBufferType::RGB24,
    C::I420 => VideoBufferType::I420,
    C::I420A => VideoBufferType::I420A,
    C::I422 => VideoBufferType::I422,
    C::I444 => VideoBufferType::I444,
    C::I010 => VideoBufferType::I010,
    C::Nv12 => VideoBufferType::NV12,
  }
}

fn ok(status: sys::napi_status, what: &str) -> JsResult<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(napi_failure(what, status))
  }
}

/// The `typeof` of `value`, -1 if napi cannot tell.
fn value_type(env: sys::napi_env, value: sys::napi_value) -> sys::napi_valuetype {
  let mut t = -1;
  // SAFETY: plain napi query on a value of this call.
  if unsafe { sys::napi_typeof(env, value, &mut t) } != sys::Status::napi_ok {
    return -1;
  }
  t
}

fn type_name(env: sys::napi_env, value: sys::napi_value) -> &'static str {
  match value_type(env, value) {
    -1 => "an unknown value",
    sys::ValueType::napi_undefined => "undefined",
    sys::ValueType::napi_null => "null",
    sys::ValueType::napi_boolean => "a boolean",
    sys::ValueType::napi_number => "a number",
    sys::ValueType::napi_string => "a string",
    sys::ValueType::napi_symbol => "a symbol",
    sys::ValueType::napi_function => "a function",
    sys::ValueType::napi_bigint => "a bigint",
    _ => "an object",
  }
}

/// A JS number, or ERR_INVALID_ARG_TYPE naming `name`.
fn number(env: sys::napi_env, name: &str, value: sys::napi_value, expected: &str) -> JsResult<f64> {
  let mut n = 0f64;
  // SAFETY: plain napi query; fails (number_expected) for non-numbers.
  if unsafe { sys::napi_get_value_double(env, value, &mut n) } != sys::Status::napi_ok {
    return Err(invalid_arg_type(name, expected, type_name(env, value)));
  }
  Ok(n)
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
  let mut result = ConvertOptions { flip_y: None };
  let Some(options) = options else {
    return Ok(result);
  };
  let options = options.raw();
  if value_type(env, options) != sys::ValueType::napi_object {
    return Err(invalid_arg_type(
      "options",
      "an options object",
      type_name(env, options),
    ));
  }
  let mut flip_y = ptr::null_mut();
  // SAFETY: plain napi call on an object of this call.
  ok(
    unsafe { sys::napi_get_named_property(env, options, c"flipY".as_ptr(), &mut flip_y) },
    "reading options.flipY",
  )?;
  match value_type(env, flip_y) {
    sys::ValueType::napi_undefined => {}
    sys::ValueType::napi_boolean => {
      let mut b = false;
      // SAFETY: `flip_y` is a boolean of this call.
      ok(
        unsafe { sys::napi_get_value_bool(env, flip_y, &mut b) },
        "napi_get_value_bool",
      )?;
      result.flip_y = Some(b);
    }
    _ => return Err(invalid_arg_type("flipY", "a boolean", type_name(env, flip_y))),
  }
  Ok(result)
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

/// `value` as a Uint8Array: itself if it is one (Buffer included), a new view if it is an
/// ArrayBuffer.
fn uint8_view(env: sys::napi_env, value: sys::napi_value) -> JsResult<sys::napi_value> {
  let expected = "a Uint8Array, Buffer or ArrayBuffer";
  let mut is = false;
  // SAFETY: plain napi queries on a value of this call.
  ok(
    unsafe { sys::napi_is_typedarray(env, value, &mut is) },
    "napi_is_typedarray",
  )?;
  if is {
    let mut t = 0;
    let status = unsafe {
      sys::napi_get_typedarray_info(
        env,
        value,
        &mut t,
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
      )
    };
    ok(status, "napi_get_typedarray_info")?;
    if t != sys::TypedarrayType::uint8_array && t != sys::TypedarrayType::uint8_clamped_array {
      return Err(invalid_arg_type("data", expected, "another TypedArray"));
    }
    return Ok(value);
  }
  ok(
    unsafe { sys::napi_is_arraybuffer(env, value, &mut is) },
    "napi_is_arraybuffer",
  )?;
  if !is {
    return Err(invalid_arg_type("data", expected, type_name(env, value)));
  }
  let mut len = 0;
  ok(
    unsafe { sys::napi_get_arraybuffer_info(env, value, ptr::null_mut(), &mut len) },
    "napi_get_arraybuffer_info",
  )?;
  let mut view = ptr::null_mut();
  // SAFETY: the view spans exactly the ArrayBuffer.
  let status = unsafe { sys::napi_create_typedarray(env, sys::TypedarrayType::uint8_array, len, value, 0, &mut view) };
  ok(status, "creating a Uint8Array over the ArrayBuffer")?;
  Ok(view)
}

struct ViewInfo {
  data: *const u8,
  len: usize,
  arraybuffer: sys::napi_value,
  byte_offset: usize,
}

fn typed_array_info(env: sys::napi_env, view: sys::napi_value) -> JsResult<ViewInfo> {
  let (mut t, mut len, mut data, mut arraybuffer, mut byte_offset) = (0, 0, ptr::null_mut(), ptr::null_mut(), 0);
  // SAFETY: `view` is a Uint8Array of this env (checked when the frame was made).
  let status = unsafe {
    sys::napi_get_typedarray_info(
      env,
      view,
      &mut t,
      &mut len,
      &mut data,
      &mut arraybuffer,
      &mut byte_offset,
    )
  };
  ok(status, "napi_get_typedarray_info")?;
  Ok(ViewInfo {
    data: data.cast::<u8>().cast_const(),
    len,
    arraybuffer,
    byte_offset,
  })
}

/// Hands `bytes` to JS as the backing store of a new Uint8Array, without a copy. Runtimes that
/// forbid external buffers (Electron's V8 sandbox) get a copy instead.
fn uint8_array_from_vec(env: sys::napi_env, bytes: Vec<u8>) -> JsResult<sys::napi_value> {
  unsafe extern "C" fn free_vec(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box made below, finalized exactly once by the runtime.
    drop(unsafe { Box::from_raw(hint.cast::<Vec<u8>>()) });
  }
  let len = bytes.len();
  let mut boxed = Box::new(bytes);
  let data = boxed.as_mut_ptr();
  let hint = Box::into_raw(boxed);
  let mut arraybuffer = ptr::null_mut();
  // SAFETY: the Vec stays alive (and its heap block unmoved) until `free_vec` runs.
  let status = unsafe {
    sys::napi_create_external_arraybuffer(env, data.cast(), len, Some(free_vec), hint.cast(), &mut arraybuffer)
  };
  if status != sys::Status::napi_ok {
    // SAFETY: the runtime did not take `hint`, so it is still ours.
    let bytes = unsafe { Box::from_raw(hint) };
    if status != sys::Status::napi_no_external_buffers_allowed {
      return Err(napi_failure("creating an external ArrayBuffer", status));
    }
    let mut dst = ptr::null_mut();
    ok(
      unsafe { sys::napi_create_arraybuffer(env, len, &mut dst, &mut arraybuffer) },
      "napi_create_arraybuffer",
    )?;
    // SAFETY: `dst` is a fresh allocation of `len` bytes.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), len) };
  }
  let mut view = ptr::null_mut();
  // SAFETY: the view spans exactly the new ArrayBuffer.
  let status =
    unsafe { sys::napi_create_typedarray(env, sys::TypedarrayType::uint8_array, len, arraybuffer, 0, &mut view) };
  ok(status, "napi_create_typedarray")?;
  Ok(view)
}

/// A strong reference to the frame's Uint8Array, released when the frame is collected.
/// Makes `object` (a VideoFrame's JS object) hold `view` through a hidden property: keyed by a
/// fresh Symbol, non-enumerable, read-only.
fn hold_view(env: sys::napi_env, object: sys::napi_value, view: sys::napi_value) -> JsResult<()> {
  let mut key = ptr::null_mut();
  // SAFETY: plain napi calls on values of this call.
  ok(
    unsafe { sys::napi_create_symbol(env, ptr::null_mut(), &mut key) },
    "napi_create_symbol",
  )?;
  let property = sys::napi_property_descriptor {
    utf8name: ptr::null(),
    name: key,
    method: None,
    getter: None,
    setter: None,
    value: view,
    attributes: sys::PropertyAttributes::default,
    data: ptr::null_mut(),
  };
  ok(
    unsafe { sys::napi_define_properties(env, object, 1, &property) },
    "napi_define_properties",
  )
}

struct ViewRef {
  env: sys::napi_env,
  raw: sys::napi_ref,
}

impl ViewRef {
  fn new(env: sys::napi_env, value: sys::napi_value) -> Result<Self, String> {
    let mut raw = ptr::null_mut();
    // Weak (count 0): the frame's JS object holds the view strongly (see `hold_view`), so the
    // view lives exactly as long as the frame and both die in the same garbage collection. A
    // strong native reference would keep the bytes until the frame's finalizer runs, which Node
    // defers to the next turn of the event loop: a synchronous loop would pile up every frame.
    // SAFETY: plain napi call on a value of this call.
    ok(
      unsafe { sys::napi_create_reference(env, value, 0, &mut raw) },
      "napi_create_reference",
    )?;
    Ok(Self { env, raw })
  }

  fn value(&self, env: sys::napi_env) -> JsResult<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: `raw` is alive while `self` is.
    ok(
      unsafe { sys::napi_get_reference_value(env, self.raw, &mut value) },
      "napi_get_reference_value",
    )?;
    if value.is_null() {
      // Only if a frame outlived its own JS object, which napi does not allow.
      return Err(js_error("ERR_INTERNAL", "the frame's memory was already collected"));
    }
    Ok(value)
  }
}

impl Drop for ViewRef {
  fn drop(&mut self) {
    // Runs on the JS thread: napi finalizes class instances there.
    // SAFETY: `raw` was created in `env` and is deleted once.
    unsafe { sys::napi_delete_reference(self.env, self.raw) };
  }
}
