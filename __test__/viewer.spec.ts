/// <reference lib="dom" />
/**
 * The demo's viewer page: livekit-client in headless Chromium plays what lkrtc publishes, and
 * publishes a canvas that lkrtc receives. Against a real livekit-server, on loopback.
 */
import { existsSync, mkdirSync } from 'node:fs'

import test from 'ava'
import puppeteer, { type Browser, type Page } from 'puppeteer-core'

import { BARS_RGB, clearRows, colourBars, drawFrame } from '../examples/pattern.js'
import { startViewer, type Viewer } from '../examples/viewer.js'
import {
  LocalVideoTrack,
  type RemoteTrackPublication,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoQuality,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { meanRgb, type Rgb } from './helpers/colors.js'
import { once, roomName, stopTestServer, testServer, token } from './helpers/server.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const WIDTH = 640
const HEIGHT = 360

let browser: Browser | undefined
let viewer: Viewer | undefined

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (scripts/bootstrap.sh installs it)`)
  viewer = await startViewer()
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--autoplay-policy=no-user-gesture-required',
    ],
  })
})

test.after.always(async () => {
  await browser?.close()
  await viewer?.close()
  await stopTestServer()
})

/** The page's mean colour of each bar (in the rows the square never covers) and a coarse luma grid. */
async function look(
  page: Page,
  clear: number,
): Promise<{ width: number; height: number; bars: Rgb[]; grid: number[] }> {
  return page.evaluate((clearRows: number) => {
    const video = document.getElementById('video') as HTMLVideoElement
    const [w, h] = [video.videoWidth, video.videoHeight]
    const canvas = document.createElement('canvas')
    canvas.width = w
    canvas.height = h
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D
    ctx.drawImage(video, 0, 0)
    const px = ctx.getImageData(0, 0, w, h).data
    const rows = Math.max(2, Math.floor((clearRows * h) / 360))
    const bars: [number, number, number][] = []
    for (let i = 0; i < 8; i++) {
      const [x0, x1] = [Math.floor(((i + 0.25) * w) / 8), Math.floor(((i + 0.75) * w) / 8)]
      let [r, g, b, n] = [0, 0, 0, 0]
      for (let y = 1; y < rows; y++) {
        for (let x = x0; x < x1; x++) {
          const k = (y * w + x) * 4
          r += px[k]
          g += px[k + 1]
          b += px[k + 2]
          n++
        }
      }
      bars.push([r / n, g / n, b / n])
    }
    const grid: number[] = []
    for (let gy = 0; gy < 18; gy++) {
      for (let gx = 0; gx < 32; gx++) {
        const k = (Math.floor(((gy + 0.5) * h) / 18) * w + Math.floor(((gx + 0.5) * w) / 32)) * 4
        grid.push(px[k] + px[k + 1] + px[k + 2])
      }
    }
    return { width: w, height: h, bars, grid }
  }, clear)
}

test.serial('the viewer page plays the moving pattern lkrtc publishes', async (t) => {
  const server = await testServer()
  const name = roomName('viewer')
  const lk = new Room()
  await lk.connect(server.url, await token('lkrtc-pattern', name))
  const source = new VideoSource(WIDTH, HEIGHT)
  const base = colourBars(WIDTH, HEIGHT)
  const frame = new VideoFrame(WIDTH, HEIGHT, VideoBufferType.I420, new Uint8Array(base.length))
  let n = 0
  const timer = setInterval(() => {
    drawFrame(base, frame, n++)
    source.captureFrame(frame)
  }, 33)
  const page = await (browser as Browser).newPage()
  try {
    await lk.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('pattern', source), {
      source: TrackSource.Camera,
      degradationPreference: 'maintain-resolution',
    })
    await page.goto((viewer as Viewer).url(server.url, await token('browser', name)))
    await page.waitForFunction(
      () => {
        const v = document.getElementById('video') as HTMLVideoElement
        return v.videoWidth > 0 && v.currentTime > 0.5
      },
      { timeout: 30_000 },
    )
    const first = await look(page, clearRows(HEIGHT))
    await new Promise((r) => setTimeout(r, 700))
    const later = await look(page, clearRows(HEIGHT))
    t.is(`${later.width}x${later.height}`, `${WIDTH}x${HEIGHT}`)
    for (const [i, rgb] of later.bars.entries()) {
      const off = rgb.map((c, k) => Math.abs(c - BARS_RGB[i][k]))
      t.true(
        off.every((d) => d <= 48),
        `bar ${i}: ${rgb.map(Math.round)} vs ${BARS_RGB[i]}`,
      )
    }
    // The square moved: the grids differ where it was and where it is.
    const changed = first.grid.filter((v, i) => Math.abs(v - later.grid[i]) > 150).length
    t.true(changed >= 2, `${changed} grid points changed`)
    mkdirSync('out', { recursive: true })
    await page.screenshot({ path: 'out/viewer.png' })
  } finally {
    clearInterval(timer)
    await page.close()
    await lk.disconnect()
  }
})

test.serial('a canvas the browser publishes reaches lkrtc with its colour', async (t) => {
  const server = await testServer()
  const name = roomName('viewer-back')
  const lk = new Room()
  const subscribed = once<[RemoteVideoTrack]>(lk, 'trackSubscribed', undefined, 30_000)
  await lk.connect(server.url, await token('lkrtc-watcher', name))
  const page = await (browser as Browser).newPage()
  try {
    await page.goto(
      (viewer as Viewer).url(server.url, await token('browser-canvas', name), { publish: '1', colour: '200,40,160' }),
    )
    const [track] = await subscribed
    const stream = new VideoStream(track, { format: VideoBufferType.RGBA, capacity: 1 })
    let seen = 0
    let last: Rgb = [0, 0, 0]
    for await (const { frame } of stream) {
      last = meanRgb(frame.data, frame.width, frame.height)
      if (++seen >= 10) break
    }
    t.is(seen, 10)
    t.true(
      last.every((c, i) => Math.abs(c - [200, 40, 160][i]) <= 40),
      `received ${last.map(Math.round)}`,
    )
  } finally {
    await page.close()
    await lk.disconnect()
  }
})

// livekit-client publishes AV1 as one scalable stream of three spatial layers (L3T3_KEY): the
// server forwards the layers a subscriber asks for, and lkrtc decodes each switch.
test.serial("lkrtc follows the server's switches between a browser's AV1 SVC layers", async (t) => {
  const server = await testServer()
  const name = roomName('viewer-av1-svc')
  const lk = new Room()
  const subscribed = once<[RemoteVideoTrack, RemoteTrackPublication]>(lk, 'trackSubscribed', undefined, 30_000)
  await lk.connect(server.url, await token('lkrtc-watcher', name))
  const page = await (browser as Browser).newPage()
  try {
    const extra = { publish: '1', colour: '40,160,200', size: '1280x720', codec: 'av1', svc: '1' }
    await page.goto((viewer as Viewer).url(server.url, await token('browser-av1', name), extra))
    const [track, publication] = await subscribed
    t.is(publication.mimeType, 'video/AV1')
    const stream = new VideoStream(track, { format: VideoBufferType.RGBA, capacity: 1 })
    const seen: { size: string; colour: Rgb }[] = []
    const reading = (async () => {
      for await (const { frame } of stream) {
        seen.push({ size: `${frame.width}x${frame.height}`, colour: meanRgb(frame.data, frame.width, frame.height) })
      }
    })()
    // The sizes of each window's frames; a switch takes effect within a second or so.
    const sizesFor = async (quality: VideoQuality, ms: number) => {
      await publication.setVideoQuality(quality)
      const from = seen.length
      await new Promise((r) => setTimeout(r, ms))
      return seen.slice(from).map((f) => f.size)
    }
    const high = await sizesFor(VideoQuality.High, 4000)
    const low = await sizesFor(VideoQuality.Low, 4000)
    const highAgain = await sizesFor(VideoQuality.High, 4000)
    stream.close()
    await reading
    const area = (s: string) =>
      s
        .split('x')
        .map(Number)
        .reduce((a, b) => a * b)
    // The last ten frames of a window: the layer it settled on.
    const settled = (sizes: string[]) => new Set(sizes.slice(-10))
    t.log(
      `high ${[...new Set(high)]}, low ${[...new Set(low)]}, high again ${[...new Set(highAgain)]}; ${seen.length} frames`,
    )
    t.deepEqual(settled(high), new Set(['1280x720']))
    t.true(
      low.length >= 10 && [...settled(low)].every((s) => area(s) < 1280 * 720),
      `settled at Low: ${[...settled(low)]}`,
    )
    t.deepEqual(settled(highAgain), new Set(['1280x720']))
    const wrong = seen.filter((f) => !f.colour.every((c, i) => Math.abs(c - [40, 160, 200][i]) <= 40))
    t.is(wrong.length, 0, `wrong pictures: ${wrong.slice(0, 3).map((f) => f.colour.map(Math.round))}`)
  } finally {
    await page.close()
    await lk.disconnect()
  }
})
