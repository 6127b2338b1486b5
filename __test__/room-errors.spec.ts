/**
 * Failures have a stable `code` and arrive promptly: connecting, capturing, bad arguments.
 */
import { createServer, type Server } from 'node:net'

import test from 'ava'

import {
  createToken,
  LocalVideoTrack,
  Room,
  VideoBufferType,
  type VideoFrame,
  VideoSource,
  VideoStream,
  type LkrtcError,
} from '../lib/index.js'
import { solidRgba } from './helpers/colors.js'
import { freePort, roomName, stopTestServer, testServer, token } from './helpers/server.js'

test.after.always(async () => {
  await stopTestServer()
})

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
}

/** Runs `connect`, expecting a rejection; returns the error and how long it took. */
async function failedConnect(url: string, tok: string, options = {}): Promise<{ error: LkrtcError; ms: number }> {
  const room = new Room()
  const start = performance.now()
  try {
    await room.connect(url, tok, options)
  } catch (error) {
    return { error: error as LkrtcError, ms: performance.now() - start }
  } finally {
    await room.disconnect()
  }
  throw new Error('connect resolved')
}

test('connect with a token signed by the wrong secret rejects with ERR_UNAUTHORIZED within 3 s', async (t) => {
  const server = await testServer()
  const bad = createToken({
    apiKey: server.apiKey,
    apiSecret: 'not-the-secret',
    identity: 'mallory',
    room: roomName('bad-token'),
  })
  const { error, ms } = await failedConnect(server.url, bad)
  t.is(error.code, 'ERR_UNAUTHORIZED', error.message)
  t.true(error instanceof Error)
  t.true(ms < 3000, `took ${ms} ms`)
  t.false(error.message.includes(bad), 'the message must not carry the token')
})

test('connect with a token for an unknown API key rejects with ERR_UNAUTHORIZED', async (t) => {
  const server = await testServer()
  const bad = createToken({
    apiKey: 'nobody',
    apiSecret: server.apiSecret,
    identity: 'mallory',
    room: roomName('bad-key'),
  })
  const { error } = await failedConnect(server.url, bad)
  t.is(error.code, 'ERR_UNAUTHORIZED', error.message)
})

test('connect to a port nobody listens on rejects with ERR_CONNECTION_REFUSED within 3 s', async (t) => {
  const port = await freePort()
  const { error, ms } = await failedConnect(`ws://127.0.0.1:${port}`, await token('alice', 'nowhere'))
  t.is(error.code, 'ERR_CONNECTION_REFUSED', error.message)
  t.true(error.message.includes(`127.0.0.1:${port}`), error.message)
  t.true(ms < 3000, `took ${ms} ms`)
})

test('connect to a server that never answers rejects with ERR_CONNECT_TIMEOUT after connectTimeoutMs', async (t) => {
  const sockets: import('node:net').Socket[] = []
  const silent = createServer((socket) => sockets.push(socket))
  const port = await listen(silent)
  try {
    const { error, ms } = await failedConnect(`ws://127.0.0.1:${port}`, await token('alice', 'silent'), {
      connectTimeoutMs: 700,
    })
    t.is(error.code, 'ERR_CONNECT_TIMEOUT', error.message)
    t.true(ms >= 600 && ms < 3000, `took ${ms} ms`)
  } finally {
    for (const s of sockets) s.destroy()
    await new Promise((r) => silent.close(r))
  }
})

test('connect with a malformed URL rejects with ERR_INVALID_URL', async (t) => {
  const { error } = await failedConnect('ftp://127.0.0.1:7880', 'x')
  t.is(error.code, 'ERR_INVALID_URL', error.message)
})

test('captureFrame with a frame of another size takes it and changes the source size', (t) => {
  const source = new VideoSource(640, 480)
  source.captureFrame(solidRgba(320, 240, [1, 2, 3]))
  t.is(source.capturedFrames, 1)
  t.deepEqual([source.width, source.height], [320, 240])
})

test('captureFrame after close throws ERR_CLOSED', (t) => {
  const source = new VideoSource(64, 48)
  source.captureFrame(solidRgba(64, 48, [1, 2, 3]))
  t.is(source.capturedFrames, 1)
  source.close()
  t.true(source.isClosed)
  const error = t.throws(() => source.captureFrame(solidRgba(64, 48, [1, 2, 3])))
  t.is((error as LkrtcError).code, 'ERR_CLOSED')
})

test('captureFrame accepts every buffer type and checks its options', (t) => {
  const source = new VideoSource(32, 16)
  const rgba = solidRgba(32, 16, [200, 100, 50])
  for (const type of [VideoBufferType.I420, VideoBufferType.NV12, VideoBufferType.BGRA, VideoBufferType.RGB24]) {
    source.captureFrame(rgba.convert(type), { timestampUs: 1000 })
  }
  t.is(source.capturedFrames, 4)
  t.is((t.throws(() => source.captureFrame({} as VideoFrame)) as LkrtcError).code, 'ERR_INVALID_ARG_TYPE')
  t.is((t.throws(() => source.captureFrame(rgba, { timestampUs: -1 })) as LkrtcError).code, 'ERR_INVALID_ARGUMENT')
  const rotation = t.throws(() => source.captureFrame(rgba, { rotation: 7 as never })) as LkrtcError
  t.is(rotation.code, 'ERR_INVALID_ARGUMENT')
  t.regex(rotation.message, /Rotation90 \(1\)/)
})

test('bad arguments throw errors with a stable code and the expected value in the message', async (t) => {
  const dims = t.throws(() => new VideoSource(0, 480)) as LkrtcError
  t.is(dims.code, 'ERR_INVALID_ARGUMENT')
  t.regex(dims.message, /invalid width: expected an integer from 1 to 16384, got number 0/)
  t.is((t.throws(() => new VideoSource('640' as never, 480)) as LkrtcError).code, 'ERR_INVALID_ARG_TYPE')
  t.is(
    (t.throws(() => LocalVideoTrack.createVideoTrack('cam', {} as VideoSource)) as LkrtcError).code,
    'ERR_INVALID_ARG_TYPE',
  )

  const missing = t.throws(() => createToken({ apiKey: 'k', apiSecret: 's', room: 'r' } as never)) as LkrtcError
  t.is(missing.code, 'ERR_INVALID_ARG_TYPE')
  t.regex(missing.message, /invalid identity: expected a string, got undefined/)
  t.is(
    (
      t.throws(() =>
        createToken({ apiKey: 'k', apiSecret: 's', identity: 'i', room: 'r', ttl: '5 weeks' }),
      ) as LkrtcError
    ).code,
    'ERR_INVALID_ARGUMENT',
  )

  const room = new Room()
  const source = new VideoSource(64, 48)
  const track = LocalVideoTrack.createVideoTrack('cam', source)
  const notConnected = (await t.throwsAsync(room.localParticipant.publishTrack(track))) as LkrtcError
  t.is(notConnected.code, 'ERR_NOT_CONNECTED')
  const codec = (await t.throwsAsync(
    room.localParticipant.publishTrack(track, { videoCodec: 'h265' as never }),
  )) as LkrtcError
  t.is(codec.code, 'ERR_INVALID_ARGUMENT')
  t.regex(codec.message, /expected 'vp8', 'h264', 'vp9' or 'av1'/)
  const bitrate = (await t.throwsAsync(
    room.localParticipant.publishTrack(track, { videoEncoding: { maxBitrate: -5 } }),
  )) as LkrtcError
  t.is(bitrate.code, 'ERR_INVALID_ARGUMENT')
  t.is(((await t.throwsAsync(room.connect(42 as never, 'x'))) as LkrtcError).code, 'ERR_INVALID_ARG_TYPE')
  t.is(
    ((await t.throwsAsync(room.connect('ws://127.0.0.1:1', 'x', { connectTimeoutMs: 0 }))) as LkrtcError).code,
    'ERR_INVALID_ARGUMENT',
  )
  t.is((t.throws(() => new VideoStream({} as never)) as LkrtcError).code, 'ERR_INVALID_ARG_TYPE')
})

test('a second connect on the same Room rejects with ERR_ALREADY_CONNECTED', async (t) => {
  const server = await testServer()
  const name = roomName('twice')
  const room = new Room()
  await room.connect(server.url, await token('twice', name))
  try {
    const error = (await t.throwsAsync(room.connect(server.url, await token('twice', name)))) as LkrtcError
    t.is(error.code, 'ERR_ALREADY_CONNECTED')
    t.true(room.isConnected)
  } finally {
    await room.disconnect()
  }
})
