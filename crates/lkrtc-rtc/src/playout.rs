//! When a received frame is handed to the track's streams (a jitter buffer on decoded frames).
//!
//! Frames do not arrive as evenly as they were captured. On a lossy link a frame waits for a
//! retransmission (100-200 ms when the first request or the repair is lost too) and the frames
//! behind it, which need it as a reference, come all at once afterwards: shown as they arrive,
//! the picture freezes and then jumps. Like libwebrtc's jitter buffer, lkrtc shows each frame at
//! its capture time (its RTP timestamp) plus a delay, the target, measured from the floor: the
//! earliest any frame of the last second arrived relative to its capture time (so a queue that
//! builds or drains slowly moves the floor, not the target). Each frame's lateness above the
//! floor of its time is kept for [`WINDOW_US`]; the target is their 95th percentile less
//! [`MARGIN_US`] (a frame that much later than its time shows as one repeated frame, not as a
//! stall, and is not worth delaying every frame for), at most [`MAX_TARGET_US`]. On a clean or a
//! steadily capped link the target is 0 and frames go on as they arrive; under loss it grows to
//! cover most repairs, so the picture moves on steadily, a little later; when the loss ends it
//! falls back within [`WINDOW_US`]. A frame that arrives after its time is shown at once.

use std::collections::VecDeque;

/// How far back lateness counts for the target.
pub(crate) const WINDOW_US: i64 = 5_000_000;
/// How far back the floor looks.
const FLOOR_WINDOW_US: i64 = 1_000_000;
/// Lateness this small is not smoothed.
const MARGIN_US: i64 = 50_000;
/// The largest delay added to smooth arrivals.
pub(crate) const MAX_TARGET_US: i64 = 200_000;
/// An arrival whose offset from its capture time moves by more than this starts afresh: the
/// publisher's clock restarted, or the stream changed source.
const RESET_US: i64 = 1_000_000;
/// The share of recent frames whose lateness the target covers (less the margin).
const PERCENTILE: f64 = 0.95;

/// 32-bit RTP timestamps made monotonic: each is taken as the nearest (within ±2^31 ticks) to
/// the one before it.
#[derive(Debug, Default)]
pub(crate) struct RtpUnwrapper {
  /// Last RTP timestamp and its unwrapped value.
  last: Option<(u32, i64)>,
}

impl RtpUnwrapper {
  pub(crate) fn unwrap(&mut self, rtp_time: u32) -> i64 {
    let unwrapped = match self.last {
      Some((prev, prev_unwrapped)) => prev_unwrapped + i64::from(rtp_time.wrapping_sub(prev) as i32),
      None => i64::from(rtp_time),
    };
    self.last = Some((rtp_time, unwrapped));
    unwrapped
  }
}

/// The playout clock of one received track.
#[derive(Debug, Default)]
pub(crate) struct Playout {
  rtp: RtpUnwrapper,
  /// (arrival µs, arrival µs minus capture µs) of the frames of the last [`FLOOR_WINDOW_US`].
  offsets: VecDeque<(i64, i64)>,
  /// (arrival µs, lateness above the floor µs) of the frames of the last [`WINDOW_US`].
  lateness: VecDeque<(i64, i64)>,
  /// When the previous frame is shown: frames are shown in order.
  last_release_us: Option<i64>,
}

/// When to show a frame, and the target it was timed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Release {
  /// Unix µs (never before the frame's arrival).
  pub at_us: i64,
  pub target_us: i64,
}

impl Playout {
  /// Times a frame with RTP timestamp `rtp_time` (90 kHz) that arrived at `arrival_us` (Unix µs).
  pub(crate) fn on_frame(&mut self, rtp_time: u32, arrival_us: i64) -> Release {
    let unwrapped = self.rtp.unwrap(rtp_time);
    let offset = arrival_us - unwrapped * 100 / 9;
    if self
      .offsets
      .back()
      .is_some_and(|(_, last)| (offset - last).abs() > RESET_US)
    {
      self.offsets.clear();
      self.lateness.clear();
      self.last_release_us = None;
    }
    self.offsets.push_back((arrival_us, offset));
    while self
      .offsets
      .front()
      .is_some_and(|(at, _)| arrival_us - at > FLOOR_WINDOW_US)
    {
      self.offsets.pop_front();
    }
    let floor = self.offsets.iter().map(|(_, o)| *o).min().unwrap_or(offset);
    self.lateness.push_back((arrival_us, offset - floor));
    while self.lateness.front().is_some_and(|(at, _)| arrival_us - at > WINDOW_US) {
      self.lateness.pop_front();
    }
    let mut late: Vec<i64> = self.lateness.iter().map(|(_, l)| *l).collect();
    late.sort_unstable();
    let index = ((late.len() - 1) as f64 * PERCENTILE).round() as usize;
    let target_us = (late[index] - MARGIN_US).clamp(0, MAX_TARGET_US);
    // Its capture time on this clock, plus the floor and the target; never before it arrived,
    // nor before the frame ahead of it.
    let mut at_us = (arrival_us - offset + floor + target_us).max(arrival_us);
    if let Some(last) = self.last_release_us {
      at_us = at_us.max(last);
    }
    self.last_release_us = Some(at_us);
    Release { at_us, target_us }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const FRAME_US: i64 = 33_333;

  /// RTP time of frame `n` at 30 fps.
  fn rtp(n: i64) -> u32 {
    (n * 3000) as u32
  }

  #[test]
  fn frames_that_arrive_evenly_are_shown_as_they_arrive() {
    let mut p = Playout::default();
    for n in 0..300 {
      let arrival = 1_000_000 + n * FRAME_US + 20_000;
      let r = p.on_frame(rtp(n), arrival);
      // Microseconds of rounding between the 90 kHz clock and 30 fps, no more.
      assert!(r.at_us - arrival < 100, "frame {n} held {} µs", r.at_us - arrival);
    }
  }

  #[test]
  fn a_burst_after_a_repair_is_spread_out_once_repairs_are_common() {
    let mut p = Playout::default();
    // Every 15th frame is held 180 ms by a lost packet; the frames behind it come right after.
    let mut shown = Vec::new();
    for n in 0..600 {
      let capture = n * FRAME_US;
      let stall_end = (n / 15) * 15 * FRAME_US + 180_000;
      let arrival = capture.max(stall_end) + 5_000;
      shown.push(p.on_frame(rtp(n), arrival).at_us);
    }
    // After the first seconds the target covers the stalls: no gap between shown frames is a
    // freeze (over 33 + 150 ms), where the arrivals had one every half second.
    let worst = shown[300..].windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(worst < 100_000, "largest gap {worst} µs");
  }

  #[test]
  fn the_target_falls_back_once_the_stalls_end() {
    let mut p = Playout::default();
    let mut last = None;
    for n in 0..600 {
      let capture = n * FRAME_US;
      let stall = if n < 150 { (n / 15) * 15 * FRAME_US + 180_000 } else { 0 };
      last = Some(p.on_frame(rtp(n), capture.max(stall) + 5_000));
    }
    // 15 s of clean arrivals after 5 s of stalls: the window has forgotten them.
    assert!(last.unwrap().target_us < 100, "{:?}", last);
  }

  #[test]
  fn a_queue_that_builds_slowly_is_not_smoothed() {
    let mut p = Playout::default();
    // A bottleneck's queue grows by 150 ms over 5 s and drains again: frames stay in step with
    // each other, so they go on as they arrive.
    for n in 0..600 {
      let queue = if n < 150 { n * 1_000 } else { (300 - n).max(0) * 1_000 };
      let arrival = n * FRAME_US + 10_000 + queue;
      let r = p.on_frame(rtp(n), arrival);
      assert!(r.at_us - arrival < 100, "frame {n} held {} µs", r.at_us - arrival);
    }
  }

  #[test]
  fn the_added_delay_is_bounded() {
    let mut p = Playout::default();
    for n in 0..300 {
      // Half the frames 600 ms late.
      let late = if n % 2 == 0 { 600_000 } else { 0 };
      let arrival = n * FRAME_US + late;
      let r = p.on_frame(rtp(n), arrival);
      assert!(r.target_us <= MAX_TARGET_US);
      assert!(r.at_us >= arrival);
    }
  }

  #[test]
  fn frames_are_shown_in_order_and_never_before_they_arrive() {
    let mut p = Playout::default();
    let mut previous = i64::MIN;
    for n in 0..400 {
      let jitter = [0, 90_000, 10_000, 200_000, 40_000][(n % 5) as usize];
      let arrival = n * FRAME_US + jitter;
      let r = p.on_frame(rtp(n), arrival);
      assert!(r.at_us >= arrival && r.at_us >= previous, "frame {n}");
      previous = r.at_us;
    }
  }

  #[test]
  fn rtp_time_wraps_without_a_jump() {
    let mut p = Playout::default();
    let start = u32::MAX - 10 * 3000;
    for n in 0..40i64 {
      let arrival = n * FRAME_US;
      let r = p.on_frame(start.wrapping_add((n * 3000) as u32), arrival);
      assert!(r.at_us - arrival < 100, "frame {n}");
    }
  }

  #[test]
  fn a_restarted_clock_starts_afresh() {
    let mut p = Playout::default();
    for n in 0..100 {
      p.on_frame(rtp(n), n * FRAME_US);
    }
    // The publisher's RTP clock jumps 10 s ahead: arrivals are timed against the new clock at
    // once, not held up to the old one's.
    for n in 100..110 {
      let r = p.on_frame(rtp(n + 300), n * FRAME_US);
      assert!(r.at_us - n * FRAME_US < 100, "frame {n}");
    }
  }
}
