//! Receive statistics of a remote video track, named as the WebRTC statistics spec names an
//! inbound RTP stream's (`RTCInboundRtpStreamStats`): what lkrtc itself counted, from the
//! transport (bytes, packets, NACK/PLI/FIR sent, jitter, packets lost for good) and from the
//! track's decoder (frames received, decoded, dropped; size; frame rate; freezes). The send
//! side's counts (per layer) live with each encoder (`EncoderControl`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A snapshot of a remote video track's receive statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboundVideoStats {
  /// Complete frames that reached the decoder's input.
  pub frames_received: u64,
  /// Frames the decoder produced a picture from.
  pub frames_decoded: u64,
  /// Keyframes among them.
  pub key_frames_decoded: u64,
  /// Frames received but not decoded: waiting for a keyframe after a loss, or the decoder
  /// falling behind.
  pub frames_dropped: u64,
  /// Frames decoded over the last second.
  pub frames_per_second: f64,
  /// RTP payload and header bytes received for the track (retransmissions included).
  pub bytes_received: u64,
  /// RTP packets received for the track.
  pub packets_received: u64,
  /// Packets never received, not even retransmitted.
  pub packets_lost: u64,
  /// Interarrival jitter, seconds.
  pub jitter: f64,
  /// NACK messages sent.
  pub nack_count: u64,
  /// PLI messages sent.
  pub pli_count: u64,
  /// FIR messages sent.
  pub fir_count: u64,
  /// Gaps between decoded frames longer than max(3 x the mean frame interval, mean + 150 ms).
  pub freeze_count: u64,
  /// Their total length, seconds.
  pub total_freezes_duration: f64,
  /// The size of the last frame decoded (0 before the first).
  pub frame_width: u32,
  /// The size of the last frame decoded (0 before the first).
  pub frame_height: u32,
  /// The decoder in use (`libvpx`, `openh264`, `libaom`); empty before the first frame.
  pub decoder: String,
  /// Seconds the frames shown so far spent between arriving complete and being handed to the
  /// streams (decoding and the playout delay), summed: divided by `jitter_buffer_emitted_count`,
  /// the mean.
  pub jitter_buffer_delay: f64,
  /// The playout target each shown frame was timed by, seconds, summed.
  pub jitter_buffer_target_delay: f64,
  /// Frames handed to the streams.
  pub jitter_buffer_emitted_count: u64,
}

/// What the transport counted for one received stream (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct IngressCounts {
  pub bytes: u64,
  pub packets: u64,
  pub lost: u64,
  pub nacks: u64,
  pub plis: u64,
  pub firs: u64,
  pub jitter_s: f64,
}

/// What the transport counted for one sent stream (cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct EgressCounts {
  pub bytes: u64,
  pub packets: u64,
  pub nacks: u64,
  pub plis: u64,
  pub firs: u64,
  pub rtt: Option<Duration>,
}

/// The counters one track's decoder path and transport update; read by `get_stats`.
#[derive(Debug, Default)]
pub(crate) struct InboundCounters {
  state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
  stats: InboundVideoStats,
  freezes: FreezeDetector,
  /// When the frames of the last second were decoded.
  recent: VecDeque<Instant>,
}

impl InboundCounters {
  fn with(&self, f: impl FnOnce(&mut State)) {
    f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
  }

  pub(crate) fn received(&self) {
    self.with(|s| s.stats.frames_received += 1);
  }

  pub(crate) fn dropped(&self) {
    self.with(|s| s.stats.frames_dropped += 1);
  }

  pub(crate) fn decoded(&self, now: Instant, width: u32, height: u32, keyframe: bool, decoder: &str) {
    self.with(|s| {
      s.stats.frames_decoded += 1;
      s.stats.key_frames_decoded += u64::from(keyframe);
      (s.stats.frame_width, s.stats.frame_height) = (width, height);
      if s.stats.decoder != decoder {
        s.stats.decoder = decoder.to_string();
      }
      s.recent.push_back(now);
      while s
        .recent
        .front()
        .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
      {
        s.recent.pop_front();
      }
      s.freezes.on_frame(now);
      s.stats.freeze_count = s.freezes.count;
      s.stats.total_freezes_duration = s.freezes.total.as_secs_f64();
    });
  }

  /// A frame was handed to the streams `waited_us` after it arrived, timed by `target_us`.
  pub(crate) fn played_out(&self, waited_us: i64, target_us: i64) {
    self.with(|s| {
      s.stats.jitter_buffer_delay += waited_us as f64 / 1e6;
      s.stats.jitter_buffer_target_delay += target_us as f64 / 1e6;
      s.stats.jitter_buffer_emitted_count += 1;
    });
  }

  pub(crate) fn ingress(&self, counts: IngressCounts) {
    self.with(|s| {
      let st = &mut s.stats;
      (st.bytes_received, st.packets_received, st.packets_lost) = (counts.bytes, counts.packets, counts.lost);
      (st.nack_count, st.pli_count, st.fir_count) = (counts.nacks, counts.plis, counts.firs);
      st.jitter = counts.jitter_s;
    });
  }

  pub(crate) fn snapshot(&self, now: Instant) -> InboundVideoStats {
    let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut stats = s.stats.clone();
    let fresh = s
      .recent
      .iter()
      .filter(|t| now.duration_since(**t) <= Duration::from_secs(1));
    stats.frames_per_second = fresh.count() as f64;
    stats
  }
}

/// Freezes as the WebRTC statistics spec defines them: a gap between two decoded frames longer
/// than max(3 x the mean interval, mean + 150 ms), the mean over the last 30 intervals.
#[derive(Debug, Default)]
struct FreezeDetector {
  last: Option<Instant>,
  intervals: VecDeque<Duration>,
  count: u64,
  total: Duration,
}

const FREEZE_WINDOW: usize = 30;

impl FreezeDetector {
  fn on_frame(&mut self, now: Instant) {
    if let Some(last) = self.last {
      let gap = now.saturating_duration_since(last);
      if self.intervals.len() >= 3 {
        let mean = self.intervals.iter().sum::<Duration>() / self.intervals.len() as u32;
        if gap > (mean * 3).max(mean + Duration::from_millis(150)) {
          self.count += 1;
          self.total += gap;
        }
      }
      self.intervals.push_back(gap);
      if self.intervals.len() > FREEZE_WINDOW {
        self.intervals.pop_front();
      }
    }
    self.last = Some(now);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_gap_over_the_freeze_threshold_counts_once_with_its_length() {
    let counters = InboundCounters::default();
    let t0 = Instant::now();
    let mut t = t0;
    for _ in 0..30 {
      t += Duration::from_millis(33);
      counters.decoded(t, 640, 360, false, "libvpx");
    }
    // 180 ms: over 3 x 33 but under 33 + 150: no freeze.
    t += Duration::from_millis(180);
    counters.decoded(t, 640, 360, false, "libvpx");
    // 700 ms: a freeze.
    t += Duration::from_millis(700);
    counters.decoded(t, 640, 360, false, "libvpx");
    let s = counters.snapshot(t);
    assert_eq!(s.freeze_count, 1);
    assert!(
      (s.total_freezes_duration - 0.7).abs() < 1e-9,
      "{}",
      s.total_freezes_duration
    );
    assert_eq!(s.frames_decoded, 32);
    assert_eq!(
      (s.frame_width, s.frame_height, s.decoder.as_str()),
      (640, 360, "libvpx")
    );
  }

  #[test]
  fn the_frame_rate_counts_the_frames_of_the_last_second() {
    let counters = InboundCounters::default();
    let t0 = Instant::now();
    for n in 0..60 {
      counters.decoded(t0 + Duration::from_millis(n * 66), 64, 64, n == 0, "libvpx");
    }
    let end = t0 + Duration::from_millis(59 * 66);
    let s = counters.snapshot(end);
    assert!((15.0..=16.0).contains(&s.frames_per_second), "{}", s.frames_per_second);
    assert_eq!(s.key_frames_decoded, 1);
    // Nothing decoded for 2 s: the rate is 0.
    assert_eq!(counters.snapshot(end + Duration::from_secs(2)).frames_per_second, 0.0);
  }

  #[test]
  fn transport_counts_replace_the_previous_ones() {
    let counters = InboundCounters::default();
    let mut c = IngressCounts {
      bytes: 1000,
      packets: 10,
      lost: 1,
      nacks: 2,
      plis: 3,
      firs: 0,
      jitter_s: 0.004,
    };
    counters.ingress(c);
    c.bytes = 5000;
    c.packets = 40;
    counters.ingress(c);
    let s = counters.snapshot(Instant::now());
    assert_eq!((s.bytes_received, s.packets_received, s.packets_lost), (5000, 40, 1));
    assert_eq!((s.nack_count, s.pli_count, s.fir_count), (2, 3, 0));
    assert_eq!(s.jitter, 0.004);
  }
}
