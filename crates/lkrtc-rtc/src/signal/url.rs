//! Builds the signalling URL (`<base>/rtc?...`) from what the user typed, and checks it first so a
//! bad URL fails before any I/O with `ERR_INVALID_URL`.

use url::Url;

use crate::{RtcError, RtcResult};

/// The LiveKit signalling protocol version lkrtc speaks (dual peer connection, PingReq/Pong).
pub const PROTOCOL_VERSION: u32 = 16;
/// Reported to the server as the SDK name.
pub const SDK_NAME: &str = "rust";

/// Join parameters that travel in the URL's query string.
#[derive(Debug, Clone)]
pub struct JoinParams {
  pub auto_subscribe: bool,
  pub adaptive_stream: bool,
  pub sdk_version: String,
  /// `Some(participant sid)` when resuming a session.
  pub reconnect_sid: Option<String>,
  /// Announce `CAP_PACKET_TRAILER`: frames may keep their packet trailer (frame metadata), which
  /// lkrtc strips itself.
  pub packet_trailer: bool,
}

/// Parses and normalises a server URL: `http(s)` becomes `ws(s)`, other schemes are refused.
/// Credentials in the URL (`user:password@`) and an `access_token` in its query are refused too:
/// the token is the `token` argument, and neither belongs in a URL that may be logged. Other
/// query parameters and the fragment are dropped. Error messages never quote the URL.
pub fn parse_server_url(url: &str) -> RtcResult<Url> {
  let invalid = |reason: String| RtcError::InvalidUrl { reason };
  let mut parsed =
    Url::parse(url.trim()).map_err(|e| invalid(format!("{e} (expected ws://, wss://, http:// or https://)")))?;
  let scheme = match parsed.scheme() {
    "ws" | "http" => "ws",
    "wss" | "https" => "wss",
    other => {
      return Err(invalid(format!(
        "unsupported scheme {other:?} (expected ws, wss, http or https)"
      )))
    }
  };
  if parsed.host_str().is_none_or(str::is_empty) {
    return Err(invalid("missing host".into()));
  }
  if !parsed.username().is_empty() || parsed.password().is_some() {
    return Err(invalid(
      "credentials in the URL are not supported (expected scheme://host[:port][/path]; pass the access token as the token)"
        .into(),
    ));
  }
  if parsed.query_pairs().any(|(key, _)| key == "access_token") {
    return Err(invalid(
      "the URL carries an access_token (expected the server URL without it; pass the access token as the token)".into(),
    ));
  }
  parsed
    .set_scheme(scheme)
    .map_err(|_| invalid("cannot set scheme".into()))?;
  parsed.set_query(None);
  parsed.set_fragment(None);
  Ok(parsed)
}

/// `<base>/rtc?access_token=..&auto_subscribe=..&sdk=..&version=..&protocol=..`
pub fn signal_url(base: &Url, token: &str, params: &JoinParams) -> Url {
  let mut url = path_join(base, "rtc");
  {
    let mut q = url.query_pairs_mut();
    q.append_pair("access_token", token)
      .append_pair("auto_subscribe", if params.auto_subscribe { "1" } else { "0" })
      .append_pair("adaptive_stream", if params.adaptive_stream { "1" } else { "0" })
      .append_pair("sdk", SDK_NAME)
      .append_pair("version", &params.sdk_version)
      .append_pair("protocol", &PROTOCOL_VERSION.to_string())
      .append_pair("os", std::env::consts::OS);
    if params.packet_trailer {
      q.append_pair("capabilities", "CAP_PACKET_TRAILER");
    }
    if let Some(sid) = &params.reconnect_sid {
      q.append_pair("reconnect", "1").append_pair("sid", sid);
    }
  }
  url
}

/// `http(s)://<base>/rtc/validate?access_token=..`: answers why a join would be refused.
pub fn validate_url(base: &Url, token: &str) -> Url {
  let mut url = path_join(base, "rtc/validate");
  let http = if base.scheme() == "wss" { "https" } else { "http" };
  let _ = url.set_scheme(http);
  url.query_pairs_mut().append_pair("access_token", token);
  url
}

/// The URL without its query (which holds the token) and without credentials: safe to log or
/// put in an error.
pub fn redact(url: &Url) -> String {
  let mut u = url.clone();
  u.set_query(None);
  u.set_fragment(None);
  let _ = u.set_username("");
  let _ = u.set_password(None);
  u.to_string()
}

/// `host:port` of the URL, for error messages.
pub fn address(url: &Url) -> String {
  format!(
    "{}:{}",
    url.host_str().unwrap_or(""),
    url.port_or_known_default().unwrap_or(0)
  )
}

fn path_join(base: &Url, tail: &str) -> Url {
  let mut url = base.clone();
  let path = base.path().trim_end_matches('/');
  url.set_path(&format!("{path}/{tail}"));
  url
}

#[cfg(test)]
mod tests {
  use super::*;

  fn params() -> JoinParams {
    JoinParams {
      auto_subscribe: true,
      adaptive_stream: false,
      sdk_version: "0.1.0".into(),
      reconnect_sid: None,
      packet_trailer: true,
    }
  }

  #[test]
  fn http_becomes_ws_and_rtc_is_appended() {
    let base = parse_server_url("http://127.0.0.1:7880").unwrap();
    let url = signal_url(&base, "tok", &params());
    assert_eq!(url.scheme(), "ws");
    assert_eq!(url.path(), "/rtc");
    let q: Vec<_> = url.query_pairs().collect();
    assert!(q.iter().any(|(k, v)| k == "access_token" && v == "tok"));
    assert!(q.iter().any(|(k, v)| k == "protocol" && v == "16"));
    assert!(q.iter().any(|(k, v)| k == "auto_subscribe" && v == "1"));
    assert!(q.iter().any(|(k, v)| k == "capabilities" && v == "CAP_PACKET_TRAILER"));
  }

  #[test]
  fn without_frame_metadata_no_capability_is_announced() {
    let base = parse_server_url("http://127.0.0.1:7880").unwrap();
    let url = signal_url(
      &base,
      "tok",
      &JoinParams {
        packet_trailer: false,
        ..params()
      },
    );
    assert!(!url.query_pairs().any(|(k, _)| k == "capabilities"));
  }

  #[test]
  fn a_path_prefix_is_kept() {
    let base = parse_server_url("wss://example.com/lk/").unwrap();
    assert_eq!(signal_url(&base, "t", &params()).path(), "/lk/rtc");
    assert_eq!(
      validate_url(&base, "t").as_str(),
      "https://example.com/lk/rtc/validate?access_token=t"
    );
  }

  #[test]
  fn bad_urls_are_invalid() {
    for bad in [
      "",
      "not a url",
      "ftp://host",
      "ws://",
      "file:///tmp/x",
      "localhost:7880",
    ] {
      let err = parse_server_url(bad).unwrap_err();
      assert_eq!(err.code(), "ERR_INVALID_URL", "{bad}");
    }
  }

  #[test]
  fn every_supported_scheme_is_accepted_and_normalised() {
    for (given, scheme) in [
      ("ws://h:1", "ws"),
      ("http://h:1", "ws"),
      ("wss://h:1", "wss"),
      ("https://h:1", "wss"),
      ("  WSS://H:1  ", "wss"),
    ] {
      assert_eq!(parse_server_url(given).unwrap().scheme(), scheme, "{given}");
    }
  }

  #[test]
  fn other_schemes_are_invalid_and_named() {
    for (bad, scheme) in [
      ("ftp://host", "ftp"),
      ("tcp://host:7880", "tcp"),
      ("mailto:a@b", "mailto"),
    ] {
      let err = parse_server_url(bad).unwrap_err();
      assert_eq!(err.code(), "ERR_INVALID_URL", "{bad}");
      assert!(
        err.to_string().contains(&format!("unsupported scheme {scheme:?}")),
        "{err}"
      );
    }
  }

  #[test]
  fn an_empty_host_is_invalid() {
    for bad in ["ws://", "wss://:443", "http://"] {
      let err = parse_server_url(bad).unwrap_err();
      assert_eq!(err.code(), "ERR_INVALID_URL", "{bad}");
    }
  }

  #[test]
  fn credentials_in_the_url_are_invalid_and_not_quoted() {
    for bad in [
      "wss://alice:hunter2@example.com",
      "wss://alice@example.com",
      "ws://:hunter2@127.0.0.1:7880",
    ] {
      let err = parse_server_url(bad).unwrap_err();
      assert_eq!(err.code(), "ERR_INVALID_URL", "{bad}");
      let message = err.to_string();
      assert!(message.contains("credentials"), "{message}");
      assert!(!message.contains("hunter2") && !message.contains("alice"), "{message}");
    }
  }

  #[test]
  fn an_access_token_in_the_url_is_invalid_and_not_quoted() {
    for bad in [
      "wss://example.com?access_token=eyJ.secret.sig",
      "wss://example.com/rtc?auto_subscribe=1&access_token=eyJ.secret.sig",
    ] {
      let err = parse_server_url(bad).unwrap_err();
      assert_eq!(err.code(), "ERR_INVALID_URL", "{bad}");
      let message = err.to_string();
      assert!(message.contains("access_token"), "{message}");
      assert!(!message.contains("eyJ.secret.sig"), "{message}");
    }
  }

  #[test]
  fn other_query_parameters_and_the_fragment_are_dropped() {
    let base = parse_server_url("wss://example.com/lk?region=eu#top").unwrap();
    assert_eq!(base.as_str(), "wss://example.com/lk");
  }

  #[test]
  fn redaction_drops_the_token() {
    let base = parse_server_url("ws://h:1").unwrap();
    let url = signal_url(&base, "secret-token", &params());
    assert!(!redact(&url).contains("secret-token"));
  }
}
