//! Send-side decisions for published video, free of I/O and clocks so they can be tested on
//! synthetic input: how the publisher's bandwidth estimate is shared between its tracks, the
//! encoder's target bitrate (down at once, up with care), which frames to skip so the pacer's
//! queue stays short, how often a keyframe may be made, and the picture size and frame rate the
//! target can carry at a usable quality (libwebrtc's bitrate-based quality scaling); for a
//! simulcast track, how its share is split between its layers (`layers.rs`).
//!
//! The estimate itself is str0m's send-side BWE (delay- and loss-based, from transport-wide
//! congestion control feedback); its pacer sends media at 1.1 x the estimate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::options::DegradationPreference;

mod layers;
pub(crate) use layers::{LayerLimits, LayerShare};

/// The publisher's bandwidth estimate, shared by its encoders in proportion to their tracks'
/// max bitrates.
#[derive(Default)]
pub(crate) struct SendBudget {
  estimate_bps: AtomicU64,
  /// Registered tracks: id -> max bitrate.
  tracks: Mutex<HashMap<u64, u64>>,
  /// Tracks that want padding (simulcast tracks with paused layers): id -> rate.
  padding: Mutex<HashMap<u64, u64>>,
  next_id: AtomicU64,
}

impl SendBudget {
  /// A new estimate from the publisher transport (0: none yet).
  pub fn store(&self, bps: u64, order: Ordering) {
    self.estimate_bps.store(bps, order);
  }

  pub fn estimate(&self) -> u64 {
    self.estimate_bps.load(Ordering::Relaxed)
  }

  /// A track that sends up to `max_bps` takes part until the share is dropped.
  pub fn register(self: &Arc<Self>, max_bps: u64) -> BudgetShare {
    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
    self
      .tracks
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .insert(id, max_bps.max(1));
    BudgetShare {
      budget: self.clone(),
      id,
      max_bps: AtomicU64::new(max_bps.max(1)),
    }
  }

  fn total_max(&self) -> u64 {
    let tracks = self.tracks.lock().unwrap_or_else(|e| e.into_inner());
    tracks.values().sum::<u64>().max(1)
  }

  fn total_padding(&self) -> u64 {
    let padding = self.padding.lock().unwrap_or_else(|e| e.into_inner());
    padding.values().sum::<u64>()
  }
}

/// One track's part of a [`SendBudget`].
pub(crate) struct BudgetShare {
  budget: Arc<SendBudget>,
  id: u64,
  max_bps: AtomicU64,
}

impl BudgetShare {
  /// This track's part of the estimate, `None` before the first estimate.
  pub fn allocation(&self) -> Option<u64> {
    let estimate = self.budget.estimate();
    if estimate == 0 {
      return None;
    }
    Some(allocate(
      estimate,
      self.max_bps.load(Ordering::Relaxed),
      self.budget.total_max(),
    ))
  }

  /// The track now sends up to `max_bps` (a simulcast track whose layers were paused or
  /// resumed by dynacast): its part of the estimate, and what the estimator probes towards,
  /// follow; a rise makes the estimator probe for it at once.
  pub fn set_max(&self, max_bps: u64) {
    let max_bps = max_bps.max(1);
    self.max_bps.store(max_bps, Ordering::Relaxed);
    let mut tracks = self.budget.tracks.lock().unwrap_or_else(|e| e.into_inner());
    tracks.insert(self.id, max_bps);
  }

  /// The sum of the max bitrates of all tracks: what the estimator should probe towards.
  pub fn total_max(&self) -> u64 {
    self.budget.total_max()
  }

  /// The rate this track wants the link padded up to (0: none).
  pub fn set_padding(&self, bps: u64) {
    let mut padding = self.budget.padding.lock().unwrap_or_else(|e| e.into_inner());
    if bps == 0 {
      padding.remove(&self.id);
    } else {
      padding.insert(self.id, bps);
    }
  }

  /// The sum of what all tracks want padded up to.
  pub fn total_padding(&self) -> u64 {
    self.budget.total_padding()
  }
}

impl Drop for BudgetShare {
  fn drop(&mut self) {
    let mut tracks = self.budget.tracks.lock().unwrap_or_else(|e| e.into_inner());
    tracks.remove(&self.id);
    drop(tracks);
    self.set_padding(0);
  }
}

/// `estimate` split by max bitrate: each track gets `estimate * max / total` (its encoder's
/// target is then capped at its max by [`TargetRate`]).
pub(crate) fn allocate(estimate: u64, max_bps: u64, total_max: u64) -> u64 {
  (u128::from(estimate) * u128::from(max_bps) / u128::from(total_max.max(1))) as u64
}

/// Part of a track's allocation given to the encoder: the rest covers RTP headers,
/// retransmissions and the encoder's overshoot (libvpx's CBR allows 15% over its target), so
/// the pacer's queue drains between frames.
const MEDIA_SHARE: f64 = 0.8;
/// The encoder never gets less (the link is then lost anyway; this keeps a picture moving).
pub(crate) const MIN_TARGET_BPS: u64 = 50_000;
/// Between two increases of the target, so an estimate that overshoots costs one step at most.
const INCREASE_INTERVAL_US: i64 = 1_000_000;
/// Changes smaller than this share are ignored: every retune resets parts of the rate control.
const RETUNE_SHARE: f64 = 0.05;

/// The encoder's target bitrate from a track's allocation: lowered at once, raised at most once
/// a second (the estimate itself rises by at most ~8% a second, so this only damps noise).
pub(crate) struct TargetRate {
  max_bps: u64,
  current: u64,
  last_increase_us: Option<i64>,
}

impl TargetRate {
  pub fn new(max_bps: u64) -> Self {
    TargetRate {
      max_bps: max_bps.max(MIN_TARGET_BPS),
      current: max_bps.max(MIN_TARGET_BPS),
      last_increase_us: None,
    }
  }

  pub fn current(&self) -> u64 {
    self.current
  }

  /// The target for an allocation (`None`: no estimate, the publication's max). Returns the new
  /// target when the encoder should be retuned.
  pub fn update(&mut self, allocation: Option<u64>, now_us: i64) -> Option<u64> {
    let wanted = match allocation {
      Some(a) => ((a as f64 * MEDIA_SHARE) as u64).clamp(MIN_TARGET_BPS, self.max_bps),
      None => self.max_bps,
    };
    let change = wanted.abs_diff(self.current) as f64 / self.current as f64;
    if wanted < self.current {
      if change < RETUNE_SHARE {
        return None;
      }
    } else if wanted > self.current {
      let to_max = wanted == self.max_bps;
      if change < RETUNE_SHARE && !to_max {
        return None;
      }
      if self.last_increase_us.is_some_and(|t| now_us - t < INCREASE_INTERVAL_US) {
        return None;
      }
      self.last_increase_us = Some(now_us);
    } else {
      return None;
    }
    self.current = wanted;
    Some(wanted)
  }
}

/// A model of the pacer's queue for one track: bytes written to the transport drain at the
/// track's allocation. The encoder skips a frame while the queue holds more than
/// [`SendQueue::max_delay_us`] (latency first: a late frame is worth less than a missing one).
#[derive(Default)]
pub(crate) struct SendQueue {
  bits: f64,
  last_us: Option<i64>,
}

/// At least this much queue is allowed, so one frame of a low frame rate always fits.
const MIN_QUEUE_US: i64 = 70_000;

impl SendQueue {
  /// Drains what the pacer has sent at `rate_bps` since the last call.
  pub fn drain(&mut self, now_us: i64, rate_bps: u64) {
    if let Some(last) = self.last_us {
      let elapsed = (now_us - last).max(0) as f64 / 1e6;
      self.bits = (self.bits - elapsed * rate_bps as f64).max(0.0);
    }
    self.last_us = Some(now_us);
  }

  pub fn push(&mut self, bytes: usize) {
    self.bits += bytes as f64 * 8.0;
  }

  /// How long the queue takes to leave at `rate_bps`.
  pub fn delay_us(&self, rate_bps: u64) -> i64 {
    (self.bits / rate_bps.max(1) as f64 * 1e6) as i64
  }

  /// The queue a frame may find and still be encoded: two frame intervals.
  pub fn max_delay_us(frame_interval_us: i64) -> i64 {
    (2 * frame_interval_us).max(MIN_QUEUE_US)
  }

  /// Whether the next frame should be skipped.
  pub fn congested(&self, rate_bps: u64, frame_interval_us: i64) -> bool {
    self.delay_us(rate_bps) > Self::max_delay_us(frame_interval_us)
  }

  pub fn clear(&mut self) {
    self.bits = 0.0;
  }
}

/// Keyframes on request, at most one per [`KEYFRAME_INTERVAL_US`]: a burst of PLIs (several
/// subscribers, or loss on every frame) then costs one keyframe, not one per frame. A request in
/// between is kept and served when the interval is over.
pub(crate) const KEYFRAME_INTERVAL_US: i64 = 300_000;

#[derive(Default)]
pub(crate) struct KeyframePacing {
  pending: bool,
  last_us: Option<i64>,
}

impl KeyframePacing {
  pub fn request(&mut self) {
    self.pending = true;
  }

  /// Whether the frame captured at `now_us` must be a keyframe (a clock that went back, a
  /// restarted source, does not hold a request back).
  pub fn due(&self, now_us: i64) -> bool {
    self.pending
      && self
        .last_us
        .is_none_or(|t| now_us - t >= KEYFRAME_INTERVAL_US || now_us < t)
  }

  /// A keyframe went out (asked for or not).
  pub fn sent(&mut self, now_us: i64) {
    self.pending = false;
    self.last_us = Some(now_us);
  }
}

/// Picture sizes the encoder steps through, as fractions of the source (libwebrtc alternates
/// 3/4 and 2/3 steps; these keep even sizes for the common 16:9 and 4:3 sources).
const SCALES: [(u32, u32); 5] = [(1, 1), (3, 4), (1, 2), (3, 8), (1, 4)];

/// The bitrate (at 30 fps) from which a picture of `pixels` looks usable in VP8: libwebrtc's
/// default single-layer "min start bitrate" table (320x180: 30 k, 480x270: 300 k, 640x360:
/// 500 k, 960x540: 800 k, 1280x720: 1.5 M), linear between its points and beyond 720p.
fn min_bitrate_30fps(pixels: u64) -> u64 {
  const TABLE: [(u64, u64); 5] = [
    (320 * 180, 30_000),
    (480 * 270, 300_000),
    (640 * 360, 500_000),
    (960 * 540, 800_000),
    (1280 * 720, 1_500_000),
  ];
  interpolate(&TABLE, pixels).unwrap_or_else(|| {
    let (p, b) = TABLE[TABLE.len() - 1];
    b * pixels / p
  })
}

/// The bitrate for `pixels` in a (pixels, bit/s) table sorted by pixels: the first entry's below
/// it, linear between entries; `None` beyond the last (the callers differ there).
fn interpolate(table: &[(u64, u64)], pixels: u64) -> Option<u64> {
  if pixels <= table.first()?.0 {
    return Some(table[0].1);
  }
  table.windows(2).find_map(|w| {
    let ((p0, b0), (p1, b1)) = (w[0], w[1]);
    (pixels <= p1).then(|| b0 + (b1 - b0) * (pixels - p0) / (p1 - p0))
  })
}

/// The bitrate a picture of `pixels` needs at `fps` (less at lower frame rates, but not
/// proportionally: a frame still costs its detail).
pub(crate) fn min_bitrate(pixels: u64, fps: f64) -> u64 {
  let factor = (fps / 30.0).clamp(0.5, 2.0);
  (min_bitrate_30fps(pixels) as f64 * factor) as u64
}

/// A size the encoder is told to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendSize {
  pub width: u32,
  pub height: u32,
}

/// `width` x `height` scaled by `num/den`, rounded down to even sizes (I420 chroma), at least 2.
pub(crate) fn scaled(width: u32, height: u32, (num, den): (u32, u32)) -> SendSize {
  let even = |v: u32| ((v * num / den) & !1).max(2).min(v.max(2));
  if num == den {
    return SendSize { width, height };
  }
  SendSize {
    width: even(width),
    height: even(height),
  }
}

/// Below this many pixels 'balanced' lowers the frame rate rather than the size.
const BALANCED_MIN_PIXELS: u64 = 480 * 270;
/// Frame rate 'balanced' and 'maintain-resolution' go down to at most.
const MIN_FRAMERATE: f64 = 5.0;
/// Only this long after the last change may the picture grow again.
const UPSCALE_HOLD_US: i64 = 3_000_000;
/// Shrinking waits this long, so a short dip of the estimate does not cost a keyframe.
const DOWNSCALE_HOLD_US: i64 = 500_000;
/// Growing needs this much more than the larger size's minimum: a step up near the link's
/// capacity costs a keyframe and then a step back down.
const UPSCALE_MARGIN: f64 = 1.4;

/// This share of the publication's max bitrate always carries the source's size (LiveKit's
/// presets are below the table for some sizes, e.g. 640x480 at 300 kbit/s).
const FULL_SIZE_SHARE: f64 = 0.7;
/// How long the encoder's output is watched before judging that it cannot keep to its target.
const OUTPUT_WINDOW_US: i64 = 2_000_000;
/// The encoder cannot keep to its target at this size (its quantizer is at the limit) when, over
/// a window, it made this much more than the target...
const OVERSHOOT: f64 = 1.2;
/// ...or this share of the frames had to be skipped for a full pacer queue.
const SKIPPED_SHARE: f64 = 0.25;
/// After such a step down, the picture does not grow again for this long.
const OVERSHOOT_HOLD_US: i64 = 10_000_000;
/// A frame this many times its share of the target (a keyframe, a scene cut) is a burst: it
/// says nothing about whether the encoder keeps to its target from frame to frame, and the
/// frames skipped while the pacer sends it are the pacer doing its job.
const BURST_FACTOR: f64 = 4.0;
/// Only a burst this long after the last one left out is left out: bursts more often than that
/// (keyframes asked for again and again on a bad path) are the stream's usual output.
const BURST_SPACING_US: i64 = 1_000_000;
/// The most frame slots one burst excuses: a keyframe that takes longer than half a second to
/// leave at the target says the picture is too large for the link.
const BURST_MAX_SLOTS: f64 = 15.0;

/// Chooses the picture size and frame rate for the encoder's target bitrate, from the
/// bitrate table and from what the encoder actually makes: content that needs more bits than
/// the table says (the encoder overshoots, frames are skipped) gets a smaller picture too, as
/// libwebrtc's QP-based quality scaler does.
pub(crate) struct PictureAdaptation {
  preference: DegradationPreference,
  max_bps: u64,
  /// The bitrate table scaled so that [`FULL_SIZE_SHARE`] of the publication's max bitrate is
  /// enough for the source's size: whoever chose a max below the table chose that quality.
  table_factor: f64,
  max_fps: f64,
  /// Index into [`SCALES`].
  step: usize,
  /// Since when the target has been short of the current size (for [`DOWNSCALE_HOLD_US`]).
  short_since: Option<i64>,
  last_change_us: Option<i64>,
  /// No growing before this (after a step down for overshoot).
  hold_until_us: i64,
  /// The current output window: start, frames offered, frames skipped, bits made, target.
  /// Bursts are counted apart (frames and bits) and excuse the skips they cause.
  window_start_us: Option<i64>,
  window_frames: u32,
  window_skipped: u32,
  window_bits: u64,
  window_bursts: u32,
  /// Frame slots the bursts of the window took beyond their own: as many skips are excused.
  burst_credit: f64,
  /// When a burst was last left out.
  last_burst_us: Option<i64>,
  /// The encoder could not keep to its target: step down at the next frame.
  overshoot_step: bool,
  /// The last window was over target or skipping.
  bad_window: bool,
}

/// How a frame offered to the encoder ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameOutcome {
  /// Encoded into this many bytes, a keyframe or not.
  Encoded { bytes: usize, keyframe: bool },
  /// Skipped: the pacer's queue was long.
  Skipped,
}

impl PictureAdaptation {
  /// For a publication of at most `max_bps` at `max_fps`.
  pub fn new(preference: DegradationPreference, max_fps: f64, max_bps: u64) -> Self {
    PictureAdaptation {
      preference,
      max_bps,
      table_factor: 1.0,
      max_fps: if max_fps > 0.0 { max_fps } else { 30.0 },
      step: 0,
      short_since: None,
      last_change_us: None,
      hold_until_us: i64::MIN,
      window_start_us: None,
      window_frames: 0,
      window_skipped: 0,
      window_bits: 0,
      window_bursts: 0,
      burst_credit: 0.0,
      last_burst_us: None,
      overshoot_step: false,
      bad_window: false,
    }
  }

  /// Records what became of a frame at `target_bps`. When the encoder has not kept to its target
  /// over a window, the next [`size`](Self::size) is a step smaller. Keyframes and other bursts
  /// (a scene cut) are left out of that verdict, and so are the skips they cause: libvpx makes
  /// them on purpose, and a picture a step smaller would make them again.
  pub fn record(&mut self, outcome: FrameOutcome, target_bps: u64, now_us: i64) {
    let start = *self.window_start_us.get_or_insert(now_us);
    let frame_bits = target_bps as f64 / self.max_fps;
    match outcome {
      FrameOutcome::Encoded { bytes, keyframe } => {
        let bits = bytes as f64 * 8.0;
        let burst = keyframe || bits > frame_bits * BURST_FACTOR;
        let spaced = self
          .last_burst_us
          .is_none_or(|t| now_us - t >= BURST_SPACING_US || now_us < t);
        if burst && spaced {
          self.last_burst_us = Some(now_us);
          self.window_bursts += 1;
          if frame_bits > 0.0 {
            self.burst_credit += (bits / frame_bits - 1.0).clamp(0.0, BURST_MAX_SLOTS);
          }
        } else {
          self.window_bits += bytes as u64 * 8;
          self.window_frames += 1;
        }
      }
      FrameOutcome::Skipped if self.burst_credit >= 1.0 => self.burst_credit -= 1.0,
      FrameOutcome::Skipped => {
        self.window_skipped += 1;
        self.window_frames += 1;
      }
    }
    let elapsed = now_us - start;
    if elapsed < OUTPUT_WINDOW_US {
      return;
    }
    // What the ordinary frames make, as if every slot but the skipped ones held one of them.
    let made = self.window_frames - self.window_skipped;
    let slots = f64::from(made + self.window_bursts);
    let made_bps = if made == 0 {
      0.0
    } else {
      self.window_bits as f64 / f64::from(made) * slots * 1e6 / elapsed as f64
    };
    let overshoot = made_bps > target_bps as f64 * OVERSHOOT;
    let skipping = f64::from(self.window_skipped) > f64::from(self.window_frames) * SKIPPED_SHARE;
    self.window_start_us = Some(now_us);
    self.window_frames = 0;
    self.window_skipped = 0;
    self.window_bits = 0;
    self.window_bursts = 0;
    // Credit left from a burst near the end of the window carries over, but no further.
    self.burst_credit = self.burst_credit.min(BURST_MAX_SLOTS);
    let changed_lately = self.last_change_us.is_some_and(|t| now_us - t < OUTPUT_WINDOW_US);
    // Two windows in a row: one keyframe burst (a scene cut, a new subscriber) is not a verdict.
    let bad = (overshoot || skipping) && !changed_lately;
    if bad && self.bad_window && self.preference != DegradationPreference::MaintainResolution {
      self.overshoot_step = true;
    }
    self.bad_window = bad;
  }

  /// The size to send a `width` x `height` source at for `target_bps`.
  pub fn size(&mut self, width: u32, height: u32, target_bps: u64, now_us: i64) -> SendSize {
    if self.preference == DegradationPreference::MaintainResolution {
      return SendSize { width, height };
    }
    let pixels = |step: usize| {
      let s = scaled(width, height, SCALES[step]);
      u64::from(s.width) * u64::from(s.height)
    };
    let smallest = match self.preference {
      DegradationPreference::Balanced => {
        // Down to the first step under BALANCED_MIN_PIXELS, never below it.
        (0..SCALES.len())
          .find(|&s| pixels(s) <= BALANCED_MIN_PIXELS)
          .unwrap_or(SCALES.len() - 1)
      }
      _ => SCALES.len() - 1,
    };
    let full = min_bitrate(pixels(0), self.max_fps).max(1);
    self.table_factor = (FULL_SIZE_SHARE * self.max_bps as f64 / full as f64).min(1.0);
    let factor = self.table_factor;
    let need = |step: usize| (min_bitrate(pixels(step), self.max_fps) as f64 * factor) as u64;
    if std::mem::take(&mut self.overshoot_step) {
      if self.step < smallest {
        self.step += 1;
        self.last_change_us = Some(now_us);
        self.hold_until_us = now_us + OVERSHOOT_HOLD_US;
      }
    } else if self.step < smallest && target_bps < need(self.step) {
      let since = *self.short_since.get_or_insert(now_us);
      if now_us - since >= DOWNSCALE_HOLD_US {
        // As many steps as the target needs at once: a collapse of the link is not met one
        // keyframe at a time.
        while self.step < smallest && target_bps < need(self.step) {
          self.step += 1;
        }
        self.short_since = None;
        self.last_change_us = Some(now_us);
      }
    } else {
      self.short_since = None;
      let held = self.last_change_us.is_none_or(|t| now_us - t >= UPSCALE_HOLD_US) && now_us >= self.hold_until_us;
      if self.step > 0 && held && target_bps as f64 >= need(self.step - 1) as f64 * UPSCALE_MARGIN {
        self.step -= 1;
        self.last_change_us = Some(now_us);
      }
    }
    scaled(width, height, SCALES[self.step])
  }

  /// The frame rate to encode at, once the size is chosen: 'maintain-framerate' keeps the
  /// source's; the others lower it when even the chosen size is short of bits.
  pub fn framerate(&self, size: SendSize, target_bps: u64) -> f64 {
    if self.preference == DegradationPreference::MaintainFramerate {
      return self.max_fps;
    }
    let need =
      (min_bitrate(u64::from(size.width) * u64::from(size.height), self.max_fps) as f64 * self.table_factor) as u64;
    if target_bps >= need {
      return self.max_fps;
    }
    (self.max_fps * target_bps as f64 / need as f64).clamp(MIN_FRAMERATE.min(self.max_fps), self.max_fps)
  }
}

#[cfg(test)]
mod tests;
