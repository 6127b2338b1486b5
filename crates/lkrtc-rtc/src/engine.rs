//! The room engine: one tokio task per room that owns the signal WebSocket and both peer
//! connections. It applies server messages through the sans-IO [`SignalSession`], runs the
//! keepalive, negotiates the publisher, and serves commands from `Room`/`LocalParticipant`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Request;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::decoder_task::{self, DecoderInput, EncodedFrame};
use crate::encoder_task::{EncoderControl, EncoderRoute};
use crate::events::{ConnectionState, RoomEvent};
use crate::local_track::LocalVideoTrack;
use crate::options::VideoCodec;
use crate::participant::RemoteParticipant;
use crate::pc::{Pc, PcEvent, Role};
use crate::publication::{LocalTrackPublication, RemoteTrackPublication, TrackKind, TrackSource};
use crate::remote_track::{RemoteVideoTrack, TrackEndReason};
use crate::signal::connection::{self, SignalReader, SignalWriter};
use crate::signal::session::{disconnect_reason, Action, SignalSession, Target};
use crate::signal::url::{signal_url, JoinParams};
use crate::video_source::{now_us, FrameSlot, VideoSource};
use crate::{RtcError, RtcResult};

/// What getters read without asking the engine.
pub(crate) struct Shared {
  pub room_name: String,
  pub room_sid: String,
  pub local: proto::ParticipantInfo,
  pub remotes: HashMap<String, RemoteParticipant>,
  pub state: ConnectionState,
  pub publications: HashMap<String, LocalTrackPublication>,
}

pub(crate) type SharedRef = Arc<Mutex<Shared>>;

pub(crate) fn lock(shared: &SharedRef) -> std::sync::MutexGuard<'_, Shared> {
  shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a started track needs to feed its encoder.
pub(crate) struct StartedTrack {
  pub mid: String,
  pub control: Arc<EncoderControl>,
  pub bwe_bps: Arc<AtomicU64>,
}

pub(crate) enum Command {
  AddTrack {
    request: proto::AddTrackRequest,
    reply: oneshot::Sender<RtcResult<proto::TrackInfo>>,
  },
  CancelAdd {
    cid: String,
  },
  StartTrack {
    cid: String,
    /// Sent again to republish the track after a full reconnect.
    request: Box<proto::AddTrackRequest>,
    info: proto::TrackInfo,
    codec: VideoCodec,
    publication: LocalTrackPublication,
    track: LocalVideoTrack,
    source: VideoSource,
    slot: Arc<FrameSlot>,
    reply: oneshot::Sender<RtcResult<StartedTrack>>,
  },
  Unpublish {
    sid: String,
    reply: oneshot::Sender<RtcResult<LocalTrackPublication>>,
  },
  Disconnect {
    reply: oneshot::Sender<()>,
  },
  /// Events decided outside the engine go through it to keep the stream's order and ending.
  Emit(RoomEvent),
  /// Test hook: drop the WebSocket as a network failure would.
  SimulateSignalLoss,
  SetSubscribed {
    track_sid: String,
    subscribed: bool,
    reply: oneshot::Sender<RtcResult<()>>,
  },
}

/// A remote video track being received.
pub(crate) struct Subscribed {
  track: RemoteVideoTrack,
  input: DecoderInput,
  publication: RemoteTrackPublication,
  participant: RemoteParticipant,
}

pub(crate) struct PublishedTrack {
  mid: String,
  cid: String,
  request: proto::AddTrackRequest,
  codec: VideoCodec,
  /// The server's description, replayed in `SyncState` on resume.
  info: proto::TrackInfo,
  publication: LocalTrackPublication,
  track: LocalVideoTrack,
  control: Arc<EncoderControl>,
  source: VideoSource,
  slot: Arc<FrameSlot>,
}

pub(crate) struct Engine {
  pub writer: SignalWriter,
  pub reader: SignalReader,
  pub session: SignalSession,
  pub shared: SharedRef,
  pub events: mpsc::UnboundedSender<RoomEvent>,
  pub commands: mpsc::UnboundedReceiver<Command>,
  pub publisher: Pc,
  pub publisher_events: mpsc::UnboundedReceiver<PcEvent>,
  pub subscriber: Pc,
  pub subscriber_events: mpsc::UnboundedReceiver<PcEvent>,
  /// Fired once the primary peer connection is up (or failed), for `Room::connect`.
  pub ready: Option<oneshot::Sender<RtcResult<()>>>,
  pub bwe_bps: Arc<AtomicU64>,
  /// Keyed by the subscriber transceiver's mid.
  pub subscribed: HashMap<String, Subscribed>,
  /// Per target (publisher, subscriber): `Some` until the first remote description is set.
  pub remote_candidates: [Option<Vec<String>>; 2],
  /// What a resume needs: where and how we joined, and the last descriptions exchanged.
  pub resume: ResumeParams,
  pub token: String,
  pub last_answer: Option<proto::SessionDescription>,
  pub last_offer: Option<proto::SessionDescription>,
  /// The local address media binds to (see `Room::connect`), reused by a full reconnect.
  pub bind_ip: std::net::IpAddr,
  /// Our tracks between a full reconnect and the new server's `TrackPublishedResponse`, by cid.
  pub republishing: HashMap<String, PublishedTrack>,
  /// Subscriptions asked for with `set_subscribed`, by track sid.
  pub subscription_choices: HashMap<String, bool>,
  /// The choices of the session before a full reconnect, by what identifies a track across it,
  /// waiting for that track to be published again.
  pub carried_choices: HashMap<TrackKey, bool>,
}

/// At most this many subscription choices wait for their tracks after full reconnects.
const MAX_CARRIED_CHOICES: usize = 1024;

/// A remote track across a full reconnect, where its sid changes: its publisher's identity, its
/// source and its name.
pub(crate) type TrackKey = (String, TrackSource, String);

fn track_key(participant: &RemoteParticipant, publication: &RemoteTrackPublication) -> TrackKey {
  (
    participant.identity.clone(),
    publication.source,
    publication.name.clone(),
  )
}

type PendingAdds = HashMap<String, (proto::AddTrackRequest, oneshot::Sender<RtcResult<proto::TrackInfo>>)>;

pub(crate) struct ResumeParams {
  pub base: url::Url,
  pub params: JoinParams,
  pub connect_timeout: Duration,
  pub tls_config: Arc<rustls::ClientConfig>,
}

/// Backoff between resume attempts: 300 ms doubling, capped at 7 s, 10 tries (LiveKit's).
const RESUME_FIRST_DELAY: Duration = Duration::from_millis(300);
const RESUME_MAX_DELAY: Duration = Duration::from_secs(7);
const RESUME_ATTEMPTS: u32 = 10;

struct Negotiation {
  /// An offer is out and its answer has not come back.
  in_flight: bool,
  /// Something changed while the offer was out: offer again after the answer.
  again: bool,
  /// Our transceivers' mids to track cids, sent with each offer so the server can match
  /// tracks even when the SDP's msid does not carry the cid.
  mid_to_track_id: HashMap<String, String>,
}

/// A peer connection whose path is down (nothing received for 5 s, e.g. UDP blocked) for this
/// long more is restarted: the session resumes on a new WebSocket, the publisher offers with new
/// ICE credentials and the server restarts the subscriber's ICE.
const ICE_RESTART_AFTER: Duration = Duration::from_secs(2);

/// How long an ICE restart has before the path counts as still down.
const ICE_RESTART_GRACE: Duration = Duration::from_secs(3);

/// Longest the end of a room waits for its peer connections to close.
const TRANSPORT_CLOSE_LIMIT: Duration = Duration::from_secs(3);

/// How long a failed peer connection waits for the server to say why (a `LeaveRequest`, e.g.
/// `DUPLICATE_IDENTITY`, usually races the transport's close) before the room ends with
/// `MEDIA_FAILURE`.
const MEDIA_FAILURE_GRACE: Duration = Duration::from_secs(1);

enum Flow {
  Continue,
  /// A peer connection died after the room was up: end the room unless the server explains.
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

impl Engine {
  pub async fn run(mut self) {
    let mut pending_adds: PendingAdds = HashMap::new();
    let mut tracks: HashMap<String, PublishedTrack> = HashMap::new();
    let mut negotiation = Negotiation {
      in_flight: false,
      again: false,
      mid_to_track_id: HashMap::new(),
    };
    // A server that asks for no pings (interval 0) gets none and is never timed out.
    let keepalive = self.session.ping_interval_s > 0;
    let ping_every = Duration::from_secs(u64::from(self.session.ping_interval_s.max(1)));
    let ping_timeout = Duration::from_secs(u64::from(
      self.session.ping_timeout_s.max(self.session.ping_interval_s * 2).max(2),
    ));
    let mut ping = tokio::time::interval(ping_every);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();

    let mut media_failed_at: Option<Instant> = None;
    // Per target (publisher, subscriber): since when its ICE path has been down.
    let mut media_down_since: [Option<Instant>; 2] = [None, None];
    let flow = loop {
      let media_down = media_down_since.iter().flatten().min().copied();
      let flow = tokio::select! {
        message = self.reader.recv() => match message {
          Some(Ok(message)) => {
            last_heard = Instant::now();
            self.on_signal(message, &mut pending_adds, &mut tracks, &mut negotiation).await
          }
          Some(Err(e)) => {
            log::warn!("signal connection lost: {e}");
            Flow::Resume { reason: "SIGNAL_CLOSE".into() }
          }
          None => Flow::Resume { reason: "SIGNAL_CLOSE".into() },
        },
        command = self.commands.recv() => match command {
          Some(command) => self.on_command(command, &mut pending_adds, &mut tracks, &mut negotiation).await,
          // Every handle is gone: leave politely.
          None => Flow::Stop { reason: "CLIENT_INITIATED".into(), send_leave: true, reply: None },
        },
        Some(event) = self.publisher_events.recv() => {
          track_media(&mut media_down_since, Target::Publisher, &event, self.ready.is_none());
          self.on_pc_event(Target::Publisher, event, &tracks, &mut negotiation).await
        }
        Some(event) = self.subscriber_events.recv() => {
          track_media(&mut media_down_since, Target::Subscriber, &event, self.ready.is_none());
          self.on_pc_event(Target::Subscriber, event, &tracks, &mut negotiation).await
        }
        _ = tokio::time::sleep_until(media_down.unwrap_or_else(Instant::now) + ICE_RESTART_AFTER), if media_down.is_some() => {
          log::warn!("media has not flowed for {ICE_RESTART_AFTER:?}; restarting ICE");
          Flow::Resume { reason: "MEDIA_DISCONNECTED".into() }
        }
        _ = ping.tick(), if keepalive => {
          let message = self.session.ping(now_us() / 1000);
          if let Err(e) = self.writer.send(message).await {
            log::debug!("ping failed: {e}");
          }
          Flow::Continue
        }
        _ = tokio::time::sleep_until(media_failed_at.unwrap_or_else(Instant::now)), if media_failed_at.is_some() => {
          Flow::Restart { reason: disconnect_reason(proto::DisconnectReason::MediaFailure as i32) }
        }
        _ = tokio::time::sleep_until(last_heard + ping_timeout), if keepalive => {
          log::warn!("no message from the server for {ping_timeout:?}");
          Flow::Resume { reason: "CONNECTION_TIMEOUT".into() }
        }
      };
      let full = matches!(flow, Flow::Restart { .. });
      let flow = match flow {
        Flow::MediaFailed => {
          media_failed_at.get_or_insert(Instant::now() + MEDIA_FAILURE_GRACE);
          Flow::Continue
        }
        Flow::Resume { reason } | Flow::Restart { reason } => {
          let outcome = self
            .resume(&reason, full, &mut pending_adds, &mut tracks, &mut negotiation)
            .await;
          last_heard = Instant::now();
          media_failed_at = None;
          // A path that was down gets time for its ICE restart; if it is still down after that,
          // the next resume restarts it again (a full rejoin follows once the transport fails).
          // A rejoin starts over with new transports.
          let retry = Instant::now() + ICE_RESTART_GRACE;
          media_down_since = media_down_since.map(|down| down.filter(|_| !full).map(|_| retry));
          outcome
        }
        other => other,
      };
      if let Flow::Stop { .. } = flow {
        break flow;
      }
    };

    let Flow::Stop {
      reason,
      send_leave,
      reply,
    } = flow
    else {
      return;
    };
    if send_leave {
      let leave = proto::LeaveRequest {
        reason: proto::DisconnectReason::ClientInitiated as i32,
        action: proto::leave_request::Action::Disconnect as i32,
        ..Default::default()
      };
      let _ = tokio::time::timeout(Duration::from_secs(2), self.writer.send(Request::Leave(leave))).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(500), self.writer.close()).await;
    for (_, track) in tracks.drain() {
      track.source.detach(&track.slot);
    }
    for (_, sub) in self.subscribed.drain() {
      sub.track.set_end_reason(TrackEndReason::Disconnected);
      sub.track.end();
    }
    for (_, (_, reply)) in pending_adds.drain() {
      let _ = reply.send(Err(RtcError::Disconnected { reason: reason.clone() }));
    }
    for (_, track) in self.republishing.drain() {
      track.source.detach(&track.slot);
    }
    // Each close waits (bounded) for its goodbye to drain: both at once. The outer bound keeps
    // `disconnect` from ever waiting on a transport that stopped answering.
    let closes = async { tokio::join!(self.publisher.close(), self.subscriber.close()) };
    if tokio::time::timeout(TRANSPORT_CLOSE_LIMIT, closes).await.is_err() {
      log::warn!("the peer connections did not close within {TRANSPORT_CLOSE_LIMIT:?}; leaving them");
    }
    if let Some(ready) = self.ready.take() {
      let _ = ready.send(Err(RtcError::Disconnected { reason: reason.clone() }));
    }
    {
      let mut shared = lock(&self.shared);
      shared.state = ConnectionState::Disconnected;
      shared.publications.clear();
    }
    let _ = self.events.send(RoomEvent::ConnectionStateChanged {
      state: ConnectionState::Disconnected,
    });
    let _ = self.events.send(RoomEvent::Disconnected { reason });
    if let Some(reply) = reply {
      let _ = reply.send(());
    }
  }

  /// Resumes the session on a new WebSocket (`reconnect=1&sid=..`), replays our state with
  /// `SyncState` and ICE-restarts the publisher. When the server cannot resume it (it restarted,
  /// or the transports are dead: `full`), joins again with new transports and republishes our
  /// tracks (LiveKit's full reconnect). Attempts back off; commands wait; `disconnect` cuts it
  /// short.
  async fn resume(
    &mut self,
    reason: &str,
    mut full: bool,
    pending_adds: &mut PendingAdds,
    tracks: &mut HashMap<String, PublishedTrack>,
    negotiation: &mut Negotiation,
  ) -> Flow {
    log::info!(
      "connection lost ({reason}); {}",
      if full { "rejoining" } else { "resuming" }
    );
    // A dead peer never answers a close: don't wait for it.
    let _ = tokio::time::timeout(Duration::from_millis(100), self.writer.close()).await;
    lock(&self.shared).state = ConnectionState::Reconnecting;
    let _ = self.events.send(RoomEvent::ConnectionStateChanged {
      state: ConnectionState::Reconnecting,
    });
    let _ = self.events.send(RoomEvent::Reconnecting);
    let mut deferred = Vec::new();
    let mut delay = RESUME_FIRST_DELAY;
    let mut outcome = Err(RtcError::Signal(reason.to_string()));
    for attempt in 1..=RESUME_ATTEMPTS {
      outcome = if full {
        self.try_restart(pending_adds, tracks, negotiation).await
      } else {
        self.try_resume(tracks).await
      };
      match &outcome {
        Ok(()) => break,
        Err(RtcError::Unauthorized { .. } | RtcError::Disconnected { .. }) => break,
        Err(e) => {
          log::info!(
            "{} attempt {attempt} failed: {e}",
            if full { "rejoin" } else { "resume" }
          );
          // As LiveKit's SDKs do: once a resume fails, the next attempts join afresh.
          full = true;
        }
      }
      if attempt == RESUME_ATTEMPTS {
        break;
      }
      let wake = tokio::time::sleep(delay);
      tokio::pin!(wake);
      loop {
        tokio::select! {
          _ = &mut wake => break,
          command = self.commands.recv() => match command {
            Some(Command::Disconnect { reply }) => {
              return Flow::Stop { reason: "CLIENT_INITIATED".into(), send_leave: false, reply: Some(reply) };
            }
            Some(other) => deferred.push(other),
            None => return Flow::Stop { reason: "CLIENT_INITIATED".into(), send_leave: false, reply: None },
          },
        }
      }
      delay = (delay * 2).min(RESUME_MAX_DELAY);
    }
    if let Err(e) = outcome {
      let reason = match e {
        RtcError::Disconnected { reason } => reason,
        _ => reason.to_string(),
      };
      // Commands that waited for the resume learn that it failed when their reply is dropped.
      return Flow::Stop {
        reason,
        send_leave: false,
        reply: None,
      };
    }
    if !full && (!tracks.is_empty() || self.last_offer.is_some()) {
      negotiation.in_flight = false;
      self.negotiate_with(negotiation, true).await;
    }
    lock(&self.shared).state = ConnectionState::Connected;
    let _ = self.events.send(RoomEvent::ConnectionStateChanged {
      state: ConnectionState::Connected,
    });
    let _ = self.events.send(RoomEvent::Reconnected);
    for command in deferred {
      if let Flow::Stop {
        reason,
        send_leave,
        reply,
      } = self.on_command(command, pending_adds, tracks, negotiation).await
      {
        return Flow::Stop {
          reason,
          send_leave,
          reply,
        };
      }
    }
    Flow::Continue
  }

  /// A new signal connection to the room's server; a resume of our session when `reconnect_sid`
  /// is set, a fresh join otherwise.
  async fn open_signal(&self, reconnect_sid: Option<String>) -> RtcResult<(SignalWriter, SignalReader)> {
    let params = JoinParams {
      reconnect_sid,
      ..self.resume.params.clone()
    };
    let url = signal_url(&self.resume.base, &self.token, &params);
    let (base, tls, timeout) = (&self.resume.base, &self.resume.tls_config, self.resume.connect_timeout);
    connection::connect(&url, base, &self.token, tls, timeout).await
  }

  async fn try_resume(&mut self, tracks: &HashMap<String, PublishedTrack>) -> RtcResult<()> {
    let timeout = self.resume.connect_timeout;
    let (writer, mut reader) = self.open_signal(Some(self.session.local.sid.clone())).await?;
    let wait = async {
      loop {
        match reader.recv().await {
          Some(Ok(proto::signal_response::Message::Reconnect(_))) => return Ok(()),
          Some(Ok(proto::signal_response::Message::Leave(leave))) => {
            let reason = disconnect_reason(leave.reason);
            // The server lost our session (e.g. it restarted): it asks for a full reconnect.
            if leave.can_reconnect || leave.action == proto::leave_request::Action::Reconnect as i32 {
              return Err(RtcError::Signal(format!(
                "the server cannot resume the session ({reason})"
              )));
            }
            return Err(RtcError::Disconnected { reason });
          }
          Some(Ok(_)) => continue,
          Some(Err(e)) => return Err(e),
          None => return Err(RtcError::Signal("closed before the ReconnectResponse".into())),
        }
      }
    };
    tokio::time::timeout(timeout, wait)
      .await
      .map_err(|_| RtcError::ConnectTimeout {
        timeout_ms: timeout.as_millis() as u64,
        stage: "reconnect response",
      })??;
    self.writer = writer;
    self.reader = reader;
    let sync = proto::SyncState {
      answer: self.last_answer.clone(),
      offer: self.last_offer.clone(),
      subscription: Some(proto::UpdateSubscription {
        track_sids: Vec::new(),
        subscribe: !self.resume.params.auto_subscribe,
        participant_tracks: Vec::new(),
      }),
      publish_tracks: tracks
        .values()
        .map(|t| proto::TrackPublishedResponse {
          cid: t.cid.clone(),
          track: Some(t.info.clone()),
        })
        .collect(),
      ..Default::default()
    };
    self.writer.send(Request::SyncState(sync)).await
  }

  /// A full reconnect: a new signal session and new transports. Once the server has accepted the
  /// join, everything the old session held is reported gone (remote tracks unsubscribed and
  /// unpublished, participants disconnected, our publications unpublished), the participants of
  /// the new session are announced and our tracks are published again: each keeps its source and
  /// encoder, which switches to the new transport when the server confirms it (`republish`).
  async fn try_restart(
    &mut self,
    pending_adds: &mut PendingAdds,
    tracks: &mut HashMap<String, PublishedTrack>,
    negotiation: &mut Negotiation,
  ) -> RtcResult<()> {
    let timeout = self.resume.connect_timeout;
    let (writer, mut reader) = self.open_signal(None).await?;
    let join = tokio::time::timeout(timeout, crate::room::wait_join(&mut reader))
      .await
      .map_err(|_| RtcError::ConnectTimeout {
        timeout_ms: timeout.as_millis() as u64,
        stage: "join response",
      })??;
    let session = SignalSession::from_join(&join)?;
    let (publisher, publisher_events) = Pc::start(Role::Publisher, self.bind_ip).await?;
    let (subscriber, subscriber_events) = Pc::start(Role::Subscriber, self.bind_ip).await?;
    log::info!(
      "rejoined room {:?} as {:?} (participant {})",
      session.room_name,
      session.local.identity,
      session.local.sid
    );

    self.forget_remote_participants();
    let old_publisher = std::mem::replace(&mut self.publisher, publisher);
    let old_subscriber = std::mem::replace(&mut self.subscriber, subscriber);
    tokio::spawn(async move {
      let closes = async { tokio::join!(old_publisher.close(), old_subscriber.close()) };
      let _ = tokio::time::timeout(TRANSPORT_CLOSE_LIMIT, closes).await;
    });
    self.publisher_events = publisher_events;
    self.subscriber_events = subscriber_events;
    self.writer = writer;
    self.reader = reader;
    self.session = session;
    self.remote_candidates = [Some(Vec::new()), Some(Vec::new())];
    self.last_offer = None;
    self.last_answer = None;
    *negotiation = Negotiation {
      in_flight: false,
      again: false,
      mid_to_track_id: HashMap::new(),
    };
    {
      let mut shared = lock(&self.shared);
      shared.room_sid = self.session.room_sid.clone();
      shared.local = self.session.local.clone();
      shared.remotes = self.session.remotes();
      shared.publications.clear();
    }
    for (_, track) in tracks.drain() {
      let _ = self.events.send(RoomEvent::LocalTrackUnpublished {
        publication: track.publication.clone(),
      });
      self.republishing.insert(track.cid.clone(), track);
    }
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
    let requests: Vec<proto::AddTrackRequest> = self
      .republishing
      .values()
      .map(|t| t.request.clone())
      .chain(pending_adds.values().map(|(request, _)| request.clone()))
      .collect();
    for request in requests {
      self.send(Request::AddTrack(request)).await;
    }
    Ok(())
  }

  /// The new server confirmed a track of ours after a full reconnect: give its encoder the new
  /// transceiver and announce the new publication.
  async fn republish(
    &mut self,
    mut published: PublishedTrack,
    info: proto::TrackInfo,
    tracks: &mut HashMap<String, PublishedTrack>,
    negotiation: &mut Negotiation,
  ) {
    let mid = match self.add_sender(&published.cid, published.codec, negotiation).await {
      Ok(mid) => mid,
      Err(e) => {
        log::warn!("cannot republish {}: {e}", published.track.name());
        published.source.detach(&published.slot);
        published.track.set_sid(None);
        return;
      }
    };
    published.control.set_route(EncoderRoute {
      pc: self.publisher.clone(),
      mid: mid.clone(),
    });
    published.mid = mid;
    published.publication = LocalTrackPublication::from_info(&info, published.codec.mime_type());
    published.info = info;
    let sid = published.publication.sid.clone();
    published.track.set_sid(Some(sid.clone()));
    lock(&self.shared)
      .publications
      .insert(sid.clone(), published.publication.clone());
    let _ = self.events.send(RoomEvent::LocalTrackPublished {
      publication: published.publication.clone(),
    });
    tracks.insert(sid, published);
    self.negotiate(negotiation).await;
  }

  /// A sendonly transceiver for our track `cid` on the current publisher; its mid is sent with
  /// each offer so the server can match it to the track.
  async fn add_sender(&mut self, cid: &str, codec: VideoCodec, negotiation: &mut Negotiation) -> RtcResult<String> {
    let mid = self
      .publisher
      .add_video_track(&format!("{cid}-stream"), cid, codec)
      .await?;
    negotiation.mid_to_track_id.insert(mid.clone(), cid.to_string());
    Ok(mid)
  }

  /// The end of a session as seen by the user: every remote track unsubscribed and unpublished,
  /// every remote participant disconnected.
  fn forget_remote_participants(&mut self) {
    for (_, sub) in std::mem::take(&mut self.subscribed) {
      self.end_subscription(sub, TrackEndReason::Rejoined);
    }
    // Choices still waiting from an earlier rejoin stay (their tracks may yet come back), within
    // a bound.
    let mut choices = std::mem::take(&mut self.subscription_choices);
    if self.carried_choices.len() + choices.len() > MAX_CARRIED_CHOICES {
      self.carried_choices.clear();
    }
    for participant in self.session.remotes().into_values() {
      for publication in participant.publications.values() {
        if let Some(subscribed) = choices.remove(&publication.sid) {
          self
            .carried_choices
            .insert(track_key(&participant, publication), subscribed);
        }
        let _ = self.events.send(RoomEvent::TrackUnpublished {
          publication: publication.clone(),
          participant: participant.clone(),
        });
      }
      let _ = self.events.send(RoomEvent::ParticipantDisconnected { participant });
    }
  }

  /// Applies the candidates held until `target`'s remote description was set.
  async fn flush_candidates(&mut self, target: Target) {
    let held = self.remote_candidates[target as usize].take().unwrap_or_default();
    for candidate in held {
      if let Err(e) = self.pc(target).add_remote_candidate(&candidate).await {
        log::debug!("remote candidate rejected: {e}");
      }
    }
  }

  fn pc(&self, target: Target) -> &Pc {
    match target {
      Target::Publisher => &self.publisher,
      Target::Subscriber => &self.subscriber,
    }
  }

  async fn send(&mut self, message: Request) {
    if let Err(e) = self.writer.send(message).await {
      log::warn!("signal send failed: {e}");
    }
  }

  async fn on_signal(
    &mut self,
    message: proto::signal_response::Message,
    pending_adds: &mut PendingAdds,
    tracks: &mut HashMap<String, PublishedTrack>,
    negotiation: &mut Negotiation,
  ) -> Flow {
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
              self.subscription_choices.remove(&publication.sid);
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
          Err(e) => log::warn!("cannot answer the subscriber offer: {e}"),
        },
        Action::PublisherAnswer { sdp, .. } => {
          match self.publisher.apply_answer(&sdp).await {
            Ok(()) => self.flush_candidates(Target::Publisher).await,
            Err(e) => log::warn!("cannot apply the publisher answer: {e}"),
          }
          negotiation.in_flight = false;
          if std::mem::take(&mut negotiation.again) {
            self.negotiate(negotiation).await;
          }
        }
        Action::RemoteCandidate { target, candidate_init } => {
          // Candidates can overtake the description they belong to: hold them until it is set.
          let slot = &mut self.remote_candidates[target as usize];
          match slot {
            Some(held) => held.push(candidate_init),
            None => {
              if let Err(e) = self.pc(target).add_remote_candidate(&candidate_init).await {
                log::debug!("remote candidate rejected: {e}");
              }
            }
          }
        }
        Action::TrackPublished { cid, track } => {
          if let Some((_, reply)) = pending_adds.remove(&cid) {
            let _ = reply.send(Ok(track));
          } else if let Some(published) = self.republishing.remove(&cid) {
            self.republish(published, track, tracks, negotiation).await;
          }
        }
        Action::LocalTrackUnpublished { sid } => {
          if let Some(track) = tracks.remove(&sid) {
            self.stop_track(&track, negotiation).await;
            let _ = self.events.send(RoomEvent::LocalTrackUnpublished {
              publication: track.publication,
            });
          }
        }
        Action::RequestFailed {
          request_id,
          reason,
          message,
        } => {
          log::warn!("request {request_id} failed: {reason} {message}");
        }
        Action::Leave { reason, action } => {
          log::info!("the server ends the session: {reason} ({})", action.as_str_name());
          match action {
            proto::leave_request::Action::Resume => return Flow::Resume { reason },
            proto::leave_request::Action::Reconnect => return Flow::Restart { reason },
            _ => {}
          }
          return Flow::Stop {
            reason,
            send_leave: false,
            reply: None,
          };
        }
        Action::RefreshToken(token) => self.token = token.0,
      }
    }
    Flow::Continue
  }

  async fn on_command(
    &mut self,
    command: Command,
    pending_adds: &mut PendingAdds,
    tracks: &mut HashMap<String, PublishedTrack>,
    negotiation: &mut Negotiation,
  ) -> Flow {
    match command {
      Command::AddTrack { request, reply } => {
        pending_adds.insert(request.cid.clone(), (request.clone(), reply));
        self.send(Request::AddTrack(request)).await;
      }
      Command::CancelAdd { cid } => {
        pending_adds.remove(&cid);
      }
      Command::StartTrack {
        cid,
        request,
        info,
        codec,
        publication,
        track,
        source,
        slot,
        reply,
      } => match self.add_sender(&cid, codec, negotiation).await {
        Ok(mid) => {
          let control = Arc::new(EncoderControl::new(EncoderRoute {
            pc: self.publisher.clone(),
            mid: mid.clone(),
          }));
          let started = StartedTrack {
            mid: mid.clone(),
            control: control.clone(),
            bwe_bps: self.bwe_bps.clone(),
          };
          lock(&self.shared)
            .publications
            .insert(publication.sid.clone(), publication.clone());
          tracks.insert(
            publication.sid.clone(),
            PublishedTrack {
              mid,
              cid,
              request: *request,
              codec,
              info,
              publication,
              track,
              control,
              source,
              slot,
            },
          );
          self.negotiate(negotiation).await;
          let _ = reply.send(Ok(started));
        }
        Err(e) => {
          source.detach(&slot);
          let _ = reply.send(Err(e));
        }
      },
      Command::Unpublish { sid, reply } => match tracks.remove(&sid) {
        Some(track) => {
          self.stop_track(&track, negotiation).await;
          let _ = self.events.send(RoomEvent::LocalTrackUnpublished {
            publication: track.publication.clone(),
          });
          let _ = reply.send(Ok(track.publication));
        }
        None => {
          // A track waiting to be republished after a full rejoin still answers to its old sid.
          let cid = self
            .republishing
            .iter()
            .find(|(_, t)| t.publication.sid == sid)
            .map(|(cid, _)| cid.clone());
          match cid.and_then(|cid| self.republishing.remove(&cid)) {
            Some(track) => {
              track.source.detach(&track.slot);
              let _ = reply.send(Ok(track.publication));
            }
            None => {
              let _ = reply.send(Err(RtcError::TrackNotFound { sid }));
            }
          }
        }
      },
      Command::SimulateSignalLoss => {
        return Flow::Resume {
          reason: "SIMULATED".into(),
        }
      }
      Command::Emit(event) => {
        let _ = self.events.send(event);
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
        self.subscription_choices.insert(track_sid.clone(), subscribed);
        self.send_subscription(participant_sid, track_sid, subscribed).await;
        let _ = reply.send(Ok(()));
      }
      Command::Disconnect { reply } => {
        return Flow::Stop {
          reason: "CLIENT_INITIATED".into(),
          send_leave: true,
          reply: Some(reply),
        };
      }
    }
    Flow::Continue
  }

  async fn stop_track(&mut self, track: &PublishedTrack, negotiation: &mut Negotiation) {
    track.source.detach(&track.slot);
    negotiation.mid_to_track_id.remove(&track.mid);
    lock(&self.shared).publications.remove(&track.publication.sid);
    // Removing the sender and renegotiating is how LiveKit clients unpublish.
    match self.publisher.remove_track(&track.mid).await {
      Ok(()) => self.negotiate(negotiation).await,
      Err(e) => {
        log::warn!(
          "cannot remove the transceiver of {}: {e}; muting instead",
          track.publication.sid
        );
        let mute = proto::MuteTrackRequest {
          sid: track.publication.sid.clone(),
          muted: true,
        };
        self.send(Request::Mute(mute)).await;
      }
    }
  }

  async fn negotiate(&mut self, negotiation: &mut Negotiation) {
    self.negotiate_with(negotiation, false).await
  }

  async fn negotiate_with(&mut self, negotiation: &mut Negotiation, ice_restart: bool) {
    if negotiation.in_flight && !ice_restart {
      negotiation.again = true;
      return;
    }
    match self.publisher.create_offer(ice_restart).await {
      Ok(sdp) => {
        negotiation.in_flight = true;
        let offer = proto::SessionDescription {
          r#type: "offer".into(),
          sdp,
          mid_to_track_id: negotiation.mid_to_track_id.clone(),
          ..Default::default()
        };
        self.last_offer = Some(offer.clone());
        self.send(Request::Offer(offer)).await;
      }
      Err(e) => log::warn!("cannot create the publisher offer: {e}"),
    }
  }

  async fn on_pc_event(
    &mut self,
    target: Target,
    event: PcEvent,
    tracks: &HashMap<String, PublishedTrack>,
    negotiation: &mut Negotiation,
  ) -> Flow {
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
          self.negotiate(negotiation).await;
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
      PcEvent::Disconnected => log::info!("{target:?} peer connection disconnected"),
      PcEvent::Failed => {
        log::warn!("{target:?} peer connection failed");
        if let Some(ready) = self.ready.take() {
          let _ = ready.send(Err(RtcError::Transport(format!(
            "the {target:?} peer connection failed"
          ))));
          return Flow::Stop {
            reason: disconnect_reason(proto::DisconnectReason::MediaFailure as i32),
            send_leave: true,
            reply: None,
          };
        }
        return Flow::MediaFailed;
      }
      PcEvent::KeyframeRequest { mid } => {
        if let Some(track) = tracks.values().find(|t| t.mid == mid) {
          track.control.keyframe.store(true, Ordering::Relaxed);
        }
      }
      PcEvent::BitrateEstimate { bps } => self.bwe_bps.store(bps, Ordering::Relaxed),
      PcEvent::TrackAdded {
        mid,
        stream_id,
        track_id,
        codec,
      } => self.subscribe(mid, &stream_id, &track_id, codec),
      PcEvent::TrackRemoved { mid } => {
        if let Some(sub) = self.subscribed.remove(&mid) {
          self.end_subscription(sub, TrackEndReason::Unsubscribed);
        }
      }
      PcEvent::VideoFrame {
        mid,
        data,
        codec,
        keyframe,
        contiguous,
        rtp_time,
        capture_time_us,
        rotation,
      } => {
        if let Some(sub) = self.subscribed.get_mut(&mid) {
          sub.input.push(EncodedFrame {
            data,
            codec,
            keyframe,
            contiguous,
            rtp_time,
            capture_time_us,
            arrival_us: now_us(),
            rotation,
          });
        }
      }
    }
    Flow::Continue
  }

  /// A new remote track on the subscriber connection: its stream id is `PA_xxx|TR_xxx`.
  fn subscribe(&mut self, mid: String, stream_id: &str, track_id: &str, codec: Option<VideoCodec>) {
    let (participant_sid, track_sid) = match stream_id.split_once('|') {
      Some((p, t)) => (p, t),
      None => (stream_id, track_id),
    };
    let track_sid = if track_sid.starts_with("TR_") {
      track_sid
    } else {
      track_id
    };
    let participant = self
      .session
      .remote_by_sid(participant_sid)
      .or_else(|| self.session.publisher_of(track_sid))
      .cloned();
    let Some(participant) = participant else {
      log::warn!("track {track_sid} from unknown participant {participant_sid}");
      return;
    };
    let Some(publication) = participant.track_publication(track_sid).cloned() else {
      log::warn!("unknown track {track_sid} of {}", participant.identity);
      return;
    };
    if publication.kind != TrackKind::Video {
      return;
    }
    // The SFU's offer lists every codec, so the SDP cannot tell which one the publisher uses;
    // the publication's mime type can. The decoder follows the frames' codec either way.
    let mime = publication.mime_type.to_ascii_lowercase();
    let codec = if mime.contains("h264") {
      VideoCodec::H264
    } else if mime.contains("vp8") {
      VideoCodec::Vp8
    } else {
      codec.unwrap_or(VideoCodec::Vp8)
    };
    let track = RemoteVideoTrack::new(
      publication.sid.clone(),
      publication.name.clone(),
      participant.identity.clone(),
    );
    let input = match decoder_task::spawn(codec, mid.clone(), track.clone(), self.subscriber.clone()) {
      Ok(input) => input,
      Err(e) => {
        log::warn!("cannot start a decoder for {track_sid}: {e}");
        return;
      }
    };
    let _ = self.events.send(RoomEvent::TrackSubscribed {
      track: track.clone(),
      publication: publication.clone(),
      participant: participant.clone(),
    });
    self.subscribed.insert(
      mid,
      Subscribed {
        track,
        input,
        publication,
        participant,
      },
    );
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

  /// A track published again after a full reconnect gets the subscription the user chose for
  /// its predecessor (when that differs from `auto_subscribe`).
  async fn apply_carried_choice(&mut self, participant: &RemoteParticipant, publication: &RemoteTrackPublication) {
    if self.carried_choices.is_empty() {
      return;
    }
    let Some(subscribed) = self.carried_choices.remove(&track_key(participant, publication)) else {
      return;
    };
    self.subscription_choices.insert(publication.sid.clone(), subscribed);
    if subscribed != self.resume.params.auto_subscribe {
      self
        .send_subscription(participant.sid.clone(), publication.sid.clone(), subscribed)
        .await;
    }
  }

  fn unsubscribe_sid(&mut self, track_sid: &str, reason: TrackEndReason) {
    let mids: Vec<String> = self
      .subscribed
      .iter()
      .filter(|(_, s)| s.publication.sid == track_sid)
      .map(|(m, _)| m.clone())
      .collect();
    for mid in mids {
      if let Some(sub) = self.subscribed.remove(&mid) {
        self.end_subscription(sub, reason);
      }
    }
  }

  fn end_subscription(&mut self, sub: Subscribed, reason: TrackEndReason) {
    sub.track.set_end_reason(reason);
    // Dropping the input ends the decoder thread, which ends the track's streams.
    drop(sub.input);
    let _ = self.events.send(RoomEvent::TrackUnsubscribed {
      track: sub.track,
      publication: sub.publication,
      participant: sub.participant,
    });
  }
}

/// Notes when a target's ICE path goes down after the room is up, and when it comes back.
fn track_media(down_since: &mut [Option<Instant>; 2], target: Target, event: &PcEvent, room_up: bool) {
  let slot = &mut down_since[target as usize];
  match event {
    PcEvent::Disconnected if room_up => {
      slot.get_or_insert_with(Instant::now);
    }
    PcEvent::Connected | PcEvent::Failed => *slot = None,
    _ => {}
  }
}
