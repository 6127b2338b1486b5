//! A local video track: a name over a [`VideoSource`], published through a local participant.

use std::sync::{Arc, Mutex};

use crate::video_source::VideoSource;

struct TrackInner {
  name: String,
  source: VideoSource,
  sid: Mutex<Option<String>>,
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
}
