//! Video on the wire: writing local frames (payload type, capture clock, orientation), keyframe
//! requests, and turning received media into frames with the sender's capture time.

use std::time::{Duration, Instant, UNIX_EPOCH};

use str0m::format::PayloadParams;
use str0m::media::{KeyframeRequestKind, MediaData, MediaTime};
use str0m::rtp::VideoOrientation;

use super::Core;
use crate::{Mid, OutgoingVideoFrame, TransportEvent, VideoCodec};

/// At most one loss-triggered PLI per track in this window.
const PLI_INTERVAL: Duration = Duration::from_millis(300);

impl Core {
  /// `now_unix_us` is the Unix time (µs) at `now`: the RTCP sender reports carry wallclock, so
  /// a receiver maps RTP time back to the capture time.
  pub fn write_video(&mut self, local: Mid, frame: OutgoingVideoFrame, now: Instant, now_unix_us: i64) {
    let Some(t) = self.tracks.iter_mut().find(|t| t.local == local) else {
      tracing::debug!(%local, "write_video: unknown track");
      return;
    };
    let Some(rtc_mid) = t.rtc.filter(|_| t.negotiated) else {
      return; // not negotiated yet: frames are dropped, the encoder will be asked for a keyframe
    };
    let Some(writer) = self.rtc.writer(rtc_mid) else {
      return;
    };
    let pt = match t.pt {
      Some(pt) => Some(pt),
      None => {
        let pt = writer
          .payload_params()
          .find(|p| codec_matches(p, t.codec))
          .map(|p| p.pt());
        t.pt = pt;
        pt
      }
    };
    let Some(pt) = pt else {
      if !t.warned_no_codec {
        t.warned_no_codec = true;
        tracing::warn!(mid = %rtc_mid, codec = ?t.codec, "codec not negotiated; dropping frames");
      }
      return;
    };
    let offset = *t
      .clock_offset_us
      .get_or_insert_with(|| capture_clock_offset(frame.capture_time_us, now_unix_us));
    let wallclock = capture_wallclock(frame.capture_time_us - offset, now, now_unix_us);
    let rtp = MediaTime::from_90khz((frame.capture_time_us.max(0) as u64).saturating_mul(9) / 100);
    let orientation = match frame.rotation {
      1 => VideoOrientation::Deg90,
      2 => VideoOrientation::Deg180,
      3 => VideoOrientation::Deg270,
      _ => VideoOrientation::Deg0,
    };
    let mut writer = writer.video_orientation(orientation);
    if let Some(rid) = frame.rid.as_deref() {
      writer = writer.rid(rid.into());
    }
    let mut data = frame.data;
    if frame.trailer_len > 0 {
      align_trailer(&mut data, frame.trailer_len, t.codec, PACKETIZE_MTU);
    }
    if let Err(e) = writer.write(pt, wallclock, rtp, data) {
      tracing::debug!(mid = %rtc_mid, "write_video: {e}");
    }
  }

  pub fn request_keyframe(&mut self, mid: Mid) {
    let Some(mut writer) = self.rtc.writer(mid) else { return };
    let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
      KeyframeRequestKind::Pli
    } else {
      KeyframeRequestKind::Fir
    };
    if let Err(e) = writer.request_keyframe(None, kind) {
      tracing::debug!(%mid, "request_keyframe: {e}");
    }
  }

  pub(super) fn on_media_data(&mut self, d: MediaData, now: Instant) {
    let Some(codec) = crate::types::codec_of_str0m(d.params.spec().codec) else {
      return; // audio is not handled by lkrtc yet
    };
    let mut contiguous = d.contiguous;
    if let Some(r) = self.remote.get_mut(&d.mid) {
      contiguous &= !std::mem::take(&mut r.frame_dropped);
      let (first, last) = (**d.seq_range.start(), **d.seq_range.end());
      if let Some(prev) = r.last_seq.filter(|p| *p < first) {
        // A gap str0m gave up on (not contiguous) is loss no retransmission repaired.
        let lost = if d.contiguous { 0 } else { first - prev - 1 };
        r.lost += lost;
        if let Some(estimate) = &mut self.recv_estimate {
          estimate.on_loss(last - prev, lost);
        }
      }
      r.last_seq = Some(r.last_seq.map_or(last, |p| p.max(last)));
    }
    if !contiguous {
      let due = self
        .remote
        .get(&d.mid)
        .is_none_or(|r| r.last_pli.is_none_or(|t| now >= t + PLI_INTERVAL));
      if due {
        if let Some(r) = self.remote.get_mut(&d.mid) {
          r.last_pli = Some(now);
        }
        self.request_keyframe(d.mid);
      }
    }
    let rotation = match d.ext_vals.video_orientation {
      Some(VideoOrientation::Deg90) => 1,
      Some(VideoOrientation::Deg180) => 2,
      Some(VideoOrientation::Deg270) => 3,
      _ => 0,
    };
    let rtp_time = d.time.numer() as u32;
    let capture_time_us = d.last_sender_info.and_then(|sr| {
      let ntp_us = sr.ntp_time.duration_since(UNIX_EPOCH).ok()?.as_micros() as i64;
      Some(sender_time_of(rtp_time, sr.rtp_time.numer() as u32, ntp_us))
    });
    self.events.push_back(TransportEvent::VideoFrame {
      mid: d.mid,
      keyframe: d.is_keyframe(),
      contiguous,
      data: d.data.to_vec(),
      codec,
      rtp_time,
      capture_time_us,
      network_time: d.network_time,
      rotation,
    });
  }
}

/// The sender's wallclock (Unix µs) of a 90 kHz RTP timestamp, from the (RTP, NTP) pair of its
/// latest sender report. RTP time wraps; frames within ±6.6 h of the report map correctly.
pub(crate) fn sender_time_of(rtp_time: u32, sr_rtp_time: u32, sr_ntp_us: i64) -> i64 {
  let ticks = i64::from(rtp_time.wrapping_sub(sr_rtp_time) as i32);
  sr_ntp_us + ticks * 100 / 9
}

/// Capture timestamps within this distance of the Unix time are taken as Unix time.
const UNIX_CLOCK_TOLERANCE_US: i64 = 60_000_000;

/// How far a track's capture clock is from Unix time, decided at its first frame: 0 when the
/// timestamps are Unix microseconds (lkrtc's own clock), so sender reports carry the exact
/// capture time; otherwise the first frame is taken as captured now and the rest follow it.
pub(crate) fn capture_clock_offset(first_capture_us: i64, now_unix_us: i64) -> i64 {
  let offset = first_capture_us.saturating_sub(now_unix_us);
  if offset.abs() <= UNIX_CLOCK_TOLERANCE_US {
    0
  } else {
    offset
  }
}

/// The `Instant` whose Unix time is `wall_unix_us`, given that `now` is `now_unix_us`. str0m
/// derives the sender report's (NTP, RTP) pair from the wallclock of the last written frame, and
/// it must not lie in the future: later capture times are clamped to `now`.
pub(crate) fn capture_wallclock(wall_unix_us: i64, now: Instant, now_unix_us: i64) -> Instant {
  let ago = now_unix_us.saturating_sub(wall_unix_us);
  if ago <= 0 {
    return now;
  }
  now.checked_sub(Duration::from_micros(ago as u64)).unwrap_or(now)
}

/// The payload budget str0m 0.25 gives a video packetizer (`Media::do_payload`): its datagram MTU
/// target less the SRTP tag (16 bytes), rounded down to the SRTP block (16 bytes).
const PACKETIZE_MTU: usize = (str0m::DATAGRAM_MTU_TARGET - 16) / 16 * 16;
/// str0m's VP8 payload descriptor (no picture id), VP9's in non-flexible mode (the most it
/// reserves) and H.264's FU-A indicator and header.
const VP8_DESCRIPTOR: usize = 1;
const VP9_DESCRIPTOR: usize = 8;
const FUA_HEADER: usize = 2;

/// Keeps the packet trailer at the end of `data` (its last `trailer_len` bytes) whole in the
/// frame's last RTP packet, after at least one byte of something else. The server strips a
/// trailer for subscribers that do not read it by looking at the marker packet alone and cutting
/// `trailer_len` bytes off its payload: a trailer that starts in the next-to-last packet would
/// have it cut into the payload descriptor, and a packet of the trailer alone would be left
/// empty (receivers drop such a frame). str0m fills packets to the budget, so zero bytes go
/// before the trailer where needed: it then ends the last packet behind one zero. Decoders ignore
/// zeros after the picture (VP8/VP9: after the last partition or tile; H.264: trailing zero bytes
/// of the NAL unit), and receivers that strip the trailer keep them.
pub(crate) fn align_trailer(data: &mut Vec<u8>, trailer_len: usize, codec: VideoCodec, mtu: usize) {
  if trailer_len == 0 || trailer_len > data.len() {
    return;
  }
  let body = data.len() - trailer_len;
  // Where the packetizer starts cutting fragments, and their size.
  let (region_start, fragment) = match codec {
    VideoCodec::Vp8 => (0, mtu - VP8_DESCRIPTOR),
    VideoCodec::Vp9 => (0, mtu - VP9_DESCRIPTOR),
    VideoCodec::H264 => {
      // The trailer ends the last NAL unit; one that fits a packet is sent whole (behind its
      // NAL header), a longer one in FU-A fragments of its bytes after the NAL header.
      let nal_start = data[..body]
        .windows(3)
        .rposition(|w| w == [0, 0, 1])
        .map_or(0, |i| i + 3);
      if data.len() - nal_start <= mtu {
        return;
      }
      (nal_start + 1, mtu - FUA_HEADER)
    }
    // lkrtc sends no trailer with AV1 (see the encoder): nothing to place.
    VideoCodec::Av1 => return,
  };
  if fragment <= trailer_len + 1 || body < region_start {
    return;
  }
  // Where the trailer starts within its fragment.
  let at = (body - region_start) % fragment;
  let pad = if at == 0 {
    // It would start a packet of its own.
    1
  } else if at + trailer_len > fragment {
    // It would straddle two packets: one zero starts the next, then the trailer.
    fragment - at + 1
  } else {
    return;
  };
  data.splice(body..body, std::iter::repeat_n(0u8, pad));
}

fn codec_matches(p: &PayloadParams, codec: VideoCodec) -> bool {
  let spec = p.spec();
  crate::types::codec_of_str0m(spec.codec) == Some(codec)
    && (codec != VideoCodec::H264 || spec.format.packetization_mode == Some(1))
    && (codec != VideoCodec::Vp9 || spec.format.profile_id.unwrap_or(0) == 0)
}

#[cfg(test)]
mod tests {
  use super::*;
  use str0m::unversioned::{H264Packetizer, Packetizer, Vp8Packetizer};

  /// A stand-in trailer: 21 bytes ending in LiveKit's length byte and magic.
  fn trailer() -> Vec<u8> {
    let mut t: Vec<u8> = (0..16u8).map(|b| b ^ 0xFF).collect();
    t.push(21 ^ 0xFF);
    t.extend_from_slice(b"LKTS");
    t
  }

  /// The last packet str0m makes of `data` holds the whole trailer after its `header` bytes and
  /// at least one more: what is left when the server strips the trailer is never empty.
  fn trailer_is_whole_in_the_last_packet(packets: &[Vec<u8>], header: usize) -> bool {
    let last = packets.last().unwrap();
    let t = trailer();
    last.ends_with(&t) && last.len() > header + t.len()
  }

  #[test]
  fn a_vp8_trailer_never_straddles_two_packets() {
    let t = trailer();
    // Every body length around the first three packet boundaries.
    for body in (1..3 * PACKETIZE_MTU + 40).filter(|n| n % PACKETIZE_MTU < 40 || PACKETIZE_MTU - n % PACKETIZE_MTU < 40)
    {
      let mut data: Vec<u8> = (0..body).map(|i| (i % 251) as u8 + 1).collect();
      data.extend_from_slice(&t);
      align_trailer(&mut data, t.len(), VideoCodec::Vp8, PACKETIZE_MTU);
      assert!(data[..body].iter().all(|&b| b != 0), "the picture is untouched");
      let packets = Vp8Packetizer::default().packetize(PACKETIZE_MTU, &data).unwrap();
      assert!(
        trailer_is_whole_in_the_last_packet(&packets, VP8_DESCRIPTOR),
        "body {body}"
      );
      assert!(packets.iter().all(|p| p.len() <= PACKETIZE_MTU));
      assert!(
        data.len() - body - t.len() <= t.len(),
        "padding is no longer than the trailer"
      );
    }
  }

  #[test]
  fn an_h264_trailer_never_straddles_two_packets() {
    let t = trailer();
    for nal in (1..3 * PACKETIZE_MTU + 40).filter(|n| n % PACKETIZE_MTU < 40 || PACKETIZE_MTU - n % PACKETIZE_MTU < 40)
    {
      // SPS, PPS, then one IDR slice of `nal` bytes.
      let mut data = vec![
        0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65,
      ];
      data.extend((1..nal).map(|i| (i % 251) as u8 + 1));
      data.extend_from_slice(&t);
      align_trailer(&mut data, t.len(), VideoCodec::H264, PACKETIZE_MTU);
      let packets = H264Packetizer::default().packetize(PACKETIZE_MTU, &data).unwrap();
      let header = if nal + t.len() > PACKETIZE_MTU { FUA_HEADER } else { 0 };
      assert!(trailer_is_whole_in_the_last_packet(&packets, header), "nal {nal}");
      assert!(packets.iter().all(|p| p.len() <= PACKETIZE_MTU));
    }
  }

  #[test]
  fn a_vp9_trailer_ends_its_fragment_behind_other_bytes() {
    let t = trailer();
    let fragment = PACKETIZE_MTU - VP9_DESCRIPTOR;
    for body in [
      1,
      fragment - t.len(),
      fragment - t.len() + 1,
      fragment - 1,
      fragment,
      2 * fragment - 3,
    ] {
      let mut data = vec![1u8; body];
      data.extend_from_slice(&t);
      align_trailer(&mut data, t.len(), VideoCodec::Vp9, PACKETIZE_MTU);
      let start = data.len() - t.len();
      assert_eq!(start / fragment, (data.len() - 1) / fragment, "body {body}");
      assert_ne!(start % fragment, 0, "body {body}: the trailer does not start a packet");
      assert!(data.ends_with(&t));
    }
  }

  #[test]
  fn frames_without_a_trailer_are_left_alone() {
    let mut data = vec![1u8; PACKETIZE_MTU + 5];
    align_trailer(&mut data, 0, VideoCodec::Vp8, PACKETIZE_MTU);
    let too_long = data.len() + 1;
    align_trailer(&mut data, too_long, VideoCodec::Vp8, PACKETIZE_MTU);
    assert_eq!(data, vec![1u8; PACKETIZE_MTU + 5]);
  }

  const NOW_UNIX: i64 = 1_764_000_000_000_000;

  #[test]
  fn rtp_time_maps_through_the_sender_report() {
    assert_eq!(sender_time_of(90_000 + 9, 90_000, NOW_UNIX), NOW_UNIX + 100);
    assert_eq!(sender_time_of(90_000 - 9_000, 90_000, NOW_UNIX), NOW_UNIX - 100_000);
  }

  #[test]
  fn rtp_time_maps_across_the_wrap() {
    assert_eq!(sender_time_of(8_991, u32::MAX - 8, NOW_UNIX), NOW_UNIX + 100_000);
    assert_eq!(sender_time_of(u32::MAX - 8, 8_991, NOW_UNIX), NOW_UNIX - 100_000);
  }

  #[test]
  fn unix_capture_timestamps_keep_their_clock() {
    assert_eq!(capture_clock_offset(NOW_UNIX - 30_000, NOW_UNIX), 0);
    assert_eq!(capture_clock_offset(NOW_UNIX + 5_000, NOW_UNIX), 0);
  }

  #[test]
  fn another_clock_starts_at_now() {
    let offset = capture_clock_offset(5_000_000, NOW_UNIX);
    assert_eq!(5_000_000 - offset, NOW_UNIX);
    assert_eq!(5_066_000 - offset, NOW_UNIX + 66_000);
  }

  #[test]
  fn a_past_capture_time_maps_to_that_long_ago() {
    let now = Instant::now() + Duration::from_secs(10);
    let at = capture_wallclock(NOW_UNIX - 7_000, now, NOW_UNIX);
    assert_eq!(now - at, Duration::from_micros(7_000));
  }

  #[test]
  fn a_future_capture_time_is_clamped_to_now() {
    let now = Instant::now();
    assert_eq!(capture_wallclock(NOW_UNIX + 7_000, now, NOW_UNIX), now);
  }
}
