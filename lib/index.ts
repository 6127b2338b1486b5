/**
 * lkrtc: join LiveKit rooms from Node.js, publish video frames and receive the video of others.
 */
export {
  ConnectionState,
  DataPacketKind,
  framePoolStats,
  TrackKind,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoQuality,
  VideoRotation,
  type ConvertOptions,
  type FramePoolStats,
  type LayerPublishStats,
  type PublishStats,
  type VideoPlane,
} from '../index.js'
export type { LkrtcError } from './errors.js'
export {
  LocalParticipant,
  LocalTrackPublication,
  MAX_VIDEO_SIZE,
  RemoteParticipant,
  RemoteTrackPublication,
  RemoteVideoTrack,
  Room,
  type RoomEvents,
  type RoomOptions,
  type TrackPublishOptions,
  type DataPublishOptions,
  type InboundVideoStats,
  type DegradationPreference,
  type IceTransportPolicy,
  type VideoEncoding,
  type VideoPreset,
} from './room.js'
export { createToken, type TokenOptions } from './token.js'
export {
  type CandidatePairStats,
  EncodedVideoSource,
  type EncodedRateControl,
  type EncodedVideoFrame,
  type EncodedVideoSourceFeedback,
  LocalVideoTrack,
  type OutboundVideoStats,
  VideoSource,
  type CaptureOptions,
  type FrameMetadata,
  type ReceivedFrameMetadata,
  type VideoSourceOptions,
} from './video_source.js'
export {
  REJOIN_GRACE_MS,
  VideoStream,
  type FromParticipantOptions,
  type FromTrackOptions,
  type VideoFrameEvent,
  type VideoStreamEndReason,
  type VideoStreamOptions,
} from './video_stream.js'
export { EncodedVideoStream, type EncodedVideoFrameEvent, type EncodedVideoStreamOptions } from './encoded_stream.js'
