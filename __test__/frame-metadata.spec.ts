/**
 * Frame metadata (`captureFrame`'s `metadata`, `VideoFrameEvent.metadata`) against a real
 * livekit-server: lkrtc to lkrtc in every codec and with simulcast, both ways with LiveKit's
 * Python SDK (the packet trailer is LiveKit's), a subscriber that never asks for it
 * (@livekit/rtc-node) still seeing the right pictures, and the checks on the values.
 * Serial where real-time media runs.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join as joinPath } from 'node:path'
import { createInterface } from 'node:readline'

import test from 'ava'

import {
  type LkrtcError,
  LocalVideoTrack,
  type RemoteParticipant,
  type RemoteTrackPublication,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  type TrackPublishOptions,
  VideoBufferType,
  type VideoFrame,
  VideoQuality,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { COLOURS, classify, meanRgb, SEQUENCE, solidRgba } from './helpers/colors.js'
import { METADATA_CODECS, type PublishedCodec } from './helpers/codecs.js'
import { joinRtcNode, readColours, rtc } from './helpers/rtc-node.js'
import { once, roomName, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

const WIDTH = 320
const HEIGHT = 240
const FPS = 15
/** Frames per colour of the published sequence. */
const RUN = 8
const BASE_TS = 1_700_000_000_000_000n
const STEP_US = 66_666n

/** What frame `n` (from 1) carries: its number, and a timestamp that is a known function of it. */
const userTimestampOf = (n: number) => BASE_TS + BigInt(n) * STEP_US
/** The colour of frame `n`: runs of `RUN` frames through `SEQUENCE`. */
const colourOf = (n: number) => SEQUENCE[Math.floor((n - 1) / RUN) % SEQUENCE.length]

type Subscribed = [RemoteVideoTrack, RemoteTrackPublication, RemoteParticipant]

async function join(room: string, identity: string): Promise<Room> {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token(identity, room))
  return lk
}

/**
 * An lkrtc publisher sending frame n (from 1) in `colourOf(n)` with `{ frameId: n,
 * userTimestamp: userTimestampOf(n) }` at 15 fps until `stop()`.
 */
async function metadataPublisher(room: string, options: TrackPublishOptions, [width, height] = [WIDTH, HEIGHT]) {
  const lk = await join(room, 'lkrtc-sender')
  const source = new VideoSource(width, height)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  const publication = await lk.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    videoEncoding: { maxBitrate: 1_500_000, maxFramerate: FPS },
    degradationPreference: 'maintain-resolution',
    ...options,
  })
  const frames = new Map(SEQUENCE.map((c) => [c, solidRgba(width, height, COLOURS[c])]))
  let n = 0
  const timer = setInterval(() => {
    n++
    source.captureFrame(frames.get(colourOf(n)) as VideoFrame, {
      metadata: { frameId: n, userTimestamp: userTimestampOf(n) },
    })
  }, 1000 / FPS)
  return {
    lk,
    publication,
    sent: () => n,
    async close() {
      clearInterval(timer)
      source.close()
      await lk.disconnect()
    },
  }
}

interface Received {
  frameId: number | undefined
  userTimestamp: bigint | undefined
  colour: string | undefined
  size?: string
}

/** Reads `stream` (RGBA) in the background: each frame's metadata and colour. */
function readMetadata(stream: VideoStream) {
  const frames: Received[] = []
  const ended = (async () => {
    for await (const { frame, metadata } of stream) {
      frames.push({
        frameId: metadata?.frameId,
        userTimestamp: metadata?.userTimestamp,
        colour: classify(meanRgb(frame.data, frame.width, frame.height)),
        size: `${frame.width}x${frame.height}`,
      })
    }
  })()
  return {
    frames,
    stop: async () => {
      stream.close()
      await ended
    },
  }
}

/**
 * Every frame carries the metadata of the frame it shows: ids increase, each timestamp is the
 * one sent with that id, and frames away from a colour change show that id's colour. With
 * `layerSwitches`, a frame may come twice where the server moved to another simulcast layer
 * (each layer encodes every frame: the last of the old layer and the first of the new one can
 * be the same capture), in another size.
 */
function checkFrames(
  t: { true(v: boolean, m?: string): void; is(a: unknown, b: unknown, m?: string): void; log(...v: unknown[]): void },
  frames: Received[],
  minFrames: number,
  { layerSwitches = false } = {},
) {
  t.log(`${frames.length} frames, ids ${frames[0]?.frameId}..${frames[frames.length - 1]?.frameId}`)
  t.true(frames.length >= minFrames, `expected at least ${minFrames} frames, got ${frames.length}`)
  let previous = 0
  let coloursChecked = 0
  for (const [i, f] of frames.entries()) {
    if (f.frameId === undefined) {
      t.true(false, `frame ${i} has no metadata`)
      return
    }
    const repeatAtSwitch = layerSwitches && f.frameId === previous && frames[i - 1]?.size !== f.size
    t.true(f.frameId > previous || repeatAtSwitch, `frame ids increase: ${previous} then ${f.frameId}`)
    previous = f.frameId
    t.is(f.userTimestamp, userTimestampOf(f.frameId), `userTimestamp of frame ${f.frameId}`)
    const inRun = (f.frameId - 1) % RUN
    // The first frames of a colour may still be converging (a delta after a big change).
    if (inRun >= 2) {
      t.is(f.colour, colourOf(f.frameId), `colour of frame ${f.frameId}`)
      coloursChecked++
    }
  }
  t.true(coloursChecked >= minFrames / 2, `colours checked on ${coloursChecked} frames`)
}

for (const codec of METADATA_CODECS) {
  test.serial(`lkrtc receives the metadata of every frame another lkrtc sends (${codec})`, async (t) => {
    const name = roomName(`meta-${codec}`)
    const viewer = await join(name, 'lkrtc-viewer')
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    const pub = await metadataPublisher(name, { videoCodec: codec as PublishedCodec, simulcast: false })
    try {
      const [track, publication] = await subscribed
      t.true(publication.frameMetadata, 'the publication advertises frame metadata')
      t.true(pub.publication.frameMetadata)
      const reader = readMetadata(new VideoStream(track, { format: VideoBufferType.RGBA }))
      await new Promise((r) => setTimeout(r, 4000))
      await reader.stop()
      checkFrames(t, reader.frames, 30)
    } finally {
      await pub.close()
      await viewer.disconnect()
    }
  })
}

test.serial('every simulcast layer carries the metadata of its frames', async (t) => {
  const name = roomName('meta-simulcast')
  const viewer = await join(name, 'lkrtc-viewer')
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
  const pub = await metadataPublisher(name, { simulcast: true }, [640, 360])
  try {
    const [track, publication] = await subscribed
    t.true(publication.simulcasted)
    const stream = new VideoStream(track, { format: VideoBufferType.RGBA })
    const reader = readMetadata(stream)
    // The subscriber starts on some layer and moves up as the estimate allows: frames of every
    // layer it sees must carry the right metadata, switches included.
    for (const quality of [VideoQuality.Low, VideoQuality.High, VideoQuality.Medium]) {
      await publication.setVideoQuality(quality)
      await new Promise((r) => setTimeout(r, 2500))
    }
    await reader.stop()
    const sizes = new Set(reader.frames.map((f) => f.size))
    t.log(`sizes seen: ${[...sizes].join(' ')}`)
    t.true(sizes.size >= 2, 'frames of more than one layer')
    checkFrames(t, reader.frames, 50, { layerSwitches: true })
  } finally {
    await pub.close()
    await viewer.disconnect()
  }
})

test.serial('rtc-node, which never asks for metadata, sees the pictures of an lkrtc track that sends it', async (t) => {
  for (const codec of METADATA_CODECS) {
    const name = roomName(`meta-rtc-node-${codec}`)
    const peer = await joinRtcNode(name, 'rtc-node-viewer')
    const subscribed = once<[rtc.RemoteTrack, rtc.RemoteTrackPublication, rtc.RemoteParticipant]>(
      peer,
      rtc.RoomEvent.TrackSubscribed,
    )
    const pub = await metadataPublisher(name, { videoCodec: codec, simulcast: false }, [640, 480])
    try {
      const [track] = await subscribed
      const reader = readColours(track)
      await new Promise((r) => setTimeout(r, 5000))
      await reader.stop()
      const named = reader.names.filter((n) => n !== undefined)
      t.log(`${codec}: ${reader.names.length} frames, ${named.length} of a known colour`)
      t.deepEqual([...reader.sizes], ['640x480'], codec)
      // Each colour lasts RUN frames and some frames straddle a change: most are still clean,
      // and every colour of the sequence appears.
      t.true(named.length >= reader.names.length * 0.6, `${codec}: ${named.length}/${reader.names.length}`)
      t.true(reader.names.length >= 40, `${codec}: ${reader.names.length} frames`)
      t.deepEqual([...new Set(named)].sort(), [...SEQUENCE].sort(), codec)
    } finally {
      await pub.close()
      await peer.disconnect()
    }
  }
})

/** The mean colour of the left half of an RGBA picture, sampled on a grid. */
function leftHalfColour(frame: VideoFrame): string | undefined {
  let [r, g, b, n] = [0, 0, 0, 0]
  for (let y = 4; y < frame.height; y += 8) {
    for (let x = 4; x < frame.width / 2; x += 8) {
      const i = (y * frame.width + x) * 4
      r += frame.data[i]
      g += frame.data[i + 1]
      b += frame.data[i + 2]
      n++
    }
  }
  return classify([r / n, g / n, b / n])
}

/**
 * A 640x480 picture: `colour`, with a strip of noise of `seed` right of the middle. The strip makes
 * frames of several packets; it is narrow enough that 15 of them a second fit the publication's
 * 2 Mbit/s, so the sender need not skip frames to keep up.
 */
function noiseStrip(colour: string, seed: number): VideoFrame {
  const frame = solidRgba(640, 480, COLOURS[colour])
  let x = seed * 2654435761
  for (let row = 0; row < 480; row++) {
    for (let col = 384; col < 448; col++) {
      x = (x * 1103515245 + 12345) >>> 0
      const i = (row * 640 + col) * 4
      frame.data[i] = x >>> 24
      frame.data[i + 1] = (x >>> 16) & 0xff
      frame.data[i + 2] = (x >>> 8) & 0xff
    }
  }
  return frame
}

for (const codec of METADATA_CODECS) {
  test.serial(
    `a subscriber that does not read metadata gets the pictures, the server having stripped it (${codec})`,
    async (t) => {
      const name = roomName(`meta-stripped-${codec}`)
      const server = await testServer()
      const viewer = new Room()
      // No CAP_PACKET_TRAILER: the server strips the trailer from the last packet of each frame.
      await viewer.connect(server.url, await token('plain-viewer', name), { frameMetadata: false })
      // What is left of a packet once its trailer is stripped must still be a packet: a receiver
      // that cannot read one drops the frame, and an lkrtc one once took it for a dead connection.
      let reconnects = 0
      viewer.on('reconnecting', () => reconnects++)
      const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
      const lk = await join(name, 'lkrtc-sender')
      const source = new VideoSource(640, 480)
      const track = LocalVideoTrack.createVideoTrack('camera', source)
      const publication = await lk.localParticipant.publishTrack(track, {
        source: TrackSource.Camera,
        videoCodec: codec,
        simulcast: false,
        videoEncoding: { maxBitrate: 2_000_000, maxFramerate: FPS },
        degradationPreference: 'maintain-resolution',
      })
      // Noise that changes every frame makes frames of many packets, so trailers fall at every
      // place of the last one.
      const pictures = new Map(SEQUENCE.map((c) => [c, [0, 1, 2, 3].map((s) => noiseStrip(c, s))]))
      let n = 0
      const timer = setInterval(() => {
        n++
        const picture = (pictures.get(colourOf(n)) as VideoFrame[])[n % 4]
        source.captureFrame(picture, { metadata: { frameId: n, userTimestamp: userTimestampOf(n) } })
      }, 1000 / FPS)
      try {
        const [remote, remotePublication] = await subscribed
        t.true(remotePublication.frameMetadata)
        const stream = new VideoStream(remote, { format: VideoBufferType.RGBA })
        const seen: { colour: string | undefined; metadata: unknown; size: string }[] = []
        const reading = (async () => {
          for await (const { frame, metadata } of stream) {
            seen.push({ colour: leftHalfColour(frame), metadata, size: `${frame.width}x${frame.height}` })
          }
        })()
        // Until 25 frames and every colour have come (frames this large can stall a while on a
        // loaded machine), 30 s at most.
        const deadline = Date.now() + 30_000
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 250))
          const colours = new Set(seen.map((f) => f.colour))
          if (seen.length >= 25 && SEQUENCE.every((c) => colours.has(c))) break
        }
        stream.close()
        await reading
        const stats = lk.localParticipant.publishStats(publication.sid)
        const perFrame = stats ? stats.bytesSent / Math.max(1, stats.framesEncoded) : 0
        t.log(`${seen.length} frames received, ${Math.round(perFrame)} bytes per frame sent`)
        t.true(perFrame > 3 * 1120, 'frames span several packets')
        // Frames this large outrun the encoder's rate at times (H.264 above all): fewer arrive.
        t.true(seen.length >= 25, `${seen.length} frames`)
        t.is(reconnects, 0, 'the viewer never lost its connection')
        t.deepEqual([...new Set(seen.map((f) => f.size))], ['640x480'])
        t.deepEqual(
          seen.filter((f) => f.metadata !== undefined),
          [],
          'every trailer was stripped by the server',
        )
        const named = seen.filter((f) => f.colour !== undefined)
        t.true(named.length >= seen.length * 0.8, `${named.length}/${seen.length} frames of a known colour`)
        t.deepEqual([...new Set(named.map((f) => f.colour))].sort(), [...SEQUENCE].sort())
      } finally {
        clearInterval(timer)
        source.close()
        await lk.disconnect()
        await viewer.disconnect()
      }
    },
  )
}

const PYTHON = joinPath(__dirname, '../.tools/pyenv/bin/python')
const PY_METADATA = joinPath(__dirname, 'helpers/py_metadata.py')
const havePython = existsSync(PYTHON)

interface PyEvent {
  event: string
  width?: number
  height?: number
  rgb?: [number, number, number]
  metadata?: { frame_id: number | null; user_timestamp: string | null } | null
  features?: number[]
}

/** LiveKit's Python SDK running `py_metadata.py <mode>`: its JSON lines, as they come. */
async function python(mode: 'subscribe' | 'publish', room: string, seconds: number, ...args: string[]) {
  const server = await testServer()
  const child: ChildProcess = spawn(
    PYTHON,
    [PY_METADATA, mode, server.url, await token(`py-${mode}`, room), String(seconds), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const events: PyEvent[] = []
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000)
  })
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    events.push(JSON.parse(line) as PyEvent)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { events, exited, stderr: () => stderr, kill: () => child.kill('SIGTERM') }
}

test.serial("LiveKit's Python SDK reads the metadata lkrtc sends", async (t) => {
  if (!havePython) return t.pass('no Python SDK (scripts/bootstrap.sh installs it)')
  const name = roomName('meta-to-py')
  const pub = await metadataPublisher(name, { simulcast: false })
  const py = await python('subscribe', name, 6)
  try {
    const code = await py.exited
    t.is(code, 0, py.stderr())
    const subscribed = py.events.find((e) => e.event === 'subscribed')
    // FMF_USER_TIMESTAMP (0) and FMF_FRAME_ID (1).
    t.deepEqual(subscribed?.features, [0, 1])
    const frames: Received[] = py.events
      .filter((e) => e.event === 'frame')
      .map((e) => ({
        frameId: e.metadata?.frame_id ?? undefined,
        userTimestamp: e.metadata?.user_timestamp ? BigInt(e.metadata.user_timestamp) : undefined,
        colour: classify(e.rgb as [number, number, number]),
      }))
    checkFrames(t, frames, 30)
  } finally {
    py.kill()
    await pub.close()
  }
})

test.serial("lkrtc reads the metadata LiveKit's Python SDK sends", async (t) => {
  if (!havePython) return t.pass('no Python SDK (scripts/bootstrap.sh installs it)')
  const name = roomName('meta-from-py')
  const viewer = await join(name, 'lkrtc-viewer')
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed', () => true, 30_000)
  const py = await python('publish', name, 8, '320', '240')
  try {
    const [track, publication] = await subscribed
    t.true(publication.frameMetadata, 'the Python publication advertises frame metadata')
    const stream = new VideoStream(track, { format: VideoBufferType.RGBA })
    const received: { frameId?: number; userTimestamp?: bigint; orange: boolean }[] = []
    for await (const { frame, metadata } of stream) {
      const [r, g, b] = meanRgb(frame.data, frame.width, frame.height)
      received.push({
        frameId: metadata?.frameId,
        userTimestamp: metadata?.userTimestamp,
        orange: Math.abs(r - 255) < 40 && Math.abs(g - 140) < 40 && b < 40,
      })
      if (received.length >= 40) break
    }
    t.log(`ids ${received[0]?.frameId}..${received[received.length - 1]?.frameId}`)
    t.is(received.length, 40)
    let previous = 0
    for (const f of received) {
      t.truthy(f.frameId, 'every frame carries a frame id')
      t.true((f.frameId ?? 0) > previous)
      previous = f.frameId ?? 0
      t.is(f.userTimestamp, 1_700_000_000_000_000n + BigInt(f.frameId ?? 0) * 66_666n)
      t.true(f.orange, 'the picture is intact (the trailer was stripped before decoding)')
    }
  } finally {
    py.kill()
    await py.exited
    await viewer.disconnect()
  }
})

test('captureFrame checks the metadata it is given', (t) => {
  const source = new VideoSource(16, 16)
  const frame = solidRgba(16, 16, COLOURS.red)
  const code = (metadata: unknown) =>
    t.throws(() => source.captureFrame(frame, { metadata } as never))?.valueOf() as LkrtcError | undefined
  for (const [metadata, expected] of [
    [{ userTimestamp: -1 }, 'ERR_INVALID_ARGUMENT'],
    [{ userTimestamp: 1.5 }, 'ERR_INVALID_ARGUMENT'],
    [{ userTimestamp: 2 ** 53 }, 'ERR_INVALID_ARGUMENT'],
    [{ userTimestamp: -1n }, 'ERR_INVALID_ARGUMENT'],
    [{ userTimestamp: 2n ** 64n }, 'ERR_INVALID_ARGUMENT'],
    [{ userTimestamp: '5' }, 'ERR_INVALID_ARG_TYPE'],
    [{ frameId: -1 }, 'ERR_INVALID_ARGUMENT'],
    [{ frameId: 2 ** 32 }, 'ERR_INVALID_ARGUMENT'],
    [{ frameId: 0.5 }, 'ERR_INVALID_ARGUMENT'],
    [{ frameId: 7n }, 'ERR_INVALID_ARG_TYPE'],
    ['soon', 'ERR_INVALID_ARG_TYPE'],
  ] as const) {
    const err = code(metadata)
    t.is(
      err?.code,
      expected,
      JSON.stringify(metadata, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)),
    )
  }
  t.regex(code({ frameId: 2 ** 32 })?.message ?? '', /metadata\.frameId: expected an integer from 0 to 4294967295/)
  t.regex(code({ userTimestamp: 2n ** 64n })?.message ?? '', /metadata\.userTimestamp: expected a bigint/)
  // The extremes are accepted.
  source.captureFrame(frame, { metadata: { userTimestamp: 2n ** 64n - 1n, frameId: 2 ** 32 - 1 } })
  source.captureFrame(frame, { metadata: { userTimestamp: Number.MAX_SAFE_INTEGER, frameId: 0 } })
  source.captureFrame(frame, { metadata: {} })
  t.is(source.capturedFrames, 3)
  source.close()
})
