import { ConnectionState, NativeVideoStream, TrackSource, VideoBufferType, type VideoFrame, type VideoRotation } from '../index.js'
import { checkEnum, checkInteger, checkOptions, invalidArgType } from './errors.js'
import { RemoteParticipant, RemoteVideoTrack } from './room.js'

/** One received frame. */
export interface VideoFrameEvent {
  /** In the stream's `format`; its memory belongs to JS (no copy was made to hand it over). */
  frame: VideoFrame
  /** Capture time in microseconds. */
  timestampUs: number
  rotation: VideoRotation
}

export interface VideoStreamOptions {
  /**
   * Frames kept while the reader is busy: when full, the oldest is dropped (see `droppedFrames`).
   * 0 keeps every frame. Default 0.
   */
  capacity?: number
  /** The frames' `VideoBufferType`. Default `I420`, as decoded (no conversion). */
  format?: VideoBufferType
}

export interface FromTrackOptions extends VideoStreamOptions {
  track: RemoteVideoTrack
}

export interface FromParticipantOptions extends VideoStreamOptions {
  participant: RemoteParticipant
  /** Which of the participant's tracks to follow. Default `TrackSource.Camera`. */
  trackSource?: TrackSource
}

const MAX_CAPACITY = 2 ** 31 - 1

/**
 * The decoded frames of a remote video track, as an async iterable:
 *
 * ```ts
 * for await (const { frame, timestampUs } of new VideoStream(track, { format: VideoBufferType.RGBA })) { ... }
 * ```
 *
 * Ends when the track is unsubscribed, the room disconnects or `close()` is called.
 * `VideoStream.fromParticipant` follows whichever track a participant publishes for a source,
 * including ones published later, and ends when that participant leaves. It follows the
 * participant across a full reconnect (e.g. a restarted server), waiting up to `REJOIN_GRACE_MS`
 * after `reconnected` for them to rejoin and republish.
 */
export class VideoStream implements AsyncIterableIterator<VideoFrameEvent> {
  readonly capacity: number
  readonly format: VideoBufferType
  private readonly nextTrack: () => Promise<RemoteVideoTrack | undefined>
  private current: NativeVideoStream | undefined
  /** @internal */
  closed = false
  private finished = false
  private droppedBefore = 0
  private chain: Promise<unknown> = Promise.resolve()
  /** @internal wakes a stream waiting for its participant's next track */
  wake: (() => void) | undefined

  constructor(track: RemoteVideoTrack, options: VideoStreamOptions = {}) {
    const follower = (track as unknown) instanceof ParticipantTracks ? (track as unknown as ParticipantTracks) : undefined
    if (!follower && !(track instanceof RemoteVideoTrack)) throw invalidArgType('track', 'a RemoteVideoTrack', track)
    const o = checkOptions<VideoStreamOptions>('options', options)
    this.capacity = o.capacity === undefined ? 0 : checkInteger('capacity', o.capacity, 0, MAX_CAPACITY)
    this.format = checkEnum<VideoBufferType>('format', o.format, VideoBufferType, VideoBufferType.I420)
    if (follower) {
      this.nextTrack = () => follower.next(this)
    } else {
      let given = false
      this.nextTrack = async () => {
        if (given || track.ended) return undefined
        given = true
        return track
      }
    }
  }

  /** The same as `new VideoStream(track, options)`. */
  static fromTrack(options: FromTrackOptions): VideoStream {
    const o = checkOptions<FromTrackOptions>('options', options)
    return new VideoStream(o.track as RemoteVideoTrack, o)
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
    const follower = new ParticipantTracks(o.participant, source)
    return new VideoStream(follower as unknown as RemoteVideoTrack, o)
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
        const track = await this.nextTrack()
        if (!track || this.closed) break
        this.current = new NativeVideoStream(track.native, this.capacity, this.format)
      }
      const event = await this.current.next()
      if (event) return { done: false, value: event }
      this.retire()
    }
    this.retire()
    this.finished = true
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
 * The tracks one participant (by identity) publishes for one source, one after another. Across a
 * full reconnect the participant leaves and rejoins with new tracks: the stream follows them.
 */
class ParticipantTracks {
  private last: RemoteVideoTrack | undefined
  private readonly identity: string
  private readonly room: RemoteParticipant['room']

  constructor(
    participant: RemoteParticipant,
    private readonly source: TrackSource,
  ) {
    this.identity = participant.identity
    this.room = participant.room
  }

  private find(): RemoteVideoTrack | undefined {
    const participant = this.room.remoteParticipants.get(this.identity)
    if (!participant) return undefined
    for (const publication of participant.trackPublications.values()) {
      const track = publication.track
      if (publication.source === this.source && track && !track.ended && track !== this.last) return track
    }
    return undefined
  }

  /** Milliseconds left to wait for an absent participant; 0 when the stream should end. */
  private patience(): number {
    const room = this.room
    if (room.connectionState === ConnectionState.Disconnected) return 0
    if (room.remoteParticipants.has(this.identity) || room.connectionState === ConnectionState.Reconnecting) {
      return Infinity
    }
    return Math.max(0, room.reconnectedAt + REJOIN_GRACE_MS - Date.now())
  }

  /** The next track to read, waiting for one; `undefined` when the stream should end. */
  async next(stream: VideoStream): Promise<RemoteVideoTrack | undefined> {
    const room = this.room
    for (;;) {
      const patience = this.patience()
      if (stream.closed || patience === 0) return undefined
      const track = this.find()
      if (track) {
        this.last = track
        return track
      }
      await new Promise<void>((resolve) => {
        const events = ['trackSubscribed', 'participantConnected', 'participantDisconnected', 'reconnected', 'disconnected'] as const
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
}
