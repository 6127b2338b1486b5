//! The video codecs lkrtc sends and receives, named once for every layer: the encoders
//! (lkrtc-codec), SDP and RTP (lkrtc-transport), LiveKit's signalling and the Node API.

use crate::error::VideoError;

/// A video codec lkrtc can encode, send, receive and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoCodec {
  /// VP8 (RFC 7741 packetization). The default.
  #[default]
  Vp8,
  /// H.264 constrained baseline 42e01f, packetization-mode 1 (RFC 6184, Annex-B frames).
  H264,
  /// VP9 profile 0 (8-bit 4:2:0; RTP payload format RFC 9628).
  Vp9,
  /// AV1 main profile, 8-bit 4:2:0 (AOM's RTP payload format). Received only.
  Av1,
}

impl VideoCodec {
  /// Every codec.
  pub const ALL: [VideoCodec; 4] = [Self::Vp8, Self::H264, Self::Vp9, Self::Av1];

  /// The codec named `name`: `vp8`, `h264`, `vp9` or `av1`, case-insensitive; a `video/` prefix (a MIME type)
  /// and the aliases `h.264` and `avc` are accepted.
  pub fn from_name(name: &str) -> Result<Self, VideoError> {
    let lower = name.trim().to_ascii_lowercase();
    match lower.strip_prefix("video/").unwrap_or(&lower) {
      "vp8" => Ok(Self::Vp8),
      "h264" | "h.264" | "avc" => Ok(Self::H264),
      "vp9" => Ok(Self::Vp9),
      "av1" => Ok(Self::Av1),
      _ => Err(VideoError::UnknownCodec { given: name.to_owned() }),
    }
  }

  /// The name LiveKit's signalling uses (`SimulcastCodec.codec`) and the Node API takes:
  /// `vp8`, `h264`, `vp9`.
  pub fn name(self) -> &'static str {
    match self {
      Self::Vp8 => "vp8",
      Self::H264 => "h264",
      Self::Vp9 => "vp9",
      Self::Av1 => "av1",
    }
  }

  /// The RTP/SDP MIME type (`video/VP8`, `video/H264`, `video/VP9`).
  pub fn mime_type(self) -> &'static str {
    match self {
      Self::Vp8 => "video/VP8",
      Self::H264 => "video/H264",
      Self::Vp9 => "video/VP9",
      Self::Av1 => "video/AV1",
    }
  }

  /// The SDP `rtpmap` encoding name (`VP8`, `H264`, `VP9`).
  pub fn sdp_name(self) -> &'static str {
    match self {
      Self::Vp8 => "VP8",
      Self::H264 => "H264",
      Self::Vp9 => "VP9",
      Self::Av1 => "AV1",
    }
  }
}

impl std::fmt::Display for VideoCodec {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str(match self {
      Self::Vp8 => "VP8",
      Self::H264 => "H.264",
      Self::Vp9 => "VP9",
      Self::Av1 => "AV1",
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn names_parse_back_to_their_codec() {
    for codec in VideoCodec::ALL {
      assert_eq!(VideoCodec::from_name(codec.name()), Ok(codec));
      assert_eq!(VideoCodec::from_name(codec.mime_type()), Ok(codec));
      assert_eq!(VideoCodec::from_name(codec.sdp_name()), Ok(codec));
    }
  }

  #[test]
  fn an_unknown_name_is_err_unknown_codec_naming_it() {
    let e = VideoCodec::from_name("h265").unwrap_err();
    assert_eq!(e.code(), "ERR_UNKNOWN_CODEC");
    assert_eq!(
      e.to_string(),
      "unknown codec: expected \"vp8\", \"h264\", \"vp9\" or \"av1\", got \"h265\""
    );
  }
}
