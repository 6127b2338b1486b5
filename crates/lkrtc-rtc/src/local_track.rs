//! A local video track: a name over a [`VideoSource`], published through a local participant.
//! Muting it pauses its encoders (they restart with a keyframe) and tells the server, which
//! tells every subscriber.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::engine::Command;
use crate::video_source::VideoSource;

struct TrackInner {
  name: String,
  source: VideoSource,
  sid: Mutex<Option<String>>,
  /// Read by the track's encoders before each frame.
  muted: Arc<AtomicBool>,
  /// The engine of the room the track was last published in, told of mute changes while the
  /// track has a sid. Weak: a track must not keep its room's engine alive.
  room: Mutex<Option<mpsc::WeakUnboundedSender<Command>>>,
}

/// A video track fed by a [`VideoSource`]. Cheap to clone; clones are the same track.
#[derive(Clone)]
pub struct LocalVideoTrack {
  inner: Arc<TrackInner>,
}

impl std::fmt::Debug for LocalVideoTrack {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("LocalVideoTrack")
      .field("name", &self.inner.name)
      .field("sid", &self.sid())
      .finish()
  }
}

impl LocalVideoTrack {
  /// A track named `name` over `source`; publish it with `LocalParticipant::publish_track`.
  pub fn create_video_track(name: &str, source: &VideoSource) -> Self {
    Self {
      inner: Arc::new(TrackInner {
        name: name.to_string(),
        source: source.clone(),
        sid: Mutex::new(None),
        muted: Arc::new(AtomicBool::new(false)),
        room: Mutex::new(None),
      }),
    }
  }

  /// Its name.
  pub fn name(&self) -> String {
    self.inner.name.clone()
  }

  /// The source that feeds it.
  pub fn source(&self) -> &VideoSource {
    &self.inner.source
  }

  /// The server's track sid once published.
  pub fn sid(&self) -> Option<String> {
    self.inner.sid.lock().unwrap_or_else(|e| e.into_inner()).clone()
  }

  pub(crate) fn set_sid(&self, sid: Option<String>) {
    *self.inner.sid.lock().unwrap_or_else(|e| e.into_inner()) = sid;
  }

  /// Stops sending video: the encoders pause (no CPU spent) and the server and subscribers
  /// see the track muted. Works before publishing too (the track is then published muted).
  pub fn mute(&self) {
    self.set_muted(true);
  }

  /// Sends video again, starting with a keyframe; subscribers see the track unmuted.
  pub fn unmute(&self) {
    self.set_muted(false);
  }

  /// Whether the track is muted.
  pub fn is_muted(&self) -> bool {
    self.inner.muted.load(Ordering::Acquire)
  }

  fn set_muted(&self, muted: bool) {
    if self.inner.muted.swap(muted, Ordering::AcqRel) == muted {
      return;
    }
    let room = self.inner.room.lock().unwrap_or_else(|e| e.into_inner());
    if let (Some(room), Some(sid)) = (room.as_ref().and_then(|r| r.upgrade()), self.sid()) {
      let _ = room.send(Command::MuteTrack { sid, muted });
    }
  }

  /// The flag the encoders read.
  pub(crate) fn muted_flag(&self) -> Arc<AtomicBool> {
    self.inner.muted.clone()
  }

  /// The room engine to tell of mute changes.
  pub(crate) fn set_room(&self, room: &mpsc::UnboundedSender<Command>) {
    *self.inner.room.lock().unwrap_or_else(|e| e.into_inner()) = Some(room.downgrade());
  }
}
