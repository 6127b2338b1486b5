//! The sans-IO heart of a transport: one str0m `Rtc` plus the LiveKit-shaped bookkeeping
//! (local track handles, pending offer, data channels by label, remote tracks by mid). It never
//! touches a socket or a clock; `task.rs` feeds it time and datagrams.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::PayloadParams;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::VideoOrientation;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::candidate::candidate_init_json;
use crate::sdp::{self, SdpDirection};
use crate::{Mid, OutgoingVideoFrame, TransportConfig, TransportError, TransportEvent, TransportRole, VideoCodec};

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
/// At most one loss-triggered PLI per track in this window.
const PLI_INTERVAL: Duration = Duration::from_millis(300);
/// Data written before the channels open is kept up to this many messages.
const MAX_QUEUED_DATA: usize = 1024;
/// The lowest rate the send-side estimator keeps up (media plus padding).
const MIN_BITRATE: Bitrate = Bitrate::kbps(30);
/// Upper bound on how long the loop sleeps, so a far-future str0m timeout is still rechecked.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Publisher payload types: VP8 + RTX and H.264 42e01f mode 1 + RTX (Chrome's numbers).
const PT_VP8: u8 = 96;
const PT_VP8_RTX: u8 = 97;
const PT_H264: u8 = 102;
const PT_H264_RTX: u8 = 103;

/// Whether a packet is DTLS, RTP or RTCP, which go on the nominated pair only, rather than STUN,
/// which goes on every pair (RFC 7983: a first byte of 0-3 is STUN).
fn is_media(packet: &[u8]) -> bool {
  packet.first().is_some_and(|b| *b > 3)
}

/// What the I/O loop must do next.
#[derive(Debug)]
pub(crate) enum Poll {
  /// Send this packet to the address, over UDP or over ICE-TCP.
  Transmit(Protocol, SocketAddr, Vec<u8>),
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
}

/// What a remote m-line carries: a new value on a known mid is another RTP stream.
#[derive(PartialEq, Eq)]
struct RemoteSource {
  msid: Option<(String, String)>,
  ssrcs: Vec<u32>,
}

struct Pending {
  offer: SdpPendingOffer,
  added: Vec<Mid>,
  channels: bool,
  /// m-line mids of the offer, in order: a matching answer has the same.
  mids: Vec<String>,
  /// Stopped m-lines this offer carries.
  removed: Vec<Mid>,
}

pub(crate) struct Core {
  rtc: Rtc,
  /// Send-side bandwidth estimation (and str0m's pacer) is on.
  bwe: bool,
  initial_bitrate_bps: u64,
  /// The estimator was restarted for the first track (see `set_desired_bitrate`).
  bwe_restarted: bool,
  role: TransportRole,
  events: VecDeque<TransportEvent>,
  local_candidates: Vec<Candidate>,
  local_is_v4: bool,
  candidates_announced: bool,

  tracks: Vec<LocalTrack>,
  next_local: u32,
  removals: Vec<Mid>,
  channels_negotiated: bool,
  pending: Option<Pending>,

  channels: HashMap<ChannelId, bool>,
  reliable: Option<ChannelId>,
  lossy: Option<ChannelId>,
  queued_data: VecDeque<(bool, Vec<u8>)>,

  remote: HashMap<Mid, RemoteTrack>,
  /// Subscriber: per media m-line, the msid and SSRCs the remote last offered it with.
  remote_sources: HashMap<Mid, RemoteSource>,

  dtls_up: bool,
  /// str0m's ICE state is connected or completed.
  ice_up: bool,
  connected: bool,
  /// When the last datagram arrived on the path in use: a connected transport that stops
  /// receiving is disconnected.
  last_received: Option<Instant>,
  /// The path DTLS and media last went out or came in on (the nominated pair's remote end), once
  /// known. STUN counts as a sign of life only from it: the checks of a standby pair (ICE-TCP
  /// beside a dead UDP pair) keep arriving while no media can.
  media_path: Option<(Protocol, SocketAddr)>,
  disconnected_since: Option<Instant>,
  closing_since: Option<Instant>,
  close_started: bool,
  dead: bool,
}

impl Core {
  pub fn new(config: &TransportConfig, local_addr: SocketAddr, now: Instant) -> Self {
    // pion/dtls (livekit-server) speaks DTLS 1.2 only; pin it rather than rely on the default.
    let mut rtc_config = RtcConfig::new()
      .set_dtls_version(str0m::config::DtlsVersion::Dtls12)
      .clear_codecs();
    // Consent checks every 1.5 s (str0m: 3 s), so that a live path always carries something
    // within RECEIVE_TIMEOUT; a pair fails after 5 unanswered retransmits (libwebrtc calls a
    // connection unwritable after 5 unanswered checks).
    rtc_config.set_max_stun_rto(Duration::from_millis(1500));
    rtc_config.set_max_stun_retransmits(5);
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
        if let Some(bps) = config.initial_bitrate_bps {
          rtc_config = rtc_config.enable_bwe(Some(Bitrate::bps(bps)));
        }
      }
      TransportRole::Subscriber => {
        // Every H.264 profile str0m knows: the remote publisher (browser) chooses, not us.
        // Opus is accepted (and its packets dropped) so audio m-lines are answered like a
        // browser would; a rejected m-line cannot be reused by the SFU for a later track.
        rtc_config = rtc_config.enable_vp8(true).enable_h264(true).enable_opus(true, false);
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

    let mut core = Core {
      rtc,
      bwe,
      initial_bitrate_bps: config.initial_bitrate_bps.unwrap_or(0),
      bwe_restarted: false,
      role: config.role,
      events: VecDeque::new(),
      local_candidates,
      local_is_v4: local_addr.is_ipv4(),
      candidates_announced: false,
      tracks: Vec::new(),
      next_local: 0,
      removals: Vec::new(),
      channels_negotiated: false,
      pending: None,
      channels: HashMap::new(),
      reliable: None,
      lossy: None,
      queued_data: VecDeque::new(),
      remote: HashMap::new(),
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

  // ---- publisher ----

  pub fn add_video_track(&mut self, stream_id: &str, track_id: &str, codec: VideoCodec) -> Result<Mid, TransportError> {
    self.require_open()?;
    self.require(TransportRole::Publisher, "add_video_track")?;
    let local = Mid::from(format!("lk{}", self.next_local).as_str());
    self.next_local += 1;
    self.tracks.push(LocalTrack {
      local,
      rtc: None,
      stream_id: stream_id.to_owned(),
      track_id: track_id.to_owned(),
      codec,
      negotiated: false,
      pt: None,
      clock_offset_us: None,
      warned_no_codec: false,
    });
    self.negotiation_needed();
    Ok(local)
  }

  /// While an offer is in flight the event is held back; `apply_answer` fires it then.
  fn negotiation_needed(&mut self) {
    if self.pending.is_none() {
      self.events.push_back(TransportEvent::NegotiationNeeded);
    }
  }

  pub fn remove_track(&mut self, local: Mid) -> Result<(), TransportError> {
    self.require_open()?;
    self.require(TransportRole::Publisher, "remove_track")?;
    let idx = self
      .tracks
      .iter()
      .position(|t| t.local == local)
      .ok_or_else(|| TransportError::UnknownTrack(local.to_string()))?;
    let track = self.tracks.remove(idx);
    if let Some(rtc_mid) = track.rtc {
      // Also when only offered: the answer will create the m-line, the next offer stops it.
      self.removals.push(rtc_mid);
      self.negotiation_needed();
    }
    Ok(())
  }

  pub fn create_offer(&mut self, ice_restart: bool) -> Result<String, TransportError> {
    self.require_open()?;
    self.require(TransportRole::Publisher, "create_offer")?;
    // One offer at a time: the remote may already hold it, and str0m gives re-offered m-lines
    // new mids. Only an ICE restart (resume: the old offer is presumed lost) rolls it back.
    if self.pending.is_some() && !ice_restart {
      return Err(TransportError::Negotiation(
        "an offer is waiting for its answer; NegotiationNeeded fires again after apply_answer".into(),
      ));
    }
    if let Some(p) = self.pending.take() {
      for t in self.tracks.iter_mut() {
        if t.rtc.is_some_and(|m| p.added.contains(&m)) {
          t.rtc = None;
        }
      }
    }

    let mut api = self.rtc.sdp_api();
    let mut added = Vec::new();
    for t in self.tracks.iter_mut().filter(|t| !t.negotiated) {
      let mid = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some(t.stream_id.clone()),
        Some(t.track_id.clone()),
        None,
      );
      t.rtc = Some(mid);
      added.push(mid);
    }
    let pending_removals = self.removals.clone();
    for mid in &pending_removals {
      api.stop_media(*mid);
    }
    let channels = !self.channels_negotiated;
    if channels {
      api.add_channel_with_config(ChannelConfig {
        label: RELIABLE_LABEL.into(),
        ordered: true,
        reliability: Reliability::Reliable,
        ..Default::default()
      });
      api.add_channel_with_config(ChannelConfig {
        label: LOSSY_LABEL.into(),
        ordered: false,
        reliability: Reliability::MaxRetransmits { retransmits: 0 },
        ..Default::default()
      });
    }
    if ice_restart {
      api.ice_restart(true);
    }
    let Some((offer, pending)) = api.apply() else {
      return Err(TransportError::NothingToNegotiate);
    };

    let mut sdp = offer.to_sdp_string();
    for t in self.tracks.iter().filter(|t| !t.negotiated) {
      if let Some(mid) = t.rtc {
        sdp = sdp::prefer_codec(&sdp, &mid.to_string(), t.codec);
      }
    }
    self.pending = Some(Pending {
      offer: pending,
      added,
      channels,
      mids: sdp::scan(&sdp).into_iter().filter_map(|s| s.mid).collect(),
      removed: pending_removals,
    });
    self.announce_candidates(&sdp);
    Ok(sdp)
  }

  pub fn apply_answer(&mut self, sdp_text: &str) -> Result<(), TransportError> {
    self.require_open()?;
    self.require(TransportRole::Publisher, "apply_answer")?;
    let answer = SdpAnswer::from_sdp_string(sdp_text).map_err(|e| TransportError::Sdp(e.to_string()))?;
    let Some(expected) = self.pending.as_ref().map(|p| p.mids.clone()) else {
      return Err(TransportError::Negotiation("no offer is waiting for an answer".into()));
    };
    // An answer to an offer that was superseded must not be applied to the newer one.
    let mids: Vec<String> = sdp::scan(sdp_text).into_iter().filter_map(|s| s.mid).collect();
    if mids != expected {
      return Err(TransportError::Negotiation(format!(
        "answer m-lines {mids:?} do not match the last offer's {expected:?}"
      )));
    }
    let Some(pending) = self.pending.take() else {
      return Err(TransportError::Negotiation("no offer is waiting for an answer".into()));
    };
    self.rtc.sdp_api().accept_answer(pending.offer, answer)?;
    for t in self.tracks.iter_mut() {
      if t.rtc.is_some_and(|m| pending.added.contains(&m)) {
        t.negotiated = true;
        if self.connected {
          // Frames written before now were dropped: the receiver needs a keyframe first.
          self.events.push_back(TransportEvent::KeyframeRequest { mid: t.local });
        }
      }
    }
    if pending.channels {
      self.channels_negotiated = true;
    }
    self.removals.retain(|m| !pending.removed.contains(m));
    // Tracks removed while their offer was in flight still have an m-line to stop.
    let orphans: Vec<Mid> = pending
      .added
      .iter()
      .copied()
      .filter(|m| !self.tracks.iter().any(|t| t.rtc == Some(*m)))
      .collect();
    self.removals.extend(orphans);
    // Changes made while the offer was in flight.
    if !self.removals.is_empty() || self.tracks.iter().any(|t| !t.negotiated) {
      self.events.push_back(TransportEvent::NegotiationNeeded);
    }
    Ok(())
  }

  /// `now_unix_us` is the Unix time (µs) at `now`: the RTCP sender reports carry wallclock, so
  /// a receiver maps RTP time back to the capture time.
  pub fn write_video(&mut self, local: Mid, frame: OutgoingVideoFrame, now: Instant, now_unix_us: i64) {
    let Some(t) = self.tracks.iter_mut().find(|t| t.local == local) else {
      tracing::debug!(%local, "write_video: unknown track");
      return;
    };
    let Some(rtc_mid) = t.rtc.filter(|_| t.negotiated) else {
      return; // not negotiated yet: frames are dropped, the encoder will be asked for a keyframe
    };
    let Some(writer) = self.rtc.writer(rtc_mid) else {
      return;
    };
    let pt = match t.pt {
      Some(pt) => Some(pt),
      None => {
        let pt = writer
          .payload_params()
          .find(|p| codec_matches(p, t.codec))
          .map(|p| p.pt());
        t.pt = pt;
        pt
      }
    };
    let Some(pt) = pt else {
      if !t.warned_no_codec {
        t.warned_no_codec = true;
        tracing::warn!(mid = %rtc_mid, codec = ?t.codec, "codec not negotiated; dropping frames");
      }
      return;
    };
    let offset = *t
      .clock_offset_us
      .get_or_insert_with(|| capture_clock_offset(frame.capture_time_us, now_unix_us));
    let wallclock = capture_wallclock(frame.capture_time_us - offset, now, now_unix_us);
    let rtp = MediaTime::from_90khz((frame.capture_time_us.max(0) as u64).saturating_mul(9) / 100);
    let orientation = match frame.rotation {
      1 => VideoOrientation::Deg90,
      2 => VideoOrientation::Deg180,
      3 => VideoOrientation::Deg270,
      _ => VideoOrientation::Deg0,
    };
    if let Err(e) = writer
      .video_orientation(orientation)
      .write(pt, wallclock, rtp, frame.data)
    {
      tracing::debug!(mid = %rtc_mid, "write_video: {e}");
    }
  }

  // ---- subscriber ----

  pub fn apply_offer(&mut self, sdp_text: &str) -> Result<String, TransportError> {
    self.require_open()?;
    self.require(TransportRole::Subscriber, "apply_offer")?;
    let offer = SdpOffer::from_sdp_string(sdp_text).map_err(|e| TransportError::Sdp(e.to_string()))?;
    self.forget_replaced_sources(sdp_text);
    let answer = self.rtc.sdp_api().accept_offer(offer)?;
    let answer = answer.to_sdp_string();
    self.sync_remote_tracks(sdp_text, &answer);
    self.announce_candidates(&answer);
    Ok(answer)
  }

  /// LiveKit reuses a subscriber m-line for the next track with a new msid and new SSRCs. str0m
  /// keeps the m-line's depacketizer (and the old SSRC's receive stream) when the SSRCs come
  /// from `a=ssrc` lines: the new stream's sequence numbers then continue the old stream's
  /// reordering window, and every packet numbered below the last one emitted is dropped as
  /// late, which is a coin toss per republication; keyframe requests may also go to the old
  /// SSRC. An m-line whose source changed is removed from str0m before the offer is applied,
  /// so the offer re-creates it as new: fresh depacketizer, only the new streams.
  fn forget_replaced_sources(&mut self, offer: &str) {
    for s in sdp::scan(offer) {
      if s.kind != "video" && s.kind != "audio" {
        continue;
      }
      let Some(mid) = s.mid.as_deref().map(Mid::from) else {
        continue;
      };
      if s.msid.is_none() && s.ssrcs.is_empty() {
        continue; // nothing sent on it now: keep what it carried last
      }
      let source = RemoteSource {
        msid: s.msid,
        ssrcs: s.ssrcs,
      };
      if self.remote_sources.get(&mid).is_some_and(|known| *known != source) {
        tracing::debug!(%mid, "remote m-line carries a new stream; re-creating it");
        self.rtc.direct_api().remove_media(mid);
      }
      self.remote_sources.insert(mid, source);
    }
  }

  /// Diffs the m-lines of a new remote offer against the known remote tracks. LiveKit reuses an
  /// m-line for another track by changing its msid, so msid is part of a track's identity.
  fn sync_remote_tracks(&mut self, offer: &str, answer: &str) {
    let offer = sdp::scan(offer);
    let answer = sdp::scan(answer);
    let mut seen = Vec::new();
    for o in offer.iter().filter(|s| s.kind == "video") {
      let Some(mid_str) = o.mid.as_deref() else { continue };
      let mid = Mid::from(mid_str);
      let a = answer.iter().find(|a| a.mid.as_deref() == Some(mid_str));
      let sending = o.port != 0 && matches!(o.direction, SdpDirection::SendOnly | SdpDirection::SendRecv);
      let accepted =
        a.is_some_and(|a| a.port != 0 && matches!(a.direction, SdpDirection::RecvOnly | SdpDirection::SendRecv));
      let codec = a.and_then(|a| o.accepted_video_codec(a));
      let (stream_id, track_id) = o.msid.clone().unwrap_or_default();
      let live = sending && accepted && codec.is_some();
      if let Some(known) = self.remote.get(&mid) {
        if live && known.stream_id == stream_id && known.track_id == track_id {
          seen.push(mid);
          continue;
        }
        self.remote.remove(&mid);
        self.events.push_back(TransportEvent::TrackRemoved { mid });
      }
      if let (true, Some(codec)) = (live, codec) {
        seen.push(mid);
        self.remote.insert(
          mid,
          RemoteTrack {
            stream_id: stream_id.clone(),
            track_id: track_id.clone(),
            last_pli: None,
          },
        );
        self.events.push_back(TransportEvent::TrackAdded {
          mid,
          stream_id,
          track_id,
          codec,
        });
      }
    }
    let gone: Vec<Mid> = self.remote.keys().copied().filter(|m| !seen.contains(m)).collect();
    for mid in gone {
      self.remote.remove(&mid);
      self.events.push_back(TransportEvent::TrackRemoved { mid });
    }
  }

  /// Publisher: what the estimator probes towards (see `TransportHandle::set_desired_bitrate`).
  /// The first call (the first track's media) also restarts the estimator: its start-up probes
  /// (3x and 6x the estimate) fire once, and on LiveKit's publisher connection that is while only
  /// the data channels exist, with no media to probe with; restarted, they can find the link's
  /// capacity in the first second of video instead of an additive climb.
  pub fn set_desired_bitrate(&mut self, bps: u64) {
    if !self.bwe || self.role != TransportRole::Publisher {
      return;
    }
    let desired = Bitrate::bps(bps.max(MIN_BITRATE.as_u64()));
    self.rtc.bwe().set_bitrate(MIN_BITRATE, desired);
    if !self.bwe_restarted {
      self.bwe_restarted = true;
      self.rtc.bwe().reset(Bitrate::bps(self.initial_bitrate_bps));
    }
  }

  pub fn request_keyframe(&mut self, mid: Mid) {
    let Some(mut writer) = self.rtc.writer(mid) else { return };
    let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
      KeyframeRequestKind::Pli
    } else {
      KeyframeRequestKind::Fir
    };
    if let Err(e) = writer.request_keyframe(None, kind) {
      tracing::debug!(%mid, "request_keyframe: {e}");
    }
  }

  // ---- both ----

  pub fn add_remote_candidate(&mut self, c: Candidate) {
    if !crate::candidate::reachable(&c) {
      return;
    }
    // Nor can a v4 socket reach a v6 candidate (or the reverse).
    if c.addr().is_ipv4() != self.local_is_v4 {
      return;
    }
    self.rtc.add_remote_candidate(c);
  }

  pub fn send_data(&mut self, reliable: bool, data: Vec<u8>) {
    let id = if reliable { self.reliable } else { self.lossy };
    if let Some(mut ch) = id.and_then(|id| self.rtc.channel(id)) {
      if let Err(e) = ch.write(true, &data) {
        tracing::debug!("send_data: {e}");
      }
      return;
    }
    if self.queued_data.len() < MAX_QUEUED_DATA {
      self.queued_data.push_back((reliable, data));
    }
  }

  fn flush_queued_data(&mut self) {
    let queued = std::mem::take(&mut self.queued_data);
    for (reliable, data) in queued {
      self.send_data(reliable, data);
    }
  }

  pub fn close(&mut self, now: Instant) {
    if self.closing_since.is_some() || self.dead {
      return;
    }
    self.closing_since = Some(now);
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

  /// First local description: from now on the candidates have a mid to refer to.
  fn announce_candidates(&mut self, local_sdp: &str) {
    if self.candidates_announced {
      return;
    }
    self.candidates_announced = true;
    let first_mid = sdp::scan(local_sdp).into_iter().find_map(|s| s.mid);
    for c in &self.local_candidates {
      let json = candidate_init_json(c, first_mid.as_deref());
      self.events.push_back(TransportEvent::LocalCandidate(json));
    }
  }

  // ---- driving ----

  pub fn handle_receive(&mut self, now: Instant, proto: Protocol, source: SocketAddr, dest: SocketAddr, data: &[u8]) {
    let Ok(contents) = data.try_into() else {
      return; // not STUN/DTLS/RTP: stray datagram
    };
    // DTLS, RTP and RTCP come only on the pair the remote uses, so they prove a path alive; STUN
    // comes on every pair, and a standby pair's checks prove nothing about the path in use.
    let media = is_media(data);
    if media {
      self.media_path = Some((proto, source));
    }
    if media || self.media_path.is_none_or(|path| path == (proto, source)) {
      self.last_received = Some(now);
      if !self.connected && self.dtls_up && self.ice_up {
        // Disconnected for silence, and the path carries datagrams again.
        self.set_connected(true, now);
      }
    }
    let input = Input::Receive(
      now,
      Receive {
        proto,
        source,
        destination: dest,
        contents,
      },
    );
    if let Err(e) = self.rtc.handle_input(input) {
      tracing::debug!("handle_input: {e}");
    }
  }

  pub fn handle_timeout(&mut self, now: Instant) {
    if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
      tracing::debug!("handle_timeout: {e}");
    }
  }

  /// Drains str0m until it wants to wait; events go to `take_events`.
  pub fn poll(&mut self, now: Instant) -> Poll {
    loop {
      if self.dead {
        return Poll::Dead;
      }
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
            self.media_path = Some((t.proto, t.destination));
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
          return Poll::Timeout(at);
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
    self.events.push_back(TransportEvent::Failed);
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
            // the silence before it says nothing about this path.
            self.last_received = Some(now);
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
        self.flush_queued_data();
      }
      Event::ChannelData(d) => {
        let reliable = self.channels.get(&d.id).copied().unwrap_or(true);
        self
          .events
          .push_back(TransportEvent::DataReceived { reliable, data: d.data });
      }
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
          self.events.push_back(TransportEvent::KeyframeRequest { mid: t.local });
        }
      }
      Event::EgressBitrateEstimate(kind) => {
        let estimate = match kind {
          BweKind::Twcc { estimate, .. } => Some(estimate),
          BweKind::Remb { estimate, .. } => Some(estimate),
          _ => None,
        };
        if let Some(estimate) = estimate {
          self
            .events
            .push_back(TransportEvent::BitrateEstimate { bps: estimate.as_u64() });
        }
      }
      Event::Closed if self.closing_since.is_none() => self.fail("remote closed the connection"),
      _ => {}
    }
  }

  fn set_connected(&mut self, up: bool, now: Instant) {
    if up == self.connected {
      return;
    }
    self.connected = up;
    if up {
      self.disconnected_since = None;
      self.events.push_back(TransportEvent::Connected);
      // Media written while not connected was dropped: start every track with a keyframe.
      for t in self.tracks.iter().filter(|t| t.negotiated) {
        self.events.push_back(TransportEvent::KeyframeRequest { mid: t.local });
      }
    } else {
      self.disconnected_since = Some(now);
      self.events.push_back(TransportEvent::Disconnected);
    }
  }

  fn on_media_data(&mut self, d: MediaData, now: Instant) {
    let Some(codec) = crate::types::codec_of_str0m(d.params.spec().codec) else {
      return; // audio is not handled by lkrtc yet
    };
    if !d.contiguous {
      let due = self
        .remote
        .get(&d.mid)
        .is_none_or(|r| r.last_pli.is_none_or(|t| now >= t + PLI_INTERVAL));
      if due {
        if let Some(r) = self.remote.get_mut(&d.mid) {
          r.last_pli = Some(now);
        }
        self.request_keyframe(d.mid);
      }
    }
    let rotation = match d.ext_vals.video_orientation {
      Some(VideoOrientation::Deg90) => 1,
      Some(VideoOrientation::Deg180) => 2,
      Some(VideoOrientation::Deg270) => 3,
      _ => 0,
    };
    let rtp_time = d.time.numer() as u32;
    let capture_time_us = d.last_sender_info.and_then(|sr| {
      let ntp_us = sr.ntp_time.duration_since(UNIX_EPOCH).ok()?.as_micros() as i64;
      Some(sender_time_of(rtp_time, sr.rtp_time.numer() as u32, ntp_us))
    });
    self.events.push_back(TransportEvent::VideoFrame {
      mid: d.mid,
      keyframe: d.is_keyframe(),
      contiguous: d.contiguous,
      data: d.data.to_vec(),
      codec,
      rtp_time,
      capture_time_us,
      network_time: d.network_time,
      rotation,
    });
  }
}

/// The sender's wallclock (Unix µs) of a 90 kHz RTP timestamp, from the (RTP, NTP) pair of its
/// latest sender report. RTP time wraps; frames within ±6.6 h of the report map correctly.
pub(crate) fn sender_time_of(rtp_time: u32, sr_rtp_time: u32, sr_ntp_us: i64) -> i64 {
  let ticks = i64::from(rtp_time.wrapping_sub(sr_rtp_time) as i32);
  sr_ntp_us + ticks * 100 / 9
}

/// Capture timestamps within this distance of the Unix time are taken as Unix time.
const UNIX_CLOCK_TOLERANCE_US: i64 = 60_000_000;

/// How far a track's capture clock is from Unix time, decided at its first frame: 0 when the
/// timestamps are Unix microseconds (lkrtc's own clock), so sender reports carry the exact
/// capture time; otherwise the first frame is taken as captured now and the rest follow it.
pub(crate) fn capture_clock_offset(first_capture_us: i64, now_unix_us: i64) -> i64 {
  let offset = first_capture_us.saturating_sub(now_unix_us);
  if offset.abs() <= UNIX_CLOCK_TOLERANCE_US {
    0
  } else {
    offset
  }
}

/// The `Instant` whose Unix time is `wall_unix_us`, given that `now` is `now_unix_us`. str0m
/// derives the sender report's (NTP, RTP) pair from the wallclock of the last written frame, and
/// it must not lie in the future: later capture times are clamped to `now`.
pub(crate) fn capture_wallclock(wall_unix_us: i64, now: Instant, now_unix_us: i64) -> Instant {
  let ago = now_unix_us.saturating_sub(wall_unix_us);
  if ago <= 0 {
    return now;
  }
  now.checked_sub(Duration::from_micros(ago as u64)).unwrap_or(now)
}

fn codec_matches(p: &PayloadParams, codec: VideoCodec) -> bool {
  let spec = p.spec();
  crate::types::codec_of_str0m(spec.codec) == Some(codec)
    && (codec != VideoCodec::H264 || spec.format.packetization_mode == Some(1))
}

#[cfg(test)]
mod tests {
  use super::*;

  const NOW_UNIX: i64 = 1_764_000_000_000_000;

  #[test]
  fn rtp_time_maps_through_the_sender_report() {
    assert_eq!(sender_time_of(90_000 + 9, 90_000, NOW_UNIX), NOW_UNIX + 100);
    assert_eq!(sender_time_of(90_000 - 9_000, 90_000, NOW_UNIX), NOW_UNIX - 100_000);
  }

  #[test]
  fn rtp_time_maps_across_the_wrap() {
    assert_eq!(sender_time_of(8_991, u32::MAX - 8, NOW_UNIX), NOW_UNIX + 100_000);
    assert_eq!(sender_time_of(u32::MAX - 8, 8_991, NOW_UNIX), NOW_UNIX - 100_000);
  }

  #[test]
  fn unix_capture_timestamps_keep_their_clock() {
    assert_eq!(capture_clock_offset(NOW_UNIX - 30_000, NOW_UNIX), 0);
    assert_eq!(capture_clock_offset(NOW_UNIX + 5_000, NOW_UNIX), 0);
  }

  #[test]
  fn another_clock_starts_at_now() {
    let offset = capture_clock_offset(5_000_000, NOW_UNIX);
    assert_eq!(5_000_000 - offset, NOW_UNIX);
    assert_eq!(5_066_000 - offset, NOW_UNIX + 66_000);
  }

  #[test]
  fn a_past_capture_time_maps_to_that_long_ago() {
    let now = Instant::now() + Duration::from_secs(10);
    let at = capture_wallclock(NOW_UNIX - 7_000, now, NOW_UNIX);
    assert_eq!(now - at, Duration::from_micros(7_000));
  }

  #[test]
  fn a_future_capture_time_is_clamped_to_now() {
    let now = Instant::now();
    assert_eq!(capture_wallclock(NOW_UNIX + 7_000, now, NOW_UNIX), now);
  }
}
