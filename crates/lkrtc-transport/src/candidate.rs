//! ICE candidates in LiveKit's trickle form (`RTCIceCandidateInit` JSON) and the choice of the
//! local address to advertise.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use serde::{Deserialize, Serialize};
use str0m::Candidate;

use crate::TransportError;

/// `RTCIceCandidateInit`, as LiveKit puts it into `TrickleRequest.candidateInit`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateInit {
  candidate: String,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  sdp_mid: Option<String>,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  sdp_m_line_index: Option<u32>,
  #[serde(default, skip_serializing_if = "Option::is_none")]
  username_fragment: Option<String>,
}

/// Parses trickle JSON. `Ok(None)` for "end of candidates" (an empty candidate).
pub(crate) fn parse_candidate_init(json: &str) -> Result<Option<Candidate>, TransportError> {
  let init: CandidateInit =
    serde_json::from_str(json).map_err(|e| TransportError::Candidate(format!("{e}: {json}")))?;
  let line = init.candidate.trim();
  let line = line.strip_prefix("a=").unwrap_or(line);
  if line.is_empty() {
    return Ok(None);
  }
  Candidate::from_sdp_string(line)
    .map(Some)
    .map_err(|e| TransportError::Candidate(format!("{e}: {line}")))
}

/// Formats a local candidate as trickle JSON for the m-line `mid` (the first BUNDLE m-line).
pub(crate) fn candidate_init_json(c: &Candidate, mid: Option<&str>) -> String {
  let init = CandidateInit {
    candidate: c.to_sdp_string(),
    sdp_mid: mid.map(str::to_owned),
    sdp_m_line_index: Some(0),
    username_fragment: None,
  };
  // Serializing a struct of strings cannot fail.
  serde_json::to_string(&init).unwrap_or_default()
}

/// The local IP the OS would use to reach `remote`: a UDP socket is "connected" (no packet is
/// sent) and its local address read back. A server on 127.0.0.1 yields 127.0.0.1.
pub fn local_ip_for(remote: SocketAddr) -> io::Result<IpAddr> {
  let any: SocketAddr = match remote {
    SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
    SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
  };
  let socket = UdpSocket::bind(any)?;
  socket.connect(remote)?;
  Ok(socket.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn parses_livekit_trickle_json() {
    let json = r#"{"candidate":"candidate:1 1 udp 2130706431 127.0.0.1 7882 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":null}"#;
    let c = parse_candidate_init(json).unwrap().unwrap();
    assert_eq!(c.addr(), "127.0.0.1:7882".parse().unwrap());
  }

  #[test]
  fn end_of_candidates_is_ignored() {
    assert!(parse_candidate_init(r#"{"candidate":"","sdpMid":"0"}"#)
      .unwrap()
      .is_none());
  }

  #[test]
  fn garbage_is_an_error_with_code() {
    let e = parse_candidate_init("{").unwrap_err();
    assert_eq!(e.code(), "ERR_ICE_CANDIDATE");
    let e = parse_candidate_init(r#"{"candidate":"candidate:nonsense"}"#).unwrap_err();
    assert_eq!(e.code(), "ERR_ICE_CANDIDATE");
  }

  #[test]
  fn round_trips_local_candidate() {
    let c = Candidate::host("127.0.0.1:5000".parse().unwrap(), "udp").unwrap();
    let json = candidate_init_json(&c, Some("0"));
    let back = parse_candidate_init(&json).unwrap().unwrap();
    assert_eq!(back.addr(), c.addr());
    assert!(json.contains(r#""sdpMid":"0""#));
  }

  #[test]
  fn loopback_server_yields_loopback() {
    let ip = local_ip_for("127.0.0.1:7880".parse().unwrap()).unwrap();
    assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
  }
}
