//! Fuzzing the RTP depacketizers the receive path runs (str0m's VP8 and H.264 ones, which turn
//! the payloads of a frame's packets into the encoded frame handed to the decoder): valid payloads
//! round-trip exactly; corrupted, truncated, reordered, dropped, duplicated and arbitrary ones
//! never panic and never produce more than a small constant factor of the bytes that came in.
//!
//! `PROPTEST_CASES=100000 cargo test -p lkrtc-transport --test depacketizer_fuzz` runs longer.

use proptest::prelude::*;
use str0m::format::CodecExtra;
use str0m::unversioned::{Depacketizer, H264Depacketizer, H264Packetizer, Packetizer, Vp8Depacketizer};

/// Cases per property: small by default (each property runs in well under a second in a debug
/// build), `PROPTEST_CASES` for a longer run.
fn config() -> ProptestConfig {
  let cases = std::env::var("PROPTEST_CASES")
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(512);
  ProptestConfig::with_cases(cases)
}

/// What a receiver makes of a frame's packets: each payload depacketized in turn into one frame,
/// as str0m does between a partition head and the marker; a payload it refuses drops the frame.
struct Assembled {
  frame: Vec<u8>,
  extra: CodecExtra,
  errors: usize,
}

fn assemble(depacketizer: &mut dyn Depacketizer, packets: &[Vec<u8>]) -> Assembled {
  let mut frame = Vec::new();
  let mut extra = CodecExtra::None;
  let mut errors = 0;
  for packet in packets {
    let before = frame.len();
    if depacketizer.depacketize(packet, &mut frame, &mut extra).is_err() {
      errors += 1;
    }
    assert!(frame.len() >= before, "depacketize shrank the frame");
    // Both heads and tails are asked of every packet str0m buffers.
    let _ = depacketizer.is_partition_head(packet);
    let _ = depacketizer.is_partition_tail(true, packet);
  }
  Assembled { frame, extra, errors }
}

fn total_len(packets: &[Vec<u8>]) -> usize {
  packets.iter().map(Vec::len).sum()
}

/// One change to a frame's packets, as loss, reordering and corruption on the way make them.
#[derive(Debug, Clone)]
enum Mutation {
  FlipBit { packet: usize, bit: usize },
  SetByte { packet: usize, at: usize, value: u8 },
  Truncate { packet: usize, len: usize },
  Drop { packet: usize },
  Duplicate { packet: usize },
  Swap { a: usize, b: usize },
  Insert { at: usize, bytes: Vec<u8> },
}

fn mutation() -> impl Strategy<Value = Mutation> {
  prop_oneof![
    (any::<usize>(), any::<usize>()).prop_map(|(packet, bit)| Mutation::FlipBit { packet, bit }),
    (any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(packet, at, value)| Mutation::SetByte {
      packet,
      at,
      value
    }),
    (any::<usize>(), 0usize..8).prop_map(|(packet, len)| Mutation::Truncate { packet, len }),
    any::<usize>().prop_map(|packet| Mutation::Drop { packet }),
    any::<usize>().prop_map(|packet| Mutation::Duplicate { packet }),
    (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap { a, b }),
    (any::<usize>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
  ]
}

fn mutate(packets: &mut Vec<Vec<u8>>, mutations: &[Mutation]) {
  for m in mutations {
    let n = packets.len();
    match m.clone() {
      Mutation::FlipBit { packet, bit } if n > 0 => {
        let p = &mut packets[packet % n];
        if !p.is_empty() {
          let bit = bit % (p.len() * 8);
          p[bit / 8] ^= 1 << (bit % 8);
        }
      }
      Mutation::SetByte { packet, at, value } if n > 0 => {
        let p = &mut packets[packet % n];
        if !p.is_empty() {
          let at = at % p.len();
          p[at] = value;
        }
      }
      // Cut to a few bytes (inside the descriptor or NAL header) or anywhere.
      Mutation::Truncate { packet, len } if n > 0 => {
        let p = &mut packets[packet % n];
        let len = if len < 4 { len } else { p.len() * len / 8 };
        p.truncate(len);
      }
      Mutation::Drop { packet } if n > 0 => {
        packets.remove(packet % n);
      }
      Mutation::Duplicate { packet } if n > 0 => {
        let copy = packets[packet % n].clone();
        packets.insert(packet % n, copy);
      }
      Mutation::Swap { a, b } if n > 0 => packets.swap(a % n, b % n),
      Mutation::Insert { at, bytes } => packets.insert(at % (n + 1), bytes),
      _ => {}
    }
  }
}

// ---------------------------------------------------------------------------------------------
// VP8 (RFC 7741)

/// One VP8 payload descriptor: every optional field the RFC allows, as senders write them.
#[derive(Debug, Clone)]
struct Vp8Descriptor {
  non_reference: bool,
  partition: u8,
  picture_id: Option<(bool, u16)>,
  tl0_pic_idx: Option<u8>,
  tid: Option<(u8, bool)>,
  key_idx: Option<u8>,
}

fn vp8_descriptor() -> impl Strategy<Value = Vp8Descriptor> {
  (
    any::<bool>(),
    0u8..8,
    prop::option::of((any::<bool>(), any::<u16>())),
    prop::option::of(any::<u8>()),
    prop::option::of((0u8..4, any::<bool>())),
    prop::option::of(0u8..32),
  )
    .prop_map(
      |(non_reference, partition, picture_id, tl0_pic_idx, tid, key_idx)| Vp8Descriptor {
        non_reference,
        partition,
        picture_id,
        // TL0PICIDX needs the T bit (RFC 7741 4.2).
        tid: if tl0_pic_idx.is_some() {
          tid.or(Some((0, false)))
        } else {
          tid
        },
        tl0_pic_idx,
        key_idx,
      },
    )
}

impl Vp8Descriptor {
  fn write(&self, start: bool, out: &mut Vec<u8>) {
    let extended =
      self.picture_id.is_some() || self.tl0_pic_idx.is_some() || self.tid.is_some() || self.key_idx.is_some();
    let partition = if start { 0 } else { self.partition };
    out.push(u8::from(extended) << 7 | u8::from(self.non_reference) << 5 | u8::from(start) << 4 | partition);
    if !extended {
      return;
    }
    out.push(
      u8::from(self.picture_id.is_some()) << 7
        | u8::from(self.tl0_pic_idx.is_some()) << 6
        | u8::from(self.tid.is_some()) << 5
        | u8::from(self.key_idx.is_some()) << 4,
    );
    match self.picture_id {
      Some((true, id)) => out.extend_from_slice(&[0x80 | (id >> 8) as u8 & 0x7f, id as u8]),
      Some((false, id)) => out.push(id as u8 & 0x7f),
      None => {}
    }
    if let Some(idx) = self.tl0_pic_idx {
      out.push(idx);
    }
    if self.tid.is_some() || self.key_idx.is_some() {
      let (tid, sync) = self.tid.unwrap_or((0, false));
      out.push(tid << 6 | u8::from(sync) << 5 | self.key_idx.unwrap_or(0));
    }
  }
}

/// A VP8 frame (its first byte says key or delta frame, as VP8's frame tag does) cut into
/// payloads of random sizes, each behind the descriptor; the first starts the partition.
fn vp8_packets() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
  (
    any::<bool>(),
    prop::collection::vec(any::<u8>(), 1..3000),
    prop::collection::vec(1usize..1200, 1..8),
    vp8_descriptor(),
  )
    .prop_map(|(keyframe, mut frame, sizes, descriptor)| {
      frame[0] = if keyframe { frame[0] & !1 } else { frame[0] | 1 };
      let mut packets = Vec::new();
      let mut at = 0;
      for (i, size) in sizes.iter().cycle().enumerate() {
        if at == frame.len() {
          break;
        }
        let end = (at + size).min(frame.len());
        let mut packet = Vec::new();
        descriptor.write(i == 0, &mut packet);
        packet.extend_from_slice(&frame[at..end]);
        packets.push(packet);
        at = end;
      }
      (frame, packets)
    })
}

proptest! {
  #![proptest_config(config())]

  #[test]
  fn vp8_valid_payloads_give_back_the_frame_and_its_key_flag((frame, packets) in vp8_packets()) {
    let mut depacketizer = Vp8Depacketizer::default();
    prop_assert!(depacketizer.is_partition_head(&packets[0]));
    for packet in &packets[1..] {
      prop_assert!(!depacketizer.is_partition_head(packet));
    }
    let out = assemble(&mut depacketizer, &packets);
    prop_assert_eq!(out.errors, 0);
    prop_assert_eq!(&out.frame, &frame);
    match out.extra {
      CodecExtra::Vp8(extra) => prop_assert_eq!(extra.is_keyframe, frame[0] & 1 == 0),
      other => prop_assert!(false, "not VP8 extra: {:?}", other),
    }
  }

  #[test]
  fn vp8_corrupted_payloads_never_yield_more_bytes_than_came_in(
    (_frame, mut packets) in vp8_packets(),
    mutations in prop::collection::vec(mutation(), 1..8),
  ) {
    mutate(&mut packets, &mutations);
    // One depacketizer per track: state (picture ids) carries from frame to frame.
    let mut depacketizer = Vp8Depacketizer::default();
    for _ in 0..2 {
      let out = assemble(&mut depacketizer, &packets);
      prop_assert!(out.frame.len() <= total_len(&packets));
    }
  }

  #[test]
  fn vp8_arbitrary_payloads_never_yield_more_bytes_than_came_in(
    packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
  ) {
    let out = assemble(&mut Vp8Depacketizer::default(), &packets);
    prop_assert!(out.frame.len() <= total_len(&packets));
  }
}

// ---------------------------------------------------------------------------------------------
// H.264 (RFC 6184: single NAL units, STAP-A, FU-A)

/// One NAL unit of `nal_type` with a body free of zero bytes (so no start code inside it).
fn nal(nal_type: u8, max_len: usize) -> impl Strategy<Value = Vec<u8>> {
  (0u8..4, prop::collection::vec(1u8..=255, 1..max_len)).prop_map(move |(ref_idc, body)| {
    let mut nal = vec![ref_idc << 5 | nal_type];
    nal.extend(body);
    nal
  })
}

/// An access unit as encoders write them: SPS, PPS and IDR slices, or non-IDR slices; each
/// NAL unit behind a 4-byte start code.
fn h264_access_unit() -> impl Strategy<Value = (bool, Vec<u8>)> {
  let key = (nal(7, 24), nal(8, 12), prop::collection::vec(nal(5, 4000), 1..3)).prop_map(|(sps, pps, idr)| {
    let mut nals = vec![sps, pps];
    nals.extend(idr);
    (true, nals)
  });
  let delta = prop::collection::vec(prop_oneof![nal(1, 4000), nal(6, 40)], 1..4).prop_map(|nals| (false, nals));
  prop_oneof![key, delta].prop_map(|(keyframe, nals)| {
    let mut stream = Vec::new();
    for nal in nals {
      stream.extend_from_slice(&[0, 0, 0, 1]);
      stream.extend(nal);
    }
    (keyframe, stream)
  })
}

/// An access unit and its payloads as str0m's packetizer cuts them at `mtu` (STAP-A for SPS and
/// PPS, FU-A for NAL units above the MTU).
fn h264_packets() -> impl Strategy<Value = (bool, Vec<u8>, Vec<Vec<u8>>)> {
  (h264_access_unit(), 100usize..1300).prop_map(|((keyframe, stream), mtu)| {
    let packets = H264Packetizer::default().packetize(mtu, &stream).expect("packetize");
    (keyframe, stream, packets)
  })
}

/// Bytes an H.264 depacketizer may produce from `packets`: a start code in place of each 1-byte
/// STAP-A or FU header and of each 2-byte STAP-A length. Linear in the input: no amplification.
fn h264_bound(packets: &[Vec<u8>]) -> usize {
  2 * total_len(packets) + 5 * packets.len()
}

proptest! {
  #![proptest_config(config())]

  #[test]
  fn h264_valid_payloads_give_back_the_access_unit_and_its_key_flag((keyframe, stream, packets) in h264_packets()) {
    let out = assemble(&mut H264Depacketizer::default(), &packets);
    prop_assert_eq!(out.errors, 0);
    prop_assert_eq!(&out.frame, &stream);
    match out.extra {
      CodecExtra::H264(extra) => prop_assert_eq!(extra.is_keyframe, keyframe),
      other => prop_assert!(false, "not H.264 extra: {:?}", other),
    }
  }

  #[test]
  fn h264_corrupted_payloads_yield_at_most_twice_the_bytes_that_came_in(
    (_keyframe, _stream, mut packets) in h264_packets(),
    mutations in prop::collection::vec(mutation(), 1..8),
  ) {
    mutate(&mut packets, &mutations);
    // One depacketizer per track: an unfinished FU-A carries over to the next frame.
    let mut depacketizer = H264Depacketizer::default();
    let mut produced = 0;
    for _ in 0..2 {
      produced += assemble(&mut depacketizer, &packets).frame.len();
    }
    prop_assert!(produced <= 2 * h264_bound(&packets), "{} bytes from {} in", produced, 2 * total_len(&packets));
  }

  #[test]
  fn h264_arbitrary_payloads_yield_at_most_twice_the_bytes_that_came_in(
    packets in prop::collection::vec(
      prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        // STAP-A and FU-A headers with arbitrary contents.
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|mut p| { p.insert(0, 24); p }),
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(fu, mut p)| { p.splice(0..0, [28, fu]); p }),
      ],
      0..16,
    ),
  ) {
    let out = assemble(&mut H264Depacketizer::default(), &packets);
    prop_assert!(out.frame.len() <= h264_bound(&packets));
  }
}
