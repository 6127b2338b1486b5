//! Remote participants as snapshots: identity, metadata and their publications keyed by track sid.

use std::collections::HashMap;

use livekit_protocol as proto;

use crate::publication::RemoteTrackPublication;

/// Another participant in the room, as last described by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteParticipant {
  /// The server's id of the participant (`PA_...`); changes on a rejoin.
  pub sid: String,
  /// The identity from the participant's token; stays across rejoins.
  pub identity: String,
  /// Display name.
  pub name: String,
  /// Application metadata.
  pub metadata: String,
  /// Application attributes.
  pub attributes: HashMap<String, String>,
  pub(crate) publications: HashMap<String, RemoteTrackPublication>,
}

impl RemoteParticipant {
  pub(crate) fn from_info(info: &proto::ParticipantInfo) -> Self {
    Self {
      sid: info.sid.clone(),
      identity: info.identity.clone(),
      name: info.name.clone(),
      metadata: info.metadata.clone(),
      attributes: info.attributes.clone(),
      publications: info
        .tracks
        .iter()
        .map(|t| (t.sid.clone(), RemoteTrackPublication::from_info(t)))
        .collect(),
    }
  }

  /// Publications keyed by track sid.
  pub fn track_publications(&self) -> HashMap<String, RemoteTrackPublication> {
    self.publications.clone()
  }

  /// The publication of the track `sid`, if this participant has it.
  pub fn track_publication(&self, sid: &str) -> Option<&RemoteTrackPublication> {
    self.publications.get(sid)
  }
}
