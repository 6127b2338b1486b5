//! Access tokens for joining rooms (lkrtc-rtc's HS256 signer).

use std::collections::HashMap;
use std::time::Duration;

use lkrtc_rtc as rtc;
use napi::bindgen_prelude::Result;
use napi_derive::napi;

use crate::error::{js_error, JsResultExt};

/// What a token grants and to whom. `ttl` is in seconds (default 6 hours).
#[napi(object)]
pub struct NativeTokenOptions {
  pub api_key: String,
  pub api_secret: String,
  pub identity: String,
  pub room: String,
  pub name: Option<String>,
  pub ttl: Option<f64>,
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
  // `try_from`: `Duration::from_secs_f64` panics past u64::MAX seconds.
  let ttl = match options.ttl.map(|s| (s, Duration::try_from_secs_f64(s))) {
    None => defaults.ttl,
    Some((s, Ok(ttl))) if s >= 1.0 => ttl,
    Some((s, _)) => {
      return Err(js_error(
        "ERR_INVALID_ARGUMENT",
        format!("invalid ttl: expected a number of seconds >= 1, got {s}"),
      ))
    }
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
    hidden: options.hidden.unwrap_or(false),
  })
  .js()
}
