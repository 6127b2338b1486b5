// Leak and soak check: one process publishes 1080p30 and receives it for SOAK_MINUTES, then runs
// SOAK_CYCLES connect/publish/subscribe/disconnect cycles, sampling RSS and the JS heap. Fails
// (exit 1) when RSS grows more than SOAK_MAX_GROWTH_MB after the warm-up.
//   npm run soak                                   (10 minutes, 100 cycles)
//   SOAK_MINUTES=1 SOAK_CYCLES=20 npm run soak     (the short version)
//   SOAK_STACK=rtc-node npm run soak               (the same run with @livekit/rtc-node)
import {
  createToken,
  LocalVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { framePoolStats } from '../index.js'

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10)
const CYCLES = Number(process.env.SOAK_CYCLES ?? 100)
const MAX_GROWTH_MB = Number(process.env.SOAK_MAX_GROWTH_MB ?? 50)
const WIDTH = Number(process.env.SOAK_WIDTH ?? 1920)
const HEIGHT = Number(process.env.SOAK_HEIGHT ?? 1080)
// Warm means at full size: the bandwidth estimate takes 5-20 s to carry a 1080p picture.
const WARMUP_S = Math.min(30, MINUTES * 30)
const STACK = process.env.SOAK_STACK ?? 'lkrtc'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const mb = (bytes: number) => bytes / 1e6

interface Sample {
  t: number
  rss: number
  heap: number
  external: number
}

const samples: Sample[] = []
const t0 = performance.now()
function sample(label: string): Sample {
  if (global.gc) global.gc()
  const m = process.memoryUsage()
  const pool = framePoolStats()
  const s = { t: (performance.now() - t0) / 1000, rss: mb(m.rss), heap: mb(m.heapUsed), external: mb(m.external) }
  samples.push(s)
  console.error(
    `[${s.t.toFixed(0).padStart(5)} s] ${label.padEnd(22)} rss ${s.rss.toFixed(0)} MB, heap ${s.heap.toFixed(0)} MB, external ${s.external.toFixed(0)} MB, frame pool ${mb(pool.bytes).toFixed(0)} MB`,
  )
  return s
}

function token(server: { apiKey: string; apiSecret: string }, identity: string, room: string): string {
  return createToken({ apiKey: server.apiKey, apiSecret: server.apiSecret, identity, room })
}

/** A moving picture at 30 fps into `source` until `stop()`; returns the frame count. */
function feed(source: VideoSource) {
  const frame = new VideoFrame(WIDTH, HEIGHT, VideoBufferType.I420, new Uint8Array((WIDTH * HEIGHT * 3) / 2))
  const y = frame.getPlane(0)!
  let n = 0
  const timer = setInterval(() => {
    y.fill((n * 3) & 255, 0, WIDTH * 64)
    source.captureFrame(frame)
    n++
  }, 1000 / 30)
  return {
    stop: () => {
      clearInterval(timer)
      return n
    },
  }
}

/** A publisher and a subscriber in one room, the subscriber counting the frames it decodes. */
interface Pair {
  received(): number
  /** Frames the encoder took (lkrtc), or undefined where the stack does not say. */
  encoded(): number | undefined
  /** Stops feeding, leaves both rooms; returns the frames captured. */
  close(): Promise<number>
}

async function pair(url: string, server: { apiKey: string; apiSecret: string }, roomName: string): Promise<Pair> {
  return STACK === 'rtc-node' ? pairRtcNode(url, server, roomName) : pairLkrtc(url, server, roomName)
}

async function pairLkrtc(url: string, server: { apiKey: string; apiSecret: string }, roomName: string): Promise<Pair> {
  const publisher = new Room()
  const subscriber = new Room()
  const subscribed = new Promise<VideoStream>((resolve) =>
    subscriber.on('trackSubscribed', (track) => resolve(new VideoStream(track, { capacity: 2 }))),
  )
  await subscriber.connect(url, token(server, 'sub', roomName))
  await publisher.connect(url, token(server, 'pub', roomName))
  const source = new VideoSource(WIDTH, HEIGHT)
  const track = LocalVideoTrack.createVideoTrack('soak', source)
  // One layer, as the rtc-node side publishes.
  const publication = await publisher.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    simulcast: false,
  })
  const feeder = feed(source)
  const stream = await subscribed
  let received = 0
  const draining = (async () => {
    // Every decoded frame counts: the publisher sends a smaller picture while its bandwidth
    // estimate grows (or the link is short), as rtc-node's does.
    for await (const _ of stream) received++
  })()
  return {
    received: () => received,
    encoded: () => publisher.localParticipant.publishStats(publication.sid)?.framesEncoded,
    async close() {
      const sent = feeder.stop()
      await publisher.disconnect()
      await subscriber.disconnect()
      await draining
      source.close()
      return sent
    },
  }
}

async function pairRtcNode(
  url: string,
  server: { apiKey: string; apiSecret: string },
  roomName: string,
): Promise<Pair> {
  const rtc = await import('@livekit/rtc-node')
  const publisher = new rtc.Room()
  const subscriber = new rtc.Room()
  const subscribed = new Promise<InstanceType<typeof rtc.RemoteVideoTrack>>((resolve) =>
    subscriber.on(rtc.RoomEvent.TrackSubscribed, (track) => {
      if (track instanceof rtc.RemoteVideoTrack) resolve(track)
    }),
  )
  await subscriber.connect(url, token(server, 'sub', roomName), { autoSubscribe: true, dynacast: false })
  await publisher.connect(url, token(server, 'pub', roomName), { autoSubscribe: false, dynacast: false })
  const source = new rtc.VideoSource(WIDTH, HEIGHT)
  const track = rtc.LocalVideoTrack.createVideoTrack('soak', source)
  await publisher.localParticipant!.publishTrack(
    track,
    new rtc.TrackPublishOptions({ source: rtc.TrackSource.SOURCE_CAMERA, simulcast: false }),
  )
  const data = new Uint8Array((WIDTH * HEIGHT * 3) / 2)
  let n = 0
  const timer = setInterval(() => {
    data.fill((n * 3) & 255, 0, WIDTH * 64)
    source.captureFrame(new rtc.VideoFrame(data, WIDTH, HEIGHT, rtc.VideoBufferType.I420))
    n++
  }, 1000 / 30)
  const reader = new rtc.VideoStream(await subscribed).getReader()
  let received = 0
  const draining = (async () => {
    for (;;) {
      const { done } = await reader.read()
      if (done) return
      // rtc-node's encoder may scale the picture down: count every frame that arrives.
      received++
    }
  })()
  return {
    received: () => received,
    encoded: () => undefined,
    async close() {
      clearInterval(timer)
      await reader.cancel().catch(() => {})
      await draining.catch(() => {})
      await publisher.disconnect()
      await subscriber.disconnect()
      await source.close()
      return n
    },
  }
}

async function main() {
  // @ts-expect-error plain ESM helper without types
  const { start } = await import('../scripts/livekit-server.mjs')
  const server = await start()
  let failed = false
  try {
    sample('start')
    const long = await pair(server.url, server, `soak-${Date.now()}`)
    await sleep(WARMUP_S * 1000)
    const base = sample('warm')
    const end = performance.now() + MINUTES * 60_000 - WARMUP_S * 1000
    while (performance.now() < end) {
      await sleep(Math.min(30_000, end - performance.now()))
      sample(`streaming (${long.received()} frames)`)
    }
    const received = long.received()
    const encodedSoFar = long.encoded()
    const sent = await long.close()
    const encoded = encodedSoFar ?? sent
    // Frames the encoder could not take (a busy CPU) are replaced by newer ones at the source;
    // what is encoded must arrive.
    console.error(`long run: ${sent} frames captured, ${encoded} encoded, ${received} received`)
    if (received < encoded * 0.9) {
      console.error('FAIL: fewer than 90% of the encoded frames arrived')
      failed = true
    }

    for (let i = 1; i <= CYCLES; i++) {
      const p = await pair(server.url, server, `cycle-${i}-${Date.now()}`)
      const deadline = performance.now() + 10_000
      while (p.received() < 3 && performance.now() < deadline) await sleep(50)
      const got = p.received()
      await p.close()
      if (got < 3) {
        console.error(`FAIL: cycle ${i} received ${got} frames`)
        failed = true
      }
      if (i % 10 === 0 || i === CYCLES) sample(`cycle ${i}`)
    }
    await sleep(2000)
    const last = sample('end')
    const growth = last.rss - base.rss
    console.log(
      `RSS after warm-up ${base.rss.toFixed(0)} MB, at the end ${last.rss.toFixed(0)} MB: growth ${growth.toFixed(1)} MB (limit ${MAX_GROWTH_MB} MB)`,
    )
    console.log(
      `JS heap ${base.heap.toFixed(0)} -> ${last.heap.toFixed(0)} MB; ${STACK}, ${CYCLES} cycles, ${MINUTES} min at ${WIDTH}x${HEIGHT}`,
    )
    if (growth > MAX_GROWTH_MB) {
      console.error('FAIL: RSS grew beyond the limit')
      failed = true
    }
  } finally {
    await server.stop()
  }
  process.exit(failed ? 1 : 0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
