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
    if let Err(e) = writer.write(pt, wallclock, rtp, frame.data) {
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
    if let Some(r) = self.remote.get_mut(&d.mid) {
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
    if !d.contiguous {
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
      contiguous: d.contiguous,
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

fn codec_matches(p: &PayloadParams, codec: VideoCodec) -> bool {
  let spec = p.spec();
  crate::types::codec_of_str0m(spec.codec) == Some(codec)
    && (codec != VideoCodec::H264 || spec.format.packetization_mode == Some(1))
    && (codec != VideoCodec::Vp9 || spec.format.profile_id.unwrap_or(0) == 0)
}

#[cfg(test)]
mod tests {
  use super::*;

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
