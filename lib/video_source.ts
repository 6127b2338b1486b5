import {
  NativeEncodedVideoSource,
  NativeLocalVideoTrack,
  NativeVideoSource,
  type PublishStats,
  VideoFrame,
  VideoRotation,
} from '../index.js'
import {
  checkBoolean,
  checkEnum,
  checkInteger,
  checkOptionalBoolean,
  checkOptions,
  checkString,
  invalidArgType,
  invalidArgument,
} from './errors.js'

export interface VideoSourceOptions {
  /**
   * Screen content (a shared screen, slides, a document): LiveKit's screen-share bitrate presets,
   * the encoders' screen-content modes (sharper text), and `'maintain-resolution'` on a thin link.
   * Default `false`.
   */
  isScreencast?: boolean
}

/**
 * Metadata that travels with one frame to every subscriber, in LiveKit's packet trailer (so
 * LiveKit's other SDKs read it too, as `VideoFrameEvent.metadata`).
 */
export interface FrameMetadata {
  /**
   * An application timestamp in microseconds (e.g. the capture time on the sender's clock): a
   * `bigint` from 0 to 2^64-1 or a safe integer from 0. Received as a `bigint`.
   */
  userTimestamp?: bigint | number
  /** An application frame number: an integer from 0 to 2^32-1. */
  frameId?: number
}

/** A frame's metadata as received: the fields the publisher sent. */
export interface ReceivedFrameMetadata {
  userTimestamp?: bigint
  frameId?: number
}

export interface CaptureOptions {
  /** Capture time in microseconds on any monotonic clock; 0 or absent means now. */
  timestampUs?: number
  /** How the receiver should rotate the frame. Default `Rotation0`. */
  rotation?: VideoRotation
  /**
   * Sent with this frame to every subscriber. A field that is 0 is not sent (LiveKit reads 0 as
   * unset), so it arrives absent; a frame with no field to send carries no trailer at all.
   */
  metadata?: FrameMetadata
}

const U64_MAX = 2n ** 64n - 1n

function checkUserTimestamp(value: unknown): bigint | undefined {
  if (value === undefined) return undefined
  const expected = 'a bigint from 0 to 2^64-1 or a safe integer from 0'
  if (typeof value === 'bigint') {
    if (value < 0n || value > U64_MAX) throw invalidArgument('metadata.userTimestamp', expected, value)
    return value
  }
  if (typeof value !== 'number') throw invalidArgType('metadata.userTimestamp', expected, value)
  if (!Number.isSafeInteger(value) || value < 0) throw invalidArgument('metadata.userTimestamp', expected, value)
  return BigInt(value)
}

/**
 * Where an application pushes raw frames, to publish as a video track. Frames may change size
 * (a resized window, a camera switching mode): the encoders follow from the next frame (with a
 * keyframe), subscribers receive the new size, and the publication's size is updated on the
 * server.
 */
export class VideoSource {
  /** @internal */
  readonly native: NativeVideoSource

  constructor(width: number, height: number, options: VideoSourceOptions = {}) {
    const o = checkOptions<VideoSourceOptions>('options', options)
    this.native = new NativeVideoSource(
      checkInteger('width', width, 1, 16384),
      checkInteger('height', height, 1, 16384),
      checkBoolean('isScreencast', o.isScreencast, false),
    )
  }

  /** The width of the frames it takes now: the constructor's until a frame of another size. */
  get width(): number {
    return this.native.width
  }

  /** The height of the frames it takes now. */
  get height(): number {
    return this.native.height
  }

  get isScreencast(): boolean {
    return this.native.isScreencast
  }

  get isClosed(): boolean {
    return this.native.isClosed
  }

  /** Frames accepted so far. */
  get capturedFrames(): number {
    return this.native.capturedFrames
  }

  /**
   * Hands a frame (any `VideoBufferType`, any size) to every track publishing this source.
   * Synchronous and cheap: one conversion to I420; the encoder takes the newest frame. A frame
   * of another size than the last changes the source's size. `options.metadata` goes with the
   * encoded frame (every simulcast layer) to every subscriber. Throws `ERR_CLOSED` after
   * `close()`, and `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARGUMENT` for options of the wrong type
   * or range.
   */
  captureFrame(frame: VideoFrame, options: CaptureOptions = {}): void {
    if (!(frame instanceof VideoFrame)) throw invalidArgType('frame', 'a VideoFrame', frame)
    const o = checkOptions<CaptureOptions>('options', options)
    const timestampUs =
      o.timestampUs === undefined ? 0 : checkInteger('timestampUs', o.timestampUs, 0, Number.MAX_SAFE_INTEGER)
    const rotation = checkEnum<VideoRotation>('rotation', o.rotation, VideoRotation, VideoRotation.Rotation0)
    const m = checkOptions<FrameMetadata>('metadata', o.metadata)
    const userTimestamp = checkUserTimestamp(m.userTimestamp)
    const frameId = m.frameId === undefined ? undefined : checkInteger('metadata.frameId', m.frameId, 0, 2 ** 32 - 1)
    this.native.captureFrame(frame, timestampUs, rotation, userTimestamp, frameId)
  }

  /** Stops accepting frames; tracks publishing this source stop sending. */
  close(): void {
    this.native.close()
  }
}

/** One pre-encoded frame for {@link EncodedVideoSource.captureFrame}. */
export interface EncodedVideoFrame {
  /**
   * One complete frame in the source's codec: VP8 or VP9 as their RTP payload formats carry a
   * frame (no IVF or WebM framing), H.264 as an Annex-B access unit (NAL units after
   * `00 00 00 01` or `00 00 01` start codes; a keyframe carries its SPS and PPS). Copied before
   * the call returns.
   */
  data: Uint8Array
  /** Whether it is a keyframe; checked against the bitstream. Absent: read from it. */
  keyframe?: boolean
  /**
   * The picture size (both or neither); absent: the source's current size (a VP8 keyframe
   * states its own). Another size than the last changes the source's size, and the
   * publication's on the server.
   */
  width?: number
  height?: number
  /** Capture time in microseconds on any monotonic clock; 0 or absent means now. */
  timestampUs?: number
  /** How the receiver should rotate the frame. Default `Rotation0`. */
  rotation?: VideoRotation
  /** Sent with this frame to every subscriber (see {@link CaptureOptions.metadata}). */
  metadata?: FrameMetadata
}

/** What the network asks of the producer's encoder. */
export interface EncodedRateControl {
  /** The bitrate the link carries for this track now (at most the publication's maxBitrate). */
  targetBitrateBps: number
  /** The frame rate it plans for. */
  framerateFps: number
}

/** Feedback gathered since the previous {@link EncodedVideoSource.takeFeedback}. */
export interface EncodedVideoSourceFeedback {
  /**
   * A subscriber needs a keyframe (it joined, or lost packets), or lkrtc dropped frames and
   * skips to the next keyframe: make one as soon as possible.
   */
  keyframeRequested: boolean
  /** A new target, present when it changed since the last call. */
  rateControl?: EncodedRateControl
}

const ENCODED_CODECS = ['vp8', 'vp9', 'h264']

/**
 * Where an application pushes pre-encoded VP8, VP9 or H.264 frames (from a camera, an RTSP
 * feed, a file, another encoder), published without decoding or encoding again: make a track
 * with `LocalVideoTrack.createVideoTrack(name, source)` and publish it (one layer, in the
 * source's codec). Push frames at their own pace (nothing paces a file for playback) and poll
 * `takeFeedback()`, forwarding keyframe requests and the target bitrate to the encoder: lkrtc
 * cannot make a keyframe or change the rate itself. A delta frame needs every frame since its
 * keyframe, so a track that loses one (its queue of 30 frames overflowed, or the link stayed
 * congested for half a second) skips to the next keyframe and asks for one.
 */
export class EncodedVideoSource {
  /** @internal */
  readonly native: NativeEncodedVideoSource

  /** `codec`: `'vp8'`, `'vp9'` or `'h264'` (AV1 is not supported). */
  constructor(width: number, height: number, codec: 'vp8' | 'vp9' | 'h264') {
    const w = checkInteger('width', width, 1, 16384)
    const h = checkInteger('height', height, 1, 16384)
    if (typeof codec !== 'string') throw invalidArgType('codec', "'vp8', 'vp9' or 'h264'", codec)
    if (!ENCODED_CODECS.includes(codec)) throw invalidArgument('codec', "'vp8', 'vp9' or 'h264'", codec)
    this.native = new NativeEncodedVideoSource(w, h, codec)
  }

  /** The width of its frames now: the constructor's until a frame of another size. */
  get width(): number {
    return this.native.width
  }

  get height(): number {
    return this.native.height
  }

  get codec(): 'vp8' | 'vp9' | 'h264' {
    return this.native.codec
  }

  get isClosed(): boolean {
    return this.native.isClosed
  }

  /** Frames accepted so far. */
  get capturedFrames(): number {
    return this.native.capturedFrames
  }

  /**
   * Checks `frame` against the codec's bitstream and queues a copy for every track publishing
   * this source. Returns false when no published track takes it (not published yet, or
   * unpublished): the frame went nowhere. Throws `ERR_INVALID_BITSTREAM` for data its codec
   * refuses (not Annex B, an IDR without SPS/PPS, a VP8 frame tag that does not fit...),
   * `ERR_INVALID_ARGUMENT` when `keyframe` or the size contradicts the bitstream, `ERR_CLOSED`
   * after `close()`.
   */
  captureFrame(frame: EncodedVideoFrame): boolean {
    const f = checkOptions<EncodedVideoFrame>('frame', frame)
    if (!(f.data instanceof Uint8Array)) throw invalidArgType('frame.data', 'a Uint8Array or Buffer', f.data)
    if (f.data.byteLength === 0) throw invalidArgument('frame.data', 'a non-empty Uint8Array', f.data)
    const keyframe = checkOptionalBoolean('frame.keyframe', f.keyframe)
    if ((f.width === undefined) !== (f.height === undefined)) {
      throw invalidArgument('frame.width/height', 'both or neither', `${f.width} and ${f.height}`)
    }
    const width = f.width === undefined ? undefined : checkInteger('frame.width', f.width, 1, 16384)
    const height = f.height === undefined ? undefined : checkInteger('frame.height', f.height, 1, 16384)
    const timestampUs =
      f.timestampUs === undefined ? 0 : checkInteger('frame.timestampUs', f.timestampUs, 0, Number.MAX_SAFE_INTEGER)
    const rotation = checkEnum<VideoRotation>('frame.rotation', f.rotation, VideoRotation, VideoRotation.Rotation0)
    const m = checkOptions<FrameMetadata>('metadata', f.metadata)
    const userTimestamp = checkUserTimestamp(m.userTimestamp)
    const frameId = m.frameId === undefined ? undefined : checkInteger('metadata.frameId', m.frameId, 0, 2 ** 32 - 1)
    return this.native.captureFrame(f.data, keyframe, width, height, timestampUs, rotation, userTimestamp, frameId)
  }

  /** The keyframe requests and rate target gathered since the last call (then cleared). */
  takeFeedback(): EncodedVideoSourceFeedback {
    const f = this.native.takeFeedback()
    const feedback: EncodedVideoSourceFeedback = { keyframeRequested: f.keyframeRequested }
    if (typeof f.targetBitrateBps === 'number' && typeof f.framerateFps === 'number') {
      feedback.rateControl = { targetBitrateBps: f.targetBitrateBps, framerateFps: f.framerateFps }
    }
    return feedback
  }

  /** Stops accepting frames; tracks publishing this source stop sending. */
  close(): void {
    this.native.close()
  }
}

/** One layer's send statistics (see {@link LocalVideoTrack.getStats}), named as the WebRTC
 * statistics spec names an outbound RTP stream's. */
export interface OutboundVideoStats {
  type: 'outbound-rtp'
  kind: 'video'
  /** When they were read (ms since the Unix epoch). */
  timestamp: number
  /** The simulcast layer (`q`, `h`, `f`); empty for a track sent in one layer. */
  rid: string
  /** False while the layer is paused (no bits for it, or no subscriber watches it). */
  active: boolean
  framesEncoded: number
  keyFramesEncoded: number
  /** Frames handed to the transport. */
  framesSent: number
  /** Frames encoded over the last second. */
  framesPerSecond: number
  /** RTP bytes sent, retransmissions included (counted every half second). */
  bytesSent: number
  packetsSent: number
  /** The encoder's target, bits per second. */
  targetBitrate: number
  /** NACK, PLI and FIR messages received. */
  nackCount: number
  pliCount: number
  firCount: number
  /** `bandwidth` while the estimate holds the layer back (a smaller picture, frames skipped). */
  qualityLimitationReason: 'bandwidth' | 'none'
  /** The size sent. */
  frameWidth: number
  frameHeight: number
  /** `libvpx` or `openh264`; empty before the first frame. */
  encoderImplementation: string
}

/** The connection a published track is sent on (see {@link LocalVideoTrack.getStats}). */
export interface CandidatePairStats {
  type: 'candidate-pair'
  timestamp: number
  /** Seconds, from the server's receiver reports; absent until known. */
  currentRoundTripTime?: number
  /** The send-side bandwidth estimate, bits per second (0 before the first). */
  availableOutgoingBitrate: number
}

/**
 * A video track fed by a `VideoSource` (raw frames, encoded by lkrtc) or an
 * `EncodedVideoSource` (frames sent as they come); publish it with
 * `room.localParticipant.publishTrack`.
 */
export class LocalVideoTrack {
  /** @internal */
  readonly native: NativeLocalVideoTrack
  readonly source: VideoSource | EncodedVideoSource
  /** @internal the participant that published it last */
  publishedBy: { publishStats(sid: string): PublishStats | undefined } | undefined

  private constructor(native: NativeLocalVideoTrack, source: VideoSource | EncodedVideoSource) {
    this.native = native
    this.source = source
  }

  static createVideoTrack(name: string, source: VideoSource | EncodedVideoSource): LocalVideoTrack {
    checkString('name', name)
    // `native` too: an object that only inherits from VideoSource.prototype has none.
    if (source instanceof VideoSource && source.native instanceof NativeVideoSource) {
      return new LocalVideoTrack(NativeLocalVideoTrack.createVideoTrack(name, source.native), source)
    }
    if (source instanceof EncodedVideoSource && source.native instanceof NativeEncodedVideoSource) {
      return new LocalVideoTrack(NativeLocalVideoTrack.createEncodedVideoTrack(name, source.native), source)
    }
    throw invalidArgType('source', 'a VideoSource or an EncodedVideoSource', source)
  }

  get name(): string {
    return this.native.name
  }

  /** The server's track sid once published, else `undefined`. */
  get sid(): string | undefined {
    return this.native.sid ?? undefined
  }

  /**
   * Stops sending video: the track's encoders pause (no CPU spent on it) and the server and
   * every subscriber see it muted (`trackMuted`). Frames captured meanwhile are dropped. Works
   * before publishing too: the track is then published muted. Idempotent.
   */
  mute(): void {
    this.native.setMuted(true)
  }

  /** Sends video again, starting with a keyframe; subscribers see `trackUnmuted`. Idempotent. */
  unmute(): void {
    this.native.setMuted(false)
  }

  /** Whether the track is muted. */
  get muted(): boolean {
    return this.native.muted
  }

  /**
   * Its send statistics while published: one `outbound-rtp` entry per layer (lowest first) and
   * the `candidate-pair` it is sent on; empty when not published. Counted by lkrtc: the encoder
   * figures at once, the transport's (bytes and packets on the wire, NACK/PLI/FIR, round-trip
   * time) every half second.
   */
  async getStats(): Promise<(OutboundVideoStats | CandidatePairStats)[]> {
    const sid = this.sid
    const s = sid === undefined ? undefined : this.publishedBy?.publishStats(sid)
    if (!s) return []
    const timestamp = Date.now()
    const layers: OutboundVideoStats[] = s.layers.map((l) => ({
      type: 'outbound-rtp',
      kind: 'video',
      timestamp,
      rid: l.rid,
      active: !l.paused,
      framesEncoded: l.framesEncoded,
      keyFramesEncoded: l.keyframesEncoded,
      framesSent: l.framesEncoded - (s.layers.length === 1 ? s.framesUnsent : 0),
      framesPerSecond: l.framesPerSecond,
      bytesSent: l.transportBytesSent,
      packetsSent: l.packetsSent,
      targetBitrate: l.targetBitrate,
      nackCount: l.nackCount,
      pliCount: l.pliCount,
      firCount: l.firCount,
      qualityLimitationReason: l.qualityLimitationReason as 'bandwidth' | 'none',
      frameWidth: l.width,
      frameHeight: l.height,
      encoderImplementation: l.encoderImplementation,
    }))
    const pair: CandidatePairStats = {
      type: 'candidate-pair',
      timestamp,
      availableOutgoingBitrate: s.availableOutgoingBitrate,
      ...(s.roundTripTime === undefined || s.roundTripTime === null ? {} : { currentRoundTripTime: s.roundTripTime }),
    }
    return [...layers, pair]
  }
}
