#![doc = include_str!("../README.md")]
//! A LiveKit client on str0m: the signal client, dual peer-connection transports, rooms and
//! participants, the video publish path (source -> I420 -> encoder -> RTP) and the receive path
//! (RTP -> decoder -> per-stream format -> [`VideoStream`], stamped with the publisher's capture
//! time).
//! Usable from plain Rust; the Node binding wraps it without adding logic.
#![deny(missing_docs)]

pub mod data;
mod decoder_task;
mod encoded_sender;
pub mod encoded_source;
pub mod encoded_stream;
mod encoder_task;
mod engine;
mod error;
pub mod events;
pub mod frame_metadata;
pub mod local_participant;
pub mod local_track;
pub mod options;
pub mod participant;
mod pc;
mod playout;
pub mod publication;
pub mod remote_track;
pub mod room;
mod send_control;
pub(crate) mod signal;
pub mod simulcast;
pub mod stats;
mod stream_queue;
pub mod token;
pub mod video_source;
pub mod video_stream;

pub use data::{DataPacketKind, DataPublishOptions};
pub use encoded_source::{
  EncodedFrameInput, EncodedRateControl, EncodedSourceFeedback, EncodedVideoSource, ENCODED_QUEUE_CAPACITY,
};
pub use encoded_stream::{EncodedFrameEvent, EncodedVideoStream, KeyframeRequester, DEFAULT_ENCODED_CAPACITY};
pub use error::{RtcError, RtcResult};
pub use events::{ConnectionState, RoomEvent};
pub use frame_metadata::FrameMetadata;
pub use local_participant::{LayerPublishStats, LocalParticipant, PublishStats};
pub use local_track::LocalVideoTrack;
pub use options::{
  default_video_encoding, DegradationPreference, IceTransportPolicy, RoomOptions, TrackPublishOptions, VideoCodec,
  VideoEncoding, VideoSourceOptions,
};
pub use participant::RemoteParticipant;
pub use publication::{
  LocalTrackPublication, RemoteTrackPublication, RemoteTrackSettings, TrackKind, TrackSource, VideoQuality,
};
pub use remote_track::{RemoteVideoTrack, TrackEndReason};
pub use room::Room;
pub use stats::InboundVideoStats;
pub use token::{create_token, parse_ttl, ttl_from_secs, TokenOptions, MAX_TTL};
pub use video_source::{CapturedFrame, VideoSource};
pub use video_stream::{VideoFrameEvent, VideoStream, VideoStreamOptions};

pub use lkrtc_video::{VideoBufferType, VideoFrame, VideoRotation};
