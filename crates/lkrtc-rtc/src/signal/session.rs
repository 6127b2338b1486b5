//! Sans-IO handling of the server's signal messages: keeps the room's participant model and turns
//! each `SignalResponse` into room events and actions for the engine. Tests drive it with
//! constructed messages; the engine loop around it only does I/O.

use std::collections::HashMap;

use livekit_protocol as proto;
use proto::signal_response::Message as Response;

use crate::events::RoomEvent;
use crate::participant::RemoteParticipant;
use crate::publication::RemoteTrackPublication;
use crate::{RtcError, RtcResult};

/// Which of the two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
  Publisher = 0,
  Subscriber = 1,
}

impl Target {
  pub fn from_proto(n: i32) -> Self {
    if n == proto::SignalTarget::Subscriber as i32 {
      Self::Subscriber
    } else {
      Self::Publisher
    }
  }

  pub fn to_proto(self) -> proto::SignalTarget {
    match self {
      Self::Publisher => proto::SignalTarget::Publisher,
      Self::Subscriber => proto::SignalTarget::Subscriber,
    }
  }
}

/// What the engine must do after a message.
#[derive(Debug, Clone)]
pub enum Action {
  Emit(RoomEvent),
  /// The server offers on the subscriber connection: answer it.
  SubscriberOffer {
    sdp: String,
    id: u32,
  },
  /// The server answered our publisher offer.
  PublisherAnswer {
    sdp: String,
    id: u32,
  },
  RemoteCandidate {
    target: Target,
    candidate_init: String,
  },
  /// `AddTrackRequest` with this cid was accepted.
  TrackPublished {
    cid: String,
    track: proto::TrackInfo,
  },
  /// The server unpublished one of our tracks.
  LocalTrackUnpublished {
    sid: String,
  },
  /// A request failed (e.g. publishing without permission).
  RequestFailed {
    request_id: u32,
    reason: String,
    message: String,
  },
  /// The server ends the session; `resume`/`reconnect` tell whether it may be rejoined.
  Leave {
    reason: String,
    action: proto::leave_request::Action,
  },
  /// The server refreshed our access token: use it to resume.
  RefreshToken(AccessToken),
  /// Which qualities of one of our tracks some subscriber watches (for dynacast).
  SubscribedQualities(proto::SubscribedQualityUpdate),
}

/// An access token. Its `Debug` output leaves the token out, so actions can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(pub String);

impl std::fmt::Debug for AccessToken {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str("AccessToken(<redacted>)")
  }
}

/// The room as the server describes it, and the keepalive parameters.
#[derive(Debug, Clone)]
pub struct SignalSession {
  pub room_name: String,
  pub room_sid: String,
  pub local: proto::ParticipantInfo,
  /// Keyed by participant sid.
  remotes: HashMap<String, RemoteParticipant>,
  versions: HashMap<String, u32>,
  pub ping_interval_s: u32,
  pub ping_timeout_s: u32,
  pub subscriber_primary: bool,
  pub ice_servers: Vec<proto::IceServer>,
  /// Last measured signalling round trip, reported back in pings.
  pub rtt_ms: i64,
}

impl SignalSession {
  /// The state right after a `JoinResponse`. The participants already present are known but not
  /// announced as events (as LiveKit's SDKs do); read them with [`Self::remotes`].
  pub fn from_join(join: &proto::JoinResponse) -> RtcResult<Self> {
    let local = join
      .participant
      .clone()
      .ok_or_else(|| RtcError::Signal("JoinResponse without participant".into()))?;
    let room = join.room.clone().unwrap_or_default();
    let mut session = Self {
      room_name: room.name,
      room_sid: room.sid,
      local,
      remotes: HashMap::new(),
      versions: HashMap::new(),
      ping_interval_s: join.ping_interval.max(0) as u32,
      ping_timeout_s: join.ping_timeout.max(0) as u32,
      subscriber_primary: join.subscriber_primary,
      ice_servers: join.ice_servers.clone(),
      rtt_ms: 0,
    };
    for info in &join.other_participants {
      session.versions.insert(info.sid.clone(), info.version);
      session
        .remotes
        .insert(info.sid.clone(), RemoteParticipant::from_info(info));
    }
    Ok(session)
  }

  /// Remote participants keyed by identity.
  pub fn remotes(&self) -> HashMap<String, RemoteParticipant> {
    self.remotes.values().map(|p| (p.identity.clone(), p.clone())).collect()
  }

  pub fn remote_by_sid(&self, sid: &str) -> Option<&RemoteParticipant> {
    self.remotes.get(sid)
  }

  /// The participant publishing the track with this sid.
  pub fn publisher_of(&self, track_sid: &str) -> Option<&RemoteParticipant> {
    self.remotes.values().find(|p| p.publications.contains_key(track_sid))
  }

  /// A ping carrying our clock and the last round trip.
  pub fn ping(&self, now_ms: i64) -> proto::signal_request::Message {
    proto::signal_request::Message::PingReq(proto::Ping {
      timestamp: now_ms,
      rtt: self.rtt_ms,
    })
  }

  /// Applies one message from the server.
  pub fn handle(&mut self, message: Response, now_ms: i64) -> Vec<Action> {
    match message {
      Response::Offer(sd) => vec![Action::SubscriberOffer { sdp: sd.sdp, id: sd.id }],
      Response::Answer(sd) => vec![Action::PublisherAnswer { sdp: sd.sdp, id: sd.id }],
      Response::Trickle(t) => {
        vec![Action::RemoteCandidate {
          target: Target::from_proto(t.target),
          candidate_init: t.candidate_init,
        }]
      }
      Response::Update(update) => self.apply_participants(&update.participants),
      Response::TrackPublished(res) => match res.track {
        Some(track) => vec![Action::TrackPublished { cid: res.cid, track }],
        None => vec![],
      },
      Response::TrackUnpublished(res) => vec![Action::LocalTrackUnpublished { sid: res.track_sid }],
      Response::Leave(leave) => vec![Action::Leave {
        reason: disconnect_reason(leave.reason),
        action: leave.action(),
      }],
      Response::RoomUpdate(update) => {
        if let Some(room) = update.room {
          if !room.sid.is_empty() {
            self.room_sid = room.sid;
          }
        }
        vec![]
      }
      Response::PongResp(pong) => {
        self.rtt_ms = (now_ms - pong.last_ping_timestamp).max(0);
        vec![]
      }
      Response::RequestResponse(res) if res.reason != proto::request_response::Reason::Ok as i32 => {
        vec![Action::RequestFailed {
          request_id: res.request_id,
          reason: res.reason().as_str_name().to_string(),
          message: res.message,
        }]
      }
      Response::RefreshToken(token) => vec![Action::RefreshToken(AccessToken(token))],
      Response::SubscribedQualityUpdate(update) => vec![Action::SubscribedQualities(update)],
      Response::Mute(_) => vec![], // server-side mute of our tracks: we only publish video; nothing to stop
      _ => vec![],
    }
  }

  fn apply_participants(&mut self, infos: &[proto::ParticipantInfo]) -> Vec<Action> {
    let mut out = Vec::new();
    for info in infos {
      if info.sid == self.local.sid || info.identity == self.local.identity {
        if info.version >= self.local.version {
          self.local = info.clone();
        }
        continue;
      }
      let stale = self
        .versions
        .get(&info.sid)
        .is_some_and(|&v| info.version != 0 && info.version < v);
      if stale {
        continue;
      }
      if info.state == proto::participant_info::State::Disconnected as i32 {
        self.versions.remove(&info.sid);
        if let Some(gone) = self.remotes.remove(&info.sid) {
          for publication in gone.publications.values() {
            out.push(emit(RoomEvent::TrackUnpublished {
              publication: publication.clone(),
              participant: gone.clone(),
            }));
          }
          out.push(emit(RoomEvent::ParticipantDisconnected { participant: gone }));
        }
        continue;
      }
      self.versions.insert(info.sid.clone(), info.version);
      let updated = RemoteParticipant::from_info(info);
      match self.remotes.insert(info.sid.clone(), updated.clone()) {
        None => {
          out.push(emit(RoomEvent::ParticipantConnected {
            participant: updated.clone(),
          }));
          for publication in sorted(&updated.publications) {
            out.push(emit(RoomEvent::TrackPublished {
              publication,
              participant: updated.clone(),
            }));
          }
        }
        Some(previous) => {
          for (sid, before) in &previous.publications {
            if !updated.publications.contains_key(sid) {
              out.push(emit(RoomEvent::TrackUnpublished {
                publication: before.clone(),
                participant: updated.clone(),
              }));
            }
          }
          for publication in sorted(&updated.publications) {
            match previous.publications.get(&publication.sid) {
              None => out.push(emit(RoomEvent::TrackPublished {
                publication,
                participant: updated.clone(),
              })),
              Some(before) if before.muted != publication.muted => {
                let participant = updated.clone();
                out.push(emit(if publication.muted {
                  RoomEvent::TrackMuted {
                    publication,
                    participant,
                  }
                } else {
                  RoomEvent::TrackUnmuted {
                    publication,
                    participant,
                  }
                }));
              }
              Some(before) if *before != publication => out.push(emit(RoomEvent::TrackUpdated {
                publication,
                participant: updated.clone(),
              })),
              Some(_) => {}
            }
          }
        }
      }
    }
    out
  }
}

fn emit(event: RoomEvent) -> Action {
  Action::Emit(event)
}

/// Publications in a stable order (by sid) so events are deterministic.
fn sorted(publications: &HashMap<String, RemoteTrackPublication>) -> Vec<RemoteTrackPublication> {
  let mut list: Vec<_> = publications.values().cloned().collect();
  list.sort_by(|a, b| a.sid.cmp(&b.sid));
  list
}

/// LiveKit's name for a `DisconnectReason` number.
pub fn disconnect_reason(n: i32) -> String {
  proto::DisconnectReason::try_from(n)
    .map(|r| r.as_str_name().to_string())
    .unwrap_or_else(|_| format!("UNKNOWN_{n}"))
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::publication::{TrackKind, TrackSource};

  fn participant(sid: &str, identity: &str, version: u32, tracks: Vec<proto::TrackInfo>) -> proto::ParticipantInfo {
    proto::ParticipantInfo {
      sid: sid.into(),
      identity: identity.into(),
      state: proto::participant_info::State::Active as i32,
      version,
      tracks,
      ..Default::default()
    }
  }

  fn video(sid: &str, name: &str, muted: bool) -> proto::TrackInfo {
    proto::TrackInfo {
      sid: sid.into(),
      name: name.into(),
      r#type: proto::TrackType::Video as i32,
      source: proto::TrackSource::Camera as i32,
      width: 640,
      height: 480,
      mime_type: "video/VP8".into(),
      muted,
      ..Default::default()
    }
  }

  fn join() -> proto::JoinResponse {
    proto::JoinResponse {
      room: Some(proto::Room {
        name: "r1".into(),
        sid: "RM_1".into(),
        ..Default::default()
      }),
      participant: Some(participant("PA_me", "me", 1, vec![])),
      other_participants: vec![participant("PA_a", "alice", 3, vec![video("TR_a1", "cam", false)])],
      ping_interval: 5,
      ping_timeout: 15,
      ..Default::default()
    }
  }

  fn update(infos: Vec<proto::ParticipantInfo>) -> Response {
    Response::Update(proto::ParticipantUpdate { participants: infos })
  }

  fn events(actions: Vec<Action>) -> Vec<RoomEvent> {
    actions
      .into_iter()
      .filter_map(|a| match a {
        Action::Emit(e) => Some(e),
        _ => None,
      })
      .collect()
  }

  #[test]
  fn join_knows_the_room_and_present_participants() {
    let s = SignalSession::from_join(&join()).unwrap();
    assert_eq!(
      (s.room_name.as_str(), s.room_sid.as_str(), s.local.identity.as_str()),
      ("r1", "RM_1", "me")
    );
    assert_eq!((s.ping_interval_s, s.ping_timeout_s), (5, 15));
    let remotes = s.remotes();
    let alice = &remotes["alice"];
    let cam = alice.track_publication("TR_a1").unwrap();
    assert_eq!(
      (cam.kind, cam.source, cam.width, cam.height),
      (TrackKind::Video, TrackSource::Camera, 640, 480)
    );
  }

  #[test]
  fn join_without_participant_is_an_error() {
    let err = SignalSession::from_join(&proto::JoinResponse::default()).unwrap_err();
    assert_eq!(err.code(), "ERR_SIGNAL");
  }

  #[test]
  fn a_new_participant_with_a_track_is_announced_then_its_track() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let ev = events(s.handle(
      update(vec![participant(
        "PA_b",
        "bob",
        1,
        vec![video("TR_b1", "screen", false)],
      )]),
      0,
    ));
    assert!(matches!(&ev[0], RoomEvent::ParticipantConnected { participant } if participant.identity == "bob"));
    assert!(matches!(&ev[1], RoomEvent::TrackPublished { publication, participant }
      if publication.name == "screen" && participant.identity == "bob"));
    assert_eq!(ev.len(), 2);
  }

  #[test]
  fn a_publication_that_changes_size_is_reported_updated() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    events(s.handle(
      update(vec![participant(
        "PA_a",
        "alice",
        4,
        vec![video("TR_a1", "cam", false)],
      )]),
      0,
    ));
    let mut resized = video("TR_a1", "cam", false);
    (resized.width, resized.height) = (401, 300);
    let ev = events(s.handle(update(vec![participant("PA_a", "alice", 5, vec![resized])]), 0));
    assert_eq!(ev.len(), 1);
    assert!(matches!(&ev[0], RoomEvent::TrackUpdated { publication, .. }
      if (publication.width, publication.height) == (401, 300)));
    // The same description again changes nothing.
    let mut same = video("TR_a1", "cam", false);
    (same.width, same.height) = (401, 300);
    assert!(events(s.handle(update(vec![participant("PA_a", "alice", 6, vec![same])]), 0)).is_empty());
  }

  #[test]
  fn track_changes_are_diffed_and_stale_versions_ignored() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let ev = events(s.handle(
      update(vec![participant(
        "PA_a",
        "alice",
        4,
        vec![video("TR_a1", "cam", true), video("TR_a2", "cam2", false)],
      )]),
      0,
    ));
    assert_eq!(ev.len(), 2);
    assert!(matches!(&ev[0], RoomEvent::TrackMuted { publication, .. } if publication.sid == "TR_a1"));
    assert!(matches!(&ev[1], RoomEvent::TrackPublished { publication, .. } if publication.sid == "TR_a2"));
    // an older version must not undo the newer one
    assert!(events(s.handle(update(vec![participant("PA_a", "alice", 2, vec![])]), 0)).is_empty());
    let ev = events(s.handle(
      update(vec![participant(
        "PA_a",
        "alice",
        5,
        vec![video("TR_a1", "cam", false)],
      )]),
      0,
    ));
    assert!(matches!(&ev[0], RoomEvent::TrackUnpublished { publication, .. } if publication.sid == "TR_a2"));
    assert!(matches!(&ev[1], RoomEvent::TrackUnmuted { publication, .. } if publication.sid == "TR_a1"));
  }

  #[test]
  fn a_disconnected_participant_unpublishes_then_leaves() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let mut gone = participant("PA_a", "alice", 4, vec![]);
    gone.state = proto::participant_info::State::Disconnected as i32;
    let ev = events(s.handle(update(vec![gone]), 0));
    assert!(matches!(&ev[0], RoomEvent::TrackUnpublished { publication, .. } if publication.sid == "TR_a1"));
    assert!(matches!(&ev[1], RoomEvent::ParticipantDisconnected { participant } if participant.identity == "alice"));
    assert!(s.remotes().is_empty());
  }

  #[test]
  fn updates_about_ourselves_are_not_remote_events() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let ev = events(s.handle(
      update(vec![participant("PA_me", "me", 2, vec![video("TR_m", "mine", false)])]),
      0,
    ));
    assert!(ev.is_empty());
    assert_eq!(s.local.tracks.len(), 1);
  }

  #[test]
  fn negotiation_messages_become_actions() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let a = s.handle(
      Response::Offer(proto::SessionDescription {
        r#type: "offer".into(),
        sdp: "v=0".into(),
        id: 7,
        ..Default::default()
      }),
      0,
    );
    assert!(matches!(&a[0], Action::SubscriberOffer { sdp, id: 7 } if sdp == "v=0"));
    let a = s.handle(
      Response::Trickle(proto::TrickleRequest {
        candidate_init: "{\"candidate\":\"c\"}".into(),
        target: proto::SignalTarget::Subscriber as i32,
        r#final: false,
      }),
      0,
    );
    assert!(matches!(
      &a[0],
      Action::RemoteCandidate {
        target: Target::Subscriber,
        ..
      }
    ));
    let a = s.handle(
      Response::TrackPublished(proto::TrackPublishedResponse {
        cid: "c1".into(),
        track: Some(video("TR_x", "cam", false)),
      }),
      0,
    );
    assert!(matches!(&a[0], Action::TrackPublished { cid, track } if cid == "c1" && track.sid == "TR_x"));
  }

  #[test]
  fn leave_carries_the_reason_and_pong_measures_rtt() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let a = s.handle(
      Response::Leave(proto::LeaveRequest {
        reason: proto::DisconnectReason::DuplicateIdentity as i32,
        ..Default::default()
      }),
      0,
    );
    assert!(
      matches!(&a[0], Action::Leave { reason, action: proto::leave_request::Action::Disconnect } if reason == "DUPLICATE_IDENTITY")
    );
    s.handle(
      Response::PongResp(proto::Pong {
        last_ping_timestamp: 1000,
        timestamp: 1010,
      }),
      1042,
    );
    assert_eq!(s.rtt_ms, 42);
    assert!(matches!(
      s.ping(2000),
      proto::signal_request::Message::PingReq(proto::Ping {
        timestamp: 2000,
        rtt: 42
      })
    ));
  }

  #[test]
  fn a_refreshed_token_is_kept_but_not_in_debug_output() {
    let mut s = SignalSession::from_join(&join()).unwrap();
    let actions = s.handle(Response::RefreshToken("eyJ.refreshed.sig".into()), 0);
    assert!(matches!(&actions[..], [Action::RefreshToken(AccessToken(t))] if t == "eyJ.refreshed.sig"));
    let debug = format!("{actions:?}");
    assert!(!debug.contains("eyJ.refreshed.sig"), "{debug}");
  }
}
