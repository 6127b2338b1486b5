/**
 * Choosing the layer of a simulcast track as a subscriber, against a real livekit-server:
 * @livekit/rtc-node publishes a 1280x720 picture of four coloured quadrants with simulcast
 * (320x180, 640x360 and 1280x720 layers) and lkrtc receives it. Every decoded picture is
 * checked: its size is one of the layers and each quadrant has its colour, so a layer switch
 * that showed a broken picture would fail. Serial: each test runs real-time media.
 */
import net from 'node:net'

import test from 'ava'

import {
  createToken,
  type RemoteParticipant,
  type RemoteTrackPublication,
  type RemoteVideoTrack,
  Room,
  type RoomOptions,
  VideoBufferType,
  type VideoFrame,
  VideoQuality,
  VideoStream,
} from '../lib/index.js'
import { classify, COLOURS, type Rgb } from './helpers/colors.js'
import { joinRtcNode, rtc } from './helpers/rtc-node.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

const WIDTH = 1280
const HEIGHT = 720
const LOW = '320x180'
const MEDIUM = '640x360'
const HIGH = '1280x720'
const LAYERS = [LOW, MEDIUM, HIGH]
/** Top left, top right, bottom left, bottom right. */
const QUADRANTS = ['red', 'green', 'blue', 'white']

/** The 1280x720 RGBA picture of the four quadrants. */
function quadrantPicture(): Uint8Array {
  const data = new Uint8Array(WIDTH * HEIGHT * 4)
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const rgb: Rgb = COLOURS[QUADRANTS[(y < HEIGHT / 2 ? 0 : 2) + (x < WIDTH / 2 ? 0 : 1)]]
      const i = (y * WIDTH + x) * 4
      data.set([...rgb, 255], i)
    }
  }
  return data
}

/** The colour names of a decoded RGBA picture's quadrants, each sampled away from its edges. */
function quadrantColours(frame: VideoFrame): (string | undefined)[] {
  const { width, height, data } = frame
  const step = Math.max(1, Math.floor(width / 80))
  return [0, 1, 2, 3].map((q) => {
    const x0 = (q % 2) * (width / 2)
    const y0 = Math.floor(q / 2) * (height / 2)
    let [r, g, b, n] = [0, 0, 0, 0]
    for (let y = Math.floor(y0 + height / 8); y < y0 + (3 * height) / 8; y += step) {
      for (let x = Math.floor(x0 + width / 8); x < x0 + (3 * width) / 8; x += step) {
        const i = (y * width + x) * 4
        r += data[i]
        g += data[i + 1]
        b += data[i + 2]
        n++
      }
    }
    return classify([r / n, g / n, b / n])
  })
}

/** rtc-node publishes the quadrants at 1280x720, 15 fps, with simulcast (on `peer`, or a new
 * participant of the test server). VP9 is simulcast as one SVC stream of three spatial layers. */
async function simulcastPublisher(room: string, given?: rtc.Room, codec = rtc.VideoCodec.VP8) {
  const peer = given ?? (await joinRtcNode(room, 'rtc-node-simulcast'))
  const source = new rtc.VideoSource(WIDTH, HEIGHT)
  const picture = quadrantPicture()
  const timer = setInterval(() => {
    source.captureFrame(new rtc.VideoFrame(new Uint8Array(picture), WIDTH, HEIGHT, rtc.VideoBufferType.RGBA))
  }, 66)
  const track = rtc.LocalVideoTrack.createVideoTrack('camera', source)
  await peer.localParticipant!.publishTrack(
    track,
    new rtc.TrackPublishOptions({
      source: rtc.TrackSource.SOURCE_CAMERA,
      simulcast: true,
      videoCodec: codec,
    }),
  )
  return {
    async close() {
      clearInterval(timer)
      await peer.disconnect()
      await source.close()
    },
  }
}

type Subscribed = [RemoteVideoTrack, RemoteTrackPublication, RemoteParticipant]

/** lkrtc joins, rtc-node publishes: the subscribed track and its publication. */
async function session(prefix: string, options: RoomOptions = {}, url?: string, codec = rtc.VideoCodec.VP8) {
  const server = await testServer()
  const room = roomName(prefix)
  const viewer = new Room()
  await viewer.connect(url ?? server.url, await token('lkrtc-viewer', room), options)
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
  const publisher = await simulcastPublisher(room, undefined, codec)
  const [track, publication] = await subscribed
  return {
    viewer,
    track,
    publication,
    async close() {
      await viewer.disconnect()
      await publisher.close()
    },
  }
}

/**
 * Reads a stream of RGBA frames in the background: the size of every frame, and every frame
 * whose size is not a layer's or whose quadrants are not the colours published.
 */
function watch(stream: VideoStream) {
  const sizes: string[] = []
  /** When each frame arrived (ms since the epoch). */
  const times: number[] = []
  const broken: string[] = []
  const ended = (async () => {
    for await (const { frame } of stream) {
      const size = `${frame.width}x${frame.height}`
      sizes.push(size)
      times.push(Date.now())
      const colours = quadrantColours(frame)
      if (!LAYERS.includes(size) || colours.some((c, i) => c !== QUADRANTS[i])) {
        if (broken.length < 20) broken.push(`${size}: ${colours.join(' ')}`)
      }
    }
  })()
  return {
    sizes,
    times,
    broken,
    /** Frames received so far. */
    get count() {
      return sizes.length
    },
    /** Waits until `n` frames in a row came at `size`; rejects after `timeoutMs`. */
    async settlesAt(size: string, n = 10, timeoutMs = 25_000): Promise<void> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const tail = sizes.slice(-n)
        if (tail.length === n && tail.every((s) => s === size)) return
        if (Date.now() > deadline) {
          throw new Error(
            `no ${n} frames in a row at ${size} within ${timeoutMs} ms; last: ${sizes.slice(-n).join(' ')}`,
          )
        }
        await sleep(100)
      }
    },
    /** Waits until `n` more frames came; rejects after `timeoutMs`. */
    async more(n: number, timeoutMs = 15_000): Promise<void> {
      const target = sizes.length + n
      const deadline = Date.now() + timeoutMs
      while (sizes.length < target) {
        if (Date.now() > deadline)
          throw new Error(`${target - sizes.length} of ${n} frames missing after ${timeoutMs} ms`)
        await sleep(100)
      }
    },
    async stop() {
      stream.close()
      await ended
    },
  }
}

for (const [quality, name, size] of [
  [VideoQuality.Low, 'Low', LOW],
  [VideoQuality.Medium, 'Medium', MEDIUM],
  [VideoQuality.High, 'High', HIGH],
] as const) {
  test.serial(`setVideoQuality(${name}) receives the ${size} layer, whole`, async (t) => {
    const s = await session(`quality-${size}`)
    const reader = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
    try {
      t.is(s.publication.videoQuality, VideoQuality.High, 'High until chosen')
      await s.publication.setVideoQuality(quality)
      t.is(s.publication.videoQuality, quality)
      await reader.settlesAt(size)
      t.log(`${reader.count} frames; sizes seen: ${[...new Set(reader.sizes)].join(' ')}`)
      t.deepEqual(reader.broken, [])
    } finally {
      await reader.stop()
      await s.close()
    }
  })
}

for (const [codec, mime] of [
  [rtc.VideoCodec.VP8, 'video/VP8'],
  [rtc.VideoCodec.VP9, 'video/VP9'],
] as const) {
  test.serial(`switching layers mid-stream shows only whole pictures of the right colours (${mime})`, async (t) => {
    const s = await session(`switch-${mime.slice(6)}`, {}, undefined, codec)
    t.is(s.publication.mimeType, mime)
    const reader = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
    try {
      await reader.settlesAt(HIGH)
      const latencies: number[] = []
      for (const [quality, size] of [
        [VideoQuality.Low, LOW],
        [VideoQuality.Medium, MEDIUM],
        [VideoQuality.High, HIGH],
        [VideoQuality.Low, LOW],
      ] as const) {
        const asked = Date.now()
        const from = reader.count
        await s.publication.setVideoQuality(quality)
        await reader.settlesAt(size)
        const first = reader.sizes.indexOf(size, from)
        latencies.push(reader.times[first] - asked)
      }
      const switches = reader.sizes.filter((size, i) => i > 0 && size !== reader.sizes[i - 1]).length
      t.log(
        `${reader.count} frames checked, ${switches} size changes, first frame of the new layer after ${latencies.join(', ')} ms`,
      )
      t.true(switches >= 4, `${switches} size changes`)
      t.deepEqual(reader.broken, [])
    } finally {
      await reader.stop()
      await s.close()
    }
  })
}

test.serial(
  'setEnabled(false) stops the frames without unsubscribing; setEnabled(true) brings them back',
  async (t) => {
    const s = await session('enabled')
    const reader = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
    try {
      await reader.settlesAt(HIGH, 5)
      t.true(s.publication.enabled)
      await s.publication.setEnabled(false)
      t.false(s.publication.enabled)
      // Frames already on their way may still come.
      await sleep(1500)
      const paused = reader.count
      await sleep(3000)
      t.is(reader.count, paused, 'no frame while paused')
      t.true(s.publication.subscribed)
      t.false(s.track.ended)
      await s.publication.setEnabled(true)
      t.true(s.publication.enabled)
      await reader.settlesAt(HIGH, 5, 10_000)
      t.deepEqual(reader.broken, [])
    } finally {
      await reader.stop()
      await s.close()
    }
  },
)

test.serial('setVideoDimensions gets the smallest layer at least that big', async (t) => {
  const s = await session('dimensions')
  const reader = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
  try {
    await s.publication.setVideoDimensions(600, 340)
    await reader.settlesAt(MEDIUM)
    await s.publication.setVideoDimensions(200, 110)
    await reader.settlesAt(LOW)
    await s.publication.setVideoDimensions(1000, 600)
    t.deepEqual(s.publication.videoDimensions, { width: 1000, height: 600 })
    t.is(s.publication.videoQuality, undefined)
    await reader.settlesAt(HIGH)
    t.deepEqual(reader.broken, [])
  } finally {
    await reader.stop()
    await s.close()
  }
})

test.serial('with adaptiveStream the largest size the open streams want picks the layer', async (t) => {
  const s = await session('adaptive', { adaptiveStream: true })
  const small = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA, width: 320, height: 180 }))
  try {
    await small.settlesAt(LOW)
    const medium = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA, width: 640, height: 360 }))
    await medium.settlesAt(MEDIUM)
    await small.settlesAt(MEDIUM)
    await medium.stop()
    await small.settlesAt(LOW)
    // A stream that gives no size wants the full picture.
    const full = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
    await full.settlesAt(HIGH)
    await full.stop()
    t.deepEqual([...small.broken, ...medium.broken, ...full.broken], [])
  } finally {
    await small.stop()
    await s.close()
  }
})

test.serial('with adaptiveStream, the quality chosen applies again once the sized streams close', async (t) => {
  const s = await session('adaptive-default', { adaptiveStream: true })
  await s.publication.setVideoQuality(VideoQuality.Medium)
  const sized = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA, width: 320, height: 180 }))
  try {
    await sized.settlesAt(LOW)
    await sized.stop()
    const plain = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
    await plain.settlesAt(MEDIUM)
    await plain.stop()
    t.deepEqual([...sized.broken, ...plain.broken], [])
  } finally {
    await s.close()
  }
})

test.serial("without adaptiveStream a VideoStream's size is ignored", async (t) => {
  const s = await session('not-adaptive')
  const reader = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA, width: 320, height: 180 }))
  try {
    await reader.settlesAt(HIGH, 30)
    t.false(reader.sizes.slice(-30).includes(LOW))
    t.deepEqual(reader.broken, [])
  } finally {
    await reader.stop()
    await s.close()
  }
})

/** A TCP proxy to the server's signal port: `cut()` drops every connection, as a network
 * failure would, and new ones go through again. */
async function signalProxy(serverUrl: string) {
  const target = new URL(serverUrl)
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname)
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ]) {
      sockets.add(a)
      a.on('error', () => b.destroy())
      a.on('close', () => {
        sockets.delete(a)
        b.destroy()
      })
      a.pipe(b)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `ws://127.0.0.1:${port}`,
    cut() {
      for (const socket of sockets) socket.destroy()
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

test.serial('the quality chosen survives a resume of the session', async (t) => {
  const proxy = await signalProxy((await testServer()).url)
  const s = await session('quality-resume', {}, proxy.url)
  const reader = watch(new VideoStream(s.track, { format: VideoBufferType.RGBA }))
  let unsubscribed = false
  s.viewer.on('trackUnsubscribed', () => {
    unsubscribed = true
  })
  try {
    await s.publication.setVideoQuality(VideoQuality.Low)
    await reader.settlesAt(LOW)
    const reconnected = once(s.viewer, 'reconnected', () => true, 20_000)
    const reconnecting = once(s.viewer, 'reconnecting')
    proxy.cut()
    await reconnecting
    await reconnected
    const after = reader.count
    await reader.more(30)
    t.false(unsubscribed, 'a resume keeps the subscription')
    t.deepEqual([...new Set(reader.sizes.slice(after))], [LOW])
    t.deepEqual(reader.broken, [])
  } finally {
    await reader.stop()
    await s.close()
    await proxy.close()
  }
})

test.serial('bad track settings are refused with their code', async (t) => {
  const s = await session('bad-settings')
  try {
    const bad = async (run: () => Promise<unknown>, code: string, message: RegExp) => {
      const error = await t.throwsAsync(run)
      t.is((error as { code?: string }).code, code)
      t.regex(error!.message, message)
    }
    await bad(
      () => s.publication.setVideoQuality(3 as VideoQuality),
      'ERR_INVALID_ARGUMENT',
      /invalid quality: expected one of Low \(0\), Medium \(1\), High \(2\), got number 3/,
    )
    await bad(() => s.publication.setVideoQuality('low' as never), 'ERR_INVALID_ARG_TYPE', /invalid quality/)
    await bad(
      () => s.publication.setVideoDimensions(0, 180),
      'ERR_INVALID_ARGUMENT',
      /invalid width: expected an integer from 1 to 16384, got number 0/,
    )
    await bad(() => s.publication.setVideoDimensions(320, 180.5), 'ERR_INVALID_ARGUMENT', /invalid height/)
    await bad(() => s.publication.setVideoDimensions(320, '180' as never), 'ERR_INVALID_ARG_TYPE', /invalid height/)
    await bad(() => s.publication.setEnabled(1 as never), 'ERR_INVALID_ARG_TYPE', /invalid enabled: expected a boolean/)
    const bad_stream = (options: object, code: string, message: RegExp) => {
      const error = t.throws(() => new VideoStream(s.track, options))
      t.is((error as { code?: string }).code, code)
      t.regex(error!.message, message)
    }
    bad_stream({ width: 320 }, 'ERR_INVALID_ARG_TYPE', /invalid height: expected an integer from 1 to 16384/)
    bad_stream({ width: 320, height: 0 }, 'ERR_INVALID_ARGUMENT', /invalid height/)
    bad_stream(
      { width: 20_000, height: 180 },
      'ERR_INVALID_ARGUMENT',
      /invalid width: expected an integer from 1 to 16384, got number 20000/,
    )
  } finally {
    await s.close()
  }
})

/** The sizes in order, each run once. */
function runs(sizes: string[]): string[] {
  return sizes.filter((size, i) => i === 0 || size !== sizes[i - 1])
}

interface RestartableServer {
  url: string
  apiKey: string
  apiSecret: string
  kill(): Promise<void>
  restart(): Promise<void>
  stop(): Promise<void>
}

test.serial('the quality chosen carries over to the track published again after a server restart', async (t) => {
  const path = '../scripts/livekit-server.mjs'
  const { start } = (await import(path)) as { start: () => Promise<RestartableServer> }
  const server = await start()
  const room = roomName('quality-rejoin')
  const tokenFor = (identity: string) =>
    createToken({ apiKey: server.apiKey, apiSecret: server.apiSecret, identity, room })
  const viewer = new Room()
  const peer = new rtc.Room()
  let publisher: Awaited<ReturnType<typeof simulcastPublisher>> | undefined
  const readers: ReturnType<typeof watch>[] = []
  try {
    await viewer.connect(server.url, await tokenFor('lkrtc-viewer'))
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    await peer.connect(server.url, await tokenFor('rtc-node-simulcast'), { autoSubscribe: true, dynacast: false })
    publisher = await simulcastPublisher(room, peer)
    const [first, publication] = await subscribed
    // Medium: without the carried choice the new subscription would end at the full size.
    await publication.setVideoQuality(VideoQuality.Medium)
    const before = watch(new VideoStream(first, { format: VideoBufferType.RGBA }))
    readers.push(before)
    await before.settlesAt(MEDIUM)

    const resubscribed = once<Subscribed>(viewer, 'trackSubscribed', () => true, 60_000)
    const reconnected = once(viewer, 'reconnected', () => true, 45_000)
    await server.kill()
    await sleep(500)
    await server.restart()
    await reconnected
    const [second, republished] = await resubscribed
    t.not(second.sid, first.sid, 'the restarted server gave the track a new sid')
    t.is(republished.videoQuality, VideoQuality.Medium, 'the new publication shows the carried choice')
    const after = watch(new VideoStream(second, { format: VideoBufferType.RGBA }))
    readers.push(after)
    await after.settlesAt(MEDIUM, 10, 30_000)
    await after.more(45)
    // The server subscribes us as soon as the track is published again, before we hear of it:
    // the first frames may come in its default layer until the carried choice arrives.
    t.log(`after the rejoin: ${after.count} frames, sizes in order ${runs(after.sizes).join(' ')}`)
    t.deepEqual([...new Set(after.sizes.slice(-55))], [MEDIUM], 'the layer chosen, and it stays')
    t.deepEqual([...before.broken, ...after.broken], [])
  } finally {
    for (const reader of readers) await reader.stop()
    await viewer.disconnect()
    await publisher?.close()
    await peer.disconnect().catch(() => undefined)
    await server.stop()
  }
})
