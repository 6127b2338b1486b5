//! The seam between the room engine and `lkrtc-transport`: one peer connection per role.
//! Everything the engine needs from WebRTC passes through here, so the transport's exact API
//! touches one file. Received video does not come this way as events: a subscribed track's
//! frames go from the transport's task straight to its decoder's bounded input
//! ([`Pc::set_video_sink`]); frames of a track without one are dropped here.

use std::net::IpAddr;

use lkrtc_transport::{
  Mid, OutgoingVideoFrame, TransportConfig, TransportEvent, TransportHandle, TransportRole, VideoSink,
};
use lkrtc_video::VideoRotation;
use tokio::sync::mpsc;

use crate::decoder_task::{DecoderInput, EncodedFrame};
use crate::options::VideoCodec;
use crate::stats::{EgressCounts, IngressCounts};
use crate::video_source::now_us;
use crate::{RtcError, RtcResult};

/// Which of LiveKit's two peer connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
  Publisher,
  Subscriber,
}

/// What a peer connection reports to the engine.
#[derive(Debug)]
pub enum PcEvent {
  LocalCandidate(String),
  NegotiationNeeded,
  Connected,
  Disconnected,
  /// Why, in words.
  Failed(String),
  KeyframeRequest {
    mid: String,
    /// The simulcast layer asked for; `None`: every layer.
    rid: Option<String>,
  },
  BitrateEstimate {
    bps: u64,
  },
  /// Publisher: how long the oldest packet of a sent track (layer) has waited in the pacer.
  SendQueue {
    mid: String,
    rid: Option<String>,
    delay: std::time::Duration,
  },
  /// Publisher: what the transport counted for a sent track (layer).
  EgressStats {
    mid: String,
    rid: Option<String>,
    counts: EgressCounts,
  },
  /// Subscriber: the server added a track; `stream_id` is `PA_xxx|TR_xxx`.
  TrackAdded {
    mid: String,
    stream_id: String,
    track_id: String,
    codec: Option<VideoCodec>,
  },
  TrackRemoved {
    mid: String,
  },
  /// A message on one of the connection's data channels.
  DataReceived {
    reliable: bool,
    data: Vec<u8>,
  },
}

/// One encoded frame for RTP packetisation.
pub struct OutgoingFrame {
  pub data: Vec<u8>,
  pub keyframe: bool,
  pub capture_time_us: i64,
  pub rotation: VideoRotation,
  /// The simulcast layer; `None` for a single-layer track.
  pub rid: Option<String>,
  /// The packet trailer's length at the end of `data` (0: none).
  pub trailer_len: usize,
}

/// Where the publisher's bandwidth estimate starts: str0m probes up from it within the first
/// second (libwebrtc starts at 300 kbit/s and probes to 3x and 6x of it).
const INITIAL_BITRATE_BPS: u64 = 1_000_000;

/// A cloneable handle on one peer connection.
#[derive(Clone)]
pub struct Pc {
  transport: TransportHandle,
}

fn transport_error(e: lkrtc_transport::TransportError) -> RtcError {
  match e {
    lkrtc_transport::TransportError::NoTurnServer(_) => RtcError::NoTurnServer { reason: e.to_string() },
    e => RtcError::Transport(e.to_string()),
  }
}

/// The ICE servers of the join response and whether to use relayed candidates only.
#[derive(Debug, Clone, Default)]
pub(crate) struct PcIce {
  pub servers: Vec<lkrtc_transport::IceServer>,
  pub relay_only: bool,
  /// Trust for `turns:` servers: the signalling's (public roots and `ca_certificates`).
  pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl PcIce {
  pub fn new(
    servers: &[livekit_protocol::IceServer],
    relay_only: bool,
    tls: std::sync::Arc<rustls::ClientConfig>,
  ) -> Self {
    PcIce {
      servers: servers
        .iter()
        .map(|s| lkrtc_transport::IceServer {
          urls: s.urls.clone(),
          username: s.username.clone(),
          credential: s.credential.clone(),
        })
        .collect(),
      relay_only,
      tls: Some(tls),
    }
  }
}

fn translate(event: TransportEvent) -> Option<PcEvent> {
  Some(match event {
    TransportEvent::LocalCandidate(json) => PcEvent::LocalCandidate(json),
    TransportEvent::NegotiationNeeded => PcEvent::NegotiationNeeded,
    TransportEvent::Connected => PcEvent::Connected,
    TransportEvent::Disconnected => PcEvent::Disconnected,
    TransportEvent::Failed { reason } => PcEvent::Failed(reason),
    TransportEvent::KeyframeRequest { mid, rid } => PcEvent::KeyframeRequest {
      mid: mid.to_string(),
      rid,
    },
    TransportEvent::BitrateEstimate { bps } => PcEvent::BitrateEstimate { bps },
    TransportEvent::SendQueue { mid, rid, delay } => PcEvent::SendQueue {
      mid: mid.to_string(),
      rid,
      delay,
    },
    TransportEvent::EgressStats {
      mid,
      rid,
      bytes,
      packets,
      nacks,
      plis,
      firs,
      rtt,
    } => PcEvent::EgressStats {
      mid: mid.to_string(),
      rid,
      counts: EgressCounts {
        bytes,
        packets,
        nacks,
        plis,
        firs,
        rtt,
      },
    },
    TransportEvent::TrackAdded {
      mid,
      stream_id,
      track_id,
      codec,
    } => PcEvent::TrackAdded {
      mid: mid.to_string(),
      stream_id,
      track_id,
      codec: Some(codec),
    },
    TransportEvent::TrackRemoved { mid } => PcEvent::TrackRemoved { mid: mid.to_string() },
    // A frame of a track without a sink (not subscribed, or not yet): nobody decodes it.
    TransportEvent::VideoFrame { .. } | TransportEvent::IngressStats { .. } => return None,
    TransportEvent::DataReceived { reliable, data } => PcEvent::DataReceived { reliable, data },
  })
}

impl Pc {
  /// Starts a transport bound to `bind_ip` (the local address that reaches the server), without
  /// TURN.
  #[cfg(test)]
  pub async fn start(role: Role, bind_ip: IpAddr) -> RtcResult<(Pc, mpsc::UnboundedReceiver<PcEvent>)> {
    Self::start_with_ice(role, bind_ip, PcIce::default()).await
  }

  /// Starts a transport bound to `bind_ip` (the local address that reaches the server), with the
  /// TURN servers and policy of `ice`.
  pub async fn start_with_ice(
    role: Role,
    bind_ip: IpAddr,
    ice: PcIce,
  ) -> RtcResult<(Pc, mpsc::UnboundedReceiver<PcEvent>)> {
    let transport_role = match role {
      Role::Publisher => TransportRole::Publisher,
      Role::Subscriber => TransportRole::Subscriber,
    };
    let mut config = TransportConfig::new(transport_role, bind_ip);
    // Send-side bandwidth estimation from transport-wide congestion control feedback, and
    // str0m's pacer at 1.1 x the estimate. The encoders keep to their share of the estimate
    // and skip frames rather than let the pacer's queue grow (encoder_task.rs).
    config.initial_bitrate_bps = Some(INITIAL_BITRATE_BPS);
    config.ice_servers = ice.servers;
    config.relay_only = ice.relay_only;
    config.tls_config = ice.tls;
    let (transport, mut events) = TransportHandle::start(config).await.map_err(transport_error)?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
      while let Some(event) = events.recv().await {
        if let Some(event) = translate(event) {
          if tx.send(event).is_err() {
            break;
          }
        }
      }
    });
    Ok((Pc { transport }, rx))
  }

  /// `rids`: the simulcast layers, lowest first (empty: one stream).
  pub async fn add_video_track(
    &self,
    stream_id: &str,
    track_id: &str,
    codec: VideoCodec,
    rids: &[String],
  ) -> RtcResult<String> {
    let mid = self
      .transport
      .add_video_track(stream_id, track_id, codec, rids)
      .await
      .map_err(transport_error)?;
    Ok(mid.to_string())
  }

  pub async fn remove_track(&self, mid: &str) -> RtcResult<()> {
    self
      .transport
      .remove_track(Mid::from(mid))
      .await
      .map_err(transport_error)
  }

  /// The offer, or `None` when there is nothing to negotiate (no track, data channel or ICE
  /// change yet).
  pub async fn create_offer(&self, ice_restart: bool) -> RtcResult<Option<String>> {
    match self.transport.create_offer(ice_restart).await {
      Ok(sdp) => Ok(Some(sdp)),
      Err(lkrtc_transport::TransportError::NothingToNegotiate) => Ok(None),
      Err(e) => Err(transport_error(e)),
    }
  }

  pub async fn apply_answer(&self, sdp: &str) -> RtcResult<()> {
    self.transport.apply_answer(sdp).await.map_err(transport_error)
  }

  pub async fn apply_offer(&self, sdp: &str) -> RtcResult<String> {
    self.transport.apply_offer(sdp).await.map_err(transport_error)
  }

  pub async fn add_remote_candidate(&self, candidate_init: &str) -> RtcResult<()> {
    self
      .transport
      .add_remote_candidate(candidate_init)
      .map_err(transport_error)
  }

  /// Called from encoder threads: queues the frame and returns at once.
  pub fn write_video(&self, mid: &str, frame: OutgoingFrame) -> RtcResult<()> {
    self.transport.write_video(
      Mid::from(mid),
      OutgoingVideoFrame {
        data: frame.data,
        keyframe: frame.keyframe,
        capture_time_us: frame.capture_time_us,
        rotation: frame.rotation as u8,
        rid: frame.rid,
        trailer_len: frame.trailer_len,
      },
    );
    Ok(())
  }

  /// Sends the received frames of `mid` to `input` from now on, on the transport's task; `None`
  /// drops the input (ending its decoder).
  pub fn set_video_sink(&self, mid: &str, input: Option<DecoderInput>) {
    let sink = input.map(|mut input| -> VideoSink {
      Box::new(move |event| match event {
        TransportEvent::VideoFrame {
          data,
          codec,
          keyframe,
          contiguous,
          rtp_time,
          capture_time_us,
          rotation,
          ..
        } => input.push(EncodedFrame {
          data,
          codec,
          keyframe,
          contiguous,
          rtp_time,
          capture_time_us,
          arrival_us: now_us(),
          rotation: VideoRotation::from_u32(u32::from(rotation)).unwrap_or(VideoRotation::Rotation0),
        }),
        TransportEvent::IngressStats {
          bytes,
          packets,
          lost,
          nacks,
          plis,
          firs,
          jitter_s,
          ..
        } => {
          input.ingress(IngressCounts {
            bytes,
            packets,
            lost,
            nacks,
            plis,
            firs,
            jitter_s,
          });
          false
        }
        _ => false,
      })
    });
    self.transport.set_video_sink(Mid::from(mid), sink);
  }

  /// Sends a data message on `_reliable` or `_lossy` (queued in call order before this
  /// returns); the future says whether it was taken or refused because too much waits already.
  pub fn send_data(
    &self,
    reliable: bool,
    data: Vec<u8>,
  ) -> impl std::future::Future<Output = RtcResult<()>> + Send + 'static {
    let sent = self.transport.send_data(reliable, data);
    async move {
      sent.await.map_err(|e| match e {
        lkrtc_transport::TransportError::DataBacklog { .. } => RtcError::DataBacklog { reason: e.to_string() },
        e => transport_error(e),
      })
    }
  }

  /// Publisher: the sum of the tracks' max bitrates, which the estimator probes towards.
  /// `padding_bps`: what the pacer pads up to while the media sends less.
  pub fn set_desired_bitrate(&self, bps: u64, padding_bps: u64) {
    self.transport.set_desired_bitrate(bps, padding_bps);
  }

  /// Asks the sender of `mid` for a keyframe (PLI). Called from decoder threads.
  pub fn request_keyframe(&self, mid: &str) {
    self.transport.request_keyframe(Mid::from(mid));
  }

  pub async fn close(&self) {
    self.transport.close().await
  }
}
