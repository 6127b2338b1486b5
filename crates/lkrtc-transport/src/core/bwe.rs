//! Bandwidth estimation. Publisher: the send-side estimator's target rate, its restart when the
//! first track's media starts, and the estimates it reports. Subscriber: the receive-side
//! estimate (see [`crate::recv_estimate`]) sent to the server as REMB.

use str0m::bwe::{Bitrate, BweKind};
use str0m::stats::PeerStats;

use super::Core;
use std::time::{Duration, Instant};

use crate::{Mid, TransportEvent, TransportRole};

/// The lowest rate the send-side estimator keeps up (media plus padding).
pub(super) const MIN_BITRATE: Bitrate = Bitrate::kbps(30);

/// How often the pacer's queues are looked at.
const QUEUE_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// Congestion, under which the encoders follow str0m's raw estimate: more of the last second
/// lost than this; for as long as str0m's average still holds estimates from before it. (A pacer
/// wait over 100 ms counted too at first, but simulcast keyframes on loopback reach it.)
const CONGESTED_LOSS: f32 = 0.10;
/// The window of str0m's averaged estimate: how long it remembers a congestion or the path
/// before a restart.
const AVERAGE_WINDOW: Duration = Duration::from_secs(3);

/// The estimate the encoders share, from str0m's raw estimate (what its pacer paces at) and its
/// estimate events (a 3 s moving average, emitted on 5% moves). After a link fell from 4 Mbit/s
/// to 800 kbit/s the average still read 3 Mbit/s 2.5 s after the raw estimate, and the pacer,
/// had dropped to 850 kbit/s, while the encoders filled the pacer with seconds of backlog: under
/// congestion (heavy loss) the lower of the two. Otherwise the higher: the
/// raw estimate also dips where nothing is congested (under a still picture, str0m's delay
/// detector reads noise as overuse and goes to 0.85x a tiny acknowledged rate: 1.5 Mbit/s to
/// 88 kbit/s on loopback), and following it there shrinks pictures and pauses simulcast layers
/// for seconds.
pub(crate) fn encoder_estimate(raw: Option<u64>, smoothed: Option<u64>, congested: bool) -> Option<u64> {
  match (raw, smoothed) {
    (Some(r), Some(s)) if congested => Some(r.min(s)),
    (Some(r), Some(s)) => Some(r.max(s)),
    (r, s) => r.or(s),
  }
}

impl Core {
  /// Publisher: reports how long the oldest packet of each sent layer has waited in str0m's
  /// pacer. The encoders skip frames on it: it catches what their model of the queue misses (a
  /// keyframe paced over several intervals, retransmissions).
  pub(super) fn sample_send_queues(&mut self, now: Instant) {
    if self.role != TransportRole::Publisher || self.queue_sampled_at.is_some_and(|t| now < t + QUEUE_SAMPLE_INTERVAL) {
      return;
    }
    self.queue_sampled_at = Some(now);
    let mut waiting = Vec::new();
    let mut api = self.rtc.direct_api();
    for t in self.tracks.iter().filter(|t| t.negotiated) {
      let Some(mid) = t.rtc else { continue };
      let rids: Vec<Option<String>> = if t.rids.is_empty() {
        vec![None]
      } else {
        t.rids.iter().cloned().map(Some).collect()
      };
      for rid in rids {
        let Some(tx) = api.stream_tx_by_mid(mid, rid.as_deref().map(Into::into)) else {
          continue;
        };
        let info = tx.queue_info();
        let delay = info
          .and_then(|q| Some(q.created_at().saturating_duration_since(q.first_unsent()?)))
          .unwrap_or_default();
        if !delay.is_zero() {
          tracing::trace!(
            ?delay,
            bytes = info.map(|q| q.byte_size()),
            packets = info.map(|q| q.packet_count()),
            age = ?info.map(|q| now.saturating_duration_since(q.created_at())),
            "pacer queue"
          );
        }
        let key = (t.local, rid);
        let was_waiting = self.queues_waiting.contains(&key);
        if delay.is_zero() && !was_waiting {
          continue;
        }
        if !delay.is_zero() {
          waiting.push(key.clone());
        }
        self.events.push_back(TransportEvent::SendQueue {
          mid: key.0,
          rid: key.1,
          delay,
        });
      }
    }
    self.queues_waiting = waiting;
  }

  /// Publisher: what the estimator probes towards (see `TransportHandle::set_desired_bitrate`).
  /// The first call (the first track's media) also restarts the estimator: its start-up probes
  /// (3x and 6x the estimate) fire once, and on LiveKit's publisher connection that is while only
  /// the data channels exist, with no media to probe with; restarted, they can find the link's
  /// capacity in the first second of video instead of an additive climb.
  pub fn set_desired_bitrate(&mut self, bps: u64, padding_bps: u64) {
    if !self.bwe {
      return;
    }
    let desired = Bitrate::bps(bps.max(MIN_BITRATE.as_u64()));
    // str0m pads up to its minimum (capped by the estimate and the desired rate).
    let padding = Bitrate::bps(padding_bps.max(MIN_BITRATE.as_u64()));
    self.rtc.bwe().set_bitrate(padding, desired);
    if !self.bwe_restarted {
      self.bwe_restarted = true;
      self.rtc.bwe().reset(Bitrate::bps(self.initial_bitrate_bps));
    }
  }

  /// Publisher, connected again after an outage (often on another path: ICE-TCP or a relay after
  /// UDP went dark): the estimator starts over from the initial rate with its start-up probes,
  /// as libwebrtc's does on a new network route. What it learnt is about the old path, and the
  /// outage itself (every packet lost) drove its loss-based estimate to the floor, from where it
  /// would climb at about 8% a second: 50 s to get back to 2.5 Mbit/s.
  pub(super) fn restart_estimate(&mut self, now: Instant) {
    if !self.bwe || !self.bwe_restarted {
      return;
    }
    let initial = Bitrate::bps(self.initial_bitrate_bps);
    self.rtc.bwe().reset(initial);
    self.loss_ceiling.clear();
    self.smoothed_bps = None;
    self.raw_bps = Some(initial.as_u64());
    self.congested_at = None;
    self.restarted_at = Some(now);
    tracing::debug!(
      bps = initial.as_u64(),
      "connected again: the bandwidth estimate starts over"
    );
    self.report_estimate();
  }

  /// Subscriber: reports the receive-side estimate as REMB on every video stream (the server
  /// takes it as the whole connection's capacity, from whichever stream it reads it on).
  pub(super) fn report_receive_estimate(&mut self, now: Instant) {
    let Some(bps) = self.recv_estimate.as_mut().and_then(|e| e.poll(now)) else {
      return;
    };
    tracing::trace!(bps, "receive estimate");
    let mids: Vec<Mid> = self.remote.keys().copied().collect();
    let mut api = self.rtc.direct_api();
    for mid in mids {
      if let Some(stream) = api.stream_rx_by_mid(mid, None) {
        stream.request_remb(Bitrate::bps(bps));
      }
    }
  }

  /// The egress estimate (TWCC, or REMB), under the loss ceiling, is what the encoders' targets
  /// are shared out of (see [`encoder_estimate`]).
  pub(super) fn on_bitrate_estimate(&mut self, kind: BweKind) {
    let estimate = match kind {
      BweKind::Twcc { estimate, .. } => Some(estimate),
      BweKind::Remb { estimate, .. } => Some(estimate),
      _ => None,
    };
    // After a restart the average still holds the old path's estimates (the outage's floor).
    let stale = self
      .restarted_at
      .is_some_and(|r| self.stats_at.is_none_or(|s| s < r + AVERAGE_WINDOW));
    if let Some(estimate) = estimate.filter(|_| !stale) {
      self.smoothed_bps = Some(estimate.as_u64());
      self.report_estimate();
    }
  }

  /// The estimate the encoders share, before the loss ceiling (see [`encoder_estimate`]).
  fn estimate(&self) -> Option<u64> {
    let congested = match (self.congested_at, self.stats_at) {
      (Some(c), Some(s)) => s.saturating_duration_since(c) < AVERAGE_WINDOW,
      _ => false,
    };
    encoder_estimate(self.raw_bps, self.smoothed_bps, congested)
  }

  /// Publisher: str0m's statistics (every `STATS_INTERVAL`) carry its raw estimate, the bytes
  /// sent and the loss the feedback showed over the last second, from which the loss ceiling is
  /// set.
  pub(super) fn on_peer_stats(&mut self, stats: &PeerStats, now: Instant) {
    if !self.bwe {
      return;
    }
    if let Some(raw) = stats.bwe_tx {
      self.raw_bps = Some(raw.as_u64());
    }
    self.stats_at = Some(now);
    if stats.egress_loss_fraction.is_some_and(|l| l > CONGESTED_LOSS) {
      self.congested_at = Some(now);
    }
    let Some(estimate) = self.estimate() else {
      return;
    };
    tracing::trace!(
      loss = ?stats.egress_loss_fraction,
      estimate,
      bwe = ?stats.bwe_tx.map(|b| b.as_u64()),
      bytes = stats.peer_bytes_tx,
      "egress"
    );
    let changed = self
      .loss_ceiling
      .report(now, stats.peer_bytes_tx, stats.egress_loss_fraction, estimate);
    if let Some(ceiling) = changed {
      tracing::debug!(
        ?ceiling,
        loss = ?stats.egress_loss_fraction,
        estimate,
        "loss ceiling"
      );
    }
    self.report_estimate();
  }

  /// Reports the estimate under the ceiling when it changed.
  fn report_estimate(&mut self) {
    let Some(estimate) = self.estimate() else {
      return;
    };
    let bps = self.loss_ceiling.ceiling().map_or(estimate, |c| c.min(estimate));
    if self.reported_bps != Some(bps) {
      self.reported_bps = Some(bps);
      self.events.push_back(TransportEvent::BitrateEstimate { bps });
    }
  }
}

#[cfg(test)]
mod tests {
  use std::time::Instant;

  use super::super::Core;
  use crate::{TransportConfig, TransportEvent, TransportRole};

  fn core(role: TransportRole, now: Instant) -> Core {
    let config = TransportConfig::new(role, "127.0.0.1".parse().unwrap());
    Core::new(&config, "127.0.0.1:50000".parse().unwrap(), &[], now)
  }

  fn estimates(core: &mut Core) -> Vec<u64> {
    core
      .take_events()
      .filter_map(|e| match e {
        TransportEvent::BitrateEstimate { bps } => Some(bps),
        _ => None,
      })
      .collect()
  }

  #[test]
  fn a_publisher_connected_again_after_an_outage_estimates_from_the_start() {
    let now = Instant::now();
    let mut core = core(TransportRole::Publisher, now);
    core.set_desired_bitrate(2_500_000, 0);
    core.set_connected(true, now);
    assert_eq!(
      estimates(&mut core),
      Vec::<u64>::new(),
      "the first connection keeps the estimate"
    );
    core.set_connected(false, now);
    core.set_connected(true, now);
    assert_eq!(estimates(&mut core), vec![core.initial_bitrate_bps]);
  }

  fn stats(at: Instant, bytes_sent: u64, loss: f32, estimate: u64) -> str0m::stats::PeerStats {
    str0m::stats::PeerStats {
      peer_bytes_rx: 0,
      peer_bytes_tx: bytes_sent,
      bytes_rx: 0,
      bytes_tx: bytes_sent,
      timestamp: at,
      bwe_tx: Some(str0m::bwe::Bitrate::bps(estimate)),
      egress_loss_fraction: Some(loss),
      ingress_loss_fraction: None,
      rtt: None,
      selected_candidate_pair: None,
    }
  }

  #[test]
  fn a_publisher_whose_link_loses_heavily_reports_what_arrived_as_its_estimate() {
    let now = Instant::now();
    let mut core = core(TransportRole::Publisher, now);
    core.set_desired_bitrate(2_500_000, 0);
    core.on_peer_stats(&stats(now, 1_000_000, 0.0, 3_000_000), now);
    assert_eq!(estimates(&mut core), vec![3_000_000]);
    // 3 Mbit/s sent over the last second, 60% of it lost: 1.2 Mbit/s arrived.
    let later = now + std::time::Duration::from_secs(1);
    core.on_peer_stats(&stats(later, 1_375_000, 0.6, 3_000_000), later);
    let reported = estimates(&mut core);
    assert!(
      reported.len() == 1 && (1_075_000..=1_085_000).contains(&reported[0]),
      "{reported:?}: 0.9 of 1.2 Mbit/s"
    );
    // The estimator's own estimate, as it falls, is reported under the ceiling.
    let then = later + std::time::Duration::from_millis(200);
    core.on_peer_stats(&stats(then, 1_400_000, 0.05, 2_000_000), then);
    assert_eq!(estimates(&mut core), Vec::<u64>::new());
    // Reconnected after an outage, the ceiling goes with the rest of what was estimated.
    core.set_connected(true, later);
    core.set_connected(false, later);
    core.set_connected(true, later);
    assert_eq!(estimates(&mut core), vec![core.initial_bitrate_bps]);
    assert_eq!(core.loss_ceiling.ceiling(), None);
  }

  fn smoothed(bps: u64) -> str0m::bwe::BweKind {
    str0m::bwe::BweKind::Twcc {
      estimate: str0m::bwe::Bitrate::bps(bps),
      can_probe: true,
    }
  }

  #[test]
  fn under_loss_the_encoders_follow_the_raw_estimate_not_the_average() {
    let now = Instant::now();
    let mut core = core(TransportRole::Publisher, now);
    core.set_desired_bitrate(2_500_000, 0);
    core.on_bitrate_estimate(smoothed(3_000_000));
    assert_eq!(estimates(&mut core), vec![3_000_000]);
    core.on_peer_stats(&stats(now, 0, 0.2, 850_000), now);
    assert_eq!(estimates(&mut core), vec![850_000]);
    // The 3 s average still reads high: it is not followed while the loss lasts.
    core.on_bitrate_estimate(smoothed(2_900_000));
    assert_eq!(estimates(&mut core), Vec::<u64>::new());
  }

  #[test]
  fn without_congestion_a_raw_estimate_below_the_average_is_not_followed() {
    let now = Instant::now();
    let mut core = core(TransportRole::Publisher, now);
    core.set_desired_bitrate(2_500_000, 0);
    core.on_bitrate_estimate(smoothed(1_500_000));
    // A still picture: nothing lost, the pacer empty; the raw estimate read noise as overuse.
    core.on_peer_stats(&stats(now, 0, 0.0, 90_000), now);
    assert_eq!(estimates(&mut core), vec![1_500_000]);
    // A raw estimate above the average is followed at once.
    core.on_peer_stats(&stats(now, 0, 0.0, 1_800_000), now);
    assert_eq!(estimates(&mut core), vec![1_800_000]);
  }

  #[test]
  fn after_congestion_the_raw_estimate_rules_while_the_average_still_remembers_before() {
    let now = Instant::now();
    let mut core = core(TransportRole::Publisher, now);
    core.set_desired_bitrate(2_500_000, 0);
    core.on_bitrate_estimate(smoothed(3_000_000));
    core.on_peer_stats(&stats(now, 0, 0.4, 850_000), now);
    assert_eq!(estimates(&mut core), vec![3_000_000, 850_000]);
    // The loss is over, and the average still reads high: for 3 s the raw estimate rules.
    let ms = |n| now + std::time::Duration::from_millis(n);
    core.on_peer_stats(&stats(ms(2_800), 0, 0.0, 800_000), ms(2_800));
    assert_eq!(estimates(&mut core), vec![800_000]);
    core.on_peer_stats(&stats(ms(3_200), 0, 0.0, 800_000), ms(3_200));
    assert_eq!(estimates(&mut core), vec![3_000_000]);
  }

  #[test]
  fn after_a_restart_the_old_paths_average_is_not_followed() {
    let now = Instant::now();
    let mut core = core(TransportRole::Publisher, now);
    core.set_desired_bitrate(2_500_000, 0);
    core.on_peer_stats(&stats(now, 0, 0.0, 150_000), now);
    core.set_connected(true, now);
    core.set_connected(false, now);
    core.set_connected(true, now);
    assert_eq!(estimates(&mut core), vec![150_000, core.initial_bitrate_bps]);
    // str0m's average still holds the outage's 150 kbit/s: for its 3 s window it is not used.
    core.on_bitrate_estimate(smoothed(400_000));
    let soon = now + std::time::Duration::from_millis(1_000);
    core.on_peer_stats(&stats(soon, 0, 0.05, 3_500_000), soon);
    assert_eq!(estimates(&mut core), vec![3_500_000]);
  }

  #[test]
  fn a_subscriber_connected_again_has_no_estimate_to_restart() {
    let now = Instant::now();
    let mut core = core(TransportRole::Subscriber, now);
    core.set_connected(true, now);
    core.set_connected(false, now);
    core.set_connected(true, now);
    assert_eq!(estimates(&mut core), Vec::<u64>::new());
  }
}
