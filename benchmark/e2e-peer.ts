// One side of the end-to-end benchmark and of the network lab, in its own process so its CPU
// time (and, in the lab, its network namespace) is its own.
//   node --import tsx benchmark/e2e-peer.ts <publish|subscribe> <lkrtc|rtc-node> <json options>
// The publisher stamps its capture time (µs since `epochMs`) and the frame's number into the
// picture (measure.ts); the subscriber reads them back from the decoded frame, so latency is
// capture -> decoded frame in the receiving program, whatever the stack does in between, and it
// knows which frames never arrived. The publisher prints `capturing` when its first frame goes
// out; the last line on stdout is a JSON result.
import { latencyMs, makePictures, percentile, readStamp, stamp } from './measure.js'

interface Options {
  url: string
  token: string
  width: number
  height: number
  fps: number
  seconds: number
  warmupSeconds: number
  epochMs: number
  codec: 'vp8' | 'h264' | 'vp9' | 'av1'
  /** Publish in simulcast layers (default: one layer on both stacks). */
  simulcast?: boolean
}

const [mode, stack, json] = process.argv.slice(2)
const opts = JSON.parse(json) as Options
const nowUs = () => (performance.timeOrigin + performance.now() - opts.epochMs) * 1000

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** CPU% of one core used by this process between `start()` and `stop()`. */
function cpuMeter() {
  let cpu0 = process.cpuUsage()
  let t0 = performance.now()
  return {
    start() {
      cpu0 = process.cpuUsage()
      t0 = performance.now()
    },
    stop(): number {
      const cpu = process.cpuUsage(cpu0)
      return ((cpu.user + cpu.system) / 1000 / (performance.now() - t0)) * 100
    },
  }
}

async function publishLkrtc(): Promise<object> {
  const lk = await import('../lib/index.js')
  const room = new lk.Room()
  const connectAtMs = nowUs() / 1000
  await room.connect(opts.url, opts.token, { autoSubscribe: false })
  const source = new lk.VideoSource(opts.width, opts.height)
  const track = lk.LocalVideoTrack.createVideoTrack('bench', source)
  const publication = await room.localParticipant.publishTrack(track, {
    source: lk.TrackSource.Camera,
    videoCodec: opts.codec,
    videoEncoding: { maxBitrate: opts.width >= 1920 ? 5_000_000 : 2_500_000, maxFramerate: opts.fps },
    // One layer unless asked, as the rtc-node side: the figures compare like with like.
    simulcast: opts.simulcast ?? false,
  })
  // E2E_TRACE=1: the sender's view once a second (estimate, target, size, skipped frames).
  const trace = process.env.E2E_TRACE
    ? setInterval(() => {
        const s = room.localParticipant.publishStats(publication.sid)
        if (s) {
          const kbps = (n: number) => Math.round(n / 1000)
          console.error(
            `available ${kbps(s.availableBitrateBps)} kbit/s, target ${kbps(s.bitrateBps)} kbit/s, ${s.sentWidth}x${s.sentHeight}, encoded ${s.framesEncoded} (${s.keyframesEncoded} key), skipped ${s.framesSkipped}, sent ${Math.round(s.bytesSent / 1000)} kB`,
          )
        }
      }, 1000)
    : undefined
  const result = await pump((data, ts) => {
    source.captureFrame(new lk.VideoFrame(opts.width, opts.height, lk.VideoBufferType.I420, data), { timestampUs: ts })
  })
  clearInterval(trace)
  await room.disconnect()
  return { ...result, connectAtMs }
}

async function publishRtcNode(): Promise<object> {
  const rtc = await import('@livekit/rtc-node')
  const room = new rtc.Room()
  const connectAtMs = nowUs() / 1000
  await room.connect(opts.url, opts.token, { autoSubscribe: false, dynacast: false })
  const source = new rtc.VideoSource(opts.width, opts.height)
  const track = rtc.LocalVideoTrack.createVideoTrack('bench', source)
  const options = new rtc.TrackPublishOptions({
    source: rtc.TrackSource.SOURCE_CAMERA,
    simulcast: opts.simulcast ?? false,
    videoCodec: {
      vp8: rtc.VideoCodec.VP8,
      h264: rtc.VideoCodec.H264,
      vp9: rtc.VideoCodec.VP9,
      av1: rtc.VideoCodec.AV1,
    }[opts.codec],
    videoEncoding: { maxBitrate: BigInt(opts.width >= 1920 ? 5_000_000 : 2_500_000), maxFramerate: opts.fps },
  })
  await room.localParticipant!.publishTrack(track, options)
  const result = await pump((data, ts) => {
    source.captureFrame(
      new rtc.VideoFrame(data, opts.width, opts.height, rtc.VideoBufferType.I420),
      BigInt(Math.round(ts)),
    )
  })
  await room.disconnect()
  await rtc.dispose()
  return { ...result, connectAtMs }
}

/** Captures frames at `fps` for warm-up + measured seconds; returns frames sent and CPU%. */
async function pump(capture: (data: Uint8Array, timestampUs: number) => void): Promise<object> {
  const pictures = makePictures(opts.width, opts.height)
  const interval = 1000 / opts.fps
  const meter = cpuMeter()
  const begin = performance.now()
  const startedAtMs = nowUs() / 1000
  process.stdout.write('capturing\n')
  const total = Math.round((opts.warmupSeconds + opts.seconds) * opts.fps)
  const warmup = Math.round(opts.warmupSeconds * opts.fps)
  let sent = 0
  for (let n = 0; n < total; n++) {
    if (n === warmup) meter.start()
    const data = pictures[n % pictures.length].slice()
    const ts = nowUs()
    stamp(data, opts.width, 0, Math.round(ts) >>> 0)
    stamp(data, opts.width, 1, n)
    capture(data, Math.round(ts))
    sent++
    const next = begin + (n + 1) * interval
    await sleep(Math.max(0, next - performance.now()))
  }
  const cpu = meter.stop()
  await sleep(1500) // let the last frames arrive before leaving
  return { sent, warmup, cpu, startedAtMs, intervalMs: interval }
}

/** Receives until the publisher leaves; latency percentiles over the steady window, every
 * frame counted, CPU% over the steady window; and per frame that arrived: its number, arrival
 * (ms since `epochMs`), latency (ms) and height. */
async function receive(
  frames: AsyncIterable<{ y: Uint8Array; stride: number; width: number; height: number }>,
): Promise<object> {
  const meter = cpuMeter()
  const latencies: number[] = []
  // Frames that arrived at the published size (an encoder may scale down under load).
  let fullSize = 0
  let received = 0
  const numbers: number[] = []
  const arrivals: number[] = []
  const frameLatencies: number[] = []
  const heights: number[] = []
  let measuring = false
  let cpu = NaN
  // Picture stalls in the steady window: arrivals more than 150 ms after the previous frame.
  let lastArrival = NaN
  let gaps = 0
  let gapMs = 0
  for await (const f of frames) {
    const arrival = performance.now()
    if (measuring && arrival - lastArrival > 150) {
      gaps++
      gapMs += arrival - lastArrival
    }
    lastArrival = arrival
    if (f.width === opts.width && f.height === opts.height) fullSize++
    const now = nowUs()
    numbers.push(readStamp(f.y, f.stride, f.width, f.height, opts.height, 1))
    arrivals.push(Math.round(now / 100) / 10)
    heights.push(f.height)
    const latency = latencyMs(now, readStamp(f.y, f.stride, f.width, f.height, opts.height, 0))
    frameLatencies.push(Math.round(latency * 10) / 10)
    if (received++ === 0) {
      setTimeout(() => {
        measuring = true
        meter.start()
        setTimeout(
          () => {
            measuring = false
            cpu = meter.stop()
          },
          opts.seconds * 1000 - 1000,
        )
      }, opts.warmupSeconds * 1000)
    }
    if (measuring) latencies.push(latency)
  }
  latencies.sort((a, b) => a - b)
  return {
    received,
    numbers,
    fullSize,
    cpu,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    samples: latencies.length,
    arrivals,
    latencies: frameLatencies,
    heights,
    gaps,
    gapMs,
  }
}

async function subscribeLkrtc(): Promise<object> {
  const lk = await import('../lib/index.js')
  const room = new lk.Room()
  const subscribed = new Promise<InstanceType<typeof lk.RemoteVideoTrack>>((resolve) =>
    room.on('trackSubscribed', (track) => resolve(track)),
  )
  await room.connect(opts.url, opts.token, { autoSubscribe: true })
  const track = await subscribed
  const stream = new lk.VideoStream(track, { capacity: 0 })
  async function* frames() {
    for await (const { frame } of stream) {
      yield { y: frame.getPlane(0)!, stride: frame.getStride(0)!, width: frame.width, height: frame.height }
    }
  }
  const result = await receive(frames())
  // The receiver's own counts (NACKs, PLIs, losses, playout delay), kept with the run's logs.
  const stats = await track.getStats()
  await stream.close()
  await room.disconnect()
  return { ...result, stats }
}

async function subscribeRtcNode(): Promise<object> {
  const rtc = await import('@livekit/rtc-node')
  const room = new rtc.Room()
  const subscribed = new Promise<InstanceType<typeof rtc.RemoteVideoTrack>>((resolve) =>
    room.on(rtc.RoomEvent.TrackSubscribed, (track) => {
      if (track instanceof rtc.RemoteVideoTrack) resolve(track)
    }),
  )
  await room.connect(opts.url, opts.token, { autoSubscribe: true, dynacast: false })
  const track = await subscribed
  // rtc-node's stream does not end when the publisher leaves: end it then.
  const reader = new rtc.VideoStream(track).getReader()
  const end = () => void reader.cancel().catch(() => {})
  room.on(rtc.RoomEvent.TrackUnsubscribed, end)
  room.on(rtc.RoomEvent.ParticipantDisconnected, end)
  async function* frames() {
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
  }
  const result = await receive(frames())
  await room.disconnect()
  await rtc.dispose()
  return result
}

async function main() {
  const runs: Record<string, () => Promise<object>> = {
    'publish lkrtc': publishLkrtc,
    'publish rtc-node': publishRtcNode,
    'subscribe lkrtc': subscribeLkrtc,
    'subscribe rtc-node': subscribeRtcNode,
  }
  const run = runs[`${mode} ${stack}`]
  if (!run) throw new Error(`unknown role ${mode} ${stack}`)
  const result = await run()
  process.stdout.write(`\n${JSON.stringify(result)}\n`)
  process.exit(0)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
