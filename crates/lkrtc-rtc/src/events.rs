//! What a room reports to its user, in order, through one unbounded channel.

use crate::data::{BudgetTicket, DataPacketKind};
use crate::participant::RemoteParticipant;
use crate::publication::{LocalTrackPublication, RemoteTrackPublication};
use crate::remote_track::RemoteVideoTrack;

/// The room's link to the server. The numbers are LiveKit's `ConnectionState`.
#[cfg_attr(feature = "napi", napi_derive::napi)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ConnectionState {
  /// Not connected, or no longer.
  Disconnected = 0,
  /// Joined, with the signal connection up.
  Connected = 1,
  /// The connection was lost and is being resumed or rejoined.
  Reconnecting = 2,
}

/// What happened in a room, in the order it happened.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RoomEvent {
  /// Another participant joined.
  ParticipantConnected {
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Another participant left.
  ParticipantDisconnected {
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Another participant published a track.
  TrackPublished {
    /// The remote track's publication.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Another participant unpublished a track (or left with it).
  TrackUnpublished {
    /// The remote track's publication.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Another participant muted a track.
  TrackMuted {
    /// The remote track's publication.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Another participant unmuted a track.
  TrackUnmuted {
    /// The remote track's publication.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Another participant's publication changed otherwise (its size, after its source's frames
  /// changed size; its name; its codec).
  TrackUpdated {
    /// The remote track's publication, as it is now.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// A remote video track is being received: read it with a [`crate::VideoStream`].
  TrackSubscribed {
    /// The track received.
    track: RemoteVideoTrack,
    /// The remote track's publication.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// Its streams have ended.
  TrackUnsubscribed {
    /// The track received.
    track: RemoteVideoTrack,
    /// The remote track's publication.
    publication: RemoteTrackPublication,
    /// The remote participant concerned.
    participant: RemoteParticipant,
  },
  /// One of our tracks is published.
  LocalTrackPublished {
    /// Our track's publication.
    publication: LocalTrackPublication,
  },
  /// One of our tracks is no longer published.
  LocalTrackUnpublished {
    /// Our track's publication.
    publication: LocalTrackPublication,
  },
  /// A data message from another participant (or from the server, with no participant).
  DataReceived {
    /// The message's bytes.
    payload: Vec<u8>,
    /// How it travelled.
    kind: DataPacketKind,
    /// The sender's topic, if any.
    topic: Option<String>,
    /// The sender; `None` for a message the server sent or from a participant not (yet) known.
    participant: Option<RemoteParticipant>,
    /// The sender's identity as the server stamped it (empty for the server itself).
    sender_identity: String,
    /// Holds the payload's bytes against the room's bound on undelivered messages.
    ticket: std::sync::Arc<BudgetTicket>,
  },
  /// The room's [`ConnectionState`] changed.
  ConnectionStateChanged {
    /// The new state.
    state: ConnectionState,
  },
  /// The signal connection was lost; lkrtc is resuming the session.
  Reconnecting,
  /// The session was resumed.
  Reconnected,
  /// The last event of a room: nothing follows it and the channel closes.
  /// `reason` is LiveKit's `DisconnectReason` name, e.g. `CLIENT_INITIATED`, `DUPLICATE_IDENTITY`.
  Disconnected {
    /// Why the room ended.
    reason: String,
  },
}
