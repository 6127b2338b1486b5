use super::*;

#[test]
fn the_estimate_is_shared_by_max_bitrate() {
  let budget = Arc::new(SendBudget::default());
  let camera = budget.register(2_000_000);
  let screen = budget.register(1_000_000);
  assert_eq!(camera.allocation(), None, "no estimate yet");
  budget.store(1_500_000, Ordering::Relaxed);
  assert_eq!(camera.allocation(), Some(1_000_000));
  assert_eq!(screen.allocation(), Some(500_000));
  assert_eq!(camera.total_max(), 3_000_000);
  drop(screen);
  assert_eq!(camera.allocation(), Some(1_500_000));
  budget.store(9_000_000, Ordering::Relaxed);
  assert_eq!(camera.allocation(), Some(9_000_000));
}

#[test]
fn the_target_drops_at_once_on_congestion() {
  let mut rate = TargetRate::new(2_500_000);
  assert_eq!(rate.update(Some(1_000_000), 0), Some(800_000));
  assert_eq!(rate.update(Some(500_000), 10_000), Some(400_000));
  assert_eq!(rate.current(), 400_000);
}

#[test]
fn the_target_rises_at_most_once_a_second() {
  let mut rate = TargetRate::new(2_500_000);
  rate.update(Some(500_000), 0);
  assert_eq!(rate.update(Some(1_000_000), 100_000), Some(800_000));
  assert_eq!(rate.update(Some(1_200_000), 600_000), None);
  assert_eq!(rate.update(Some(1_200_000), 1_100_000), Some(960_000));
}

#[test]
fn small_changes_do_not_retune_the_encoder() {
  let mut rate = TargetRate::new(2_500_000);
  rate.update(Some(1_000_000), 0);
  assert_eq!(rate.update(Some(980_000), 5_000_000), None);
  assert_eq!(rate.update(Some(1_020_000), 6_000_000), None);
}

#[test]
fn the_target_stays_within_floor_and_max() {
  let mut rate = TargetRate::new(2_500_000);
  assert_eq!(rate.update(Some(10_000), 0), Some(MIN_TARGET_BPS));
  assert_eq!(rate.update(Some(50_000_000), 2_000_000), Some(2_500_000));
  let mut rate = TargetRate::new(2_500_000);
  assert_eq!(rate.update(None, 0), None, "without an estimate the publication's max");
}

#[test]
fn a_keyframe_fills_the_queue_and_the_next_frames_are_skipped() {
  let mut q = SendQueue::default();
  let rate = 1_000_000; // 125 kB/s
  let interval = 33_333;
  q.drain(0, rate);
  q.push(50_000); // a 400 ms keyframe
  let mut skipped = 0;
  let mut t = 0;
  while q.congested(rate, interval) {
    t += interval;
    q.drain(t, rate);
    skipped += 1;
  }
  // 400 ms of data, sent until 67 ms are left.
  assert!((9..=11).contains(&skipped), "{skipped}");
  assert!(q.delay_us(rate) <= SendQueue::max_delay_us(interval));
}

#[test]
fn frames_within_the_rate_never_queue() {
  let mut q = SendQueue::default();
  let rate = 1_000_000;
  for n in 0..300i64 {
    q.drain(n * 33_333, rate);
    assert!(!q.congested(rate, 33_333));
    q.push(3_500); // 840 kbit/s
  }
}

#[test]
fn keyframe_requests_are_served_at_most_every_interval() {
  let mut k = KeyframePacing::default();
  assert!(!k.due(0));
  k.request();
  assert!(k.due(0), "the first request is served at once");
  k.sent(0);
  let mut keyframes = 0;
  // A PLI before every frame for two seconds.
  for n in 1..=60i64 {
    let now = n * 33_333;
    k.request();
    if k.due(now) {
      k.sent(now);
      keyframes += 1;
    }
  }
  assert!((6..=7).contains(&keyframes), "{keyframes}");
}

#[test]
fn a_request_inside_the_interval_is_served_after_it() {
  let mut k = KeyframePacing::default();
  k.sent(0); // the first frame
  k.request();
  assert!(!k.due(100_000));
  assert!(k.due(KEYFRAME_INTERVAL_US));
}

#[test]
fn a_clock_that_goes_back_does_not_hold_a_request() {
  let mut k = KeyframePacing::default();
  k.sent(5_000_000);
  k.request();
  assert!(k.due(1_000));
}

#[test]
fn min_bitrates_follow_the_table() {
  assert_eq!(min_bitrate(1280 * 720, 30.0), 1_500_000);
  assert_eq!(min_bitrate(640 * 360, 30.0), 500_000);
  assert_eq!(min_bitrate(640 * 360, 15.0), 250_000);
  assert_eq!(min_bitrate(1920 * 1080, 30.0), 3_375_000);
  let between = min_bitrate(800 * 450, 30.0);
  assert!((500_000..800_000).contains(&between));
}

#[test]
fn sizes_stay_even() {
  assert_eq!(
    scaled(1280, 720, (3, 4)),
    SendSize {
      width: 960,
      height: 540
    }
  );
  assert_eq!(
    scaled(1280, 720, (3, 8)),
    SendSize {
      width: 480,
      height: 270 & !1
    }
  );
  assert_eq!(scaled(101, 51, (1, 2)), SendSize { width: 50, height: 24 });
  assert_eq!(scaled(101, 51, (1, 1)), SendSize { width: 101, height: 51 });
}

fn adapt(a: &mut PictureAdaptation, target: u64, from_us: i64, to_us: i64) -> SendSize {
  let mut size = a.size(1280, 720, target, from_us);
  let mut t = from_us;
  while t < to_us {
    t += 33_333;
    size = a.size(1280, 720, target, t);
  }
  size
}

#[test]
fn a_short_target_scales_the_picture_down() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  assert_eq!(adapt(&mut a, 2_500_000, 0, 1_000_000).width, 1280);
  assert_eq!(adapt(&mut a, 1_000_000, 1_000_000, 2_000_000).width, 960);
  assert_eq!(adapt(&mut a, 600_000, 2_000_000, 3_000_000).width, 640);
}

#[test]
fn a_short_dip_does_not_change_the_size() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  adapt(&mut a, 2_500_000, 0, 1_000_000);
  assert_eq!(adapt(&mut a, 1_000_000, 1_000_000, 1_300_000).width, 1280);
  assert_eq!(adapt(&mut a, 2_500_000, 1_300_000, 2_000_000).width, 1280);
}

#[test]
fn the_picture_grows_back_with_margin_and_after_a_hold() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  adapt(&mut a, 2_500_000, 0, 100_000);
  assert_eq!(adapt(&mut a, 600_000, 100_000, 1_000_000).width, 640);
  // Enough for 960x540 but not with the margin.
  assert_eq!(adapt(&mut a, 850_000, 1_000_000, 6_000_000).width, 640);
  // With the margin, but inside the hold: no change yet.
  let held = a.size(1280, 720, 1_200_000, 1_000_000 + 1_000_000);
  assert_eq!(held.width, 640);
  assert_eq!(adapt(&mut a, 1_200_000, 6_000_000, 7_000_000).width, 960);
  // One step at a time, each after a hold.
  assert_eq!(adapt(&mut a, 2_500_000, 7_000_000, 8_500_000).width, 960);
  assert_eq!(adapt(&mut a, 2_500_000, 8_500_000, 10_100_000).width, 1280);
}

/// Frames every 33 ms from `from_us` to `to_us`, each made into `bytes` (or skipped when
/// `bytes` is 0), at `target`; the size at the end.
fn encode(a: &mut PictureAdaptation, target: u64, bytes: usize, from_us: i64, to_us: i64) -> SendSize {
  let mut t = from_us;
  let mut size = a.size(1280, 720, target, t);
  while t < to_us {
    let outcome = if bytes == 0 {
      FrameOutcome::Skipped
    } else {
      FrameOutcome::Encoded { bytes, keyframe: false }
    };
    a.record(outcome, target, t);
    t += 33_333;
    size = a.size(1280, 720, target, t);
  }
  size
}

#[test]
fn an_encoder_over_its_target_gets_a_smaller_picture() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  // 2.2 Mbit/s is plenty for 720p by the table, but the encoder makes 3 Mbit/s (12.5 kB a frame).
  assert_eq!(encode(&mut a, 2_200_000, 8_000, 0, 2_500_000).width, 1280, "on target");
  let one_window = encode(&mut a, 2_200_000, 12_500, 2_500_000, 4_500_000);
  assert_eq!(one_window.width, 1280, "one window over target is no verdict");
  assert_eq!(encode(&mut a, 2_200_000, 12_500, 4_500_000, 7_000_000).width, 960);
  // Back on target: it stays small for a while even though the table would allow 720p.
  assert_eq!(encode(&mut a, 2_200_000, 8_000, 7_000_000, 14_000_000).width, 960);
  assert_eq!(encode(&mut a, 2_200_000, 8_000, 14_000_000, 20_000_000).width, 1280);
}

/// Frames every 33 ms from `from_us` to `to_us` at `target`: every `period` frames start with a
/// burst of `burst` bytes (a keyframe, or a scene cut when `keyframe` is false), then `skips`
/// frames are skipped, the rest are `bytes` each; the size at the end.
fn encode_with_bursts(
  a: &mut PictureAdaptation,
  target: u64,
  (period, burst, keyframe, skips): (i64, usize, bool, i64),
  bytes: usize,
  (from_us, to_us): (i64, i64),
) -> SendSize {
  let mut t = from_us;
  let mut size = a.size(1280, 720, target, t);
  while t < to_us {
    let slot = (t / 33_333) % period;
    let outcome = match slot {
      0 => FrameOutcome::Encoded { bytes: burst, keyframe },
      n if n <= skips => FrameOutcome::Skipped,
      _ => FrameOutcome::Encoded { bytes, keyframe: false },
    };
    a.record(outcome, target, t);
    t += 33_333;
    size = a.size(1280, 720, target, t);
  }
  size
}

#[test]
fn keyframes_are_not_counted_as_overshoot() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  // 8 kB deltas are on a 2.2 Mbit/s target; a 160 kB keyframe every 1.5 s would take the
  // window to 2.7 Mbit/s, over 1.2 x the target.
  let size = encode_with_bursts(&mut a, 2_200_000, (45, 160_000, true, 0), 8_000, (0, 8_000_000));
  assert_eq!(size.width, 1280);
}

#[test]
fn scene_cuts_are_not_counted_as_overshoot() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  let size = encode_with_bursts(&mut a, 2_200_000, (45, 160_000, false, 0), 8_000, (0, 8_000_000));
  assert_eq!(size.width, 1280);
}

#[test]
fn frames_skipped_while_a_keyframe_is_paced_out_are_not_counted() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  // A 120 kB keyframe is 13 frames' worth at 2.2 Mbit/s: the 12 frames skipped after it are
  // over the share that counts as skipping.
  let size = encode_with_bursts(&mut a, 2_200_000, (45, 120_000, true, 12), 8_000, (0, 8_000_000));
  assert_eq!(size.width, 1280);
}

#[test]
fn keyframes_again_and_again_with_skips_get_a_smaller_picture() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  // A keyframe every 300 ms (requests on a bad path), each followed by skips: the picture is
  // too large for the link, whatever the keyframes excuse.
  let size = encode_with_bursts(&mut a, 2_200_000, (9, 120_000, true, 6), 8_000, (0, 5_000_000));
  assert_eq!(size.width, 960);
}

#[test]
fn an_encoder_over_its_target_between_keyframes_still_gets_a_smaller_picture() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  // 12.5 kB deltas make 3 Mbit/s against 2.2: the keyframes do not hide it.
  let size = encode_with_bursts(&mut a, 2_200_000, (45, 120_000, true, 0), 12_500, (0, 5_000_000));
  assert_eq!(size.width, 960);
}

#[test]
fn frames_skipped_for_a_full_queue_get_a_smaller_picture() {
  let mut a = PictureAdaptation::new(DegradationPreference::MaintainFramerate, 30.0, 2_500_000);
  let mut t = 0;
  let mut size = a.size(1280, 720, 2_000_000, t);
  // Every other frame skipped.
  while t < 4_500_000 {
    let outcome = if (t / 33_333) % 2 == 0 {
      FrameOutcome::Skipped
    } else {
      FrameOutcome::Encoded {
        bytes: 8_000,
        keyframe: false,
      }
    };
    a.record(outcome, 2_000_000, t);
    t += 33_333;
    size = a.size(1280, 720, 2_000_000, t);
  }
  assert_eq!(size.width, 960);
}

#[test]
fn maintain_resolution_does_not_scale_for_overshoot() {
  let mut a = PictureAdaptation::new(DegradationPreference::MaintainResolution, 30.0, 2_500_000);
  assert_eq!(encode(&mut a, 2_000_000, 20_000, 0, 5_000_000).width, 1280);
}

#[test]
fn a_max_bitrate_below_the_table_still_carries_the_full_size() {
  // LiveKit's preset for 640x480: 300 kbit/s at 20 fps, where the table asks ~390 kbit/s.
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 20.0, 300_000);
  let mut t = 0;
  let mut size = a.size(640, 480, 240_000, t);
  while t < 3_000_000 {
    t += 50_000;
    size = a.size(640, 480, 240_000, t);
  }
  assert_eq!(
    size,
    SendSize {
      width: 640,
      height: 480
    }
  );
  assert_eq!(a.framerate(size, 240_000), 20.0);
  // Well below what the publication asked for, it shrinks.
  while t < 5_000_000 {
    t += 50_000;
    size = a.size(640, 480, 120_000, t);
  }
  assert!(size.width < 640, "{size:?}");
}

#[test]
fn maintain_resolution_keeps_the_size_and_lowers_the_frame_rate() {
  let mut a = PictureAdaptation::new(DegradationPreference::MaintainResolution, 30.0, 2_500_000);
  let size = adapt(&mut a, 500_000, 0, 2_000_000);
  assert_eq!(
    size,
    SendSize {
      width: 1280,
      height: 720
    }
  );
  let fps = a.framerate(size, 500_000);
  assert!((5.0..=11.0).contains(&fps), "{fps}");
  assert_eq!(a.framerate(size, 2_000_000), 30.0);
}

#[test]
fn maintain_framerate_goes_down_to_the_smallest_size() {
  let mut a = PictureAdaptation::new(DegradationPreference::MaintainFramerate, 30.0, 2_500_000);
  let size = adapt(&mut a, 60_000, 0, 2_000_000);
  assert_eq!(
    size,
    SendSize {
      width: 320,
      height: 180
    }
  );
  assert_eq!(a.framerate(size, 60_000), 30.0);
}

#[test]
fn balanced_stops_shrinking_and_lowers_the_frame_rate() {
  let mut a = PictureAdaptation::new(DegradationPreference::Balanced, 30.0, 2_500_000);
  let size = adapt(&mut a, 100_000, 0, 2_000_000);
  assert_eq!(
    size,
    SendSize {
      width: 480,
      height: 270
    }
  );
  let fps = a.framerate(size, 100_000);
  assert!((5.0..30.0).contains(&fps), "{fps}");
}
