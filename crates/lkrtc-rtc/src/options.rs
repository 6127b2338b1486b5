//! Options for connecting and publishing, and LiveKit's default video encodings per resolution.

use std::time::Duration;

use crate::publication::TrackSource;

/// How to join a room.
#[derive(Debug, Clone)]
pub struct RoomOptions {
  /// Subscribe to every published track automatically.
  pub auto_subscribe: bool,
  /// Ask the server to adapt received video to how it is displayed (LiveKit's `adaptive_stream`).
  pub adaptive_stream: bool,
  /// Bound on the whole connect: WebSocket, `JoinResponse` and the first peer connection.
  pub connect_timeout: Duration,
  /// Resolve `connect` only once the primary peer connection is up (the default), so media can
  /// flow at once. When false, `connect` resolves right after the `JoinResponse` and the peer
  /// connections come up in the background (a failure then ends the room with
  /// `Disconnected { reason: "MEDIA_FAILURE" }`). For signalling-only use, e.g. a server that
  /// speaks the signal protocol but no WebRTC.
  pub wait_for_peer_connection: bool,
  /// Extra certificate authorities to trust for `wss://` (and `https://`) servers, as PEM text
  /// holding one or more `-----BEGIN CERTIFICATE-----` sections: for a server whose certificate
  /// is signed by a private CA, or is self-signed (then pass that certificate; it must not be
  /// marked `CA:TRUE`). They are trusted in addition to the public roots (webpki-roots), never
  /// instead of them. Text that is not PEM certificates fails
  /// `Room::connect` with `ERR_INVALID_CERTIFICATE` before any I/O.
  pub ca_certificates: Option<String>,
  /// Obey the server's `SubscribedQualityUpdate`: a simulcast layer no subscriber wants is
  /// paused (its encoder does not run) and comes back with a keyframe when one does. Saves
  /// the publisher's CPU and uplink when subscribers watch small (thumbnails, a thin link).
  pub dynacast: bool,
  /// Receive frame metadata (LiveKit's packet trailer): lkrtc tells the server it reads the
  /// trailer and reports it on each frame. Off, the server strips it before it reaches lkrtc
  /// and frames carry no metadata. Sending metadata does not depend on it.
  pub frame_metadata: bool,
  /// Which local ICE candidates the peer connections use (WebRTC's `iceTransportPolicy`).
  pub ice_transport_policy: IceTransportPolicy,
}

/// Which local ICE candidates to use, as WebRTC's `RTCIceTransportPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IceTransportPolicy {
  /// Host (UDP and TCP) and relayed candidates: direct paths first, the TURN servers of the
  /// join response when nothing direct passes.
  #[default]
  All,
  /// Relayed candidates only: every packet goes through a TURN server of the join response.
  /// Connecting fails with `ERR_NO_TURN_SERVER` when the server offers none lkrtc can use.
  Relay,
}

impl IceTransportPolicy {
  /// The WebRTC name: `'all'`, `'relay'`.
  pub fn from_name(name: &str) -> Option<Self> {
    match name {
      "all" => Some(Self::All),
      "relay" => Some(Self::Relay),
      _ => None,
    }
  }
}

impl Default for RoomOptions {
  fn default() -> Self {
    Self {
      auto_subscribe: true,
      adaptive_stream: false,
      connect_timeout: Duration::from_secs(10),
      wait_for_peer_connection: true,
      ca_certificates: None,
      dynacast: false,
      frame_metadata: true,
      ice_transport_policy: IceTransportPolicy::All,
    }
  }
}

impl RoomOptions {
  /// The longest `connect_timeout` [`RoomOptions::connect_timeout_from_ms`] takes, in
  /// milliseconds: the longest delay a JavaScript timer can wait.
  pub const MAX_CONNECT_TIMEOUT_MS: u32 = i32::MAX as u32;

  /// A `connect_timeout` of `ms` milliseconds, if `ms` is an integer from 1 to
  /// [`RoomOptions::MAX_CONNECT_TIMEOUT_MS`].
  pub fn connect_timeout_from_ms(ms: f64) -> Option<Duration> {
    let valid = ms.fract() == 0.0 && ms >= 1.0 && ms <= f64::from(Self::MAX_CONNECT_TIMEOUT_MS);
    valid.then(|| Duration::from_millis(ms as u64))
  }
}

/// Codecs lkrtc publishes.
pub use lkrtc_video::VideoCodec;

/// Encoder limits for a published track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoEncoding {
  /// Bits per second.
  pub max_bitrate: u64,
  /// Frames per second.
  pub max_framerate: f64,
}

impl VideoEncoding {
  /// The lowest `max_bitrate` the encoders take, bits per second.
  pub const MIN_BITRATE: u64 = 1000;
  /// The highest `max_bitrate` the encoders take, bits per second.
  pub const MAX_BITRATE: u64 = u32::MAX as u64;
  /// The highest `max_framerate` the encoders plan for.
  pub const MAX_FRAMERATE: f64 = 240.0;

  /// `bps` as a `max_bitrate`, if it is an integer from [`Self::MIN_BITRATE`] to
  /// [`Self::MAX_BITRATE`]: rather refused than silently clamped.
  pub fn max_bitrate_from(bps: f64) -> Option<u64> {
    let valid = bps.fract() == 0.0 && bps >= Self::MIN_BITRATE as f64 && bps <= Self::MAX_BITRATE as f64;
    valid.then_some(bps as u64)
  }

  /// `fps` as a `max_framerate`, if it is above 0 and at most [`Self::MAX_FRAMERATE`].
  pub fn max_framerate_from(fps: f64) -> Option<f64> {
    // NaN fails both comparisons.
    (fps > 0.0 && fps <= Self::MAX_FRAMERATE).then_some(fps)
  }
}

/// How to publish a track.
#[derive(Debug, Clone)]
pub struct TrackPublishOptions {
  /// Where the track's video comes from (camera, screen share, ...).
  pub source: TrackSource,
  /// The codec to encode with.
  pub video_codec: VideoCodec,
  /// `None`: LiveKit's preset for the source's resolution.
  pub video_encoding: Option<VideoEncoding>,
  /// What gives way when the link cannot carry the picture. `None`: `MaintainResolution` for a
  /// screencast source, `Balanced` otherwise.
  pub degradation_preference: Option<DegradationPreference>,
  /// Send several layers (LiveKit's `q`, `h`, `f`) so each subscriber gets the one that fits
  /// its link and screen; sources below 480 pixels on the longer side send one.
  pub simulcast: bool,
  /// The lower layers (at most two, smaller than the source); `None`: LiveKit's defaults.
  pub simulcast_layers: Option<Vec<crate::simulcast::VideoPreset>>,
}

/// What the encoder gives up first when the bandwidth estimate cannot carry the source's picture
/// at a usable quality (WebRTC's `RTCDegradationPreference`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DegradationPreference {
  /// A smaller picture down to about 480x270, then fewer frames.
  #[default]
  Balanced,
  /// Every frame the link can carry, the picture as small as needed (down to a quarter).
  MaintainFramerate,
  /// The full picture always, fewer frames (text on a shared screen stays legible).
  MaintainResolution,
}

impl DegradationPreference {
  /// The WebRTC name: `'balanced'`, `'maintain-framerate'`, `'maintain-resolution'`.
  pub fn from_name(name: &str) -> Option<Self> {
    match name {
      "balanced" => Some(Self::Balanced),
      "maintain-framerate" => Some(Self::MaintainFramerate),
      "maintain-resolution" => Some(Self::MaintainResolution),
      _ => None,
    }
  }
}

impl Default for TrackPublishOptions {
  fn default() -> Self {
    Self {
      source: TrackSource::Camera,
      video_codec: VideoCodec::Vp8,
      video_encoding: None,
      degradation_preference: None,
      simulcast: true,
      simulcast_layers: None,
    }
  }
}

/// Options of a [`crate::VideoSource`].
#[derive(Debug, Clone, Copy, Default)]
pub struct VideoSourceOptions {
  /// The source shows a screen: LiveKit's screen-share encodings apply.
  pub is_screencast: bool,
}

struct Preset {
  width: u32,
  #[allow(dead_code)] // the table reads as LiveKit's; only widths select
  height: u32,
  max_bitrate: u64,
  max_framerate: f64,
}

const fn p(width: u32, height: u32, max_bitrate: u64, max_framerate: f64) -> Preset {
  Preset {
    width,
    height,
    max_bitrate,
    max_framerate,
  }
}

// LiveKit's presets (the same in its JS, Rust and Python SDKs).
const PRESETS_16_9: &[Preset] = &[
  p(160, 90, 90_000, 15.0),
  p(320, 180, 160_000, 15.0),
  p(384, 216, 180_000, 15.0),
  p(640, 360, 450_000, 20.0),
  p(960, 540, 800_000, 25.0),
  p(1280, 720, 1_700_000, 30.0),
  p(1920, 1080, 3_000_000, 30.0),
  p(2560, 1440, 5_000_000, 30.0),
  p(3840, 2160, 8_000_000, 30.0),
];
const PRESETS_4_3: &[Preset] = &[
  p(160, 120, 80_000, 15.0),
  p(240, 180, 100_000, 15.0),
  p(320, 240, 150_000, 15.0),
  p(480, 360, 225_000, 20.0),
  p(640, 480, 300_000, 20.0),
  p(720, 540, 450_000, 25.0),
  p(960, 720, 1_500_000, 30.0),
  p(1440, 1080, 2_500_000, 30.0),
  p(1920, 1440, 3_500_000, 30.0),
];
const PRESETS_SCREEN: &[Preset] = &[
  p(640, 360, 200_000, 3.0),
  p(1280, 720, 400_000, 5.0),
  p(1280, 720, 1_000_000, 15.0),
  p(1920, 1080, 1_500_000, 15.0),
  p(1920, 1080, 3_000_000, 30.0),
];

/// LiveKit's default encoding for a `width` x `height` track: the smallest preset of the matching
/// aspect ratio that covers the longer side (the largest preset beyond that).
pub fn default_video_encoding(width: u32, height: u32, is_screencast: bool) -> VideoEncoding {
  let (long, short) = (width.max(height), width.min(height).max(1));
  let presets = if is_screencast {
    PRESETS_SCREEN
  } else if (f64::from(long) / f64::from(short) - 16.0 / 9.0).abs()
    < (f64::from(long) / f64::from(short) - 4.0 / 3.0).abs()
  {
    PRESETS_16_9
  } else {
    PRESETS_4_3
  };
  let chosen = presets
    .iter()
    .find(|p| p.width >= long)
    .unwrap_or(&presets[presets.len() - 1]);
  VideoEncoding {
    max_bitrate: chosen.max_bitrate,
    max_framerate: chosen.max_framerate,
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn connect_waits_for_the_peer_connection_by_default() {
    assert!(RoomOptions::default().wait_for_peer_connection);
  }

  #[test]
  fn a_connect_timeout_is_a_whole_number_of_milliseconds_from_1_to_2_pow_31_minus_1() {
    assert_eq!(
      RoomOptions::connect_timeout_from_ms(1.0),
      Some(Duration::from_millis(1))
    );
    assert_eq!(
      RoomOptions::connect_timeout_from_ms(2f64.powi(31) - 1.0),
      Some(Duration::from_millis((1 << 31) - 1))
    );
    for ms in [
      0.0,
      -1.0,
      1.5,
      f64::NAN,
      f64::INFINITY,
      f64::NEG_INFINITY,
      2f64.powi(31),
      f64::MAX,
    ] {
      assert_eq!(RoomOptions::connect_timeout_from_ms(ms), None, "{ms}");
    }
  }

  #[test]
  fn encoding_limits_are_the_encoders_range() {
    assert_eq!(VideoEncoding::max_bitrate_from(1000.0), Some(1000));
    assert_eq!(VideoEncoding::max_bitrate_from(4_294_967_295.0), Some(4_294_967_295));
    for bps in [999.0, 1000.5, 4_294_967_296.0, -1.0, f64::NAN, f64::INFINITY] {
      assert_eq!(VideoEncoding::max_bitrate_from(bps), None, "{bps}");
    }
    assert_eq!(VideoEncoding::max_framerate_from(0.5), Some(0.5));
    assert_eq!(VideoEncoding::max_framerate_from(240.0), Some(240.0));
    for fps in [0.0, -1.0, 240.5, f64::NAN, f64::INFINITY] {
      assert_eq!(VideoEncoding::max_framerate_from(fps), None, "{fps}");
    }
  }

  #[test]
  fn presets_follow_livekit() {
    assert_eq!(default_video_encoding(640, 480, false).max_bitrate, 300_000);
    assert_eq!(default_video_encoding(1280, 720, false).max_bitrate, 1_700_000);
    assert_eq!(default_video_encoding(1920, 1080, false).max_framerate, 30.0);
    assert_eq!(default_video_encoding(480, 640, false).max_bitrate, 300_000);
    assert_eq!(default_video_encoding(8000, 4500, false).max_bitrate, 8_000_000);
    assert_eq!(default_video_encoding(1920, 1080, true).max_bitrate, 1_500_000);
  }
}
