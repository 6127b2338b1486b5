//! A subscribed remote video track: fans its decoded frames out to the [`crate::VideoStream`]s
//! reading it, converting once per requested format.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::Notify;

use crate::encoded_stream::{EncodedFrameEvent, EncodedQueue};
use crate::stats::{InboundCounters, InboundVideoStats};
use crate::stream_queue::{self, StreamQueue, VideoFrameEvent};

/// Why a remote track ended, and with it the streams reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackEndReason {
  /// We unsubscribed, or the server stopped sending the track to us.
  Unsubscribed,
  /// Its publisher unpublished it.
  Unpublished,
  /// Its publisher left the room.
  ParticipantLeft,
  /// The room joined again after its session was lost (e.g. the server restarted): the
  /// publisher's tracks come back as new ones.
  Rejoined,
  /// The room disconnected.
  Disconnected,
}

impl TrackEndReason {
  /// The reason's name: `unsubscribed`, `unpublished`, `participantLeft`, `rejoined` or
  /// `disconnected`.
  pub fn as_str(self) -> &'static str {
    match self {
      Self::Unsubscribed => "unsubscribed",
      Self::Unpublished => "unpublished",
      Self::ParticipantLeft => "participantLeft",
      Self::Rejoined => "rejoined",
      Self::Disconnected => "disconnected",
    }
  }
}

/// Tells the room's engine which tracks' streams came or went (adaptive stream): a set of sids,
/// bounded by the tracks received, and a wake-up the engine waits on.
#[derive(Debug, Default)]
pub(crate) struct StreamsChanged {
  sids: Mutex<HashSet<String>>,
  pub(crate) notify: Notify,
}

impl StreamsChanged {
  fn changed(&self, sid: &str) {
    self
      .sids
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .insert(sid.to_string());
    self.notify.notify_one();
  }

  /// The tracks changed since the last call.
  pub(crate) fn take(&self) -> HashSet<String> {
    std::mem::take(&mut *self.sids.lock().unwrap_or_else(|e| e.into_inner()))
  }
}

struct TrackInner {
  sid: String,
  name: String,
  participant_identity: String,
  streams: Mutex<Vec<Arc<StreamQueue>>>,
  /// Set once the track was unsubscribed or its room disconnected: no frame follows.
  ended: AtomicBool,
  /// Why it ended: the first reason given wins.
  end_reason: OnceLock<TrackEndReason>,
  /// After a full rejoin ended it: the same publisher's track of the same source and name,
  /// once subscribed.
  successor: OnceLock<RemoteVideoTrack>,
  /// Told when a stream opens or closes, with adaptive stream on.
  streams_changed: OnceLock<Arc<StreamsChanged>>,
  /// What its transport and decoder counted.
  counters: Arc<InboundCounters>,
  /// Its encoded streams.
  encoded: Mutex<Vec<Arc<EncodedQueue>>>,
}

/// A remote video track we receive. Cheap to clone.
#[derive(Clone)]
pub struct RemoteVideoTrack {
  inner: Arc<TrackInner>,
}

impl std::fmt::Debug for RemoteVideoTrack {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("RemoteVideoTrack")
      .field("sid", &self.inner.sid)
      .field("name", &self.inner.name)
      .finish()
  }
}

impl RemoteVideoTrack {
  pub(crate) fn new(sid: String, name: String, participant_identity: String) -> Self {
    Self {
      inner: Arc::new(TrackInner {
        sid,
        name,
        participant_identity,
        streams: Mutex::new(Vec::new()),
        ended: AtomicBool::new(false),
        end_reason: OnceLock::new(),
        successor: OnceLock::new(),
        streams_changed: OnceLock::new(),
        counters: Arc::default(),
        encoded: Mutex::new(Vec::new()),
      }),
    }
  }

  /// Its receive statistics now (WebRTC's inbound RTP stream statistics).
  pub fn get_stats(&self) -> InboundVideoStats {
    self.inner.counters.snapshot(Instant::now())
  }

  /// The counters its transport and decoder update.
  pub(crate) fn counters(&self) -> Arc<InboundCounters> {
    self.inner.counters.clone()
  }

  /// The server's id of the track (`TR_...`).
  pub fn sid(&self) -> String {
    self.inner.sid.clone()
  }

  /// The name its publisher gave it.
  pub fn name(&self) -> String {
    self.inner.name.clone()
  }

  /// Its publisher's identity.
  pub fn participant_identity(&self) -> String {
    self.inner.participant_identity.clone()
  }

  /// True once the track was unsubscribed or its room disconnected.
  pub fn is_ended(&self) -> bool {
    self.inner.ended.load(Ordering::Acquire)
  }

  /// Why the track ended (or is ending); `None` while it runs.
  pub fn end_reason(&self) -> Option<TrackEndReason> {
    self.inner.end_reason.get().copied()
  }

  /// The track that carries on from this one after a full rejoin ended it (reason
  /// [`TrackEndReason::Rejoined`]): its publisher's track published again with the same source
  /// and name, once subscribed. `None` until then.
  pub fn successor(&self) -> Option<RemoteVideoTrack> {
    self.inner.successor.get().cloned()
  }

  /// Names the track that carries on from this one; the first one named stays.
  pub(crate) fn set_successor(&self, next: RemoteVideoTrack) {
    let _ = self.inner.successor.set(next);
  }

  /// Records why the track is about to end; a reason given earlier stays.
  pub(crate) fn set_end_reason(&self, reason: TrackEndReason) {
    let _ = self.inner.end_reason.set(reason);
  }

  /// From now on, `changed` learns of every stream opened or closed on this track.
  pub(crate) fn report_streams_to(&self, changed: Arc<StreamsChanged>) {
    let _ = self.inner.streams_changed.set(changed);
  }

  fn streams_changed(&self) {
    if let Some(changed) = self.inner.streams_changed.get() {
      changed.changed(&self.inner.sid);
    }
  }

  /// The picture size this track's open streams want: the largest width and height any asks
  /// for; `None` when none is open or one wants the full size.
  pub(crate) fn wanted_size(&self) -> Option<(u32, u32)> {
    let streams = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner());
    let mut wanted: Option<(u32, u32)> = None;
    for queue in streams.iter() {
      let (width, height) = queue.size?;
      let (w, h) = wanted.unwrap_or((0, 0));
      wanted = Some((w.max(width), h.max(height)));
    }
    wanted
  }

  /// Adds a stream; a stream attached to an ended track is closed at once.
  pub(crate) fn attach(&self, queue: Arc<StreamQueue>) {
    {
      let mut streams = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner());
      // Checked under the lock, so `end` cannot slip in between.
      if self.is_ended() {
        queue.close();
        return;
      }
      streams.push(queue);
    }
    self.streams_changed();
  }

  pub(crate) fn detach(&self, queue: &Arc<StreamQueue>) {
    let removed = {
      let mut streams = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner());
      let before = streams.len();
      streams.retain(|q| !Arc::ptr_eq(q, queue));
      streams.len() != before
    };
    if removed {
      self.streams_changed();
    }
  }

  /// Delivers one decoded I420 frame to every stream, converted to each stream's format.
  pub(crate) fn deliver(&self, event: VideoFrameEvent) {
    let streams = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner()).clone();
    stream_queue::deliver(
      &streams,
      event.frame.as_ref(),
      Some(&event.frame),
      event.timestamp_us,
      event.rotation,
      event.metadata,
    );
  }

  /// Ends every stream of this track (unsubscribed or disconnected).
  pub(crate) fn end(&self) {
    let mut streams = self.inner.streams.lock().unwrap_or_else(|e| e.into_inner());
    self.inner.ended.store(true, Ordering::Release);
    for queue in streams.drain(..) {
      queue.close();
    }
    drop(streams);
    for queue in self.inner.encoded.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
      queue.close();
    }
  }

  /// Adds an encoded stream; one attached to an ended track is closed at once.
  pub(crate) fn attach_encoded(&self, queue: Arc<EncodedQueue>) {
    let mut encoded = self.inner.encoded.lock().unwrap_or_else(|e| e.into_inner());
    if self.is_ended() {
      queue.close();
    } else {
      encoded.push(queue);
    }
  }

  pub(crate) fn detach_encoded(&self, queue: &Arc<EncodedQueue>) {
    self
      .inner
      .encoded
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .retain(|q| !Arc::ptr_eq(q, queue));
  }

  /// Hands an encoded frame to every encoded stream; true when one needs a keyframe.
  pub(crate) fn deliver_encoded(&self, event: &EncodedFrameEvent) -> bool {
    let encoded = self.inner.encoded.lock().unwrap_or_else(|e| e.into_inner()).clone();
    // Every stream gets the frame, whichever asks.
    let mut ask = false;
    for queue in &encoded {
      ask |= queue.push(event);
    }
    ask
  }

  /// Whether an encoded stream reads it.
  pub(crate) fn has_encoded_streams(&self) -> bool {
    !self.inner.encoded.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::video_stream::{VideoStream, VideoStreamOptions};
  use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};

  #[tokio::test]
  async fn each_stream_gets_its_format_and_ends_with_the_track() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    let mut i420 = VideoStream::new(&track, VideoStreamOptions::default());
    let mut rgba = VideoStream::new(
      &track,
      VideoStreamOptions {
        capacity: 2,
        format: Some(VideoBufferType::RGBA),
        size: None,
      },
    );
    let frame = VideoFrame::new_zeroed(4, 4, VideoBufferType::I420).unwrap();
    track.deliver(VideoFrameEvent {
      frame: Arc::new(frame),
      timestamp_us: 7,
      rotation: VideoRotation::Rotation180,
      metadata: None,
    });
    track.end();
    let a = i420.next().await.unwrap();
    let b = rgba.next().await.unwrap();
    assert_eq!(a.frame.buffer_type(), VideoBufferType::I420);
    assert_eq!(
      (b.frame.buffer_type(), b.frame.data().len(), b.timestamp_us),
      (VideoBufferType::RGBA, 64, 7)
    );
    assert_eq!(b.rotation, VideoRotation::Rotation180);
    assert!(i420.next().await.is_none() && rgba.next().await.is_none());
  }

  #[tokio::test]
  async fn a_stream_opened_on_an_ended_track_ends_at_once() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    track.end();
    assert!(track.is_ended());
    let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
    assert!(stream.next().await.is_none());
  }

  #[test]
  fn the_first_end_reason_given_stays() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    assert_eq!(track.end_reason(), None);
    track.set_end_reason(TrackEndReason::ParticipantLeft);
    track.set_end_reason(TrackEndReason::Disconnected);
    track.end();
    assert_eq!(track.end_reason(), Some(TrackEndReason::ParticipantLeft));
    assert_eq!(track.end_reason().map(TrackEndReason::as_str), Some("participantLeft"));
  }

  fn sized(size: Option<(u32, u32)>) -> VideoStreamOptions {
    VideoStreamOptions {
      size,
      ..Default::default()
    }
  }

  #[test]
  fn the_largest_size_any_open_stream_wants_is_wanted() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    assert_eq!(track.wanted_size(), None);
    let small = VideoStream::new(&track, sized(Some((320, 180))));
    assert_eq!(track.wanted_size(), Some((320, 180)));
    let mut tall = VideoStream::new(&track, sized(Some((200, 400))));
    assert_eq!(track.wanted_size(), Some((320, 400)));
    tall.close();
    assert_eq!(track.wanted_size(), Some((320, 180)));
    drop(small);
    assert_eq!(track.wanted_size(), None);
  }

  #[test]
  fn a_stream_without_a_size_wants_the_full_size() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    let _small = VideoStream::new(&track, sized(Some((320, 180))));
    let mut full = VideoStream::new(&track, sized(None));
    assert_eq!(track.wanted_size(), None);
    full.close();
    assert_eq!(track.wanted_size(), Some((320, 180)));
  }

  #[test]
  fn opening_and_closing_streams_is_reported_once_per_track() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    let changed = Arc::new(StreamsChanged::default());
    track.report_streams_to(changed.clone());
    let mut a = VideoStream::new(&track, sized(Some((320, 180))));
    let _b = VideoStream::new(&track, sized(None));
    assert_eq!(changed.take().into_iter().collect::<Vec<_>>(), vec!["TR_1".to_string()]);
    assert!(changed.take().is_empty());
    a.close();
    assert_eq!(changed.take().len(), 1);
    // Closing twice reports nothing more.
    a.close();
    assert!(changed.take().is_empty());
  }

  #[tokio::test]
  async fn a_closed_stream_gets_no_more_frames() {
    let track = RemoteVideoTrack::new("TR_1".into(), "cam".into(), "alice".into());
    let mut stream = VideoStream::new(&track, VideoStreamOptions::default());
    stream.close();
    let frame = VideoFrame::new_zeroed(2, 2, VideoBufferType::I420).unwrap();
    track.deliver(VideoFrameEvent {
      frame: Arc::new(frame),
      timestamp_us: 1,
      rotation: VideoRotation::Rotation0,
      metadata: None,
    });
    assert!(stream.next().await.is_none());
  }
}
