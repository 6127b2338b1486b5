//! The sans-IO heart of a transport: one str0m `Rtc`, the LiveKit-shaped state around it, data
//! channels, closing and the loop draining its output. `task.rs` feeds it time and datagrams.

mod bwe;
mod data;
mod ice;
mod media;
mod negotiation;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::channel::ChannelId;
use str0m::media::Pt;
use str0m::net::Protocol;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::recv_estimate::ReceiveEstimator;
use crate::turn::{TurnClient, TurnServer};
use crate::{Mid, TransportConfig, TransportError, TransportEvent, TransportRole, VideoCodec};

use bwe::MIN_BITRATE;
use ice::is_media;
use negotiation::{Pending, RemoteSource};

/// LiveKit's data channel labels.
pub(crate) const RELIABLE_LABEL: &str = "_reliable";
pub(crate) const LOSSY_LABEL: &str = "_lossy";

/// ICE disconnected this long without recovery counts as failed.
const FAIL_AFTER: Duration = Duration::from_secs(15);
/// A connected transport that receives nothing for this long is reported disconnected. The
/// remote's consent checks and our checks' answers arrive every 1.5-2 s even without media, and
/// str0m alone keeps a pair alive for 15 s after the remote's last check, so a dead path would
/// otherwise go unnoticed for 15-20 s (browsers call a path not receiving after 2.5 s).
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a close waits for str0m to flush BYE/close_notify.
const CLOSE_DRAIN: Duration = Duration::from_secs(1);
/// A channel's SCTP send buffer below this many bytes takes the next waiting message.
const DATA_LOW_THRESHOLD: usize = 64 * 1024;
/// Upper bound on how long the loop sleeps, so a far-future str0m timeout is still rechecked.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Publisher payload types: VP8 + RTX, VP9 profile 0 + RTX, H.264 42e01f mode 1 + RTX and AV1
/// + RTX (Chrome's numbers). The subscriber offers VP9 profile 0 and AV1 under the same numbers.
const PT_VP8: u8 = 96;
const PT_VP8_RTX: u8 = 97;
const PT_VP9: u8 = 98;
const PT_VP9_RTX: u8 = 99;
const PT_H264: u8 = 102;
const PT_H264_RTX: u8 = 103;
/// AV1 main profile, Chrome's numbers.
const PT_AV1: u8 = 45;
const PT_AV1_RTX: u8 = 46;

/// AV1 main profile, under Chrome's payload types.
fn add_av1(codecs: &mut str0m::format::CodecConfig) {
  codecs.add_config(
    PT_AV1.into(),
    Some(PT_AV1_RTX.into()),
    str0m::format::Codec::Av1,
    str0m::media::Frequency::NINETY_KHZ,
    None,
    Default::default(),
  );
}

/// VP9 profile 0 (8-bit 4:2:0), the one profile lkrtc decodes and encodes.
fn add_vp9_profile_0(codecs: &mut str0m::format::CodecConfig) {
  codecs.add_config(
    PT_VP9.into(),
    Some(PT_VP9_RTX.into()),
    str0m::format::Codec::Vp9,
    str0m::media::Frequency::NINETY_KHZ,
    None,
    str0m::format::FormatParams {
      profile_id: Some(0),
      ..Default::default()
    },
  );
}

/// What the I/O loop must do next.
#[derive(Debug)]
pub(crate) enum Poll {
  /// Send this packet to the address, over UDP or over ICE-TCP.
  Transmit(Protocol, SocketAddr, Vec<u8>),
  /// Send this TURN message on the TCP (or TLS) connection to the TURN server at the address.
  TurnStream(SocketAddr, Vec<u8>),
  /// Nothing to do before this instant (or before input arrives).
  Timeout(Instant),
  /// The transport is finished; end the task.
  Dead,
}

struct LocalTrack {
  /// Handle given to the caller; stable across renegotiations.
  local: Mid,
  /// mid of the m-line in the latest offer / session.
  rtc: Option<Mid>,
  stream_id: String,
  track_id: String,
  codec: VideoCodec,
  /// Simulcast layers (RTP stream ids), lowest first; empty: a single stream.
  rids: Vec<String>,
  negotiated: bool,
  pt: Option<Pt>,
  /// Capture clock minus Unix time, fixed at the first frame (see [`capture_clock_offset`]).
  clock_offset_us: Option<i64>,
  warned_no_codec: bool,
}

struct RemoteTrack {
  stream_id: String,
  track_id: String,
  last_pli: Option<Instant>,
  /// The last RTP sequence number of the last frame received (for the loss count).
  last_seq: Option<u64>,
  /// Packets lost for good (gaps str0m gave up on).
  lost: u64,
  /// str0m dropped a frame it could not depacketize: the next one does not follow on.
  frame_dropped: bool,
}

/// How often str0m reports what it counted (the receive statistics of remote tracks; for a
/// publisher, its raw bandwidth estimate and the loss its feedback shows, which the encoders'
/// targets follow).
const STATS_INTERVAL: Duration = Duration::from_millis(200);

pub(crate) struct Core {
  rtc: Rtc,
  /// Send-side bandwidth estimation (and str0m's pacer) is on: publishers only.
  bwe: bool,
  initial_bitrate_bps: u64,
  /// The estimator was restarted for the first track (see `set_desired_bitrate`).
  bwe_restarted: bool,
  /// str0m's estimate events (a 3 s average) and its raw estimate (with its statistics), from
  /// which the encoders' estimate is derived (`estimate`), and the ceiling heavy loss puts on it
  /// (see [`crate::loss_ceiling`]); the lower of the two is reported.
  smoothed_bps: Option<u64>,
  raw_bps: Option<u64>,
  /// When the statistics last showed congestion (heavy loss), and when they came.
  congested_at: Option<Instant>,
  stats_at: Option<Instant>,
  /// When the estimator last started over: str0m's average still holds the old path's
  /// estimates for its 3 s window, and is not used until that has passed.
  restarted_at: Option<Instant>,
  /// The estimate last reported to the engine.
  reported_bps: Option<u64>,
  loss_ceiling: crate::loss_ceiling::LossCeiling,
  /// When the pacer's queues were last sampled, and the layers whose queue was not empty then.
  queue_sampled_at: Option<Instant>,
  queues_waiting: Vec<(Mid, Option<String>)>,
  role: TransportRole,
  events: VecDeque<TransportEvent>,
  local_candidates: Vec<Candidate>,
  local_is_v4: bool,
  candidates_announced: bool,
  /// The mid local candidates are announced for (the first m-line of the first local SDP).
  first_mid: Option<String>,
  /// The transport's UDP socket address: the base of the relayed candidates.
  local_addr: SocketAddr,
  /// One allocation per TURN server; their relayed addresses are local candidates.
  turn: Vec<TurnClient>,
  /// Only relayed candidates (no host, no TCP): the transport fails when every allocation did.
  relay_only: bool,

  tracks: Vec<LocalTrack>,
  next_local: u32,
  removals: Vec<Mid>,
  channels_negotiated: bool,
  pending: Option<Pending>,

  channels: HashMap<ChannelId, bool>,
  reliable: Option<ChannelId>,
  lossy: Option<ChannelId>,
  /// Messages SCTP could not take yet: reliable, lossy.
  data_waiting: [data::DataQueue; 2],

  remote: HashMap<Mid, RemoteTrack>,
  /// Subscriber: the receive-side estimate reported to the server as REMB.
  recv_estimate: Option<ReceiveEstimator>,
  /// Subscriber: the abs-send-time header extension's id in the accepted offer.
  abs_send_time_id: Option<u8>,
  /// Subscriber: per media m-line, the msid and SSRCs the remote last offered it with.
  remote_sources: HashMap<Mid, RemoteSource>,

  dtls_up: bool,
  /// str0m's ICE state is connected or completed.
  ice_up: bool,
  connected: bool,
  /// When the last datagram arrived on the path in use: a connected transport that stops
  /// receiving is disconnected.
  last_received: Option<Instant>,
  /// The path DTLS and media last went out or came in on (the nominated pair: protocol, remote
  /// and local end), once known. STUN counts as a sign of life only from it: the checks of a
  /// standby pair (ICE-TCP beside a dead UDP pair) keep arriving while no media can. The local
  /// end tells a relayed pair from the direct one to the same server address.
  media_path: Option<(Protocol, SocketAddr, SocketAddr)>,
  disconnected_since: Option<Instant>,
  closing_since: Option<Instant>,
  close_started: bool,
  dead: bool,
}

impl Core {
  pub fn new(config: &TransportConfig, local_addr: SocketAddr, turn: &[TurnServer], now: Instant) -> Self {
    // pion/dtls (livekit-server) speaks DTLS 1.2 only; pin it rather than rely on the default.
    let mut rtc_config = RtcConfig::new()
      .set_dtls_version(str0m::config::DtlsVersion::Dtls12)
      .clear_codecs();
    // Consent checks every 1.5 s (str0m: 3 s), so that a live path always carries something
    // within RECEIVE_TIMEOUT; a pair fails after 5 unanswered retransmits (libwebrtc calls a
    // connection unwritable after 5 unanswered checks).
    rtc_config.set_max_stun_rto(Duration::from_millis(1500));
    rtc_config.set_max_stun_retransmits(5);
    let mut rtc_config = rtc_config.set_stats_interval(Some(STATS_INTERVAL));
    match config.role {
      TransportRole::Publisher => {
        // Only what lkrtc can encode, so the server cannot pick anything else.
        let codecs = rtc_config.codec_config();
        codecs.add_config(
          PT_VP8.into(),
          Some(PT_VP8_RTX.into()),
          str0m::format::Codec::Vp8,
          str0m::media::Frequency::NINETY_KHZ,
          None,
          Default::default(),
        );
        codecs.add_h264(PT_H264.into(), Some(PT_H264_RTX.into()), true, 0x42e01f);
        add_vp9_profile_0(codecs);
        add_av1(codecs);
        if let Some(bps) = config.initial_bitrate_bps {
          rtc_config = rtc_config.enable_bwe(Some(Bitrate::bps(bps)));
        }
      }
      TransportRole::Subscriber => {
        // Every H.264 profile str0m knows: the remote publisher (browser) chooses, not us.
        // Opus is accepted (and its packets dropped) so audio m-lines are answered like a
        // browser would; a rejected m-line cannot be reused by the SFU for a later track.
        // VP9: profile 0 only (str0m's default adds profile 2, 10-bit, which lkrtc cannot show).
        rtc_config = rtc_config.enable_vp8(true).enable_h264(true).enable_opus(true, false);
        add_vp9_profile_0(rtc_config.codec_config());
        add_av1(rtc_config.codec_config());
      }
    }
    // The default extension map already has abs-send-time, transport-cc, mid, rid and
    // video-orientation (CVO); it is what gets offered/accepted.
    let mut rtc = rtc_config.build(now);
    let bwe = config.role == TransportRole::Publisher && config.initial_bitrate_bps.is_some();
    if bwe {
      let desired = Bitrate::bps(config.desired_bitrate_bps);
      rtc.bwe().set_bitrate(MIN_BITRATE, desired);
    }

    let mut local_candidates = Vec::new();
    if !config.relay_only {
      match Candidate::host(local_addr, "udp") {
        Ok(c) => {
          if let Some(c) = rtc.add_local_candidate(c) {
            local_candidates.push(c.clone());
          }
        }
        Err(e) => tracing::warn!(%local_addr, "no host candidate: {e}"),
      }
      // ICE-TCP, for when UDP cannot pass; its pairs rank below every UDP pair.
      match crate::candidate::tcp_active_candidate(local_addr.ip()) {
        Ok(c) => {
          if let Some(c) = rtc.add_local_candidate(c) {
            local_candidates.push(c.clone());
          }
        }
        Err(e) => tracing::warn!(%local_addr, "no TCP candidate: {e}"),
      }
    }
    // Relayed candidates follow when their allocations succeed.
    let turn = turn
      .iter()
      .map(|s| TurnClient::new(s.addr, s.transport, &s.username, &s.password, now))
      .collect();

    let mut core = Core {
      rtc,
      bwe,
      initial_bitrate_bps: config.initial_bitrate_bps.unwrap_or(0),
      bwe_restarted: false,
      smoothed_bps: None,
      raw_bps: None,
      congested_at: None,
      stats_at: None,
      restarted_at: None,
      reported_bps: None,
      loss_ceiling: Default::default(),
      queue_sampled_at: None,
      queues_waiting: Vec::new(),
      role: config.role,
      events: VecDeque::new(),
      local_candidates,
      local_is_v4: local_addr.is_ipv4(),
      candidates_announced: false,
      first_mid: None,
      local_addr,
      turn,
      relay_only: config.relay_only,
      tracks: Vec::new(),
      next_local: 0,
      removals: Vec::new(),
      channels_negotiated: false,
      pending: None,
      channels: HashMap::new(),
      reliable: None,
      lossy: None,
      data_waiting: Default::default(),
      remote: HashMap::new(),
      recv_estimate: (config.role == TransportRole::Subscriber).then(ReceiveEstimator::new),
      abs_send_time_id: None,
      remote_sources: HashMap::new(),
      dtls_up: false,
      ice_up: false,
      last_received: None,
      media_path: None,
      connected: false,
      disconnected_since: None,
      closing_since: None,
      close_started: false,
      dead: false,
    };
    if config.role == TransportRole::Publisher {
      // The data channels must be negotiated before anything can be sent.
      core.events.push_back(TransportEvent::NegotiationNeeded);
    }
    core
  }

  pub fn take_events(&mut self) -> impl Iterator<Item = TransportEvent> + '_ {
    self.events.drain(..)
  }

  fn require(&self, role: TransportRole, op: &'static str) -> Result<(), TransportError> {
    if self.role == role {
      Ok(())
    } else {
      Err(TransportError::WrongRole {
        op,
        role: self.role.name(),
      })
    }
  }

  fn require_open(&self) -> Result<(), TransportError> {
    if self.closing_since.is_some() || self.dead {
      Err(TransportError::Closed)
    } else {
      Ok(())
    }
  }

  /// Sends a message on `_reliable` (true) or `_lossy` (false); messages SCTP cannot take yet
  /// (channel not open, send buffer full) wait in order, up to a bound.
  pub fn send_data(&mut self, reliable: bool, data: Vec<u8>) -> Result<(), TransportError> {
    self.require_open()?;
    let id = if reliable { self.reliable } else { self.lossy };
    let rtc = &mut self.rtc;
    self.data_waiting[usize::from(!reliable)].send(data, |d| write_channel(rtc, id, d))
  }

  fn flush_data(&mut self) {
    for (i, id) in [self.reliable, self.lossy].into_iter().enumerate() {
      if self.data_waiting[i].len() > 0 {
        let rtc = &mut self.rtc;
        self.data_waiting[i].flush(|d| write_channel(rtc, id, d));
      }
    }
  }

  pub fn close(&mut self, now: Instant) {
    if self.closing_since.is_some() || self.dead {
      return;
    }
    self.closing_since = Some(now);
    for c in &mut self.turn {
      c.close();
    }
    if !self.dtls_up {
      // Nothing was ever established, so there is nothing to say goodbye on.
      self.rtc.disconnect();
      self.dead = true;
      return;
    }
    self.try_close();
  }

  /// str0m refuses to close while the SCTP handshake is in flight; retried on every poll until
  /// the drain deadline, after which the `Rtc` is simply dropped.
  fn try_close(&mut self) {
    if self.close_started {
      return;
    }
    match self.rtc.close() {
      Ok(()) => self.close_started = true,
      Err(e) => tracing::debug!("close deferred: {e}"),
    }
  }

  // ---- driving ----

  pub fn handle_timeout(&mut self, now: Instant) {
    self.report_receive_estimate(now);
    self.sample_send_queues(now);
    for c in &mut self.turn {
      c.handle_timeout(now);
    }
    if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
      tracing::debug!("handle_timeout: {e}");
    }
  }

  /// Drains str0m until it wants to wait; events go to `take_events`.
  pub fn poll(&mut self, now: Instant) -> Poll {
    loop {
      // TURN requests and relayed packets (and, after a close, the deallocation) first.
      if let Some(t) = self.poll_turn_transmit() {
        return t;
      }
      if self.dead {
        return Poll::Dead;
      }
      self.poll_turn_events();
      if let Some(since) = self.closing_since {
        self.try_close();
        if !self.rtc.is_alive() || now >= since + CLOSE_DRAIN {
          self.dead = true;
          continue;
        }
      }
      if let Some(since) = self.disconnected_since {
        if now >= since + FAIL_AFTER {
          self.fail("ICE disconnected for too long");
          continue;
        }
      }
      if self.connected && self.last_received.is_some_and(|t| now >= t + RECEIVE_TIMEOUT) {
        tracing::info!(role = self.role.name(), "nothing received for {RECEIVE_TIMEOUT:?}");
        self.set_connected(false, now);
        continue;
      }
      if self.closing_since.is_none() && !self.rtc.is_alive() {
        self.fail("peer connection ended");
        continue;
      }
      match self.rtc.poll_output() {
        Ok(Output::Transmit(t)) => {
          let data: Vec<u8> = t.contents.into();
          if is_media(&data) {
            self.media_path = Some((t.proto, t.destination, t.source));
          }
          if let Some(c) = self.turn.iter_mut().find(|c| c.carries(t.source)) {
            // From a relayed candidate: wrapped for its TURN server, sent on the next turn (or
            // dropped, if the allocation is gone: never sent from the host socket instead).
            c.send_to(t.destination, &data, now);
            continue;
          }
          return Poll::Transmit(t.proto, t.destination, data);
        }
        Ok(Output::Event(e)) => self.on_event(e, now),
        Ok(Output::Timeout(at)) => {
          let mut at = at.min(now + MAX_SLEEP);
          if let Some(since) = self.disconnected_since {
            at = at.min(since + FAIL_AFTER);
          }
          if let (true, Some(t)) = (self.connected, self.last_received) {
            at = at.min(t + RECEIVE_TIMEOUT);
          }
          if let Some(since) = self.closing_since {
            at = at.min(since + CLOSE_DRAIN);
          }
          if let Some(next) = self.recv_estimate.as_ref().and_then(|e| e.next_poll(now)) {
            at = at.min(next);
          }
          if let Some(next) = self.turn.iter().filter_map(TurnClient::poll_timeout).min() {
            at = at.min(next);
          }
          return Poll::Timeout(at);
        }
        // One frame str0m could not depacketize (a malformed or empty packet): it has dropped
        // that frame and goes on; the receiver waits for a keyframe, as after loss.
        Err(str0m::RtcError::Packet(mid, pt, e)) => {
          tracing::debug!(%mid, %pt, "dropped a frame that could not be depacketized: {e}");
          if let Some(r) = self.remote.get_mut(&mid) {
            r.frame_dropped = true;
          }
        }
        Err(e) => {
          if self.closing_since.is_some() {
            self.dead = true;
          } else {
            self.fail(&e.to_string());
          }
        }
      }
    }
  }

  fn fail(&mut self, why: &str) {
    tracing::warn!(role = self.role.name(), "transport failed: {why}");
    self.events.push_back(TransportEvent::Failed { reason: why.to_owned() });
    self.rtc.disconnect();
    self.dead = true;
  }

  fn on_event(&mut self, e: Event, now: Instant) {
    match e {
      Event::Connected => {
        self.dtls_up = true;
        self.set_connected(true, now);
      }
      Event::IceConnectionStateChange(state) => {
        self.ice_up = matches!(state, IceConnectionState::Connected | IceConnectionState::Completed);
        match state {
          IceConnectionState::Disconnected => self.set_connected(false, now),
          IceConnectionState::Connected | IceConnectionState::Completed if self.dtls_up => {
            // A check just succeeded on the nominated pair (after an ICE restart, a new one):
            // the silence before it says nothing about this path, and the path media took
            // before may be gone: until media shows the new one, any pair's STUN counts (a
            // connection without media, e.g. the publisher's with idle data channels, would
            // otherwise wait forever for STUN from a dead path).
            self.last_received = Some(now);
            self.media_path = None;
            self.set_connected(true, now)
          }
          _ => {}
        }
      }
      Event::MediaData(d) => self.on_media_data(d, now),
      Event::ChannelOpen(id, label) => {
        let reliable = label != LOSSY_LABEL;
        self.channels.insert(id, reliable);
        if label == RELIABLE_LABEL && self.reliable.is_none() {
          self.reliable = Some(id);
        } else if label == LOSSY_LABEL && self.lossy.is_none() {
          self.lossy = Some(id);
        }
        if let Some(mut ch) = self.rtc.channel(id) {
          ch.set_buffered_amount_low_threshold(DATA_LOW_THRESHOLD);
        }
        self.flush_data();
      }
      Event::ChannelData(d) => {
        let reliable = self.channels.get(&d.id).copied().unwrap_or(true);
        self
          .events
          .push_back(TransportEvent::DataReceived { reliable, data: d.data });
      }
      Event::ChannelBufferedAmountLow(_) => self.flush_data(),
      Event::ChannelClose(id) => {
        self.channels.remove(&id);
        if self.reliable == Some(id) {
          self.reliable = None;
        }
        if self.lossy == Some(id) {
          self.lossy = None;
        }
      }
      Event::KeyframeRequest(r) => {
        if let Some(t) = self.tracks.iter().find(|t| t.rtc == Some(r.mid)) {
          self.events.push_back(TransportEvent::KeyframeRequest {
            mid: t.local,
            rid: r.rid.map(|rid| rid.to_string()),
          });
        }
      }
      Event::EgressBitrateEstimate(kind) => self.on_bitrate_estimate(kind),
      Event::PeerStats(s) => self.on_peer_stats(&s, now),
      Event::MediaEgressStats(s) => {
        if let Some(t) = self.tracks.iter().find(|t| t.rtc == Some(s.mid)) {
          self.events.push_back(TransportEvent::EgressStats {
            mid: t.local,
            rid: s.rid.map(|rid| rid.to_string()),
            bytes: s.bytes,
            packets: s.packets,
            nacks: s.nacks,
            plis: s.plis,
            firs: s.firs,
            rtt: s.rtt,
          });
        }
      }
      Event::MediaIngressStats(s) => {
        if let Some(r) = self.remote.get(&s.mid) {
          self.events.push_back(TransportEvent::IngressStats {
            mid: s.mid,
            bytes: s.bytes,
            packets: s.packets,
            lost: r.lost,
            nacks: s.nacks,
            plis: s.plis,
            firs: s.firs,
            jitter_s: f64::from(s.jitter) / 90_000.0,
          });
        }
      }
      Event::Closed if self.closing_since.is_none() => self.fail("remote closed the connection"),
      _ => {}
    }
  }
}

/// Writes one message on channel `id`; false when the channel is not open or SCTP cannot take
/// the message now (it then waits).
fn write_channel(rtc: &mut Rtc, id: Option<ChannelId>, data: &[u8]) -> bool {
  let Some(mut ch) = id.and_then(|id| rtc.channel(id)) else {
    return false;
  };
  match ch.write(true, data) {
    Ok(taken) => taken,
    Err(e) => {
      // A message SCTP will never take (e.g. above the peer's max-message-size) must not
      // block the ones behind it: it is dropped, loudly.
      tracing::warn!("data message of {} bytes dropped: {e}", data.len());
      true
    }
  }
}
