import { NativeLocalVideoTrack, NativeVideoSource, VideoFrame, VideoRotation } from '../index.js'
import { checkBoolean, checkEnum, checkInteger, checkOptions, checkString, invalidArgType } from './errors.js'

export interface VideoSourceOptions {
  /** Encode for screen content (LiveKit's screen-share presets). Default `false`. */
  isScreencast?: boolean
}

export interface CaptureOptions {
  /** Capture time in microseconds on any monotonic clock; 0 or absent means now. */
  timestampUs?: number
  /** How the receiver should rotate the frame. Default `Rotation0`. */
  rotation?: VideoRotation
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
   * of another size than the last changes the source's size. Throws `ERR_CLOSED` after
   * `close()`.
   */
  captureFrame(frame: VideoFrame, options: CaptureOptions = {}): void {
    if (!(frame instanceof VideoFrame)) throw invalidArgType('frame', 'a VideoFrame', frame)
    const o = checkOptions<CaptureOptions>('options', options)
    const timestampUs =
      o.timestampUs === undefined ? 0 : checkInteger('timestampUs', o.timestampUs, 0, Number.MAX_SAFE_INTEGER)
    const rotation = checkEnum<VideoRotation>('rotation', o.rotation, VideoRotation, VideoRotation.Rotation0)
    this.native.captureFrame(frame, timestampUs, rotation)
  }

  /** Stops accepting frames; tracks publishing this source stop sending. */
  close(): void {
    this.native.close()
  }
}

/** A video track fed by a `VideoSource`; publish it with `room.localParticipant.publishTrack`. */
export class LocalVideoTrack {
  /** @internal */
  readonly native: NativeLocalVideoTrack
  readonly source: VideoSource

  private constructor(native: NativeLocalVideoTrack, source: VideoSource) {
    this.native = native
    this.source = source
  }

  static createVideoTrack(name: string, source: VideoSource): LocalVideoTrack {
    checkString('name', name)
    // `native` too: an object that only inherits from VideoSource.prototype has none.
    if (!(source instanceof VideoSource && source.native instanceof NativeVideoSource)) {
      throw invalidArgType('source', 'a VideoSource', source)
    }
    return new LocalVideoTrack(NativeLocalVideoTrack.createVideoTrack(name, source.native), source)
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
}
