//! Joining a room, once: the one sequence used by `Room::connect` and by a full rejoin (signal
//! WebSocket, `JoinResponse`, both peer connections), the resume of a session on a new
//! WebSocket, and what the engine replaces when either succeeds. The decisions on each server
//! answer are plain functions, tested without a server.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Request;
use proto::signal_response::Message as Response;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::candidates::HeldCandidates;
use super::shared::lock;
use super::{Engine, TRANSPORT_CLOSE_LIMIT};
use crate::events::RoomEvent;
use crate::pc::{Pc, PcEvent, PcIce, Role};
use crate::signal::connection::{self, SignalReader, SignalWriter};
use crate::signal::session::{disconnect_reason, SignalSession};
use crate::signal::url::{signal_url, JoinParams};
use crate::{RtcError, RtcResult};

/// Where and how a room is joined; kept for resumes and rejoins.
pub(crate) struct JoinConfig {
  pub base: url::Url,
  pub params: JoinParams,
  pub connect_timeout: Duration,
  /// Ask for the layer that fits the size the streams of each track want.
  pub adaptive_stream: bool,
  pub tls_config: Arc<rustls::ClientConfig>,
  /// Replaced when the server refreshes it.
  pub token: String,
  /// The local address media binds to: the one that reaches the server, found at the first
  /// join.
  pub bind_ip: Option<IpAddr>,
  /// Obey the server's `SubscribedQualityUpdate`s (pause layers nobody watches).
  pub dynacast: bool,
  /// Relayed ICE candidates only (`IceTransportPolicy::Relay`).
  pub relay_only: bool,
}

/// A session the server accepted, with its new transports.
pub(crate) struct Joined {
  pub writer: SignalWriter,
  pub reader: SignalReader,
  pub session: SignalSession,
  pub publisher: Pc,
  pub publisher_events: mpsc::UnboundedReceiver<PcEvent>,
  pub subscriber: Pc,
  pub subscriber_events: mpsc::UnboundedReceiver<PcEvent>,
}

impl JoinConfig {
  /// A new signal connection: a resume of our session when `reconnect_sid` is set, a fresh
  /// join otherwise.
  async fn open_signal(&self, reconnect_sid: Option<String>) -> RtcResult<(SignalWriter, SignalReader)> {
    let params = JoinParams {
      reconnect_sid,
      ..self.params.clone()
    };
    let url = signal_url(&self.base, &self.token, &params);
    connection::connect(&url, &self.base, &self.token, &self.tls_config, self.connect_timeout).await
  }

  /// Joins as a new participant: everything within `connect_timeout` but the peer connections'
  /// ICE, which the engine reports when it is up.
  pub async fn join(&mut self) -> RtcResult<Joined> {
    let deadline = Instant::now() + self.connect_timeout;
    let (writer, mut reader) = self.open_signal(None).await?;
    let join = tokio::time::timeout_at(deadline, read_until(&mut reader, join_answer))
      .await
      .map_err(|_| self.timeout("join response"))??;
    let session = SignalSession::from_join(&join)?;
    let server_version = join
      .server_info
      .as_ref()
      .map(|s| s.version.clone())
      .unwrap_or(join.server_version);
    let bind_ip = match self.bind_ip {
      Some(ip) => ip,
      None => *self.bind_ip.insert(local_ip_towards(&self.base).await?),
    };
    // The TURN servers of the join response give relayed candidates beside the direct ones
    // (or instead of them with the relay policy).
    tracing::debug!("the server offers {} ICE servers", session.ice_servers.len());
    let ice = PcIce::new(&session.ice_servers, self.relay_only, self.tls_config.clone());
    let (publisher, publisher_events) = Pc::start_with_ice(Role::Publisher, bind_ip, ice.clone()).await?;
    let (subscriber, subscriber_events) = Pc::start_with_ice(Role::Subscriber, bind_ip, ice).await?;
    tracing::info!(
      "joined room {:?} as {:?} (participant {}, server {server_version})",
      session.room_name,
      session.local.identity,
      session.local.sid
    );
    Ok(Joined {
      writer,
      reader,
      session,
      publisher,
      publisher_events,
      subscriber,
      subscriber_events,
    })
  }

  /// Resumes the session of participant `sid` on a new WebSocket, up to the server's
  /// `ReconnectResponse`.
  pub async fn resume(&self, sid: String) -> RtcResult<(SignalWriter, SignalReader)> {
    let (writer, mut reader) = self.open_signal(Some(sid)).await?;
    tokio::time::timeout(self.connect_timeout, read_until(&mut reader, resume_answer))
      .await
      .map_err(|_| self.timeout("reconnect response"))??;
    Ok((writer, reader))
  }

  fn timeout(&self, stage: &'static str) -> RtcError {
    RtcError::ConnectTimeout {
      timeout_ms: self.connect_timeout.as_millis() as u64,
      stage,
    }
  }
}

impl Engine {
  /// Resumes our session on a new WebSocket and replays our state with `SyncState`.
  pub(super) async fn try_resume(&mut self) -> RtcResult<()> {
    let (writer, reader) = self.config.resume(self.session.local.sid.clone()).await?;
    self.writer = writer;
    self.reader = reader;
    let sync = proto::SyncState {
      answer: self.last_answer.clone(),
      offer: self.last_offer.clone(),
      subscription: Some(proto::UpdateSubscription {
        track_sids: Vec::new(),
        subscribe: !self.config.params.auto_subscribe,
        participant_tracks: Vec::new(),
      }),
      publish_tracks: self.publish.sync_state(),
      ..Default::default()
    };
    self.writer.send(Request::SyncState(sync)).await
  }

  /// A full rejoin: a new signal session and new transports. Once the server has accepted the
  /// join, everything the old session held is reported gone (remote tracks unsubscribed and
  /// unpublished, participants disconnected, our publications unpublished), the participants of
  /// the new session are announced and our tracks are published again: each keeps its source
  /// and encoder, which switches to the new transport when the server confirms it.
  pub(super) async fn try_rejoin(&mut self) -> RtcResult<()> {
    let joined = self.config.join().await?;
    self.forget_session();
    let old_publisher = std::mem::replace(&mut self.publisher, joined.publisher);
    let old_subscriber = std::mem::replace(&mut self.subscriber, joined.subscriber);
    tokio::spawn(async move {
      let closes = async { tokio::join!(old_publisher.close(), old_subscriber.close()) };
      let _ = tokio::time::timeout(TRANSPORT_CLOSE_LIMIT, closes).await;
    });
    self.publisher_events = joined.publisher_events;
    self.subscriber_events = joined.subscriber_events;
    self.writer = joined.writer;
    self.reader = joined.reader;
    self.session = joined.session;
    self.candidates = HeldCandidates::default();
    self.last_offer = None;
    self.last_answer = None;
    {
      let mut shared = lock(&self.shared);
      shared.room_sid = self.session.room_sid.clone();
      shared.local = self.session.local.clone();
      shared.remotes = self.session.remotes();
    }
    self.publish_again().await;
    for participant in self.session.remotes().into_values() {
      let _ = self.events.send(RoomEvent::ParticipantConnected {
        participant: participant.clone(),
      });
      for publication in participant.publications.values() {
        let _ = self.events.send(RoomEvent::TrackPublished {
          publication: publication.clone(),
          participant: participant.clone(),
        });
        self.apply_carried_choice(&participant, publication).await;
      }
    }
    Ok(())
  }

  /// The end of a session as seen by the user: every remote track unsubscribed and unpublished,
  /// every remote participant disconnected; subscription choices wait for the tracks' successors.
  fn forget_session(&mut self) {
    self.unsubscribe_all_for_rejoin();
    let remotes = self.session.remotes();
    self.subscriptions.carry_over(
      remotes
        .values()
        .flat_map(|p| p.publications.values().map(move |t| (p, t))),
    );
    // The carried settings show again under the tracks' new sids.
    self.mirror_track_settings();
    for participant in remotes.into_values() {
      for publication in participant.publications.values() {
        let _ = self.events.send(RoomEvent::TrackUnpublished {
          publication: publication.clone(),
          participant: participant.clone(),
        });
      }
      let _ = self.events.send(RoomEvent::ParticipantDisconnected { participant });
    }
  }
}

/// The local address that reaches the signal server: media candidates are advertised on it,
/// so a server on loopback keeps all traffic on loopback.
async fn local_ip_towards(base: &url::Url) -> RtcResult<IpAddr> {
  let host = base
    .host_str()
    .unwrap_or("127.0.0.1")
    .trim_start_matches('[')
    .trim_end_matches(']');
  let port = base.port_or_known_default().unwrap_or(443);
  let addr = tokio::net::lookup_host((host, port))
    .await
    .ok()
    .and_then(|mut addrs| addrs.next())
    .ok_or_else(|| RtcError::Transport(format!("cannot resolve the server host {host:?}")))?;
  lkrtc_transport::local_ip_for(addr).map_err(|e| RtcError::Transport(format!("no route to {addr}: {e}")))
}

type Received = Option<RtcResult<Response>>;

/// Reads until `answer` decides.
async fn read_until<T>(reader: &mut SignalReader, answer: fn(Received) -> Option<RtcResult<T>>) -> RtcResult<T> {
  loop {
    if let Some(result) = answer(reader.recv().await) {
      return result;
    }
  }
}

/// The first useful message of a join must be a `JoinResponse`; a `LeaveRequest` instead is a
/// refusal. `None`: keep reading.
fn join_answer(received: Received) -> Option<RtcResult<proto::JoinResponse>> {
  let Some(message) = received else {
    return Some(Err(RtcError::Signal(
      "the server closed the connection before the JoinResponse".into(),
    )));
  };
  match message {
    Ok(Response::Join(join)) => Some(Ok(join)),
    Ok(Response::Leave(leave)) => Some(Err(RtcError::Disconnected {
      reason: disconnect_reason(leave.reason),
    })),
    Ok(_) => None,
    Err(e) => Some(Err(e)),
  }
}

/// A resume is accepted with a `ReconnectResponse`. A `LeaveRequest` that allows reconnecting
/// means the server lost our session (e.g. it restarted): a `Signal` error, after which the
/// reconnect policy joins afresh; any other is final (`Disconnected`).
fn resume_answer(received: Received) -> Option<RtcResult<()>> {
  let Some(message) = received else {
    return Some(Err(RtcError::Signal("closed before the ReconnectResponse".into())));
  };
  match message {
    Ok(Response::Reconnect(_)) => Some(Ok(())),
    Ok(Response::Leave(leave)) => {
      let reason = disconnect_reason(leave.reason);
      if leave.can_reconnect || leave.action == proto::leave_request::Action::Reconnect as i32 {
        Some(Err(RtcError::Signal(format!(
          "the server cannot resume the session ({reason})"
        ))))
      } else {
        Some(Err(RtcError::Disconnected { reason }))
      }
    }
    Ok(_) => None,
    Err(e) => Some(Err(e)),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn leave(reason: proto::DisconnectReason, can_reconnect: bool, action: proto::leave_request::Action) -> Received {
    Some(Ok(Response::Leave(proto::LeaveRequest {
      reason: reason as i32,
      can_reconnect,
      action: action as i32,
      ..Default::default()
    })))
  }

  #[test]
  fn a_join_response_answers_a_join() {
    let join = proto::JoinResponse {
      server_version: "1.2.3".into(),
      ..Default::default()
    };
    let answer = join_answer(Some(Ok(Response::Join(join)))).expect("decided");
    assert_eq!(answer.unwrap().server_version, "1.2.3");
  }

  #[test]
  fn other_messages_before_the_join_response_are_skipped() {
    assert!(join_answer(Some(Ok(Response::Pong(5)))).is_none());
  }

  #[test]
  fn a_leave_instead_of_a_join_response_is_a_refusal_with_its_reason() {
    let answer = join_answer(leave(
      proto::DisconnectReason::RoomClosed,
      false,
      proto::leave_request::Action::Disconnect,
    ));
    match answer {
      Some(Err(RtcError::Disconnected { reason })) => assert_eq!(reason, "ROOM_CLOSED"),
      other => panic!("expected a refusal, got {other:?}"),
    }
  }

  #[test]
  fn a_join_closed_before_its_response_is_a_signal_error() {
    assert!(matches!(join_answer(None), Some(Err(RtcError::Signal(_)))));
  }

  #[test]
  fn a_reconnect_response_accepts_a_resume() {
    let answer = resume_answer(Some(Ok(Response::Reconnect(Default::default()))));
    assert!(matches!(answer, Some(Ok(()))));
  }

  #[test]
  fn a_server_that_lost_the_session_asks_for_a_rejoin_not_the_end() {
    for (can_reconnect, action) in [
      (true, proto::leave_request::Action::Disconnect),
      (false, proto::leave_request::Action::Reconnect),
    ] {
      let answer = resume_answer(leave(proto::DisconnectReason::StateMismatch, can_reconnect, action));
      assert!(matches!(answer, Some(Err(RtcError::Signal(_)))), "{answer:?}");
    }
  }

  #[test]
  fn a_final_leave_ends_a_resume_with_its_reason() {
    let answer = resume_answer(leave(
      proto::DisconnectReason::ParticipantRemoved,
      false,
      proto::leave_request::Action::Disconnect,
    ));
    match answer {
      Some(Err(RtcError::Disconnected { reason })) => assert_eq!(reason, "PARTICIPANT_REMOVED"),
      other => panic!("expected the end, got {other:?}"),
    }
  }

  #[test]
  fn a_resume_closed_before_its_response_is_a_signal_error() {
    assert!(matches!(resume_answer(None), Some(Err(RtcError::Signal(_)))));
  }
}
