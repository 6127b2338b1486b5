//! A room: connect (WebSocket, `JoinResponse`, transports), read its state, disconnect.
//! Events arrive in order on the receiver returned by [`Room::connect`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::engine::join::JoinConfig;
use crate::engine::shared::{lock, Shared, SharedRef};
use crate::engine::{Command, Engine, SettingsChange};
use crate::events::{ConnectionState, RoomEvent};
use crate::local_participant::LocalParticipant;
use crate::options::RoomOptions;
use crate::participant::RemoteParticipant;
use crate::publication::{RemoteTrackSettings, VideoQuality};
use crate::signal::tls;
use crate::signal::url::{parse_server_url, JoinParams};
use crate::video_stream::VideoStreamOptions;
use crate::{RtcError, RtcResult};

struct RoomInner {
  shared: SharedRef,
  commands: mpsc::UnboundedSender<Command>,
  local: LocalParticipant,
  engine: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A joined LiveKit room. Cheap to clone; clones are the same room.
#[derive(Clone)]
pub struct Room {
  inner: Arc<RoomInner>,
}

impl std::fmt::Debug for Room {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("Room")
      .field("name", &self.name())
      .field("sid", &self.sid())
      .finish()
  }
}

impl Room {
  /// Joins the room at `url` (`ws`, `wss`, `http` or `https`) with an access token. Fails within
  /// `options.connect_timeout` with `ERR_INVALID_URL`, `ERR_INVALID_CERTIFICATE`,
  /// `ERR_CONNECTION_REFUSED`, `ERR_TLS`, `ERR_UNAUTHORIZED`, `ERR_CONNECT_TIMEOUT`, ... Must be
  /// called inside a tokio runtime.
  pub async fn connect(
    url: &str,
    token: &str,
    options: RoomOptions,
  ) -> RtcResult<(Room, mpsc::UnboundedReceiver<RoomEvent>)> {
    // The room's tasks are spawned on the caller's runtime; without one tokio would panic.
    if tokio::runtime::Handle::try_current().is_err() {
      return Err(RtcError::NoRuntime { what: "Room::connect" });
    }
    let base = parse_server_url(url)?;
    if token.is_empty() {
      return Err(RtcError::Unauthorized {
        reason: "empty access token".into(),
      });
    }
    let tls_config = tls::client_config(options.ca_certificates.as_deref())?;
    let timeout_ms = options.connect_timeout.as_millis() as u64;
    let deadline = Instant::now() + options.connect_timeout;
    let mut config = JoinConfig {
      base,
      params: JoinParams {
        auto_subscribe: options.auto_subscribe,
        // lkrtc adapts received video itself, with explicit settings per track; the server's
        // flag would only make its default layer the lowest and re-enable paused tracks.
        adaptive_stream: false,
        sdk_version: env!("CARGO_PKG_VERSION").to_string(),
        reconnect_sid: None,
        packet_trailer: options.frame_metadata,
      },
      connect_timeout: options.connect_timeout,
      adaptive_stream: options.adaptive_stream,
      tls_config,
      token: token.to_string(),
      bind_ip: None,
      dynacast: options.dynacast,
      relay_only: options.ice_transport_policy == crate::options::IceTransportPolicy::Relay,
    };
    let joined = config.join().await?;
    let session = &joined.session;
    let mut state = Shared::new(
      session.room_name.clone(),
      session.room_sid.clone(),
      session.local.clone(),
    );
    state.remotes = session.remotes();
    let shared: SharedRef = Arc::new(Mutex::new(state));
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    // First in the stream; harmless if the connect still fails (the receiver is then dropped).
    let _ = events_tx.send(RoomEvent::ConnectionStateChanged {
      state: ConnectionState::Connected,
    });
    let engine = Engine::new(joined, config, shared.clone(), events_tx, commands_rx, ready_tx);
    let task = tokio::spawn(engine.run());
    let room = Room {
      inner: Arc::new(RoomInner {
        shared: shared.clone(),
        commands: commands_tx.clone(),
        local: LocalParticipant::new(shared, commands_tx),
        engine: Mutex::new(Some(task)),
      }),
    };

    if !options.wait_for_peer_connection {
      return Ok((room, events_rx));
    }
    // Wait for the primary peer connection, so media can flow when connect resolves.
    match tokio::time::timeout_at(deadline, ready_rx).await {
      Ok(Ok(Ok(()))) => {}
      Ok(Ok(Err(e))) => {
        room.disconnect().await;
        return Err(e);
      }
      Ok(Err(_)) => return Err(RtcError::Signal("the room engine stopped while connecting".into())),
      Err(_) => {
        room.disconnect().await;
        return Err(RtcError::ConnectTimeout {
          timeout_ms,
          stage: "peer connection",
        });
      }
    }
    Ok((room, events_rx))
  }

  /// The room's name.
  pub fn name(&self) -> String {
    lock(&self.inner.shared).room_name.clone()
  }

  /// The room's sid (`RM_...`).
  pub fn sid(&self) -> String {
    lock(&self.inner.shared).room_sid.clone()
  }

  /// Us in this room.
  pub fn local_participant(&self) -> LocalParticipant {
    self.inner.local.clone()
  }

  /// A snapshot of the other participants, keyed by identity.
  pub fn remote_participants(&self) -> HashMap<String, RemoteParticipant> {
    lock(&self.inner.shared).remotes.clone()
  }

  /// Connected, reconnecting or disconnected.
  pub fn connection_state(&self) -> ConnectionState {
    lock(&self.inner.shared).state
  }

  /// Whether the state is [`ConnectionState::Connected`].
  pub fn is_connected(&self) -> bool {
    self.connection_state() == ConnectionState::Connected
  }

  /// Subscribes to (or unsubscribes from) a remote track by sid; with `auto_subscribe` every
  /// track is subscribed already.
  pub async fn set_subscribed(&self, track_sid: &str, subscribed: bool) -> RtcResult<()> {
    let (reply, done) = oneshot::channel();
    self
      .inner
      .commands
      .send(Command::SetSubscribed {
        track_sid: track_sid.to_string(),
        subscribed,
        reply,
      })
      .map_err(|_| RtcError::NotConnected)?;
    done.await.map_err(|_| RtcError::NotConnected)?
  }

  /// Asks for the layer `quality` of the simulcast video track `track_sid` (for a track sent in
  /// one layer, any quality gets that layer). The choice replaces an earlier
  /// [`Room::set_video_dimensions`], lasts while the track is published, and carries over to
  /// the track published again after a full rejoin. The server may send a lower layer when the
  /// link is short. `ERR_TRACK_NOT_FOUND` for an unknown sid.
  pub async fn set_video_quality(&self, track_sid: &str, quality: VideoQuality) -> RtcResult<()> {
    self
      .update_track_settings(track_sid, SettingsChange::Quality(quality))
      .await
  }

  /// Asks for the smallest layer of the video track `track_sid` at least `width` x `height`
  /// (the server compares heights, or widths for a portrait track). Replaces an earlier
  /// [`Room::set_video_quality`]; lasts as it does. `ERR_INVALID_ARGUMENT` for a side outside 1
  /// to [`VideoStreamOptions::MAX_SIZE`].
  pub async fn set_video_dimensions(&self, track_sid: &str, width: u32, height: u32) -> RtcResult<()> {
    let (width, height) = VideoStreamOptions::check_size(width, height)?;
    self
      .update_track_settings(track_sid, SettingsChange::Dimensions { width, height })
      .await
  }

  /// Pauses (`false`) or resumes (`true`) the video track `track_sid` without unsubscribing:
  /// while paused the server sends nothing and the track's streams wait; resumed, frames come
  /// again from a keyframe. Lasts as [`Room::set_video_quality`] does.
  pub async fn set_track_enabled(&self, track_sid: &str, enabled: bool) -> RtcResult<()> {
    self
      .update_track_settings(track_sid, SettingsChange::Enabled(enabled))
      .await
  }

  /// What was chosen for the remote video track `track_sid` with [`Room::set_video_quality`],
  /// [`Room::set_video_dimensions`] and [`Room::set_track_enabled`] (carried over to a track
  /// published again after a full rejoin); the default (enabled, high quality) otherwise.
  pub fn track_settings(&self, track_sid: &str) -> RemoteTrackSettings {
    lock(&self.inner.shared)
      .track_settings
      .get(track_sid)
      .copied()
      .unwrap_or_default()
  }

  async fn update_track_settings(&self, track_sid: &str, change: SettingsChange) -> RtcResult<()> {
    let (reply, done) = oneshot::channel();
    self
      .inner
      .commands
      .send(Command::UpdateTrackSettings {
        track_sid: track_sid.to_string(),
        change,
        reply,
      })
      .map_err(|_| RtcError::NotConnected)?;
    done.await.map_err(|_| RtcError::NotConnected)?
  }

  /// Drops the signal connection as a network failure would, to exercise the resume path.
  #[doc(hidden)]
  pub fn simulate_signal_loss(&self) {
    let _ = self.inner.commands.send(Command::SimulateSignalLoss);
  }

  /// Asks the server to drop this session without a word, as a failing server node does, to
  /// exercise the rejoin path while the other participants stay.
  #[doc(hidden)]
  pub fn simulate_node_failure(&self) {
    let _ = self.inner.commands.send(Command::SimulateNodeFailure);
  }

  /// Leaves the room: sends `LeaveRequest`, stops the encoders, closes the transports and ends
  /// the event stream after a `Disconnected { reason: "CLIENT_INITIATED" }` event. Idempotent.
  pub async fn disconnect(&self) {
    let (reply, done) = oneshot::channel();
    if self.inner.commands.send(Command::Disconnect { reply }).is_ok() {
      let _ = done.await;
    }
    let task = self.inner.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(task) = task {
      let _ = task.await;
    }
    lock(&self.inner.shared).state = ConnectionState::Disconnected;
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn connecting_outside_a_runtime_is_an_error_not_a_panic() {
    let connect = Room::connect("ws://127.0.0.1:1", "token", RoomOptions::default());
    // Polled by a plain executor: no tokio runtime is current.
    let err = futures_util::FutureExt::now_or_never(connect)
      .expect("fails at once")
      .unwrap_err();
    assert_eq!(err.code(), "ERR_NO_RUNTIME", "{err}");
  }
}
