// One process of the scale benchmark (scale.ts): it publishes video tracks in some rooms and/or
// receives every track of some rooms, with lkrtc or @livekit/rtc-node, and measures itself.
//   node --expose-gc --import tsx benchmark/scale-peer.ts <json options>
// Protocol: it prints `ready` once its rooms are joined and its tracks published, then waits for
// `start <wall ms>` on stdin: capture begins then, for everyone, so all processes share one
// frame clock. Frame n is captured at start + n / fps; the measured window holds frames
// [warm-up, warm-up + seconds) x fps, and CPU time and RSS are read at its edges. Frames are
// stamped with their capture time and number (measure.ts), so the receiver knows each frame's
// latency and which frames of the window arrived. The last line on stdout is a JSON result.
import { createInterface } from 'node:readline'

import { latencyMs, makePictures, percentile, readStamp, stamp } from './measure.js'

export interface PeerOptions {
  stack: 'lkrtc' | 'rtc-node'
  url: string
  /** Rooms to publish in (one participant each) and how many tracks that participant publishes. */
  publish: { token: string; tracks: number }[]
  /** Rooms to receive every video track of (one participant each). */
  subscribe: string[]
  width: number
  height: number
  fps: number
  maxBitrate: number
  warmupSeconds: number
  seconds: number
  /** Wall-clock ms the capture stamps count from (32-bit µs wrap after ~71 minutes). */
  epochMs: number
}

/** What a peer prints last. */
export interface PeerResult {
  /** RSS (bytes) after loading the SDK, before joining; at the window's start; at its end. */
  rssBaseline: number
  rssStart: number
  rssEnd: number
  /** Process CPU time over the window (all threads), and the window's wall length, ms. */
  cpuMs: number
  wallMs: number
  tracksPublished: number
  /** Frames given to the SDK in the window, over all tracks, and how many the clock asked for. */
  captured: number
  nominal: number
  /** lkrtc only: its encoders' counts over the window, over all tracks. */
  encoded?: number
  skipped?: number
  dropped?: number
  tracksSubscribed: number
  /** Distinct frames of the window that were decoded here, over all tracks. */
  delivered: number
  /** Of those, at the published size (an encoder may send a smaller picture). */
  fullSize: number
  /** Their mean height, pixels. */
  meanHeight: number
  /** Capture -> decoded frame in this program, ms, over the window's frames. */
  p50: number
  p95: number
  /** Event-loop lag: the latest any capture tick ran behind its time, ms. */
  captureLagMs: number
}

const opts = JSON.parse(process.argv[2]) as PeerOptions
const wall = () => performance.timeOrigin + performance.now()
const nowUs = () => (wall() - opts.epochMs) * 1000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)))
const interval = 1000 / opts.fps
const firstFrame = Math.round(opts.warmupSeconds * opts.fps)
const endFrame = firstFrame + Math.round(opts.seconds * opts.fps)
/** Capture goes on this long after the window so its last frames are not the stream's last. */
const TAIL_MS = 1500
/** Receivers stop this long after the capture: frames of the window still in flight arrive. */
const DRAIN_MS = 1500

/** A frame as read by the receiver, whatever the stack. */
interface Decoded {
  y: Uint8Array
  stride: number
  width: number
  height: number
}

/** What a stack provides to the benchmark: sources to capture into, streams of received frames. */
interface Stack {
  /** Joins a room and publishes `tracks` tracks; returns a capture function per track. */
  publish(token: string, tracks: number): Promise<((data: Uint8Array, timestampUs: number) => void)[]>
  /** Joins a room and calls `onTrack` with each video track's frames as they come. */
  subscribe(token: string, onTrack: (key: string, frames: AsyncIterable<Decoded>) => void): Promise<void>
  /** Sums of the publishers' encoder counters (lkrtc only). */
  encoderCounts?(): { encoded: number; skipped: number; dropped: number }
  /** One line on the publishers' sending (lkrtc only). */
  trace?(): string
  /** Ends every receiving stream. */
  endStreams(): void
  leave(): Promise<void>
}

async function lkrtcStack(): Promise<Stack> {
  const lk = await import('../lib/index.js')
  const rooms: InstanceType<typeof lk.Room>[] = []
  const streams: InstanceType<typeof lk.VideoStream>[] = []
  const published: { room: InstanceType<typeof lk.Room>; sid: string }[] = []
  return {
    async publish(token, tracks) {
      const room = new lk.Room()
      rooms.push(room)
      await room.connect(opts.url, token, { autoSubscribe: false })
      const captures = []
      for (let i = 0; i < tracks; i++) {
        const source = new lk.VideoSource(opts.width, opts.height)
        const track = lk.LocalVideoTrack.createVideoTrack(`cam-${i}`, source)
        const publication = await room.localParticipant.publishTrack(track, {
          source: lk.TrackSource.Camera,
          videoCodec: 'vp8',
          videoEncoding: { maxBitrate: opts.maxBitrate, maxFramerate: opts.fps },
          simulcast: false,
        })
        published.push({ room, sid: publication.sid })
        captures.push((data: Uint8Array, ts: number) =>
          source.captureFrame(new lk.VideoFrame(opts.width, opts.height, lk.VideoBufferType.I420, data), {
            timestampUs: ts,
          }),
        )
      }
      return captures
    },
    async subscribe(token, onTrack) {
      const room = new lk.Room()
      rooms.push(room)
      room.on('trackSubscribed', (track, publication, participant) => {
        const stream = new lk.VideoStream(track, { capacity: 0 })
        streams.push(stream)
        onTrack(
          `${participant.identity}/${publication.name}`,
          (async function* () {
            for await (const { frame } of stream) {
              yield { y: frame.getPlane(0)!, stride: frame.getStride(0)!, width: frame.width, height: frame.height }
            }
          })(),
        )
      })
      await room.connect(opts.url, token, { autoSubscribe: true })
    },
    encoderCounts() {
      const sum = { encoded: 0, skipped: 0, dropped: 0 }
      for (const { room, sid } of published) {
        const s = room.localParticipant.publishStats(sid)
        if (!s) continue
        sum.encoded += s.framesEncoded
        sum.skipped += s.framesSkipped
        sum.dropped += s.framesDropped
      }
      return sum
    },
    trace() {
      const stats = published
        .map(({ room, sid }) => room.localParticipant.publishStats(sid))
        .filter((s) => s !== undefined)
      const kbps = (n: number) => Math.round(n / 1000)
      const sum = (f: (s: (typeof stats)[number]) => number) => stats.reduce((a, s) => a + f(s), 0)
      return `estimate ${kbps(stats[0]?.availableOutgoingBitrate ?? 0)} kbit/s, targets ${kbps(sum((s) => s.bitrateBps))} kbit/s, heights ${[...new Set(stats.map((s) => s.sentHeight))].join('/')}, skipped ${sum((s) => s.framesSkipped)}, unsent ${sum((s) => s.framesUnsent)}, rtt ${stats[0]?.roundTripTime ?? '-'}`
    },
    endStreams() {
      for (const s of streams) void s.close()
    },
    async leave() {
      await Promise.all(rooms.map((r) => r.disconnect()))
    },
  }
}

async function rtcNodeStack(): Promise<Stack> {
  const rtc = await import('@livekit/rtc-node')
  const rooms: InstanceType<typeof rtc.Room>[] = []
  const readers: { cancel(): Promise<void> }[] = []
  return {
    async publish(token, tracks) {
      const room = new rtc.Room()
      rooms.push(room)
      await room.connect(opts.url, token, { autoSubscribe: false, dynacast: false })
      const captures = []
      for (let i = 0; i < tracks; i++) {
        const source = new rtc.VideoSource(opts.width, opts.height)
        const track = rtc.LocalVideoTrack.createVideoTrack(`cam-${i}`, source)
        await room.localParticipant!.publishTrack(
          track,
          new rtc.TrackPublishOptions({
            source: rtc.TrackSource.SOURCE_CAMERA,
            simulcast: false,
            videoCodec: rtc.VideoCodec.VP8,
            videoEncoding: { maxBitrate: BigInt(opts.maxBitrate), maxFramerate: opts.fps },
          }),
        )
        captures.push((data: Uint8Array, ts: number) =>
          source.captureFrame(
            new rtc.VideoFrame(data, opts.width, opts.height, rtc.VideoBufferType.I420),
            BigInt(Math.round(ts)),
          ),
        )
      }
      return captures
    },
    async subscribe(token, onTrack) {
      const room = new rtc.Room()
      rooms.push(room)
      room.on(rtc.RoomEvent.TrackSubscribed, (track, publication, participant) => {
        if (!(track instanceof rtc.RemoteVideoTrack)) return
        const reader = new rtc.VideoStream(track).getReader()
        readers.push(reader)
        onTrack(
          `${participant.identity}/${publication.name}`,
          (async function* () {
            for (;;) {
              const { done, value } = await reader.read()
              if (done) return
              const frame = value.frame
              const i420 = frame.type === rtc.VideoBufferType.I420 ? frame : frame.convert(rtc.VideoBufferType.I420)
              yield {
                y: i420.data.subarray(0, i420.width * i420.height),
                stride: i420.width,
                width: i420.width,
                height: i420.height,
              }
            }
          })(),
        )
      })
      await room.connect(opts.url, token, { autoSubscribe: true, dynacast: false })
    },
    endStreams() {
      for (const r of readers) void r.cancel().catch(() => {})
    },
    async leave() {
      await Promise.all(rooms.map((r) => r.disconnect()))
      await rtc.dispose()
    },
  }
}

async function main() {
  const stack = opts.stack === 'lkrtc' ? await lkrtcStack() : await rtcNodeStack()
  const pictures = opts.publish.length > 0 ? makePictures(opts.width, opts.height) : []
  globalThis.gc?.()
  const rssBaseline = process.memoryUsage.rss()

  // Receiving: per track, the numbers of the window's frames that arrived.
  const arrived = new Map<string, Set<number>>()
  const latencies: number[] = []
  let fullSize = 0
  let heights = 0
  const receivers: Promise<void>[] = []
  const onTrack = (key: string, frames: AsyncIterable<Decoded>) => {
    const got = new Set<number>()
    arrived.set(key, got)
    receivers.push(
      (async () => {
        for await (const f of frames) {
          const now = nowUs()
          const n = readStamp(f.y, f.stride, f.width, f.height, opts.height, 1)
          if (n < firstFrame || n >= endFrame || got.has(n)) continue
          got.add(n)
          latencies.push(latencyMs(now, readStamp(f.y, f.stride, f.width, f.height, opts.height, 0)))
          if (f.width === opts.width && f.height === opts.height) fullSize++
          heights += f.height
        }
      })(),
    )
  }
  // Receivers join first, so that they are in the room when the tracks come.
  for (const [i, token] of opts.subscribe.entries()) {
    await stack.subscribe(token, (key, frames) => onTrack(`room ${i}: ${key}`, frames))
  }
  const captures: ((data: Uint8Array, timestampUs: number) => void)[] = []
  for (const { token, tracks } of opts.publish) captures.push(...(await stack.publish(token, tracks)))

  process.stdout.write('ready\n')
  const start = await new Promise<number>((resolve) => {
    const input = createInterface({ input: process.stdin })
    input.on('line', (line) => {
      const [word, at] = line.split(' ')
      if (word === 'start') {
        input.close()
        resolve(Number(at))
      }
    })
  })

  // SCALE_TRACE=1: the lkrtc publisher's view once a second (estimate, targets, sizes, skips).
  const trace =
    process.env.SCALE_TRACE && stack.trace && captures.length > 0
      ? setInterval(() => console.error(stack.trace?.()), 1000)
      : undefined
  const windowStart = start + firstFrame * interval
  const windowEnd = start + endFrame * interval
  let cpu0 = process.cpuUsage()
  let t0 = 0
  let rssStart = 0
  let encoders0 = { encoded: 0, skipped: 0, dropped: 0 }
  const measured = (async () => {
    await sleep(windowStart - wall())
    t0 = performance.now()
    cpu0 = process.cpuUsage()
    rssStart = process.memoryUsage.rss()
    encoders0 = stack.encoderCounts?.() ?? encoders0
    await sleep(windowEnd - wall())
    const cpu = process.cpuUsage(cpu0)
    const encoders = stack.encoderCounts?.()
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      wallMs: performance.now() - t0,
      rssStart,
      rssEnd: process.memoryUsage.rss(),
      ...(encoders && {
        encoded: encoders.encoded - encoders0.encoded,
        skipped: encoders.skipped - encoders0.skipped,
        dropped: encoders.dropped - encoders0.dropped,
      }),
    }
  })()

  // Capturing: one clock for every track; a tick that runs more than a frame late is skipped,
  // as a camera's frame would be, and counts as not captured.
  let captured = 0
  let captureLagMs = 0
  if (captures.length > 0) {
    const last = endFrame + Math.round((TAIL_MS / 1000) * opts.fps)
    for (let n = 0; n < last; n++) {
      const due = start + n * interval
      await sleep(due - wall())
      const lag = wall() - due
      if (n >= firstFrame && n < endFrame) captureLagMs = Math.max(captureLagMs, lag)
      if (lag > interval) continue
      const picture = pictures[n % pictures.length]
      for (const capture of captures) {
        const data = picture.slice()
        const ts = Math.round(nowUs())
        stamp(data, opts.width, 0, ts >>> 0)
        stamp(data, opts.width, 1, n)
        capture(data, ts)
        if (n >= firstFrame && n < endFrame) captured++
      }
    }
  }
  const span = await measured
  clearInterval(trace)
  await sleep(windowEnd + TAIL_MS + DRAIN_MS - wall())
  stack.endStreams()
  await Promise.race([Promise.all(receivers), sleep(5000)])

  latencies.sort((a, b) => a - b)
  let delivered = 0
  for (const got of arrived.values()) delivered += got.size
  const result: PeerResult = {
    rssBaseline,
    ...span,
    tracksPublished: captures.length,
    captured,
    nominal: captures.length * (endFrame - firstFrame),
    tracksSubscribed: arrived.size,
    delivered,
    fullSize,
    meanHeight: heights / Math.max(1, delivered),
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    captureLagMs,
  }
  process.stdout.write(`\n${JSON.stringify(result)}\n`)
  await Promise.race([stack.leave(), sleep(5000)])
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
