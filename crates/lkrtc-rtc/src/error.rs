//! The one error type of lkrtc-rtc. Each variant has a stable code (`ERR_...`) that the Node
//! binding exposes as `error.code`. Messages never carry an access token.

use lkrtc_video::VideoError;

/// Everything that can go wrong in lkrtc-rtc; [`RtcError::code`] gives its stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcError {
  /// The server URL does not parse or has an unsupported scheme.
  #[error("invalid url: {reason}")]
  InvalidUrl {
    /// What is wrong with it.
    reason: String,
  },
  /// Nothing listens at the server address.
  #[error("connection refused by {address}")]
  ConnectionRefused {
    /// The address tried.
    address: String,
  },
  /// The connection to the server failed for another reason.
  #[error("could not connect to {address}: {reason}")]
  ConnectionFailed {
    /// The address tried.
    address: String,
    /// What failed.
    reason: String,
  },
  /// The TLS handshake of a `wss://` connection failed: an untrusted or expired certificate, a
  /// certificate for another host name, no common protocol version, ...
  #[error("TLS handshake with {address} failed: {reason}")]
  Tls {
    /// The address tried.
    address: String,
    /// What failed.
    reason: String,
  },
  /// `RoomOptions::ca_certificates` is not usable: not PEM, no certificate in it, or a
  /// certificate that does not parse.
  #[error("invalid CA certificates: {reason}")]
  InvalidCertificate {
    /// What is wrong with them.
    reason: String,
  },
  /// The server refused the access token.
  #[error("unauthorized: {reason}")]
  Unauthorized {
    /// The server's reason.
    reason: String,
  },
  /// A connect did not finish within its timeout; `stage` says where it stood.
  #[error("could not connect within {timeout_ms} ms ({stage})")]
  ConnectTimeout {
    /// The timeout.
    timeout_ms: u64,
    /// What was awaited when it ran out.
    stage: &'static str,
  },
  /// The server answered the WebSocket upgrade with an HTTP error.
  #[error("server error {status}: {reason}")]
  Server {
    /// The HTTP status.
    status: u16,
    /// The server's reason.
    reason: String,
  },
  /// The signal connection broke or carried something unexpected.
  #[error("signalling error: {0}")]
  Signal(String),
  /// The session ended; `reason` is LiveKit's `DisconnectReason` name.
  #[error("the server ended the session: {reason}")]
  Disconnected {
    /// LiveKit's `DisconnectReason` name.
    reason: String,
  },
  /// The room is not connected (never was, or has disconnected).
  #[error("not connected")]
  NotConnected,
  /// A peer connection failed.
  #[error("transport error: {0}")]
  Transport(String),
  /// Relayed ICE was asked for (`IceTransportPolicy::Relay`), but the server offered no TURN
  /// server lkrtc can use.
  #[error("{reason}")]
  NoTurnServer {
    /// What the server offered.
    reason: String,
  },
  /// An encoder or decoder failed.
  #[error("codec error: {0}")]
  Codec(String),
  /// The server did not confirm a published track in time.
  #[error("the server did not confirm the track {name:?} within {timeout_ms} ms")]
  PublishTimeout {
    /// The track's name.
    name: String,
    /// The time allowed.
    timeout_ms: u64,
  },
  /// The server or the token does not allow publishing.
  #[error("publishing was refused: {reason}")]
  PublishRefused {
    /// Why.
    reason: String,
  },
  /// No track with this sid.
  #[error("no published track with sid {sid:?}")]
  TrackNotFound {
    /// The sid asked for.
    sid: String,
  },
  /// The track is published already.
  #[error("the track {name:?} is already published")]
  AlreadyPublished {
    /// The track's name.
    name: String,
  },
  /// The object was closed.
  #[error("{what} is closed")]
  Closed {
    /// What was closed.
    what: &'static str,
  },
  /// An argument is out of its range.
  #[error("invalid argument {name}: {reason}")]
  InvalidArgument {
    /// The argument's name.
    name: &'static str,
    /// What was expected and given.
    reason: String,
  },
  /// Too many data messages wait to be sent already.
  #[error("{reason}")]
  DataBacklog {
    /// How much waits, and the bound.
    reason: String,
  },
  /// Called outside a tokio runtime.
  #[error("{what} must be called inside a tokio runtime")]
  NoRuntime {
    /// The call.
    what: &'static str,
  },
  /// A frame operation failed (lkrtc-video's error).
  #[error(transparent)]
  Video(#[from] VideoError),
  /// A pre-encoded frame that its codec's bitstream syntax refuses (lkrtc-codec's error).
  #[error(transparent)]
  Bitstream(lkrtc_codec::CodecError),
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
      Self::NoTurnServer { .. } => "ERR_NO_TURN_SERVER",
      Self::Codec(_) => "ERR_CODEC",
      Self::PublishTimeout { .. } => "ERR_PUBLISH_TIMEOUT",
      Self::PublishRefused { .. } => "ERR_PUBLISH_REFUSED",
      Self::TrackNotFound { .. } => "ERR_TRACK_NOT_FOUND",
      Self::AlreadyPublished { .. } => "ERR_ALREADY_PUBLISHED",
      Self::Closed { .. } => "ERR_CLOSED",
      Self::InvalidArgument { .. } => "ERR_INVALID_ARGUMENT",
      Self::NoRuntime { .. } => "ERR_NO_RUNTIME",
      Self::DataBacklog { .. } => "ERR_DATA_BACKLOG",
      Self::Video(e) => e.code(),
      Self::Bitstream(e) => e.code(),
    }
  }
}

/// The result of lkrtc-rtc's fallible calls.
pub type RtcResult<T> = Result<T, RtcError>;
