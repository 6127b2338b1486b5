//! What a room's getters read without asking its engine: the engine writes it, `Room` and
//! `LocalParticipant` read it under a short lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use livekit_protocol as proto;

use crate::encoder_task::EncoderControl;
use crate::events::ConnectionState;
use crate::participant::RemoteParticipant;
use crate::publication::{LocalTrackPublication, RemoteTrackSettings};
use crate::send_control::SendBudget;
use crate::simulcast::LayerSpec;
use crate::video_source::{FrameSlot, VideoSource};

/// The room as last seen by its engine.
pub(crate) struct Shared {
  pub room_name: String,
  pub room_sid: String,
  pub local: proto::ParticipantInfo,
  pub remotes: HashMap<String, RemoteParticipant>,
  pub state: ConnectionState,
  /// Our published tracks by sid, as the publish part last announced them.
  pub publications: HashMap<String, PublishedView>,
  /// The settings the user chose for remote tracks, by sid (those left at the default absent).
  pub track_settings: HashMap<String, RemoteTrackSettings>,
}

/// A published track as the getters see it: its publication and its send counters.
#[derive(Clone)]
pub(crate) struct PublishedView {
  pub publication: LocalTrackPublication,
  pub source: VideoSource,
  /// Per layer, lowest first.
  pub slots: Vec<Arc<FrameSlot>>,
  pub controls: Vec<Arc<EncoderControl>>,
  pub layers: Vec<LayerSpec>,
  /// The connection's send-side estimate.
  pub bwe: Arc<SendBudget>,
}

impl Shared {
  /// A room just joined: its session's view, no publications yet.
  pub fn new(room_name: String, room_sid: String, local: proto::ParticipantInfo) -> Self {
    Shared {
      room_name,
      room_sid,
      local,
      remotes: HashMap::new(),
      state: ConnectionState::Connected,
      publications: HashMap::new(),
      track_settings: HashMap::new(),
    }
  }
}

/// Shared between a room's engine and its handles.
pub(crate) type SharedRef = Arc<Mutex<Shared>>;

/// Locks the shared state; a panic elsewhere while it was held leaves it readable.
pub(crate) fn lock(shared: &SharedRef) -> MutexGuard<'_, Shared> {
  shared.lock().unwrap_or_else(|e| e.into_inner())
}
