//! Track kinds, sources and publications: plain snapshots of what the server told us.

use livekit_protocol as proto;

/// What a track carries. The numbers are LiveKit's `TrackType`.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TrackKind {
  /// Audio.
  Audio = 0,
  /// Video.
  Video = 1,
  /// Data.
  Data = 2,
}

impl TrackKind {
  /// From LiveKit's protocol number (unknown numbers map to the default).
  pub fn from_proto(n: i32) -> Self {
    match n {
      0 => Self::Audio,
      2 => Self::Data,
      _ => Self::Video,
    }
  }
}

/// Where a track comes from. The numbers are LiveKit's `TrackSource`.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum TrackSource {
  /// Not said.
  #[default]
  Unknown = 0,
  /// A camera.
  Camera = 1,
  /// A microphone.
  Microphone = 2,
  /// A shared screen.
  ScreenShare = 3,
  /// A shared screen's audio.
  ScreenShareAudio = 4,
}

impl TrackSource {
  /// From LiveKit's protocol number (unknown numbers map to the default).
  pub fn from_proto(n: i32) -> Self {
    match n {
      1 => Self::Camera,
      2 => Self::Microphone,
      3 => Self::ScreenShare,
      4 => Self::ScreenShareAudio,
      _ => Self::Unknown,
    }
  }

  /// As LiveKit's protocol enum.
  pub fn to_proto(self) -> proto::TrackSource {
    match self {
      Self::Unknown => proto::TrackSource::Unknown,
      Self::Camera => proto::TrackSource::Camera,
      Self::Microphone => proto::TrackSource::Microphone,
      Self::ScreenShare => proto::TrackSource::ScreenShare,
      Self::ScreenShareAudio => proto::TrackSource::ScreenShareAudio,
    }
  }
}

/// A layer of a simulcast video track, as a subscriber asks for it. The numbers are LiveKit's
/// `VideoQuality`.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum VideoQuality {
  /// The smallest layer (LiveKit's `q`, a quarter of the full size on each side).
  Low = 0,
  /// The middle layer (`h`, half the full size).
  Medium = 1,
  /// The full-size layer (`f`).
  #[default]
  High = 2,
}

impl VideoQuality {
  /// From LiveKit's protocol number; `None` for any other number.
  pub fn from_number(n: u32) -> Option<Self> {
    match n {
      0 => Some(Self::Low),
      1 => Some(Self::Medium),
      2 => Some(Self::High),
      _ => None,
    }
  }

  /// As LiveKit's protocol enum.
  pub fn to_proto(self) -> proto::VideoQuality {
    match self {
      Self::Low => proto::VideoQuality::Low,
      Self::Medium => proto::VideoQuality::Medium,
      Self::High => proto::VideoQuality::High,
    }
  }
}

/// What this subscriber chose for a remote video track ([`crate::Room::track_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteTrackSettings {
  /// False while paused with [`crate::Room::set_track_enabled`].
  pub enabled: bool,
  /// The quality asked for; `None` when a size was asked for last.
  pub quality: Option<VideoQuality>,
  /// The size (width, height) asked for with [`crate::Room::set_video_dimensions`], when that
  /// was the last choice.
  pub dimensions: Option<(u32, u32)>,
}

impl Default for RemoteTrackSettings {
  fn default() -> Self {
    Self {
      enabled: true,
      quality: Some(VideoQuality::High),
      dimensions: None,
    }
  }
}

/// A track another participant published, as last described by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrackPublication {
  /// The server's id of the track (`TR_...`).
  pub sid: String,
  /// The name it was published with.
  pub name: String,
  /// What it carries.
  pub kind: TrackKind,
  /// Where it comes from.
  pub source: TrackSource,
  /// Width in pixels, as published.
  pub width: u32,
  /// Height in pixels, as published.
  pub height: u32,
  /// e.g. `video/VP8`, `video/H264`; empty until the server knows the codec.
  pub mime_type: String,
  /// Whether its publisher muted it.
  pub muted: bool,
  /// Whether it is sent in several layers.
  pub simulcast: bool,
}

impl RemoteTrackPublication {
  pub(crate) fn from_info(info: &proto::TrackInfo) -> Self {
    Self {
      sid: info.sid.clone(),
      name: info.name.clone(),
      kind: TrackKind::from_proto(info.r#type),
      source: TrackSource::from_proto(info.source),
      width: info.width,
      height: info.height,
      mime_type: mime_type_of(info),
      muted: info.muted,
      simulcast: info.codecs.iter().any(|c| c.layers.len() > 1),
    }
  }
}

/// A track this participant published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTrackPublication {
  /// The server's id of the track (`TR_...`).
  pub sid: String,
  /// The name it was published with.
  pub name: String,
  /// What it carries.
  pub kind: TrackKind,
  /// Where it comes from.
  pub source: TrackSource,
  /// Width in pixels, as published.
  pub width: u32,
  /// Height in pixels, as published.
  pub height: u32,
  /// The codec, e.g. `video/VP8`.
  pub mime_type: String,
  /// Whether its publisher muted it.
  pub muted: bool,
  /// Whether it is sent in several layers.
  pub simulcasted: bool,
}

impl LocalTrackPublication {
  pub(crate) fn from_info(info: &proto::TrackInfo, fallback_mime: &str) -> Self {
    let mime = mime_type_of(info);
    Self {
      sid: info.sid.clone(),
      name: info.name.clone(),
      kind: TrackKind::from_proto(info.r#type),
      source: TrackSource::from_proto(info.source),
      width: info.width,
      height: info.height,
      mime_type: if mime.is_empty() {
        fallback_mime.to_string()
      } else {
        mime
      },
      muted: info.muted,
      simulcasted: info.codecs.iter().any(|c| c.layers.len() > 1),
    }
  }
}

fn mime_type_of(info: &proto::TrackInfo) -> String {
  if !info.mime_type.is_empty() {
    return info.mime_type.clone();
  }
  info.codecs.first().map(|c| c.mime_type.clone()).unwrap_or_default()
}
