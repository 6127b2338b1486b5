// One side of the end-to-end benchmark, in its own process so its CPU time is its own.
//   node --import tsx benchmark/e2e-peer.ts <publish|subscribe> <lkrtc|rtc-node> <json options>
// The publisher stamps its capture time (µs since `epochMs`) into the top rows of the Y plane
// as 32 black/white blocks, and the frame's number into the band below; the subscriber reads
// them back from the decoded frame, so latency is capture -> decoded frame in the receiving
// program, whatever the stack does in between, and it knows which frames never arrived.
// The last line on stdout is a JSON result.

interface Options {
  url: string
  token: string
  width: number
  height: number
  fps: number
  seconds: number
  warmupSeconds: number
  epochMs: number
  codec: 'vp8' | 'h264'
}

const [mode, stack, json] = process.argv.slice(2)
const opts = JSON.parse(json) as Options
const BITS = 32
const BAND = 32 // rows of the timestamp band

const nowUs = () => (performance.timeOrigin + performance.now() - opts.epochMs) * 1000

/** 30 frames of a moving picture (I420), so the encoder has real work. */
function makePictures(w: number, h: number): Uint8Array[] {
  const cw = Math.ceil(w / 2)
  const ch = Math.ceil(h / 2)
  const pictures: Uint8Array[] = []
  for (let n = 0; n < 30; n++) {
    const data = new Uint8Array(w * h + 2 * cw * ch)
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[y * w + x] = (x + y + n * 8) & 255
    }
    for (let i = 0; i < cw * ch; i++) {
      data[w * h + i] = 128 + ((i + n * 4) % 64)
      data[w * h + cw * ch + i] = 160 - ((i >> 3) % 64)
    }
    pictures.push(data)
  }
  return pictures
}

/** Writes `value` into band `band` (0: capture time, 1: frame number) of a Y plane. */
function stamp(y: Uint8Array, w: number, band: number, value: number): void {
  const block = Math.floor(w / BITS)
  for (let bit = 0; bit < BITS; bit++) {
    const v = (value >>> (BITS - 1 - bit)) & 1 ? 235 : 16
    for (let row = band * BAND; row < (band + 1) * BAND; row++)
      y.fill(v, row * w + bit * block, row * w + (bit + 1) * block)
  }
}

/** Reads band `band` back from a decoded Y plane of `w` x `h`, which may be smaller than the
 * published picture (an encoder that scales down): the band scales with it. */
function readStamp(y: Uint8Array, stride: number, w: number, h: number, band: number): number {
  const scale = h / opts.height
  const block = w / BITS
  const center = (band + 0.5) * BAND * scale
  const half = Math.max(1, 4 * scale)
  const top = Math.round(center - half)
  const bottom = Math.round(center + half)
  let value = 0
  for (let bit = 0; bit < BITS; bit++) {
    const left = Math.ceil(bit * block + block / 4)
    const right = Math.floor((bit + 1) * block - block / 4)
    let sum = 0
    let count = 0
    for (let row = top; row < bottom; row++) {
      for (let x = left; x < right; x++) {
        sum += y[row * stride + x]
        count++
      }
    }
    value = (value << 1) | (sum / Math.max(1, count) > 125 ? 1 : 0)
  }
  return value >>> 0
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]
}

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
  await room.connect(opts.url, opts.token, { autoSubscribe: false })
  const source = new lk.VideoSource(opts.width, opts.height)
  const track = lk.LocalVideoTrack.createVideoTrack('bench', source)
  await room.localParticipant.publishTrack(track, {
    source: lk.TrackSource.Camera,
    videoCodec: opts.codec,
    videoEncoding: { maxBitrate: opts.width >= 1920 ? 5_000_000 : 2_500_000, maxFramerate: opts.fps },
  })
  const result = await pump((data, ts) => {
    source.captureFrame(new lk.VideoFrame(opts.width, opts.height, lk.VideoBufferType.I420, data), { timestampUs: ts })
  })
  await room.disconnect()
  return result
}

async function publishRtcNode(): Promise<object> {
  const rtc = await import('@livekit/rtc-node')
  const room = new rtc.Room()
  await room.connect(opts.url, opts.token, { autoSubscribe: false, dynacast: false })
  const source = new rtc.VideoSource(opts.width, opts.height)
  const track = rtc.LocalVideoTrack.createVideoTrack('bench', source)
  const options = new rtc.TrackPublishOptions({
    source: rtc.TrackSource.SOURCE_CAMERA,
    simulcast: false,
    videoCodec: opts.codec === 'h264' ? rtc.VideoCodec.H264 : rtc.VideoCodec.VP8,
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
  return result
}

/** Captures frames at `fps` for warm-up + measured seconds; returns frames sent and CPU%. */
async function pump(capture: (data: Uint8Array, timestampUs: number) => void): Promise<object> {
  const pictures = makePictures(opts.width, opts.height)
  const interval = 1000 / opts.fps
  const meter = cpuMeter()
  const begin = performance.now()
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
  return { sent, warmup, cpu }
}

/** Receives until the publisher leaves; latency percentiles over the steady window, every
 * frame counted (and the numbers of those that arrived), CPU% over the steady window. */
async function receive(
  frames: AsyncIterable<{ y: Uint8Array; stride: number; width: number; height: number }>,
): Promise<object> {
  const meter = cpuMeter()
  const latencies: number[] = []
  // Frames that arrived at the published size (an encoder may scale down under load).
  let fullSize = 0
  let received = 0
  const numbers: number[] = []
  let measuring = false
  let cpu = NaN
  for await (const f of frames) {
    if (f.width === opts.width && f.height === opts.height) fullSize++
    numbers.push(readStamp(f.y, f.stride, f.width, f.height, 1))
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
    if (measuring) {
      const stamped = readStamp(f.y, f.stride, f.width, f.height, 0)
      const latencyMs = (((Math.round(nowUs()) >>> 0) - stamped) >>> 0) / 1000
      latencies.push(latencyMs)
    }
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
  await stream.close()
  await room.disconnect()
  return result
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
