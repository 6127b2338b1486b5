//! The room engine: one tokio task per room that owns the signal WebSocket and both peer
//! connections. This file only routes: it waits on the signal connection, the room's commands,
//! the peer connections' events and its timers, and hands each to the part that owns it.
//!
//! - [`join`]: joining (the first connect and every rejoin) and resuming a session;
//! - [`reconnect`]: when and how to reconnect, and what ends the room (no I/O);
//! - [`publish`]: our published tracks and the publisher's negotiation;
//! - [`receive`]: the remote tracks we receive (their media bypasses this loop);
//! - [`subscriptions`]: the user's subscription choices and track settings, and their carry-over
//!   across a rejoin;
//! - [`candidates`]: remote ICE candidates held until their description is set;
//! - [`shared`]: what the room's getters read without asking the engine.

mod candidates;
pub(crate) mod join;
mod publish;
mod receive;
mod reconnect;
pub(crate) mod shared;
mod subscriptions;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Request;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::data;
use crate::events::{ConnectionState, RoomEvent};
use crate::participant::RemoteParticipant;
use crate::pc::{Pc, PcEvent};
use crate::publication::LocalTrackPublication;
use crate::remote_track::{StreamsChanged, TrackEndReason};
use crate::send_control::SendBudget;
use crate::signal::connection::{SignalReader, SignalWriter};
use crate::signal::session::{Action, SignalSession, Target};
use crate::video_source::now_us;
use crate::{RtcError, RtcResult};

use candidates::HeldCandidates;
use join::{JoinConfig, Joined};
pub(crate) use publish::PublishRequest;
use publish::Publishing;
use receive::Receiving;
use reconnect::{Loss, MediaWatch, Next, OnFailure, OnLeave, ReconnectPolicy};
use shared::{lock, SharedRef};
pub(crate) use subscriptions::SettingsChange;
use subscriptions::Subscriptions;

/// What `Room` and `LocalParticipant` ask of the engine.
pub(crate) enum Command {
  /// Publish a track: one command, answered once the track is started.
  Publish(Box<PublishRequest>),
  Unpublish {
    sid: String,
    reply: oneshot::Sender<RtcResult<LocalTrackPublication>>,
  },
  Disconnect {
    reply: oneshot::Sender<()>,
  },
  /// Test hook: drop the WebSocket as a network failure would.
  SimulateSignalLoss,
  /// Test hook: ask the server to drop this session without a word (LiveKit's
  /// `SimulateScenario.node_failure`), as a server node that fails does.
  SimulateNodeFailure,
  SetSubscribed {
    track_sid: String,
    subscribed: bool,
    reply: oneshot::Sender<RtcResult<()>>,
  },
  /// Tell the server one of our tracks is (un)muted.
  MuteTrack {
    sid: String,
    muted: bool,
  },
  /// Tell the server one of our tracks' source now sends frames of another size.
  ResizeTrack {
    sid: String,
    width: u32,
    height: u32,
  },
  /// Send an encoded `DataPacket` on the publisher's channel.
  PublishData {
    reliable: bool,
    packet: Vec<u8>,
    reply: oneshot::Sender<RtcResult<()>>,
  },
  /// Change the layer, or pause, of a remote track.
  UpdateTrackSettings {
    track_sid: String,
    change: SettingsChange,
    reply: oneshot::Sender<RtcResult<()>>,
  },
}

/// Longest the end of a room waits for its peer connections to close.
const TRANSPORT_CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// What the loop does after one event.
enum Flow {
  Continue,
  /// A peer connection died after the room was up: rejoin unless the server explains.
  MediaFailed,
  /// The signal connection is gone but the session may live on: resume it.
  Resume {
    reason: String,
  },
  /// The session cannot be resumed (server restarted, transport dead): join again, republish.
  Restart {
    reason: String,
  },
  Stop {
    reason: String,
    send_leave: bool,
    reply: Option<oneshot::Sender<()>>,
  },
}

impl Flow {
  fn lost(loss: Loss) -> Flow {
    let reason = loss.reason();
    if loss.full() {
      Flow::Restart { reason }
    } else {
      Flow::Resume { reason }
    }
  }

  fn stop(reason: &str, send_leave: bool, reply: Option<oneshot::Sender<()>>) -> Flow {
    Flow::Stop {
      reason: reason.to_string(),
      send_leave,
      reply,
    }
  }
}

/// One room's engine; `Room::connect` builds it from the first join and spawns [`Engine::run`].
pub(crate) struct Engine {
  writer: SignalWriter,
  reader: SignalReader,
  session: SignalSession,
  shared: SharedRef,
  /// The engine holds the only sender, so the event stream ends when the engine does.
  events: mpsc::UnboundedSender<RoomEvent>,
  commands: mpsc::UnboundedReceiver<Command>,
  publisher: Pc,
  publisher_events: mpsc::UnboundedReceiver<PcEvent>,
  subscriber: Pc,
  subscriber_events: mpsc::UnboundedReceiver<PcEvent>,
  /// Fired once the primary peer connection is up (or failed), for `Room::connect`.
  ready: Option<oneshot::Sender<RtcResult<()>>>,
  /// The publisher's bandwidth estimate, read by every encoder.
  bwe_bps: Arc<SendBudget>,
  receiving: Receiving,
  candidates: HeldCandidates,
  /// Where and how we joined, for resumes and rejoins.
  config: JoinConfig,
  /// The last descriptions exchanged, replayed on resume.
  last_answer: Option<proto::SessionDescription>,
  last_offer: Option<proto::SessionDescription>,
  publish: Publishing,
  subscriptions: Subscriptions,
  /// Received data messages not yet taken by the application, bounded in bytes.
  data_budget: data::ReceiveBudget,
  data_dropped: u64,
  /// Which received tracks' streams came or went (adaptive stream).
  streams_changed: Arc<StreamsChanged>,
}

impl Engine {
  pub fn new(
    joined: Joined,
    config: JoinConfig,
    shared: SharedRef,
    events: mpsc::UnboundedSender<RoomEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    ready: oneshot::Sender<RtcResult<()>>,
  ) -> Self {
    Engine {
      writer: joined.writer,
      reader: joined.reader,
      session: joined.session,
      shared,
      events,
      commands,
      publisher: joined.publisher,
      publisher_events: joined.publisher_events,
      subscriber: joined.subscriber,
      subscriber_events: joined.subscriber_events,
      ready: Some(ready),
      bwe_bps: Arc::new(SendBudget::default()),
      receiving: Receiving::new(),
      candidates: HeldCandidates::default(),
      subscriptions: Subscriptions::new(config.params.auto_subscribe),
      config,
      last_answer: None,
      last_offer: None,
      publish: Publishing::default(),
      data_budget: data::ReceiveBudget::default(),
      data_dropped: 0,
      streams_changed: Arc::default(),
    }
  }

  pub async fn run(mut self) {
    // A server that asks for no pings (interval 0) gets none and is never timed out.
    let keepalive = self.session.ping_interval_s > 0;
    let ping_every = Duration::from_secs(u64::from(self.session.ping_interval_s.max(1)));
    let ping_timeout = Duration::from_secs(u64::from(
      self.session.ping_timeout_s.max(self.session.ping_interval_s * 2).max(2),
    ));
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut watch = MediaWatch::default();
    let flow = loop {
      let ice_restart_at = watch.ice_restart_due();
      let rejoin_at = watch.rejoin_due();
      let flow = tokio::select! {
        message = self.reader.recv() => match message {
          Some(Ok(message)) => {
            last_heard = Instant::now();
            self.on_signal(message).await
          }
          Some(Err(e)) => {
            tracing::warn!("signal connection lost: {e}");
            Flow::lost(Loss::SignalClosed)
          }
          None => Flow::lost(Loss::SignalClosed),
        },
        command = self.commands.recv() => match command {
          Some(command) => self.on_command(command).await,
          // Every handle is gone: leave politely.
          None => Flow::stop("CLIENT_INITIATED", true, None),
        },
        Some(event) = self.publisher_events.recv() => {
          watch.on_event(Target::Publisher, &event, self.ready.is_none(), Instant::now());
          self.on_pc_event(Target::Publisher, event).await
        }
        Some(event) = self.subscriber_events.recv() => {
          watch.on_event(Target::Subscriber, &event, self.ready.is_none(), Instant::now());
          self.on_pc_event(Target::Subscriber, event).await
        }
        _ = tokio::time::sleep_until(ice_restart_at.unwrap_or_else(Instant::now)), if ice_restart_at.is_some() => {
          tracing::warn!("media has not flowed for {:?}; restarting ICE", reconnect::ICE_RESTART_AFTER);
          Flow::lost(Loss::MediaDown)
        }
        _ = self.streams_changed.notify.notified() => {
          self.streams_came_or_went().await;
          Flow::Continue
        }
        _ = ping.tick(), if keepalive => {
          let message = self.session.ping(now_us() / 1000);
          if let Err(e) = self.writer.send(message).await {
            tracing::debug!("ping failed: {e}");
          }
          Flow::Continue
        }
        _ = tokio::time::sleep_until(rejoin_at.unwrap_or_else(Instant::now)), if rejoin_at.is_some() => {
          Flow::lost(Loss::MediaFailed)
        }
        _ = tokio::time::sleep_until(last_heard + ping_timeout), if keepalive => {
          tracing::warn!("no message from the server for {ping_timeout:?}");
          Flow::lost(Loss::ServerSilent)
        }
      };
      let flow = match flow {
        Flow::MediaFailed => {
          watch.failed(Instant::now());
          Flow::Continue
        }
        Flow::Resume { reason } => {
          let flow = self.reconnect(&reason, false, &mut watch).await;
          last_heard = Instant::now();
          flow
        }
        Flow::Restart { reason } => {
          let flow = self.reconnect(&reason, true, &mut watch).await;
          last_heard = Instant::now();
          flow
        }
        other => other,
      };
      if let Flow::Stop { .. } = flow {
        break flow;
      }
    };
    if let Flow::Stop {
      reason,
      send_leave,
      reply,
    } = flow
    {
      self.close(reason, send_leave, reply).await;
    }
  }

  /// Gets the connection back as the [`ReconnectPolicy`] says: resumes the session on a new
  /// WebSocket, or (`full`) joins again with new transports and republishes. Commands wait
  /// between attempts; `disconnect` cuts it short.
  async fn reconnect(&mut self, reason: &str, full: bool, watch: &mut MediaWatch) -> Flow {
    let mut policy = ReconnectPolicy::new(reason, full);
    tracing::info!(
      "connection lost ({reason}); {}",
      if full { "rejoining" } else { "resuming" }
    );
    // A dead peer never answers a close: don't wait for it.
    let _ = tokio::time::timeout(Duration::from_millis(100), self.writer.close()).await;
    self.set_state(ConnectionState::Reconnecting);
    let _ = self.events.send(RoomEvent::Reconnecting);
    let mut deferred = Vec::new();
    let full = loop {
      let full = policy.full();
      let result = if full {
        self.try_rejoin().await
      } else {
        self.try_resume().await
      };
      if let Err(e) = &result {
        tracing::info!("{} attempt failed: {e}", if full { "rejoin" } else { "resume" });
      }
      match policy.attempted(&result) {
        Next::Reconnected { full } => break full,
        // Commands that waited for the reconnect learn that it failed when their reply is
        // dropped.
        Next::GiveUp { reason } => return Flow::stop(&reason, false, None),
        Next::Retry { after } => {
          let wake = tokio::time::sleep(after);
          tokio::pin!(wake);
          loop {
            tokio::select! {
              _ = &mut wake => break,
              command = self.commands.recv() => match command {
                Some(Command::Disconnect { reply }) => return Flow::stop("CLIENT_INITIATED", false, Some(reply)),
                Some(other) => deferred.push(other),
                None => return Flow::stop("CLIENT_INITIATED", false, None),
              },
            }
          }
        }
      }
    };
    watch.reconnected(full, Instant::now());
    if !full {
      self.restart_publisher_ice().await;
      // As LiveKit's SDKs do: the resumed session gets the settings again, in case the server
      // lost any.
      self.send_all_track_settings().await;
    }
    self.set_state(ConnectionState::Connected);
    let _ = self.events.send(RoomEvent::Reconnected);
    for command in deferred {
      if let flow @ Flow::Stop { .. } = self.on_command(command).await {
        return flow;
      }
    }
    Flow::Continue
  }

  /// The room ends: leave (if we end it), stop every track, close the transports (bounded), and
  /// end the event stream with `Disconnected { reason }`.
  async fn close(mut self, reason: String, send_leave: bool, reply: Option<oneshot::Sender<()>>) {
    if send_leave {
      let leave = proto::LeaveRequest {
        reason: proto::DisconnectReason::ClientInitiated as i32,
        action: proto::leave_request::Action::Disconnect as i32,
        ..Default::default()
      };
      let _ = tokio::time::timeout(Duration::from_secs(2), self.writer.send(Request::Leave(leave))).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), self.writer.close()).await;
    self.publish.close(&reason);
    self.end_all_received(TrackEndReason::Disconnected);
    // Each close waits (bounded) for its goodbye to drain: both at once. The outer bound keeps
    // `disconnect` from ever waiting on a transport that stopped answering.
    let closes = async { tokio::join!(self.publisher.close(), self.subscriber.close()) };
    if tokio::time::timeout(TRANSPORT_CLOSE_LIMIT, closes).await.is_err() {
      tracing::warn!("the peer connections did not close within {TRANSPORT_CLOSE_LIMIT:?}; leaving them");
    }
    if let Some(ready) = self.ready.take() {
      let _ = ready.send(Err(RtcError::Disconnected { reason: reason.clone() }));
    }
    lock(&self.shared).publications.clear();
    self.set_state(ConnectionState::Disconnected);
    let _ = self.events.send(RoomEvent::Disconnected { reason });
    if let Some(reply) = reply {
      let _ = reply.send(());
    }
  }

  fn set_state(&mut self, state: ConnectionState) {
    lock(&self.shared).state = state;
    let _ = self.events.send(RoomEvent::ConnectionStateChanged { state });
  }

  async fn send(&mut self, message: Request) {
    if let Err(e) = self.writer.send(message).await {
      tracing::warn!("signal send failed: {e}");
    }
  }

  fn pc(&self, target: Target) -> &Pc {
    match target {
      Target::Publisher => &self.publisher,
      Target::Subscriber => &self.subscriber,
    }
  }

  /// Applies the candidates held until `target`'s remote description was set.
  async fn flush_candidates(&mut self, target: Target) {
    for candidate in self.candidates.described(target) {
      if let Err(e) = self.pc(target).add_remote_candidate(&candidate).await {
        tracing::debug!("remote candidate rejected: {e}");
      }
    }
  }

  async fn on_signal(&mut self, message: proto::signal_response::Message) -> Flow {
    let is_update = matches!(
      message,
      proto::signal_response::Message::Update(_) | proto::signal_response::Message::RoomUpdate(_)
    );
    let actions = self.session.handle(message, now_us() / 1000);
    if is_update {
      // Getters see the new state before the events about it arrive.
      let mut shared = lock(&self.shared);
      shared.remotes = self.session.remotes();
      shared.local = self.session.local.clone();
      shared.room_sid = self.session.room_sid.clone();
    }
    for action in actions {
      match action {
        Action::Emit(event) => {
          match &event {
            RoomEvent::TrackUnpublished {
              publication,
              participant,
            } => {
              // A participant who left is gone from the session by now; its tracks go with it.
              let reason = if self.session.remote_by_sid(&participant.sid).is_some() {
                TrackEndReason::Unpublished
              } else {
                TrackEndReason::ParticipantLeft
              };
              self.unsubscribe_sid(&publication.sid, reason);
              self.subscriptions.unpublished(&publication.sid);
              self.mirror_track_settings();
            }
            RoomEvent::TrackPublished {
              publication,
              participant,
            } => self.apply_carried_choice(participant, publication).await,
            _ => {}
          }
          let _ = self.events.send(event);
        }
        Action::SubscriberOffer { sdp, id } => match self.subscriber.apply_offer(&sdp).await {
          Ok(answer) => {
            let answer = proto::SessionDescription {
              r#type: "answer".into(),
              sdp: answer,
              id,
              ..Default::default()
            };
            self.last_answer = Some(answer.clone());
            self.send(Request::Answer(answer)).await;
            self.flush_candidates(Target::Subscriber).await;
          }
          Err(e) => tracing::warn!("cannot answer the subscriber offer: {e}"),
        },
        Action::PublisherAnswer { sdp, id } => {
          tracing::debug!("publisher answer {id}");
          self.publisher_answer(&sdp).await
        }
        Action::RemoteCandidate { target, candidate_init } => {
          if let Some(candidate) = self.candidates.arrived(target, candidate_init) {
            if let Err(e) = self.pc(target).add_remote_candidate(&candidate).await {
              tracing::debug!("remote candidate rejected: {e}");
            }
          }
        }
        Action::TrackPublished { cid, track } => self.track_published(cid, track).await,
        Action::LocalTrackUnpublished { sid } => self.server_unpublished(&sid).await,
        Action::RequestFailed {
          request_id,
          reason,
          message,
        } => tracing::warn!("request {request_id} failed: {reason} {message}"),
        Action::Leave { reason, action } => {
          tracing::info!("the server ends the session: {reason} ({})", action.as_str_name());
          return match reconnect::on_leave(action) {
            OnLeave::Resume => Flow::Resume { reason },
            OnLeave::Rejoin => Flow::Restart { reason },
            OnLeave::End => Flow::stop(&reason, false, None),
          };
        }
        Action::RefreshToken(token) => self.config.token = token.0,
        Action::SubscribedQualities(update) => self.subscribed_quality_update(&update),
      }
    }
    Flow::Continue
  }

  async fn on_command(&mut self, command: Command) -> Flow {
    match command {
      Command::Publish(publish) => self.publish(*publish).await,
      Command::Unpublish { sid, reply } => {
        let result = self.unpublish(sid).await;
        let _ = reply.send(result);
      }
      Command::SimulateSignalLoss => return Flow::lost(Loss::Simulated),
      Command::SimulateNodeFailure => {
        let scenario = proto::SimulateScenario {
          scenario: Some(proto::simulate_scenario::Scenario::NodeFailure(true)),
        };
        self.send(Request::Simulate(scenario)).await;
      }
      Command::SetSubscribed {
        track_sid,
        subscribed,
        reply,
      } => {
        let Some(participant) = self.session.publisher_of(&track_sid) else {
          let _ = reply.send(Err(RtcError::TrackNotFound { sid: track_sid }));
          return Flow::Continue;
        };
        let participant_sid = participant.sid.clone();
        self.subscriptions.choose(&track_sid, subscribed);
        self.send_subscription(participant_sid, track_sid, subscribed).await;
        let _ = reply.send(Ok(()));
      }
      Command::MuteTrack { sid, muted } => {
        if let Some(view) = lock(&self.shared).publications.get_mut(&sid) {
          view.publication.muted = muted;
        }
        self.send(Request::Mute(proto::MuteTrackRequest { sid, muted })).await;
      }
      Command::ResizeTrack { sid, width, height } => {
        if let Some(view) = lock(&self.shared).publications.get_mut(&sid) {
          view.publication.width = width;
          view.publication.height = height;
        }
        let update = proto::UpdateLocalVideoTrack {
          track_sid: sid,
          width,
          height,
        };
        self.send(Request::UpdateVideoTrack(update)).await;
      }
      Command::PublishData {
        reliable,
        packet,
        reply,
      } => {
        // Queued on the transport now, in command order; its answer is awaited elsewhere so
        // that the engine never waits on it.
        let sent = self.publisher.send_data(reliable, packet);
        tokio::spawn(async move {
          let _ = reply.send(sent.await);
        });
      }
      Command::UpdateTrackSettings {
        track_sid,
        change,
        reply,
      } => {
        let kind = self
          .session
          .publisher_of(&track_sid)
          .and_then(|p| p.track_publication(&track_sid))
          .map(|p| p.kind);
        let Some(kind) = kind else {
          let _ = reply.send(Err(RtcError::TrackNotFound { sid: track_sid }));
          return Flow::Continue;
        };
        if kind != crate::publication::TrackKind::Video {
          let _ = reply.send(Err(RtcError::InvalidArgument {
            name: "trackSid",
            reason: format!("expected the sid of a video track, got {track_sid:?} (not video)"),
          }));
          return Flow::Continue;
        }
        self.subscriptions.change(&track_sid, change);
        self.mirror_track_settings();
        self.send_track_settings(&track_sid, false).await;
        let _ = reply.send(Ok(()));
      }
      Command::Disconnect { reply } => return Flow::stop("CLIENT_INITIATED", true, Some(reply)),
    }
    Flow::Continue
  }

  async fn on_pc_event(&mut self, target: Target, event: PcEvent) -> Flow {
    match event {
      PcEvent::LocalCandidate(candidate_init) => {
        let trickle = proto::TrickleRequest {
          candidate_init,
          target: target.to_proto() as i32,
          r#final: false,
        };
        self.send(Request::Trickle(trickle)).await;
      }
      PcEvent::NegotiationNeeded => {
        if target == Target::Publisher {
          self.negotiate(false).await;
        }
      }
      PcEvent::Connected => {
        let primary = if self.session.subscriber_primary {
          Target::Subscriber
        } else {
          Target::Publisher
        };
        if target == primary {
          if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
          }
        }
      }
      PcEvent::Disconnected => tracing::info!("{target:?} peer connection disconnected"),
      PcEvent::Failed(why) => {
        tracing::warn!("{target:?} peer connection failed: {why}");
        return match reconnect::on_failure(self.ready.is_some()) {
          OnFailure::End { reason } => {
            if let Some(ready) = self.ready.take() {
              let _ = ready.send(Err(RtcError::Transport(format!(
                "the {target:?} peer connection failed: {why}"
              ))));
            }
            Flow::stop(&reason, true, None)
          }
          OnFailure::RejoinUnlessExplained => Flow::MediaFailed,
        };
      }
      PcEvent::KeyframeRequest { mid, rid } => self.keyframe_requested(&mid, rid.as_deref()),
      PcEvent::BitrateEstimate { bps } => self.bwe_bps.store(bps, Ordering::Relaxed),
      PcEvent::EgressStats { mid, rid, counts } => self.publish.record_egress(&mid, rid.as_deref(), counts),
      PcEvent::SendQueue { mid, rid, delay } => self.publish.record_send_queue(&mid, rid.as_deref(), delay),
      PcEvent::TrackAdded {
        mid,
        stream_id,
        track_id,
        codec,
      } => {
        if let Some(sid) = self.track_added(mid, &stream_id, &track_id, codec) {
          // A new subscription starts from the server's default: it gets the settings chosen.
          self.send_track_settings(&sid, true).await;
        }
      }
      PcEvent::TrackRemoved { mid } => self.track_removed(&mid),
      PcEvent::DataReceived { reliable, data } => self.data_received(reliable, &data),
    }
    Flow::Continue
  }

  /// A user message from the server goes to the application while the bound on undelivered
  /// messages allows; other packet types (speaker updates, RPC, ...) are not handled.
  fn data_received(&mut self, reliable: bool, bytes: &[u8]) {
    let Some(message) = data::decode_user_packet(bytes, reliable) else {
      return;
    };
    let Some(ticket) = self.data_budget.take(message.payload.len()) else {
      self.data_dropped += 1;
      tracing::warn!(
        "data message of {} bytes dropped: the application has not taken the ones before it ({} dropped so far)",
        message.payload.len(),
        self.data_dropped
      );
      return;
    };
    let participant = self.session.remotes().remove(&message.sender_identity);
    let _ = self.events.send(RoomEvent::DataReceived {
      payload: message.payload,
      kind: message.kind,
      topic: message.topic,
      participant,
      sender_identity: message.sender_identity,
      ticket: Arc::new(ticket),
    });
  }

  async fn send_subscription(&mut self, participant_sid: String, track_sid: String, subscribe: bool) {
    let update = proto::UpdateSubscription {
      track_sids: vec![track_sid.clone()],
      subscribe,
      participant_tracks: vec![proto::ParticipantTracks {
        participant_sid,
        track_sids: vec![track_sid],
      }],
    };
    self.send(Request::Subscription(update)).await;
  }

  /// A track published again after a full rejoin gets the subscription and the settings the
  /// user chose for its predecessor.
  async fn apply_carried_choice(
    &mut self,
    participant: &RemoteParticipant,
    publication: &crate::publication::RemoteTrackPublication,
  ) {
    let carried = self.subscriptions.published(participant, publication);
    if carried.settings {
      self.mirror_track_settings();
      // Before any subscription request of ours; the server may have subscribed us already.
      self.send_track_settings(&publication.sid, true).await;
    }
    if let Some(subscribed) = carried.subscribe {
      self
        .send_subscription(participant.sid.clone(), publication.sid.clone(), subscribed)
        .await;
    }
  }

  /// The getters see the settings as they are now.
  fn mirror_track_settings(&self) {
    lock(&self.shared).track_settings = self.subscriptions.all_settings();
  }

  /// The size the open streams of the track `sid` want, when adaptive stream is on.
  fn wanted_size(&self, sid: &str) -> Option<(u32, u32)> {
    if !self.config.adaptive_stream {
      return None;
    }
    self
      .receiving
      .values()
      .find(|s| s.publication.sid == sid)
      .and_then(|s| s.track.wanted_size())
  }

  /// Tells the server the settings of the track `sid` if it does not have them (`force`: unless
  /// they are its default).
  async fn send_track_settings(&mut self, sid: &str, force: bool) {
    let wanted = self.wanted_size(sid);
    if let Some(message) = self.subscriptions.message_for(sid, wanted, force) {
      tracing::debug!(
        "track settings for {sid}: disabled {} quality {} size {}x{}",
        message.disabled,
        message.quality,
        message.width,
        message.height
      );
      self.send(Request::TrackSetting(message)).await;
    }
  }

  /// Every track the user set, and every track received, gets its settings again.
  async fn send_all_track_settings(&mut self) {
    let mut sids: Vec<String> = self.subscriptions.with_settings().map(str::to_string).collect();
    sids.extend(self.receiving.values().map(|s| s.publication.sid.clone()));
    sids.sort();
    sids.dedup();
    for sid in sids {
      self.send_track_settings(&sid, true).await;
    }
  }

  /// Streams opened or closed on received tracks: with adaptive stream, the size they want
  /// may have changed.
  async fn streams_came_or_went(&mut self) {
    let sids = self.streams_changed.take();
    if !self.config.adaptive_stream {
      return;
    }
    for sid in sids {
      self.send_track_settings(&sid, false).await;
    }
  }
}
