/**
 * A VideoStream on a local track: the frames as captured, for previews and recorders.
 */
import test from 'ava'

import {
  LocalVideoTrack,
  Room,
  TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoRotation,
  VideoSource,
  VideoStream,
} from '../lib/index.js'
import { classify, meanRgb, solidRgba } from './helpers/colors.js'
import { roomName, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await stopTestServer()
})

/** An RGBA picture whose bytes all differ from one frame to the next. */
function noise(width: number, height: number, seed: number): VideoFrame {
  const data = new Uint8Array(width * height * 4)
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 7) & 0xff
  return new VideoFrame(width, height, VideoBufferType.RGBA, data)
}

function track(width: number, height: number): { source: VideoSource; track: LocalVideoTrack } {
  const source = new VideoSource(width, height)
  return { source, track: LocalVideoTrack.createVideoTrack('preview', source) }
}

test('a stream on a local track yields each frame as captured, bytes, timestamp and rotation', async (t) => {
  const { source, track: local } = track(64, 36)
  const stream = new VideoStream(local, { format: VideoBufferType.RGBA })
  const frames = [noise(64, 36, 1), noise(64, 36, 2), noise(64, 36, 3)]
  for (const [i, frame] of frames.entries()) {
    source.captureFrame(frame, { timestampUs: 1_000 + i, rotation: VideoRotation.Rotation180 })
  }
  for (const [i, frame] of frames.entries()) {
    const { value, done } = await stream.next()
    t.false(done)
    t.is(value?.frame.width, 64)
    t.is(value?.frame.height, 36)
    t.deepEqual(value?.frame.data, frame.data)
    t.is(value?.timestampUs, 1_000 + i)
    t.is(value?.rotation, VideoRotation.Rotation180)
  }
  stream.close()
})

test('a local stream in I420 gets the captured picture converted', async (t) => {
  const { source, track: local } = track(320, 180)
  const stream = new VideoStream(local)
  source.captureFrame(solidRgba(320, 180, [0, 0, 255]))
  const { value } = await stream.next()
  t.is(value?.frame.type, VideoBufferType.I420)
  const rgba = value?.frame.convert(VideoBufferType.RGBA)
  t.is(classify(meanRgb(rgba?.data ?? new Uint8Array(), 320, 180)), 'blue')
  stream.close()
})

test('a local stream with a capacity keeps the newest frames and counts the dropped ones', async (t) => {
  const { source, track: local } = track(16, 16)
  const stream = new VideoStream(local, { capacity: 2, format: VideoBufferType.RGBA })
  for (let i = 1; i <= 5; i++) source.captureFrame(noise(16, 16, i), { timestampUs: i })
  t.is((await stream.next()).value?.timestampUs, 4)
  t.is((await stream.next()).value?.timestampUs, 5)
  t.is(stream.droppedFrames, 3)
  stream.close()
})

test('a local stream ends with endReason sourceClosed when its source is closed', async (t) => {
  const { source, track: local } = track(16, 16)
  const stream = new VideoStream(local)
  const pending = stream.next()
  source.close()
  t.deepEqual(await pending, { done: true, value: undefined })
  t.is(stream.endReason, 'sourceClosed')
  t.true(stream.isClosed)
})

test('a local stream sees only frames captured after it was made, and none after close()', async (t) => {
  const { source, track: local } = track(16, 16)
  source.captureFrame(noise(16, 16, 1), { timestampUs: 1 })
  const stream = new VideoStream(local, { format: VideoBufferType.RGBA })
  source.captureFrame(noise(16, 16, 2), { timestampUs: 2 })
  t.is((await stream.next()).value?.timestampUs, 2)
  stream.close()
  source.captureFrame(noise(16, 16, 3), { timestampUs: 3 })
  t.deepEqual(await stream.next(), { done: true, value: undefined })
  t.is(stream.endReason, 'closed')
})

test('a local stream keeps yielding while its track is published', async (t) => {
  const server = await testServer()
  const room = new Room()
  await room.connect(server.url, await token('previewer', roomName('preview')))
  const { source, track: local } = track(320, 240)
  try {
    await room.localParticipant.publishTrack(local, { source: TrackSource.Camera })
    const stream = new VideoStream(local, { format: VideoBufferType.RGBA })
    const red = solidRgba(320, 240, [255, 0, 0])
    for (let i = 0; i < 10; i++) source.captureFrame(red, { timestampUs: 10_000 + i })
    for (let i = 0; i < 10; i++) {
      const { value } = await stream.next()
      t.is(value?.timestampUs, 10_000 + i)
      t.deepEqual(value?.frame.data, red.data)
    }
    // The encoder took them too.
    const sid = local.sid ?? ''
    for (let i = 0; i < 50 && (room.localParticipant.publishStats(sid)?.framesEncoded ?? 0) === 0; i++) {
      await new Promise((r) => setTimeout(r, 20))
    }
    t.true((room.localParticipant.publishStats(sid)?.framesEncoded ?? 0) > 0)
    stream.close()
  } finally {
    await room.disconnect()
  }
})
