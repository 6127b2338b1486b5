import { EventEmitter } from 'node:events'

import {
  ConnectionState,
  type DataPacketKind,
  NativeLocalVideoTrack,
  type NativeRemoteVideoTrack,
  NativeRoom,
  type NativeRoomEvent,
  nativeCheckVideoEncoding,
  nativeVideoCodecName,
  type ParticipantInfo,
  type PublishStats,
  TrackKind,
  type TrackPublicationInfo,
  TrackSource,
  VideoQuality,
} from '../index.js'
import {
  checkEnum,
  checkInteger,
  checkOptionalBoolean,
  checkOptionalString,
  checkOptions,
  checkString,
  invalidArgType,
  invalidArgument,
  lkrtcError,
} from './errors.js'
import { EncodedVideoSource, LocalVideoTrack } from './video_source.js'

export interface RoomOptions {
  /** Subscribe to every track others publish. Default `true`. */
  autoSubscribe?: boolean
  /**
   * Receive each video track in the size its readers want: a `VideoStream` opened with
   * `{ width, height }` makes lkrtc ask the server for the smallest layer of a simulcast track
   * at least that big (the largest size wanted by the open streams of the track; a stream
   * without a size wants the full one). When no stream gives a size, the track's
   * `setVideoQuality` / `setVideoDimensions` choice applies (default: the full size). Off, the
   * streams' sizes are ignored and only those choices count. Default `false`.
   */
  adaptiveStream?: boolean
  /** Bound on the whole connect (signalling and the first peer connection). Default 10000. */
  connectTimeoutMs?: number
  /**
   * Extra certificate authorities to trust for a `wss://` (or `https://`) server, as PEM text
   * with one or more `-----BEGIN CERTIFICATE-----` sections: for a server whose certificate is
   * signed by a private CA, or is self-signed (then pass that certificate; it must not be marked
   * `CA:TRUE`). They are trusted in addition to the public roots, never instead of them. Text that holds no usable certificate rejects `connect` with
   * `ERR_INVALID_CERTIFICATE`; a server certificate that is still not trusted, or not valid for
   * the URL's host name, rejects it with `ERR_TLS`.
   *
   * @example
   * ```ts
   * await room.connect('wss://livekit.internal:7880', token, {
   *   caCertificates: readFileSync('/etc/livekit/ca.pem', 'utf8'),
   * })
   * ```
   */
  caCertificates?: string
  /**
   * Obey the server's signal of which simulcast layers subscribers watch: a layer nobody
   * watches is paused (its encoder does not run, its bits are not sent) and comes back with a
   * keyframe when someone does. Turn it on when subscribers often watch small or not at all
   * (thumbnails, grids, bots that need a low layer, rooms where the publisher is often alone):
   * it saves the publisher's CPU and uplink. Default `false`, as in LiveKit's SDKs.
   */
  dynacast?: boolean
  /**
   * Receive frame metadata (`VideoFrameEvent.metadata`): lkrtc tells the server it reads
   * LiveKit's packet trailer, and strips it itself. Off, the server strips it before it reaches
   * lkrtc, as for any subscriber that does not announce it, and frames carry no metadata.
   * Sending metadata does not depend on it. Default `true`.
   */
  frameMetadata?: boolean
  /**
   * Which local ICE candidates the peer connections use, as WebRTC's `iceTransportPolicy`:
   * `'all'` (default) tries the direct paths (UDP, then TCP to the server's TCP port) and the
   * TURN servers the server lists in its join response; `'relay'` uses only those TURN servers,
   * so every packet goes through one (to test a relay, or to hide the client's address from
   * the media server). lkrtc allocates on `turn:` URLs over UDP or TCP and on `turns:` (TLS,
   * trusted like the signalling: public roots and `caCertificates`). With `'relay'` and no such
   * server in the join response, `connect` rejects with `ERR_NO_TURN_SERVER`.
   */
  iceTransportPolicy?: IceTransportPolicy
}

export type IceTransportPolicy = 'all' | 'relay'
const ICE_TRANSPORT_POLICIES: readonly string[] = ['all', 'relay']

export interface VideoEncoding {
  /** Bits per second: an integer from 1000 to 2**32 - 1. */
  maxBitrate: number
  /** Frames per second: above 0 and at most 240. */
  maxFramerate: number
}

export interface TrackPublishOptions {
  /** Default `TrackSource.Camera`. */
  source?: TrackSource
  /**
   * Default `'vp8'`. `'vp9'` and `'av1'` go as one layer (LiveKit's SDKs scale them with SVC,
   * not simulcast); `'av1'` is encoded with libaom in real-time mode and carries no frame
   * metadata.
   */
  videoCodec?: 'vp8' | 'h264' | 'vp9' | 'av1'
  /** Default: LiveKit's preset for the source's resolution. */
  videoEncoding?: Partial<VideoEncoding>
  /**
   * What gives way when the link cannot carry the picture: `'balanced'` (a smaller picture down
   * to about 480x270, then fewer frames), `'maintain-framerate'` (a smaller picture, down to a
   * quarter), `'maintain-resolution'` (fewer frames; for text on a shared screen). Default
   * `'maintain-resolution'` for a screencast source, `'balanced'` otherwise.
   */
  degradationPreference?: DegradationPreference
  /**
   * Send several layers (RIDs `q`, `h`, `f`), each with its own encoder, so each subscriber
   * gets the one that fits its link and screen: three from 960 pixels on the longer side
   * (e.g. 1280x720 sends 320x180, 640x360 and 1280x720), two from 480, one below. The
   * bandwidth estimate goes to the lowest layer first; a layer it cannot carry is paused.
   * Default `true`, as in LiveKit's SDKs.
   */
  simulcast?: boolean
  /**
   * The lower layers (at most two, each smaller than the source); `videoEncoding` sets the top
   * one. Default: LiveKit's (180p and 360p of the source's aspect; a screen share gets one at
   * half size and 3 fps). Unusable layers reject with `ERR_INVALID_ARGUMENT`.
   */
  simulcastLayers?: VideoPreset[]
}

/** A layer's size and encoding. */
export interface VideoPreset {
  width: number
  height: number
  encoding: VideoEncoding
}

/** How `publishData` sends a message. */
export interface DataPublishOptions {
  /**
   * `true` (default): ordered and retransmitted until delivered. `false`: lossy, unordered and
   * never retransmitted, for frequent updates where only the newest matters; keep lossy
   * messages under about 1,300 bytes so that each fits one packet.
   */
  reliable?: boolean
  /** A label the receivers get with the message (`dataReceived`'s `topic`). */
  topic?: string
  /** Only these participants (by identity) receive the message; everyone else in the room when absent or empty. */
  destinationIdentities?: string[]
}

/** What a publication gives up first when the bandwidth estimate falls short. */
function checkIceTransportPolicy(value: unknown): IceTransportPolicy | undefined {
  if (value === undefined || ICE_TRANSPORT_POLICIES.includes(value as string)) return value as IceTransportPolicy
  const expected = "'all' or 'relay'"
  if (typeof value !== 'string') throw invalidArgType('iceTransportPolicy', expected, value)
  throw invalidArgument('iceTransportPolicy', expected, value)
}

export type DegradationPreference = 'balanced' | 'maintain-framerate' | 'maintain-resolution'
const DEGRADATION_PREFERENCES: readonly string[] = ['balanced', 'maintain-framerate', 'maintain-resolution']

/** The events of a `Room` and their arguments. */
export interface RoomEvents {
  participantConnected: [participant: RemoteParticipant]
  participantDisconnected: [participant: RemoteParticipant]
  trackPublished: [publication: RemoteTrackPublication, participant: RemoteParticipant]
  trackUnpublished: [publication: RemoteTrackPublication, participant: RemoteParticipant]
  trackSubscribed: [track: RemoteVideoTrack, publication: RemoteTrackPublication, participant: RemoteParticipant]
  trackUnsubscribed: [track: RemoteVideoTrack, publication: RemoteTrackPublication, participant: RemoteParticipant]
  trackMuted: [publication: RemoteTrackPublication, participant: RemoteParticipant]
  trackUnmuted: [publication: RemoteTrackPublication, participant: RemoteParticipant]
  /** A publication changed otherwise: its size (its source's frames changed size), name or codec. */
  trackUpdated: [publication: RemoteTrackPublication, participant: RemoteParticipant]
  localTrackPublished: [publication: LocalTrackPublication, track: LocalVideoTrack | undefined]
  localTrackUnpublished: [publication: LocalTrackPublication]
  connectionStateChanged: [state: ConnectionState]
  /**
   * A data message from another participant (`participant` is `undefined` for one the server
   * sent itself), in the order the server forwarded them. Up to 16 MiB of messages wait for the
   * event loop to take them; beyond that, newer ones are dropped with a warning in the log.
   */
  dataReceived: [
    payload: Uint8Array,
    participant: RemoteParticipant | undefined,
    kind: DataPacketKind,
    topic: string | undefined,
  ]
  /**
   * The link to the server was lost (the signal connection, or the media path for ~7 s). lkrtc resumes the
   * session; if the server cannot resume it (e.g. it restarted), it joins again: remote
   * participants are then reported disconnected and connected again with new tracks, and our
   * tracks are unpublished and published again (new sids) from the same sources. Attempts back
   * off from 300 ms to 7 s, 10 in all; after that the room ends with `disconnected`.
   */
  reconnecting: []
  reconnected: []
  /**
   * The last event: `reason` is LiveKit's `DisconnectReason` name: `CLIENT_INITIATED` (we left),
   * `DUPLICATE_IDENTITY`, `PARTICIPANT_REMOVED`, `ROOM_DELETED`, `SERVER_SHUTDOWN`, or, when
   * reconnecting gave up, what was lost: `SIGNAL_CLOSE`, `CONNECTION_TIMEOUT`, `MEDIA_FAILURE`.
   */
  disconnected: [reason: string]
}

function notConnected(what: string): Error {
  return lkrtcError('ERR_NOT_CONNECTED', `${what}: the room is not connected`)
}

/** A remote video track being received: read its frames with a `VideoStream`. */
export class RemoteVideoTrack {
  readonly kind = TrackKind.Video
  /** @internal */
  readonly native: NativeRemoteVideoTrack
  /** @internal the room it arrived in */
  readonly room: Room
  /** Where its publisher's video comes from (camera, screen share, ...). */
  readonly source: TrackSource
  private endedHere = false

  /** @internal */
  constructor(native: NativeRemoteVideoTrack, room: Room, source: TrackSource) {
    this.native = native
    this.room = room
    this.source = source
  }

  get sid(): string {
    return this.native.sid
  }

  get name(): string {
    return this.native.name
  }

  get participantIdentity(): string {
    return this.native.participantIdentity
  }

  /** True once the track is unsubscribed or the room left: its streams have ended. */
  get ended(): boolean {
    return this.endedHere || this.native.isEnded
  }

  /**
   * Its receive statistics, named as the WebRTC statistics spec names an inbound RTP stream's
   * (`RTCInboundRtpStreamStats`): what lkrtc counted on the transport (bytes, packets, NACK, PLI
   * and FIR sent, jitter, packets lost for good; updated every half second) and at the decoder
   * (frames, size, rate, freezes; at once).
   */
  async getStats(): Promise<InboundVideoStats> {
    const s = this.native.getStats()
    return { type: 'inbound-rtp', kind: 'video', timestamp: Date.now(), trackIdentifier: this.sid, ...s }
  }

  /** @internal */
  end(): void {
    this.endedHere = true
  }
}

/** A remote video track's receive statistics (see {@link RemoteVideoTrack.getStats}). */
export interface InboundVideoStats {
  type: 'inbound-rtp'
  kind: 'video'
  /** When they were read (ms since the Unix epoch). */
  timestamp: number
  /** The track's sid. */
  trackIdentifier: string
  /** Complete frames that reached the decoder. */
  framesReceived: number
  /** Frames decoded into a picture. */
  framesDecoded: number
  keyFramesDecoded: number
  /** Frames received but not decoded (waiting for a keyframe after a loss, or a decoder behind). */
  framesDropped: number
  /** Frames decoded over the last second. */
  framesPerSecond: number
  /** RTP bytes received, retransmissions included. */
  bytesReceived: number
  packetsReceived: number
  /** Packets never received, not even retransmitted. */
  packetsLost: number
  /** Interarrival jitter, seconds. */
  jitter: number
  /** NACK messages sent. */
  nackCount: number
  /** PLI messages sent. */
  pliCount: number
  /** FIR messages sent. */
  firCount: number
  /** Gaps between decoded frames over max(3 x the mean frame interval, mean + 150 ms). */
  freezeCount: number
  /** Their total length, seconds. */
  totalFreezesDuration: number
  /** The size of the last frame decoded (0 before the first). */
  frameWidth: number
  frameHeight: number
  /** `libvpx`, `openh264` or `libaom`; empty before the first frame. */
  decoderImplementation: string
  /**
   * Seconds the frames handed to streams spent between arriving complete and being handed on
   * (decoding plus the playout delay that spaces frames arriving in bursts), summed; divide by
   * `jitterBufferEmittedCount` for the mean.
   */
  jitterBufferDelay: number
  /** The playout target each of those frames was timed by, seconds, summed. */
  jitterBufferTargetDelay: number
  /** Frames handed to streams. */
  jitterBufferEmittedCount: number
}

abstract class TrackPublication {
  sid: string
  name: string
  kind: TrackKind
  source: TrackSource
  width: number
  height: number
  /** e.g. `video/VP8`, `video/H264`; empty until the server knows it. */
  mimeType: string
  muted: boolean
  simulcasted: boolean
  /**
   * Whether its frames may carry metadata (`captureFrame`'s `metadata`): the publication
   * advertises LiveKit's packet trailer, as every lkrtc publication does. Frames of a track that
   * does not are never searched for one.
   */
  frameMetadata: boolean

  /** @internal */
  constructor(info: TrackPublicationInfo) {
    this.sid = info.sid
    this.name = info.name
    this.kind = info.kind
    this.source = info.source
    this.width = info.width
    this.height = info.height
    this.mimeType = info.mimeType
    this.muted = info.muted
    this.simulcasted = info.simulcast
    this.frameMetadata = info.frameMetadata
  }

  /** @internal */
  update(info: TrackPublicationInfo): void {
    this.name = info.name
    this.kind = info.kind
    this.source = info.source
    this.width = info.width
    this.height = info.height
    if (info.mimeType) this.mimeType = info.mimeType
    this.muted = info.muted
    this.simulcasted = info.simulcast
    this.frameMetadata = info.frameMetadata
  }
}

/** A track another participant publishes. `track` is set while it is subscribed. */
export class RemoteTrackPublication extends TrackPublication {
  track: RemoteVideoTrack | undefined = undefined
  /** @internal */
  readonly room: Room

  /** @internal */
  constructor(info: TrackPublicationInfo, room: Room) {
    super(info)
    this.room = room
  }

  get subscribed(): boolean {
    return this.track !== undefined
  }

  /** Subscribes to the track (or unsubscribes); with `autoSubscribe` it is subscribed already. */
  async setSubscribed(subscribed: boolean): Promise<void> {
    if (typeof subscribed !== 'boolean') throw invalidArgType('subscribed', 'a boolean', subscribed)
    await this.room.nativeRoom('setSubscribed').setSubscribed(this.sid, subscribed)
  }

  /**
   * The quality asked for with `setVideoQuality` (`High` until then); `undefined` when a size
   * was asked for last. Carried over, like the choice, to the track published again after a
   * full reconnect.
   */
  get videoQuality(): VideoQuality | undefined {
    return this.settings().quality ?? undefined
  }

  /** The size asked for with `setVideoDimensions`, when that was the last choice. */
  get videoDimensions(): { width: number; height: number } | undefined {
    const { width, height } = this.settings()
    return width === undefined || height === undefined ? undefined : { width, height }
  }

  /** False while paused with `setEnabled(false)`. */
  get enabled(): boolean {
    return this.settings().enabled
  }

  private settings(): { enabled: boolean; quality?: VideoQuality | null; width?: number; height?: number } {
    return this.room.native?.trackSettings(this.sid) ?? { enabled: true, quality: VideoQuality.High }
  }

  /**
   * Which layer of a simulcast video track to receive: `VideoQuality.Low` (a quarter of the
   * full size on each side, e.g. 320x180 of 1280x720), `Medium` (half) or `High` (full, the
   * default). A track published in one layer comes in that layer whatever the quality. The server
   * may send a lower layer while the link is short. Replaces an earlier `setVideoDimensions`;
   * lasts while the track is published, across reconnects (a track published again after a full
   * reconnect gets it too). Frames report the size decoded (`frame.width`, `frame.height`), which
   * changes when the layer does.
   */
  async setVideoQuality(quality: VideoQuality): Promise<void> {
    const q = checkEnum<VideoQuality>('quality', quality, VideoQuality)
    await this.room.nativeRoom('setVideoQuality').setVideoQuality(this.sid, q)
  }

  /**
   * Asks for the smallest layer at least `width` x `height` (the server compares heights, or
   * widths for a portrait picture); the full layer when none is that big. Each side an integer
   * from 1 to 16384. Replaces an earlier `setVideoQuality`; lasts as it does.
   */
  async setVideoDimensions(width: number, height: number): Promise<void> {
    checkInteger('width', width, 1, MAX_VIDEO_SIZE)
    checkInteger('height', height, 1, MAX_VIDEO_SIZE)
    await this.room.nativeRoom('setVideoDimensions').setVideoDimensions(this.sid, width, height)
  }

  /**
   * Pauses (`false`) or resumes (`true`) the track without unsubscribing: while paused the
   * server sends nothing, the track stays subscribed and its streams wait; resumed, frames come
   * again (from a keyframe). Lasts as `setVideoQuality` does.
   */
  async setEnabled(enabled: boolean): Promise<void> {
    if (typeof enabled !== 'boolean') throw invalidArgType('enabled', 'a boolean', enabled)
    await this.room.nativeRoom('setEnabled').setTrackEnabled(this.sid, enabled)
  }
}

/** The largest width or height a video size argument takes. */
export const MAX_VIDEO_SIZE = 16_384

/** A track this process publishes. */
export class LocalTrackPublication extends TrackPublication {
  track: LocalVideoTrack | undefined

  /** @internal */
  constructor(info: TrackPublicationInfo, track: LocalVideoTrack | undefined) {
    super(info)
    this.track = track
  }
}

/** Another participant in the room. */
export class RemoteParticipant {
  sid: string
  readonly identity: string
  name: string
  metadata: string
  attributes: Record<string, string>
  /** Publications keyed by track sid. */
  readonly trackPublications = new Map<string, RemoteTrackPublication>()
  /** @internal */
  readonly room: Room

  /** @internal */
  constructor(info: ParticipantInfo, room: Room) {
    this.sid = info.sid
    this.identity = info.identity
    this.name = info.name
    this.metadata = info.metadata
    this.attributes = { ...info.attributes }
    this.room = room
    this.update(info)
  }

  /** @internal Takes the server's latest description (removals come as `trackUnpublished`). */
  update(info: ParticipantInfo): void {
    this.sid = info.sid
    this.name = info.name
    this.metadata = info.metadata
    this.attributes = { ...info.attributes }
    for (const p of info.trackPublications) this.publication(p)
  }

  /** @internal The publication object for `info`, created or updated. */
  publication(info: TrackPublicationInfo): RemoteTrackPublication {
    let publication = this.trackPublications.get(info.sid)
    if (publication) publication.update(info)
    else {
      publication = new RemoteTrackPublication(info, this.room)
      this.trackPublications.set(info.sid, publication)
    }
    return publication
  }
}

/** This process in the room. */
export class LocalParticipant {
  /** Our publications keyed by track sid. Identity and sid are empty until the room connects. */
  readonly trackPublications = new Map<string, LocalTrackPublication>()
  /** @internal */
  readonly room: Room
  private publishing = new Set<LocalVideoTrack>()

  /** @internal */
  constructor(room: Room) {
    this.room = room
  }

  get sid(): string {
    return this.room.native?.localParticipant.sid ?? ''
  }

  get identity(): string {
    return this.room.native?.localParticipant.identity ?? ''
  }

  get name(): string {
    return this.room.native?.localParticipant.name ?? ''
  }

  get metadata(): string {
    return this.room.native?.localParticipant.metadata ?? ''
  }

  /**
   * Publishes a video track: resolves once the server confirmed it and frames captured on its
   * source are being encoded and sent. Rejects with `ERR_PUBLISH_TIMEOUT`,
   * `ERR_PUBLISH_REFUSED`, `ERR_ALREADY_PUBLISHED`, `ERR_NOT_CONNECTED`, ...
   */
  async publishTrack(track: LocalVideoTrack, options: TrackPublishOptions = {}): Promise<LocalTrackPublication> {
    // `native` too: an object that only inherits from LocalVideoTrack.prototype has none.
    if (!(track instanceof LocalVideoTrack && track.native instanceof NativeLocalVideoTrack)) {
      throw invalidArgType('track', 'a LocalVideoTrack', track)
    }
    const o = checkOptions<TrackPublishOptions>('options', options)
    const source = checkEnum<TrackSource>('source', o.source, TrackSource, TrackSource.Camera)
    let videoCodec: 'vp8' | 'h264' | 'vp9' | 'av1' | undefined
    if (o.videoCodec !== undefined) {
      if (typeof o.videoCodec !== 'string') {
        throw invalidArgType('videoCodec', "'vp8', 'h264', 'vp9' or 'av1'", o.videoCodec)
      }
      videoCodec = nativeVideoCodecName(o.videoCodec)
    }
    const encoding = checkOptions<VideoEncoding>('videoEncoding', o.videoEncoding)
    // Only the JS types are checked here; the range is the core's.
    const { maxBitrate, maxFramerate } = encoding
    if (maxBitrate !== undefined && typeof maxBitrate !== 'number') {
      throw invalidArgType('videoEncoding.maxBitrate', `an integer from 1000 to ${2 ** 32 - 1}`, maxBitrate)
    }
    if (maxFramerate !== undefined && typeof maxFramerate !== 'number') {
      throw invalidArgType('videoEncoding.maxFramerate', 'a number above 0 and at most 240', maxFramerate)
    }
    nativeCheckVideoEncoding(maxBitrate, maxFramerate)
    const degradationPreference = o.degradationPreference
    if (degradationPreference !== undefined && !DEGRADATION_PREFERENCES.includes(degradationPreference as string)) {
      const expected = "'balanced', 'maintain-framerate' or 'maintain-resolution'"
      if (typeof degradationPreference !== 'string')
        throw invalidArgType('degradationPreference', expected, degradationPreference)
      throw invalidArgument('degradationPreference', expected, degradationPreference)
    }
    const simulcast = checkOptionalBoolean('simulcast', o.simulcast)
    let simulcastLayers: { width: number; height: number; maxBitrate: number; maxFramerate: number }[] | undefined
    if (o.simulcastLayers !== undefined) {
      if (!Array.isArray(o.simulcastLayers)) {
        throw invalidArgType('simulcastLayers', 'an array of { width, height, encoding }', o.simulcastLayers)
      }
      // Only the JS types are checked here; sizes and ranges are the core's.
      simulcastLayers = o.simulcastLayers.map((layer: unknown, i) => {
        const l = checkOptions<VideoPreset>(`simulcastLayers[${i}]`, layer)
        const e = checkOptions<VideoEncoding>(`simulcastLayers[${i}].encoding`, l.encoding)
        const numbers = { width: l.width, height: l.height, maxBitrate: e.maxBitrate, maxFramerate: e.maxFramerate }
        for (const [key, value] of Object.entries(numbers)) {
          if (typeof value !== 'number') throw invalidArgType(`simulcastLayers[${i}].${key}`, 'a number', value)
        }
        return numbers as { width: number; height: number; maxBitrate: number; maxFramerate: number }
      })
    }
    if (track.source instanceof EncodedVideoSource) {
      // Frames go as they come: in the source's codec, one layer, the picture the producer made.
      const codec = track.source.codec
      if (videoCodec !== undefined && videoCodec !== codec) {
        throw invalidArgument('videoCodec', `'${codec}' (the EncodedVideoSource's codec) or absent`, o.videoCodec)
      }
      if (simulcast === true || simulcastLayers !== undefined) {
        const name = simulcast === true ? 'simulcast' : 'simulcastLayers'
        throw invalidArgument(name, 'absent or false: a pre-encoded track is sent in one layer', o[name])
      }
      if (degradationPreference !== undefined) {
        throw invalidArgument(
          'degradationPreference',
          'absent: lkrtc does not change a pre-encoded picture (the producer follows takeFeedback())',
          degradationPreference,
        )
      }
    }
    const room = this.room.nativeRoom('publishTrack')
    this.publishing.add(track)
    try {
      const info = await room.publishTrack(track.native, {
        source,
        videoCodec,
        maxBitrate,
        maxFramerate,
        degradationPreference,
        simulcast,
        simulcastLayers,
      })
      track.publishedBy = this
      return this.publication(info, track)
    } finally {
      this.publishing.delete(track)
    }
  }

  /**
   * Sends a data message to everyone in the room, or to `options.destinationIdentities` only;
   * LiveKit's SDKs receive it as their data-received event. A string is sent as UTF-8.
   * Resolves once the message is on its way (sent, or queued in order behind earlier ones).
   * Rejects with `ERR_INVALID_ARGUMENT` for a message larger than one packet carries (about
   * 64 KiB, less its topic and destinations), `ERR_DATA_BACKLOG` when 4 MiB of messages already
   * wait for the link (send more slowly), `ERR_NOT_CONNECTED` after the room ended. While the
   * room reconnects, messages wait and go out once the session is resumed.
   */
  async publishData(payload: Uint8Array | string, options: DataPublishOptions = {}): Promise<void> {
    let bytes: Uint8Array
    if (typeof payload === 'string') bytes = new TextEncoder().encode(payload)
    else if (payload instanceof Uint8Array) bytes = payload
    else throw invalidArgType('payload', 'a Uint8Array or a string', payload)
    const o = checkOptions<DataPublishOptions>('options', options)
    const reliable = checkOptionalBoolean('reliable', o.reliable) ?? true
    const topic = checkOptionalString('topic', o.topic)
    const to = o.destinationIdentities ?? []
    if (!Array.isArray(to)) throw invalidArgType('destinationIdentities', 'an array of identities', to)
    for (const [i, identity] of to.entries()) checkString(`destinationIdentities[${i}]`, identity, { nonEmpty: true })
    await this.room.nativeRoom('publishData').publishData(bytes, reliable, topic, to)
  }

  /** Stops publishing the track with this sid (rejects with `ERR_TRACK_NOT_FOUND` if unknown). */
  async unpublishTrack(sid: string): Promise<LocalTrackPublication> {
    checkString('sid', sid, { nonEmpty: true })
    const info = await this.room.nativeRoom('unpublishTrack').unpublishTrack(sid)
    const publication = this.trackPublications.get(sid) ?? new LocalTrackPublication(info, undefined)
    this.trackPublications.delete(sid)
    return publication
  }

  /**
   * The send counters of a published track, `undefined` for an unknown sid; `layers` has one
   * entry per simulcast layer (`rid`, size, frames encoded, target bitrate, bytes, paused).
   */
  publishStats(sid: string): PublishStats | undefined {
    checkString('sid', sid)
    return this.room.nativeRoom('publishStats').publishStats(sid) ?? undefined
  }

  /** @internal */
  publication(info: TrackPublicationInfo, track?: LocalVideoTrack): LocalTrackPublication {
    track ??= [...this.publishing].find((t) => t.sid === info.sid)
    let publication = this.trackPublications.get(info.sid)
    if (publication) {
      publication.update(info)
      publication.track ??= track
    } else {
      publication = new LocalTrackPublication(info, track)
      this.trackPublications.set(info.sid, publication)
    }
    return publication
  }
}

/**
 * A LiveKit room: `await room.connect(url, token)`, then events (typed, see `RoomEvents`) and
 * the participants' tracks; `await room.disconnect()` to leave.
 */
export class Room extends EventEmitter<RoomEvents> {
  readonly localParticipant: LocalParticipant
  /** The other participants, keyed by identity. */
  readonly remoteParticipants = new Map<string, RemoteParticipant>()
  private state: ConnectionState = ConnectionState.Disconnected
  /** @internal */
  native: NativeRoom | undefined
  private pump: Promise<void> | undefined
  private connecting: Promise<NativeRoom> | undefined
  /** @internal when the room last came back from a reconnect (ms since the epoch) */
  reconnectedAt = 0

  constructor() {
    super()
    this.localParticipant = new LocalParticipant(this)
  }

  get name(): string {
    return this.native?.name ?? ''
  }

  get sid(): string {
    return this.native?.sid ?? ''
  }

  get connectionState(): ConnectionState {
    return this.state
  }

  get isConnected(): boolean {
    return this.native !== undefined && this.state === ConnectionState.Connected
  }

  /**
   * Joins the room. Rejects with an `Error` whose `code` says why: `ERR_INVALID_URL`,
   * `ERR_INVALID_CERTIFICATE`, `ERR_CONNECTION_REFUSED`, `ERR_TLS`, `ERR_UNAUTHORIZED`,
   * `ERR_CONNECT_TIMEOUT`, `ERR_SERVER`, ...
   */
  async connect(url: string, token: string, options: RoomOptions = {}): Promise<void> {
    checkString('url', url, { nonEmpty: true })
    checkString('token', token, { nonEmpty: true, secret: true })
    const o = checkOptions<RoomOptions>('options', options)
    // Its range is the core's to check; only the JS type is checked here.
    if (o.connectTimeoutMs !== undefined && typeof o.connectTimeoutMs !== 'number') {
      throw invalidArgType('connectTimeoutMs', `an integer from 1 to ${2 ** 31 - 1}`, o.connectTimeoutMs)
    }
    const nativeOptions = {
      autoSubscribe: checkOptionalBoolean('autoSubscribe', o.autoSubscribe),
      adaptiveStream: checkOptionalBoolean('adaptiveStream', o.adaptiveStream),
      connectTimeoutMs: o.connectTimeoutMs,
      caCertificates: checkOptionalString('caCertificates', o.caCertificates),
      dynacast: checkOptionalBoolean('dynacast', o.dynacast),
      frameMetadata: checkOptionalBoolean('frameMetadata', o.frameMetadata),
      iceTransportPolicy: checkIceTransportPolicy(o.iceTransportPolicy),
    }
    if (this.native || this.connecting) {
      throw lkrtcError('ERR_ALREADY_CONNECTED', 'connect: a Room connects once (this one already did); make a new Room')
    }
    const connecting = NativeRoom.connect(url, token, nativeOptions)
    this.connecting = connecting
    try {
      this.native = await connecting
    } finally {
      this.connecting = undefined
    }
    this.state = this.native.connectionState
    for (const info of this.native.remoteParticipants()) {
      this.remoteParticipants.set(info.identity, new RemoteParticipant(info, this))
    }
    this.pump = this.run(this.native)
  }

  /**
   * Leaves the room; resolves after the `disconnected` event. Idempotent. Called while `connect`
   * is pending, it waits for that to settle and then leaves.
   */
  async disconnect(): Promise<void> {
    if (this.connecting) await this.connecting.catch(() => undefined)
    if (!this.native) return
    await this.native.disconnect()
    await this.pump
  }

  /** @internal */
  nativeRoom(what: string): NativeRoom {
    if (!this.native) throw notConnected(what)
    return this.native
  }

  private async run(native: NativeRoom): Promise<void> {
    let ended = false
    for (;;) {
      let event: NativeRoomEvent | null
      try {
        event = await native.nextEvent()
      } catch {
        event = null
      }
      if (event === null) break
      ended ||= event.type === 'disconnected'
      try {
        this.dispatch(event)
      } catch (e) {
        // A listener threw: report it as EventEmitter would, without stopping the room.
        process.nextTick(() => {
          throw e
        })
      }
    }
    if (!ended) {
      // The native room stopped without saying why: still end as a room always does.
      this.state = ConnectionState.Disconnected
      this.endTracks()
      this.emit('disconnected', 'UNKNOWN_REASON')
    }
  }

  private participant(info: ParticipantInfo): RemoteParticipant {
    let participant = this.remoteParticipants.get(info.identity)
    if (participant) participant.update(info)
    else {
      participant = new RemoteParticipant(info, this)
      this.remoteParticipants.set(info.identity, participant)
    }
    return participant
  }

  private endTracks(): void {
    for (const participant of this.remoteParticipants.values()) {
      for (const publication of participant.trackPublications.values()) {
        publication.track?.end()
      }
    }
  }

  private dispatch(event: NativeRoomEvent): void {
    switch (event.type) {
      case 'participantConnected': {
        this.emit('participantConnected', this.participant(event.participant))
        break
      }
      case 'participantDisconnected': {
        const info = event.participant
        const participant = this.remoteParticipants.get(info.identity) ?? new RemoteParticipant(info, this)
        this.remoteParticipants.delete(info.identity)
        this.emit('participantDisconnected', participant)
        break
      }
      case 'trackPublished': {
        const participant = this.participant(event.participant)
        this.emit('trackPublished', participant.publication(event.publication), participant)
        break
      }
      case 'trackUnpublished': {
        const participant =
          this.remoteParticipants.get(event.participant.identity) ?? this.participant(event.participant)
        const publication =
          participant.trackPublications.get(event.publication.sid) ?? participant.publication(event.publication)
        participant.trackPublications.delete(publication.sid)
        this.emit('trackUnpublished', publication, participant)
        break
      }
      case 'trackMuted':
      case 'trackUnmuted': {
        const participant = this.participant(event.participant)
        const publication = participant.publication(event.publication)
        publication.muted = event.type === 'trackMuted'
        this.emit(event.type, publication, participant)
        break
      }
      case 'trackUpdated': {
        const participant = this.participant(event.participant)
        this.emit('trackUpdated', participant.publication(event.publication), participant)
        break
      }
      case 'trackSubscribed': {
        const participant = this.participant(event.participant)
        const publication = participant.publication(event.publication)
        const track = new RemoteVideoTrack(event.track, this, publication.source)
        publication.track = track
        this.emit('trackSubscribed', track, publication, participant)
        break
      }
      case 'trackUnsubscribed': {
        const participant =
          this.remoteParticipants.get(event.participant.identity) ?? this.participant(event.participant)
        const publication =
          participant.trackPublications.get(event.publication.sid) ?? participant.publication(event.publication)
        const track = publication.track ?? new RemoteVideoTrack(event.track, this, publication.source)
        track.end()
        publication.track = undefined
        this.emit('trackUnsubscribed', track, publication, participant)
        break
      }
      case 'localTrackPublished': {
        const publication = this.localParticipant.publication(event.publication)
        this.emit('localTrackPublished', publication, publication.track)
        break
      }
      case 'localTrackUnpublished': {
        const info = event.publication
        const publication =
          this.localParticipant.trackPublications.get(info.sid) ?? new LocalTrackPublication(info, undefined)
        this.localParticipant.trackPublications.delete(info.sid)
        this.emit('localTrackUnpublished', publication)
        break
      }
      case 'connectionStateChanged': {
        // Back from a reconnect: `reconnected` follows, but a stream whose track ended in the
        // rejoin may ask before it comes; its wait for the participant's return counts from here.
        if (this.state === ConnectionState.Reconnecting && event.state === ConnectionState.Connected) {
          this.reconnectedAt = Date.now()
        }
        this.state = event.state
        this.emit('connectionStateChanged', event.state)
        break
      }
      case 'dataReceived': {
        const participant = this.remoteParticipants.get(event.senderIdentity)
        const payload = new Uint8Array(event.payload.buffer, event.payload.byteOffset, event.payload.byteLength)
        this.emit('dataReceived', payload, participant, event.kind, event.topic ?? undefined)
        break
      }
      case 'reconnecting':
        this.emit('reconnecting')
        break
      case 'reconnected':
        this.reconnectedAt = Date.now()
        this.emit('reconnected')
        break
      case 'disconnected': {
        this.state = ConnectionState.Disconnected
        this.endTracks()
        this.emit('disconnected', event.reason)
        break
      }
    }
  }
}
