/**
 * Simulcast publishing against a real livekit-server: the layers lkrtc sends (sizes, rids,
 * per-layer counters), what a subscriber asking for a quality receives (LiveKit's Python SDK
 * as the subscriber: `set_video_quality`), dynacast pausing layers nobody watches, and the
 * checks on `simulcastLayers`. Serial: each test runs real-time media.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join as joinPath } from 'node:path'
import { createInterface } from 'node:readline'

import test from 'ava'

import {
  type LayerPublishStats,
  LocalVideoTrack,
  type PublishStats,
  Room,
  type TrackPublishOptions,
  TrackSource,
  VideoBufferType,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { COLOURS, type Rgb, readStreamColours, solidRgba } from './helpers/colors.js'
import { roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await stopTestServer()
})

const PYTHON = joinPath(__dirname, '../.tools/pyenv/bin/python')
const PY_SUBSCRIBER = joinPath(__dirname, 'helpers/py_subscriber.py')

async function join(room: string, identity: string, options: { dynacast?: boolean } = {}): Promise<Room> {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token(identity, room), options)
  return lk
}

/** An lkrtc publisher whose `width` x `height` source shows `colour` at 15 fps. */
async function publisher(
  room: string,
  width: number,
  height: number,
  colour: Rgb,
  options: TrackPublishOptions = {},
  roomOptions: { dynacast?: boolean } = {},
) {
  const lk = await join(room, 'publisher', roomOptions)
  const source = new VideoSource(width, height)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  const publication = await lk.localParticipant.publishTrack(track, { source: TrackSource.Camera, ...options })
  const frame = solidRgba(width, height, colour)
  const timer = setInterval(() => {
    if (!source.isClosed) source.captureFrame(frame)
  }, 66)
  return {
    lk,
    publication,
    stats: () => lk.localParticipant.publishStats(publication.sid) as PublishStats,
    async close() {
      clearInterval(timer)
      source.close()
      await lk.disconnect()
    },
  }
}

interface PyFrame {
  width: number
  height: number
  rgb: Rgb
}

/** LiveKit's Python SDK subscribing to the room's video at `quality`, for `seconds`. */
async function pythonSubscriber(
  room: string,
  quality: 'low' | 'medium' | 'high',
  seconds: number,
  then?: { afterSeconds: number; quality: 'low' | 'medium' | 'high' },
) {
  const server = await testServer()
  const switchArgs = then ? [String(then.afterSeconds), then.quality] : []
  const child: ChildProcess = spawn(
    PYTHON,
    [PY_SUBSCRIBER, server.url, await token(`py-${quality}`, room), quality, String(seconds), ...switchArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const frames: PyFrame[] = []
  let stderr = ''
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-4000)
  })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  lines.on('line', (line) => {
    const msg = JSON.parse(line) as { event: string } & PyFrame
    if (msg.event === 'frame') frames.push({ width: msg.width, height: msg.height, rgb: msg.rgb })
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    frames,
    exited,
    stderr: () => stderr,
    kill: () => child.kill('SIGTERM'),
  }
}

const near = (a: Rgb, b: Rgb, tolerance = 40) => a.every((c, i) => Math.abs(c - b[i]) <= tolerance)

function layerSizes(layers: LayerPublishStats[]): string[] {
  return layers.map((l) => `${l.rid}:${l.width}x${l.height}`)
}

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(100)
  }
}

const havePython = existsSync(PYTHON)

test.serial('a 1280x720 publication sends 320x180, 640x360 and 1280x720 layers, each encoded', async (t) => {
  const pub = await publisher(roomName('sim-layers'), 1280, 720, COLOURS.red)
  try {
    t.true(pub.publication.simulcasted)
    const stats = await waitFor('every layer encoding', () => {
      const s = pub.stats()
      return s.layers.every((l) => l.framesEncoded > 0 && l.bytesSent > 0) ? s : undefined
    })
    t.deepEqual(layerSizes(stats.layers), ['q:320x180', 'h:640x360', 'f:1280x720'])
    t.true(stats.framesEncoded >= stats.layers.reduce((n, l) => n + l.framesEncoded, 0) - 3)
  } finally {
    await pub.close()
  }
})

test.serial('a 640x360 source sends two layers and a 320x240 one a single layer', async (t) => {
  const room = roomName('sim-small')
  const medium = await publisher(room, 640, 360, COLOURS.green)
  try {
    t.true(medium.publication.simulcasted)
    t.deepEqual(layerSizes(medium.stats().layers), ['q:320x180', 'h:640x360'])
  } finally {
    await medium.close()
  }
  const small = await publisher(room, 320, 240, COLOURS.green)
  try {
    t.false(small.publication.simulcasted)
    t.deepEqual(layerSizes(small.stats().layers), [':320x240'])
  } finally {
    await small.close()
  }
})

test.serial('simulcast: false sends the source alone', async (t) => {
  const pub = await publisher(roomName('sim-off'), 1280, 720, COLOURS.blue, { simulcast: false })
  try {
    t.false(pub.publication.simulcasted)
    t.deepEqual(layerSizes(pub.stats().layers), [':1280x720'])
  } finally {
    await pub.close()
  }
})

test.serial('simulcastLayers choose the lower layers', async (t) => {
  const pub = await publisher(roomName('sim-custom'), 1280, 720, COLOURS.blue, {
    simulcastLayers: [
      { width: 480, height: 270, encoding: { maxBitrate: 300_000, maxFramerate: 15 } },
      { width: 160, height: 90, encoding: { maxBitrate: 60_000, maxFramerate: 10 } },
    ],
  })
  try {
    t.deepEqual(layerSizes(pub.stats().layers), ['q:160x90', 'h:480x270', 'f:1280x720'])
  } finally {
    await pub.close()
  }
})

test.serial('unusable simulcastLayers are refused with a typed error', async (t) => {
  const lk = await join(roomName('sim-bad'), 'publisher')
  const source = new VideoSource(1280, 720)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  const layer = (width: number, height: number, maxBitrate = 100_000, maxFramerate = 15) => ({
    width,
    height,
    encoding: { maxBitrate, maxFramerate },
  })
  try {
    const cases: [string, unknown][] = [
      ['three lower layers', [layer(160, 90), layer(320, 180), layer(640, 360)]],
      ['a layer as big as the source', [layer(1280, 720)]],
      ['a zero width', [layer(0, 180)]],
      ['a fractional height', [layer(320, 180.5)]],
      ['a bitrate below 1000', [layer(320, 180, 999)]],
      ['a frame rate of 0', [layer(320, 180, 100_000, 0)]],
      ['two layers of one size', [layer(320, 180), layer(320, 180)]],
    ]
    for (const [what, simulcastLayers] of cases) {
      const err = await t.throwsAsync(
        lk.localParticipant.publishTrack(track, { simulcastLayers } as TrackPublishOptions),
        undefined,
        what,
      )
      t.is((err as { code?: string }).code, 'ERR_INVALID_ARGUMENT', `${what}: ${err?.message}`)
      t.regex(err?.message ?? '', /simulcastLayers/, what)
    }
    const notArray = await t.throwsAsync(
      lk.localParticipant.publishTrack(track, { simulcastLayers: 'low' } as unknown as TrackPublishOptions),
    )
    t.is((notArray as { code?: string }).code, 'ERR_INVALID_ARG_TYPE')
    t.is(track.sid, undefined, 'nothing was published')
  } finally {
    source.close()
    await lk.disconnect()
  }
})

for (const codec of ['vp8', 'h264'] as const) {
  test.serial(`a Python subscriber asking Low gets the 320x180 layer in its colours (${codec})`, async (t) => {
    if (!havePython) return t.fail(`LiveKit's Python SDK is not installed at ${PYTHON} (bash scripts/bootstrap.sh)`)
    const room = roomName(`sim-low-${codec}`)
    const pub = await publisher(room, 1280, 720, COLOURS.red, { videoCodec: codec })
    const sub = await pythonSubscriber(room, 'low', 12)
    try {
      await waitFor('10 frames of 320x180', () => sub.frames.filter((f) => f.width === 320).length >= 10 || undefined)
      const last = sub.frames.slice(-5)
      t.true(
        last.every((f) => f.width === 320 && f.height === 180),
        JSON.stringify(last),
      )
      t.true(
        last.every((f) => near(f.rgb, COLOURS.red)),
        JSON.stringify(last),
      )
    } catch (e) {
      t.log(sub.stderr())
      throw e
    } finally {
      sub.kill()
      await sub.exited
      await pub.close()
    }
  })
}

test.serial('a Python subscriber asking High gets the full 1280x720 picture in its colours', async (t) => {
  if (!havePython) return t.fail(`LiveKit's Python SDK is not installed at ${PYTHON} (bash scripts/bootstrap.sh)`)
  const room = roomName('sim-high')
  const pub = await publisher(room, 1280, 720, COLOURS.green)
  const sub = await pythonSubscriber(room, 'high', 25)
  try {
    await waitFor('10 frames of 1280x720', () => sub.frames.filter((f) => f.width === 1280).length >= 10 || undefined)
    const full = sub.frames.filter((f) => f.width === 1280)
    t.true(
      full.every((f) => f.height === 720 && near(f.rgb, COLOURS.green)),
      JSON.stringify(full.slice(-3)),
    )
  } catch (e) {
    t.log(sub.stderr(), JSON.stringify(pub.stats()))
    throw e
  } finally {
    sub.kill()
    await sub.exited
    await pub.close()
  }
})

test.serial(
  'an lkrtc subscriber gets the full picture of a simulcast publication, every frame in its colours',
  async (t) => {
    const room = roomName('sim-lkrtc')
    const pub = await publisher(room, 1280, 720, COLOURS.red)
    const viewer = await join(room, 'viewer')
    try {
      const remote = await waitFor('the publication', () =>
        [...viewer.remoteParticipants.values()].flatMap((p) => [...p.trackPublications.values()]).find((p) => p.track),
      )
      t.true(remote.simulcasted)
      const stream = new VideoStream(remote.track as NonNullable<typeof remote.track>, { format: VideoBufferType.RGBA })
      const reader = readStreamColours(stream)
      try {
        await waitFor('a 1280x720 frame', () => reader.sizes.has('1280x720') || undefined)
        await sleep(1000)
      } finally {
        await reader.stop()
      }
      t.true(reader.sizes.has('1280x720'), `sizes seen: ${[...reader.sizes].join(' ')}`)
      // Whatever layer the server forwarded, every decoded picture is the source's colour.
      t.true(
        reader.names.every((n) => n === 'red'),
        `${reader.names.filter((n) => n !== 'red').length} of ${reader.names.length} frames not red`,
      )
    } finally {
      await viewer.disconnect()
      await pub.close()
    }
  },
)

test.serial('with dynacast, layers nobody watches are paused while Low keeps encoding', async (t) => {
  if (!havePython) return t.fail(`LiveKit's Python SDK is not installed at ${PYTHON} (bash scripts/bootstrap.sh)`)
  const room = roomName('sim-dynacast')
  const pub = await publisher(room, 1280, 720, COLOURS.blue, {}, { dynacast: true })
  const sub = await pythonSubscriber(room, 'low', 25)
  try {
    await waitFor('frames at the subscriber', () => sub.frames.length >= 5 || undefined)
    const paused = await waitFor('h and f paused', () => {
      const s = pub.stats()
      return s.layers[1].paused && s.layers[2].paused ? s : undefined
    })
    t.false(paused.layers[0].paused)
    // Counted, not inferred: over two seconds the paused layers encode nothing, Low does.
    await sleep(300)
    const before = pub.stats().layers
    await sleep(2000)
    const after = pub.stats().layers
    t.is(after[2].framesEncoded, before[2].framesEncoded, 'f encodes nothing')
    t.is(after[1].framesEncoded, before[1].framesEncoded, 'h encodes nothing')
    t.true(after[0].framesEncoded - before[0].framesEncoded >= 15, JSON.stringify(after))
    t.is(after[2].targetBitrate, 0)
    const last = sub.frames.slice(-3)
    t.true(
      last.every((f) => f.width === 320 && near(f.rgb, COLOURS.blue)),
      JSON.stringify(last),
    )
  } catch (e) {
    t.log(sub.stderr(), JSON.stringify(pub.stats()))
    throw e
  } finally {
    sub.kill()
    await sub.exited
    await pub.close()
  }
})

test.serial('with dynacast, a paused layer comes back with a keyframe when a subscriber asks for it', async (t) => {
  if (!havePython) return t.fail(`LiveKit's Python SDK is not installed at ${PYTHON} (bash scripts/bootstrap.sh)`)
  const room = roomName('sim-dynacast-back')
  const pub = await publisher(room, 1280, 720, COLOURS.green, {}, { dynacast: true })
  // Low first; High once the top layer has had time to pause.
  const sub = await pythonSubscriber(room, 'low', 70, { afterSeconds: 12, quality: 'high' })
  try {
    const paused = await waitFor('f paused', () => {
      const s = pub.stats()
      return s.layers[2].paused ? s.layers[2] : undefined
    })
    await waitFor(
      'f back',
      () => {
        const f = pub.stats().layers[2]
        return !f.paused && f.framesEncoded > paused.framesEncoded ? f : undefined
      },
      30_000,
    )
    const f = pub.stats().layers[2]
    t.true(
      f.keyframesEncoded > paused.keyframesEncoded,
      `keyframes before ${paused.keyframesEncoded}, after ${f.keyframesEncoded}`,
    )
    // Whichever layers reach the subscriber (the server moves it up as its downlink estimate
    // allows; the High test checks the full size), every picture is the source's.
    t.true(
      sub.frames.every((fr) => near(fr.rgb, COLOURS.green)),
      JSON.stringify(sub.frames.filter((fr) => !near(fr.rgb, COLOURS.green)).slice(0, 3)),
    )
  } catch (e) {
    t.log(sub.stderr(), JSON.stringify(pub.stats()), [...new Set(sub.frames.map((f) => `${f.width}x${f.height}`))])
    throw e
  } finally {
    sub.kill()
    await sub.exited
    await pub.close()
  }
})

test.serial('without dynacast, every layer keeps encoding while only Low is watched', async (t) => {
  if (!havePython) return t.fail(`LiveKit's Python SDK is not installed at ${PYTHON} (bash scripts/bootstrap.sh)`)
  const room = roomName('sim-nodynacast')
  const pub = await publisher(room, 1280, 720, COLOURS.blue)
  const sub = await pythonSubscriber(room, 'low', 15)
  try {
    await waitFor('frames at the subscriber', () => sub.frames.length >= 5 || undefined)
    const before = pub.stats().layers
    await sleep(2000)
    const after = pub.stats().layers
    t.true(after[1].framesEncoded > before[1].framesEncoded, JSON.stringify(after))
    t.false(after[1].paused)
  } finally {
    sub.kill()
    await sub.exited
    await pub.close()
  }
})
