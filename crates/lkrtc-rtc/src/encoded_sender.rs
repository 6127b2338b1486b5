//! The sender of a track over an [`crate::EncodedVideoSource`], on its own thread: takes the
//! producer's frames in order and writes them to the transport as they are. It cannot skip a
//! delta frame without breaking the pictures after it, so whatever loses one (a full queue, a
//! pacer queue past half a second, a new transport, unmuting) makes it wait for the next
//! keyframe and ask the producer for one. The producer learns its target bitrate (the track's
//! share of the estimate) and the keyframe requests through the source's feedback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::encoded_source::{EncodedCapture, EncodedRateControl, EncodedSlot};
use crate::encoder_task::EncoderControl;
use crate::options::{VideoCodec, VideoEncoding};
use crate::pc::OutgoingFrame;
use crate::send_control::{SendBudget, SendQueue};
use crate::video_source::VideoSource;
use crate::{RtcError, RtcResult};

/// The pacer queue (at the track's share of the estimate) past which delta frames are dropped
/// until the next keyframe. Far longer than a raw encoder's: the producer's keyframes are as
/// large as it makes them (a second of the estimate, early in a call), and each drop costs a
/// wait for a keyframe. libwebrtc bounds its pacer queue at about the same time.
const MAX_QUEUE_US: i64 = 2_000_000;

/// What the statistics name the "encoder" of a pre-encoded track.
pub(crate) const PRE_ENCODED: &str = "pre-encoded";

pub(crate) struct EncodedSendParams {
  pub codec: VideoCodec,
  pub encoding: VideoEncoding,
  pub mid: String,
  pub muted: Arc<AtomicBool>,
  /// The source whose feed gets the feedback.
  pub source: VideoSource,
}

/// Starts the sender thread; it ends when the slot closes (unpublish, source closed, disconnect).
pub(crate) fn spawn(
  params: EncodedSendParams,
  slot: Arc<EncodedSlot>,
  control: Arc<EncoderControl>,
  budget: Arc<SendBudget>,
) -> RtcResult<std::thread::JoinHandle<()>> {
  std::thread::Builder::new()
    .name(format!("lkrtc-encoded-{}", params.mid))
    .spawn(move || run(params, slot, control, budget))
    .map_err(|e| RtcError::Codec(format!("cannot start the sender thread: {e}")))
}

/// Why a frame was not sent.
#[derive(Debug, PartialEq, Eq)]
enum Held {
  Muted,
  Congested,
  WaitingForKeyframe,
}

/// The decisions of one sender, apart from its thread and transport.
struct SendState {
  /// A chain of frames was broken: only a keyframe may go next.
  waiting: bool,
  paused: bool,
  queue: SendQueue,
  dropped_seen: u64,
}

impl SendState {
  fn new() -> Self {
    Self {
      waiting: true,
      paused: false,
      queue: SendQueue::default(),
      dropped_seen: 0,
    }
  }

  /// Whether a frame (keyframe or not, its size, now) goes out. `dropped`: the slot's count of frames lost to a full queue;
  /// `pace`: the track's share of the estimate, if known.
  fn admit(
    &mut self,
    (keyframe, bytes, now_us): (bool, usize, i64),
    muted: bool,
    new_route: bool,
    dropped: u64,
    pace: Option<u64>,
  ) -> Result<(), Held> {
    if new_route || dropped != self.dropped_seen {
      self.dropped_seen = dropped;
      self.waiting = true;
      self.queue.clear();
    }
    if muted != self.paused {
      self.paused = muted;
      self.waiting = true;
      self.queue.clear();
    }
    if muted {
      return Err(Held::Muted);
    }
    if let Some(pace) = pace {
      self.queue.drain(now_us, pace);
      // A keyframe always goes: it is what every wait ends with.
      if !keyframe && self.queue.delay_us(pace) > MAX_QUEUE_US {
        self.waiting = true;
        return Err(Held::Congested);
      }
    }
    if self.waiting && !keyframe {
      return Err(Held::WaitingForKeyframe);
    }
    self.waiting = false;
    self.queue.push(bytes);
    Ok(())
  }
}

fn run(params: EncodedSendParams, slot: Arc<EncodedSlot>, control: Arc<EncoderControl>, budget: Arc<SendBudget>) {
  let Some(feed) = params.source.encoded_feed() else {
    return;
  };
  let max_bps = params.encoding.max_bitrate.max(1);
  let share = budget.register(max_bps);
  let mut state = SendState::new();
  let mut desired_told: Option<(u64, u64)> = None;
  let clock = Instant::now();
  control.sending_counts().encoder = PRE_ENCODED;
  while let Ok(next) = slot.take(Duration::from_millis(200)) {
    let allocation = share.allocation();
    control.available_bps.store(allocation.unwrap_or(0), Ordering::Relaxed);
    let target = allocation.unwrap_or(max_bps).min(max_bps);
    control.bitrate_bps.store(target, Ordering::Relaxed);
    feed.offer_rate(EncodedRateControl {
      target_bitrate_bps: target,
      framerate_fps: params.encoding.max_framerate,
    });
    let rates = (
      crate::encoder_task::desired_bitrate(share.total_max()),
      share.total_padding(),
    );
    if control.keyframe.swap(false, Ordering::Relaxed) {
      feed.request_keyframe();
    }
    let Some(frame) = next else { continue };
    let new_route = control.new_route.swap(false, Ordering::Relaxed);
    if new_route {
      desired_told = None;
    }
    if desired_told != Some(rates) {
      control.set_desired_bitrate(rates.0, rates.1);
      desired_told = Some(rates);
    }
    // A track published muted still sends its first frame: the server announces a track to
    // the room only once its media has started.
    let muted = params.muted.load(Ordering::Acquire) && control.frames_encoded.load(Ordering::Relaxed) > 0;
    control.paused.store(muted, Ordering::Relaxed);
    let now_us = clock.elapsed().as_micros() as i64;
    let dropped = slot.dropped.load(Ordering::Relaxed);
    match state.admit(
      (frame.keyframe, frame.data.len(), now_us),
      muted,
      new_route,
      dropped,
      allocation,
    ) {
      Ok(()) => send(&params, &control, &frame),
      Err(held) => {
        control.frames_dropped.fetch_add(1, Ordering::Relaxed);
        match held {
          Held::Muted => {}
          Held::Congested => {
            control.skipped();
            feed.request_keyframe();
          }
          Held::WaitingForKeyframe => feed.request_keyframe(),
        }
      }
    }
  }
}

fn send(params: &EncodedSendParams, control: &EncoderControl, frame: &EncodedCapture) {
  let mut data = frame.data.clone();
  let trailer_len = frame.metadata.as_ref().map_or(0, |m| {
    crate::frame_metadata::append_trailer_for(params.codec, &mut data, m)
  });
  let len = data.len();
  let out = OutgoingFrame {
    data,
    keyframe: frame.keyframe,
    capture_time_us: frame.timestamp_us,
    rotation: frame.rotation,
    rid: None,
    trailer_len,
  };
  control.frames_encoded.fetch_add(1, Ordering::Relaxed);
  control.sending_counts().encoded(Instant::now());
  control.sent_width.store(frame.width, Ordering::Relaxed);
  control.sent_height.store(frame.height, Ordering::Relaxed);
  if frame.keyframe {
    control.keyframes_encoded.fetch_add(1, Ordering::Relaxed);
  }
  if let Err(e) = control.write(out) {
    tracing::debug!("dropping a pre-encoded frame: {e}");
    control.frames_unsent.fetch_add(1, Ordering::Relaxed);
  } else {
    control.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const MS: i64 = 1000;

  #[test]
  fn delta_frames_wait_for_the_first_keyframe() {
    let mut s = SendState::new();
    assert_eq!(
      s.admit((false, 1000, 0), false, true, 0, None),
      Err(Held::WaitingForKeyframe)
    );
    assert_eq!(s.admit((true, 5000, 33 * MS), false, false, 0, None), Ok(()));
    assert_eq!(s.admit((false, 1000, 66 * MS), false, false, 0, None), Ok(()));
  }

  #[test]
  fn a_frame_lost_to_a_full_queue_means_waiting_for_a_keyframe() {
    let mut s = SendState::new();
    assert_eq!(s.admit((true, 5000, 0), false, true, 0, None), Ok(()));
    assert_eq!(
      s.admit((false, 1000, 33 * MS), false, false, 2, None),
      Err(Held::WaitingForKeyframe)
    );
    assert_eq!(
      s.admit((false, 1000, 66 * MS), false, false, 2, None),
      Err(Held::WaitingForKeyframe)
    );
    assert_eq!(s.admit((true, 5000, 99 * MS), false, false, 2, None), Ok(()));
  }

  #[test]
  fn a_pacer_queue_past_two_seconds_drops_delta_frames_until_a_keyframe() {
    let mut s = SendState::new();
    let pace = Some(1_000_000); // 1 Mbit/s: 125 kB a second
    assert_eq!(s.admit((true, 150_000, 0), false, true, 0, pace), Ok(()));
    // 150 kB more within 10 ms: over two seconds of queue.
    assert_eq!(s.admit((false, 100_000, 5 * MS), false, false, 0, pace), Ok(()));
    assert_eq!(s.admit((false, 50_000, 10 * MS), false, false, 0, pace), Ok(()));
    assert_eq!(
      s.admit((false, 1000, 15 * MS), false, false, 0, pace),
      Err(Held::Congested)
    );
    // Drained later, a delta frame still waits for a keyframe.
    assert_eq!(
      s.admit((false, 1000, 2600 * MS), false, false, 0, pace),
      Err(Held::WaitingForKeyframe)
    );
    assert_eq!(s.admit((true, 20_000, 2633 * MS), false, false, 0, pace), Ok(()));
  }

  #[test]
  fn a_keyframe_goes_even_into_a_long_queue() {
    let mut s = SendState::new();
    let pace = Some(300_000);
    assert_eq!(s.admit((true, 100_000, 0), false, true, 0, pace), Ok(()));
    assert_eq!(s.admit((true, 100_000, 33 * MS), false, false, 0, pace), Ok(()));
    assert_eq!(
      s.admit((false, 1000, 66 * MS), false, false, 0, pace),
      Err(Held::Congested)
    );
  }

  #[test]
  fn unmuting_resumes_at_a_keyframe() {
    let mut s = SendState::new();
    assert_eq!(s.admit((true, 5000, 0), false, true, 0, None), Ok(()));
    assert_eq!(s.admit((false, 1000, 33 * MS), true, false, 0, None), Err(Held::Muted));
    assert_eq!(
      s.admit((false, 1000, 66 * MS), false, false, 0, None),
      Err(Held::WaitingForKeyframe)
    );
    assert_eq!(s.admit((true, 5000, 99 * MS), false, false, 0, None), Ok(()));
  }
}
