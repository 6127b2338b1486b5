//! ICE candidates in LiveKit's trickle form (`RTCIceCandidateInit` JSON) and the choice of the
//! local address to advertise.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use serde::{Deserialize, Serialize};
use str0m::net::{Protocol, TcpType};
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

/// Port of an active TCP candidate: it connects out from an ephemeral port, so RFC 6544 has it
/// advertise the discard port 9. Packets of its connections are handed to str0m as addressed
/// to this candidate.
pub(crate) const TCP_ACTIVE_PORT: u16 = 9;

/// The local active ICE-TCP candidate on `ip` (RFC 6544): it opens connections to the
/// remote's passive candidates and never listens.
pub(crate) fn tcp_active_candidate(ip: IpAddr) -> Result<Candidate, TransportError> {
  Candidate::builder()
    .tcp()
    .host(SocketAddr::new(ip, TCP_ACTIVE_PORT))
    .tcptype(TcpType::Active)
    .build()
    .map_err(|e| TransportError::Candidate(format!("{e}: tcp active {ip}")))
}

/// Whether a remote candidate is one lkrtc can reach: UDP, or TCP that accepts connections
/// (passive; an active or simultaneous-open remote would need a listening socket). TLS over
/// TCP (`ssltcp`) is not spoken.
pub(crate) fn reachable(c: &Candidate) -> bool {
  match c.proto() {
    Protocol::Udp => true,
    Protocol::Tcp => c.tcptype() == Some(TcpType::Passive),
    _ => false,
  }
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
  fn tcp_active_candidate_advertises_port_9_active() {
    let c = tcp_active_candidate("10.0.0.2".parse().unwrap()).unwrap();
    let line = c.to_sdp_string();
    assert!(
      line.contains(" tcp ") && line.contains("10.0.0.2 9 typ host tcptype active"),
      "{line}"
    );
  }

  #[test]
  fn only_passive_tcp_and_udp_candidates_are_reachable() {
    let parse = |line: &str| Candidate::from_sdp_string(line).unwrap();
    assert!(reachable(&parse("candidate:1 1 udp 2130706431 10.0.0.1 7882 typ host")));
    assert!(reachable(&parse(
      "candidate:2 1 tcp 1671430143 10.0.0.1 7881 typ host tcptype passive"
    )));
    assert!(!reachable(&parse(
      "candidate:3 1 tcp 1671430143 10.0.0.1 9 typ host tcptype active"
    )));
    assert!(!reachable(&parse(
      "candidate:4 1 ssltcp 1671430143 10.0.0.1 443 typ host"
    )));
  }

  #[test]
  fn loopback_server_yields_loopback() {
    let ip = local_ip_for("127.0.0.1:7880".parse().unwrap()).unwrap();
    assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
  }
}
