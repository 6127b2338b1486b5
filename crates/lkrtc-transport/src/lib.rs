//! lkrtc-transport: one WebRTC peer connection per [`PeerTransport`], as LiveKit uses two (the
//! publisher and the subscriber). str0m does ICE, DTLS/SRTP, RTP (packetization, NACK/RTX,
//! PLI/FIR, TWCC) and SCTP data channels sans-IO; a small tokio task per transport owns the UDP
//! socket (and the ICE-TCP connections used when UDP cannot pass) and drives it.
//!
//! Publisher flow (we offer):
//! ```no_run
//! # use lkrtc_transport::*;
//! # async fn demo(server: std::net::SocketAddr) -> Result<(), TransportError> {
//! let ip = local_ip_for(server)?;
//! let (publisher, mut events) = PeerTransport::start(TransportConfig::new(TransportRole::Publisher, ip)).await?;
//! let mid = publisher.add_video_track("PA_me|TR_cid", "TR_cid", VideoCodec::Vp8, &[]).await?;
//! while let Some(ev) = events.recv().await {
//!   match ev {
//!     TransportEvent::NegotiationNeeded => {
//!       let offer = publisher.create_offer(false).await?; // send in SignalRequest.offer
//!       # let answer = String::new();
//!       publisher.apply_answer(&answer).await?; // from SignalResponse.answer
//!     }
//!     TransportEvent::LocalCandidate(json) => { /* TrickleRequest{candidate_init: json, target: PUBLISHER} */ }
//!     TransportEvent::KeyframeRequest { mid, .. } => { /* force a keyframe on that track's encoder */ }
//!     _ => {}
//!   }
//! }
//! # Ok(()) }
//! ```
//! Subscriber flow (the server offers): `apply_offer(offer)` returns the answer to send;
//! `TrackAdded` / `VideoFrame` / `TrackRemoved` follow.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod candidate;
mod core;
mod error;
mod loss_ceiling;
mod recv_estimate;
mod sdp;
mod task;
mod tcp;
mod turn;
mod turn_stream;
mod types;

pub use candidate::local_ip_for;
pub use error::TransportError;
pub use task::{PeerTransport, TransportHandle, VideoSink};
pub use types::{IceServer, Mid, OutgoingVideoFrame, TransportConfig, TransportEvent, TransportRole, VideoCodec};
