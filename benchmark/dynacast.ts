// What dynacast saves: an lkrtc participant publishes a moving 1280x720 picture with simulcast
// (three layers) to one subscriber (LiveKit's Python SDK) that asks for the Low layer, once with
// dynacast off and once on; prints the publishing process's CPU and the layers' counters.
//   npm run bench:dynacast              (10 s measured per run after a 10 s warm-up)
//   DYNACAST_SECONDS=20 npm run bench:dynacast
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { createToken, LocalVideoTrack, Room, VideoBufferType, VideoFrame, VideoSource } from '../lib/index.js'

const SECONDS = Number(process.env.DYNACAST_SECONDS ?? 10)
// Long enough for the server's dynacast signal (it waits a few seconds before lowering a layer).
const WARMUP = Number(process.env.DYNACAST_WARMUP ?? 10)
const WIDTH = 1280
const HEIGHT = 720
const FPS = 30
const ROOT = join(__dirname, '..')
const PYTHON = join(ROOT, '.tools/pyenv/bin/python')

/** 30 frames of a diagonal gradient moving across the picture: content the encoders must work on. */
function movingFrames(): VideoFrame[] {
  return Array.from({ length: FPS }, (_, n) => {
    const data = new Uint8Array(WIDTH * HEIGHT * 4)
    for (let y = 0; y < HEIGHT; y++) {
      for (let x = 0; x < WIDTH; x++) {
        const i = (y * WIDTH + x) * 4
        const v = (x + y + n * 16) & 255
        data[i] = v
        data[i + 1] = (v * 3) & 255
        data[i + 2] = 255 - v
        data[i + 3] = 255
      }
    }
    return new VideoFrame(WIDTH, HEIGHT, VideoBufferType.RGBA, data)
  })
}

async function run(
  server: { url: string; apiKey: string; apiSecret: string },
  dynacast: boolean,
  frames: VideoFrame[],
) {
  const room = `dynacast-${dynacast}-${process.pid}`
  const token = (identity: string) =>
    createToken({ apiKey: server.apiKey, apiSecret: server.apiSecret, identity, room })
  const lk = new Room()
  await lk.connect(server.url, await token('publisher'), { dynacast })
  const source = new VideoSource(WIDTH, HEIGHT)
  const publication = await lk.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('camera', source))
  let n = 0
  const timer = setInterval(() => source.captureFrame(frames[n++ % frames.length]), 1000 / FPS)
  const sub: ChildProcess = spawn(
    PYTHON,
    [
      join(ROOT, '__test__/helpers/py_subscriber.py'),
      server.url,
      await token('viewer'),
      'low',
      String(WARMUP + SECONDS + 5),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  let received = 0
  let lastSize = ''
  sub.stdout?.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (!line.includes('"frame"')) continue
      received++
      const f = JSON.parse(line) as { width: number; height: number }
      lastSize = `${f.width}x${f.height}`
    }
  })
  await new Promise((r) => setTimeout(r, WARMUP * 1000))
  const before = lk.localParticipant.publishStats(publication.sid)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const received0 = received
  await new Promise((r) => setTimeout(r, SECONDS * 1000))
  const cpu = process.cpuUsage(cpu0)
  const elapsed = (performance.now() - t0) / 1000
  const after = lk.localParticipant.publishStats(publication.sid)
  clearInterval(timer)
  sub.kill('SIGTERM')
  source.close()
  await lk.disconnect()
  const layers = (after?.layers ?? []).map((l, i) => {
    const b = before?.layers[i]
    const fps = (l.framesEncoded - (b?.framesEncoded ?? 0)) / elapsed
    const kbps = ((l.bytesSent - (b?.bytesSent ?? 0)) * 8) / elapsed / 1000
    const keyframes = l.keyframesEncoded - (b?.keyframesEncoded ?? 0)
    return `${l.rid} ${l.width}x${l.height}: ${fps.toFixed(1)} fps, ${kbps.toFixed(0)} kbit/s, ${keyframes} keyframes${l.paused ? ' (paused)' : ''}`
  })
  return {
    dynacast,
    cpuPercent: ((cpu.user + cpu.system) / 1e4 / elapsed).toFixed(1),
    subscriberFps: ((received - received0) / elapsed).toFixed(1),
    subscriberSize: lastSize,
    layers,
    skipped: (after?.framesSkipped ?? 0) - (before?.framesSkipped ?? 0),
  }
}

async function main() {
  if (!existsSync(PYTHON))
    throw new Error(`LiveKit's Python SDK is missing at ${PYTHON}: run bash scripts/bootstrap.sh`)
  const { start } = (await import(join(ROOT, 'scripts/livekit-server.mjs'))) as {
    start: () => Promise<{ url: string; apiKey: string; apiSecret: string; stop(): Promise<void> }>
  }
  const server = await start()
  const frames = movingFrames()
  try {
    const rows = [await run(server, false, frames), await run(server, true, frames)]
    console.log('| dynacast | publisher CPU (% of a core) | subscriber (Low) | layers sent | frames skipped (queue) |')
    console.log('|---|---|---|---|---|')
    for (const r of rows) {
      console.log(
        `| ${r.dynacast ? 'on' : 'off'} | ${r.cpuPercent} | ${r.subscriberSize} at ${r.subscriberFps} fps | ${r.layers.join('; ')} | ${r.skipped} |`,
      )
    }
  } finally {
    await server.stop()
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
