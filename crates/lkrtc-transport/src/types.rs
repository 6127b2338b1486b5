//! Plain data of the transport API: configuration, codecs, frames and events.

use std::net::IpAddr;
use std::time::Instant;

pub use str0m::media::Mid;

/// Which of LiveKit's two peer connections a transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportRole {
  /// We offer, the server answers; carries our sendonly video and the `_reliable`/`_lossy`
  /// data channels.
  Publisher,
  /// The server offers recvonly media (and possibly its own data channels); we answer.
  Subscriber,
}

impl TransportRole {
  pub(crate) fn name(self) -> &'static str {
    match self {
      TransportRole::Publisher => "publisher",
      TransportRole::Subscriber => "subscriber",
    }
  }
}

/// How to start a transport. Build with [`TransportConfig::new`] so later fields get defaults.
#[derive(Debug, Clone)]
pub struct TransportConfig {
  /// Publisher or subscriber.
  pub role: TransportRole,
  /// Local IP the UDP socket binds to; it is also the advertised host candidate, so it must
  /// be reachable by the server. [`crate::local_ip_for`] finds the right one.
  pub bind_ip: IpAddr,
  /// Starting point of the send-side bandwidth estimate (publisher only). `None` turns
  /// TWCC-based estimation off. Default 1 Mbit/s.
  pub initial_bitrate_bps: Option<u64>,
  /// Bitrate the estimator probes towards (publisher only). Default 6 Mbit/s.
  pub desired_bitrate_bps: u64,
  /// STUN/TURN servers as the join response lists them. Each TURN URL (`turn:` over UDP or TCP,
  /// `turns:` over TLS) gets an allocation whose relayed address becomes a local candidate;
  /// `stun:` URLs are ignored. Default: none.
  pub ice_servers: Vec<IceServer>,
  /// Trust for `turns:` servers (their certificate must name the URL's host); without it,
  /// `turns:` URLs are skipped. Default: none.
  pub tls_config: Option<std::sync::Arc<rustls::ClientConfig>>,
  /// Use relayed candidates only (`iceTransportPolicy: 'relay'`): no host or TCP candidate is
  /// gathered, so every packet goes through a TURN server. `start` fails with
  /// `ERR_NO_TURN_SERVER` when `ice_servers` has no usable TURN URL. Default false.
  pub relay_only: bool,
}

/// One entry of the join response's `ice_servers` (WebRTC's `RTCIceServer`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServer {
  /// `turn:host:port?transport=udp`, `turns:host:port?transport=tcp`, `stun:host:port`.
  pub urls: Vec<String>,
  /// TURN long-term credential user name.
  pub username: String,
  /// TURN long-term credential password.
  pub credential: String,
}

impl TransportConfig {
  /// A config with defaults for everything but role and bind address.
  pub fn new(role: TransportRole, bind_ip: IpAddr) -> Self {
    TransportConfig {
      role,
      bind_ip,
      initial_bitrate_bps: Some(1_000_000),
      desired_bitrate_bps: 6_000_000,
      ice_servers: Vec::new(),
      tls_config: None,
      relay_only: false,
    }
  }
}

/// The video codec a track is sent as (and, on receive, was sent as).
pub use lkrtc_video::VideoCodec;

/// The codec of a str0m payload type, if lkrtc handles it.
pub(crate) fn codec_of_str0m(c: str0m::format::Codec) -> Option<VideoCodec> {
  match c {
    str0m::format::Codec::Vp8 => Some(VideoCodec::Vp8),
    str0m::format::Codec::H264 => Some(VideoCodec::H264),
    str0m::format::Codec::Vp9 => Some(VideoCodec::Vp9),
    str0m::format::Codec::Av1 => Some(VideoCodec::Av1),
    _ => None,
  }
}

/// One encoded video frame to send.
#[derive(Debug, Clone)]
pub struct OutgoingVideoFrame {
  /// A whole VP8 frame, or an H.264 access unit in Annex-B form (start codes).
  pub data: Vec<u8>,
  /// Whether the encoder made a keyframe (informational; the packetizer reads the bitstream).
  pub keyframe: bool,
  /// Capture time in microseconds; the RTP timestamp is this at 90 kHz. Unix time (within a
  /// minute of the system clock) is sent as is in the RTCP sender reports, so receivers recover
  /// it as `VideoFrame::capture_time_us`; any other monotonic clock is anchored to the Unix
  /// time of the track's first frame.
  pub capture_time_us: i64,
  /// Rotation as LiveKit's `VideoRotation`: 0 = 0°, 1 = 90°, 2 = 180°, 3 = 270°; sent as the
  /// CVO (urn:3gpp:video-orientation) header extension when negotiated.
  pub rotation: u8,
  /// The simulcast layer (RTP stream id) this frame belongs to; `None` for a track published
  /// without layers.
  pub rid: Option<String>,
  /// How many bytes at the end of `data` are a packet trailer (frame metadata, 0: none). The
  /// transport keeps them whole in the frame's last RTP packet, where the server looks for them
  /// when it strips them for subscribers that do not read them.
  pub trailer_len: usize,
}

/// What a transport reports, in order, on the channel returned by `start`. The channel ends
/// when the transport's task ends (after `close`, a fatal failure, or all handles dropped).
#[derive(Debug)]
pub enum TransportEvent {
  /// A local ICE candidate as LiveKit's `candidate_init` JSON, for a `TrickleRequest`. Fires
  /// once per local candidate after the first local SDP was produced; the same candidates are
  /// also written into that SDP.
  LocalCandidate(String),
  /// Publisher: local changes (tracks added/removed, or the data channels right after start)
  /// need an offer: call `create_offer` and send it.
  NegotiationNeeded,
  /// ICE and DTLS are up (first time), or ICE recovered after `Disconnected`.
  Connected,
  /// ICE lost connectivity; it may recover (then `Connected` fires) or an ICE restart is needed.
  Disconnected,
  /// The transport is dead (DTLS failure, remote close, or disconnected for too long). The
  /// task ends after this event.
  Failed {
    /// Why, in words for a log or an error message.
    reason: String,
  },
  /// Publisher: the next frame of this track must be a keyframe: the remote asked (PLI or
  /// FIR), or the track just became writable (connected and negotiated) and earlier frames
  /// were dropped.
  KeyframeRequest {
    /// The track, as returned by `add_video_track`.
    mid: Mid,
    /// The simulcast layer asked for; `None`: every layer of the track.
    rid: Option<String>,
  },
  /// Publisher: the send-side bandwidth estimate (TWCC) or a REMB from the receiver.
  BitrateEstimate {
    /// Bits per second available for all of this transport's media.
    bps: u64,
  },
  /// Publisher: how long the oldest packet of a sent track (layer) has waited in the pacer's
  /// queue (media and retransmissions), sampled every 20 ms while it is not empty, and once
  /// when it empties.
  SendQueue {
    /// The track, as returned by `add_video_track`.
    mid: Mid,
    /// The simulcast layer; `None` for a single-layer track.
    rid: Option<String>,
    /// The oldest packet's wait.
    delay: std::time::Duration,
  },
  /// Publisher: what the transport counted for a sent track (layer) so far, every half second.
  EgressStats {
    /// The track, as returned by `add_video_track`.
    mid: Mid,
    /// The simulcast layer; `None` for a single-layer track.
    rid: Option<String>,
    /// RTP bytes sent, retransmissions included.
    bytes: u64,
    /// RTP packets sent, retransmissions included.
    packets: u64,
    /// NACK messages received.
    nacks: u64,
    /// PLI messages received.
    plis: u64,
    /// FIR messages received.
    firs: u64,
    /// Round-trip time from the receiver's reports, once known.
    rtt: Option<std::time::Duration>,
  },
  /// Subscriber: a remote video m-line started receiving.
  TrackAdded {
    /// SDP mid of the m-line.
    mid: Mid,
    /// msid stream id; LiveKit sends `PA_xxx|TR_xxx` (participant sid | track sid).
    stream_id: String,
    /// msid track id; LiveKit sends the track sid `TR_xxx`.
    track_id: String,
    /// The offer's most preferred codec that the answer kept. A hint only: the sender may use
    /// any codec both sides kept (an SFU offers all it knows), so [`TransportEvent::VideoFrame`]'s
    /// `codec` is what to decode with.
    codec: VideoCodec,
  },
  /// Subscriber: a remote m-line stopped (inactive, rejected, or reused for another track; in
  /// the last case `TrackAdded` for the same mid follows).
  TrackRemoved {
    /// SDP mid of the m-line.
    mid: Mid,
  },
  /// Subscriber: one complete, in-order, depacketized video frame.
  VideoFrame {
    /// SDP mid of the m-line.
    mid: Mid,
    /// VP8 frame or H.264 Annex-B access unit.
    data: Vec<u8>,
    /// Codec of this frame.
    codec: VideoCodec,
    /// Keyframe as detected from the payload.
    keyframe: bool,
    /// False when frames were lost right before this one (a keyframe has been requested).
    contiguous: bool,
    /// RTP timestamp (90 kHz).
    rtp_time: u32,
    /// Sender's wallclock of capture, Unix epoch microseconds, mapped through the latest RTCP
    /// sender report; `None` before the first report.
    capture_time_us: Option<i64>,
    /// When the first packet of the frame arrived.
    network_time: Instant,
    /// CVO rotation in LiveKit's numbering (0..=3, see [`OutgoingVideoFrame::rotation`]).
    rotation: u8,
  },
  /// Subscriber: what the transport counted for a received video m-line so far (every half
  /// second while it receives).
  IngressStats {
    /// SDP mid of the m-line.
    mid: Mid,
    /// RTP bytes received (retransmissions included).
    bytes: u64,
    /// RTP packets received.
    packets: u64,
    /// Packets never received, not even retransmitted.
    lost: u64,
    /// NACK messages sent.
    nacks: u64,
    /// PLI messages sent.
    plis: u64,
    /// FIR messages sent.
    firs: u64,
    /// Interarrival jitter, seconds.
    jitter_s: f64,
  },
  /// A data channel message (either transport: LiveKit may deliver data on the subscriber).
  DataReceived {
    /// True for `_reliable`, false for `_lossy`.
    reliable: bool,
    /// The message bytes.
    data: Vec<u8>,
  },
}
