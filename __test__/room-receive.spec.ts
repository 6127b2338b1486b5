/**
 * lkrtc receives video through `VideoStream`: from another lkrtc participant and from
 * @livekit/rtc-node, against a real livekit-server. Serial: each test runs real-time media, and
 * concurrent ones would starve each other of CPU.
 */
import test from 'ava'

import {
  LocalVideoTrack,
  type RemoteParticipant,
  type RemoteTrackPublication,
  type RemoteVideoTrack,
  Room,
  TrackKind,
  TrackSource,
  VideoBufferType,
  type VideoFrame,
  VideoQuality,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import {
  COLOURS,
  GREY,
  inOrder,
  playSequence,
  readStreamColours,
  SEQUENCE,
  solidRgba,
  stableRuns,
  type Rgb,
} from './helpers/colors.js'
import { CODECS, MIME, type PublishedCodec, RECEIVED_CODECS } from './helpers/codecs.js'
import { joinRtcNode, RTC_NODE_CODEC, rtc } from './helpers/rtc-node.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

const WIDTH = 640
const HEIGHT = 480

async function join(room: string, identity: string): Promise<Room> {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token(identity, room))
  return lk
}

/** A publishing lkrtc participant whose source repeats `colour` at 15 fps until told otherwise. */
async function publisher(room: string, identity: string, { codec = 'vp8' as PublishedCodec, name = 'camera' } = {}) {
  const lk = await join(room, identity)
  const source = new VideoSource(WIDTH, HEIGHT)
  const track = LocalVideoTrack.createVideoTrack(name, source)
  const publication = await lk.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    videoCodec: codec,
    // The tests assert the size received: keep it whatever the bandwidth estimate does, and
    // send one layer (with simulcast the server may forward the lower one for a while).
    degradationPreference: 'maintain-resolution',
    simulcast: false,
  })
  let frame = solidRgba(WIDTH, HEIGHT, GREY)
  let timer: NodeJS.Timeout | undefined = setInterval(() => {
    if (!source.isClosed) source.captureFrame(frame)
  }, 66)
  return {
    lk,
    source,
    track,
    publication,
    show(colour: Rgb) {
      frame = solidRgba(WIDTH, HEIGHT, colour)
    },
    stopRepeating() {
      if (timer) clearInterval(timer)
      timer = undefined
    },
  }
}

type Subscribed = [RemoteVideoTrack, RemoteTrackPublication, RemoteParticipant]

/** Reads `stream` to its end in the background, counting its frames. */
function drain(stream: VideoStream): { frames: number; ended: Promise<void> } {
  const reader = { frames: 0, ended: Promise.resolve() }
  reader.ended = (async () => {
    for await (const _ of stream) reader.frames++
  })()
  return reader
}

for (const codec of CODECS) {
  test.serial(`lkrtc receives every colour another lkrtc publishes, in order, as RGBA (${codec})`, async (t) => {
    const name = roomName(`lk-lk-${codec}`)
    const viewer = await join(name, 'lkrtc-viewer')
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    const pub = await publisher(name, 'lkrtc-sender', { codec })
    try {
      const [track, publication] = await subscribed
      t.is(publication.mimeType, MIME[codec])
      t.is(pub.publication.mimeType, MIME[codec])
      const reader = readStreamColours(new VideoStream(track, { format: VideoBufferType.RGBA }))
      pub.stopRepeating()
      await playSequence((frame, timestampUs) => pub.source.captureFrame(frame, { timestampUs }))
      await reader.stop()
      const runs = stableRuns(reader.names)
      t.log(`${reader.names.length} frames received; stable runs: ${runs.join(' ')}`)
      t.deepEqual([...reader.sizes], [`${WIDTH}x${HEIGHT}`])
      t.true(inOrder(runs, SEQUENCE), `expected ${SEQUENCE.join(' ')} in order, saw ${runs.join(' ')}`)
    } finally {
      pub.stopRepeating()
      await pub.lk.disconnect()
      await viewer.disconnect()
    }
  })
}

for (const codec of RECEIVED_CODECS) {
  test.serial(`lkrtc receives every colour rtc-node publishes, in order (${codec})`, async (t) => {
    const name = roomName(`node-lk-${codec}`)
    const viewer = await join(name, 'lkrtc-viewer')
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    const peer = await joinRtcNode(name, 'rtc-node-sender')
    const source = new rtc.VideoSource(WIDTH, HEIGHT)
    const capture = (rgb: Rgb, timestampUs?: number) => {
      const data = solidRgba(WIDTH, HEIGHT, rgb).data
      const frame = new rtc.VideoFrame(new Uint8Array(data), WIDTH, HEIGHT, rtc.VideoBufferType.RGBA)
      source.captureFrame(frame, timestampUs === undefined ? undefined : BigInt(timestampUs))
    }
    let idle: NodeJS.Timeout | undefined = setInterval(() => capture(GREY), 66)
    try {
      const track = rtc.LocalVideoTrack.createVideoTrack('rtc-node-camera', source)
      await peer.localParticipant!.publishTrack(
        track,
        new rtc.TrackPublishOptions({
          source: rtc.TrackSource.SOURCE_CAMERA,
          simulcast: false,
          videoCodec: RTC_NODE_CODEC[codec],
        }),
      )
      const [remote, publication, participant] = await subscribed
      t.is(participant.identity, 'rtc-node-sender')
      t.is(publication.name, 'rtc-node-camera')
      t.is(publication.source, TrackSource.Camera)
      t.is(remote.sid, publication.sid)
      t.is(publication.mimeType, MIME[codec])
      const reader = readStreamColours(VideoStream.fromTrack({ track: remote, format: VideoBufferType.RGBA }))
      clearInterval(idle)
      idle = undefined
      await playSequence((frame, timestampUs) => {
        const copy = new rtc.VideoFrame(new Uint8Array(frame.data), WIDTH, HEIGHT, rtc.VideoBufferType.RGBA)
        source.captureFrame(copy, BigInt(timestampUs))
      })
      await reader.stop()
      const runs = stableRuns(reader.names)
      t.log(`${reader.names.length} frames received; stable runs: ${runs.join(' ')}`)
      if (codec === 'av1') {
        // rtc-node's AV1 encoder (libaom in libwebrtc) scales its picture down for CPU on a
        // 2-core machine: every picture keeps the source's 4:3 shape, none is larger.
        const sizes = [...reader.sizes].map((s) => s.split('x').map(Number))
        t.true(
          sizes.every(([w, h]) => w <= WIDTH && h <= HEIGHT && Math.abs(w * 3 - h * 4) <= 8),
          [...reader.sizes].join(' '),
        )
      } else {
        t.true(reader.sizes.has(`${WIDTH}x${HEIGHT}`), [...reader.sizes].join(' '))
      }
      t.true(inOrder(runs, SEQUENCE), `expected ${SEQUENCE.join(' ')} in order, saw ${runs.join(' ')}`)
    } finally {
      if (idle) clearInterval(idle)
      await viewer.disconnect()
      await peer.disconnect()
      await source.close()
    }
  })
}

// rtc-node publishes VP9 and AV1 with simulcast as one SVC stream of three spatial layers
// (L3T3_KEY): lkrtc decodes the layers the server forwards, and keeps going when the picture's
// size changes: when the server switches layers (a lower quality asked for) and when the source
// itself changes size.
for (const codec of ['vp9', 'av1'] as const) {
  test.serial(`lkrtc receives every colour of an rtc-node ${codec} SVC stream, through a change of size`, async (t) => {
    const name = roomName(`node-lk-${codec}-svc`)
    const viewer = await join(name, 'lkrtc-viewer')
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    const peer = await joinRtcNode(name, 'rtc-node-sender')
    const [big, small] = [
      [1280, 720],
      [640, 360],
    ] as const
    const source = new rtc.VideoSource(big[0], big[1])
    const toRtcNode = (frame: VideoFrame) =>
      new rtc.VideoFrame(new Uint8Array(frame.data), frame.width, frame.height, rtc.VideoBufferType.RGBA)
    const grey = toRtcNode(solidRgba(big[0], big[1], GREY))
    let idle: NodeJS.Timeout | undefined = setInterval(() => source.captureFrame(grey), 66)
    try {
      const track = rtc.LocalVideoTrack.createVideoTrack('rtc-node-svc', source)
      await peer.localParticipant!.publishTrack(
        track,
        new rtc.TrackPublishOptions({
          source: rtc.TrackSource.SOURCE_CAMERA,
          simulcast: true,
          videoCodec: RTC_NODE_CODEC[codec],
        }),
      )
      const [remote, publication] = await subscribed
      t.is(publication.mimeType, MIME[codec])
      t.true(publication.simulcasted, 'the server describes several layers')
      const reader = readStreamColours(VideoStream.fromTrack({ track: remote, format: VideoBufferType.RGBA }))
      clearInterval(idle)
      idle = undefined
      const capture = (frame: VideoFrame, timestampUs: number) =>
        source.captureFrame(toRtcNode(frame), BigInt(timestampUs))
      await playSequence(capture, { width: big[0], height: big[1], colours: ['red', 'green'] })
      const highSizes = new Set(reader.sizes)
      // The server switches to a lower spatial layer: a smaller picture of the same content.
      // (VP9 only: livekit-server keeps forwarding an AV1 stream's top layer.)
      if (codec === 'vp9') await publication.setVideoQuality(VideoQuality.Low)
      await playSequence(capture, { width: big[0], height: big[1], colours: ['blue'] })
      const lowSizes = [...reader.sizes].filter((s) => !highSizes.has(s))
      await publication.setVideoQuality(VideoQuality.High)
      await playSequence(capture, { width: small[0], height: small[1], colours: ['white', 'black'] })
      await reader.stop()
      const runs = stableRuns(reader.names)
      t.log(
        `${reader.names.length} frames received, sizes ${[...reader.sizes].join(' ')}; stable runs: ${runs.join(' ')}`,
      )
      t.true(reader.sizes.has(`${big[0]}x${big[1]}`), [...reader.sizes].join(' '))
      t.true(reader.sizes.has(`${small[0]}x${small[1]}`), [...reader.sizes].join(' '))
      // The low layer's picture: smaller than the source, its 16:9 shape kept.
      const low = lowSizes.map((s) => s.split('x').map(Number))
      if (codec === 'vp9') {
        t.true(
          low.length > 0 && low.every(([w, h]) => w < big[0] && Math.abs(w * 9 - h * 16) <= 16),
          `sizes after asking Low: ${lowSizes.join(' ')}`,
        )
      }
      t.true(inOrder(runs, SEQUENCE), `expected ${SEQUENCE.join(' ')} in order, saw ${runs.join(' ')}`)
    } finally {
      if (idle) clearInterval(idle)
      await viewer.disconnect()
      await peer.disconnect()
      await source.close()
    }
  })
}

test.serial(
  'lkrtc sees another lkrtc join, publish, unpublish and leave, with the publication described',
  async (t) => {
    const name = roomName('events')
    const viewer = await join(name, 'lkrtc-watcher')
    const events: string[] = []
    for (const event of [
      'participantConnected',
      'trackPublished',
      'trackSubscribed',
      'trackUnsubscribed',
      'trackUnpublished',
      'participantDisconnected',
    ] as const) {
      viewer.on(event, () => events.push(event))
    }
    const connected = once<[RemoteParticipant]>(viewer, 'participantConnected')
    const published = once<[RemoteTrackPublication, RemoteParticipant]>(viewer, 'trackPublished')
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    const pub = await publisher(name, 'lkrtc-actor', { name: 'front-camera' })
    try {
      const [participant] = await connected
      t.is(participant.identity, 'lkrtc-actor')
      t.is(participant.sid, pub.lk.localParticipant.sid)
      t.is(viewer.remoteParticipants.get('lkrtc-actor'), participant)
      const [publication, owner] = await published
      t.is(owner, participant)
      t.is(publication.sid, pub.publication.sid)
      t.is(publication.name, 'front-camera')
      t.is(publication.kind, TrackKind.Video)
      t.is(publication.source, TrackSource.Camera)
      t.is(publication.width, WIDTH)
      t.is(publication.height, HEIGHT)
      t.is(participant.trackPublications.get(publication.sid), publication)
      const [track, subscribedPublication] = await subscribed
      t.is(subscribedPublication, publication)
      t.is(publication.track, track)
      t.is(track.sid, publication.sid)
      t.is(track.participantIdentity, 'lkrtc-actor')

      const unpublished = once<[RemoteTrackPublication, RemoteParticipant]>(viewer, 'trackUnpublished')
      await pub.lk.localParticipant.unpublishTrack(pub.publication.sid)
      const [gone] = await unpublished
      t.is(gone, publication)
      t.false(participant.trackPublications.has(publication.sid))
      t.is(publication.track, undefined)

      const left = once<[RemoteParticipant]>(viewer, 'participantDisconnected')
      pub.stopRepeating()
      await pub.lk.disconnect()
      const [leaver] = await left
      t.is(leaver, participant)
      t.false(viewer.remoteParticipants.has('lkrtc-actor'))
      t.deepEqual(events, [
        'participantConnected',
        'trackPublished',
        'trackSubscribed',
        'trackUnsubscribed',
        'trackUnpublished',
        'participantDisconnected',
      ])
    } finally {
      pub.stopRepeating()
      await pub.lk.disconnect()
      await viewer.disconnect()
    }
  },
)

test.serial(
  'a capacity 1 VideoStream read slowly drops the older frames and yields recent ones; capacity 0 keeps all',
  async (t) => {
    const name = roomName('slow')
    const viewer = await join(name, 'lkrtc-slow-reader')
    const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
    const pub = await publisher(name, 'lkrtc-fast-sender')
    try {
      const [track] = await subscribed
      /** Reads 7 frames, pausing 400 ms after each: their timestamps. */
      const readSlowly = async (stream: VideoStream) => {
        const stamps: number[] = []
        for await (const { frame, timestampUs } of stream) {
          t.is(frame.type, VideoBufferType.I420)
          stamps.push(timestampUs)
          if (stamps.length === 7) break
          await sleep(400)
        }
        return stamps
      }
      const newest = new VideoStream(track, { capacity: 1 })
      const all = new VideoStream(track, { capacity: 0 })
      const [fresh, backlog] = await Promise.all([readSlowly(newest), readSlowly(all)])
      t.true(newest.isClosed && all.isClosed, 'break closes the streams')
      const meanGapMs = (stamps: number[]) => (stamps[stamps.length - 1] - stamps[1]) / (stamps.length - 2) / 1000
      t.log(
        `capacity 1: dropped ${newest.droppedFrames}, mean gap ${meanGapMs(fresh).toFixed(0)} ms; capacity 0: dropped ${all.droppedFrames}, mean gap ${meanGapMs(backlog).toFixed(0)} ms`,
      )
      t.true(newest.droppedFrames >= 3, `capacity 1 dropped ${newest.droppedFrames}`)
      t.is(all.droppedFrames, 0)
      // After each pause the capacity 1 stream yields a frame captured during it; the capacity 0
      // stream yields the next of its backlog, one frame interval later.
      t.true(meanGapMs(fresh) > 250, `capacity 1 mean gap ${meanGapMs(fresh)} ms`)
      t.true(meanGapMs(fresh) > 2 * meanGapMs(backlog), `gaps ${meanGapMs(fresh)} vs ${meanGapMs(backlog)} ms`)
    } finally {
      pub.stopRepeating()
      await pub.lk.disconnect()
      await viewer.disconnect()
    }
  },
)

test.serial(
  'VideoStream.fromParticipant made before the participant publishes yields the track it publishes later',
  async (t) => {
    const name = roomName('follow')
    const viewer = await join(name, 'lkrtc-follower')
    const connected = once<[RemoteParticipant]>(viewer, 'participantConnected')
    const sender = await join(name, 'lkrtc-followed')
    const [participant] = await connected
    t.is(participant.trackPublications.size, 0)
    const stream = VideoStream.fromParticipant({
      participant,
      trackSource: TrackSource.Camera,
      format: VideoBufferType.RGBA,
    })
    const reader = readStreamColours(stream)
    const source = new VideoSource(WIDTH, HEIGHT)
    const timer = setInterval(() => source.captureFrame(solidRgba(WIDTH, HEIGHT, COLOURS.red)), 66)
    try {
      await sleep(500)
      t.is(reader.names.length, 0)
      t.false(stream.isClosed, 'the stream waits for a track')
      // A screen share is not what the stream follows.
      const screen = new VideoSource(320, 240)
      await sender.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('screen', screen), {
        source: TrackSource.ScreenShare,
      })
      await sender.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('camera', source), {
        source: TrackSource.Camera,
        degradationPreference: 'maintain-resolution',
        simulcast: false,
      })
      const deadline = Date.now() + 10_000
      while (reader.names.length < 10 && Date.now() < deadline) await sleep(50)
      await reader.stop()
      t.deepEqual([...reader.sizes], [`${WIDTH}x${HEIGHT}`])
      t.deepEqual(stableRuns(reader.names), ['red'])
      t.true(stream.isClosed)
    } finally {
      clearInterval(timer)
      stream.close()
      await sender.disconnect()
      await viewer.disconnect()
    }
  },
)

test.serial('VideoStream.fromParticipant ends when its participant leaves', async (t) => {
  const name = roomName('follow-leave')
  const viewer = await join(name, 'lkrtc-follower')
  const connected = once<[RemoteParticipant]>(viewer, 'participantConnected')
  const sender = await join(name, 'lkrtc-leaver')
  const [participant] = await connected
  const stream = VideoStream.fromParticipant({ participant })
  const pending = stream.next()
  t.is(stream.endReason, undefined)
  await sender.disconnect()
  t.deepEqual(await pending, { done: true, value: undefined })
  t.true(stream.isClosed)
  t.is(stream.endReason, 'participantLeft')
  await viewer.disconnect()
})

test.serial('VideoStream.fromParticipant on a participant that has already left ends at once', async (t) => {
  const name = roomName('follow-gone')
  const viewer = await join(name, 'lkrtc-late-follower')
  const connected = once<[RemoteParticipant]>(viewer, 'participantConnected')
  const sender = await join(name, 'lkrtc-gone')
  const [participant] = await connected
  const left = once<[RemoteParticipant]>(viewer, 'participantDisconnected')
  await sender.disconnect()
  await left
  const stream = VideoStream.fromParticipant({ participant })
  const started = Date.now()
  t.deepEqual(await stream.next(), { done: true, value: undefined })
  // Not after the 30 s a stream waits for a participant to come back after a rejoin.
  t.true(Date.now() - started < 10_000)
  t.is(stream.endReason, 'participantLeft')
  await viewer.disconnect()
})

test.serial('a VideoStream on a track ends with endReason participantLeft when its publisher leaves', async (t) => {
  const name = roomName('track-leave')
  const viewer = await join(name, 'lkrtc-track-viewer')
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
  const pub = await publisher(name, 'lkrtc-track-leaver')
  try {
    const [track] = await subscribed
    const stream = new VideoStream(track)
    const reader = drain(stream)
    await sleep(1000)
    pub.stopRepeating()
    await pub.lk.disconnect()
    await reader.ended
    t.true(reader.frames > 0)
    t.is(stream.endReason, 'participantLeft')
  } finally {
    pub.stopRepeating()
    await pub.lk.disconnect()
    await viewer.disconnect()
  }
})

test.serial('close() ends a for-await loop that is waiting for the next frame', async (t) => {
  const name = roomName('close')
  const viewer = await join(name, 'lkrtc-closer')
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
  const pub = await publisher(name, 'lkrtc-pauser')
  try {
    const [track] = await subscribed
    const stream = new VideoStream(track)
    let frames = 0
    let closedAt = 0
    for await (const _ of stream) {
      frames++
      if (frames === 1) {
        pub.stopRepeating() // no more frames: the loop now waits in next()
        setTimeout(() => {
          closedAt = performance.now()
          stream.close()
        }, 500)
      }
    }
    const late = performance.now() - closedAt
    t.true(frames >= 1)
    t.true(closedAt > 0 && late < 200, `the loop ended ${late} ms after close()`)
    t.true(stream.isClosed)
    t.is(stream.endReason, 'closed')
    t.deepEqual(await stream.next(), { done: true, value: undefined })

    // Symbol.asyncDispose (`await using`) closes a stream the same way.
    const disposable = new VideoStream(track)
    const pending = disposable.next()
    await disposable[Symbol.asyncDispose]()
    t.deepEqual(await pending, { done: true, value: undefined })
    t.true(disposable.isClosed)
    t.is(disposable.endReason, 'closed')
  } finally {
    pub.stopRepeating()
    await pub.lk.disconnect()
    await viewer.disconnect()
  }
})

test.serial('disconnecting the room ends its VideoStreams', async (t) => {
  const name = roomName('end-on-disconnect')
  const viewer = await join(name, 'lkrtc-leaving-viewer')
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
  const pub = await publisher(name, 'lkrtc-staying-sender')
  try {
    const [track] = await subscribed
    const a = new VideoStream(track)
    const b = new VideoStream(track, { format: VideoBufferType.RGBA, capacity: 2 })
    const count = async (stream: VideoStream) => {
      let n = 0
      for await (const _ of stream) n++
      return n
    }
    const counts = Promise.all([count(a), count(b)])
    await sleep(1000)
    await viewer.disconnect()
    const [na, nb] = await counts
    t.true(na > 0 && nb > 0, `frames before the end: ${na}, ${nb}`)
    t.true(track.ended)
    t.is(a.endReason, 'disconnected')
    t.is(b.endReason, 'disconnected')
    // A stream made on a track that has ended ends at once.
    const late = new VideoStream(track)
    t.deepEqual(await late.next(), { done: true, value: undefined })
    t.is(late.endReason, 'disconnected')
  } finally {
    pub.stopRepeating()
    await pub.lk.disconnect()
    await viewer.disconnect()
  }
})

test.serial("the publisher unpublishing ends the subscriber's VideoStream", async (t) => {
  const name = roomName('end-on-unpublish')
  const viewer = await join(name, 'lkrtc-viewer')
  const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
  const pub = await publisher(name, 'lkrtc-unpublisher')
  try {
    const [track] = await subscribed
    const stream = new VideoStream(track)
    const reader = drain(stream)
    await sleep(1000)
    const unsubscribed = once<Subscribed>(viewer, 'trackUnsubscribed')
    await pub.lk.localParticipant.unpublishTrack(pub.publication.sid)
    const [gone] = await unsubscribed
    t.is(gone, track)
    await reader.ended
    t.true(reader.frames > 0)
    t.true(stream.isClosed)
    t.is(stream.endReason, 'unpublished')
  } finally {
    pub.stopRepeating()
    await pub.lk.disconnect()
    await viewer.disconnect()
  }
})

test.serial(
  'with autoSubscribe off, publication.setSubscribed(true) subscribes and setSubscribed(false) ends the stream',
  async (t) => {
    const name = roomName('manual-subscribe')
    const server = await testServer()
    const viewer = new Room()
    const subscriptions: string[] = []
    viewer.on('trackSubscribed', () => subscriptions.push('subscribed'))
    viewer.on('trackUnsubscribed', () => subscriptions.push('unsubscribed'))
    await viewer.connect(server.url, await token('lkrtc-picky-viewer', name), { autoSubscribe: false })
    const published = once<[RemoteTrackPublication, RemoteParticipant]>(viewer, 'trackPublished')
    const pub = await publisher(name, 'lkrtc-sender')
    try {
      const [publication] = await published
      await sleep(1000)
      t.deepEqual(subscriptions, [], 'nothing is subscribed without asking')
      t.is(publication.track, undefined)
      t.false(publication.subscribed)

      const subscribed = once<Subscribed>(viewer, 'trackSubscribed')
      await publication.setSubscribed(true)
      const [track] = await subscribed
      t.is(publication.track, track)
      const stream = new VideoStream(track)
      const reader = drain(stream)
      const deadline = Date.now() + 10_000
      while (reader.frames < 5 && Date.now() < deadline) await sleep(50)
      t.true(reader.frames >= 5, `${reader.frames} frames`)

      const unsubscribed = once<Subscribed>(viewer, 'trackUnsubscribed')
      await publication.setSubscribed(false)
      await unsubscribed
      await reader.ended
      t.true(stream.isClosed)
      t.is(stream.endReason, 'unsubscribed')
      t.true(track.ended)
      t.is(publication.track, undefined)
      t.true(viewer.remoteParticipants.get('lkrtc-sender')!.trackPublications.has(publication.sid), 'still published')
      t.deepEqual(subscriptions, ['subscribed', 'unsubscribed'])
    } finally {
      pub.stopRepeating()
      await pub.lk.disconnect()
      await viewer.disconnect()
    }
  },
)
