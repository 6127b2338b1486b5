//! Track kinds, sources and publications: plain snapshots of what the server told us.

use livekit_protocol as proto;
use lkrtc_video::VideoCodec;

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
  /// Whether its frames may carry metadata (LiveKit's packet trailer features are advertised):
  /// lkrtc then strips the trailer before decoding and reports it with the frame.
  pub frame_metadata: bool,
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
      frame_metadata: !info.packet_trailer_features.is_empty(),
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
  /// Whether it advertises frame metadata (LiveKit's packet trailer), as lkrtc's tracks do.
  pub frame_metadata: bool,
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
      frame_metadata: !info.packet_trailer_features.is_empty(),
    }
  }
}

/// The track's MIME type, with a video codec lkrtc knows spelled as RTP and LiveKit's other SDKs
/// spell it (`video/VP8`, `video/H264`): the server echoes a new track's codec back as the
/// publisher named it in `SimulcastCodec` (`video/vp8`) and only later uses the SDP's spelling.
fn mime_type_of(info: &proto::TrackInfo) -> String {
  let mime = if info.mime_type.is_empty() {
    info.codecs.first().map(|c| c.mime_type.as_str()).unwrap_or_default()
  } else {
    info.mime_type.as_str()
  };
  let is_video = mime.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("video/"));
  match VideoCodec::from_name(mime) {
    Ok(codec) if is_video => codec.mime_type().to_string(),
    _ => mime.to_string(),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn info(mime_type: &str, codec_mimes: &[&str]) -> proto::TrackInfo {
    proto::TrackInfo {
      sid: "TR_1".into(),
      r#type: proto::TrackType::Video as i32,
      mime_type: mime_type.into(),
      codecs: codec_mimes
        .iter()
        .map(|m| proto::SimulcastCodecInfo {
          mime_type: (*m).into(),
          ..Default::default()
        })
        .collect(),
      ..Default::default()
    }
  }

  #[test]
  fn a_known_video_codec_is_spelled_as_rtp_spells_it() {
    for (given, expected) in [
      ("video/vp8", "video/VP8"),
      ("video/VP8", "video/VP8"),
      ("video/h264", "video/H264"),
      ("Video/H264", "video/H264"),
      ("video/av1", "video/AV1"),
      ("video/vp9", "video/VP9"),
    ] {
      assert_eq!(RemoteTrackPublication::from_info(&info(given, &[])).mime_type, expected);
      assert_eq!(
        LocalTrackPublication::from_info(&info(given, &[]), "").mime_type,
        expected
      );
    }
  }

  #[test]
  fn the_first_codec_names_the_track_when_its_own_mime_type_is_empty() {
    assert_eq!(
      RemoteTrackPublication::from_info(&info("", &["video/h264", "video/vp8"])).mime_type,
      "video/H264"
    );
  }

  #[test]
  fn other_mime_types_are_kept_as_the_server_gives_them() {
    assert_eq!(
      RemoteTrackPublication::from_info(&info("audio/opus", &[])).mime_type,
      "audio/opus"
    );
    assert_eq!(
      RemoteTrackPublication::from_info(&info("video/x-new", &[])).mime_type,
      "video/x-new"
    );
    assert_eq!(RemoteTrackPublication::from_info(&info("", &[])).mime_type, "");
  }

  #[test]
  fn a_local_publication_without_a_mime_type_takes_the_encoders() {
    assert_eq!(
      LocalTrackPublication::from_info(&info("", &[]), "video/H264").mime_type,
      "video/H264"
    );
  }
}
