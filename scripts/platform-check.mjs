// Exercises one built addon in a Node of its own platform (a musl Node, an arm64 Node under
// qemu): the frame conversion and, with a server, a room in which one participant publishes a
// two-colour VP8 video and another receives it, the pixels of the received frames checked.
//
//   node scripts/platform-check.mjs --addon lkrtc.linux-arm64-gnu.node [--room] -- <node command...>
//
// This host Node starts a local livekit-server (for --room), then runs the same file with the
// given Node command (e.g. `qemu-aarch64-static node`), which loads the
// addon through the package's own entry point (dist/, index.js) and prints one line per check.
// Exits non-zero if a check fails.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'

const ROOT = resolve(import.meta.dirname, '..')

if (process.argv.includes('--')) {
  await host()
} else {
  await check()
}

/** On the host: the server, then the check in the target's Node. */
async function host() {
  const args = process.argv.slice(2)
  const split = args.indexOf('--')
  const own = args.slice(0, split)
  const node = args.slice(split + 1)
  const addon = own[own.indexOf('--addon') + 1]
  if (!addon || node.length === 0) {
    console.error('usage: platform-check.mjs --addon <file.node> [--room] -- <node command...>')
    process.exit(2)
  }
  const env = { ...process.env, NAPI_RS_NATIVE_LIBRARY_PATH: resolve(ROOT, addon) }
  let server
  if (own.includes('--room')) {
    const { start } = await import('./livekit-server.mjs')
    server = await start()
    Object.assign(env, {
      LKRTC_TEST_URL: server.url,
      LKRTC_TEST_API_KEY: server.apiKey,
      LKRTC_TEST_API_SECRET: server.apiSecret,
    })
  }
  const [command, ...rest] = node
  const child = spawn(command, [...rest, import.meta.filename], { stdio: 'inherit', env, cwd: ROOT })
  const code = await new Promise((r) => child.once('exit', (c, signal) => r(c ?? (signal ? 1 : 0))))
  await server?.stop()
  process.exit(code)
}

/** In the target's Node. */
async function check() {
  const report = process.report.getReport().header
  const libc = report.glibcVersionRuntime ? `glibc ${report.glibcVersionRuntime}` : 'musl'
  console.log(
    `node ${process.versions.node} (${process.platform}-${process.arch}, ${libc}, N-API ${process.versions.napi})`,
  )
  // The package's entry point; the napi loader takes the addon under test from NAPI_RS_NATIVE_LIBRARY_PATH
  // (its own libc detection reads /usr/bin/ldd, which is the host's glibc one here).
  const lkrtc = createRequire(import.meta.url)(resolve(ROOT, 'dist/index.js'))
  let failed = 0
  const ok = (name, pass, detail) => {
    console.log(`${pass ? 'ok' : 'FAIL'} ${name}: ${detail}`)
    if (!pass) failed++
  }

  // Conversion: RGBA -> I420 -> RGBA keeps the colour of each half (BT.601, limited range).
  const W = 64
  const H = 48
  const LEFT = [200, 40, 40]
  const RIGHT = [40, 60, 210]
  const rgba = twoColours(W, H, LEFT, RIGHT)
  const frame = new lkrtc.VideoFrame(W, H, lkrtc.VideoBufferType.RGBA, rgba)
  const i420 = frame.convert(lkrtc.VideoBufferType.I420)
  const back = i420.convert(lkrtc.VideoBufferType.RGBA)
  const far = Math.max(
    distance(pixel(back.data, W, W / 4, H / 2), LEFT),
    distance(pixel(back.data, W, (3 * W) / 4, H / 2), RIGHT),
  )
  ok(
    'convert',
    i420.data.length === (W * H * 3) / 2 && far <= 6,
    `I420 ${i420.data.length} bytes, round trip off by ${far} at most`,
  )

  if (process.env.LKRTC_TEST_URL) failed += await room(lkrtc, ok, LEFT, RIGHT)
  console.log(failed === 0 ? 'all checks passed' : `${failed} check(s) failed`)
  process.exit(failed === 0 ? 0 : 1)
}

/** Publishes 320x240 VP8 from one participant, receives it in another, checks 5 frames. */
async function room(lkrtc, ok, LEFT, RIGHT) {
  const W = 320
  const H = 240
  const WANTED = 5
  const { LKRTC_TEST_URL: url, LKRTC_TEST_API_KEY: apiKey, LKRTC_TEST_API_SECRET: apiSecret } = process.env
  const name = `platform-${process.arch}-${process.pid}`
  const token = (identity) => lkrtc.createToken({ apiKey, apiSecret, identity, room: name })
  const receiver = new lkrtc.Room()
  const sender = new lkrtc.Room()
  let failed = 0
  const deadline = setTimeout(() => {
    console.log(`FAIL room: fewer than ${WANTED} frames within 180 s`)
    process.exit(1)
  }, 180_000)
  try {
    const subscribed = new Promise((r) => receiver.once('trackSubscribed', (track) => r(track)))
    await receiver.connect(url, token('receiver'))
    await sender.connect(url, token('sender'))
    const source = new lkrtc.VideoSource(W, H)
    const track = lkrtc.LocalVideoTrack.createVideoTrack('halves', source)
    await sender.localParticipant.publishTrack(track, { source: lkrtc.TrackSource.Camera, videoCodec: 'vp8' })
    const i420 = new lkrtc.VideoFrame(W, H, lkrtc.VideoBufferType.RGBA, twoColours(W, H, LEFT, RIGHT)).convert(
      lkrtc.VideoBufferType.I420,
    )
    let stop = false
    const sending = (async () => {
      const started = Date.now()
      for (let n = 0; !stop; n++) {
        source.captureFrame(i420, { timestampUs: (started + n * 100) * 1000 })
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    const remote = await subscribed
    const stream = new lkrtc.VideoStream(remote, { format: lkrtc.VideoBufferType.RGBA, capacity: 2 })
    let seen = 0
    let worst = 0
    for await (const { frame } of stream) {
      if (frame.width !== W || frame.height !== H) {
        ok('room', false, `received ${frame.width}x${frame.height}, sent ${W}x${H}`)
        failed++
        break
      }
      const off = Math.max(
        distance(pixel(frame.data, W, W / 4, H / 2), LEFT),
        distance(pixel(frame.data, W, (3 * W) / 4, H / 2), RIGHT),
      )
      worst = Math.max(worst, off)
      if (++seen === WANTED) break
    }
    stream.close()
    stop = true
    await sending
    source.close()
    if (failed === 0) {
      const pass = seen === WANTED && worst <= 24
      ok('room', pass, `${seen} VP8 frames ${W}x${H} through livekit-server, colours off by ${worst} at most`)
      if (!pass) failed++
    }
  } finally {
    clearTimeout(deadline)
    await sender.disconnect()
    await receiver.disconnect()
  }
  return failed
}

function twoColours(w, h, left, right) {
  const data = new Uint8Array(w * h * 4)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      data.set([...(x < w / 2 ? left : right), 255], (y * w + x) * 4)
    }
  }
  return data
}

function pixel(data, w, x, y) {
  const i = (y * w + x) * 4
  return [data[i], data[i + 1], data[i + 2]]
}

function distance(a, b) {
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])))
}
