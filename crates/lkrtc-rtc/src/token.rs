//! Access tokens: HS256 JWTs carrying LiveKit's video grant, signed with an API key/secret pair.
//! Small enough to write against `hmac`/`sha2` directly rather than pull a JWT stack.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::{RtcError, RtcResult};

/// What a token grants and to whom. Its `Debug` output leaves out the API secret.
#[derive(Clone)]
pub struct TokenOptions {
  /// The API key (the token's issuer).
  pub api_key: String,
  /// The secret that signs the token.
  pub api_secret: String,
  /// Who the token is for.
  pub identity: String,
  /// Display name.
  pub name: Option<String>,
  /// The room it grants joining.
  pub room: String,
  /// Validity from now; LiveKit's default is 6 hours.
  pub ttl: Duration,
  /// Whether it may publish tracks.
  pub can_publish: bool,
  /// Whether it may subscribe to tracks.
  pub can_subscribe: bool,
  /// Whether it may send data messages.
  pub can_publish_data: bool,
  /// Participant metadata.
  pub metadata: Option<String>,
  /// Participant attributes.
  pub attributes: HashMap<String, String>,
  /// Hidden from the other participants.
  pub hidden: bool,
}

impl std::fmt::Debug for TokenOptions {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("TokenOptions")
      .field("api_key", &self.api_key)
      .field("api_secret", &"<redacted>")
      .field("identity", &self.identity)
      .field("name", &self.name)
      .field("room", &self.room)
      .field("ttl", &self.ttl)
      .field("can_publish", &self.can_publish)
      .field("can_subscribe", &self.can_subscribe)
      .field("can_publish_data", &self.can_publish_data)
      .field("metadata", &self.metadata)
      .field("attributes", &self.attributes)
      .field("hidden", &self.hidden)
      .finish()
  }
}

impl Default for TokenOptions {
  fn default() -> Self {
    Self {
      api_key: String::new(),
      api_secret: String::new(),
      identity: String::new(),
      name: None,
      room: String::new(),
      ttl: Duration::from_secs(6 * 3600),
      can_publish: true,
      can_subscribe: true,
      can_publish_data: true,
      metadata: None,
      attributes: HashMap::new(),
      hidden: false,
    }
  }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VideoGrant<'a> {
  room_join: bool,
  room: &'a str,
  can_publish: bool,
  can_subscribe: bool,
  can_publish_data: bool,
  #[serde(skip_serializing_if = "std::ops::Not::not")]
  hidden: bool,
}

#[derive(Serialize)]
struct Claims<'a> {
  iss: &'a str,
  sub: &'a str,
  jti: &'a str,
  nbf: u64,
  exp: u64,
  #[serde(skip_serializing_if = "Option::is_none")]
  name: Option<&'a str>,
  #[serde(skip_serializing_if = "Option::is_none")]
  metadata: Option<&'a str>,
  #[serde(skip_serializing_if = "HashMap::is_empty")]
  attributes: &'a HashMap<String, String>,
  video: VideoGrant<'a>,
}

/// The longest validity a token may have: 100 years (longer is a mistake, and would overflow the
/// token's expiry time).
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 86400);

/// A validity of `seconds` (fractions allowed), if it is from 1 second to [`MAX_TTL`].
pub fn ttl_from_secs(seconds: f64) -> Option<Duration> {
  // NaN fails both comparisons.
  (seconds >= 1.0 && seconds <= MAX_TTL.as_secs_f64()).then(|| Duration::from_secs_f64(seconds))
}

/// The validity `text` names: a number of seconds with an optional unit, `s`, `m`, `h` or `d`
/// (`'90'`, `'90s'`, `'10m'`, `'1.5h'`, `'1d'`), from 1 second to [`MAX_TTL`].
pub fn parse_ttl(text: &str) -> Option<Duration> {
  let text = text.trim();
  let (number, unit) = match text.char_indices().last()? {
    (i, 's') => (&text[..i], 1.0),
    (i, 'm') => (&text[..i], 60.0),
    (i, 'h') => (&text[..i], 3600.0),
    (i, 'd') => (&text[..i], 86400.0),
    _ => (text, 1.0),
  };
  let number = number.trim_end();
  // Digits with an optional fraction: no sign, exponent or `inf`, which `f64::from_str` takes.
  let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
  let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
  if !(digits(whole) && digits(fraction)) {
    return None;
  }
  ttl_from_secs(number.parse::<f64>().ok()? * unit)
}

/// Signs a join token for `options.room` as `options.identity`.
pub fn create_token(options: &TokenOptions) -> RtcResult<String> {
  let required = [
    ("apiKey", &options.api_key),
    ("apiSecret", &options.api_secret),
    ("identity", &options.identity),
    ("room", &options.room),
  ];
  for (name, value) in required {
    if value.is_empty() {
      return Err(RtcError::InvalidArgument {
        name,
        reason: "must not be empty".into(),
      });
    }
  }
  if options.ttl.is_zero() {
    return Err(RtcError::InvalidArgument {
      name: "ttl",
      reason: "must be positive".into(),
    });
  }
  let now = SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .unwrap_or_default()
    .as_secs();
  let claims = Claims {
    iss: &options.api_key,
    sub: &options.identity,
    jti: &options.identity,
    // A little slack for clocks that run behind the server's.
    nbf: now.saturating_sub(10),
    exp: now.saturating_add(options.ttl.as_secs().max(1)),
    name: options.name.as_deref(),
    metadata: options.metadata.as_deref(),
    attributes: &options.attributes,
    video: VideoGrant {
      room_join: true,
      room: &options.room,
      can_publish: options.can_publish,
      can_subscribe: options.can_subscribe,
      can_publish_data: options.can_publish_data,
      hidden: options.hidden,
    },
  };
  let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
  let payload = serde_json::to_vec(&claims).map_err(|e| RtcError::InvalidArgument {
    name: "token",
    reason: e.to_string(),
  })?;
  let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
  let mut mac =
    Hmac::<Sha256>::new_from_slice(options.api_secret.as_bytes()).map_err(|e| RtcError::InvalidArgument {
      name: "apiSecret",
      reason: e.to_string(),
    })?;
  mac.update(signing_input.as_bytes());
  let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
  Ok(format!("{signing_input}.{signature}"))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn token_has_three_parts_and_the_grant() {
    let token = create_token(&TokenOptions {
      api_key: "devkey".into(),
      api_secret: "secret".into(),
      identity: "alice".into(),
      room: "r1".into(),
      ..Default::default()
    })
    .unwrap();
    let parts: Vec<_> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "devkey");
    assert_eq!(claims["video"]["room"], "r1");
    assert_eq!(claims["video"]["roomJoin"], true);
    assert_eq!(claims["video"]["canPublish"], true);
  }

  #[test]
  fn hs256_signature_matches_a_known_vector() {
    // RFC 7515 style check: the signature covers "header.payload" with the secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
    mac.update(b"a.b");
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_eq!(sig.len(), 43);
  }

  #[test]
  fn debug_output_leaves_out_the_api_secret() {
    let options = TokenOptions {
      api_key: "devkey".into(),
      api_secret: "s3cr3t-value".into(),
      identity: "alice".into(),
      ..Default::default()
    };
    let debug = format!("{options:?} {options:#?}");
    assert!(!debug.contains("s3cr3t-value"), "{debug}");
    assert!(debug.contains("devkey") && debug.contains("alice"), "{debug}");
  }

  #[test]
  fn empty_identity_is_rejected() {
    let err = create_token(&TokenOptions {
      api_key: "k".into(),
      api_secret: "s".into(),
      room: "r".into(),
      ..Default::default()
    })
    .unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT");
  }

  #[test]
  fn a_ttl_past_the_end_of_time_saturates_the_expiry_instead_of_wrapping() {
    let token = create_token(&TokenOptions {
      api_key: "k".into(),
      api_secret: "s".into(),
      identity: "i".into(),
      room: "r".into(),
      ttl: Duration::MAX,
      ..Default::default()
    })
    .unwrap();
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["exp"], u64::MAX);
  }

  #[test]
  fn ttl_text_takes_seconds_and_units() {
    assert_eq!(parse_ttl("90"), Some(Duration::from_secs(90)));
    assert_eq!(parse_ttl(" 90s "), Some(Duration::from_secs(90)));
    assert_eq!(parse_ttl("10m"), Some(Duration::from_secs(600)));
    assert_eq!(parse_ttl("1.5h"), Some(Duration::from_secs(5400)));
    assert_eq!(parse_ttl("2 d"), Some(Duration::from_secs(2 * 86400)));
  }

  #[test]
  fn ttl_text_outside_1_second_to_100_years_or_not_a_duration_is_refused() {
    for text in [
      "",
      "0",
      "0.5s",
      "10 weeks",
      "1e3",
      "-5m",
      "inf",
      "NaN",
      ".5m",
      "5.m",
      "99999999999999999999d",
    ] {
      assert_eq!(parse_ttl(text), None, "{text:?}");
    }
    assert_eq!(parse_ttl(&"9".repeat(400)), None);
    assert_eq!(parse_ttl(&format!("{}", MAX_TTL.as_secs())), Some(MAX_TTL));
  }

  #[test]
  fn ttl_seconds_must_be_from_1_to_100_years() {
    assert_eq!(ttl_from_secs(1.0), Some(Duration::from_secs(1)));
    assert_eq!(ttl_from_secs(MAX_TTL.as_secs_f64()), Some(MAX_TTL));
    for seconds in [0.0, 0.5, -1.0, f64::NAN, f64::INFINITY, MAX_TTL.as_secs_f64() + 1.0] {
      assert_eq!(ttl_from_secs(seconds), None, "{seconds}");
    }
  }
}
