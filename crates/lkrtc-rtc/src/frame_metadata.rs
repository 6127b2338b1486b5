//! Per-frame metadata (a user timestamp and a frame id) carried end to end in LiveKit's packet
//! trailer, so LiveKit's other SDKs read what lkrtc sends and the other way round.
//!
//! The trailer is appended to the encoded frame (VP8, VP9 and H.264 alike; decoders ignore bytes
//! past the picture, and receivers strip them first):
//!
//! ```text
//! [TLV]... [trailer_len ^ 0xFF] 'L' 'K' 'T' 'S'
//! TLV = [tag ^ 0xFF] [len ^ 0xFF] [value bytes ^ 0xFF]
//! tag 0x01: user timestamp, 8 bytes big-endian; tag 0x02: frame id, 4 bytes big-endian
//! ```
//!
//! `trailer_len` counts the whole trailer (TLVs, length byte and magic), so a trailer is at most
//! 255 bytes. Every TLV byte is XORed with 0xFF so no H.264 start code (`00 00 01`) appears in
//! it. A field that is 0 is not sent (LiveKit reads 0 as unset), and a frame with no field set
//! carries no trailer at all. Unknown tags (LiveKit's user data, 0x03) are skipped on receipt.
//! The publication advertises the trailer (`AddTrackRequest.packet_trailer_features`); receivers
//! strip it only from tracks that do, and the server strips it for subscribers that did not
//! announce `CAP_PACKET_TRAILER`.

use livekit_protocol as proto;

/// The magic at the very end of a trailer ("LiveKit TimeStamp").
pub(crate) const MAGIC: [u8; 4] = *b"LKTS";
/// The length byte and the magic, present in every trailer.
const ENVELOPE: usize = 5;
const TAG_USER_TIMESTAMP: u8 = 0x01;
const TAG_FRAME_ID: u8 = 0x02;
/// The longest trailer lkrtc writes: both TLVs and the envelope.
pub(crate) const MAX_TRAILER: usize = 10 + 6 + ENVELOPE;

/// Metadata of one video frame, as the publisher attached it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameMetadata {
  /// An application timestamp, microseconds (e.g. the capture time on the sender's clock).
  pub user_timestamp: Option<u64>,
  /// An application frame number.
  pub frame_id: Option<u32>,
}

impl FrameMetadata {
  /// Whether there is nothing to send: no field, or only fields that are 0.
  pub fn is_empty(&self) -> bool {
    self.user_timestamp.unwrap_or(0) == 0 && self.frame_id.unwrap_or(0) == 0
  }
}

/// The features lkrtc's publications advertise: the receivers of a track that advertises none
/// do not look for a trailer.
pub(crate) fn advertised_features() -> Vec<i32> {
  vec![
    proto::PacketTrailerFeature::PtfUserTimestamp as i32,
    proto::PacketTrailerFeature::PtfFrameId as i32,
  ]
}

fn push_tlv(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
  out.push(tag ^ 0xFF);
  out.push(value.len() as u8 ^ 0xFF);
  out.extend(value.iter().map(|b| b ^ 0xFF));
}

/// Appends `metadata`'s trailer to the encoded frame `data`; leaves `data` as it is when there
/// is nothing to send. Returns the trailer's length.
pub fn append_trailer(data: &mut Vec<u8>, metadata: &FrameMetadata) -> usize {
  if metadata.is_empty() {
    return 0;
  }
  let start = data.len();
  data.reserve(MAX_TRAILER);
  if let Some(ts) = metadata.user_timestamp.filter(|&t| t != 0) {
    push_tlv(data, TAG_USER_TIMESTAMP, &ts.to_be_bytes());
  }
  if let Some(id) = metadata.frame_id.filter(|&i| i != 0) {
    push_tlv(data, TAG_FRAME_ID, &id.to_be_bytes());
  }
  let len = data.len() - start + ENVELOPE;
  data.push(len as u8 ^ 0xFF);
  data.extend_from_slice(&MAGIC);
  len
}

/// Appends `metadata`'s trailer to a `codec` frame where that codec can carry one: not AV1 (its
/// packetizer parses OBUs to the end of the frame, which bytes after the last would confuse), and
/// not an H.264 frame whose trailer would contain a start code (see [`fits_annex_b`]). Returns
/// the trailer's length (0: none appended).
pub fn append_trailer_for(codec: lkrtc_video::VideoCodec, data: &mut Vec<u8>, metadata: &FrameMetadata) -> usize {
  use lkrtc_video::VideoCodec;
  match codec {
    VideoCodec::Av1 => 0,
    VideoCodec::H264 if !fits_annex_b(metadata) => {
      tracing::debug!("metadata {metadata:?} would make an H.264 start code; not sent");
      0
    }
    _ => append_trailer(data, metadata),
  }
}

/// Whether an H.264 access unit can carry `metadata`: LiveKit's XOR keeps zeros out of the
/// trailer's fixed bytes, but a value with bytes FF FF FE becomes a start code (00 00 01), which
/// would split the trailer into a NAL unit of its own on the way. Such a frame is sent without.
pub fn fits_annex_b(metadata: &FrameMetadata) -> bool {
  let mut trailer = Vec::with_capacity(MAX_TRAILER);
  append_trailer(&mut trailer, metadata);
  !trailer.windows(3).any(|w| w == [0, 0, 1])
}

/// Parses a whole trailer (TLVs and envelope). `None` when it is not one or carries no field
/// lkrtc knows.
pub fn parse_trailer(trailer: &[u8]) -> Option<FrameMetadata> {
  let len = trailer_len(trailer)?;
  if len != trailer.len() {
    return None;
  }
  let tlvs = &trailer[..len - ENVELOPE];
  let mut metadata = FrameMetadata::default();
  let mut found = false;
  let mut pos = 0;
  while pos + 2 <= tlvs.len() {
    let tag = tlvs[pos] ^ 0xFF;
    let value_len = usize::from(tlvs[pos + 1] ^ 0xFF);
    pos += 2;
    let Some(value) = tlvs.get(pos..pos + value_len) else {
      break; // a TLV running past the trailer: what came before still counts, as in LiveKit
    };
    let be = || value.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(b ^ 0xFF));
    match (tag, value_len) {
      (TAG_USER_TIMESTAMP, 8) => {
        metadata.user_timestamp = Some(be());
        found = true;
      }
      (TAG_FRAME_ID, 4) => {
        metadata.frame_id = Some(be() as u32);
        found = true;
      }
      _ => {} // unknown tags (user data) and unexpected sizes are skipped
    }
    pos += value_len;
  }
  found.then_some(metadata)
}

/// The trailer length `data` ends with, if it ends with the magic and a plausible length.
fn trailer_len(data: &[u8]) -> Option<usize> {
  if data.len() < ENVELOPE || data[data.len() - 4..] != MAGIC {
    return None;
  }
  let len = usize::from(data[data.len() - ENVELOPE] ^ 0xFF);
  (ENVELOPE..=data.len()).contains(&len).then_some(len)
}

/// Removes the trailer from the end of a received frame and returns its metadata. A frame
/// without a valid trailer is left as it is (`None`).
pub fn strip_trailer(data: &mut Vec<u8>) -> Option<FrameMetadata> {
  let len = trailer_len(data)?;
  let metadata = parse_trailer(&data[data.len() - len..])?;
  data.truncate(data.len() - len);
  Some(metadata)
}

#[cfg(test)]
mod tests {
  use super::*;

  const BOTH: FrameMetadata = FrameMetadata {
    user_timestamp: Some(1_764_000_000_123_456),
    frame_id: Some(0xDEAD_BEEF),
  };

  #[test]
  fn a_trailer_round_trips_and_leaves_the_frame_as_it_was() {
    let frame = vec![0x9d, 0x01, 0x2a, 7, 8, 9];
    let mut data = frame.clone();
    assert_eq!(append_trailer(&mut data, &BOTH), MAX_TRAILER);
    assert_eq!(data.len(), frame.len() + MAX_TRAILER);
    assert_eq!(strip_trailer(&mut data), Some(BOTH));
    assert_eq!(data, frame);
  }

  #[test]
  fn the_layout_is_livekits() {
    // Values from LiveKit's BuildTrailerPayload: TLVs XORed with 0xFF, then len ^ 0xFF, "LKTS".
    let mut data = Vec::new();
    append_trailer(
      &mut data,
      &FrameMetadata {
        user_timestamp: Some(0x0102_0304_0506_0708),
        frame_id: Some(0x0A0B_0C0D),
      },
    );
    let expected: Vec<u8> = [
      vec![0x01 ^ 0xFF, 8 ^ 0xFF],
      (1..=8u8).map(|b| b ^ 0xFF).collect(),
      vec![0x02 ^ 0xFF, 4 ^ 0xFF],
      [0x0A, 0x0B, 0x0C, 0x0D].iter().map(|b| b ^ 0xFF).collect(),
      vec![21 ^ 0xFF],
      b"LKTS".to_vec(),
    ]
    .concat();
    assert_eq!(data, expected);
  }

  #[test]
  fn zero_fields_are_not_sent() {
    let mut data = vec![1, 2, 3];
    assert_eq!(append_trailer(&mut data, &FrameMetadata::default()), 0);
    let zero = FrameMetadata {
      user_timestamp: Some(0),
      frame_id: Some(0),
    };
    assert_eq!(append_trailer(&mut data, &zero), 0);
    assert_eq!(data, vec![1, 2, 3]);
    let only_id = FrameMetadata {
      user_timestamp: Some(0),
      frame_id: Some(5),
    };
    assert_eq!(append_trailer(&mut data, &only_id), 6 + ENVELOPE);
    assert_eq!(
      strip_trailer(&mut data),
      Some(FrameMetadata {
        user_timestamp: None,
        frame_id: Some(5)
      })
    );
  }

  #[test]
  fn values_that_would_make_a_start_code_do_not_fit_h264() {
    assert!(fits_annex_b(&BOTH));
    assert!(fits_annex_b(&FrameMetadata {
      user_timestamp: Some(u64::MAX),
      frame_id: Some(1),
    }));
    for bad in [
      FrameMetadata {
        user_timestamp: Some(0x0000_0000_00FF_FFFE),
        frame_id: None,
      },
      FrameMetadata {
        user_timestamp: None,
        frame_id: Some(0x00FF_FFFE),
      },
    ] {
      assert!(!fits_annex_b(&bad), "{bad:?}");
    }
  }

  #[test]
  fn each_codec_gets_a_trailer_where_it_can_carry_one() {
    use lkrtc_video::VideoCodec;
    let start_code = FrameMetadata {
      user_timestamp: None,
      frame_id: Some(0x00FF_FFFE),
    };
    let frame = vec![0x10u8, 0x02, 0x00];
    for (codec, metadata, carried) in [
      (VideoCodec::Vp8, BOTH, true),
      (VideoCodec::Vp9, BOTH, true),
      (VideoCodec::H264, BOTH, true),
      (VideoCodec::H264, start_code, false),
      (VideoCodec::Vp8, start_code, true),
      (VideoCodec::Av1, BOTH, false),
    ] {
      let mut data = frame.clone();
      let len = append_trailer_for(codec, &mut data, &metadata);
      assert_eq!(len > 0, carried, "{codec} {metadata:?}");
      assert_eq!(data.len(), frame.len() + len, "{codec}");
      if carried {
        assert_eq!(parse_trailer(&data[frame.len()..]), Some(metadata), "{codec}");
      }
    }
  }

  #[test]
  fn unknown_tags_are_skipped() {
    // LiveKit's user data TLV (tag 3) before the envelope.
    let mut data = vec![0xAA];
    let mut trailer = Vec::new();
    push_tlv(&mut trailer, TAG_FRAME_ID, &42u32.to_be_bytes());
    push_tlv(&mut trailer, 0x03, b"hello");
    let len = trailer.len() + ENVELOPE;
    trailer.push(len as u8 ^ 0xFF);
    trailer.extend_from_slice(&MAGIC);
    data.extend_from_slice(&trailer);
    assert_eq!(
      strip_trailer(&mut data),
      Some(FrameMetadata {
        user_timestamp: None,
        frame_id: Some(42)
      })
    );
    assert_eq!(data, vec![0xAA]);
  }

  #[test]
  fn frames_without_a_trailer_are_untouched() {
    for frame in [vec![], vec![1], b"LKTS".to_vec(), vec![0, 0, 0, 0, 0, 0, 0, 0, 1]] {
      let mut data = frame.clone();
      assert_eq!(strip_trailer(&mut data), None);
      assert_eq!(data, frame);
    }
  }

  #[test]
  fn malformed_and_truncated_trailers_never_panic_and_leave_the_frame() {
    let mut good = vec![5u8; 10];
    append_trailer(&mut good, &BOTH);
    // Every truncation from the front keeps the envelope but loses bytes the length promises.
    for cut in 0..good.len() {
      let mut data = good[cut..].to_vec();
      let before = data.clone();
      let got = strip_trailer(&mut data);
      if got.is_none() {
        assert_eq!(data, before);
      }
    }
    // Every length byte, including ones pointing before the frame or inside the envelope.
    for len in 0..=255u8 {
      let mut data = good.clone();
      let at = data.len() - ENVELOPE;
      data[at] = len ^ 0xFF;
      let before = data.clone();
      if strip_trailer(&mut data).is_none() {
        assert_eq!(data, before);
      }
    }
    // TLV lengths that run past the trailer, and random bytes before the envelope.
    for value_len in 0..=255u8 {
      let mut data = vec![TAG_USER_TIMESTAMP ^ 0xFF, value_len ^ 0xFF, 1, 2, 3];
      data.push((data.len() + ENVELOPE) as u8 ^ 0xFF);
      data.extend_from_slice(&MAGIC);
      let before = data.clone();
      assert_eq!(strip_trailer(&mut data), None);
      assert_eq!(data, before);
    }
    let mut seed = 0x1234_5678u32;
    for _ in 0..2000 {
      let n = (seed % 40) as usize;
      let mut data: Vec<u8> = (0..n)
        .map(|_| {
          seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
          (seed >> 24) as u8
        })
        .collect();
      data.push(((seed >> 8) as u8) | 0x80);
      data.extend_from_slice(&MAGIC);
      let _ = strip_trailer(&mut data);
    }
  }

  #[test]
  fn a_trailer_whose_length_is_not_its_size_is_refused() {
    let mut trailer = Vec::new();
    append_trailer(&mut trailer, &BOTH);
    assert_eq!(parse_trailer(&trailer), Some(BOTH));
    let mut longer = vec![0];
    longer.extend_from_slice(&trailer);
    assert_eq!(parse_trailer(&longer), None);
    assert_eq!(parse_trailer(&trailer[1..]), None);
  }
}
