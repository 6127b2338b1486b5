//! A simulcast track's share of the estimate split between its layers, lowest layer first (as
//! libwebrtc's simulcast rate allocator does): each layer gets its max before the next one is
//! considered, a layer whose minimum no longer fits is paused with every layer above it, and a
//! paused layer comes back only when 1.2x its minimum fits, so an estimate hovering at the edge
//! does not switch it on and off. The lowest wanted layer always runs. Layers no subscriber
//! wants (dynacast) get nothing and leave their bits to the others.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{interpolate, BudgetShare, SendBudget, MEDIA_SHARE};

/// A paused layer resumes when this much more than its minimum fits.
const RESUME_FACTOR: f64 = 1.2;

/// The least a layer of `pixels` is sent with: libwebrtc's simulcast table (320x180: 30 kbit/s,
/// 640x360: 150, 960x540: 350, 1280x720: 600, 1920x1080: 800), linear between its points.
pub(crate) fn layer_min_bitrate(pixels: u64) -> u64 {
  const TABLE: [(u64, u64); 5] = [
    (320 * 180, 30_000),
    (640 * 360, 150_000),
    (960 * 540, 350_000),
    (1280 * 720, 600_000),
    (1920 * 1080, 800_000),
  ];
  interpolate(&TABLE, pixels).unwrap_or(TABLE[TABLE.len() - 1].1)
}

/// One layer's limits for the allocator: encoder bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerLimits {
  pub min_bps: u64,
  pub max_bps: u64,
}

impl LayerLimits {
  /// For a layer of `width` x `height` sent at up to `max_bps`.
  pub fn new(width: u32, height: u32, max_bps: u64) -> Self {
    let min = layer_min_bitrate(u64::from(width) * u64::from(height));
    LayerLimits {
      min_bps: min.min(max_bps),
      max_bps,
    }
  }
}

/// Splits encoder bits between layers, lowest first, with resume hysteresis.
#[derive(Debug)]
pub(crate) struct LayerAllocator {
  limits: Vec<LayerLimits>,
  running: Vec<bool>,
}

impl LayerAllocator {
  pub fn new(limits: Vec<LayerLimits>) -> Self {
    let running = vec![true; limits.len()];
    LayerAllocator { limits, running }
  }

  /// The encoder bits the link must carry for the top wanted layer to resume: every lower
  /// wanted layer's max plus the top's resume threshold. While it is paused, the pacer pads up
  /// to this so that an estimate held down by light content can still grow to it (libwebrtc
  /// pads simulcast up to the top layer's minimum likewise); 0 while the top wanted layer runs
  /// or when one layer is wanted.
  pub fn padding(&self, wanted: &[bool]) -> u64 {
    let wanted: Vec<usize> = (0..self.limits.len())
      .filter(|&i| wanted.get(i).copied().unwrap_or(true))
      .collect();
    let Some((&top, lower)) = wanted.split_last() else {
      return 0;
    };
    if lower.is_empty() || self.running[top] {
      return 0;
    }
    let below: u64 = lower.iter().map(|&i| self.limits[i].max_bps).sum();
    below + ((self.limits[top].min_bps as f64 * RESUME_FACTOR) as u64).min(self.limits[top].max_bps)
  }

  /// Each layer's encoder target for `available` encoder bits (0: paused); layers not
  /// `wanted` get 0 and are passed over.
  pub fn allocate(&mut self, available: u64, wanted: &[bool]) -> Vec<u64> {
    let mut out = vec![0; self.limits.len()];
    let mut left = available;
    let mut first = true;
    let mut blocked = false;
    for (i, limits) in self.limits.iter().enumerate() {
      if !wanted.get(i).copied().unwrap_or(true) {
        self.running[i] = false;
        continue;
      }
      let need = if self.running[i] {
        limits.min_bps
      } else {
        ((limits.min_bps as f64 * RESUME_FACTOR) as u64).min(limits.max_bps)
      };
      // The lowest wanted layer runs whatever the estimate: a thin picture beats none.
      if blocked || (!first && left < need) {
        blocked = true;
        self.running[i] = false;
        continue;
      }
      first = false;
      self.running[i] = true;
      let rate = left.min(limits.max_bps).max(limits.min_bps);
      out[i] = rate;
      left = left.saturating_sub(rate);
    }
    out
  }
}

/// A simulcast track's part of the publisher's estimate, shared by its layers' encoder threads.
pub(crate) struct LayerShare {
  share: BudgetShare,
  /// Each layer's max bitrate.
  max_bps: Vec<u64>,
  allocator: Mutex<LayerAllocator>,
  /// Per layer: some subscriber wants it (dynacast; true until the server says otherwise).
  wanted: Vec<AtomicBool>,
}

impl LayerShare {
  /// Registers the track (the sum of its layers' max bitrates) with `budget`.
  pub fn new(budget: &Arc<SendBudget>, limits: Vec<LayerLimits>) -> Arc<Self> {
    let total = limits.iter().map(|l| l.max_bps).sum::<u64>().max(1);
    let wanted = limits.iter().map(|_| AtomicBool::new(true)).collect();
    Arc::new(LayerShare {
      share: budget.register(total),
      max_bps: limits.iter().map(|l| l.max_bps).collect(),
      allocator: Mutex::new(LayerAllocator::new(limits)),
      wanted,
    })
  }

  /// Whether layer `index` is wanted by some subscriber. The track's max (its part of the
  /// estimate and what the estimator probes towards) becomes the sum of its wanted layers', as
  /// libwebrtc counts only active layers: a layer wanted again makes the estimator probe for it.
  pub fn set_wanted(&self, index: usize, wanted: bool) {
    if let Some(w) = self.wanted.get(index) {
      w.store(wanted, Ordering::Relaxed);
    }
    let max: u64 = self
      .wanted
      .iter()
      .zip(&self.max_bps)
      .filter(|(w, _)| w.load(Ordering::Relaxed))
      .map(|(_, m)| m)
      .sum();
    self.share.set_max(max);
  }

  /// The estimate's part for layer `index` as an allocation (the encoder's target is
  /// [`MEDIA_SHARE`] of it); `Some(0)`: paused. Before the first estimate every wanted layer
  /// runs at its max (`None`).
  pub fn allocation(&self, index: usize) -> Option<u64> {
    let wanted: Vec<bool> = self.wanted.iter().map(|w| w.load(Ordering::Relaxed)).collect();
    let Some(track) = self.share.allocation() else {
      return if wanted.get(index).copied().unwrap_or(true) {
        None
      } else {
        Some(0)
      };
    };
    let encoder_bits = (track as f64 * MEDIA_SHARE) as u64;
    let (rates, padding) = {
      let mut allocator = self.allocator.lock().unwrap_or_else(|e| e.into_inner());
      let rates = allocator.allocate(encoder_bits, &wanted);
      (rates, allocator.padding(&wanted))
    };
    self.share.set_padding((padding as f64 / MEDIA_SHARE) as u64);
    Some((rates.get(index).copied().unwrap_or(0) as f64 / MEDIA_SHARE) as u64)
  }

  /// The track's part of the publisher's budget.
  pub fn track_share(&self) -> &BudgetShare {
    &self.share
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// LiveKit's 720p layers: 320x180 at 160 k, 640x360 at 450 k, 1280x720 at 1.7 M.
  fn layers_720p() -> LayerAllocator {
    LayerAllocator::new(vec![
      LayerLimits::new(320, 180, 160_000),
      LayerLimits::new(640, 360, 450_000),
      LayerLimits::new(1280, 720, 1_700_000),
    ])
  }

  const ALL: [bool; 3] = [true, true, true];

  #[test]
  fn minimums_follow_the_simulcast_table() {
    assert_eq!(layer_min_bitrate(320 * 180), 30_000);
    assert_eq!(layer_min_bitrate(640 * 360), 150_000);
    assert_eq!(layer_min_bitrate(1280 * 720), 600_000);
    assert_eq!(layer_min_bitrate(4000 * 3000), 800_000);
    assert_eq!(
      LayerLimits::new(1280, 720, 300_000).min_bps,
      300_000,
      "never above the max"
    );
  }

  #[test]
  fn the_lowest_layer_is_served_first() {
    let mut a = layers_720p();
    assert_eq!(a.allocate(3_000_000, &ALL), [160_000, 450_000, 1_700_000]);
    assert_eq!(a.allocate(1_500_000, &ALL), [160_000, 450_000, 890_000]);
    // 720p needs 600 k: with 500 k left it is paused.
    assert_eq!(a.allocate(1_110_000, &ALL), [160_000, 450_000, 0]);
    assert_eq!(a.allocate(400_000, &ALL), [160_000, 240_000, 0]);
    // 360p needs 150 k.
    assert_eq!(a.allocate(250_000, &ALL), [160_000, 0, 0]);
  }

  #[test]
  fn the_lowest_layer_runs_whatever_the_estimate() {
    let mut a = layers_720p();
    assert_eq!(a.allocate(10_000, &ALL), [30_000, 0, 0]);
  }

  #[test]
  fn a_paused_layer_resumes_only_with_headroom() {
    let mut a = layers_720p();
    assert_eq!(a.allocate(1_000_000, &ALL)[2], 0);
    // 610 k left over: above 720p's minimum, below 1.2x of it.
    assert_eq!(a.allocate(1_220_000, &ALL)[2], 0);
    assert_eq!(a.allocate(1_340_000, &ALL)[2], 730_000);
    // Once running, the minimum keeps it.
    assert_eq!(a.allocate(1_220_000, &ALL)[2], 610_000);
  }

  #[test]
  fn unwanted_layers_get_nothing_and_leave_their_bits() {
    let mut a = layers_720p();
    assert_eq!(a.allocate(1_000_000, &[true, false, true]), [160_000, 0, 840_000]);
    assert_eq!(a.allocate(3_000_000, &[true, false, false]), [160_000, 0, 0]);
    assert_eq!(a.allocate(3_000_000, &[false, false, true]), [0, 0, 1_700_000]);
  }

  #[test]
  fn a_paused_top_layer_asks_for_padding_up_to_its_resume_threshold() {
    let mut a = layers_720p();
    a.allocate(1_000_000, &ALL);
    // 160 k + 450 k + 1.2 x 600 k.
    assert_eq!(a.padding(&ALL), 1_330_000);
    // Only q and h wanted: h runs, nothing to pad for.
    assert_eq!(a.padding(&[true, true, false]), 0);
    a.allocate(3_000_000, &ALL);
    assert_eq!(a.padding(&ALL), 0, "every layer runs");
  }

  #[test]
  fn a_layer_share_pads_for_its_paused_layers_and_stops_when_they_run() {
    let budget = Arc::new(SendBudget::default());
    let share = LayerShare::new(
      &budget,
      vec![LayerLimits::new(320, 180, 160_000), LayerLimits::new(640, 360, 450_000)],
    );
    // 200 k of estimate: 160 k of encoder bits, all for q; h (150 k minimum) is paused.
    budget.store(200_000, Ordering::Relaxed);
    assert_eq!(share.allocation(1), Some(0));
    // (160 k + 1.2 x 150 k) / 0.8.
    assert_eq!(share.track_share().total_padding(), 425_000);
    budget.store(1_000_000, Ordering::Relaxed);
    assert!(share.allocation(1).is_some_and(|a| a > 0));
    assert_eq!(share.track_share().total_padding(), 0);
  }

  #[test]
  fn a_layer_share_pauses_unwanted_layers_before_any_estimate() {
    let budget = Arc::new(SendBudget::default());
    let share = LayerShare::new(
      &budget,
      vec![LayerLimits::new(320, 180, 160_000), LayerLimits::new(640, 360, 450_000)],
    );
    assert_eq!(share.allocation(1), None);
    assert_eq!(share.track_share().total_max(), 610_000);
    share.set_wanted(1, false);
    assert_eq!(share.allocation(1), Some(0));
    assert_eq!(share.track_share().total_max(), 160_000, "only wanted layers count");
    share.set_wanted(1, true);
    assert_eq!(share.track_share().total_max(), 610_000);
  }

  #[test]
  fn a_layer_share_splits_the_tracks_part_of_the_estimate() {
    let budget = Arc::new(SendBudget::default());
    let share = LayerShare::new(
      &budget,
      vec![LayerLimits::new(320, 180, 160_000), LayerLimits::new(640, 360, 450_000)],
    );
    // 500 k of estimate: 400 k for the encoders, 160 k + 240 k.
    budget.store(500_000, Ordering::Relaxed);
    assert_eq!(share.allocation(0), Some(200_000));
    assert_eq!(share.allocation(1), Some(300_000));
  }
}
