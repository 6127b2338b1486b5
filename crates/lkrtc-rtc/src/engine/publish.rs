//! Our published tracks and the publisher's negotiation, owned here alone: a publish asks the
//! server (`AddTrackRequest`), adds a sendonly transceiver when it confirms and renegotiates;
//! an unpublish removes it; a full rejoin publishes every track again on the new transport
//! while its encoders run on. A simulcast track has one encoder per layer, one transceiver with
//! a stream per layer, and (with dynacast) pauses the layers no subscriber wants.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use livekit_protocol as proto;
use proto::signal_request::Message as Request;
use tokio::sync::oneshot;

use super::shared::{lock, PublishedView};
use super::Engine;
use crate::encoded_source::EncodedSlot;
use crate::encoder_task::{EncoderControl, EncoderRoute};
use crate::events::RoomEvent;
use crate::local_track::LocalVideoTrack;
use crate::options::VideoCodec;
use crate::publication::LocalTrackPublication;
use crate::send_control::{LayerLimits, LayerShare, SendBudget};
use crate::simulcast::LayerSpec;
use crate::stats::EgressCounts;
use crate::video_source::{FrameSlot, VideoSource};
use crate::{RtcError, RtcResult};

/// What `LocalParticipant::publish_track` asks the engine for, in one command.
pub(crate) struct PublishRequest {
  /// Sent again to republish the track after a full rejoin.
  pub request: proto::AddTrackRequest,
  pub codec: VideoCodec,
  pub track: LocalVideoTrack,
  /// The source slots the track's encoders read, one per layer.
  pub slots: Vec<Arc<FrameSlot>>,
  /// The queue of a pre-encoded track's sender (then `slots` is empty).
  pub encoded: Option<Arc<EncodedSlot>>,
  /// The layers sent, lowest first (one without rid for a track sent without simulcast).
  pub layers: Vec<LayerSpec>,
  pub reply: oneshot::Sender<RtcResult<StartedTrack>>,
}

impl PublishRequest {
  fn detach(&self) {
    for slot in &self.slots {
      self.track.source().detach(slot);
    }
    if let Some(slot) = &self.encoded {
      self.track.source().detach_encoded(slot);
    }
  }
}

/// What a started track needs to feed its encoders.
pub(crate) struct StartedTrack {
  pub publication: LocalTrackPublication,
  pub mid: String,
  /// Per layer, lowest first.
  pub controls: Vec<Arc<EncoderControl>>,
  /// How a simulcast track's layers share the estimate; `None` for a single layer.
  pub layer_share: Option<Arc<LayerShare>>,
  pub bwe_bps: Arc<SendBudget>,
}

/// The rids of a track's layers, empty for a single layer.
fn rids_of(layers: &[LayerSpec]) -> Vec<String> {
  if layers.len() > 1 {
    layers.iter().map(|l| l.rid.clone()).collect()
  } else {
    Vec::new()
  }
}

/// The layers some subscriber wants, by the server's `SubscribedQualityUpdate`: the entry for
/// our codec if the server sent per-codec ones, else the plain list. A quality it does not
/// mention keeps its state (`None`).
#[allow(deprecated)] // older servers send only `subscribed_qualities`
pub(crate) fn wanted_layers(
  update: &proto::SubscribedQualityUpdate,
  codec: VideoCodec,
  layers: &[LayerSpec],
) -> Vec<Option<bool>> {
  let name = codec.name().to_ascii_lowercase();
  let qualities = update
    .subscribed_codecs
    .iter()
    .find(|c| c.codec.to_ascii_lowercase().ends_with(&name))
    .map(|c| &c.qualities)
    .unwrap_or(&update.subscribed_qualities);
  layers
    .iter()
    .map(|l| {
      qualities
        .iter()
        .find(|q| q.quality == l.quality as i32)
        .map(|q| q.enabled)
    })
    .collect()
}

/// One of our tracks on the publisher transport.
pub(crate) struct PublishedTrack {
  mid: String,
  cid: String,
  request: proto::AddTrackRequest,
  codec: VideoCodec,
  /// The server's description, replayed in `SyncState` on resume.
  info: proto::TrackInfo,
  publication: LocalTrackPublication,
  track: LocalVideoTrack,
  /// Per layer, lowest first.
  controls: Vec<Arc<EncoderControl>>,
  source: VideoSource,
  slots: Vec<Arc<FrameSlot>>,
  encoded: Option<Arc<EncodedSlot>>,
  layers: Vec<LayerSpec>,
  layer_share: Option<Arc<LayerShare>>,
  /// The connection's send-side estimate.
  bwe: Arc<SendBudget>,
}

impl PublishedTrack {
  fn view(&self) -> PublishedView {
    PublishedView {
      publication: self.publication.clone(),
      source: self.source.clone(),
      slots: self.slots.clone(),
      controls: self.controls.clone(),
      layers: self.layers.clone(),
      bwe: self.bwe.clone(),
    }
  }

  /// Stops its encoders (or sender): the source no longer feeds them.
  fn detach(&self) {
    for slot in &self.slots {
      self.source.detach(slot);
    }
    if let Some(slot) = &self.encoded {
      self.source.detach_encoded(slot);
    }
  }

  /// Asks for a keyframe on layer `rid` (`None`: every layer).
  fn request_keyframe(&self, rid: Option<&str>) {
    for control in &self.controls {
      if rid.is_none() || control.rid.as_deref() == rid {
        control.keyframe.store(true, Ordering::Relaxed);
      }
    }
  }

  /// Dynacast: pauses the layers no subscriber wants, resumes the wanted ones.
  fn apply_subscribed_qualities(&self, update: &proto::SubscribedQualityUpdate) {
    let Some(share) = self.layer_share.as_ref() else {
      return;
    };
    for (i, wanted) in wanted_layers(update, self.codec, &self.layers).into_iter().enumerate() {
      if let Some(wanted) = wanted {
        share.set_wanted(i, wanted);
      }
    }
  }
}

/// The publisher's offer/answer state.
#[derive(Debug, Default)]
pub(crate) struct Negotiation {
  /// An offer is out and its answer has not come back.
  in_flight: bool,
  /// Something changed while the offer was out: offer again after the answer.
  again: bool,
  /// Our transceivers' mids to track cids, sent with each offer so the server can match
  /// tracks even when the SDP's msid does not carry the cid.
  mid_to_track_id: HashMap<String, String>,
}

impl Negotiation {
  /// Whether to offer now; if not, an offer follows the answer in flight. An ICE restart
  /// does not wait.
  fn offer_now(&mut self, ice_restart: bool) -> bool {
    if self.in_flight && !ice_restart {
      self.again = true;
      return false;
    }
    true
  }

  /// An offer is out.
  fn offered(&mut self) {
    self.in_flight = true;
  }

  /// The answer came back: whether to offer again.
  fn answered(&mut self) -> bool {
    self.in_flight = false;
    std::mem::take(&mut self.again)
  }
}

/// Every track we publish or are about to, by stage.
#[derive(Default)]
pub(crate) struct Publishing {
  /// Asked for, waiting for the server's `TrackPublishedResponse`, by cid.
  pending: HashMap<String, PublishRequest>,
  /// Live on the current publisher, by sid.
  tracks: HashMap<String, PublishedTrack>,
  /// Between a full rejoin and the new server's `TrackPublishedResponse`, by cid.
  republishing: HashMap<String, PublishedTrack>,
  negotiation: Negotiation,
}

impl Publishing {
  /// Holds a publish until the server confirms it. Publishes whose caller gave up (timed out)
  /// are dropped here, so waiting ones stay bounded by live callers.
  fn add_pending(&mut self, publish: PublishRequest) {
    self.pending.retain(|_, p| {
      let alive = !p.reply.is_closed();
      if !alive {
        p.detach();
      }
      alive
    });
    self.pending.insert(publish.request.cid.clone(), publish);
  }

  /// The track (live, or waiting to be republished: it still answers to its old sid) with sid
  /// `sid`, taken out.
  fn take_by_sid(&mut self, sid: &str) -> Option<(PublishedTrack, bool)> {
    if let Some(track) = self.tracks.remove(sid) {
      return Some((track, true));
    }
    let cid = self
      .republishing
      .iter()
      .find(|(_, t)| t.publication.sid == sid)
      .map(|(cid, _)| cid.clone())?;
    self.republishing.remove(&cid).map(|t| (t, false))
  }

  /// What the transport counted for the layer `rid` of the track on `mid`.
  pub(super) fn record_egress(&self, mid: &str, rid: Option<&str>, counts: EgressCounts) {
    let Some(track) = self.tracks.values().find(|t| t.mid == mid) else {
      return;
    };
    if let Some(control) = track.controls.iter().find(|c| c.rid.as_deref() == rid) {
      control.record_egress(counts);
    }
  }

  /// How long the oldest packet of a sent layer has waited in the pacer: for its encoder.
  pub(super) fn record_send_queue(&self, mid: &str, rid: Option<&str>, delay: std::time::Duration) {
    let Some(track) = self.tracks.values().find(|t| t.mid == mid) else {
      return;
    };
    if let Some(control) = track.controls.iter().find(|c| c.rid.as_deref() == rid) {
      control.record_send_queue(delay);
    }
  }

  /// A keyframe was asked for on transceiver `mid` (layer `rid`, or all): tells its encoders.
  /// False for no such track.
  fn request_keyframe(&self, mid: &str, rid: Option<&str>) -> bool {
    match self.tracks.values().find(|t| t.mid == mid) {
      Some(track) => {
        track.request_keyframe(rid);
        true
      }
      None => false,
    }
  }

  /// The server's `SubscribedQualityUpdate` for one of our tracks.
  fn subscribed_qualities(&self, update: &proto::SubscribedQualityUpdate) {
    if let Some(track) = self.tracks.get(&update.track_sid) {
      track.apply_subscribed_qualities(update);
    }
  }

  /// A full rejoin: the live tracks wait to be published again on the new transport. Returns
  /// their old publications, now unpublished.
  fn begin_rejoin(&mut self) -> Vec<LocalTrackPublication> {
    self.negotiation = Negotiation::default();
    self
      .tracks
      .drain()
      .map(|(_, track)| {
        let publication = track.publication.clone();
        self.republishing.insert(track.cid.clone(), track);
        publication
      })
      .collect()
  }

  /// The `AddTrackRequest`s to send to a new server: the tracks to republish and the publishes
  /// not yet confirmed.
  fn rejoin_requests(&self) -> Vec<proto::AddTrackRequest> {
    self
      .republishing
      .values()
      .map(|t| (t.request.clone(), &t.track))
      .chain(self.pending.values().map(|p| (p.request.clone(), &p.track)))
      .map(|(mut request, track)| {
        // Muted since it was first published: the new server learns it with the track.
        request.muted = track.is_muted();
        request
      })
      .collect()
  }

  /// What a resumed session tells the server we publish.
  pub fn sync_state(&self) -> Vec<proto::TrackPublishedResponse> {
    self
      .tracks
      .values()
      .map(|t| proto::TrackPublishedResponse {
        cid: t.cid.clone(),
        track: Some(t.info.clone()),
      })
      .collect()
  }

  pub fn is_empty(&self) -> bool {
    self.tracks.is_empty()
  }

  /// The room ended: every encoder stops, every waiting publish fails with `reason`.
  pub fn close(&mut self, reason: &str) {
    for (_, track) in self.tracks.drain().chain(self.republishing.drain()) {
      track.detach();
    }
    for (_, publish) in self.pending.drain() {
      publish.detach();
      let _ = publish.reply.send(Err(RtcError::Disconnected {
        reason: reason.to_string(),
      }));
    }
  }
}

impl Engine {
  /// `LocalParticipant::publish_track`: ask the server; the track starts when it confirms.
  pub(super) async fn publish(&mut self, publish: PublishRequest) {
    let request = publish.request.clone();
    self.publish.add_pending(publish);
    self.send(Request::AddTrack(request)).await;
  }

  /// The server confirmed a track of ours: start it, or give it the new transport after a
  /// full rejoin.
  pub(super) async fn track_published(&mut self, cid: String, info: proto::TrackInfo) {
    if let Some(publish) = self.publish.pending.remove(&cid) {
      self.start_track(publish, info).await;
    } else if let Some(published) = self.publish.republishing.remove(&cid) {
      self.republish(published, info).await;
    }
  }

  async fn start_track(&mut self, publish: PublishRequest, info: proto::TrackInfo) {
    if publish.reply.is_closed() {
      // The caller gave up waiting.
      publish.detach();
      return;
    }
    let rids = rids_of(&publish.layers);
    let mid = match self.add_sender(&publish.request.cid, publish.codec, &rids).await {
      Ok(mid) => mid,
      Err(e) => {
        publish.detach();
        let _ = publish.reply.send(Err(e));
        return;
      }
    };
    let PublishRequest {
      request,
      codec,
      track,
      slots,
      encoded,
      layers,
      reply,
    } = publish;
    let source = track.source().clone();
    let controls: Vec<Arc<EncoderControl>> = layers
      .iter()
      .map(|l| {
        let route = EncoderRoute {
          pc: self.publisher.clone(),
          mid: mid.clone(),
        };
        let rid = (layers.len() > 1).then(|| l.rid.clone());
        Arc::new(EncoderControl::for_layer(route, rid))
      })
      .collect();
    let layer_share = (layers.len() > 1).then(|| {
      let limits = layers
        .iter()
        .map(|l| LayerLimits::new(l.width, l.height, l.encoding.max_bitrate))
        .collect();
      LayerShare::new(&self.bwe_bps, limits)
    });
    let mut publication = LocalTrackPublication::from_info(&info, codec.mime_type());
    publication.simulcasted = layers.len() > 1;
    track.set_sid(Some(publication.sid.clone()));
    let published = PublishedTrack {
      mid: mid.clone(),
      cid: request.cid.clone(),
      request,
      codec,
      info,
      publication: publication.clone(),
      track,
      controls: controls.clone(),
      source,
      slots,
      encoded,
      layers,
      layer_share: layer_share.clone(),
      bwe: self.bwe_bps.clone(),
    };
    let started = StartedTrack {
      publication: publication.clone(),
      mid,
      controls,
      layer_share,
      bwe_bps: self.bwe_bps.clone(),
    };
    if reply.send(Ok(started)).is_err() {
      // The caller gave up just now: undo.
      published.detach();
      self.remove_sender(&published).await;
      published.track.set_sid(None);
      return;
    }
    self.announce(published);
    self.negotiate(false).await;
  }

  /// A live track: in the getters' view, and announced.
  fn announce(&mut self, published: PublishedTrack) {
    let sid = published.publication.sid.clone();
    lock(&self.shared).publications.insert(sid.clone(), published.view());
    let _ = self.events.send(RoomEvent::LocalTrackPublished {
      publication: published.publication.clone(),
    });
    self.publish.tracks.insert(sid, published);
  }

  /// The new server confirmed a track of ours after a full rejoin: give its encoder the new
  /// transceiver and announce the new publication.
  async fn republish(&mut self, mut published: PublishedTrack, info: proto::TrackInfo) {
    let rids = rids_of(&published.layers);
    let mid = match self.add_sender(&published.cid, published.codec, &rids).await {
      Ok(mid) => mid,
      Err(e) => {
        tracing::warn!("cannot republish {}: {e}", published.track.name());
        published.detach();
        published.track.set_sid(None);
        return;
      }
    };
    for control in &published.controls {
      control.set_route(EncoderRoute {
        pc: self.publisher.clone(),
        mid: mid.clone(),
      });
    }
    published.mid = mid;
    published.publication = LocalTrackPublication::from_info(&info, published.codec.mime_type());
    published.publication.simulcasted = published.layers.len() > 1;
    published.info = info;
    published.track.set_sid(Some(published.publication.sid.clone()));
    self.announce(published);
    self.negotiate(false).await;
  }

  /// `LocalParticipant::unpublish_track`.
  pub(super) async fn unpublish(&mut self, sid: String) -> RtcResult<LocalTrackPublication> {
    match self.publish.take_by_sid(&sid) {
      Some((track, true)) => {
        self.stop_track(&track).await;
        let _ = self.events.send(RoomEvent::LocalTrackUnpublished {
          publication: track.publication.clone(),
        });
        Ok(track.publication)
      }
      Some((track, false)) => {
        track.detach();
        track.track.set_sid(None);
        Ok(track.publication)
      }
      None => Err(RtcError::TrackNotFound { sid }),
    }
  }

  /// The server unpublished a track of ours.
  pub(super) async fn server_unpublished(&mut self, sid: &str) {
    if let Some(track) = self.publish.tracks.remove(sid) {
      self.stop_track(&track).await;
      let _ = self.events.send(RoomEvent::LocalTrackUnpublished {
        publication: track.publication,
      });
    }
  }

  /// The transport asked for a keyframe on `mid` (layer `rid`, or every layer).
  pub(super) fn keyframe_requested(&self, mid: &str, rid: Option<&str>) {
    self.publish.request_keyframe(mid, rid);
  }

  /// The server says which qualities of a track of ours are watched: with dynacast on, the
  /// layers nobody watches pause.
  pub(super) fn subscribed_quality_update(&self, update: &proto::SubscribedQualityUpdate) {
    if self.config.dynacast {
      self.publish.subscribed_qualities(update);
    }
  }

  async fn stop_track(&mut self, track: &PublishedTrack) {
    track.detach();
    track.track.set_sid(None);
    lock(&self.shared).publications.remove(&track.publication.sid);
    self.remove_sender(track).await;
  }

  /// Removing the sender and renegotiating is how LiveKit clients unpublish; muting is the
  /// fallback.
  async fn remove_sender(&mut self, track: &PublishedTrack) {
    self.publish.negotiation.mid_to_track_id.remove(&track.mid);
    match self.publisher.remove_track(&track.mid).await {
      Ok(()) => self.negotiate(false).await,
      Err(e) => {
        tracing::warn!(
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

  /// Offers the publisher's description (with new ICE credentials on `ice_restart`), or marks
  /// an offer to follow the one in flight.
  pub(super) async fn negotiate(&mut self, ice_restart: bool) {
    if !self.publish.negotiation.offer_now(ice_restart) {
      return;
    }
    match self.publisher.create_offer(ice_restart).await {
      Ok(Some(sdp)) => {
        self.publish.negotiation.offered();
        let offer = proto::SessionDescription {
          r#type: "offer".into(),
          sdp,
          mid_to_track_id: self.publish.negotiation.mid_to_track_id.clone(),
          ..Default::default()
        };
        self.last_offer = Some(offer.clone());
        self.send(Request::Offer(offer)).await;
      }
      Ok(None) => tracing::debug!("nothing to offer on the publisher yet"),
      Err(e) => tracing::warn!("cannot create the publisher offer: {e}"),
    }
  }

  /// The server answered our offer.
  pub(super) async fn publisher_answer(&mut self, sdp: &str) {
    match self.publisher.apply_answer(sdp).await {
      Ok(()) => self.flush_candidates(crate::signal::session::Target::Publisher).await,
      Err(e) => tracing::warn!("cannot apply the publisher answer: {e}"),
    }
    if self.publish.negotiation.answered() {
      self.negotiate(false).await;
    }
  }

  /// After a resume: ICE-restart the publisher if it carries anything.
  pub(super) async fn restart_publisher_ice(&mut self) {
    if !self.publish.is_empty() || self.last_offer.is_some() {
      self.publish.negotiation.in_flight = false;
      self.negotiate(true).await;
    }
  }

  /// A full rejoin was accepted: our tracks are unpublished from the old session and asked for
  /// again on the new one.
  pub(super) async fn publish_again(&mut self) {
    lock(&self.shared).publications.clear();
    for publication in self.publish.begin_rejoin() {
      let _ = self.events.send(RoomEvent::LocalTrackUnpublished { publication });
    }
    for request in self.publish.rejoin_requests() {
      self.send(Request::AddTrack(request)).await;
    }
  }

  /// A sendonly transceiver for our track `cid` on the current publisher; its mid is sent with
  /// each offer so the server can match it to the track.
  async fn add_sender(&mut self, cid: &str, codec: VideoCodec, rids: &[String]) -> RtcResult<String> {
    let mid = self
      .publisher
      .add_video_track(&format!("{cid}-stream"), cid, codec, rids)
      .await?;
    self
      .publish
      .negotiation
      .mid_to_track_id
      .insert(mid.clone(), cid.to_string());
    Ok(mid)
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use crate::options::VideoSourceOptions;

  fn published(sid: &str, cid: &str, mid: &str) -> PublishedTrack {
    let source = VideoSource::new(64, 64, VideoSourceOptions::default()).unwrap();
    let track = LocalVideoTrack::create_video_track("cam", &source);
    let info = proto::TrackInfo {
      sid: sid.into(),
      name: "cam".into(),
      ..Default::default()
    };
    PublishedTrack {
      mid: mid.into(),
      cid: cid.into(),
      request: proto::AddTrackRequest {
        cid: cid.into(),
        ..Default::default()
      },
      codec: VideoCodec::Vp8,
      publication: LocalTrackPublication::from_info(&info, "video/VP8"),
      info,
      slots: vec![source.attach()],
      encoded: None,
      track,
      controls: vec![Arc::new(EncoderControl::default())],
      source,
      layers: vec![],
      layer_share: None,
      bwe: Arc::default(),
    }
  }

  fn pending(cid: &str) -> (PublishRequest, oneshot::Receiver<RtcResult<StartedTrack>>) {
    let source = VideoSource::new(64, 64, VideoSourceOptions::default()).unwrap();
    let (reply, answer) = oneshot::channel();
    let request = PublishRequest {
      request: proto::AddTrackRequest {
        cid: cid.into(),
        ..Default::default()
      },
      codec: VideoCodec::Vp8,
      track: LocalVideoTrack::create_video_track("cam", &source),
      slots: vec![source.attach()],
      encoded: None,
      layers: vec![],
      reply,
    };
    (request, answer)
  }

  #[test]
  fn an_offer_in_flight_defers_the_next_one_to_its_answer() {
    let mut negotiation = Negotiation::default();
    assert!(negotiation.offer_now(false));
    negotiation.offered();
    assert!(!negotiation.offer_now(false));
    assert!(!negotiation.offer_now(false));
    assert!(negotiation.answered(), "one offer follows the answer");
    assert!(!negotiation.answered());
  }

  #[test]
  fn an_ice_restart_does_not_wait_for_the_answer_in_flight() {
    let mut negotiation = Negotiation::default();
    negotiation.offered();
    assert!(negotiation.offer_now(true));
  }

  #[test]
  fn a_keyframe_request_reaches_the_encoder_of_its_mid() {
    let mut publishing = Publishing::default();
    let track = published("TR_a", "c1", "m1");
    let control = track.controls[0].clone();
    publishing.tracks.insert("TR_a".into(), track);
    assert!(!publishing.request_keyframe("m2", None));
    assert!(!control.keyframe.load(Ordering::Relaxed));
    assert!(publishing.request_keyframe("m1", None));
    assert!(control.keyframe.load(Ordering::Relaxed));
  }

  fn layer(rid: &str, quality: proto::VideoQuality) -> LayerSpec {
    LayerSpec {
      rid: rid.into(),
      quality,
      width: 64,
      height: 64,
      encoding: crate::options::VideoEncoding {
        max_bitrate: 100_000,
        max_framerate: 30.0,
      },
    }
  }

  #[test]
  fn a_keyframe_request_for_a_layer_reaches_that_layers_encoder_only() {
    let mut track = published("TR_a", "c1", "m1");
    track.controls = ["q", "h"]
      .iter()
      .map(|rid| {
        Arc::new(EncoderControl {
          rid: Some(rid.to_string()),
          ..Default::default()
        })
      })
      .collect();
    track.request_keyframe(Some("h"));
    let asked: Vec<bool> = track
      .controls
      .iter()
      .map(|c| c.keyframe.load(Ordering::Relaxed))
      .collect();
    assert_eq!(asked, [false, true]);
  }

  #[test]
  #[allow(deprecated)]
  fn subscribed_qualities_name_the_wanted_layers_of_our_codec() {
    use proto::VideoQuality::{High, Low, Medium};
    let layers = [layer("q", Low), layer("h", Medium), layer("f", High)];
    let q = |quality: proto::VideoQuality, enabled| proto::SubscribedQuality {
      quality: quality as i32,
      enabled,
    };
    let plain = proto::SubscribedQualityUpdate {
      track_sid: "TR_a".into(),
      subscribed_qualities: vec![q(Low, true), q(High, false)],
      ..Default::default()
    };
    assert_eq!(
      wanted_layers(&plain, VideoCodec::Vp8, &layers),
      [Some(true), None, Some(false)]
    );
    let per_codec = proto::SubscribedQualityUpdate {
      track_sid: "TR_a".into(),
      subscribed_qualities: vec![q(Low, true), q(Medium, true), q(High, true)],
      subscribed_codecs: vec![
        proto::SubscribedCodec {
          codec: "h264".into(),
          qualities: vec![q(Low, true)],
        },
        proto::SubscribedCodec {
          codec: "vp8".into(),
          qualities: vec![q(Low, true), q(Medium, false), q(High, false)],
        },
      ],
    };
    assert_eq!(
      wanted_layers(&per_codec, VideoCodec::Vp8, &layers),
      [Some(true), Some(false), Some(false)]
    );
  }

  #[test]
  fn a_rejoin_republishes_live_tracks_and_unconfirmed_publishes() {
    let mut publishing = Publishing::default();
    publishing.tracks.insert("TR_a".into(), published("TR_a", "c1", "m1"));
    let (request, _answer) = pending("c2");
    publishing.add_pending(request);
    publishing.negotiation.offered();
    let gone = publishing.begin_rejoin();
    assert_eq!(gone.iter().map(|p| p.sid.as_str()).collect::<Vec<_>>(), ["TR_a"]);
    assert!(publishing.is_empty());
    assert!(!publishing.negotiation.in_flight, "the new transport negotiates afresh");
    let mut cids: Vec<String> = publishing.rejoin_requests().into_iter().map(|r| r.cid).collect();
    cids.sort();
    assert_eq!(cids, ["c1", "c2"]);
  }

  #[test]
  fn a_track_waiting_to_be_republished_still_answers_to_its_old_sid() {
    let mut publishing = Publishing::default();
    publishing.tracks.insert("TR_a".into(), published("TR_a", "c1", "m1"));
    publishing.begin_rejoin();
    let (track, live) = publishing.take_by_sid("TR_a").expect("found");
    assert_eq!((track.cid.as_str(), live), ("c1", false));
    assert!(publishing.take_by_sid("TR_a").is_none());
  }

  #[test]
  fn publishes_whose_caller_gave_up_are_dropped() {
    let mut publishing = Publishing::default();
    let (first, answer) = pending("c1");
    publishing.add_pending(first);
    drop(answer);
    let (second, _answer) = pending("c2");
    publishing.add_pending(second);
    assert_eq!(publishing.pending.keys().collect::<Vec<_>>(), ["c2"]);
  }

  #[test]
  fn closing_fails_waiting_publishes_with_the_reason() {
    let mut publishing = Publishing::default();
    let (request, mut answer) = pending("c1");
    publishing.add_pending(request);
    publishing.close("ROOM_DELETED");
    match answer.try_recv() {
      Ok(Err(RtcError::Disconnected { reason })) => assert_eq!(reason, "ROOM_DELETED"),
      _ => panic!("expected the publish to fail with the room's reason"),
    }
  }

  #[test]
  fn a_resume_replays_the_live_tracks() {
    let mut publishing = Publishing::default();
    publishing.tracks.insert("TR_a".into(), published("TR_a", "c1", "m1"));
    let sync = publishing.sync_state();
    assert_eq!(sync.len(), 1);
    assert_eq!(
      (sync[0].cid.as_str(), sync[0].track.as_ref().map(|t| t.sid.as_str())),
      ("c1", Some("TR_a"))
    );
  }
}
