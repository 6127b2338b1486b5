//! Fuzzing the decoders with what a network can deliver: arbitrary bytes, and frames from our
//! own encoders truncated, bit-flipped, overwritten and spliced. A decoder never panics, fails
//! only with `ERR_DECODE`, returns only well-formed frames, and still decodes the next valid
//! keyframe to the right size.
//!
//! `PROPTEST_CASES=20000 cargo test -p lkrtc-codec --test decoder_fuzz` runs longer.

use std::sync::OnceLock;

use lkrtc_codec::{new_decoder, new_encoder, EncoderConfig, VideoBufferType, VideoCodec, VideoDecoder, VideoFrame};
use proptest::prelude::*;

const WIDTH: u32 = 160;
const HEIGHT: u32 = 96;

/// Cases per property: small by default (a few seconds in a debug build), `PROPTEST_CASES`
/// for a longer run.
fn config() -> ProptestConfig {
  let cases = std::env::var("PROPTEST_CASES")
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(256);
  ProptestConfig::with_cases(cases)
}

/// A moving gradient with a bright square: detail enough for real keyframes and deltas.
fn picture(n: u32) -> VideoFrame {
  let mut frame = VideoFrame::new_zeroed(WIDTH, HEIGHT, VideoBufferType::I420).expect("frame");
  let layout = frame.layout();
  let (y, u) = (layout.planes()[0], layout.planes()[1]);
  let data = frame.data_mut();
  for row in 0..HEIGHT as usize {
    for col in 0..WIDTH as usize {
      let square = (col + 4 * n as usize) % WIDTH as usize / 20 == 1 && row / 24 == 1;
      data[y.offset + row * y.stride + col] = if square {
        235
      } else {
        (16 + (col + row + 3 * n as usize) % 200) as u8
      };
    }
  }
  for i in 0..u.len * 2 {
    data[u.offset + i] = (64 + (i + n as usize) % 128) as u8;
  }
  frame
}

/// Of each codec, encoded once: a keyframe and three deltas (the material that gets damaged),
/// then a later keyframe and a delta (what a sender's next keyframe looks like: a new picture
/// id, so a decoder cannot take it for the damaged copy of the first).
fn encoded(codec: VideoCodec) -> &'static [Vec<u8>] {
  static VP8: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
  static H264: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
  static VP9: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
  let cell = match codec {
    VideoCodec::Vp8 => &VP8,
    VideoCodec::H264 => &H264,
    VideoCodec::Vp9 => &VP9,
    VideoCodec::Av1 => panic!("lkrtc has no AV1 encoder to make test material with"),
  };
  cell.get_or_init(|| {
    let config = EncoderConfig {
      screen_content: false,
      adaptive_speed: false,
      width: WIDTH,
      height: HEIGHT,
      bitrate_bps: 300_000,
      max_framerate: 30.0,
    };
    let mut encoder = new_encoder(codec, &config).expect("encoder");
    (0..6)
      .map(|n| {
        let frame = picture(n);
        let out = encoder
          .encode(&frame.as_ref(), i64::from(n) * 33_333, n == RECOVERY)
          .expect("encode");
        let out = out.expect("a frame");
        assert_eq!(out.keyframe, n == 0 || n == RECOVERY, "{codec}: frame {n}");
        out.data
      })
      .collect()
  })
}

/// Decodes `data`, checking what any input may give: a typed error or a well-formed I420 frame.
fn decode_checked(decoder: &mut dyn VideoDecoder, data: &[u8]) -> Result<Option<(u32, u32)>, TestCaseError> {
  match decoder.decode(data) {
    Ok(Some(frame)) => {
      prop_assert_eq!(frame.buffer_type(), VideoBufferType::I420);
      let (w, h) = (frame.width(), frame.height());
      let max = lkrtc_video::MAX_DIMENSION;
      prop_assert!(w >= 1 && h >= 1 && w <= max && h <= max, "{}x{}", w, h);
      prop_assert_eq!(frame.data().len(), VideoBufferType::I420.layout(w, h).size);
      Ok(Some((w, h)))
    }
    Ok(None) => Ok(None),
    Err(e) => {
      prop_assert_eq!(e.code(), "ERR_DECODE", "{}", e);
      prop_assert!(e.to_string().contains("decode failed"), "{}", e);
      Ok(None)
    }
  }
}

/// Where the later keyframe starts in `encoded`.
const RECOVERY: u32 = 4;
/// The frames that get damaged.
const DAMAGEABLE: usize = RECOVERY as usize;

/// After garbage, the next keyframe (and the delta after it) decode to the encoded size.
fn assert_recovers(codec: VideoCodec, decoder: &mut dyn VideoDecoder) -> Result<(), TestCaseError> {
  for (n, frame) in encoded(codec).iter().enumerate().skip(DAMAGEABLE) {
    let got = decoder
      .decode(frame)
      .map_err(|e| TestCaseError::fail(format!("{codec}: frame {n}: {e}")))?;
    let got = got.ok_or_else(|| TestCaseError::fail(format!("{codec}: frame {n}: no picture")))?;
    prop_assert_eq!((got.width(), got.height()), (WIDTH, HEIGHT), "{}: frame {}", codec, n);
  }
  Ok(())
}

/// One corruption of an encoded frame.
#[derive(Debug, Clone)]
enum Damage {
  FlipBit(usize),
  SetByte(usize, u8),
  /// Keep this fraction (in 1/64ths) of the frame.
  Truncate(u8),
  /// Replace a range with bytes of another frame.
  Splice {
    at: usize,
    from: usize,
    len: usize,
  },
}

fn damage() -> impl Strategy<Value = Damage> {
  prop_oneof![
    any::<usize>().prop_map(Damage::FlipBit),
    (any::<usize>(), any::<u8>()).prop_map(|(at, v)| Damage::SetByte(at, v)),
    (0u8..64).prop_map(Damage::Truncate),
    (any::<usize>(), any::<usize>(), 1usize..200).prop_map(|(at, from, len)| Damage::Splice { at, from, len }),
  ]
}

fn apply(frame: &mut Vec<u8>, damages: &[Damage], other: &[u8]) {
  for d in damages {
    if frame.is_empty() {
      return;
    }
    let len = frame.len();
    match *d {
      Damage::FlipBit(bit) => frame[bit / 8 % len] ^= 1 << (bit % 8),
      Damage::SetByte(at, v) => frame[at % len] = v,
      Damage::Truncate(keep) => frame.truncate(len * usize::from(keep) / 64),
      Damage::Splice { at, from, len: n } => {
        let at = at % len;
        let from = from % other.len();
        let n = n.min(len - at).min(other.len() - from);
        frame[at..at + n].copy_from_slice(&other[from..from + n]);
      }
    }
  }
}

fn codec() -> impl Strategy<Value = VideoCodec> {
  prop_oneof![Just(VideoCodec::Vp8), Just(VideoCodec::H264), Just(VideoCodec::Vp9)]
}

proptest! {
  #![proptest_config(config())]

  #[test]
  fn arbitrary_bytes_fail_with_err_decode_or_give_a_well_formed_frame(
    codec in codec(),
    inputs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 1..4),
  ) {
    let mut decoder = new_decoder(codec).unwrap();
    for data in &inputs {
      decode_checked(decoder.as_mut(), data)?;
    }
    assert_recovers(codec, decoder.as_mut())?;
  }

  #[test]
  fn arbitrary_nal_units_behind_a_start_code_fail_with_err_decode_or_give_a_well_formed_frame(
    nals in prop::collection::vec((0u8..32, prop::collection::vec(any::<u8>(), 0..512)), 1..6),
  ) {
    let mut stream = Vec::new();
    for (nal_type, body) in &nals {
      stream.extend_from_slice(&[0, 0, 0, 1, 0x60 | nal_type]);
      stream.extend_from_slice(body);
    }
    let mut decoder = new_decoder(VideoCodec::H264).unwrap();
    decode_checked(decoder.as_mut(), &stream)?;
    assert_recovers(VideoCodec::H264, decoder.as_mut())?;
  }

  #[test]
  fn damaged_frames_fail_with_err_decode_or_give_a_well_formed_frame(
    codec in codec(),
    which in 0usize..DAMAGEABLE,
    damages in prop::collection::vec(damage(), 1..6),
    keyframe_first in any::<bool>(),
  ) {
    let frames = encoded(codec);
    let mut data = frames[which].clone();
    apply(&mut data, &damages, &frames[(which + 1) % DAMAGEABLE]);
    let mut decoder = new_decoder(codec).unwrap();
    if keyframe_first {
      // A damaged delta on top of a good reference, as after loss mid-stream.
      decode_checked(decoder.as_mut(), &frames[0])?;
    }
    decode_checked(decoder.as_mut(), &data)?;
    for good in &frames[1..DAMAGEABLE] {
      decode_checked(decoder.as_mut(), good)?;
    }
    assert_recovers(codec, decoder.as_mut())?;
  }

  #[test]
  fn frames_out_of_order_or_of_the_other_codec_fail_with_err_decode_or_give_a_well_formed_frame(
    codec in codec(),
    order in prop::collection::vec((any::<bool>(), 0usize..DAMAGEABLE), 1..8),
  ) {
    let mut decoder = new_decoder(codec).unwrap();
    let other = match codec {
      VideoCodec::Vp8 => VideoCodec::H264,
      VideoCodec::H264 => VideoCodec::Vp9,
      VideoCodec::Vp9 | VideoCodec::Av1 => VideoCodec::Vp8,
    };
    for (foreign, n) in order {
      decode_checked(decoder.as_mut(), &encoded(if foreign { other } else { codec })[n])?;
    }
    assert_recovers(codec, decoder.as_mut())?;
  }
}

/// Found by the property below: the first bytes of a keyframe with the SPS header byte turned
/// into 0x4e (an SVC prefix NAL) left openh264 ignoring every later frame, keyframes included.
#[test]
fn a_keyframe_decodes_after_an_sps_corrupted_into_an_svc_prefix() {
  let frames = encoded(VideoCodec::H264);
  let mut damaged = frames[0].clone();
  apply(
    &mut damaged,
    &[Damage::Truncate(1), Damage::SetByte(4, 0x4e)],
    &frames[1],
  );
  assert_eq!(damaged[4], 0x4e);
  let mut decoder = new_decoder(VideoCodec::H264).unwrap();
  assert!(decoder.decode(&frames[0]).unwrap().is_some());
  let _ = decoder.decode(&damaged);
  for delta in &frames[1..DAMAGEABLE] {
    let _ = decoder.decode(delta);
  }
  for (n, frame) in frames.iter().enumerate().skip(DAMAGEABLE) {
    let picture = decoder.decode(frame).unwrap_or_else(|e| panic!("frame {n}: {e}"));
    let picture = picture.unwrap_or_else(|| panic!("frame {n}: no picture"));
    assert_eq!((picture.width(), picture.height()), (WIDTH, HEIGHT));
  }
}
