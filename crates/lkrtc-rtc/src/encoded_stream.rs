//! Receiving encoded video: an [`EncodedVideoStream`] yields a remote track's frames as they
//! arrived, before decoding (VP8 frames, H.264 Annex-B access units, VP9 frames, AV1 temporal
//! units), stamped like decoded frames, for recorders that mux them. Bounded: a reader that
//! falls behind loses the frames waiting and the stream resumes at the next keyframe (a muxed
//! file needs every frame after a keyframe), which the sender is asked for at once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::frame_metadata::FrameMetadata;
use crate::options::VideoCodec;
use crate::remote_track::RemoteVideoTrack;
use lkrtc_video::VideoRotation;

/// One encoded frame of a remote track.
#[derive(Debug, Clone)]
pub struct EncodedFrameEvent {
  /// The frame, as the sender's encoder made it (the packet trailer removed).
  pub data: Arc<Vec<u8>>,
  /// Its codec.
  pub codec: VideoCodec,
  /// Whether it decodes on its own.
  pub keyframe: bool,
  /// Capture time in microseconds, as for decoded frames.
  pub timestamp_us: i64,
  /// The RTP timestamp (90 kHz) it was sent with.
  pub rtp_timestamp: u32,
  /// How the receiver should rotate the picture.
  pub rotation: VideoRotation,
  /// What the publisher attached to the frame.
  pub metadata: Option<FrameMetadata>,
}

/// While waiting for a keyframe, it is asked for again this often.
const KEYFRAME_RETRY: Duration = Duration::from_millis(500);

/// Frames an encoded stream keeps for a slow reader by default: two seconds at 30 fps.
pub const DEFAULT_ENCODED_CAPACITY: usize = 60;

#[derive(Debug, Default)]
struct QueueState {
  frames: VecDeque<EncodedFrameEvent>,
  closed: bool,
  /// Skipping until a keyframe: the stream just started, or frames were lost to a full queue.
  waiting_for_keyframe: bool,
  /// The wait is for lost frames (they count as dropped).
  after_loss: bool,
  /// When the sender was last asked for the keyframe waited for.
  asked_at: Option<Instant>,
  /// The reader asked for a keyframe: the sender is asked when the next frame comes.
  keyframe_wanted: bool,
  dropped: u64,
}

/// The queue between a track's decoder thread and one encoded stream.
#[derive(Debug)]
pub(crate) struct EncodedQueue {
  state: Mutex<QueueState>,
  capacity: usize,
  pub(crate) notify: Notify,
}

impl EncodedQueue {
  pub(crate) fn new(capacity: usize) -> Arc<Self> {
    Arc::new(Self {
      state: Mutex::default(),
      capacity: capacity.max(1),
      notify: Notify::new(),
    })
  }

  fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// Queues a frame; true when the stream lost frames and needs a keyframe from the sender.
  pub(crate) fn push(&self, event: &EncodedFrameEvent) -> bool {
    let mut s = self.lock();
    if s.closed {
      return false;
    }
    let now = Instant::now();
    // A keyframe arriving answers the reader's request.
    let wanted = std::mem::take(&mut s.keyframe_wanted) && !event.keyframe;
    if s.waiting_for_keyframe && !event.keyframe {
      s.dropped += u64::from(s.after_loss);
      // The request or the keyframe may be lost (the server also throttles requests): again
      // every half second while waiting.
      let ask = wanted || s.asked_at.is_none_or(|t| now >= t + KEYFRAME_RETRY);
      if ask {
        s.asked_at = Some(now);
      }
      return ask;
    }
    s.waiting_for_keyframe = false;
    if s.frames.len() >= self.capacity {
      // What waits is a chain a muxer cannot cut into: drop it and start again at a keyframe.
      s.dropped += s.frames.len() as u64;
      s.frames.clear();
      if !event.keyframe {
        s.dropped += 1;
        (s.waiting_for_keyframe, s.after_loss, s.asked_at) = (true, true, Some(now));
        return true;
      }
    }
    s.frames.push_back(event.clone());
    drop(s);
    self.notify.notify_one();
    wanted
  }

  pub(crate) fn pop(&self) -> Option<EncodedFrameEvent> {
    self.lock().frames.pop_front()
  }

  pub(crate) fn close(&self) {
    self.lock().closed = true;
    self.notify.notify_waiters();
    self.notify.notify_one();
  }

  pub(crate) fn is_closed(&self) -> bool {
    self.lock().closed
  }

  fn dropped(&self) -> u64 {
    self.lock().dropped
  }
}

/// Asks the publisher of an [`EncodedVideoStream`]'s track for a keyframe (a relay whose own
/// subscribers need one, a recorder starting a new file). The request goes out with the next
/// frame that is not one; the server may throttle requests that come too often.
#[derive(Clone, Debug)]
pub struct KeyframeRequester(Arc<EncodedQueue>);

impl KeyframeRequester {
  /// Asks for a keyframe.
  pub fn request(&self) {
    self.0.lock().keyframe_wanted = true;
  }
}

/// The encoded frames of one remote video track. Ends (`next()` gives `None`) when closed, when
/// the track is unsubscribed or when the room disconnects.
pub struct EncodedVideoStream {
  queue: Arc<EncodedQueue>,
  track: RemoteVideoTrack,
}

impl EncodedVideoStream {
  /// A stream of `track`'s encoded frames from now on, starting at its next keyframe (asked for
  /// at once); `capacity` frames are kept for a slow reader.
  pub fn new(track: &RemoteVideoTrack, capacity: usize) -> Self {
    let queue = EncodedQueue::new(capacity);
    // The first frame a muxer can use is a keyframe.
    queue.lock().waiting_for_keyframe = true;
    track.attach_encoded(queue.clone());
    Self {
      queue,
      track: track.clone(),
    }
  }

  /// The next frame, waiting for one; `None` once the stream has ended. Frames queued before
  /// the end are still delivered.
  pub async fn next(&mut self) -> Option<EncodedFrameEvent> {
    loop {
      let notified = self.queue.notify.notified();
      if let Some(event) = self.queue.pop() {
        return Some(event);
      }
      if self.queue.is_closed() {
        return None;
      }
      notified.await;
    }
  }

  /// A handle that asks the track's publisher for a keyframe, usable while `next` waits.
  pub fn keyframe_requester(&self) -> KeyframeRequester {
    KeyframeRequester(self.queue.clone())
  }

  /// Frames this stream lost to a slow reader (and skipped until the next keyframe).
  pub fn dropped_frames(&self) -> u64 {
    self.queue.dropped()
  }

  /// Ends the stream.
  pub fn close(&mut self) {
    self.queue.close();
    self.track.detach_encoded(&self.queue);
  }
}

impl Drop for EncodedVideoStream {
  fn drop(&mut self) {
    self.close();
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn event(n: u32, keyframe: bool) -> EncodedFrameEvent {
    EncodedFrameEvent {
      data: Arc::new(vec![n as u8]),
      codec: VideoCodec::Vp8,
      keyframe,
      timestamp_us: i64::from(n),
      rtp_timestamp: n * 3000,
      rotation: VideoRotation::Rotation0,
      metadata: None,
    }
  }

  #[test]
  fn a_keyframe_request_goes_out_with_the_next_delta_frame_once() {
    let queue = EncodedQueue::new(10);
    let requester = KeyframeRequester(queue.clone());
    assert!(!queue.push(&event(0, true)));
    requester.request();
    assert!(queue.push(&event(1, false)), "asked with the next frame");
    assert!(!queue.push(&event(2, false)), "asked once");
    // A keyframe that comes first answers the request.
    requester.request();
    assert!(!queue.push(&event(3, true)));
    assert!(!queue.push(&event(4, false)));
    let kept: Vec<i64> = std::iter::from_fn(|| queue.pop()).map(|e| e.timestamp_us).collect();
    assert_eq!(kept, [0, 1, 2, 3, 4]);
  }

  #[test]
  fn a_full_queue_drops_its_chain_and_resumes_at_the_next_keyframe() {
    let queue = EncodedQueue::new(3);
    assert!(!queue.push(&event(0, true)));
    assert!(!queue.push(&event(1, false)));
    assert!(!queue.push(&event(2, false)));
    // Full: the waiting chain goes, and the sender is asked for a keyframe.
    assert!(queue.push(&event(3, false)));
    assert!(queue.pop().is_none());
    assert!(!queue.push(&event(4, false)), "skipped without asking again so soon");
    assert!(!queue.push(&event(5, true)));
    assert!(!queue.push(&event(6, false)));
    let got: Vec<_> = std::iter::from_fn(|| queue.pop()).map(|e| e.timestamp_us).collect();
    assert_eq!(got, vec![5, 6]);
    assert_eq!(queue.dropped(), 5);
  }

  #[tokio::test]
  async fn a_stream_starts_at_a_keyframe_and_ends_with_the_track() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    let mut stream = EncodedVideoStream::new(&track, 8);
    assert!(
      track.deliver_encoded(&event(0, false)),
      "no keyframe yet: one is asked for"
    );
    track.deliver_encoded(&event(1, true));
    track.deliver_encoded(&event(2, false));
    track.end();
    assert_eq!(
      stream.next().await.map(|e| (e.timestamp_us, e.keyframe)),
      Some((1, true))
    );
    assert_eq!(stream.next().await.map(|e| e.timestamp_us), Some(2));
    assert!(stream.next().await.is_none());
  }
}
