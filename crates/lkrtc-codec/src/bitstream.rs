//! What an encoded frame's own bytes say about it: whether it is a keyframe, checked against
//! the codec's bitstream syntax. Pre-encoded frames (from a camera, a file, another encoder)
//! are sent without decoding, so this is the only look lkrtc takes at them: enough to refuse
//! what no subscriber could decode and to know where a subscriber can start.

use crate::{CodecError, VideoCodec};

/// What [`inspect`] found in one encoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
  /// The frame decodes without any before it.
  pub keyframe: bool,
  /// The picture size a keyframe states (VP8 only; `None` otherwise).
  pub size: Option<(u32, u32)>,
}

fn invalid(codec: VideoCodec, reason: impl Into<String>) -> CodecError {
  CodecError::InvalidBitstream {
    codec,
    reason: reason.into(),
  }
}

/// Reads one complete encoded frame of `codec`: VP8 and VP9 as their RTP payload formats carry
/// a frame, H.264 as an Annex-B access unit (each NAL unit after a `00 00 01` or `00 00 00 01`
/// start code) whose keyframes carry their SPS and PPS.
pub fn inspect(codec: VideoCodec, data: &[u8]) -> Result<FrameInfo, CodecError> {
  if data.is_empty() {
    return Err(invalid(codec, "the frame is empty"));
  }
  match codec {
    VideoCodec::Vp8 => vp8(data),
    VideoCodec::Vp9 => vp9(data),
    VideoCodec::H264 => h264(data),
    VideoCodec::Av1 => Err(invalid(
      codec,
      "pre-encoded AV1 is not supported (VP8, VP9 and H.264 are)",
    )),
  }
}

/// RFC 6386 9.1: a 3-byte frame tag; a keyframe then has the start code 9d 01 2a and its size.
fn vp8(data: &[u8]) -> Result<FrameInfo, CodecError> {
  let codec = VideoCodec::Vp8;
  if data.len() < 3 {
    return Err(invalid(
      codec,
      format!("{} bytes is shorter than the 3-byte frame tag", data.len()),
    ));
  }
  let tag = u32::from(data[0]) | u32::from(data[1]) << 8 | u32::from(data[2]) << 16;
  let keyframe = tag & 1 == 0;
  let version = (tag >> 1) & 7;
  let first_partition = (tag >> 5) as usize;
  if version > 3 {
    return Err(invalid(
      codec,
      format!("version {version} in the frame tag (0 to 3 expected)"),
    ));
  }
  let header = if keyframe { 10 } else { 3 };
  if data.len() < header + first_partition {
    return Err(invalid(
      codec,
      format!(
        "the frame tag announces a {first_partition}-byte first partition but the frame has {} bytes",
        data.len()
      ),
    ));
  }
  if !keyframe {
    return Ok(FrameInfo { keyframe, size: None });
  }
  if data[3..6] != [0x9d, 0x01, 0x2a] {
    return Err(invalid(codec, "a keyframe without the start code 9d 01 2a"));
  }
  let width = u32::from(u16::from_le_bytes([data[6], data[7]]) & 0x3fff);
  let height = u32::from(u16::from_le_bytes([data[8], data[9]]) & 0x3fff);
  if width == 0 || height == 0 {
    return Err(invalid(codec, format!("a keyframe of {width}x{height}")));
  }
  Ok(FrameInfo {
    keyframe,
    size: Some((width, height)),
  })
}

/// VP9 bitstream 6.2: frame_marker, profile, show_existing_frame, frame_type. A superframe's
/// first frame decides (its index sits at the end).
fn vp9(data: &[u8]) -> Result<FrameInfo, CodecError> {
  let codec = VideoCodec::Vp9;
  let b = data[0];
  if b >> 6 != 0b10 {
    return Err(invalid(codec, format!("frame marker {} (2 expected)", b >> 6)));
  }
  let profile = ((b >> 5) & 1) | ((b >> 4) & 1) << 1;
  // Profile 3 has a reserved zero bit before show_existing_frame.
  let shift = if profile == 3 { 3 } else { 2 };
  let show_existing = (b >> (5 - shift)) & 1 == 1;
  if show_existing {
    return Ok(FrameInfo {
      keyframe: false,
      size: None,
    });
  }
  let key = (b >> (4 - shift)) & 1 == 0;
  if key && data.len() < 4 {
    return Err(invalid(codec, "a keyframe shorter than its sync code"));
  }
  Ok(FrameInfo {
    keyframe: key,
    size: None,
  })
}

/// H.264 Annex B: the NAL units after each start code; IDR slices make a keyframe, which needs
/// its SPS and PPS in the same access unit for a subscriber to start at it.
fn h264(data: &[u8]) -> Result<FrameInfo, CodecError> {
  let codec = VideoCodec::H264;
  let starts_with_code = data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1]);
  if !starts_with_code {
    return Err(invalid(
      codec,
      "not an Annex-B access unit: it must start with a 00 00 01 or 00 00 00 01 start code (length-prefixed AVCC is not accepted)",
    ));
  }
  let (mut idr, mut sps, mut pps, mut slice, mut units) = (false, false, false, false, 0);
  let mut i = 0;
  while i + 3 <= data.len() {
    if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
      let at = i + 3;
      let Some(&header) = data.get(at) else {
        return Err(invalid(codec, "a start code at the end of the frame"));
      };
      if header & 0x80 != 0 {
        return Err(invalid(
          codec,
          format!("NAL unit at byte {at} has its forbidden bit set"),
        ));
      }
      match header & 0x1f {
        0 => return Err(invalid(codec, format!("NAL unit at byte {at} has type 0"))),
        1 => slice = true,
        5 => idr = true,
        7 => sps = true,
        8 => pps = true,
        _ => {}
      }
      units += 1;
      i = at + 1;
    } else {
      i += 1;
    }
  }
  if units == 0 {
    return Err(invalid(codec, "no NAL unit"));
  }
  if idr && !(sps && pps) {
    return Err(invalid(
      codec,
      "an IDR frame without its SPS and PPS: send them in band, before the IDR slices",
    ));
  }
  if !idr && !slice {
    return Err(invalid(codec, "an access unit without a coded slice (NAL type 1 or 5)"));
  }
  Ok(FrameInfo {
    keyframe: idr,
    size: None,
  })
}
