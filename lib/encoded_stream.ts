import { NativeEncodedVideoStream, type VideoRotation } from '../index.js'
import { checkInteger, checkOptions, invalidArgType } from './errors.js'
import { RemoteVideoTrack } from './room.js'
import type { ReceivedFrameMetadata } from './video_source.js'

/** One frame of a remote track as it arrived, before decoding. */
export interface EncodedVideoFrameEvent {
  /**
   * The frame as the sender's encoder made it: a VP8 or VP9 frame, an H.264 access unit in
   * Annex-B form (start codes, SPS and PPS before each keyframe), an AV1 temporal unit.
   */
  data: Buffer
  codec: 'vp8' | 'h264' | 'vp9' | 'av1'
  /** Whether it decodes on its own. The first frame of a stream always is one. */
  keyframe: boolean
  /** Capture time in microseconds, as for decoded frames. */
  timestampUs: number
  /** The RTP timestamp (90 kHz) it was sent with. */
  rtpTimestamp: number
  rotation: VideoRotation
  /** What the publisher attached to the frame; `undefined` when it carried none. */
  metadata?: ReceivedFrameMetadata
}

export interface EncodedVideoStreamOptions {
  /**
   * Frames kept while the reader is behind (default 60, two seconds at 30 fps). When they
   * overflow, the frames waiting are dropped and the stream resumes at the next keyframe, which
   * the sender is asked for at once: what a reader gets always decodes from its last keyframe.
   */
  capacity?: number
}

const MAX_CAPACITY = 2 ** 31 - 1

/**
 * The encoded frames of a remote video track, for recorders that mux them without decoding:
 * `for await (const ev of new EncodedVideoStream(track))`. Starts at the track's next keyframe
 * (asked for at once). Ends when closed, or when the track ends (unsubscribed, unpublished,
 * its publisher left, the room disconnected).
 */
export class EncodedVideoStream implements AsyncIterableIterator<EncodedVideoFrameEvent> {
  readonly capacity: number
  private readonly native: NativeEncodedVideoStream
  private ended = false

  constructor(track: RemoteVideoTrack, options: EncodedVideoStreamOptions = {}) {
    if (!(track instanceof RemoteVideoTrack)) throw invalidArgType('track', 'a RemoteVideoTrack', track)
    const o = checkOptions<EncodedVideoStreamOptions>('options', options)
    this.capacity = o.capacity === undefined ? 60 : checkInteger('capacity', o.capacity, 1, MAX_CAPACITY)
    this.native = new NativeEncodedVideoStream(track.native, this.capacity)
  }

  /** Frames lost to a slow reader (the stream then resumed at a keyframe). */
  get droppedFrames(): number {
    return this.native.droppedFrames
  }

  async next(): Promise<IteratorResult<EncodedVideoFrameEvent, undefined>> {
    if (this.ended) return { done: true, value: undefined }
    const event = await this.native.next()
    if (!event) {
      this.ended = true
      return { done: true, value: undefined }
    }
    return { done: false, value: event as EncodedVideoFrameEvent }
  }

  async return(): Promise<IteratorResult<EncodedVideoFrameEvent, undefined>> {
    this.close()
    return { done: true, value: undefined }
  }

  /**
   * Asks the track's publisher for a keyframe: a relay whose own subscribers need one (see
   * `EncodedVideoSource.takeFeedback`), a recorder starting a new file. It goes out with the next
   * frame that is not a keyframe; the server may throttle requests that come too often.
   */
  requestKeyframe(): void {
    this.native.requestKeyframe()
  }

  /** Ends the stream; a pending `next()` resolves as done. Idempotent. */
  close(): void {
    this.ended = true
    this.native.close()
  }

  [Symbol.asyncIterator](): this {
    return this
  }
}
