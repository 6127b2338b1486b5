//! A LiveKit room for the TypeScript facade: connect, read the next event, publish, subscribe,
//! disconnect. Participants and publications cross as plain snapshots; the facade keeps the
//! object graph and emits the events.

use std::collections::HashMap;
use std::sync::Arc;

use lkrtc_rtc as rtc;
use lkrtc_rtc::{ConnectionState, TrackKind, TrackSource, VideoCodec};
use napi::bindgen_prelude::Result;
use napi::bindgen_prelude::{Buffer, PromiseRaw, Uint8Array};
use napi::Env;
use napi_derive::napi;
use tokio::sync::{mpsc, Mutex};

use crate::error::{describe_number, describe_string, js_error, spawn_js, JsResultExt};
use crate::video_source::NativeLocalVideoTrack;

/// A track publication as the server last described it.
#[napi(object, object_from_js = false)]
pub struct TrackPublicationInfo {
  pub sid: String,
  pub name: String,
  pub kind: TrackKind,
  pub source: TrackSource,
  pub width: u32,
  pub height: u32,
  /// e.g. `video/VP8`; empty until the server knows the codec.
  pub mime_type: String,
  pub muted: bool,
  pub simulcast: bool,
  /// Its frames may carry metadata (it advertises LiveKit's packet trailer features).
  pub frame_metadata: bool,
}

impl From<rtc::RemoteTrackPublication> for TrackPublicationInfo {
  fn from(p: rtc::RemoteTrackPublication) -> Self {
    Self {
      sid: p.sid,
      name: p.name,
      kind: p.kind,
      source: p.source,
      width: p.width,
      height: p.height,
      mime_type: p.mime_type,
      muted: p.muted,
      simulcast: p.simulcast,
      frame_metadata: p.frame_metadata,
    }
  }
}

impl From<rtc::LocalTrackPublication> for TrackPublicationInfo {
  fn from(p: rtc::LocalTrackPublication) -> Self {
    Self {
      sid: p.sid,
      name: p.name,
      kind: p.kind,
      source: p.source,
      width: p.width,
      height: p.height,
      mime_type: p.mime_type,
      muted: p.muted,
      simulcast: p.simulcasted,
      frame_metadata: p.frame_metadata,
    }
  }
}

/// A participant as the server last described it.
#[napi(object, object_from_js = false)]
pub struct ParticipantInfo {
  pub sid: String,
  pub identity: String,
  pub name: String,
  pub metadata: String,
  pub attributes: HashMap<String, String>,
  /// Remote participants only; empty for the local one.
  pub track_publications: Vec<TrackPublicationInfo>,
}

impl From<rtc::RemoteParticipant> for ParticipantInfo {
  fn from(p: rtc::RemoteParticipant) -> Self {
    let track_publications = p.track_publications().into_values().map(Into::into).collect();
    Self {
      sid: p.sid,
      identity: p.identity,
      name: p.name,
      metadata: p.metadata,
      attributes: p.attributes,
      track_publications,
    }
  }
}

/// A remote video track being received; read it with a `NativeVideoStream`.
#[napi]
pub struct NativeRemoteVideoTrack {
  pub(crate) inner: rtc::RemoteVideoTrack,
}

#[napi]
impl NativeRemoteVideoTrack {
  #[napi(getter)]
  pub fn sid(&self) -> String {
    self.inner.sid()
  }

  /// Its receive statistics now.
  #[napi]
  pub fn get_stats(&self) -> NativeInboundVideoStats {
    self.inner.get_stats().into()
  }

  #[napi(getter)]
  pub fn name(&self) -> String {
    self.inner.name()
  }

  #[napi(getter)]
  pub fn participant_identity(&self) -> String {
    self.inner.participant_identity()
  }

  /// True once the track was unsubscribed or its room disconnected: new streams end at once.
  #[napi(getter)]
  pub fn is_ended(&self) -> bool {
    self.inner.is_ended()
  }

  /// Why the track ended; `null` while it runs.
  #[napi(
    getter,
    ts_return_type = "'unsubscribed' | 'unpublished' | 'participantLeft' | 'rejoined' | 'disconnected' | null"
  )]
  pub fn end_reason(&self) -> Option<&'static str> {
    self.inner.end_reason().map(|r| r.as_str())
  }

  /// The track that carries on from this one after a full rejoin ended it (its publisher's
  /// track of the same source and name, once subscribed); `null` until then.
  #[napi(getter)]
  pub fn successor(&self) -> Option<NativeRemoteVideoTrack> {
    self.inner.successor().map(|inner| NativeRemoteVideoTrack { inner })
  }
}

/// One room event: `type` says which, and each type has its own fields.
#[napi(discriminant = "type", discriminant_case = "camelCase", object_from_js = false)]
pub enum NativeRoomEvent {
  ParticipantConnected {
    participant: ParticipantInfo,
  },
  ParticipantDisconnected {
    participant: ParticipantInfo,
  },
  TrackPublished {
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  TrackUnpublished {
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  TrackMuted {
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  TrackUnmuted {
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  TrackUpdated {
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  TrackSubscribed {
    track: NativeRemoteVideoTrack,
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  TrackUnsubscribed {
    track: NativeRemoteVideoTrack,
    publication: TrackPublicationInfo,
    participant: ParticipantInfo,
  },
  LocalTrackPublished {
    publication: TrackPublicationInfo,
  },
  LocalTrackUnpublished {
    publication: TrackPublicationInfo,
  },
  ConnectionStateChanged {
    state: ConnectionState,
  },
  DataReceived {
    payload: Buffer,
    kind: rtc::DataPacketKind,
    topic: Option<String>,
    /// The sender, when it is a participant the room knows.
    participant: Option<ParticipantInfo>,
    /// The sender's identity; empty for the server.
    sender_identity: String,
  },
  Reconnecting,
  Reconnected,
  Disconnected {
    reason: String,
  },
}

impl NativeRoomEvent {
  /// The JS form of a core event; `None` for events the binding does not forward.
  fn from_core(event: rtc::RoomEvent) -> Option<Self> {
    use rtc::RoomEvent as E;
    Some(match event {
      E::ParticipantConnected { participant } => Self::ParticipantConnected {
        participant: participant.into(),
      },
      E::ParticipantDisconnected { participant } => Self::ParticipantDisconnected {
        participant: participant.into(),
      },
      E::TrackPublished {
        publication,
        participant,
      } => Self::TrackPublished {
        publication: publication.into(),
        participant: participant.into(),
      },
      E::TrackUnpublished {
        publication,
        participant,
      } => Self::TrackUnpublished {
        publication: publication.into(),
        participant: participant.into(),
      },
      E::TrackMuted {
        publication,
        participant,
      } => Self::TrackMuted {
        publication: publication.into(),
        participant: participant.into(),
      },
      E::TrackUnmuted {
        publication,
        participant,
      } => Self::TrackUnmuted {
        publication: publication.into(),
        participant: participant.into(),
      },
      E::TrackUpdated {
        publication,
        participant,
      } => Self::TrackUpdated {
        publication: publication.into(),
        participant: participant.into(),
      },
      E::TrackSubscribed {
        track,
        publication,
        participant,
      } => Self::TrackSubscribed {
        track: NativeRemoteVideoTrack { inner: track },
        publication: publication.into(),
        participant: participant.into(),
      },
      E::TrackUnsubscribed {
        track,
        publication,
        participant,
      } => Self::TrackUnsubscribed {
        track: NativeRemoteVideoTrack { inner: track },
        publication: publication.into(),
        participant: participant.into(),
      },
      E::LocalTrackPublished { publication } => Self::LocalTrackPublished {
        publication: publication.into(),
      },
      E::LocalTrackUnpublished { publication } => Self::LocalTrackUnpublished {
        publication: publication.into(),
      },
      E::ConnectionStateChanged { state } => Self::ConnectionStateChanged { state },
      // The ticket drops here: the bytes are the application's from now on.
      E::DataReceived {
        payload,
        kind,
        topic,
        participant,
        sender_identity,
        ticket: _,
      } => Self::DataReceived {
        payload: payload.into(),
        kind,
        topic,
        participant: participant.map(Into::into),
        sender_identity,
      },
      E::Reconnecting => Self::Reconnecting,
      E::Reconnected => Self::Reconnected,
      E::Disconnected { reason } => Self::Disconnected { reason },
      _ => return None,
    })
  }
}

/// The codec named `name` (lkrtc-video's parser), or ERR_INVALID_ARGUMENT.
fn video_codec(name: &str) -> Result<VideoCodec, String> {
  VideoCodec::from_name(name).ok().ok_or_else(|| {
    js_error(
      "ERR_INVALID_ARGUMENT",
      format!(
        "invalid videoCodec: expected 'vp8', 'h264', 'vp9' or 'av1', got {}",
        describe_string(name)
      ),
    )
  })
}

/// The canonical name (`vp8`, `h264`, `vp9`) of the codec `name` names; throws ERR_INVALID_ARGUMENT
/// for a name lkrtc does not know. Lets the facade check an argument before it needs a room.
#[napi(ts_return_type = "'vp8' | 'h264' | 'vp9' | 'av1'")]
pub fn native_video_codec_name(name: String) -> Result<&'static str, String> {
  Ok(video_codec(&name)?.name())
}

/// The encoder limits of `videoEncoding`, checked against the core's range.
fn video_encoding_limits(
  max_bitrate: Option<f64>,
  max_framerate: Option<f64>,
) -> Result<(Option<u64>, Option<f64>), String> {
  let bitrate = max_bitrate
    .map(|bps| {
      rtc::VideoEncoding::max_bitrate_from(bps).ok_or_else(|| {
        js_error(
          "ERR_INVALID_ARGUMENT",
          format!(
            "invalid videoEncoding.maxBitrate: expected an integer from {} to {}, got {}",
            rtc::VideoEncoding::MIN_BITRATE,
            rtc::VideoEncoding::MAX_BITRATE,
            describe_number(bps)
          ),
        )
      })
    })
    .transpose()?;
  let framerate = max_framerate
    .map(|fps| {
      rtc::VideoEncoding::max_framerate_from(fps).ok_or_else(|| {
        js_error(
          "ERR_INVALID_ARGUMENT",
          format!(
            "invalid videoEncoding.maxFramerate: expected a number above 0 and at most {}, got {}",
            rtc::VideoEncoding::MAX_FRAMERATE,
            describe_number(fps)
          ),
        )
      })
    })
    .transpose()?;
  Ok((bitrate, framerate))
}

/// Checks `videoEncoding`'s limits against the encoders' range (ERR_INVALID_ARGUMENT), so the
/// facade can refuse them before it needs a room.
#[napi]
pub fn native_check_video_encoding(max_bitrate: Option<f64>, max_framerate: Option<f64>) -> Result<(), String> {
  video_encoding_limits(max_bitrate, max_framerate).map(|_| ())
}

/// A remote video track's receive statistics (see `rtc::InboundVideoStats`).
#[napi(object)]
pub struct NativeInboundVideoStats {
  pub frames_received: f64,
  pub frames_decoded: f64,
  pub key_frames_decoded: f64,
  pub frames_dropped: f64,
  pub frames_per_second: f64,
  pub bytes_received: f64,
  pub packets_received: f64,
  pub packets_lost: f64,
  pub jitter: f64,
  pub nack_count: f64,
  pub pli_count: f64,
  pub fir_count: f64,
  pub freeze_count: f64,
  pub total_freezes_duration: f64,
  pub frame_width: u32,
  pub frame_height: u32,
  pub decoder_implementation: String,
  pub jitter_buffer_delay: f64,
  pub jitter_buffer_target_delay: f64,
  pub jitter_buffer_emitted_count: f64,
}

impl From<rtc::InboundVideoStats> for NativeInboundVideoStats {
  fn from(s: rtc::InboundVideoStats) -> Self {
    Self {
      frames_received: s.frames_received as f64,
      frames_decoded: s.frames_decoded as f64,
      key_frames_decoded: s.key_frames_decoded as f64,
      frames_dropped: s.frames_dropped as f64,
      frames_per_second: s.frames_per_second,
      bytes_received: s.bytes_received as f64,
      packets_received: s.packets_received as f64,
      packets_lost: s.packets_lost as f64,
      jitter: s.jitter,
      nack_count: s.nack_count as f64,
      pli_count: s.pli_count as f64,
      fir_count: s.fir_count as f64,
      freeze_count: s.freeze_count as f64,
      total_freezes_duration: s.total_freezes_duration,
      frame_width: s.frame_width,
      frame_height: s.frame_height,
      decoder_implementation: s.decoder,
      jitter_buffer_delay: s.jitter_buffer_delay,
      jitter_buffer_target_delay: s.jitter_buffer_target_delay,
      jitter_buffer_emitted_count: s.jitter_buffer_emitted_count as f64,
    }
  }
}

/// How to join a room.
#[napi(object)]
pub struct NativeConnectOptions {
  /// Subscribe to every published track (default `true`).
  pub auto_subscribe: Option<bool>,
  pub adaptive_stream: Option<bool>,
  /// Bound on the whole connect in milliseconds: an integer from 1 to 2**31 - 1 (default 10000).
  pub connect_timeout_ms: Option<f64>,
  /// Extra CA certificates (PEM) to trust for `wss://`, besides the public roots.
  pub ca_certificates: Option<String>,
  /// Pause simulcast layers no subscriber watches (default `false`).
  pub dynacast: Option<bool>,
  /// Receive frame metadata (default `true`).
  pub frame_metadata: Option<bool>,
  /// `'all'` (default) or `'relay'`: which local ICE candidates to use.
  pub ice_transport_policy: Option<String>,
}

/// A lower simulcast layer to send.
#[napi(object)]
pub struct NativeSimulcastLayer {
  pub width: f64,
  pub height: f64,
  pub max_bitrate: f64,
  pub max_framerate: f64,
}

/// How to publish a track.
#[napi(object)]
pub struct NativePublishOptions {
  pub source: Option<TrackSource>,
  #[napi(ts_type = "'vp8' | 'h264' | 'vp9' | 'av1'")]
  pub video_codec: Option<String>,
  /// Bits per second; with `maxFramerate`, overrides LiveKit's preset for the resolution.
  pub max_bitrate: Option<f64>,
  pub max_framerate: Option<f64>,
  #[napi(ts_type = "'balanced' | 'maintain-framerate' | 'maintain-resolution'")]
  pub degradation_preference: Option<String>,
  /// Send several layers (default `true`).
  pub simulcast: Option<bool>,
  /// The lower layers (default: LiveKit's).
  pub simulcast_layers: Option<Vec<NativeSimulcastLayer>>,
}

/// The local participant.
#[napi(object, object_from_js = false)]
pub struct LocalParticipantInfo {
  pub sid: String,
  pub identity: String,
  pub name: String,
  pub metadata: String,
}

/// The send counters of a published track.
#[napi(object, object_from_js = false)]
pub struct PublishStats {
  pub frames_captured: i64,
  pub frames_dropped: i64,
  pub frames_encoded: i64,
  pub keyframes_encoded: i64,
  pub frames_unsent: i64,
  pub bytes_sent: i64,
  pub bitrate_bps: i64,
  /// Frames not encoded because the link was congested.
  pub frames_skipped: i64,
  /// The track's share of the send-side bandwidth estimate (0 before the first estimate).
  pub available_bitrate_bps: i64,
  /// The size of the picture sent: smaller than the source's when the link is short.
  pub sent_width: u32,
  pub sent_height: u32,
  /// Per simulcast layer, lowest first (one entry without simulcast).
  pub layers: Vec<LayerPublishStats>,
  /// Seconds, from the server's receiver reports; absent until known.
  pub round_trip_time: Option<f64>,
  /// The connection's send-side bandwidth estimate, bits per second (0 before the first).
  pub available_outgoing_bitrate: f64,
}

/// The send counters of one layer of a published track.
#[napi(object, object_from_js = false)]
pub struct LayerPublishStats {
  /// `q`, `h` or `f`; empty for a track sent without simulcast.
  pub rid: String,
  pub width: u32,
  pub height: u32,
  pub frames_encoded: i64,
  pub keyframes_encoded: i64,
  /// The encoder's current target, 0 while paused.
  pub target_bitrate: i64,
  pub bytes_sent: i64,
  /// No bits for it in the estimate, or (dynacast) no subscriber watches it.
  pub paused: bool,
  /// Frames encoded over the last second.
  pub frames_per_second: f64,
  /// RTP bytes and packets sent by the transport, retransmissions included.
  pub transport_bytes_sent: i64,
  pub packets_sent: i64,
  /// NACK, PLI and FIR messages received for the layer.
  pub nack_count: i64,
  pub pli_count: i64,
  pub fir_count: i64,
  #[napi(ts_type = "'bandwidth' | 'none'")]
  pub quality_limitation_reason: String,
  /// `libvpx` or `openh264`; empty before the first frame.
  pub encoder_implementation: String,
}

/// What was chosen for a remote video track; `width` and `height` when a size was chosen last,
/// `quality` otherwise.
#[napi(object, object_from_js = false)]
pub struct NativeTrackSettings {
  pub enabled: bool,
  pub quality: Option<rtc::VideoQuality>,
  pub width: Option<u32>,
  pub height: Option<u32>,
}

/// A joined room.
#[napi]
pub struct NativeRoom {
  room: rtc::Room,
  events: Arc<Mutex<mpsc::UnboundedReceiver<rtc::RoomEvent>>>,
}

#[napi]
impl NativeRoom {
  /// Joins the room at `url` with an access token. Rejects with `ERR_INVALID_URL`,
  /// `ERR_INVALID_CERTIFICATE`, `ERR_CONNECTION_REFUSED`, `ERR_TLS`, `ERR_UNAUTHORIZED`,
  /// `ERR_CONNECT_TIMEOUT`, ...
  #[napi(ts_return_type = "Promise<NativeRoom>")]
  pub fn connect<'env>(
    env: &'env Env,
    url: String,
    token: String,
    options: Option<NativeConnectOptions>,
  ) -> Result<PromiseRaw<'env, NativeRoom>, String> {
    crate::log::init_from_env();
    let mut room_options = rtc::RoomOptions::default();
    if let Some(o) = options {
      room_options.auto_subscribe = o.auto_subscribe.unwrap_or(room_options.auto_subscribe);
      room_options.adaptive_stream = o.adaptive_stream.unwrap_or(room_options.adaptive_stream);
      if let Some(ms) = o.connect_timeout_ms {
        room_options.connect_timeout = rtc::RoomOptions::connect_timeout_from_ms(ms).ok_or_else(|| {
          js_error(
            "ERR_INVALID_ARGUMENT",
            format!(
              "invalid connectTimeoutMs: expected an integer from 1 to {}, got {}",
              rtc::RoomOptions::MAX_CONNECT_TIMEOUT_MS,
              describe_number(ms)
            ),
          )
        })?;
      }
      room_options.ca_certificates = o.ca_certificates;
      room_options.dynacast = o.dynacast.unwrap_or(room_options.dynacast);
      room_options.frame_metadata = o.frame_metadata.unwrap_or(room_options.frame_metadata);
      if let Some(name) = o.ice_transport_policy {
        room_options.ice_transport_policy = rtc::IceTransportPolicy::from_name(&name).ok_or_else(|| {
          js_error(
            "ERR_INVALID_ARGUMENT",
            format!("invalid iceTransportPolicy: expected 'all' or 'relay', got {name:?}"),
          )
        })?;
      }
    }
    spawn_js(
      env,
      async move { rtc::Room::connect(&url, &token, room_options).await.js() },
      |_, (room, events)| {
        Ok(NativeRoom {
          room,
          events: Arc::new(Mutex::new(events)),
        })
      },
    )
  }

  /// The next event, in order; `null` once the room has ended (after `disconnected`).
  #[napi(ts_return_type = "Promise<NativeRoomEvent | null>")]
  pub fn next_event<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Option<NativeRoomEvent>>, String> {
    let events = self.events.clone();
    spawn_js(
      env,
      async move {
        let mut events = events.lock().await;
        loop {
          match events.recv().await {
            None => return Ok(None),
            Some(event) => {
              if let Some(event) = NativeRoomEvent::from_core(event) {
                return Ok(Some(event));
              }
            }
          }
        }
      },
      |_, event| Ok(event),
    )
  }

  #[napi(getter)]
  pub fn name(&self) -> String {
    self.room.name()
  }

  #[napi(getter)]
  pub fn sid(&self) -> String {
    self.room.sid()
  }

  #[napi(getter)]
  pub fn is_connected(&self) -> bool {
    self.room.is_connected()
  }

  /// Test hook: the server drops this session without a word, as a failing node does; the room
  /// then joins again while the other participants stay. Not part of the public API.
  #[napi]
  pub fn simulate_node_failure(&self) {
    self.room.simulate_node_failure();
  }

  #[napi(getter)]
  pub fn connection_state(&self) -> ConnectionState {
    self.room.connection_state()
  }

  #[napi(getter)]
  pub fn local_participant(&self) -> LocalParticipantInfo {
    let local = self.room.local_participant();
    LocalParticipantInfo {
      sid: local.sid(),
      identity: local.identity(),
      name: local.name(),
      metadata: local.metadata(),
    }
  }

  /// A snapshot of the other participants.
  #[napi]
  pub fn remote_participants(&self) -> Vec<ParticipantInfo> {
    self.room.remote_participants().into_values().map(Into::into).collect()
  }

  /// Publishes a video track; resolves once the server confirmed it and media flows.
  #[napi(ts_return_type = "Promise<TrackPublicationInfo>")]
  pub fn publish_track<'env>(
    &self,
    env: &'env Env,
    track: &NativeLocalVideoTrack,
    options: Option<NativePublishOptions>,
  ) -> Result<PromiseRaw<'env, TrackPublicationInfo>, String> {
    let mut publish = rtc::TrackPublishOptions::default();
    if let Some(o) = options {
      if let Some(source) = o.source {
        publish.source = source;
      }
      if let Some(codec) = o.video_codec {
        publish.video_codec = video_codec(&codec)?;
      }
      if let Some(name) = o.degradation_preference {
        publish.degradation_preference = Some(rtc::DegradationPreference::from_name(&name).ok_or_else(|| {
          js_error(
            "ERR_INVALID_ARGUMENT",
            format!(
              "invalid degradationPreference: expected 'balanced', 'maintain-framerate' or 'maintain-resolution', got {name:?}"
            ),
          )
        })?);
      }
      publish.simulcast = o.simulcast.unwrap_or(publish.simulcast);
      if let Some(layers) = o.simulcast_layers {
        let presets = layers
          .iter()
          .enumerate()
          .map(|(i, l)| rtc::simulcast::VideoPreset::from_numbers(i, l.width, l.height, l.max_bitrate, l.max_framerate))
          .collect::<rtc::RtcResult<Vec<_>>>()
          .js()?;
        publish.simulcast_layers = Some(presets);
      }
      let (max_bitrate, max_framerate) = video_encoding_limits(o.max_bitrate, o.max_framerate)?;
      if max_bitrate.is_some() || max_framerate.is_some() {
        let default = rtc::default_video_encoding(
          track.inner.source().width(),
          track.inner.source().height(),
          track.inner.source().is_screencast(),
        );
        publish.video_encoding = Some(rtc::VideoEncoding {
          max_bitrate: max_bitrate.unwrap_or(default.max_bitrate),
          max_framerate: max_framerate.unwrap_or(default.max_framerate),
        });
      }
    }
    let local = self.room.local_participant();
    let track = track.inner.clone();
    spawn_js(
      env,
      async move { local.publish_track(&track, publish).await.js() },
      |_, publication| Ok(TrackPublicationInfo::from(publication)),
    )
  }

  /// Stops publishing the track with this sid.
  #[napi(ts_return_type = "Promise<TrackPublicationInfo>")]
  pub fn unpublish_track<'env>(
    &self,
    env: &'env Env,
    sid: String,
  ) -> Result<PromiseRaw<'env, TrackPublicationInfo>, String> {
    let local = self.room.local_participant();
    spawn_js(
      env,
      async move { local.unpublish_track(&sid).await.js() },
      |_, publication| Ok(TrackPublicationInfo::from(publication)),
    )
  }

  /// The send counters of one of our published tracks; `null` for an unknown sid.
  #[napi]
  pub fn publish_stats(&self, sid: String) -> Option<PublishStats> {
    let s = self.room.local_participant().publish_stats(&sid)?;
    Some(PublishStats {
      frames_captured: s.frames_captured as i64,
      frames_dropped: s.frames_dropped as i64,
      frames_encoded: s.frames_encoded as i64,
      keyframes_encoded: s.keyframes_encoded as i64,
      frames_unsent: s.frames_unsent as i64,
      bytes_sent: s.bytes_sent as i64,
      bitrate_bps: s.bitrate_bps as i64,
      frames_skipped: s.frames_skipped as i64,
      available_bitrate_bps: s.available_bitrate_bps as i64,
      sent_width: s.sent_width,
      sent_height: s.sent_height,
      layers: s
        .layers
        .into_iter()
        .map(|l| LayerPublishStats {
          rid: l.rid,
          width: l.width,
          height: l.height,
          frames_encoded: l.frames_encoded as i64,
          keyframes_encoded: l.keyframes_encoded as i64,
          target_bitrate: l.target_bitrate_bps as i64,
          bytes_sent: l.bytes_sent as i64,
          paused: l.paused,
          frames_per_second: l.frames_per_second,
          transport_bytes_sent: l.transport_bytes_sent as i64,
          packets_sent: l.packets_sent as i64,
          nack_count: l.nack_count as i64,
          pli_count: l.pli_count as i64,
          fir_count: l.fir_count as i64,
          quality_limitation_reason: l.quality_limitation_reason.to_string(),
          encoder_implementation: l.encoder.to_string(),
        })
        .collect(),
      round_trip_time: s.round_trip_time.map(|d| d.as_secs_f64()),
      available_outgoing_bitrate: s.available_outgoing_bitrate_bps as f64,
    })
  }

  /// Subscribes to (or unsubscribes from) a remote track by sid.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn set_subscribed<'env>(
    &self,
    env: &'env Env,
    track_sid: String,
    subscribed: bool,
  ) -> Result<PromiseRaw<'env, ()>, String> {
    let room = self.room.clone();
    spawn_js(
      env,
      async move { room.set_subscribed(&track_sid, subscribed).await.js() },
      |_, ()| Ok(()),
    )
  }

  /// Sends a data message (see `LocalParticipant::publish_data`).
  #[napi(ts_return_type = "Promise<void>")]
  pub fn publish_data<'env>(
    &self,
    env: &'env Env,
    payload: Uint8Array,
    reliable: bool,
    topic: Option<String>,
    destination_identities: Vec<String>,
  ) -> Result<PromiseRaw<'env, ()>, String> {
    let options = rtc::DataPublishOptions {
      reliable,
      topic,
      destination_identities,
    };
    // Queued now, on the JS thread, so that messages keep the order of the calls.
    let sent = self.room.local_participant().publish_data(&payload, options);
    spawn_js(env, async move { sent.await.js() }, |_, ()| Ok(()))
  }

  /// Asks for a layer of a simulcast video track by quality.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn set_video_quality<'env>(
    &self,
    env: &'env Env,
    track_sid: String,
    quality: rtc::VideoQuality,
  ) -> Result<PromiseRaw<'env, ()>, String> {
    let room = self.room.clone();
    spawn_js(
      env,
      async move { room.set_video_quality(&track_sid, quality).await.js() },
      |_, ()| Ok(()),
    )
  }

  /// Asks for the smallest layer of a video track at least `width` x `height`.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn set_video_dimensions<'env>(
    &self,
    env: &'env Env,
    track_sid: String,
    width: u32,
    height: u32,
  ) -> Result<PromiseRaw<'env, ()>, String> {
    let room = self.room.clone();
    spawn_js(
      env,
      async move { room.set_video_dimensions(&track_sid, width, height).await.js() },
      |_, ()| Ok(()),
    )
  }

  /// Pauses or resumes a video track without unsubscribing.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn set_track_enabled<'env>(
    &self,
    env: &'env Env,
    track_sid: String,
    enabled: bool,
  ) -> Result<PromiseRaw<'env, ()>, String> {
    let room = self.room.clone();
    spawn_js(
      env,
      async move { room.set_track_enabled(&track_sid, enabled).await.js() },
      |_, ()| Ok(()),
    )
  }

  /// What was chosen for a remote video track (the default for a sid never set).
  #[napi]
  pub fn track_settings(&self, track_sid: String) -> NativeTrackSettings {
    let s = self.room.track_settings(&track_sid);
    NativeTrackSettings {
      enabled: s.enabled,
      quality: s.quality,
      width: s.dimensions.map(|(w, _)| w),
      height: s.dimensions.map(|(_, h)| h),
    }
  }

  /// Leaves the room; the event stream ends after a `disconnected` event. Idempotent.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn disconnect<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>, String> {
    let room = self.room.clone();
    spawn_js(
      env,
      async move {
        room.disconnect().await;
        Ok(())
      },
      |_, ()| Ok(()),
    )
  }
}
