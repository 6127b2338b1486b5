/** The @livekit/rtc-node peer: a participant nobody here wrote, for interop tests. */
import './quiet.js'

import * as rtc from '@livekit/rtc-node'

import type { Codec } from './codecs.js'
import { classify, meanRgb } from './colors.js'
import { testServer, token } from './server.js'

export { rtc }

/** rtc-node's name for each codec lkrtc has. */
export const RTC_NODE_CODEC: Record<Codec, rtc.VideoCodec> = {
  vp8: rtc.VideoCodec.VP8,
  h264: rtc.VideoCodec.H264,
  vp9: rtc.VideoCodec.VP9,
  av1: rtc.VideoCodec.AV1,
}

/** Joins `room` as `identity` with rtc-node. */
export async function joinRtcNode(room: string, identity: string): Promise<rtc.Room> {
  const server = await testServer()
  const peer = new rtc.Room()
  await peer.connect(server.url, await token(identity, room), { autoSubscribe: true, dynacast: false })
  return peer
}

/**
 * Reads `track` with rtc-node's VideoStream until `stop()` resolves or the stream ends:
 * the colour name (or undefined) of every frame received, and the frame sizes seen.
 */
export function readColours(track: rtc.RemoteTrack): {
  names: (string | undefined)[]
  sizes: Set<string>
  stop: () => Promise<void>
} {
  const names: (string | undefined)[] = []
  const sizes = new Set<string>()
  const stream = new rtc.VideoStream(track)
  const reader = stream.getReader()
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const { done, value } = await reader.read()
      if (done) break
      const rgba = value.frame.convert(rtc.VideoBufferType.RGBA)
      sizes.add(`${rgba.width}x${rgba.height}`)
      names.push(classify(meanRgb(rgba.data, rgba.width, rgba.height)))
    }
  })()
  return {
    names,
    sizes,
    stop: async () => {
      stopped = true
      await reader.cancel().catch(() => {})
      await loop.catch(() => {})
    },
  }
}
