//! A local video track: a name over a [`VideoSource`], published through a local participant.
//! Muting it pauses its encoders (they restart with a keyframe) and tells the server, which
//! tells every subscriber; so does a change of its source's frame size.

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

impl TrackInner {
  /// Sends the room's engine a command about this track, if it is published.
  fn tell_room(&self, command: impl FnOnce(String) -> Command) {
    let room = self.room.lock().unwrap_or_else(|e| e.into_inner());
    let sid = self.sid.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let (Some(room), Some(sid)) = (room.as_ref().and_then(|r| r.upgrade()), sid) {
      let _ = room.send(command(sid));
    }
  }
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
    let inner = Arc::new(TrackInner {
      name: name.to_string(),
      source: source.clone(),
      sid: Mutex::new(None),
      muted: Arc::new(AtomicBool::new(false)),
      room: Mutex::new(None),
    });
    // The server (and through it every subscriber) learns the new size of a published track.
    // Weak: the source must not keep the track alive.
    let weak = Arc::downgrade(&inner);
    source.watch_size(Box::new(move |width, height| {
      let Some(track) = weak.upgrade() else {
        return false;
      };
      track.tell_room(|sid| Command::ResizeTrack { sid, width, height });
      true
    }));
    Self { inner }
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
    self.inner.tell_room(|sid| Command::MuteTrack { sid, muted });
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
