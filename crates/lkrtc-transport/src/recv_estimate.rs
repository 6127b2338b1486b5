//! Receive-side bandwidth estimation for the subscriber connection, reported to the sender as
//! REMB (RTCP receiver estimated maximum bitrate).
//!
//! livekit-server sizes what it forwards to a subscriber (which simulcast layer, whether to pause
//! a track) from the estimates that subscriber sends, unless it runs its own send-side estimator.
//! Without them it keeps forwarding the top layer into a link that cannot carry it.
//!
//! The signal is queueing delay on the server -> subscriber path. Every RTP packet carries the
//! time the server sent it (the abs-send-time header extension, in the clear in SRTP); against
//! the time it arrived, the one-way delay up to a constant. Its minimum over the last seconds is
//! the empty path; a packet's delay above that minimum is the queue it waited in. One burst (a
//! keyframe) proves nothing, so congestion is a *standing* queue: the least queueing delay of
//! the packets of the last 200 ms above a threshold. Packets, not frames: on a link that drops
//! most of each frame, few frames complete, but every packet that arrives is a sample. Then the estimate falls a step every
//! 50 ms, to no less than 85% of what arrived, until the queue drains; the server sees a run of
//! falling estimates (what its trend detector waits for) and moves to lower layers. Without a
//! queue the estimate grows: to at least what the link just carried (so the server's padding
//! probes are seen to succeed), and by 8% a second beyond it, never past 1.5x the incoming rate.
//! Loss the retransmissions could not hide (tail drops of a full queue) counts as congestion too.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A standing queue above this is congestion.
const QUEUE_THRESHOLD: Duration = Duration::from_millis(40);
/// Below this the queue counts as drained: the estimate may grow again.
const QUEUE_CLEAR: Duration = Duration::from_millis(20);
/// The window whose least queueing delay is the standing queue.
const STANDING_WINDOW: Duration = Duration::from_millis(200);
/// How long the empty path's delay is remembered (in one-second buckets).
const BASE_WINDOW_BUCKETS: usize = 10;
/// The incoming rate is measured over this window, in 100 ms buckets.
const RATE_BUCKETS: usize = 10;
const RATE_BUCKET: Duration = Duration::from_millis(100);
/// While congested, the estimate falls one step per interval.
const DECREASE_INTERVAL: Duration = Duration::from_millis(50);
const DECREASE_STEP: f64 = 0.965;
/// The estimate never falls below this share of what arrived.
const DECREASE_FLOOR: f64 = 0.85;
/// Past that floor, while the queue stands, smaller steps down to a lower floor.
const NUDGE_STEP: f64 = 0.99;
const NUDGE_FLOOR: f64 = 0.6;
/// A standing queue that grew by this much within the window is rising.
const RISING_BY: Duration = Duration::from_millis(8);
const RISING_WINDOW: Duration = Duration::from_millis(500);
/// After a fall, the estimate holds this long before it grows.
const HOLD_AFTER_DECREASE: Duration = Duration::from_millis(1000);
/// Growth per second beyond what the link carried, and its ceiling against the incoming rate.
const GROWTH_PER_SECOND: f64 = 1.08;
const CEILING_FACTOR: f64 = 1.5;
/// A steady estimate is repeated this often; a changed one goes out at once, at most this often.
const REPORT_INTERVAL: Duration = Duration::from_millis(1000);
const MIN_REPORT_INTERVAL: Duration = Duration::from_millis(50);
/// The first estimate goes out once the rate has been measured this long.
const WARM_UP: Duration = Duration::from_millis(1000);
pub(crate) const MIN_ESTIMATE_BPS: u64 = 50_000;
/// abs-send-time: 6.18 fixed-point seconds, 24 bits, wrapping every 64 s.
const ABS_SEND_TIME_WRAP: i64 = 1 << 24;
const ABS_SEND_TIME_HZ: i64 = 1 << 18;
/// Without a packet for this long the queue is unknown: the estimate holds.
const STALE_AFTER: Duration = Duration::from_millis(400);

/// The estimator of one subscriber connection (all its tracks share the link).
#[derive(Debug)]
pub(crate) struct ReceiveEstimator {
  started: Option<Instant>,
  /// Bytes received per 100 ms bucket: (bucket start, bytes), oldest first.
  rate: VecDeque<(Instant, u64)>,
  /// The server's send clock, unwrapped.
  send_clock: SendClock,
  /// Arrival times are measured from here.
  origin: Option<Instant>,
  /// Least one-way delay per one-second bucket: (bucket start, µs), oldest first.
  base: VecDeque<(Instant, i64)>,
  /// Recent packets' queueing delay: (arrival, µs).
  recent: VecDeque<(Instant, i64)>,
  /// The standing queue at each poll over the last half second.
  queue_history: VecDeque<(Instant, Duration)>,
  /// Packets expected and lost (after retransmission) since the last decision.
  lost: u64,
  expected: u64,
  estimate: Option<f64>,
  last_decrease: Option<Instant>,
  last_growth: Option<Instant>,
  last_report: Option<(Instant, u64)>,
}

#[derive(Debug, Clone, Copy, Default)]
struct SendClock {
  last: Option<i64>,
}

impl SendClock {
  /// A 24-bit abs-send-time in µs, unwrapped across its 64 s wrap (relative to an arbitrary
  /// origin: only differences count).
  fn unwrap(&mut self, abs_24: u32) -> i64 {
    let raw = i64::from(abs_24 & 0xff_ffff);
    let ticks = match self.last {
      None => raw,
      Some(last) => {
        let wraps = (last - raw + ABS_SEND_TIME_WRAP / 2).div_euclid(ABS_SEND_TIME_WRAP);
        raw + wraps * ABS_SEND_TIME_WRAP
      }
    };
    self.last = Some(ticks);
    ticks * 1_000_000 / ABS_SEND_TIME_HZ
  }
}

/// The id a session description gives the abs-send-time header extension, if it has one.
pub(crate) fn abs_send_time_id(sdp: &str) -> Option<u8> {
  sdp.lines().find_map(|line| {
    let rest = line.trim().strip_prefix("a=extmap:")?;
    let (id, uri) = rest.split_once(' ')?;
    let id = id.split('/').next()?.parse::<u8>().ok()?;
    (uri.trim() == "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time").then_some(id)
  })
}

/// The abs-send-time (24 bits) of an SRTP packet: the RTP header and its extensions are not
/// encrypted. `None` for RTCP, a packet without the extension, or a malformed header.
pub(crate) fn rtp_abs_send_time(packet: &[u8], id: u8) -> Option<u32> {
  if packet.len() < 12 || packet[0] >> 6 != 2 || (192..=223).contains(&packet[1]) {
    return None; // not RTP (version 2), or RTCP (RFC 5761 demultiplexing)
  }
  if packet[0] & 0x10 == 0 {
    return None; // no header extension
  }
  let csrcs = usize::from(packet[0] & 0x0f);
  let at = 12 + 4 * csrcs;
  let profile = u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?]);
  let words = usize::from(u16::from_be_bytes([*packet.get(at + 2)?, *packet.get(at + 3)?]));
  let ext = packet.get(at + 4..at + 4 + words * 4)?;
  let two_byte = match profile {
    0xbede => false,
    p if p & 0xfff0 == 0x1000 => true,
    _ => return None,
  };
  let mut i = 0;
  while i < ext.len() {
    let (eid, len, head) = if two_byte {
      if ext[i] == 0 {
        i += 1; // padding
        continue;
      }
      (ext[i], usize::from(*ext.get(i + 1)?), 2)
    } else {
      if ext[i] == 0 {
        i += 1;
        continue;
      }
      let (eid, len) = (ext[i] >> 4, usize::from(ext[i] & 0x0f) + 1);
      if eid == 15 {
        return None; // reserved: stop parsing (RFC 8285)
      }
      (eid, len, 1)
    };
    let data = ext.get(i + head..i + head + len)?;
    if eid == id && len == 3 {
      return Some(u32::from_be_bytes([0, data[0], data[1], data[2]]));
    }
    i += head + len;
  }
  None
}

impl Default for ReceiveEstimator {
  fn default() -> Self {
    Self::new()
  }
}

impl ReceiveEstimator {
  pub(crate) fn new() -> Self {
    ReceiveEstimator {
      started: None,
      rate: VecDeque::new(),
      send_clock: SendClock::default(),
      origin: None,
      base: VecDeque::new(),
      recent: VecDeque::new(),
      queue_history: VecDeque::new(),
      lost: 0,
      expected: 0,
      estimate: None,
      last_decrease: None,
      last_growth: None,
      last_report: None,
    }
  }

  /// Every datagram that arrived on the connection (media, retransmissions, padding, RTCP).
  pub(crate) fn on_bytes(&mut self, now: Instant, len: usize) {
    self.started.get_or_insert(now);
    match self.rate.back_mut() {
      Some((start, bytes)) if now < *start + RATE_BUCKET => *bytes += len as u64,
      _ => {
        self.rate.push_back((now, len as u64));
        while self.rate.len() > RATE_BUCKETS {
          self.rate.pop_front();
        }
      }
    }
  }

  /// An RTP packet the server sent at `abs_send_time` (the 24-bit header extension value) that
  /// arrived at `arrival`.
  pub(crate) fn on_packet(&mut self, arrival: Instant, abs_send_time: u32, len: usize) {
    self.on_bytes(arrival, len);
    let sent_us = self.send_clock.unwrap(abs_send_time);
    let origin = *self.origin.get_or_insert(arrival);
    // One-way delay up to a constant.
    let delay_us = arrival.saturating_duration_since(origin).as_micros() as i64 - sent_us;
    match self.base.back_mut() {
      Some((start, min)) if arrival < *start + Duration::from_secs(1) => *min = (*min).min(delay_us),
      _ => {
        self.base.push_back((arrival, delay_us));
        while self.base.len() > BASE_WINDOW_BUCKETS {
          self.base.pop_front();
        }
      }
    }
    let base = self.base.iter().map(|(_, d)| *d).min().unwrap_or(delay_us);
    self.recent.push_back((arrival, delay_us - base));
    while self.recent.front().is_some_and(|(t, _)| arrival > *t + STANDING_WINDOW) {
      self.recent.pop_front();
    }
  }

  /// Packets the receiver expected and those it finally lost (no retransmission came).
  pub(crate) fn on_loss(&mut self, expected: u64, lost: u64) {
    self.expected += expected;
    self.lost += lost.min(expected);
  }

  /// The rate that arrived over the last second (bits per second), once measured.
  pub(crate) fn incoming_bps(&self, now: Instant) -> Option<f64> {
    let (first, _) = self.rate.front()?;
    let span = now.saturating_duration_since(*first).max(RATE_BUCKET);
    let bytes: u64 = self.rate.iter().map(|(_, b)| b).sum();
    Some(bytes as f64 * 8.0 / span.as_secs_f64())
  }

  /// The standing queue: the least queueing delay of the recent packets (none while nothing
  /// arrives).
  fn standing_queue(&self, now: Instant) -> Option<Duration> {
    let fresh = self.recent.iter().filter(|(t, _)| now <= *t + STALE_AFTER);
    fresh
      .map(|(_, q)| *q)
      .min()
      .map(|q| Duration::from_micros(q.max(0) as u64))
  }

  /// Updates the estimate; returns one to report to the sender now, if any.
  pub(crate) fn poll(&mut self, now: Instant) -> Option<u64> {
    let started = self.started?;
    if now < started + WARM_UP {
      return None;
    }
    let incoming = self.incoming_bps(now)?;
    let queue = self.standing_queue(now);
    if let Some(q) = queue {
      self.queue_history.push_back((now, q));
      while self
        .queue_history
        .front()
        .is_some_and(|(t, _)| now > *t + RISING_WINDOW)
      {
        self.queue_history.pop_front();
      }
    }
    let loss = if self.expected >= 50 {
      let l = self.lost as f64 / self.expected as f64;
      self.lost = 0;
      self.expected = 0;
      Some(l)
    } else {
      None
    };
    let congested = queue.is_some_and(|q| q > QUEUE_THRESHOLD) || loss.is_some_and(|l| l > 0.1);
    let clear = queue.is_some_and(|q| q < QUEUE_CLEAR) && loss.is_none_or(|l| l < 0.02);
    let estimate = *self.estimate.get_or_insert(incoming * CEILING_FACTOR);
    let next = if congested {
      if self.last_decrease.is_some_and(|t| now < t + DECREASE_INTERVAL) {
        estimate
      } else {
        self.last_decrease = Some(now);
        self.last_growth = None;
        let step = (estimate * DECREASE_STEP).max(incoming * DECREASE_FLOOR);
        if step < estimate {
          step
        } else {
          // At the floor with the queue still standing: keep stepping down, in small steps,
          // so the sender sees a falling run (a flat estimate reads as no trend).
          (estimate * NUDGE_STEP).max(incoming * NUDGE_FLOOR).min(estimate)
        }
      }
    } else if clear && !self.queue_rising(now) && self.last_decrease.is_none_or(|t| now >= t + HOLD_AFTER_DECREASE) {
      let dt = self
        .last_growth
        .map_or(0.0, |t| now.saturating_duration_since(t).as_secs_f64());
      self.last_growth = Some(now);
      let grown = estimate.max(incoming) * GROWTH_PER_SECOND.powf(dt.min(1.0));
      grown.min(estimate.max(incoming * CEILING_FACTOR))
    } else {
      self.last_growth = None;
      estimate
    };
    let next = next.max(MIN_ESTIMATE_BPS as f64);
    self.estimate = Some(next);
    let bps = next as u64;
    let due = match self.last_report {
      None => true,
      Some((at, sent)) => {
        // Every fall goes out (the sender reads a run of them as congestion); a rise once it
        // is worth it.
        let changed = bps < sent || bps.abs_diff(sent) * 100 > sent * 3;
        (changed && now >= at + MIN_REPORT_INTERVAL) || now >= at + REPORT_INTERVAL
      }
    };
    if !due {
      return None;
    }
    self.last_report = Some((now, bps));
    Some(bps)
  }

  /// The standing queue grew over the last half second: the link is filling, however slowly
  /// (a probe just above its capacity): no growth.
  fn queue_rising(&self, now: Instant) -> bool {
    let Some((_, latest)) = self.queue_history.back() else {
      return false;
    };
    let fresh = self.queue_history.iter().filter(|(t, _)| now <= *t + RISING_WINDOW);
    fresh
      .map(|(_, q)| *q)
      .min()
      .is_some_and(|least| *latest > least + RISING_BY)
  }

  /// When `poll` should run next: reports are due on time even when nothing arrives.
  pub(crate) fn next_poll(&self, now: Instant) -> Option<Instant> {
    self.started?;
    Some(now + MIN_REPORT_INTERVAL)
  }

  /// The current estimate (bits per second), once there is one.
  #[cfg(test)]
  pub(crate) fn estimate_bps(&self) -> Option<u64> {
    self.estimate.map(|e| e as u64)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A link of `link_bps` fed `offered_bps` in 30 fps frames, with a FIFO queue: each frame
  /// waits for what is ahead of it. Returns the estimates reported.
  struct Link {
    now: Instant,
    origin: Instant,
    queue_free_at: Instant,
    /// Packets on the wire: (arrival, bytes, abs-send-time).
    in_flight: VecDeque<(Instant, usize, u32)>,
  }

  impl Link {
    fn new() -> Self {
      let now = Instant::now();
      Link {
        now,
        origin: now,
        queue_free_at: now,
        in_flight: VecDeque::new(),
      }
    }

    /// Runs `secs` of 30 fps frames at `offered_bps`, sent as 1200-byte packets through a FIFO
    /// link of `link_bps` with a 200 ms queue (tail drop); the estimates reported, with their
    /// times (s since the start of this run).
    fn run(&mut self, est: &mut ReceiveEstimator, offered_bps: f64, link_bps: f64, secs: f64) -> Vec<(f64, u64)> {
      let start = self.now;
      let frame_bytes = (offered_bps / 8.0 / 30.0) as usize;
      let mut out = Vec::new();
      for _ in 0..(secs * 30.0) as usize {
        let sent = self.now + Duration::from_micros(33_333);
        let since = sent.duration_since(self.origin).as_micros() as u64;
        // abs-send-time: 6.18 fixed point, wrapping every 64 s.
        let abs = ((since * (1 << 18) / 1_000_000) % (1 << 24)) as u32;
        let mut left = frame_bytes;
        while left > 0 {
          let len = left.min(1200);
          left -= len;
          let begin = self.queue_free_at.max(sent);
          if begin > sent + Duration::from_millis(200) {
            continue; // a full queue drops what arrives (tbf's tail drop)
          }
          self.queue_free_at = begin + Duration::from_secs_f64(len as f64 * 8.0 / link_bps);
          self
            .in_flight
            .push_back((self.queue_free_at + Duration::from_millis(2), len, abs));
        }
        self.now = sent;
        while let Some(&(arrival, len, abs)) = self.in_flight.front() {
          if arrival > self.now {
            break;
          }
          self.in_flight.pop_front();
          est.on_packet(arrival, abs, len);
        }
        if let Some(bps) = est.poll(self.now) {
          out.push((self.now.duration_since(start).as_secs_f64(), bps));
        }
      }
      out
    }
  }

  #[test]
  fn a_link_that_carries_everything_keeps_the_estimate_above_the_incoming_rate() {
    let mut est = ReceiveEstimator::new();
    let mut link = Link::new();
    let reports = link.run(&mut est, 2_000_000.0, 10_000_000.0, 20.0);
    assert!(!reports.is_empty());
    for (t, bps) in &reports {
      assert!(
        *bps >= 2_000_000,
        "at {t:.1} s the estimate fell to {bps} on a clean link"
      );
    }
  }

  #[test]
  fn a_thin_link_brings_the_estimate_down_to_its_capacity_in_a_run_of_falling_reports() {
    let mut est = ReceiveEstimator::new();
    let mut link = Link::new();
    // 2.5 Mbit/s offered into 600 kbit/s.
    let reports = link.run(&mut est, 2_500_000.0, 600_000.0, 4.0);
    let last = reports.last().unwrap().1;
    assert!(
      last <= 650_000,
      "estimate still {last} after 4 s on a 600 kbit/s link: {reports:?}"
    );
    // livekit-server's trend detector waits for a dozen reports falling, not one jump: they
    // must come within a second.
    let first = reports[0].0;
    let early: Vec<_> = reports.iter().filter(|(t, _)| *t <= first + 1.0).collect();
    let falling = early.windows(2).filter(|w| w[1].1 < w[0].1).count();
    assert!(falling >= 11, "only {falling} falling reports in 1 s: {reports:?}");
  }

  #[test]
  fn once_the_sender_fits_the_link_the_estimate_settles_near_its_capacity() {
    let mut est = ReceiveEstimator::new();
    let mut link = Link::new();
    link.run(&mut est, 2_500_000.0, 600_000.0, 3.0);
    // The sender drops to a layer that fits; the queue drains.
    link.run(&mut est, 300_000.0, 600_000.0, 10.0);
    let e = est.estimate_bps().unwrap();
    assert!(
      (400_000..=800_000).contains(&e),
      "estimate {e} on a 600 kbit/s link carrying 300 kbit/s"
    );
  }

  #[test]
  fn a_probe_the_link_carries_raises_the_estimate_to_the_probed_rate() {
    let mut est = ReceiveEstimator::new();
    let mut link = Link::new();
    link.run(&mut est, 2_500_000.0, 600_000.0, 3.0);
    link.run(&mut est, 300_000.0, 5_000_000.0, 3.0);
    let before = est.estimate_bps().unwrap();
    // The link was widened; the sender probes at 1.5 Mbit/s.
    link.run(&mut est, 1_500_000.0, 5_000_000.0, 1.5);
    let after = est.estimate_bps().unwrap();
    assert!(before < 1_000_000 && after >= 1_500_000, "probe: {before} -> {after}");
  }

  #[test]
  fn a_probe_just_above_the_link_does_not_raise_the_estimate_past_it() {
    let mut est = ReceiveEstimator::new();
    let mut link = Link::new();
    link.run(&mut est, 150_000.0, 500_000.0, 5.0);
    // The sender probes at 540 kbit/s on a 500 kbit/s link: the queue fills slowly.
    link.run(&mut est, 540_000.0, 500_000.0, 3.0);
    let e = est.estimate_bps().unwrap();
    assert!(
      e <= 520_000,
      "estimate {e} after probing a 500 kbit/s link at 540 kbit/s"
    );
  }

  #[test]
  fn heavy_unrepaired_loss_lowers_the_estimate() {
    let mut est = ReceiveEstimator::new();
    let mut link = Link::new();
    link.run(&mut est, 1_000_000.0, 10_000_000.0, 2.0);
    let before = est.estimate_bps().unwrap();
    for _ in 0..10 {
      est.on_loss(100, 20);
      link.run(&mut est, 1_000_000.0, 10_000_000.0, 0.2);
    }
    let after = est.estimate_bps().unwrap();
    assert!(after < before, "20% loss kept the estimate at {after} (was {before})");
  }

  #[test]
  fn abs_send_time_unwraps_across_its_64_second_wrap() {
    let mut clock = SendClock::default();
    let first = clock.unwrap(0xff_0000);
    for step in 1..400i64 {
      let true_us = step * 250_000; // 0.25 s steps, ~100 s
      let ticks = (0xff_0000 + true_us * (1 << 18) / 1_000_000) % (1 << 24);
      let us = clock.unwrap(ticks as u32) - first;
      assert!((us - true_us).abs() <= 4, "{us} != {true_us}");
    }
  }

  #[test]
  fn abs_send_time_id_is_read_from_the_extmap_line() {
    let sdp = "v=0\r\na=extmap:2 urn:ietf:params:rtp-hdrext:toffset\r\na=extmap:3/sendrecv http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n";
    assert_eq!(abs_send_time_id(sdp), Some(3));
    assert_eq!(
      abs_send_time_id("v=0\r\na=extmap:2 urn:ietf:params:rtp-hdrext:toffset\r\n"),
      None
    );
  }

  #[test]
  fn abs_send_time_is_read_from_one_and_two_byte_header_extensions() {
    // V=2, X=1, one CSRC; one-byte extensions: id 1 (2 bytes), id 3 (3 bytes), padding.
    let mut p = vec![0x91, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
    p.extend([0xbe, 0xde, 0, 2, 0x11, 0xaa, 0xbb, 0x32, 0x12, 0x34, 0x56, 0]);
    p.extend([1, 2, 3]);
    assert_eq!(rtp_abs_send_time(&p, 3), Some(0x12_3456));
    assert_eq!(rtp_abs_send_time(&p, 5), None);
    // Two-byte form: id 3, length 3.
    let mut q = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    q.extend([0x10, 0x00, 0, 2, 3, 3, 0xab, 0xcd, 0xef, 0, 0, 0]);
    assert_eq!(rtp_abs_send_time(&q, 3), Some(0xab_cdef));
    // RTCP, truncated and extension-less packets.
    assert_eq!(rtp_abs_send_time(&[0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0], 3), None);
    assert_eq!(rtp_abs_send_time(&p[..20], 3), None);
    assert_eq!(rtp_abs_send_time(&[0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], 3), None);
    for cut in 0..p.len() {
      let _ = rtp_abs_send_time(&p[..cut], 3);
    }
  }

  #[test]
  fn no_report_before_the_rate_is_measured() {
    let mut est = ReceiveEstimator::new();
    let now = Instant::now();
    assert_eq!(est.poll(now), None);
    est.on_bytes(now, 1000);
    assert_eq!(est.poll(now + Duration::from_millis(500)), None);
  }
}
