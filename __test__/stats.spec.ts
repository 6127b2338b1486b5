/**
 * A remote video track's receive statistics (`track.getStats()`), checked against traffic whose
 * numbers are known: what the publisher counted sending, the frame size and rate it captured,
 * and a pause of known length. Serial: real-time media against a real livekit-server.
 */
import test from 'ava'

import {
  LocalVideoTrack,
  type RemoteVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { solidRgba } from './helpers/colors.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await stopTestServer()
})

/** lkrtc publishes 640x360 VP8 in one layer and another lkrtc participant subscribes; frames go
 * out at 15 fps while `sending` is true. */
async function call(prefix: string) {
  const server = await testServer()
  const room = roomName(prefix)
  const viewer = new Room()
  await viewer.connect(server.url, await token('viewer', room))
  const subscribed = once<[RemoteVideoTrack]>(viewer, 'trackSubscribed')
  const lk = new Room()
  await lk.connect(server.url, await token('sender', room))
  const source = new VideoSource(640, 360)
  const track = LocalVideoTrack.createVideoTrack('camera', source)
  const publication = await lk.localParticipant.publishTrack(track, {
    source: TrackSource.Camera,
    videoCodec: 'vp8',
    simulcast: false,
    videoEncoding: { maxBitrate: 800_000, maxFramerate: 15 },
  })
  const frames = [solidRgba(640, 360, [200, 30, 30]), solidRgba(640, 360, [30, 200, 30])]
  let n = 0
  const state = { sending: true }
  const timer = setInterval(() => {
    if (state.sending) source.captureFrame(frames[n++ % 2])
  }, 66)
  const [remote] = await subscribed
  const stream = new VideoStream(remote, { format: VideoBufferType.RGBA, capacity: 64 })
  const yielded: number[] = []
  const reading = (async () => {
    for await (const ev of stream) yielded.push(ev.frame.width)
  })()
  return {
    remote,
    track,
    state,
    yielded,
    sent: () => lk.localParticipant.publishStats(publication.sid),
    async close() {
      clearInterval(timer)
      stream.close()
      await reading
      await lk.disconnect()
      await viewer.disconnect()
    },
  }
}

test.serial('a subscriber counts the frames, bytes, size and rate it received', async (t) => {
  const c = await call('stats')
  try {
    // Frames encoded before the subscription reached the server never arrive: count from a
    // point where both sides' figures have settled (no frame in flight, reports past).
    await sleep(2000)
    c.state.sending = false
    await sleep(1500)
    const before = { received: (await c.remote.getStats()).bytesReceived, sent: c.sent()!.bytesSent }
    c.state.sending = true
    await sleep(3000)
    c.state.sending = false
    // Past the transport's half-second reports.
    await sleep(1500)
    const s = await c.remote.getStats()
    const sent = c.sent()
    t.truthy(sent)
    t.is(s.type, 'inbound-rtp')
    t.is(s.trackIdentifier, c.remote.sid)
    t.deepEqual([s.frameWidth, s.frameHeight, s.decoderImplementation], [640, 360, 'libvpx'])
    // Every frame a stream yielded was decoded; every frame decoded was received.
    t.true(c.yielded.length > 30, `${c.yielded.length} frames yielded`)
    t.true(s.framesDecoded >= c.yielded.length, `${s.framesDecoded} decoded, ${c.yielded.length} yielded`)
    t.true(s.framesReceived >= s.framesDecoded, `${s.framesReceived} received, ${s.framesDecoded} decoded`)
    t.true(s.keyFramesDecoded >= 1)
    // Every frame decoded went through the playout buffer.
    t.is(s.jitterBufferEmittedCount, s.framesDecoded)
    t.true(s.jitterBufferDelay >= 0 && s.jitterBufferTargetDelay >= 0)
    // What the publisher's encoder handed over is what arrived, give or take RTP framing.
    const bytesSent = sent!.bytesSent - before.sent
    const bytesReceived = s.bytesReceived - before.received
    t.true(
      bytesReceived >= bytesSent * 0.95 && bytesReceived <= bytesSent * 1.3,
      `${bytesReceived} bytes received, ${bytesSent} sent`,
    )
    t.true(s.packetsReceived >= s.bytesReceived / 1300, `${s.packetsReceived} packets for ${s.bytesReceived} bytes`)
    t.is(s.packetsLost, 0)
    // Nothing was decoded in the last 1.5 s: no frame rate now.
    t.is(s.framesPerSecond, 0)
  } finally {
    await c.close()
  }
})

test.serial('the frame rate is what the publisher sends', async (t) => {
  const c = await call('stats-fps')
  try {
    await sleep(3000)
    const s = await c.remote.getStats()
    // 15 fps captured; a loaded machine may lose a few.
    t.true(s.framesPerSecond >= 10 && s.framesPerSecond <= 17, `${s.framesPerSecond} fps`)
    t.is(s.freezeCount, 0)
  } finally {
    await c.close()
  }
})

test.serial('a pause in the publisher counts as one freeze of its length', async (t) => {
  const c = await call('stats-freeze')
  try {
    await sleep(2500)
    const before = await c.remote.getStats()
    c.state.sending = false
    await sleep(1000)
    c.state.sending = true
    await sleep(1500)
    const s = await c.remote.getStats()
    t.is(s.freezeCount - before.freezeCount, 1)
    const frozen = s.totalFreezesDuration - before.totalFreezesDuration
    t.true(frozen >= 0.9 && frozen <= 1.6, `${frozen.toFixed(3)} s frozen`)
  } finally {
    await c.close()
  }
})

test.serial("a publisher's stats count what its encoder and transport sent", async (t) => {
  const c = await call('stats-out')
  try {
    // Frames skipped by 2.0 s and by 2.4 s: the reason looks back two seconds from 4.2 s.
    await sleep(2000)
    const skippedBy2s = c.sent()!.framesSkipped
    await sleep(400)
    const skippedBy2_4s = c.sent()!.framesSkipped
    await sleep(600)
    // The transport counts every half second, behind the encoder (and the pacer): what the
    // encoder had made a second before the wire's count must be on the wire by then.
    const earlier = c.sent()!.bytesSent
    await sleep(1200)
    const report = await c.track.getStats()
    const layers = report.filter((s) => s.type === 'outbound-rtp')
    const pair = report.find((s) => s.type === 'candidate-pair')
    t.is(layers.length, 1)
    const [l] = layers
    const sent = c.sent()!
    t.deepEqual([l.frameWidth, l.frameHeight, l.encoderImplementation, l.active], [640, 360, 'libvpx', true])
    t.is(l.framesEncoded, sent.layers[0].framesEncoded)
    t.true(l.keyFramesEncoded >= 1)
    t.true(l.framesPerSecond >= 10 && l.framesPerSecond <= 17, `${l.framesPerSecond} fps`)
    t.true(
      l.bytesSent >= earlier * 0.95 && l.bytesSent <= sent.bytesSent * 1.3,
      `${l.bytesSent} bytes on the wire, ${earlier} encoded 1.2 s before, ${sent.bytesSent} now`,
    )
    t.true(l.packetsSent >= l.bytesSent / 1300, `${l.packetsSent} packets for ${l.bytesSent} bytes`)
    // `bandwidth` only while the estimate held the picture back: frames skipped in the last two
    // seconds, or a smaller picture (a loaded machine's delay can lower the estimate).
    const why = `${sent.framesSkipped - skippedBy2s} frames skipped since 2 s, ${l.frameWidth}x${l.frameHeight} sent`
    if (l.qualityLimitationReason === 'none') {
      t.true(sent.framesSkipped === skippedBy2_4s && l.frameWidth === 640, why)
    } else {
      t.is(l.qualityLimitationReason, 'bandwidth')
      t.true(sent.framesSkipped > skippedBy2s || l.frameWidth < 640, why)
    }
    t.truthy(pair)
    if (pair?.type === 'candidate-pair') {
      t.true(pair.availableOutgoingBitrate > 100_000, `${pair.availableOutgoingBitrate} bit/s`)
      t.true(
        pair.currentRoundTripTime !== undefined && pair.currentRoundTripTime < 0.5,
        `${pair.currentRoundTripTime} s`,
      )
    }
  } finally {
    await c.close()
  }
})

test('a track that is not published has no stats', async (t) => {
  const track = LocalVideoTrack.createVideoTrack('idle', new VideoSource(64, 64))
  t.deepEqual(await track.getStats(), [])
})
