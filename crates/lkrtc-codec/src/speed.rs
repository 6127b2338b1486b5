//! Real-time encoder speed that follows the measured encode time: an encoder whose frames take
//! more than 60% of the frame interval (a busy or small machine, a large picture) is switched to
//! a faster setting, one that takes under 25% goes back towards the setting chosen for its size.
//! What it trades is quality at the same bitrate, against frames that would otherwise arrive
//! late or be dropped.

/// Frames between two decisions, and after a change before the next (its effect must show).
const WINDOW: u32 = 15;
/// Weight of a new encode time in the running mean.
const ALPHA: f64 = 0.15;

/// The speed of one encoder, in the codec's own steps (larger is faster).
#[derive(Debug)]
pub(crate) struct SpeedGovernor {
  /// The speed chosen for the picture size: never slower than this.
  base: i32,
  fastest: i32,
  current: i32,
  mean_ms: Option<f64>,
  frames: u32,
}

impl SpeedGovernor {
  pub(crate) fn new(base: i32, fastest: i32) -> Self {
    Self {
      base,
      fastest: fastest.max(base),
      current: base,
      mean_ms: None,
      frames: 0,
    }
  }

  #[cfg(test)]
  pub(crate) fn current(&self) -> i32 {
    self.current
  }

  /// Records one encode's time; `Some(speed)` when the encoder should change to it.
  pub(crate) fn record(&mut self, encode_ms: f64, frame_interval_ms: f64) -> Option<i32> {
    let mean = match self.mean_ms {
      Some(m) => m + ALPHA * (encode_ms - m),
      None => encode_ms,
    };
    self.mean_ms = Some(mean);
    self.frames += 1;
    if self.frames < WINDOW {
      return None;
    }
    let next = if mean > 0.6 * frame_interval_ms && self.current < self.fastest {
      (self.current + 2).min(self.fastest)
    } else if mean < 0.25 * frame_interval_ms && self.current > self.base {
      self.current - 1
    } else {
      return None;
    };
    self.current = next;
    self.frames = 0;
    Some(next)
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const FRAME_MS: f64 = 1000.0 / 30.0;

  fn run(g: &mut SpeedGovernor, ms: f64, frames: u32) -> Vec<i32> {
    (0..frames).filter_map(|_| g.record(ms, FRAME_MS)).collect()
  }

  #[test]
  fn slow_encodes_step_up_to_the_fastest_speed() {
    let mut g = SpeedGovernor::new(6, 12);
    assert_eq!(run(&mut g, 28.0, 14), Vec::<i32>::new(), "no decision before a window");
    assert_eq!(run(&mut g, 28.0, 60), vec![8, 10, 12]);
    assert_eq!(g.current(), 12);
  }

  #[test]
  fn fast_encodes_come_back_to_the_base_speed_one_step_at_a_time() {
    let mut g = SpeedGovernor::new(6, 12);
    run(&mut g, 28.0, 40);
    assert_eq!(g.current(), 10);
    assert_eq!(run(&mut g, 4.0, 100), vec![9, 8, 7, 6]);
    assert_eq!(run(&mut g, 4.0, 50), Vec::<i32>::new(), "never below the base");
  }

  #[test]
  fn encodes_in_the_middle_band_keep_the_speed() {
    let mut g = SpeedGovernor::new(6, 12);
    assert_eq!(run(&mut g, 14.0, 200), Vec::<i32>::new());
  }

  #[test]
  fn one_slow_frame_does_not_change_the_speed() {
    let mut g = SpeedGovernor::new(6, 12);
    run(&mut g, 5.0, 20);
    assert_eq!(g.record(80.0, FRAME_MS), None);
    assert_eq!(run(&mut g, 5.0, 30), Vec::<i32>::new());
  }
}
