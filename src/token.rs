//! Access tokens for joining rooms (lkrtc-rtc's HS256 signer).

use std::collections::HashMap;

use lkrtc_rtc as rtc;
use napi::bindgen_prelude::{Either, Result};
use napi_derive::napi;

use crate::error::{describe_number, describe_string, js_error, JsResultExt};

/// What a token grants and to whom. `ttl`: seconds, or a duration such as `'10m'` (default 6
/// hours); absent flags take lkrtc-rtc's defaults.
#[napi(object)]
pub struct NativeTokenOptions {
  pub api_key: String,
  pub api_secret: String,
  pub identity: String,
  pub room: String,
  pub name: Option<String>,
  #[napi(ts_type = "number | string")]
  pub ttl: Option<Either<f64, String>>,
  pub can_publish: Option<bool>,
  pub can_subscribe: Option<bool>,
  pub can_publish_data: Option<bool>,
  pub metadata: Option<String>,
  pub attributes: Option<HashMap<String, String>>,
  pub hidden: Option<bool>,
}

/// Signs a join token.
#[napi]
pub fn native_create_token(options: NativeTokenOptions) -> Result<String, String> {
  let defaults = rtc::TokenOptions::default();
  let invalid_ttl = |given: String| {
    js_error(
      "ERR_INVALID_ARGUMENT",
      format!(
        "invalid ttl: expected a number of seconds from 1 to {} (100 years) or a duration such as '10m', got {given}",
        rtc::MAX_TTL.as_secs()
      ),
    )
  };
  let ttl = match &options.ttl {
    None => defaults.ttl,
    Some(Either::A(seconds)) => rtc::ttl_from_secs(*seconds).ok_or_else(|| invalid_ttl(describe_number(*seconds)))?,
    Some(Either::B(text)) => rtc::parse_ttl(text).ok_or_else(|| invalid_ttl(describe_string(text)))?,
  };
  rtc::create_token(&rtc::TokenOptions {
    api_key: options.api_key,
    api_secret: options.api_secret,
    identity: options.identity,
    name: options.name,
    room: options.room,
    ttl,
    can_publish: options.can_publish.unwrap_or(defaults.can_publish),
    can_subscribe: options.can_subscribe.unwrap_or(defaults.can_subscribe),
    can_publish_data: options.can_publish_data.unwrap_or(defaults.can_publish_data),
    metadata: options.metadata,
    attributes: options.attributes.unwrap_or_default(),
    hidden: options.hidden.unwrap_or(defaults.hidden),
  })
  .js()
}
