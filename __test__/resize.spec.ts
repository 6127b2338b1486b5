/**
 * A source whose frames change size while it is published (a resized window, a camera that
 * switches mode): lkrtc's encoders follow without a republish, subscribers (lkrtc and
 * @livekit/rtc-node) decode the new size with the picture intact, and the publication's size is
 * updated on the server. Every decoded picture is checked: four coloured quadrants, so a
 * picture squeezed, cropped wrongly or broken at the switch would fail. Serial: real-time media.
 */
import test from 'ava'

import {
  type LocalTrackPublication,
  LocalVideoTrack,
  type RemoteTrackPublication,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { classify, COLOURS, type Rgb } from './helpers/colors.js'
import { joinRtcNode, rtc } from './helpers/rtc-node.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

const QUADRANTS = ['red', 'green', 'blue', 'white']

/** A `width` x `height` RGBA picture of the four quadrants. */
function quadrants(width: number, height: number): VideoFrame {
  const data = new Uint8Array(width * height * 4)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const rgb: Rgb = COLOURS[QUADRANTS[(y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1)]]
      data.set([...rgb, 255], (y * width + x) * 4)
    }
  }
  return new VideoFrame(width, height, VideoBufferType.RGBA, data)
}

/** The colour names of an RGBA picture's quadrants, each sampled away from its edges. */
function quadrantColours(width: number, height: number, data: Uint8Array): (string | undefined)[] {
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

/** What a subscriber saw: every size in order, and every picture whose quadrants were wrong. */
interface Seen {
  sizes: string[]
  broken: string[]
  countOf(size: string): number
}

function seen(): Seen {
  const sizes: string[] = []
  return {
    sizes,
    broken: [],
    countOf: (size) => sizes.filter((s) => s === size).length,
  }
}

function record(into: Seen, width: number, height: number, data: Uint8Array) {
  const size = `${width}x${height}`
  into.sizes.push(size)
  const colours = quadrantColours(width, height, data)
  if (colours.join() !== QUADRANTS.join()) into.broken.push(`${size}: ${colours.join()}`)
}

/** lkrtc publishes the quadrants at `first` size, 15 fps; `resize` switches what it captures. */
async function publisher(
  room: string,
  first: [number, number],
  options: { simulcast: boolean; codec: 'vp8' | 'h264' },
) {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token('resizer', room))
  const source = new VideoSource(first[0], first[1])
  const track = LocalVideoTrack.createVideoTrack('window', source)
  let picture = quadrants(first[0], first[1])
  const timer = setInterval(() => source.captureFrame(picture), 66)
  const publication: LocalTrackPublication = await lk.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    videoCodec: options.codec,
    simulcast: options.simulcast,
  })
  return {
    source,
    publication,
    resize(width: number, height: number) {
      picture = quadrants(width, height)
    },
    async close() {
      clearInterval(timer)
      await lk.disconnect()
    },
  }
}

/** Waits until `cond` holds, checking every 100 ms, for at most `ms`. */
async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (cond()) return true
    await sleep(100)
  }
  return cond()
}

test.serial('an lkrtc subscriber receives a source that changes size at its new size, picture intact', async (t) => {
  const server = await testServer()
  const room = roomName('resize-lk')
  const viewer = new Room()
  await viewer.connect(server.url, await token('viewer', room))
  const subscribed = once<[RemoteVideoTrack, RemoteTrackPublication]>(viewer, 'trackSubscribed')
  const pub = await publisher(room, [640, 360], { simulcast: false, codec: 'vp8' })
  const [track, remote] = await subscribed
  const got = seen()
  const stream = new VideoStream(track, { format: VideoBufferType.RGBA })
  const reading = (async () => {
    for await (const ev of stream) record(got, ev.frame.width, ev.frame.height, ev.frame.data)
  })()
  try {
    t.true(await until(() => got.countOf('640x360') >= 10, 10_000), `sizes: ${got.sizes.slice(-5)}`)
    // Another aspect ratio, and an odd size.
    pub.resize(401, 300)
    t.true(await until(() => got.countOf('401x300') >= 10, 10_000), `sizes after the resize: ${got.sizes.slice(-5)}`)
    t.is(pub.source.width, 401)
    t.is(pub.source.height, 300)
    // The server learnt the new size and told the room.
    t.true(await until(() => remote.width === 401 && remote.height === 300, 5000), `${remote.width}x${remote.height}`)
    pub.resize(640, 360)
    const before = got.countOf('640x360')
    t.true(
      await until(() => got.countOf('640x360') >= before + 10, 10_000),
      `sizes after going back: ${got.sizes.slice(-5)}`,
    )
    t.deepEqual(got.broken, [])
    // Sizes come in the order captured: no old-size frame after the new size started.
    const firstNew = got.sizes.indexOf('401x300')
    const lastNew = got.sizes.lastIndexOf('401x300')
    t.false(got.sizes.slice(firstNew, lastNew).includes('640x360'), 'sizes interleaved')
  } finally {
    stream.close()
    await reading
    await pub.close()
    await viewer.disconnect()
  }
})

test.serial('simulcast layers follow a source that changes size, as rtc-node receives them', async (t) => {
  const room = roomName('resize-rtc')
  const peer = await joinRtcNode(room, 'rtc-node-viewer')
  const subscribed = new Promise<rtc.RemoteTrack>((resolve) =>
    peer.on(rtc.RoomEvent.TrackSubscribed, (track: rtc.RemoteTrack) => resolve(track)),
  )
  const pub = await publisher(room, [1280, 720], { simulcast: true, codec: 'h264' })
  const track = await subscribed
  const got = seen()
  const stream = new rtc.VideoStream(track)
  const reader = stream.getReader()
  let stopped = false
  const reading = (async () => {
    while (!stopped) {
      const { done, value } = await reader.read()
      if (done) break
      const rgba = value.frame.convert(rtc.VideoBufferType.RGBA)
      record(got, rgba.width, rgba.height, rgba.data)
    }
  })()
  try {
    t.true(await until(() => got.countOf('1280x720') >= 10, 15_000), `sizes: ${got.sizes.slice(-5)}`)
    // 4:3 now: every layer keeps its share of the source (the top layer the whole of it). The
    // server forwards the layer rtc-node's estimate allows, which on a loaded machine may be a
    // lower one: any layer of the new source shows the layers followed.
    pub.resize(960, 720)
    const newLayers = () => got.countOf('960x720') + got.countOf('480x360') + got.countOf('240x180')
    t.true(await until(() => newLayers() >= 10, 15_000), `sizes after the resize: ${got.sizes.slice(-5)}`)
    t.deepEqual(got.broken, [])
    // Whatever layer the server forwarded, it is a layer of one of the two sources.
    const layers = ['320x180', '640x360', '1280x720', '240x180', '480x360', '960x720']
    t.true(
      got.sizes.every((s) => layers.includes(s)),
      `sizes seen: ${[...new Set(got.sizes)]}`,
    )
  } finally {
    stopped = true
    await reader.cancel().catch(() => {})
    await reading.catch(() => {})
    await pub.close()
    await peer.disconnect()
  }
})
