//! The one error type of lkrtc-rtc. Each variant has a stable code (`ERR_...`) that the Node
//! binding exposes as `error.code`. Messages never carry an access token.

use lkrtc_video::VideoError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
  #[error("invalid url: {reason}")]
  InvalidUrl { reason: String },
  #[error("connection refused by {address}")]
  ConnectionRefused { address: String },
  #[error("could not connect to {address}: {reason}")]
  ConnectionFailed { address: String, reason: String },
  /// The TLS handshake of a `wss://` connection failed: an untrusted or expired certificate, a
  /// certificate for another host name, no common protocol version, ...
  #[error("TLS handshake with {address} failed: {reason}")]
  Tls { address: String, reason: String },
  /// `RoomOptions::ca_certificates` is not usable: not PEM, no certificate in it, or a
  /// certificate that does not parse.
  #[error("invalid CA certificates: {reason}")]
  InvalidCertificate { reason: String },
  #[error("unauthorized: {reason}")]
  Unauthorized { reason: String },
  #[error("could not connect within {timeout_ms} ms ({stage})")]
  ConnectTimeout { timeout_ms: u64, stage: &'static str },
  #[error("server error {status}: {reason}")]
  Server { status: u16, reason: String },
  #[error("signalling error: {0}")]
  Signal(String),
  #[error("the server ended the session: {reason}")]
  Disconnected { reason: String },
  #[error("not connected")]
  NotConnected,
  #[error("transport error: {0}")]
  Transport(String),
  #[error("codec error: {0}")]
  Codec(String),
  #[error("the server did not confirm the track {name:?} within {timeout_ms} ms")]
  PublishTimeout { name: String, timeout_ms: u64 },
  #[error("publishing was refused: {reason}")]
  PublishRefused { reason: String },
  #[error("no published track with sid {sid:?}")]
  TrackNotFound { sid: String },
  #[error("the track {name:?} is already published")]
  AlreadyPublished { name: String },
  #[error(
    "frame size mismatch: the source is {expected_width}x{expected_height}, the frame is {given_width}x{given_height}"
  )]
  FrameSizeMismatch {
    expected_width: u32,
    expected_height: u32,
    given_width: u32,
    given_height: u32,
  },
  #[error("{what} is closed")]
  Closed { what: &'static str },
  #[error("invalid argument {name}: {reason}")]
  InvalidArgument { name: &'static str, reason: String },
  #[error("{what} must be called inside a tokio runtime")]
  NoRuntime { what: &'static str },
  #[error(transparent)]
  Video(#[from] VideoError),
}

impl RtcError {
  /// The stable code of this error, e.g. `ERR_UNAUTHORIZED`.
  pub fn code(&self) -> &'static str {
    match self {
      Self::InvalidUrl { .. } => "ERR_INVALID_URL",
      Self::ConnectionRefused { .. } => "ERR_CONNECTION_REFUSED",
      Self::ConnectionFailed { .. } => "ERR_CONNECTION_FAILED",
      Self::Tls { .. } => "ERR_TLS",
      Self::InvalidCertificate { .. } => "ERR_INVALID_CERTIFICATE",
      Self::Unauthorized { .. } => "ERR_UNAUTHORIZED",
      Self::ConnectTimeout { .. } => "ERR_CONNECT_TIMEOUT",
      Self::Server { .. } => "ERR_SERVER",
      Self::Signal(_) => "ERR_SIGNAL",
      Self::Disconnected { .. } => "ERR_DISCONNECTED",
      Self::NotConnected => "ERR_NOT_CONNECTED",
      Self::Transport(_) => "ERR_TRANSPORT",
      Self::Codec(_) => "ERR_CODEC",
      Self::PublishTimeout { .. } => "ERR_PUBLISH_TIMEOUT",
      Self::PublishRefused { .. } => "ERR_PUBLISH_REFUSED",
      Self::TrackNotFound { .. } => "ERR_TRACK_NOT_FOUND",
      Self::AlreadyPublished { .. } => "ERR_ALREADY_PUBLISHED",
      Self::FrameSizeMismatch { .. } => "ERR_FRAME_SIZE_MISMATCH",
      Self::Closed { .. } => "ERR_CLOSED",
      Self::InvalidArgument { .. } => "ERR_INVALID_ARGUMENT",
      Self::NoRuntime { .. } => "ERR_NO_RUNTIME",
      Self::Video(e) => e.code(),
    }
  }
}

pub type RtcResult<T> = Result<T, RtcError>;
