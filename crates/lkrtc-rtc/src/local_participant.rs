//! The local participant: who we are in the room, and publishing/unpublishing video tracks.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use livekit_protocol as proto;
use tokio::sync::{mpsc, oneshot};

use crate::data::{self, DataPublishOptions};
use crate::encoded_sender::{self, EncodedSendParams};
use crate::encoder_task::{self, EncoderParams, LayerParams};
use crate::engine::shared::{lock, SharedRef};
use crate::engine::{Command, PublishRequest};
use crate::events::ConnectionState;
use crate::local_track::LocalVideoTrack;
use crate::options::{default_video_encoding, DegradationPreference, TrackPublishOptions};
use crate::publication::LocalTrackPublication;
use crate::simulcast;
use crate::{RtcError, RtcResult};

/// How long the server has to confirm an `AddTrackRequest`.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(10);

struct LocalInner {
  shared: SharedRef,
  commands: mpsc::UnboundedSender<Command>,
  /// Numbers our reliable data packets.
  data_sequence: std::sync::atomic::AtomicU32,
}

/// Counters of one layer of a published track, counted by its encoder thread.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerPublishStats {
  /// The layer's RTP stream id (`q`, `h`, `f`); empty for a track sent without simulcast.
  pub rid: String,
  /// The width of the picture sent (the layer's; smaller when a single layer adapts).
  pub width: u32,
  /// The height of the picture sent.
  pub height: u32,
  /// Frames the layer's encoder produced.
  pub frames_encoded: u64,
  /// Keyframes among them.
  pub keyframes_encoded: u64,
  /// The encoder's current target (0 while paused).
  pub target_bitrate_bps: u64,
  /// Encoded bytes handed to the transport.
  pub bytes_sent: u64,
  /// The layer is paused: the estimate leaves nothing for it, or (dynacast) no subscriber wants it.
  pub paused: bool,
  /// Frames encoded over the last second.
  pub frames_per_second: f64,
  /// RTP bytes the transport sent, retransmissions included (counted every half second).
  pub transport_bytes_sent: u64,
  /// RTP packets the transport sent, retransmissions included.
  pub packets_sent: u64,
  /// NACK messages received for it.
  pub nack_count: u64,
  /// PLI messages received for it.
  pub pli_count: u64,
  /// FIR messages received for it.
  pub fir_count: u64,
  /// `bandwidth` while the estimate holds the layer back (a smaller picture, frames skipped in
  /// the last 2 s); `none` otherwise.
  pub quality_limitation_reason: &'static str,
  /// `libvpx` or `openh264`; empty before the first frame.
  pub encoder: &'static str,
}

/// Counters of one published track's send pipeline; with simulcast, the sums over its layers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PublishStats {
  /// Frames the source accepted (all tracks of the source).
  pub frames_captured: u64,
  /// Captured frames replaced by a newer one before the encoder took them.
  pub frames_dropped: u64,
  /// Frames the encoder produced.
  pub frames_encoded: u64,
  /// Keyframes among them.
  pub keyframes_encoded: u64,
  /// Encoded frames the transport refused (e.g. before it connected).
  pub frames_unsent: u64,
  /// Encoded bytes handed to the transport.
  pub bytes_sent: u64,
  /// The encoder's current target.
  pub bitrate_bps: u64,
  /// Frames not encoded because the link was congested (the pacer's queue was long).
  pub frames_skipped: u64,
  /// The track's share of the bandwidth estimate (0 before the first estimate).
  pub available_bitrate_bps: u64,
  /// The width of the picture sent (smaller than the source's when the link is short).
  pub sent_width: u32,
  /// The height of the picture sent.
  pub sent_height: u32,
  /// Per layer, lowest first (one entry for a track sent without simulcast).
  pub layers: Vec<LayerPublishStats>,
  /// The round-trip time to the server from its receiver reports, once known.
  pub round_trip_time: Option<std::time::Duration>,
  /// The send-side bandwidth estimate of the connection (0 before the first).
  pub available_outgoing_bitrate_bps: u64,
}

/// This process's participant in a room. Cheap to clone.
#[derive(Clone)]
pub struct LocalParticipant {
  inner: Arc<LocalInner>,
}

impl std::fmt::Debug for LocalParticipant {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("LocalParticipant")
      .field("identity", &self.identity())
      .finish()
  }
}

fn new_cid() -> String {
  static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
  let nanos = SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .map(|d| d.as_nanos())
    .unwrap_or(0);
  let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
  format!("lkrtc-{:x}-{n}", nanos & 0xffff_ffff_ffff)
}

impl LocalParticipant {
  pub(crate) fn new(shared: SharedRef, commands: mpsc::UnboundedSender<Command>) -> Self {
    Self {
      inner: Arc::new(LocalInner {
        shared,
        commands,
        data_sequence: std::sync::atomic::AtomicU32::new(1),
      }),
    }
  }

  /// Our participant sid (`PA_...`); changes on a rejoin.
  pub fn sid(&self) -> String {
    lock(&self.inner.shared).local.sid.clone()
  }

  /// Our identity, from the token.
  pub fn identity(&self) -> String {
    lock(&self.inner.shared).local.identity.clone()
  }

  /// Our display name.
  pub fn name(&self) -> String {
    lock(&self.inner.shared).local.name.clone()
  }

  /// Our metadata.
  pub fn metadata(&self) -> String {
    lock(&self.inner.shared).local.metadata.clone()
  }

  /// Our published tracks, keyed by sid.
  pub fn track_publications(&self) -> HashMap<String, LocalTrackPublication> {
    lock(&self.inner.shared)
      .publications
      .iter()
      .map(|(sid, view)| (sid.clone(), view.publication.clone()))
      .collect()
  }

  fn command(&self, command: Command) -> RtcResult<()> {
    self.inner.commands.send(command).map_err(|_| RtcError::NotConnected)
  }

  /// Sends a data message to the room (or to `options.destination_identities` only), as
  /// LiveKit's SDKs do: their `dataReceived` event gets it. Resolves once the message is sent
  /// or waiting in order to be sent; `ERR_DATA_BACKLOG` when 4 MiB wait already (send slower),
  /// `ERR_INVALID_ARGUMENT` when it is larger than one packet can carry (about 64 KiB).
  /// The message is queued before this returns, so messages go out in the order of the calls
  /// even when their futures are awaited in another order.
  pub fn publish_data(
    &self,
    payload: &[u8],
    options: DataPublishOptions,
  ) -> impl std::future::Future<Output = RtcResult<()>> + Send + 'static {
    let queued = self.queue_data(payload, &options);
    async move { queued?.await.map_err(|_| RtcError::NotConnected)? }
  }

  fn queue_data(&self, payload: &[u8], options: &DataPublishOptions) -> RtcResult<oneshot::Receiver<RtcResult<()>>> {
    if lock(&self.inner.shared).state == ConnectionState::Disconnected {
      return Err(RtcError::NotConnected);
    }
    let sequence = self.inner.data_sequence.fetch_add(1, Ordering::Relaxed);
    let packet = data::encode_user_packet(payload, options, &self.identity(), sequence)?;
    let (reply, answer) = oneshot::channel();
    self.command(Command::PublishData {
      reliable: options.reliable,
      packet,
      reply,
    })?;
    Ok(answer)
  }

  /// Publishes a video track: one request to the room's engine, which sends `AddTrackRequest`
  /// and on the server's confirmation (10 s cap) adds a sendonly transceiver and renegotiates;
  /// then an encoder thread fed by the track's source.
  pub async fn publish_track(
    &self,
    track: &LocalVideoTrack,
    options: TrackPublishOptions,
  ) -> RtcResult<LocalTrackPublication> {
    if track.sid().is_some() {
      return Err(RtcError::AlreadyPublished { name: track.name() });
    }
    {
      let shared = lock(&self.inner.shared);
      if shared.state != ConnectionState::Connected {
        return Err(RtcError::NotConnected);
      }
      if shared.local.permission.as_ref().is_some_and(|p| !p.can_publish) {
        return Err(RtcError::PublishRefused {
          reason: "the token does not grant canPublish".into(),
        });
      }
    }
    let source = track.source().clone();
    if source.is_closed() {
      return Err(RtcError::Closed {
        what: "the video source",
      });
    }
    let (width, height) = (source.width(), source.height());
    let encoding = options
      .video_encoding
      .unwrap_or_else(|| default_video_encoding(width, height, source.is_screencast()));
    if encoding.max_bitrate == 0 || !encoding.max_framerate.is_finite() || encoding.max_framerate <= 0.0 {
      return Err(RtcError::InvalidArgument {
        name: "videoEncoding",
        reason: format!(
          "maxBitrate and maxFramerate must be positive, got {} and {}",
          encoding.max_bitrate, encoding.max_framerate
        ),
      });
    }
    // A pre-encoded source goes as it comes: in its codec, one layer.
    let pre_encoded = source.encoded_feed().map(|feed| feed.codec);
    let codec = pre_encoded.unwrap_or(options.video_codec);
    let lower = match options.simulcast_layers.as_deref() {
      Some(chosen) => simulcast::check_lower_layers(width, height, chosen)?,
      None => simulcast::default_lower_layers(width, height, encoding, source.is_screencast()),
    };
    // VP9 and AV1 go as one layer: LiveKit's SDKs scale them with SVC in one stream, never with
    // simulcast streams, and the server forwards them as SVC.
    let svc_codec = matches!(codec, lkrtc_video::VideoCodec::Vp9 | lkrtc_video::VideoCodec::Av1);
    let simulcast = options.simulcast && !svc_codec && pre_encoded.is_none();
    let specs = simulcast::compute_layers(width, height, encoding, simulcast, &lower);
    // Every encoder is made before the server hears of the track, so a codec problem fails the
    // publish cleanly.
    let encoders = match pre_encoded {
      Some(_) => Vec::new(),
      None => specs
        .iter()
        .map(|l| encoder_task::new_encoder(codec, l.width, l.height, l.encoding, source.is_screencast()))
        .collect::<RtcResult<Vec<_>>>()?,
    };

    let cid = new_cid();
    let layers: Vec<proto::VideoLayer> = specs.iter().map(simulcast::LayerSpec::to_proto).collect();
    let request = proto::AddTrackRequest {
      cid: cid.clone(),
      name: track.name(),
      r#type: proto::TrackType::Video as i32,
      width,
      height,
      source: options.source.to_proto() as i32,
      layers: layers.clone(),
      simulcast_codecs: vec![proto::SimulcastCodec {
        codec: codec.name().into(),
        cid: cid.clone(),
        layers,
        ..Default::default()
      }],
      disable_red: true,
      muted: track.is_muted(),
      // Any frame may carry metadata: receivers that know the trailer strip it, and the server
      // strips it for those that do not.
      packet_trailer_features: crate::frame_metadata::advertised_features(),
      ..Default::default()
    };
    // One slot per layer: each layer's encoder takes the newest frame on its own thread. A
    // pre-encoded track has one queue of frames instead.
    let encoded = source.attach_encoded();
    let slots: Vec<_> = match encoded {
      Some(_) => Vec::new(),
      None => specs.iter().map(|_| source.attach()).collect(),
    };
    let (reply, started) = oneshot::channel();
    let muted_at_request = request.muted;
    track.set_room(&self.inner.commands);
    let publish = PublishRequest {
      request,
      codec,
      track: track.clone(),
      slots: slots.clone(),
      encoded: encoded.clone(),
      layers: specs.clone(),
      reply,
    };
    if let Err(e) = self.command(Command::Publish(Box::new(publish))) {
      for slot in &slots {
        source.detach(slot);
      }
      if let Some(slot) = &encoded {
        source.detach_encoded(slot);
      }
      return Err(e);
    }
    // The engine drops a publish whose caller stopped waiting.
    let started = match tokio::time::timeout(PUBLISH_TIMEOUT, started).await {
      Ok(Ok(result)) => result?,
      Ok(Err(_)) => return Err(RtcError::NotConnected),
      Err(_) => {
        return Err(RtcError::PublishTimeout {
          name: track.name(),
          timeout_ms: PUBLISH_TIMEOUT.as_millis() as u64,
        })
      }
    };
    let publication = started.publication;
    let preference = options.degradation_preference.unwrap_or(if source.is_screencast() {
      DegradationPreference::MaintainResolution
    } else {
      DegradationPreference::Balanced
    });
    if let (Some(slot), Some(control)) = (encoded, started.controls.first()) {
      let params = EncodedSendParams {
        codec,
        encoding: specs[0].encoding,
        mid: started.mid.clone(),
        muted: track.muted_flag(),
        source: source.clone(),
      };
      if let Err(e) = encoded_sender::spawn(params, slot, control.clone(), started.bwe_bps.clone()) {
        let _ = self.unpublish_track(&publication.sid).await;
        return Err(e);
      }
    }
    let parts = specs.into_iter().zip(encoders).zip(slots).zip(started.controls);
    for (index, (((spec, encoder), slot), control)) in parts.enumerate() {
      let layer = started.layer_share.as_ref().map(|share| LayerParams {
        width: spec.width,
        height: spec.height,
        source_width: width,
        source_height: height,
        share: share.clone(),
        index,
      });
      let params = EncoderParams {
        encoding: spec.encoding,
        mid: started.mid.clone(),
        preference,
        layer,
        muted: track.muted_flag(),
      };
      if let Err(e) = encoder_task::spawn(params, encoder, slot, control, started.bwe_bps.clone()) {
        let _ = self.unpublish_track(&publication.sid).await;
        return Err(e);
      }
    }
    // (Un)muted while the server was confirming the track: tell it now.
    let muted = track.is_muted();
    if muted != muted_at_request {
      let _ = self.command(Command::MuteTrack {
        sid: publication.sid.clone(),
        muted,
      });
    }
    Ok(publication)
  }

  /// The send counters of a published track, `None` for an unknown sid.
  pub fn publish_stats(&self, sid: &str) -> Option<PublishStats> {
    let shared = lock(&self.inner.shared);
    let view = shared.publications.get(sid)?;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut stats = PublishStats {
      frames_captured: view.source.captured_frames(),
      // The top layer's: a frame it never saw was dropped for the full picture.
      frames_dropped: view.slots.last().map_or(0, |s| load(&s.dropped))
        + view.controls.iter().map(|c| load(&c.frames_dropped)).sum::<u64>(),
      available_outgoing_bitrate_bps: view.bwe.estimate(),
      ..Default::default()
    };
    for (control, spec) in view.controls.iter().zip(&view.layers) {
      let paused = control.paused.load(Ordering::Relaxed);
      let target = if paused { 0 } else { load(&control.bitrate_bps) };
      let (w, h) = (
        control.sent_width.load(Ordering::Relaxed),
        control.sent_height.load(Ordering::Relaxed),
      );
      stats.frames_encoded += load(&control.frames_encoded);
      stats.keyframes_encoded += load(&control.keyframes_encoded);
      stats.frames_unsent += load(&control.frames_unsent);
      stats.bytes_sent += load(&control.bytes_sent);
      stats.bitrate_bps += target;
      stats.frames_skipped += load(&control.frames_skipped);
      stats.available_bitrate_bps += load(&control.available_bps);
      if !paused && u64::from(w) * u64::from(h) > u64::from(stats.sent_width) * u64::from(stats.sent_height) {
        (stats.sent_width, stats.sent_height) = (w, h);
      }
      let sending = control.sending.lock().unwrap_or_else(|e| e.into_inner());
      let now = Instant::now();
      let skipped_lately = sending
        .last_skip
        .is_some_and(|t| now.duration_since(t) < Duration::from_secs(2));
      let smaller = w != 0 && u64::from(w) * u64::from(h) < u64::from(spec.width) * u64::from(spec.height);
      if let Some(rtt) = sending.transport.rtt {
        stats.round_trip_time = Some(rtt);
      }
      stats.layers.push(LayerPublishStats {
        rid: spec.rid.clone(),
        width: if w == 0 { spec.width } else { w },
        height: if h == 0 { spec.height } else { h },
        frames_encoded: load(&control.frames_encoded),
        keyframes_encoded: load(&control.keyframes_encoded),
        target_bitrate_bps: target,
        bytes_sent: load(&control.bytes_sent),
        paused,
        frames_per_second: sending.frames_per_second(now),
        transport_bytes_sent: sending.transport.bytes,
        packets_sent: sending.transport.packets,
        nack_count: sending.transport.nacks,
        pli_count: sending.transport.plis,
        fir_count: sending.transport.firs,
        quality_limitation_reason: if !paused && (skipped_lately || smaller) {
          "bandwidth"
        } else {
          "none"
        },
        encoder: sending.encoder,
      });
    }
    Some(stats)
  }

  /// Stops publishing the track with this sid: its encoder stops and the transceiver is removed
  /// with a renegotiation, which is how LiveKit clients unpublish.
  pub async fn unpublish_track(&self, sid: &str) -> RtcResult<LocalTrackPublication> {
    let (reply, done) = oneshot::channel();
    self.command(Command::Unpublish {
      sid: sid.to_string(),
      reply,
    })?;
    done.await.map_err(|_| RtcError::NotConnected)?
  }
}
