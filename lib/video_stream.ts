import {
  ConnectionState,
  NativeLocalVideoTrack,
  NativeVideoStream,
  TrackSource,
  VideoBufferType,
  type VideoFrame,
  type VideoRotation,
} from '../index.js'
import { checkEnum, checkInteger, checkOptions, invalidArgType } from './errors.js'
import { MAX_VIDEO_SIZE, RemoteParticipant, RemoteVideoTrack, type Room } from './room.js'
import { LocalVideoTrack, type ReceivedFrameMetadata } from './video_source.js'

/** One received frame. */
export interface VideoFrameEvent {
  /** In the stream's `format`; its memory belongs to JS (no copy was made to hand it over). */
  frame: VideoFrame
  /** Capture time in microseconds. */
  timestampUs: number
  rotation: VideoRotation
  /**
   * What the publisher attached with `captureFrame`'s `metadata` (or LiveKit's other SDKs with
   * their frame metadata); `undefined` when the frame carried none. A stream on a local track
   * gets it as captured.
   */
  metadata?: ReceivedFrameMetadata
}

export interface VideoStreamOptions {
  /**
   * Frames kept while the reader is busy: when full, the oldest is dropped (see `droppedFrames`).
   * 0 keeps every frame. Default 0.
   */
  capacity?: number
  /** The frames' `VideoBufferType`. Default `I420`, as decoded (no conversion). */
  format?: VideoBufferType
  /**
   * The picture width this reader wants, with `height` (both or neither; integers from 1 to
   * 16384). With the room's `adaptiveStream` on, lkrtc asks for the smallest layer of the track
   * at least this big (the largest any open stream of the track wants). Frames are not scaled:
   * they come in the size of the layer received, which changes when the layer does. Ignored with
   * `adaptiveStream` off.
   */
  width?: number
  height?: number
}

export interface FromTrackOptions extends VideoStreamOptions {
  track: RemoteVideoTrack | LocalVideoTrack
}

export interface FromParticipantOptions extends VideoStreamOptions {
  participant: RemoteParticipant
  /** Which of the participant's tracks to follow. Default `TrackSource.Camera`. */
  trackSource?: TrackSource
}

const MAX_CAPACITY = 2 ** 31 - 1

/**
 * Why a `VideoStream` ended:
 * - `closed`: `close()`, `return()` (a `break` out of `for await`) or `[Symbol.asyncDispose]`;
 * - `unsubscribed`: we unsubscribed from the track;
 * - `unpublished`: its publisher unpublished it (or did not publish it again within
 *   `REJOIN_GRACE_MS` of a full reconnect);
 * - `participantLeft`: its publisher left the room (or did not come back within
 *   `REJOIN_GRACE_MS` of a full reconnect);
 * - `disconnected`: the room disconnected; its `disconnected` event says why;
 * - `sourceClosed`: (a stream on a local track) its `VideoSource` was closed.
 */
export type VideoStreamEndReason =
  | 'closed'
  | 'unsubscribed'
  | 'unpublished'
  | 'participantLeft'
  | 'disconnected'
  | 'sourceClosed'

/**
 * The decoded frames of a remote video track, as an async iterable:
 *
 * ```ts
 * for await (const { frame, timestampUs } of new VideoStream(track, { format: VideoBufferType.RGBA })) { ... }
 * ```
 *
 * Ends when the track is unsubscribed or unpublished, its publisher leaves, the room disconnects
 * or `close()` is called; `endReason` then says which. A full reconnect (e.g. a restarted server)
 * ends every remote track, and the publisher publishes it again as a new one: the stream carries
 * on with the new track of the same participant, source and name, waiting up to
 * `REJOIN_GRACE_MS` after `reconnected` for it.
 * `VideoStream.fromParticipant` follows whichever track a participant publishes for a source,
 * including ones published later, and ends when that participant leaves (also across a full
 * reconnect, with the same grace).
 *
 * On a `LocalVideoTrack` (a preview, a recorder), a stream yields the frames captured on its
 * source from now on, published or not, as captured (converted to `format` on the capturing
 * call, once per format however many streams want it; `width`/`height` do not apply), with the
 * timestamps and rotation given to `captureFrame`. It ends when the source is closed
 * (`sourceClosed`) or on `close()`.
 */
export class VideoStream implements AsyncIterableIterator<VideoFrameEvent> {
  readonly capacity: number
  readonly format: VideoBufferType
  /** The size wanted (`width`, `height`), if given. */
  readonly size: { width: number; height: number } | undefined
  private readonly tracks: TrackFollower | undefined
  private current: NativeVideoStream | undefined
  private reason: VideoStreamEndReason | undefined
  /** @internal */
  closed = false
  private finished = false
  private droppedBefore = 0
  private chain: Promise<unknown> = Promise.resolve()
  /** @internal wakes a stream waiting for its participant's next track */
  wake: (() => void) | undefined

  constructor(track: RemoteVideoTrack | LocalVideoTrack, options: VideoStreamOptions = {}) {
    const follower = (track as unknown) instanceof TrackFollower ? (track as unknown as TrackFollower) : undefined
    // `native` too: an object that only inherits from LocalVideoTrack.prototype has none.
    const local = track instanceof LocalVideoTrack && track.native instanceof NativeLocalVideoTrack ? track : undefined
    if (!follower && !local && !(track instanceof RemoteVideoTrack)) {
      throw invalidArgType('track', 'a RemoteVideoTrack or a LocalVideoTrack', track)
    }
    const o = checkOptions<VideoStreamOptions>('options', options)
    this.capacity = o.capacity === undefined ? 0 : checkInteger('capacity', o.capacity, 0, MAX_CAPACITY)
    this.format = checkEnum<VideoBufferType>('format', o.format, VideoBufferType, VideoBufferType.I420)
    if ((o.width === undefined) !== (o.height === undefined)) {
      const missing = o.width === undefined ? 'width' : 'height'
      throw invalidArgType(
        missing,
        `an integer from 1 to ${MAX_VIDEO_SIZE} (with ${missing === 'width' ? 'height' : 'width'})`,
        undefined,
      )
    }
    this.size =
      o.width === undefined
        ? undefined
        : {
            width: checkInteger('width', o.width, 1, MAX_VIDEO_SIZE),
            height: checkInteger('height', o.height, 1, MAX_VIDEO_SIZE),
          }
    if (local) {
      this.current = NativeVideoStream.fromLocal(local.native, this.capacity, this.format)
    } else {
      const remote = track as RemoteVideoTrack
      this.tracks = follower ?? new TrackFollower(remote.room, remote.participantIdentity, remote.source, remote)
    }
  }

  /** The same as `new VideoStream(track, options)`. */
  static fromTrack(options: FromTrackOptions): VideoStream {
    const o = checkOptions<FromTrackOptions>('options', options)
    return new VideoStream(o.track as RemoteVideoTrack | LocalVideoTrack, o)
  }

  /**
   * Frames of whatever track `participant` publishes (and we subscribe to) for `trackSource`,
   * now or later, one track after another. Ends when the participant leaves, the room
   * disconnects or `close()` is called.
   */
  static fromParticipant(options: FromParticipantOptions): VideoStream {
    const o = checkOptions<FromParticipantOptions>('options', options)
    if (!(o.participant instanceof RemoteParticipant)) {
      throw invalidArgType('participant', 'a RemoteParticipant', o.participant)
    }
    const source = checkEnum<TrackSource>('trackSource', o.trackSource, TrackSource, TrackSource.Camera)
    const follower = new TrackFollower(o.participant.room, o.participant.identity, source)
    return new VideoStream(follower as unknown as RemoteVideoTrack, o)
  }

  /** Why the stream ended; `undefined` while it runs. */
  get endReason(): VideoStreamEndReason | undefined {
    return this.reason
  }

  /** Frames dropped so far because the reader was slower than the track (see `capacity`). */
  get droppedFrames(): number {
    return this.droppedBefore + (this.current?.droppedFrames ?? 0)
  }

  /** The next frame; `{ done: true }` once the stream has ended. */
  next(): Promise<IteratorResult<VideoFrameEvent, undefined>> {
    const step = this.chain.then(() => this.step())
    this.chain = step.catch(() => undefined)
    return step
  }

  private async step(): Promise<IteratorResult<VideoFrameEvent, undefined>> {
    while (!this.closed) {
      if (!this.current) {
        // A local stream has one native stream only: once it ended, so has this one.
        if (!this.tracks) break
        const track = await this.tracks.next(this)
        if (!track || this.closed) break
        this.current = new NativeVideoStream(
          track.native,
          this.capacity,
          this.format,
          this.size?.width,
          this.size?.height,
        )
      }
      const event = await this.current.next()
      if (event) return { done: false, value: event }
      this.retire()
    }
    this.retire()
    this.finished = true
    this.reason ??= this.closed ? 'closed' : (this.tracks?.whyEnded() ?? 'sourceClosed')
    return { done: true, value: undefined }
  }

  private retire(): void {
    if (!this.current) return
    this.droppedBefore += this.current.droppedFrames
    this.current.close()
    this.current = undefined
  }

  /** Ends the stream: a pending `next()` resolves with `{ done: true }`. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    if (!this.finished) this.reason = 'closed'
    this.current?.close()
    this.wake?.()
  }

  /** Whether the stream has ended (closed or its source ended). */
  get isClosed(): boolean {
    return this.closed || this.finished
  }

  async return(): Promise<IteratorResult<VideoFrameEvent, undefined>> {
    this.close()
    return { done: true, value: undefined }
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close()
  }
}

/**
 * How long a participant-following stream waits for its participant to come back after the room
 * reconnected (a restarted server sees everyone rejoin, each on its own backoff).
 */
export const REJOIN_GRACE_MS = 30_000

/**
 * The tracks a stream reads, one after another. Following a participant (`fromParticipant`): any
 * track they publish for a source, until they leave. Following a track: that track, then, when
 * a full reconnect ended it, its successor as the core names it (`successor`: the track its
 * participant publishes again with the same source and name). Across a full reconnect the
 * participant leaves and rejoins with new tracks: both wait for them up to `REJOIN_GRACE_MS`
 * after `reconnected`.
 */
class TrackFollower {
  private last: RemoteVideoTrack | undefined
  /** When the last track was seen to end in a rejoin (ms since the epoch). */
  private rejoinSeenAt = 0

  constructor(
    private readonly room: Room,
    private readonly identity: string,
    private readonly source: TrackSource,
    private readonly first?: RemoteVideoTrack,
  ) {}

  private find(): RemoteVideoTrack | undefined {
    const participant = this.room.remoteParticipants.get(this.identity)
    if (!participant) return undefined
    // A followed track carries on with the successor the core names for it (through every
    // rejoin since); a followed participant with any track of the source.
    let successor = this.first ? this.last?.native.successor : undefined
    while (successor?.endReason === 'rejoined' && successor.successor) successor = successor.successor
    if (this.first && !successor) return undefined
    for (const publication of participant.trackPublications.values()) {
      const track = publication.track
      if (publication.source !== this.source || !track || track.ended || track === this.last) continue
      if (!successor || track.sid === successor.sid) return track
    }
    return undefined
  }

  /** Milliseconds left to wait for the next track; 0 when the stream should end. */
  private patience(): number {
    const room = this.room
    if (room.connectionState === ConnectionState.Disconnected) return 0
    if (room.connectionState === ConnectionState.Reconnecting) return Infinity
    const grace = Math.max(room.reconnectedAt, this.rejoinSeenAt) + REJOIN_GRACE_MS - Date.now()
    if (this.first) return Math.max(0, grace)
    return room.remoteParticipants.has(this.identity) ? Infinity : Math.max(0, grace)
  }

  /** The next track to read, waiting for one; `undefined` when the stream should end. */
  async next(stream: VideoStream): Promise<RemoteVideoTrack | undefined> {
    const room = this.room
    if (this.first && !this.last) {
      this.last = this.first
      if (!this.first.ended) return this.first
    }
    if (this.first) {
      // A followed track carries on only across a rejoin.
      if (this.last?.native.endReason !== 'rejoined') return undefined
      this.rejoinSeenAt ||= Date.now()
    }
    for (;;) {
      const patience = this.patience()
      if (stream.closed || patience === 0) return undefined
      const track = this.find()
      if (track) {
        this.last = track
        this.rejoinSeenAt = 0
        return track
      }
      await new Promise<void>((resolve) => {
        const events = [
          'trackSubscribed',
          'participantConnected',
          'participantDisconnected',
          'reconnected',
          'disconnected',
        ] as const
        const timer = patience === Infinity ? undefined : setTimeout(() => done(), patience)
        const done = () => {
          for (const event of events) room.off(event, done)
          clearTimeout(timer)
          stream.wake = undefined
          resolve()
        }
        for (const event of events) room.on(event, done)
        stream.wake = done
      })
    }
  }

  /** Why the stream ended, once `next` gave up. */
  whyEnded(): VideoStreamEndReason {
    const ended = this.last?.native.endReason ?? null
    if (this.room.connectionState === ConnectionState.Disconnected || ended === 'disconnected') return 'disconnected'
    if (!this.first || !this.room.remoteParticipants.has(this.identity)) return 'participantLeft'
    if (ended === 'unsubscribed' || ended === 'unpublished' || ended === 'participantLeft') return ended
    // Gave up waiting for the track to come back after a rejoin, or it ended without a reason.
    return ended === 'rejoined' ? 'unpublished' : 'unsubscribed'
  }
}
