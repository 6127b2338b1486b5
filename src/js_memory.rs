//! The raw napi calls on JavaScript memory that `VideoFrame` needs and napi-rs's typed-array
//! types do not offer without a copy or an extra reference: typed-array views over an
//! ArrayBuffer at an offset, external ArrayBuffers over a Rust Vec, a weak reference to a view
//! held alive by a hidden property, uninitialized Node Buffers, and argument reads that report
//! a wrong JS type with ERR_INVALID_ARG_TYPE.

use std::ffi::{c_void, CStr};
use std::ptr;

use napi::sys;

use crate::error::{invalid_arg_type, js_error, napi_failure, JsResult};

pub(crate) fn ok(status: sys::napi_status, what: &str) -> JsResult<()> {
  if status == sys::Status::napi_ok {
    Ok(())
  } else {
    Err(napi_failure(what, status))
  }
}

/// The `typeof` of `value`, -1 if napi cannot tell.
pub(crate) fn value_type(env: sys::napi_env, value: sys::napi_value) -> sys::napi_valuetype {
  let mut t = -1;
  // SAFETY: plain napi query on a value of this call.
  if unsafe { sys::napi_typeof(env, value, &mut t) } != sys::Status::napi_ok {
    return -1;
  }
  t
}

pub(crate) fn type_name(env: sys::napi_env, value: sys::napi_value) -> &'static str {
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
pub(crate) fn number(env: sys::napi_env, name: &str, value: sys::napi_value, expected: &str) -> JsResult<f64> {
  let mut n = 0f64;
  // SAFETY: plain napi query; fails (number_expected) for non-numbers.
  if unsafe { sys::napi_get_value_double(env, value, &mut n) } != sys::Status::napi_ok {
    return Err(invalid_arg_type(name, expected, type_name(env, value)));
  }
  Ok(n)
}

/// `value` as a Uint8Array: itself if it is one (Buffer included), a new view if it is an
/// ArrayBuffer.
pub(crate) fn uint8_view(env: sys::napi_env, value: sys::napi_value) -> JsResult<sys::napi_value> {
  let expected = "a Uint8Array, Buffer or ArrayBuffer";
  let mut is = false;
  // SAFETY: plain napi query on a value of this call.
  let status = unsafe { sys::napi_is_typedarray(env, value, &mut is) };
  ok(status, "napi_is_typedarray")?;
  if is {
    let mut t = 0;
    // SAFETY: `value` is a typed array (checked above); only its type is read.
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
  // SAFETY: plain napi query on a value of this call.
  let status = unsafe { sys::napi_is_arraybuffer(env, value, &mut is) };
  ok(status, "napi_is_arraybuffer")?;
  if !is {
    return Err(invalid_arg_type("data", expected, type_name(env, value)));
  }
  let mut len = 0;
  // SAFETY: `value` is an ArrayBuffer (checked above); only its length is read.
  let status = unsafe { sys::napi_get_arraybuffer_info(env, value, ptr::null_mut(), &mut len) };
  ok(status, "napi_get_arraybuffer_info")?;
  let mut view = ptr::null_mut();
  // SAFETY: the view spans exactly the ArrayBuffer.
  let status = unsafe { sys::napi_create_typedarray(env, sys::TypedarrayType::uint8_array, len, value, 0, &mut view) };
  ok(status, "creating a Uint8Array over the ArrayBuffer")?;
  Ok(view)
}

/// Where a typed array's bytes are.
pub(crate) struct ViewInfo {
  pub(crate) data: *const u8,
  pub(crate) len: usize,
  pub(crate) arraybuffer: sys::napi_value,
  pub(crate) byte_offset: usize,
}

pub(crate) fn typed_array_info(env: sys::napi_env, view: sys::napi_value) -> JsResult<ViewInfo> {
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
pub(crate) fn uint8_array_from_vec(env: sys::napi_env, bytes: Vec<u8>) -> JsResult<sys::napi_value> {
  unsafe extern "C" fn free_vec(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box made below, finalized exactly once by the runtime.
    let bytes = unsafe { Box::from_raw(hint.cast::<Vec<u8>>()) };
    // The next frame of this size reuses the memory instead of faulting in new pages.
    lkrtc_video::pool::give_back(*bytes);
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
  if status == sys::Status::napi_ok {
    lkrtc_video::pool::lent(len);
  } else {
    // SAFETY: the runtime did not take `hint`, so it is still ours.
    let bytes = unsafe { Box::from_raw(hint) };
    if status != sys::Status::napi_no_external_buffers_allowed {
      return Err(napi_failure("creating an external ArrayBuffer", status));
    }
    let mut dst = ptr::null_mut();
    // SAFETY: plain napi call; `dst` receives `len` fresh bytes owned by the new ArrayBuffer.
    let status = unsafe { sys::napi_create_arraybuffer(env, len, &mut dst, &mut arraybuffer) };
    ok(status, "napi_create_arraybuffer")?;
    // SAFETY: `dst` is a fresh allocation of `len` bytes.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), len) };
    lkrtc_video::pool::give(*bytes);
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
pub(crate) fn hold_view(env: sys::napi_env, object: sys::napi_value, view: sys::napi_value) -> JsResult<()> {
  let mut key = ptr::null_mut();
  // SAFETY: plain napi calls on values of this call.
  let status = unsafe { sys::napi_create_symbol(env, ptr::null_mut(), &mut key) };
  ok(status, "napi_create_symbol")?;
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
  // SAFETY: `object` and `view` are values of this call; `property` lives across the call.
  let status = unsafe { sys::napi_define_properties(env, object, 1, &property) };
  ok(status, "napi_define_properties")
}

pub(crate) struct ViewRef {
  env: sys::napi_env,
  raw: sys::napi_ref,
}

impl ViewRef {
  pub(crate) fn new(env: sys::napi_env, value: sys::napi_value) -> JsResult<Self> {
    let mut raw = ptr::null_mut();
    // Weak (count 0): the frame's JS object holds the view strongly (see `hold_view`), so the
    // view lives exactly as long as the frame and both die in the same garbage collection. A
    // strong native reference would keep the bytes until the frame's finalizer runs, which Node
    // defers to the next turn of the event loop: a synchronous loop would pile up every frame.
    // SAFETY: plain napi call on a value of this call.
    let status = unsafe { sys::napi_create_reference(env, value, 0, &mut raw) };
    ok(status, "napi_create_reference")?;
    Ok(Self { env, raw })
  }

  pub(crate) fn value(&self, env: sys::napi_env) -> JsResult<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: `raw` is alive while `self` is.
    let status = unsafe { sys::napi_get_reference_value(env, self.raw, &mut value) };
    ok(status, "napi_get_reference_value")?;
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

/// A new Uint8Array of `len` bytes over `arraybuffer` from `byte_offset`.
pub(crate) fn uint8_view_over(
  env: sys::napi_env,
  arraybuffer: sys::napi_value,
  byte_offset: usize,
  len: usize,
) -> JsResult<sys::napi_value> {
  let mut view = ptr::null_mut();
  // SAFETY: plain napi call on values of this call; napi itself rejects (RangeError) a range
  // that does not fit the ArrayBuffer.
  let status = unsafe {
    sys::napi_create_typedarray(
      env,
      sys::TypedarrayType::uint8_array,
      len,
      arraybuffer,
      byte_offset,
      &mut view,
    )
  };
  ok(status, "napi_create_typedarray")?;
  Ok(view)
}

/// A new Node Buffer of `size` bytes: its memory (uninitialized) and the Buffer. A Buffer rather
/// than an ArrayBuffer: Node leaves it uninitialized where V8 zeroes, and zeroing fresh memory
/// (page faults) would cost more than a conversion that overwrites it all.
pub(crate) fn new_buffer(env: sys::napi_env, size: usize) -> JsResult<(*mut u8, sys::napi_value)> {
  let (mut data, mut buffer) = (ptr::null_mut(), ptr::null_mut());
  // SAFETY: plain napi call; Node returns `size` bytes it owns and frees at GC.
  let status = unsafe { sys::napi_create_buffer(env, size, &mut data, &mut buffer) };
  ok(status, "napi_create_buffer")?;
  Ok((data.cast::<u8>(), buffer))
}

/// The boolean property `key` of `object`: `None` when undefined, ERR_INVALID_ARG_TYPE naming
/// `name` for any other type.
pub(crate) fn optional_bool_property(
  env: sys::napi_env,
  object: sys::napi_value,
  key: &CStr,
  name: &str,
) -> JsResult<Option<bool>> {
  let mut value = ptr::null_mut();
  // SAFETY: plain napi call on an object of this call; `key` is NUL-terminated.
  let status = unsafe { sys::napi_get_named_property(env, object, key.as_ptr(), &mut value) };
  ok(status, "napi_get_named_property")?;
  match value_type(env, value) {
    sys::ValueType::napi_undefined => Ok(None),
    sys::ValueType::napi_boolean => {
      let mut b = false;
      // SAFETY: `value` is a boolean of this call.
      let status = unsafe { sys::napi_get_value_bool(env, value, &mut b) };
      ok(status, "napi_get_value_bool")?;
      Ok(Some(b))
    }
    _ => Err(invalid_arg_type(name, "a boolean", type_name(env, value))),
  }
}
