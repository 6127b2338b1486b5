//! What a room reports to its user, in order, through one unbounded channel.

use crate::participant::RemoteParticipant;
use crate::publication::{LocalTrackPublication, RemoteTrackPublication};
use crate::remote_track::RemoteVideoTrack;

/// The room's link to the server. The numbers are LiveKit's `ConnectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ConnectionState {
  Disconnected = 0,
  Connected = 1,
  Reconnecting = 2,
}

#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RoomEvent {
  ParticipantConnected {
    participant: RemoteParticipant,
  },
  ParticipantDisconnected {
    participant: RemoteParticipant,
  },
  TrackPublished {
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  },
  TrackUnpublished {
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  },
  TrackMuted {
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  },
  TrackUnmuted {
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  },
  /// A remote video track is being received: read it with a [`crate::VideoStream`].
  TrackSubscribed {
    track: RemoteVideoTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  },
  /// Its streams have ended.
  TrackUnsubscribed {
    track: RemoteVideoTrack,
    publication: RemoteTrackPublication,
    participant: RemoteParticipant,
  },
  LocalTrackPublished {
    publication: LocalTrackPublication,
  },
  LocalTrackUnpublished {
    publication: LocalTrackPublication,
  },
  ConnectionStateChanged {
    state: ConnectionState,
  },
  /// The signal connection was lost; lkrtc is resuming the session.
  Reconnecting,
  /// The session was resumed.
  Reconnected,
  /// The last event of a room: nothing follows it and the channel closes.
  /// `reason` is LiveKit's `DisconnectReason` name, e.g. `CLIENT_INITIATED`, `DUPLICATE_IDENTITY`.
  Disconnected {
    reason: String,
  },
}
