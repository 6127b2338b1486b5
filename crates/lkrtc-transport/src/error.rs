//! The one error type of lkrtc-transport; `code()` is stable and surfaces in JS as `error.code`.

/// Errors of a peer transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
  /// A remote SDP could not be parsed or was refused by the WebRTC stack.
  #[error("invalid SDP: {0}")]
  Sdp(String),
  /// A trickled ICE candidate could not be parsed.
  #[error("invalid ICE candidate: {0}")]
  Candidate(String),
  /// The transport's task has ended (closed, failed, or every handle dropped).
  #[error("transport is closed")]
  Closed,
  /// The call does not fit this transport's role (e.g. `apply_offer` on the publisher).
  #[error("{op} is not available on the {role} transport")]
  WrongRole {
    /// The operation that was attempted.
    op: &'static str,
    /// The role of the transport it was attempted on.
    role: &'static str,
  },
  /// Offer/answer out of order (e.g. an answer with no offer outstanding).
  #[error("negotiation state: {0}")]
  Negotiation(String),
  /// `create_offer` found nothing to negotiate (no track, data channel or ICE change).
  #[error("nothing to negotiate")]
  NothingToNegotiate,
  /// The mid names no track of this transport.
  #[error("unknown track mid {0}")]
  UnknownTrack(String),
  /// Binding or using the UDP socket failed.
  #[error("socket: {0}")]
  Io(#[from] std::io::Error),
  /// Any other failure of the WebRTC stack.
  #[error("webrtc: {0}")]
  Rtc(String),
  /// Relay-only ICE was asked for, but no TURN server lkrtc can use was given.
  #[error("relay-only ICE needs a TURN server (turn:host:port?transport=udp|tcp, or turns:host:port) among the ICE servers; got {0}")]
  NoTurnServer(String),
  /// Too many data-channel bytes wait for the link already.
  #[error("{waiting} bytes of data messages already wait to be sent (at most {limit}); wait and send again")]
  DataBacklog {
    /// Bytes waiting on the channel.
    waiting: usize,
    /// The most that may wait.
    limit: usize,
  },
}

impl TransportError {
  /// A stable, machine-readable code.
  pub fn code(&self) -> &'static str {
    match self {
      TransportError::Sdp(_) => "ERR_SDP",
      TransportError::Candidate(_) => "ERR_ICE_CANDIDATE",
      TransportError::Closed => "ERR_TRANSPORT_CLOSED",
      TransportError::WrongRole { .. } => "ERR_WRONG_ROLE",
      TransportError::Negotiation(_) => "ERR_NEGOTIATION_STATE",
      TransportError::NothingToNegotiate => "ERR_NOTHING_TO_NEGOTIATE",
      TransportError::DataBacklog { .. } => "ERR_DATA_BACKLOG",
      TransportError::UnknownTrack(_) => "ERR_UNKNOWN_TRACK",
      TransportError::Io(_) => "ERR_IO",
      TransportError::NoTurnServer(_) => "ERR_NO_TURN_SERVER",
      TransportError::Rtc(_) => "ERR_RTC",
    }
  }
}

impl From<str0m::RtcError> for TransportError {
  fn from(e: str0m::RtcError) -> Self {
    match e {
      str0m::RtcError::RemoteSdp(s) => TransportError::Sdp(s),
      str0m::RtcError::Sdp(e) => TransportError::Sdp(e.to_string()),
      str0m::RtcError::ChangesOutOfOrder => {
        TransportError::Negotiation("answer does not belong to the last offer".into())
      }
      other => TransportError::Rtc(other.to_string()),
    }
  }
}
