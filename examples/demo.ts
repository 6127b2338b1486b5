// Two lkrtc participants in one room of a local livekit-server: one publishes a moving 1280x720
// test pattern for 10 s, the other receives it with a VideoStream, prints the frames per second
// and writes the last frame it received to out/received.png.
//   node --import tsx examples/demo.ts        (npm run demo does the set-up first)
//   npm run demo -- --viewer                  also serves a page that plays the room in a
//                                             browser (livekit-client), and runs until Ctrl-C
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
import { colourBars, drawFrame } from './pattern.js'
import { startViewer } from './viewer.js'

const WIDTH = 1280
const HEIGHT = 720
const FPS = 30
const WITH_VIEWER = process.argv.includes('--viewer')
/** How long the pattern runs: 10 s, or 10 minutes with the viewer (Ctrl-C ends it sooner). */
const SECONDS = Number(process.env.DEMO_SECONDS ?? (WITH_VIEWER ? 600 : 10))

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
    let stopped = false
    if (WITH_VIEWER) {
      const page = await startViewer(Number(process.env.DEMO_VIEWER_PORT ?? 0))
      process.once('SIGINT', () => {
        stopped = true
      })
      console.log(`open ${page.url(srv.url, await token('browser'))}`)
      console.log('to watch the pattern in a browser on this machine (Ctrl-C to stop)')
      process.once('exit', () => void page.close())
    }

    const base = colourBars(WIDTH, HEIGHT)
    const frame = new VideoFrame(WIDTH, HEIGHT, VideoBufferType.I420, new Uint8Array(base.length))
    let sent = 0
    const started = performance.now()
    const sending = (async () => {
      while (!stopped && performance.now() - started < SECONDS * 1000) {
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
