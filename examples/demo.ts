// Two lkrtc participants in one room of a local livekit-server: one publishes a moving 1280x720
// test pattern for 10 s, the other receives it with a VideoStream, prints the frames per second
// and writes the last frame it received to out/received.png.
//   node --import tsx examples/demo.ts        (npm run demo does the set-up first)
//   LKRTC_URL=ws://... LKRTC_API_KEY=... LKRTC_API_SECRET=... to use another server
import { mkdirSync, writeFileSync } from 'node:fs'

import { PNG } from 'pngjs'

import {
  createToken,
  LocalVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  VideoStream,
  type RemoteVideoTrack,
} from '../lib/index.js'

const WIDTH = 1280
const HEIGHT = 720
const FPS = 30
const SECONDS = 10

interface Server {
  url: string
  apiKey: string
  apiSecret: string
  stop(): Promise<void>
}

async function server(): Promise<Server> {
  const { LKRTC_URL: url, LKRTC_API_KEY: apiKey, LKRTC_API_SECRET: apiSecret } = process.env
  if (url && apiKey && apiSecret) return { url, apiKey, apiSecret, stop: async () => {} }
  const script = '../scripts/livekit-server.mjs'
  const { start } = (await import(script)) as { start: () => Promise<Server> }
  return start()
}

/** SMPTE-like colour bars in I420 (BT.601 limited range), drawn once. */
function colourBars(): Uint8Array {
  // Y, U, V of white, yellow, cyan, green, magenta, red, blue, black.
  const bars = [
    [235, 128, 128],
    [210, 16, 146],
    [170, 166, 16],
    [145, 54, 34],
    [106, 202, 222],
    [81, 90, 240],
    [41, 240, 110],
    [16, 128, 128],
  ]
  const cw = WIDTH / 2
  const ch = HEIGHT / 2
  const data = new Uint8Array(WIDTH * HEIGHT + 2 * cw * ch)
  const [u, v] = [WIDTH * HEIGHT, WIDTH * HEIGHT + cw * ch]
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) data[y * WIDTH + x] = bars[Math.floor((x * bars.length) / WIDTH)][0]
  }
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const bar = bars[Math.floor((x * 2 * bars.length) / WIDTH)]
      data[u + y * cw + x] = bar[1]
      data[v + y * cw + x] = bar[2]
    }
  }
  return data
}

/** The bars with a white square bouncing across them, for frame `n`. */
function drawFrame(base: Uint8Array, frame: VideoFrame, n: number): void {
  const data = frame.data
  data.set(base)
  const size = 160
  const span = WIDTH - size
  const phase = (n * 12) % (2 * span)
  const left = phase < span ? phase : 2 * span - phase
  const top = Math.round((HEIGHT - size) / 2 + Math.sin(n / 15) * (HEIGHT / 3))
  for (let y = top; y < top + size; y++) data.fill(235, y * WIDTH + left, y * WIDTH + left + size)
  const cw = WIDTH / 2
  const [u, v] = [WIDTH * HEIGHT, WIDTH * HEIGHT + cw * (HEIGHT / 2)]
  for (let y = top / 2; y < (top + size) / 2; y++) {
    const row = Math.floor(y) * cw + left / 2
    data.fill(128, u + row, u + row + size / 2)
    data.fill(128, v + row, v + row + size / 2)
  }
}

async function main(): Promise<void> {
  const srv = await server()
  console.log(`livekit-server at ${srv.url}`)
  const room = `lkrtc-demo-${process.pid}`
  const token = (identity: string) => createToken({ apiKey: srv.apiKey, apiSecret: srv.apiSecret, identity, room })

  const viewer = new Room()
  const sender = new Room()
  try {
    const subscribed = new Promise<RemoteVideoTrack>((resolve) =>
      viewer.once('trackSubscribed', (track) => resolve(track)),
    )
    await viewer.connect(srv.url, token('viewer'))
    await sender.connect(srv.url, token('pattern'))
    console.log(
      `joined room ${sender.name} as ${sender.localParticipant.identity} and ${viewer.localParticipant.identity}`,
    )

    const source = new VideoSource(WIDTH, HEIGHT)
    const track = LocalVideoTrack.createVideoTrack('test-pattern', source)
    const publication = await sender.localParticipant.publishTrack(track, {
      source: TrackSource.Camera,
      videoCodec: 'vp8',
      videoEncoding: { maxBitrate: 2_500_000, maxFramerate: FPS },
    })
    console.log(`published ${publication.sid} (${publication.mimeType}, ${WIDTH}x${HEIGHT} at ${FPS} fps)`)

    // Send: one I420 frame, redrawn and captured every 1/FPS s.
    const base = colourBars()
    const frame = new VideoFrame(WIDTH, HEIGHT, VideoBufferType.I420, new Uint8Array(base.length))
    let sent = 0
    const started = performance.now()
    const sending = (async () => {
      while (performance.now() - started < SECONDS * 1000) {
        drawFrame(base, frame, sent)
        // Stamp each frame with its due time, not the (jittery) time the timer fired: the encoder
        // paces by these timestamps.
        const timestampUs = Math.round((performance.timeOrigin + started + (sent * 1000) / FPS) * 1000)
        source.captureFrame(frame, { timestampUs })
        sent++
        const due = started + (sent * 1000) / FPS
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())))
      }
    })()

    // Receive: RGBA frames, counted per second.
    const remote = await subscribed
    const stream = new VideoStream(remote, { format: VideoBufferType.RGBA, capacity: 2 })
    let received = 0
    let lastSecond = 0
    let first = 0
    let last: VideoFrame | undefined
    const receiving = (async () => {
      for await (const event of stream) {
        const now = performance.now()
        first ||= now
        received++
        lastSecond++
        last = event.frame
      }
    })()
    const ticker = setInterval(() => {
      console.log(`received ${lastSecond} frames/s (${remote.sid}, dropped ${stream.droppedFrames})`)
      lastSecond = 0
    }, 1000)

    await sending
    await new Promise((r) => setTimeout(r, 500))
    clearInterval(ticker)
    stream.close()
    await receiving
    const seconds = (performance.now() - first) / 1000
    const stats = sender.localParticipant.publishStats(publication.sid)
    console.log(
      `sent ${sent} frames, received ${received} in ${seconds.toFixed(1)} s: ${(received / seconds).toFixed(1)} frames/s, ` +
        (stats
          ? `${stats.framesEncoded} encoded (${stats.framesDropped} replaced before the encoder took them), ${(stats.bytesSent / 1024 / 1024).toFixed(2)} MiB sent (target ${Math.round(stats.bitrateBps / 1000)} kbit/s)`
          : ''),
    )

    if (last) {
      mkdirSync('out', { recursive: true })
      const png = new PNG({ width: last.width, height: last.height })
      png.data = Buffer.from(last.data.buffer, last.data.byteOffset, last.data.byteLength)
      writeFileSync('out/received.png', PNG.sync.write(png))
      console.log(`wrote out/received.png (${last.width}x${last.height})`)
    } else {
      process.exitCode = 1
      console.error('no frame was received')
    }
    source.close()
  } finally {
    await sender.disconnect()
    await viewer.disconnect()
    await srv.stop()
  }
}

main().catch((e) => {
  console.error(e)
  process.exitCode = 1
})
