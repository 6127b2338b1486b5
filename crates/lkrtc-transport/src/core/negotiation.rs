//! Offer/answer: the publisher's offers (new tracks, stopped m-lines, the data channels, ICE
//! restarts) and their answers, and the subscriber's answers with its remote track bookkeeping.

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, Reliability};
use str0m::media::{Direction, MediaKind, Simulcast, SimulcastLayer};

use super::{Core, LocalTrack, RemoteTrack, LOSSY_LABEL, RELIABLE_LABEL};
use crate::sdp::{self, SdpDirection};
use crate::{Mid, TransportError, TransportEvent, TransportRole, VideoCodec};

/// What a remote m-line carries: a new value on a known mid is another RTP stream.
#[derive(PartialEq, Eq)]
pub(super) struct RemoteSource {
  msid: Option<(String, String)>,
  ssrcs: Vec<u32>,
}

pub(super) struct Pending {
  offer: SdpPendingOffer,
  added: Vec<Mid>,
  channels: bool,
  /// m-line mids of the offer, in order: a matching answer has the same.
  mids: Vec<String>,
  /// Stopped m-lines this offer carries.
  removed: Vec<Mid>,
}

impl Core {
  // ---- publisher ----

  pub fn add_video_track(
    &mut self,
    stream_id: &str,
    track_id: &str,
    codec: VideoCodec,
    rids: Vec<String>,
  ) -> Result<Mid, TransportError> {
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
      rids,
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
      // Layers in the order LiveKit's clients offer them (q;h;f): the server maps rids to
      // qualities through the AddTrackRequest's layers.
      let simulcast = (!t.rids.is_empty()).then(|| {
        let mut s = Simulcast::new();
        for rid in &t.rids {
          s.add_send_layer(SimulcastLayer::new(rid));
        }
        s
      });
      let mid = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some(t.stream_id.clone()),
        Some(t.track_id.clone()),
        simulcast,
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
          self.events.push_back(TransportEvent::KeyframeRequest {
            mid: t.local,
            rid: None,
          });
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

  // ---- subscriber ----

  pub fn apply_offer(&mut self, sdp_text: &str) -> Result<String, TransportError> {
    self.require_open()?;
    self.require(TransportRole::Subscriber, "apply_offer")?;
    let offer = SdpOffer::from_sdp_string(sdp_text).map_err(|e| TransportError::Sdp(e.to_string()))?;
    self.forget_replaced_sources(sdp_text);
    let answer = self.rtc.sdp_api().accept_offer(offer)?;
    let answer = answer.to_sdp_string();
    self.abs_send_time_id = crate::recv_estimate::abs_send_time_id(&answer);
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
            last_seq: None,
            lost: 0,
            stream_id: stream_id.clone(),
            track_id: track_id.clone(),
            last_pli: None,
            frame_dropped: false,
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
}
