/**
 * Encoded frames of a remote track, before decoding (`EncodedVideoStream`), for recorders that
 * mux them: checked in their bitstream (VP8 frame headers with the picture's size, H.264 NAL
 * units), their timing, and what a slow reader gets. Serial: real-time media.
 */
import test from 'ava'

import {
  EncodedVideoStream,
  type EncodedVideoFrameEvent,
  LocalVideoTrack,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoSource,
} from '../lib/index.js'
import { solidRgba } from './helpers/colors.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await stopTestServer()
})

/** lkrtc publishes `width` x `height` in `codec`, one layer, 15 fps; another lkrtc participant
 * subscribes. */
async function call(prefix: string, codec: 'vp8' | 'h264', [width, height] = [640, 360]) {
  const server = await testServer()
  const room = roomName(prefix)
  const viewer = new Room()
  await viewer.connect(server.url, await token('recorder', room))
  const subscribed = once<[RemoteVideoTrack]>(viewer, 'trackSubscribed')
  const lk = new Room()
  await lk.connect(server.url, await token('camera', room))
  const source = new VideoSource(width, height)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  await lk.localParticipant.publishTrack(track, { source: TrackSource.Camera, videoCodec: codec, simulcast: false })
  const frames = [solidRgba(width, height, [200, 30, 30]), solidRgba(width, height, [30, 30, 200])]
  let n = 0
  const timer = setInterval(() => source.captureFrame(frames[Math.floor(n++ / 15) % 2]), 66)
  const [remote] = await subscribed
  return {
    remote,
    async close() {
      clearInterval(timer)
      await lk.disconnect()
      await viewer.disconnect()
    },
  }
}

async function take(stream: EncodedVideoStream, count: number): Promise<EncodedVideoFrameEvent[]> {
  const got: EncodedVideoFrameEvent[] = []
  for await (const ev of stream) {
    got.push(ev)
    if (got.length === count) break
  }
  return got
}

/** The NAL unit types of an Annex-B access unit. */
function nalTypes(au: Uint8Array): number[] {
  const types: number[] = []
  for (let i = 0; i + 3 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      types.push(au[i + 3] & 0x1f)
      i += 3
    }
  }
  return types
}

test.serial('VP8 frames arrive from a keyframe, whose header holds the picture size', async (t) => {
  const c = await call('enc-vp8', 'vp8')
  try {
    const frames = await take(new EncodedVideoStream(c.remote), 30)
    t.is(frames.length, 30)
    t.true(frames[0].keyframe)
    for (const f of frames) {
      t.is(f.codec, 'vp8')
      // VP8's frame tag: bit 0 clear on a keyframe (RFC 6386 9.1).
      t.is((f.data[0] & 1) === 0, f.keyframe)
    }
    const key = frames[0].data
    t.deepEqual([...key.subarray(3, 6)], [0x9d, 0x01, 0x2a], 'keyframe start code')
    const width = (key[6] | (key[7] << 8)) & 0x3fff
    const height = (key[8] | (key[9] << 8)) & 0x3fff
    t.deepEqual([width, height], [640, 360])
    // 15 fps: 6000 ticks of 90 kHz apart, in order; capture times follow.
    for (let i = 1; i < frames.length; i++) {
      const ticks = (frames[i].rtpTimestamp - frames[i - 1].rtpTimestamp) >>> 0
      t.true(ticks > 3000 && ticks < 20000, `${ticks} ticks between frames ${i - 1} and ${i}`)
      t.true(frames[i].timestampUs > frames[i - 1].timestampUs)
    }
  } finally {
    await c.close()
  }
})

test.serial('H.264 access units arrive in Annex-B form, keyframes with SPS, PPS and IDR', async (t) => {
  const c = await call('enc-h264', 'h264', [320, 240])
  try {
    const frames = await take(new EncodedVideoStream(c.remote), 20)
    t.true(frames[0].keyframe)
    for (const f of frames) {
      t.is(f.codec, 'h264')
      const types = nalTypes(f.data)
      if (f.keyframe)
        t.true(
          [7, 8, 5].every((n) => types.includes(n)),
          `keyframe NAL types ${types}`,
        )
      else t.true(types.includes(1), `delta NAL types ${types}`)
    }
  } finally {
    await c.close()
  }
})

test.serial('a slow reader loses the frames waiting and resumes at a keyframe', async (t) => {
  const c = await call('enc-slow', 'vp8')
  try {
    const stream = new EncodedVideoStream(c.remote, { capacity: 3 })
    const first = await stream.next()
    t.true(first.value?.keyframe)
    // Not reading for 2 s: 30 frames for a queue of 3.
    await sleep(2000)
    t.true(stream.droppedFrames > 0, `${stream.droppedFrames} dropped`)
    const next = await stream.next()
    t.false(next.done)
    t.true(next.value?.keyframe, 'the first frame after the loss is a keyframe')
    stream.close()
    t.true((await stream.next()).done)
  } finally {
    await c.close()
  }
})

test('an encoded stream needs a remote track', (t) => {
  const error = t.throws(() => new EncodedVideoStream({} as RemoteVideoTrack))
  t.is((error as { code?: string }).code, 'ERR_INVALID_ARG_TYPE')
})
