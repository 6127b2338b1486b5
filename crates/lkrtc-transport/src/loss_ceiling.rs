//! A ceiling on the publisher's bandwidth estimate from what the link delivered while it lost
//! much of what was sent.
//!
//! str0m's estimator (a GCC port) reacts to a link that falls from 4 Mbit/s to 800 kbit/s in
//! 3-4 s: its delay-based detector sees the bottleneck's queue grow once, then a queue that stays
//! full (its delay no longer rises) while the bottleneck drops what does not fit, and its
//! loss-based controller lowers the estimate a step at a time. Meanwhile the encoders keep
//! writing 2-3 Mbit/s, keyframes included, and the backlog takes seconds to leave. libwebrtc's
//! loss-based rule (over 10% loss, `(1 - loss / 2)` a step) does the same job there; this one goes
//! straight to what arrived. Over 10% of the packets lost in the last second (str0m's count from
//! the transport-wide feedback), the estimate is held at 0.9 of the rate that arrived over that
//! second (the rate sent times `1 - loss`); while the link stays saturated, what arrived is its
//! capacity, so the cuts of later reports converge on it rather than spiral down. Two seconds
//! after the last cut, with the loss at 10% or less, the ceiling rises 8% a second (libwebrtc's
//! rise): a cut on a link whose loss is random rather than congestion costs a few seconds, not the
//! rest of the call. It goes once the estimator's own estimate is below it, or when the estimator
//! starts over.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Loss above which the ceiling is cut.
const CUT_LOSS: f32 = 0.10;
/// The share of the delivered rate the ceiling is set to (room for the queue to drain).
const DELIVERED_SHARE: f64 = 0.9;
/// The span the loss is counted over, and the rate sent with it.
const WINDOW: Duration = Duration::from_secs(1);
/// How long a cut holds before the ceiling may rise.
const RISE_HOLD: Duration = Duration::from_secs(2);
/// The rise per second while the loss is at most [`CUT_LOSS`].
const RISE_PER_SECOND: f64 = 1.08;
/// The lowest ceiling (a link that delivered next to nothing was usually not sent much).
const FLOOR_BPS: u64 = 50_000;

#[derive(Debug, Default)]
pub(crate) struct LossCeiling {
  /// Bytes sent so far at each recent report, oldest first, covering at least [`WINDOW`].
  sent: VecDeque<(Instant, u64)>,
  ceiling: Option<u64>,
  last_cut: Option<Instant>,
  last_report: Option<Instant>,
}

impl LossCeiling {
  /// A report of the bytes sent so far and the loss over the last second (`None` when no
  /// feedback covered it). `estimate` is the estimator's own. Returns the ceiling when it
  /// changed (`Some(None)`: no ceiling any more).
  pub fn report(&mut self, now: Instant, bytes_sent: u64, loss: Option<f32>, estimate: u64) -> Option<Option<u64>> {
    let before = self.ceiling;
    let since_last = self.last_report.map(|t| now.saturating_duration_since(t));
    self.last_report = Some(now);
    self.sent.push_back((now, bytes_sent));
    while self.sent.len() > 2 && self.sent[1].0 + WINDOW <= now {
      self.sent.pop_front();
    }
    let rate = self.rate(now);
    if self.ceiling.is_some_and(|c| estimate <= c) {
      self.ceiling = None;
    }
    match (loss, rate) {
      (Some(loss), Some(rate)) if loss > CUT_LOSS => {
        let delivered = rate as f64 * f64::from(1.0 - loss);
        let cut = ((delivered * DELIVERED_SHARE) as u64).max(FLOOR_BPS);
        if cut < self.ceiling.unwrap_or(estimate) {
          self.ceiling = Some(cut);
          self.last_cut = Some(now);
        }
      }
      (Some(loss), _) if loss <= CUT_LOSS && self.last_cut.is_none_or(|t| now >= t + RISE_HOLD) => {
        if let (Some(c), Some(dt)) = (self.ceiling, since_last) {
          let risen = (c as f64 * RISE_PER_SECOND.powf(dt.as_secs_f64().min(1.0))) as u64;
          self.ceiling = (risen < estimate).then_some(risen);
        }
      }
      _ => {}
    }
    (self.ceiling != before).then_some(self.ceiling)
  }

  /// The estimator started over: what the ceiling knew is about the old path.
  pub fn clear(&mut self) {
    *self = Self::default();
  }

  pub fn ceiling(&self) -> Option<u64> {
    self.ceiling
  }

  /// The rate sent over the reports kept (about the last second), in bit/s.
  fn rate(&self, now: Instant) -> Option<u64> {
    let &(t0, b0) = self.sent.front()?;
    let span = now.saturating_duration_since(t0);
    if span < WINDOW / 2 {
      return None;
    }
    let &(_, b1) = self.sent.back()?;
    Some((b1.saturating_sub(b0) as f64 * 8.0 / span.as_secs_f64()) as u64)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const STEP: Duration = Duration::from_millis(500);

  /// Reports every 500 ms of `rate` bit/s sent at `loss`, for `seconds`; the ceilings after each.
  fn run(
    c: &mut LossCeiling,
    start: Instant,
    sent: &mut u64,
    rate: u64,
    loss: f32,
    estimate: u64,
    seconds: u32,
  ) -> Vec<Option<u64>> {
    (1..=seconds * 2)
      .map(|i| {
        *sent += rate / 8 / 2;
        c.report(start + STEP * i, *sent, Some(loss), estimate);
        c.ceiling()
      })
      .collect()
  }

  #[test]
  fn a_link_that_loses_little_sets_no_ceiling() {
    let mut c = LossCeiling::default();
    let (now, mut sent) = (Instant::now(), 0);
    let ceilings = run(&mut c, now, &mut sent, 3_000_000, 0.05, 3_600_000, 10);
    assert!(ceilings.iter().all(Option::is_none), "{ceilings:?}");
  }

  #[test]
  fn heavy_loss_holds_the_estimate_at_what_arrived() {
    let mut c = LossCeiling::default();
    let (now, mut sent) = (Instant::now(), 0);
    // 3 Mbit/s sent, 70% lost: 900 kbit/s arrived.
    let ceilings = run(&mut c, now, &mut sent, 3_000_000, 0.7, 3_600_000, 1);
    let ceiling = ceilings.last().unwrap().expect("a ceiling");
    assert!((790_000..=830_000).contains(&ceiling), "{ceiling}");
  }

  #[test]
  fn while_the_link_stays_saturated_the_cuts_follow_what_arrived() {
    let mut c = LossCeiling::default();
    let (now, mut sent) = (Instant::now(), 0);
    let first = run(&mut c, now, &mut sent, 3_000_000, 0.5, 3_600_000, 1)
      .last()
      .unwrap()
      .unwrap();
    // Sending at the cut (1.35 Mbit/s) into an 800 kbit/s link: 41% lost, cut to 0.9 x 800k.
    let later = run(&mut c, now + WINDOW, &mut sent, first, 0.41, 3_600_000, 2);
    let last = later.last().unwrap().unwrap();
    assert!((700_000..=740_000).contains(&last), "{first} -> {later:?}");
    // At 720 kbit/s nothing is lost any more: no further cut.
    let held = run(&mut c, now + WINDOW * 2, &mut sent, last, 0.0, 3_600_000, 1);
    assert!(held.iter().all(|h| *h == Some(last)), "{held:?}");
  }

  #[test]
  fn a_cut_holds_for_two_seconds_before_the_ceiling_rises() {
    let mut c = LossCeiling::default();
    let (now, mut sent) = (Instant::now(), 0);
    let cut = run(&mut c, now, &mut sent, 2_000_000, 0.5, 3_000_000, 1)
      .last()
      .unwrap()
      .unwrap();
    let after = run(&mut c, now + WINDOW, &mut sent, cut, 0.0, 3_000_000, 3);
    assert_eq!(&after[..3], &[Some(cut); 3], "{after:?}");
    assert!(
      after[4].unwrap() > cut && after[5].unwrap() > after[4].unwrap(),
      "{after:?}"
    );
  }

  #[test]
  fn the_ceiling_rises_while_the_link_loses_little_and_goes_when_the_estimate_is_below_it() {
    let mut c = LossCeiling::default();
    let (now, mut sent) = (Instant::now(), 0);
    let cut = run(&mut c, now, &mut sent, 2_000_000, 0.5, 3_000_000, 1)
      .last()
      .unwrap()
      .unwrap();
    let later = now + WINDOW;
    let risen = run(&mut c, later, &mut sent, cut, 0.0, 3_000_000, 6);
    let last = risen.last().unwrap().unwrap();
    // Held for two seconds, then 8% a second for 4.5 s: about 1.41x.
    assert!(last > cut * 139 / 100 && last < cut * 143 / 100, "{cut} -> {last}");
    assert_eq!(c.report(later + WINDOW * 7, sent, Some(0.0), last - 1), Some(None));
  }

  #[test]
  fn the_ceiling_rises_under_moderate_loss_too() {
    let mut c = LossCeiling::default();
    let (now, mut sent) = (Instant::now(), 0);
    let cut = run(&mut c, now, &mut sent, 2_000_000, 0.5, 3_000_000, 1)
      .last()
      .unwrap()
      .unwrap();
    let risen = run(&mut c, now + WINDOW, &mut sent, cut, 0.06, 3_000_000, 4);
    let last = risen.last().unwrap().unwrap();
    // Held for two seconds, then 8% a second for 2.5 s: about 1.21x.
    assert!(last > cut * 119 / 100 && last < cut * 123 / 100, "{cut} -> {last}");
  }

  #[test]
  fn no_feedback_leaves_the_ceiling_alone() {
    let mut c = LossCeiling::default();
    let now = Instant::now();
    for i in 1..=6 {
      assert_eq!(c.report(now + STEP * i, 100_000 * u64::from(i), None, 3_000_000), None);
    }
  }
}
