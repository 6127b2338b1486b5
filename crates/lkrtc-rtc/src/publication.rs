//! Track kinds, sources and publications: plain snapshots of what the server told us.

use livekit_protocol as proto;

/// What a track carries. The numbers are LiveKit's `TrackType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum TrackKind {
  Audio = 0,
  Video = 1,
  Data = 2,
}

impl TrackKind {
  pub fn from_proto(n: i32) -> Self {
    match n {
      0 => Self::Audio,
      2 => Self::Data,
      _ => Self::Video,
    }
  }
}

/// Where a track comes from. The numbers are LiveKit's `TrackSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u32)]
pub enum TrackSource {
  #[default]
  Unknown = 0,
  Camera = 1,
  Microphone = 2,
  ScreenShare = 3,
  ScreenShareAudio = 4,
}

impl TrackSource {
  pub fn from_proto(n: i32) -> Self {
    match n {
      1 => Self::Camera,
      2 => Self::Microphone,
      3 => Self::ScreenShare,
      4 => Self::ScreenShareAudio,
      _ => Self::Unknown,
    }
  }

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

/// A track another participant published, as last described by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteTrackPublication {
  pub sid: String,
  pub name: String,
  pub kind: TrackKind,
  pub source: TrackSource,
  pub width: u32,
  pub height: u32,
  /// e.g. `video/VP8`, `video/H264`; empty until the server knows the codec.
  pub mime_type: String,
  pub muted: bool,
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
  pub sid: String,
  pub name: String,
  pub kind: TrackKind,
  pub source: TrackSource,
  pub width: u32,
  pub height: u32,
  pub mime_type: String,
  pub muted: bool,
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
    }
  }
}

fn mime_type_of(info: &proto::TrackInfo) -> String {
  if !info.mime_type.is_empty() {
    return info.mime_type.clone();
  }
  info.codecs.first().map(|c| c.mime_type.clone()).unwrap_or_default()
}
