//! The one place lkrtc errors become JavaScript errors: an `Error` whose `code` is stable
//! (`ERR_INVALID_FRAME_SIZE`, ...) and whose message says what was expected and what was given.

use std::future::Future;

use lkrtc_video::VideoError;
use napi::bindgen_prelude::{JsError, PromiseRaw, ToNapiValue, Unknown};
use napi::Env;

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

/// How an error message shows a JS number, as the facade's `describe` does: `number 1.5`,
/// `number NaN`, `number -Infinity`, `number 1e+21`.
pub fn describe_number(n: f64) -> String {
  let shown = if n.is_nan() {
    "NaN".to_owned()
  } else if n.is_infinite() {
    if n > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
  } else if n != 0.0 && (n.abs() >= 1e21 || n.abs() < 1e-6) {
    // JS switches to exponent form there, with an explicit sign.
    let e = format!("{n:e}");
    if e.contains("e-") {
      e
    } else {
      e.replace('e', "e+")
    }
  } else {
    format!("{n}")
  };
  format!("number {shown}")
}

/// How an error message shows a JS string, as the facade's `describe` does: quoted, cut after
/// 40 characters.
pub fn describe_string(s: &str) -> String {
  match s.char_indices().nth(40) {
    Some((cut, _)) => format!("the string {:?}", format!("{}…", &s[..cut])),
    None => format!("the string {s:?}"),
  }
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

impl IntoJsError for lkrtc_rtc::RtcError {
  fn into_js(self) -> napi::Error<String> {
    js_error(self.code(), self.to_string())
  }
}

/// Runs `work` on the shared tokio runtime and returns a Promise settled on the JS thread:
/// `to_js` turns the result into a JS value; a failure rejects with an `Error` whose `code` is
/// ours. A panic in `work` rejects with `ERR_INTERNAL` instead of taking the process down.
pub fn spawn_js<'env, T, V, F, C>(env: &'env Env, work: F, to_js: C) -> JsResult<PromiseRaw<'env, V>>
where
  T: Send + 'static,
  V: ToNapiValue,
  F: Future<Output = JsResult<T>> + Send + 'static,
  C: FnOnce(&'env Env, T) -> JsResult<V> + 'static,
{
  let guarded = async move {
    let result = match tokio::spawn(work).await {
      Ok(result) => result,
      Err(e) => Err(internal_error(e.try_into_panic().ok())),
    };
    Ok::<_, napi::Error>(result)
  };
  env
    .spawn_future_with_callback(guarded, move |env, result| {
      result
        .and_then(|value| to_js(env, value))
        .map_err(|e| rejection(env, e))
    })
    .js()
}

/// Runs a synchronous binding body, turning a panic into an `ERR_INTERNAL` error.
pub fn guard<T>(body: impl FnOnce() -> JsResult<T>) -> JsResult<T> {
  std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or_else(|panic| Err(internal_error(Some(panic))))
}

fn internal_error(panic: Option<Box<dyn std::any::Any + Send>>) -> napi::Error<String> {
  let what = panic
    .as_ref()
    .and_then(|p| {
      p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
    })
    .unwrap_or_else(|| "the task was cancelled".into());
  js_error("ERR_INTERNAL", format!("lkrtc internal error: {what}"))
}

/// A napi error that rejects a Promise with exactly this JS `Error` (its `code` included).
fn rejection(env: &Env, error: napi::Error<String>) -> napi::Error {
  // SAFETY: runs on the JS thread inside the settle callback, `env` is live.
  unsafe {
    let value = JsError::from(error).into_value(env.raw());
    if value.is_null() {
      return napi::Error::new(napi::Status::GenericFailure, "could not create an error object");
    }
    napi::Error::from(Unknown::from_raw_unchecked(env.raw(), value))
  }
}
