//! The one place lkrtc errors become JavaScript errors: an `Error` whose `code` is stable
//! (`ERR_INVALID_FRAME_SIZE`, ...) and whose message says what was expected and what was given.

use lkrtc_video::VideoError;

/// What every binding returns: a JS error carries our string code, not a napi `Status`.
pub type JsResult<T> = napi::Result<T, String>;

/// A JS `Error` with `error.code === code`.
pub fn js_error(code: &str, msg: impl Into<String>) -> napi::Error<String> {
  napi::Error::new(code.to_owned(), msg.into())
}

/// A `TypeError`-like failure for an argument of the wrong JS type.
pub fn invalid_arg_type(name: &str, expected: &str, given: &str) -> napi::Error<String> {
  js_error(
    "ERR_INVALID_ARG_TYPE",
    format!("invalid {name}: expected {expected}, got {given}"),
  )
}

/// A failing napi call (out of memory, a pending exception): rare, never a crash.
pub fn napi_failure(what: &str, status: i32) -> napi::Error<String> {
  js_error("ERR_NAPI", format!("{what} failed (napi status {status})"))
}

/// Converts a lkrtc error into a JS error with its code.
pub trait IntoJsError {
  fn into_js(self) -> napi::Error<String>;
}

impl IntoJsError for VideoError {
  fn into_js(self) -> napi::Error<String> {
    js_error(self.code(), self.to_string())
  }
}

impl IntoJsError for napi::Error {
  fn into_js(self) -> napi::Error<String> {
    js_error("ERR_NAPI", self.reason)
  }
}

/// `result.map_err(IntoJsError::into_js)` in one word: `result.js()?`.
pub trait JsResultExt<T> {
  fn js(self) -> JsResult<T>;
}

impl<T, E: IntoJsError> JsResultExt<T> for Result<T, E> {
  fn js(self) -> JsResult<T> {
    self.map_err(IntoJsError::into_js)
  }
}
