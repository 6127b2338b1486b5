/**
 * Pre-encoded video published as it comes (`EncodedVideoSource`): a relay takes another
 * participant's encoded frames (`EncodedVideoStream`) and publishes them again without decoding,
 * forwarding its subscribers' keyframe requests upstream; @livekit/rtc-node and lkrtc receive the
 * relayed pictures. Serial: real-time media.
 */
import test from 'ava'

import {
  EncodedVideoSource,
  EncodedVideoStream,
  LocalVideoTrack,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { inOrder, playSequence, readStreamColours, SEQUENCE, solidRgba, stableRuns } from './helpers/colors.js'
import { joinRtcNode, readColours, rtc } from './helpers/rtc-node.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await rtc.dispose()
  await stopTestServer()
})

const WIDTH = 480
const HEIGHT = 270

/**
 * A camera (lkrtc, raw frames in `codec`) and a relay (lkrtc) in `room`: the relay reads the
 * camera's encoded frames and publishes them from an EncodedVideoSource, asking the camera for a
 * keyframe whenever its own subscribers ask it for one.
 */
async function relayCall(room: string, codec: 'vp8' | 'h264') {
  const server = await testServer()
  const relay = new Room()
  await relay.connect(server.url, await token('relay', room))
  const subscribed = once<[RemoteVideoTrack]>(relay, 'trackSubscribed')
  const camera = new Room()
  await camera.connect(server.url, await token('camera', room))
  const source = new VideoSource(WIDTH, HEIGHT)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  await camera.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    videoCodec: codec,
    simulcast: false,
    degradationPreference: 'maintain-resolution',
  })
  const grey = solidRgba(WIDTH, HEIGHT, [128, 128, 128])
  let idle: NodeJS.Timeout | undefined = setInterval(() => source.captureFrame(grey), 66)
  const [remote] = await subscribed

  const encoded = new EncodedVideoSource(WIDTH, HEIGHT, codec)
  const stats = { accepted: 0, refused: 0, keyframeRequests: 0, rates: [] as number[] }
  const input = new EncodedVideoStream(remote)
  const pump = (async () => {
    for await (const ev of input) {
      if (encoded.captureFrame({ data: ev.data, keyframe: ev.keyframe, timestampUs: ev.timestampUs })) stats.accepted++
      else stats.refused++
      const feedback = encoded.takeFeedback()
      if (feedback.keyframeRequested) {
        stats.keyframeRequests++
        input.requestKeyframe()
      }
      if (feedback.rateControl) stats.rates.push(feedback.rateControl.targetBitrateBps)
    }
  })()
  const relayed = LocalVideoTrack.createVideoTrack('relayed', encoded)
  return {
    relay,
    source,
    encoded,
    relayed,
    stats,
    stopIdle() {
      if (idle) clearInterval(idle)
      idle = undefined
    },
    async close() {
      if (idle) clearInterval(idle)
      input.close()
      await pump
      await camera.disconnect()
      await relay.disconnect()
    },
  }
}

// VP9 relays too, but its first picture comes 1.5-2.5 s after the subscription (the keyframe asked
// of the camera through the relay takes several requests), which would miss the first colour.
for (const codec of ['h264', 'vp8'] as const) {
  test.serial(`rtc-node receives every colour of a relayed pre-encoded ${codec} track, in order`, async (t) => {
    const name = roomName(`encsrc-${codec}`)
    const c = await relayCall(name, codec)
    const peer = await joinRtcNode(name, 'rtc-node-viewer')
    try {
      // Before it is published, frames go nowhere.
      for (let i = 0; i < 50 && c.stats.refused === 0; i++) await sleep(100)
      t.is(c.stats.accepted, 0)
      t.true(c.stats.refused > 0, 'frames came from the camera')
      const subscribed = new Promise<[rtc.RemoteTrack, rtc.RemoteTrackPublication]>((resolve) => {
        peer.on(rtc.RoomEvent.TrackSubscribed, (track, publication, participant) => {
          if (participant.identity === 'relay') resolve([track, publication])
        })
      })
      const publication = await c.relay.localParticipant.publishTrack(c.relayed, { source: TrackSource.Camera })
      t.is(publication.mimeType.toLowerCase(), `video/${codec}`)
      t.false(publication.simulcasted)
      const [track, remotePublication] = await subscribed
      t.is(remotePublication.mimeType?.toLowerCase(), `video/${codec}`)
      const reader = readColours(track)
      c.stopIdle()
      await playSequence((frame, timestampUs) => c.source.captureFrame(frame, { timestampUs }), {
        width: WIDTH,
        height: HEIGHT,
        fps: 15,
        secondsEach: 1,
      })
      await reader.stop()
      const runs = stableRuns(reader.names)
      t.log(`${reader.names.length} frames received; stable runs: ${runs.join(' ')}; relay: ${JSON.stringify(c.stats)}`)
      t.deepEqual([...reader.sizes], [`${WIDTH}x${HEIGHT}`])
      t.true(inOrder(runs, SEQUENCE), `expected ${SEQUENCE.join(' ')} in order, saw ${runs.join(' ')}`)
      // The viewer's start needed a keyframe the relay could not make: it was asked for.
      t.true(c.stats.keyframeRequests > 0)
      t.true(c.stats.rates.length > 0 && c.stats.rates.every((r) => r > 0), `rate targets ${c.stats.rates}`)

      const stats = await c.relayed.getStats()
      const out = stats.find((s) => s.type === 'outbound-rtp')
      t.truthy(out)
      if (out?.type === 'outbound-rtp') {
        t.is(out.encoderImplementation, 'pre-encoded')
        t.is(out.frameWidth, WIDTH)
        t.is(out.frameHeight, HEIGHT)
        t.true(out.framesSent >= reader.names.length * 0.9, `${out.framesSent} sent, ${reader.names.length} received`)
        t.true(out.keyFramesEncoded >= 1)
        t.true(out.bytesSent > 0)
      }
    } finally {
      await peer.disconnect()
      await c.close()
    }
  })
}

test.serial('an lkrtc subscriber decodes a relayed track and sees its mute', async (t) => {
  const name = roomName('encsrc-mute')
  const c = await relayCall(name, 'vp8')
  const server = await testServer()
  const viewer = new Room()
  await viewer.connect(server.url, await token('viewer', name))
  try {
    const subscribed = new Promise<RemoteVideoTrack>((resolve) => {
      viewer.on('trackSubscribed', (track, _publication, participant) => {
        if (participant.identity === 'relay') resolve(track)
      })
    })
    await c.relay.localParticipant.publishTrack(c.relayed, { source: TrackSource.Camera })
    const track = await subscribed
    const reader = readStreamColours(new VideoStream(track, { format: VideoBufferType.RGBA }))
    c.stopIdle()
    await playSequence((frame, timestampUs) => c.source.captureFrame(frame, { timestampUs }), {
      width: WIDTH,
      height: HEIGHT,
      fps: 15,
      secondsEach: 1,
      colours: ['red', 'blue'],
    })
    const runs = stableRuns(reader.names)
    t.true(inOrder(runs, ['red', 'blue']), `saw ${runs.join(' ')}`)
    const muted = once(viewer, 'trackMuted')
    c.relayed.mute()
    await muted
    const before = reader.names.length
    await playSequence((frame, timestampUs) => c.source.captureFrame(frame, { timestampUs }), {
      width: WIDTH,
      height: HEIGHT,
      fps: 15,
      secondsEach: 1,
      leadIn: 0,
      colours: ['green'],
    })
    t.true(reader.names.length - before <= 2, `${reader.names.length - before} frames while muted`)
    t.false(reader.names.slice(before).includes('green'))
    await reader.stop()
  } finally {
    await viewer.disconnect()
    await c.close()
  }
})

test('bad encoded frames are refused with their code, and nothing is queued', (t) => {
  const h264 = new EncodedVideoSource(320, 240, 'h264')
  // AVCC: a 4-byte length before the NAL unit instead of a start code.
  t.throws(() => h264.captureFrame({ data: Buffer.from([0, 0, 0, 3, 0x65, 0x88, 0x84]) }), {
    code: 'ERR_INVALID_BITSTREAM',
    message: /Annex-B/,
  })
  const idrAlone = Buffer.from([0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21])
  t.throws(() => h264.captureFrame({ data: idrAlone }), { code: 'ERR_INVALID_BITSTREAM', message: /SPS and PPS/ })
  const delta = Buffer.from([0, 0, 0, 1, 0x41, 0x9a, 0x02])
  t.throws(() => h264.captureFrame({ data: delta, keyframe: true }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /marked a keyframe but its H.264 bitstream is a delta frame/,
  })
  t.throws(() => h264.captureFrame({ data: new Uint8Array() }), { code: 'ERR_INVALID_ARGUMENT' })
  t.throws(() => h264.captureFrame({ data: 'frame' as never }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => h264.captureFrame({ data: delta, width: 320 }), { code: 'ERR_INVALID_ARGUMENT', message: /both/ })
  // A delta frame is valid: nothing publishes the source, so it goes nowhere.
  t.false(h264.captureFrame({ data: delta }))
  t.is(h264.capturedFrames, 1)

  const vp8 = new EncodedVideoSource(320, 240, 'vp8')
  // A VP8 keyframe header stating 64x48: a size given with it must agree.
  const key = Buffer.from([0x50, 0x00, 0x00, 0x9d, 0x01, 0x2a, 64, 0, 48, 0, 0, 0])
  t.throws(() => vp8.captureFrame({ data: key, width: 320, height: 240 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /keyframe states 64x48/,
  })
  vp8.captureFrame({ data: key })
  t.is(vp8.width, 64)
  t.is(vp8.height, 48)
  vp8.close()
  t.throws(() => vp8.captureFrame({ data: key }), { code: 'ERR_CLOSED' })

  t.throws(() => new EncodedVideoSource(320, 240, 'av1' as never), { code: 'ERR_INVALID_ARGUMENT' })
  t.throws(() => new EncodedVideoSource(0, 240, 'vp8'), { code: 'ERR_INVALID_ARGUMENT' })
})

test('a pre-encoded track refuses publish options it cannot honour, and local streams', async (t) => {
  const source = new EncodedVideoSource(320, 240, 'h264')
  const track = LocalVideoTrack.createVideoTrack('file', source)
  const participant = new Room().localParticipant
  await t.throwsAsync(participant.publishTrack(track, { videoCodec: 'vp8' }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /'h264'/,
  })
  await t.throwsAsync(participant.publishTrack(track, { simulcast: true }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /one layer/,
  })
  await t.throwsAsync(participant.publishTrack(track, { degradationPreference: 'balanced' }), {
    code: 'ERR_INVALID_ARGUMENT',
  })
  // Options it can honour get as far as the connection.
  await t.throwsAsync(participant.publishTrack(track, { videoCodec: 'h264', simulcast: false }), {
    code: 'ERR_NOT_CONNECTED',
  })
  t.throws(() => new VideoStream(track), { code: 'ERR_INVALID_ARGUMENT', message: /pre-encoded/ })
})
