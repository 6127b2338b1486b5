/**
 * Bad input to every public entry point: wrong types, NaN, infinities, negative, fractional and
 * huge numbers, detached and shared buffers, unknown enum values, closed objects and rooms.
 * Each is an `Error` with a stable `code` and a message saying what was expected, never a crash,
 * a hang or a silently truncated value. One case per test.
 */
import test, { type ExecutionContext } from 'ava'

import {
  ConnectionState,
  createToken,
  LocalVideoTrack,
  RemoteParticipant,
  type RemoteTrackPublication,
  RemoteVideoTrack,
  Room,
  type TrackSource,
  VideoBufferType,
  VideoFrame,
  VideoSource,
  VideoStream,
  type LkrtcError,
} from '../lib/index.js'
import { solidRgba } from './helpers/colors.js'
import { once, roomName, sleep, stopTestServer, testServer, token } from './helpers/server.js'

const T = VideoBufferType

/** A failure case: `run` must throw (or reject with) an Error with `code` and `message` in it. */
interface Case {
  name: string
  run: () => unknown
  code: string
  message: string
}

const NO_ERROR = Symbol('no error')

/** What `run` threw or rejected with, or NO_ERROR. */
async function failure(run: () => unknown): Promise<unknown> {
  let result: unknown
  try {
    result = run()
  } catch (error) {
    return error
  }
  try {
    await result
  } catch (error) {
    return error
  }
  return NO_ERROR
}

async function assertFails(t: ExecutionContext, run: () => unknown, code: string, message: string): Promise<void> {
  const error = await failure(run)
  if (error === NO_ERROR) {
    t.fail(`expected ${code}, but it succeeded`)
    return
  }
  t.true(error instanceof Error, `expected an Error, got ${String(error)}`)
  const e = error as LkrtcError
  t.is(e.code, code, e.message)
  t.true(e.message.includes(message), `${JSON.stringify(e.message)} should contain ${JSON.stringify(message)}`)
}

function cases(list: Case[]): void {
  for (const c of list) {
    test(`${c.name} with ${c.code}`, async (t) => {
      await assertFails(t, c.run, c.code, c.message)
    })
  }
}

/** Non-finite, negative, fractional and huge numbers, by label. */
const BAD_NUMBERS: [string, number][] = [
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['-Infinity', -Infinity],
  ['-1', -1],
  ['1.5', 1.5],
  ['2**31', 2 ** 31],
  ['2**53', 2 ** 53],
  ['Number.MAX_VALUE', Number.MAX_VALUE],
]

/** Values of the wrong JavaScript type for a number, by label. */
const NOT_NUMBERS: [string, unknown][] = [
  ['a string', '64'],
  ['null', null],
  ['a bigint', 64n],
  ['an object', {}],
]

const rgba2x2 = () => new VideoFrame(2, 2, T.RGBA, new Uint8Array(16))

/** A 2x2 RGBA frame whose ArrayBuffer has been transferred away. */
function detachedFrame(): VideoFrame {
  const bytes = new Uint8Array(16)
  const frame = new VideoFrame(2, 2, T.RGBA, bytes)
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] })
  return frame
}

function detachedArrayBuffer(size: number): ArrayBuffer {
  const buffer = new ArrayBuffer(size)
  structuredClone(buffer, { transfer: [buffer] })
  return buffer
}

// ---------------------------------------------------------------------------------------------
// VideoFrame

cases([
  // The existing video-frame tests cover NaN, 0, -4, 2.5, Infinity, 16385 and 2**53 widths by code.
  ...BAD_NUMBERS.filter(([label]) => ['-Infinity', '2**31', 'Number.MAX_VALUE'].includes(label)).map(
    ([label, value]) => ({
      name: `VideoFrame rejects width ${label}`,
      run: () => new VideoFrame(value, 2, T.RGBA, new Uint8Array(16)),
      code: 'ERR_INVALID_DIMENSIONS',
      message: '16384',
    }),
  ),
  ...BAD_NUMBERS.map(([label, value]) => ({
    name: `VideoFrame rejects height ${label}`,
    run: () => new VideoFrame(2, value, T.RGBA, new Uint8Array(16)),
    code: 'ERR_INVALID_DIMENSIONS',
    message: '16384',
  })),
  ...NOT_NUMBERS.map(([label, value]) => ({
    name: `VideoFrame rejects width as ${label}`,
    run: () => new VideoFrame(value as number, 2, T.RGBA, new Uint8Array(16)),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid width: expected a number',
  })),
  ...[99, -Infinity, 2 ** 31, Number.MAX_VALUE].map((value) => ({
    name: `VideoFrame rejects type ${value}`,
    run: () => new VideoFrame(2, 2, value as VideoBufferType, new Uint8Array(16)),
    code: 'ERR_INVALID_BUFFER_TYPE',
    message: 'expected a VideoBufferType (0..=10)',
  })),
  {
    name: 'VideoFrame rejects type null',
    run: () => new VideoFrame(2, 2, null as never, new Uint8Array(16)),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid type: expected a VideoBufferType',
  },
  {
    name: 'VideoFrame rejects a detached ArrayBuffer',
    run: () => new VideoFrame(2, 2, T.RGBA, detachedArrayBuffer(16)),
    code: 'ERR_INVALID_FRAME_SIZE',
    message: 'needs exactly 16 bytes, got 0',
  },
  {
    name: 'VideoFrame rejects a Uint8Array over a detached ArrayBuffer',
    run: () => {
      const bytes = new Uint8Array(16)
      structuredClone(bytes.buffer, { transfer: [bytes.buffer] })
      return new VideoFrame(2, 2, T.RGBA, bytes)
    },
    code: 'ERR_INVALID_FRAME_SIZE',
    message: 'needs exactly 16 bytes, got 0',
  },
  {
    name: 'VideoFrame rejects a SharedArrayBuffer',
    run: () => new VideoFrame(2, 2, T.RGBA, new SharedArrayBuffer(16) as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid data: expected a Uint8Array, Buffer or ArrayBuffer',
  },
  {
    name: 'VideoFrame rejects data of undefined',
    run: () => new VideoFrame(2, 2, T.RGBA, undefined as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid data: expected a Uint8Array, Buffer or ArrayBuffer, got undefined',
  },
])

test('VideoFrame over a Uint8Array on a SharedArrayBuffer reads the shared bytes', (t) => {
  const shared = new Uint8Array(new SharedArrayBuffer(16)).fill(200)
  const frame = new VideoFrame(2, 2, T.RGBA, shared)
  shared[0] = 10
  t.is(frame.data[0], 10)
  t.is(frame.convert(T.I420).data.length, 6)
})

for (const method of ['getPlane', 'getStride'] as const) {
  cases([
    ...BAD_NUMBERS.filter(([label]) => ['NaN', 'Infinity', '-Infinity', '-1', '1.5'].includes(label)).map(
      ([label, value]) => ({
        name: `VideoFrame.${method} rejects index ${label}`,
        run: () => rgba2x2()[method](value),
        code: 'ERR_INVALID_ARGUMENT',
        message: 'invalid index: expected an integer >= 0',
      }),
    ),
    ...NOT_NUMBERS.map(([label, value]) => ({
      name: `VideoFrame.${method} rejects index as ${label}`,
      run: () => rgba2x2()[method](value as number),
      code: 'ERR_INVALID_ARG_TYPE',
      message: 'invalid index: expected an integer >= 0',
    })),
  ])

  for (const [label, value] of [
    ['2**32', 2 ** 32],
    ['2**53', 2 ** 53],
  ] as const) {
    test(`VideoFrame.${method}(${label}) is past the last plane: undefined, not plane ${value % 2 ** 32}`, (t) => {
      t.is(rgba2x2()[method](value), undefined)
    })
  }
}

cases([
  {
    name: 'VideoFrame.getPlane of a frame whose buffer was transferred rejects',
    run: () => detachedFrame().getPlane(0),
    code: 'ERR_INVALID_FRAME_SIZE',
    message: 'needs exactly 16 bytes, got 0',
  },
  ...[99, -1, NaN, Infinity].map((value) => ({
    name: `VideoFrame.convert rejects type ${value}`,
    run: () => rgba2x2().convert(value as VideoBufferType),
    code: 'ERR_INVALID_BUFFER_TYPE',
    message: 'expected a VideoBufferType (0..=10)',
  })),
  {
    name: 'VideoFrame.convert rejects type undefined',
    run: () => rgba2x2().convert(undefined as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid type: expected a VideoBufferType',
  },
  {
    name: 'VideoFrame.convert rejects options as a string',
    run: () => rgba2x2().convert(T.I420, 'flip' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  {
    name: 'VideoFrame.convert rejects flipY as a string',
    run: () => rgba2x2().convert(T.I420, { flipY: 'yes' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid flipY: expected a boolean',
  },
  ...(
    [
      ['null', null],
      ['undefined', undefined],
      ['a plain object', {}],
      ['a number', 5],
      ['an object made from VideoFrame.prototype', Object.create(VideoFrame.prototype)],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `VideoFrame.convertInto rejects dst as ${label}`,
    run: () => rgba2x2().convertInto(value as VideoFrame),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid dst: expected a VideoFrame',
  })),
  {
    name: 'VideoFrame.convertInto rejects flipY as a number',
    run: () => rgba2x2().convertInto(rgba2x2(), { flipY: 1 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid flipY: expected a boolean',
  },
  {
    name: 'VideoFrame.convertInto a frame whose buffer was transferred rejects',
    run: () => rgba2x2().convertInto(detachedFrame()),
    code: 'ERR_INVALID_FRAME_SIZE',
    message: 'needs exactly 16 bytes, got 0',
  },
  {
    name: 'VideoFrame.convertInto from a frame whose buffer was transferred rejects',
    run: () => detachedFrame().convertInto(rgba2x2()),
    code: 'ERR_INVALID_FRAME_SIZE',
    message: 'needs exactly 16 bytes, got 0',
  },
])

// ---------------------------------------------------------------------------------------------
// VideoSource and LocalVideoTrack

cases([
  ...BAD_NUMBERS.map(([label, value]) => ({
    name: `VideoSource rejects width ${label}`,
    run: () => new VideoSource(value, 48),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid width: expected an integer from 1 to 16384',
  })),
  ...BAD_NUMBERS.map(([label, value]) => ({
    name: `VideoSource rejects height ${label}`,
    run: () => new VideoSource(64, value),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid height: expected an integer from 1 to 16384',
  })),
  ...NOT_NUMBERS.map(([label, value]) => ({
    name: `VideoSource rejects height as ${label}`,
    run: () => new VideoSource(64, value as number),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid height: expected an integer from 1 to 16384',
  })),
  {
    name: 'VideoSource rejects options as a number',
    run: () => new VideoSource(64, 48, 1 as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  {
    name: 'VideoSource rejects isScreencast as a string',
    run: () => new VideoSource(64, 48, { isScreencast: 'yes' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid isScreencast: expected a boolean',
  },
  ...(
    [
      ['null', null],
      ['a VideoFrame-like object', { width: 64, height: 48, type: T.RGBA, data: new Uint8Array(64 * 48 * 4) }],
      ['an object made from VideoFrame.prototype', Object.create(VideoFrame.prototype)],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `VideoSource.captureFrame rejects frame as ${label}`,
    run: () => new VideoSource(64, 48).captureFrame(value as VideoFrame),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid frame: expected a VideoFrame',
  })),
  {
    name: 'VideoSource.captureFrame rejects a frame whose buffer was transferred',
    run: () => new VideoSource(2, 2).captureFrame(detachedFrame()),
    code: 'ERR_INVALID_FRAME_SIZE',
    message: 'needs exactly 16 bytes, got 0',
  },
  // The existing room-errors test covers timestampUs -1.
  ...BAD_NUMBERS.filter(([label]) => label !== '-1' && label !== '2**31').map(([label, value]) => ({
    name: `VideoSource.captureFrame rejects timestampUs ${label}`,
    run: () => new VideoSource(2, 2).captureFrame(rgba2x2(), { timestampUs: value }),
    code: 'ERR_INVALID_ARGUMENT',
    message: `invalid timestampUs: expected an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
  })),
  ...NOT_NUMBERS.filter(([label]) => label !== 'null').map(([label, value]) => ({
    name: `VideoSource.captureFrame rejects timestampUs as ${label}`,
    run: () => new VideoSource(2, 2).captureFrame(rgba2x2(), { timestampUs: value as number }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid timestampUs: expected an integer',
  })),
  ...[45, 90, -1, 1.5, NaN, 4].map((value) => ({
    name: `VideoSource.captureFrame rejects rotation ${value}`,
    run: () => new VideoSource(2, 2).captureFrame(rgba2x2(), { rotation: value }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid rotation: expected one of Rotation0 (0), Rotation90 (1), Rotation180 (2), Rotation270 (3)',
  })),
  {
    name: 'VideoSource.captureFrame rejects rotation as a string',
    run: () => new VideoSource(2, 2).captureFrame(rgba2x2(), { rotation: 'Rotation90' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid rotation: expected one of Rotation0 (0)',
  },
  {
    name: 'VideoSource.captureFrame rejects options as a string',
    run: () => new VideoSource(2, 2).captureFrame(rgba2x2(), 'now' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  {
    name: 'VideoSource.captureFrame after a second close still rejects',
    run: () => {
      const source = new VideoSource(2, 2)
      source.close()
      source.close()
      source.captureFrame(rgba2x2())
    },
    code: 'ERR_CLOSED',
    message: 'closed',
  },
  ...(
    [
      ['a number', 42],
      ['null', null],
      ['undefined', undefined],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `LocalVideoTrack.createVideoTrack rejects name as ${label}`,
    run: () => LocalVideoTrack.createVideoTrack(value as string, new VideoSource(2, 2)),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid name: expected a string',
  })),
  ...(
    [
      ['null', null],
      ['a VideoFrame', rgba2x2()],
      ['an object made from VideoSource.prototype', Object.create(VideoSource.prototype)],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `LocalVideoTrack.createVideoTrack rejects source as ${label}`,
    run: () => LocalVideoTrack.createVideoTrack('cam', value as VideoSource),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid source: expected a VideoSource',
  })),
])

test('VideoSource.close twice is a no-op: the source stays closed and keeps its count', (t) => {
  const source = new VideoSource(2, 2)
  source.captureFrame(rgba2x2())
  source.close()
  t.notThrows(() => source.close())
  t.true(source.isClosed)
  t.is(source.capturedFrames, 1)
})

test('VideoSource.captureFrame keeps the largest safe timestampUs exactly', (t) => {
  const source = new VideoSource(2, 2)
  t.notThrows(() => source.captureFrame(rgba2x2(), { timestampUs: Number.MAX_SAFE_INTEGER }))
  t.is(source.capturedFrames, 1)
})

// ---------------------------------------------------------------------------------------------
// Room: arguments checked before anything is sent

const source64 = () => new VideoSource(64, 48)
const track64 = () => LocalVideoTrack.createVideoTrack('cam', source64())

cases([
  ...(
    [
      ['null', null],
      ['an object', {}],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `Room.connect rejects url as ${label}`,
    run: () => new Room().connect(value as string, 'token'),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid url: expected a string',
  })),
  {
    name: 'Room.connect rejects an empty url',
    run: () => new Room().connect('', 'token'),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid url: expected a non-empty string',
  },
  {
    name: 'Room.connect rejects a url that is not one',
    run: () => new Room().connect('not a url', 'token'),
    code: 'ERR_INVALID_URL',
    message: 'invalid url',
  },
  ...(
    [
      ['a number', 42],
      ['undefined', undefined],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `Room.connect rejects token as ${label}`,
    run: () => new Room().connect('ws://127.0.0.1:1', value as string),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid token: expected a string',
  })),
  {
    name: 'Room.connect rejects an empty token',
    run: () => new Room().connect('ws://127.0.0.1:1', ''),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid token: expected a non-empty string',
  },
  {
    name: 'Room.connect rejects options as a string',
    run: () => new Room().connect('ws://127.0.0.1:1', 'token', 'fast' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  {
    name: 'Room.connect rejects autoSubscribe as a string',
    run: () => new Room().connect('ws://127.0.0.1:1', 'token', { autoSubscribe: 'no' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid autoSubscribe: expected a boolean',
  },
  {
    name: 'Room.connect rejects dynacast as a string',
    run: () => new Room().connect('ws://127.0.0.1:1', 'token', { dynacast: 'on' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid dynacast: expected a boolean',
  },
  {
    name: 'Room.connect rejects adaptiveStream as a number',
    run: () => new Room().connect('ws://127.0.0.1:1', 'token', { adaptiveStream: 1 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid adaptiveStream: expected a boolean',
  },
  ...BAD_NUMBERS.map(([label, value]) => ({
    name: `Room.connect rejects connectTimeoutMs ${label}`,
    run: () => new Room().connect('ws://127.0.0.1:1', 'token', { connectTimeoutMs: value }),
    code: 'ERR_INVALID_ARGUMENT',
    message: `invalid connectTimeoutMs: expected an integer from 1 to ${2 ** 31 - 1}`,
  })),
  {
    name: 'Room.connect rejects connectTimeoutMs as a string',
    run: () => new Room().connect('ws://127.0.0.1:1', 'token', { connectTimeoutMs: '100' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid connectTimeoutMs: expected an integer',
  },
  ...(
    [
      ['null', null],
      ['a VideoSource', new VideoSource(2, 2)],
      ['an object made from LocalVideoTrack.prototype', Object.create(LocalVideoTrack.prototype)],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `LocalParticipant.publishTrack rejects track as ${label}`,
    run: () => new Room().localParticipant.publishTrack(value as LocalVideoTrack),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid track: expected a LocalVideoTrack',
  })),
  {
    name: 'LocalParticipant.publishTrack rejects options as a string',
    run: () => new Room().localParticipant.publishTrack(track64(), 'vp8' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  ...[99, -1, 1.5, NaN].map((value) => ({
    name: `LocalParticipant.publishTrack rejects source ${value}`,
    run: () => new Room().localParticipant.publishTrack(track64(), { source: value as TrackSource }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid source: expected one of Unknown (0), Camera (1)',
  })),
  {
    name: 'LocalParticipant.publishTrack rejects source as a string',
    run: () => new Room().localParticipant.publishTrack(track64(), { source: 'camera' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid source: expected one of',
  },
  ...['', 'av2', 'h265'].map((value) => ({
    name: `LocalParticipant.publishTrack rejects videoCodec ${JSON.stringify(value)}`,
    run: () => new Room().localParticipant.publishTrack(track64(), { videoCodec: value as never }),
    code: 'ERR_INVALID_ARGUMENT',
    message: "invalid videoCodec: expected 'vp8', 'h264', 'vp9' or 'av1'",
  })),
  {
    name: 'LocalParticipant.publishTrack rejects videoCodec as a number',
    run: () => new Room().localParticipant.publishTrack(track64(), { videoCodec: 8 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: "invalid videoCodec: expected 'vp8', 'h264', 'vp9' or 'av1'",
  },
  ...['', 'balance', 'MAINTAIN-FRAMERATE'].map((value) => ({
    name: `LocalParticipant.publishTrack rejects degradationPreference ${JSON.stringify(value)}`,
    run: () => new Room().localParticipant.publishTrack(track64(), { degradationPreference: value as never }),
    code: 'ERR_INVALID_ARGUMENT',
    message: "invalid degradationPreference: expected 'balanced', 'maintain-framerate' or 'maintain-resolution'",
  })),
  {
    name: 'LocalParticipant.publishTrack rejects degradationPreference as a number',
    run: () => new Room().localParticipant.publishTrack(track64(), { degradationPreference: 1 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: "invalid degradationPreference: expected 'balanced', 'maintain-framerate' or 'maintain-resolution'",
  },
  {
    name: 'LocalParticipant.publishTrack rejects simulcast as a string',
    run: () => new Room().localParticipant.publishTrack(track64(), { simulcast: 'yes' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid simulcast: expected a boolean',
  },
  {
    name: 'LocalParticipant.publishTrack rejects simulcastLayers as an object',
    run: () => new Room().localParticipant.publishTrack(track64(), { simulcastLayers: { width: 320 } as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid simulcastLayers: expected an array of { width, height, encoding }',
  },
  {
    name: 'LocalParticipant.publishTrack rejects a simulcast layer width as a string',
    run: () =>
      new Room().localParticipant.publishTrack(track64(), {
        simulcastLayers: [{ width: '320' as never, height: 180, encoding: { maxBitrate: 100_000, maxFramerate: 15 } }],
      }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid simulcastLayers[0].width: expected a number',
  },
  {
    name: 'LocalParticipant.publishTrack rejects a simulcast layer without encoding',
    run: () =>
      new Room().localParticipant.publishTrack(track64(), {
        simulcastLayers: [{ width: 320, height: 180 } as never],
      }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid simulcastLayers[0].maxBitrate: expected a number',
  },
  {
    name: 'LocalParticipant.publishTrack rejects videoEncoding as a number',
    run: () => new Room().localParticipant.publishTrack(track64(), { videoEncoding: 1e6 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid videoEncoding: expected an options object',
  },
  ...[
    ...BAD_NUMBERS,
    ['0', 0] as [string, number],
    ['999', 999] as [string, number],
    ['2**32', 2 ** 32] as [string, number],
  ]
    .filter(([label]) => label !== '2**31')
    .map(([label, value]) => ({
      name: `LocalParticipant.publishTrack rejects videoEncoding.maxBitrate ${label}`,
      run: () => new Room().localParticipant.publishTrack(track64(), { videoEncoding: { maxBitrate: value } }),
      code: 'ERR_INVALID_ARGUMENT',
      message: `invalid videoEncoding.maxBitrate: expected an integer from 1000 to ${2 ** 32 - 1}`,
    })),
  {
    name: 'LocalParticipant.publishTrack rejects videoEncoding.maxBitrate as a bigint',
    run: () =>
      new Room().localParticipant.publishTrack(track64(), { videoEncoding: { maxBitrate: (10n ** 6n) as never } }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid videoEncoding.maxBitrate: expected an integer',
  },
  ...[...BAD_NUMBERS, ['0', 0] as [string, number], ['241', 241] as [string, number]]
    .filter(([label]) => label !== '1.5')
    .map(([label, value]) => ({
      name: `LocalParticipant.publishTrack rejects videoEncoding.maxFramerate ${label}`,
      run: () => new Room().localParticipant.publishTrack(track64(), { videoEncoding: { maxFramerate: value } }),
      code: 'ERR_INVALID_ARGUMENT',
      message: 'invalid videoEncoding.maxFramerate: expected a number above 0 and at most 240',
    })),
  {
    name: 'LocalParticipant.publishTrack rejects videoEncoding.maxFramerate as a string',
    run: () => new Room().localParticipant.publishTrack(track64(), { videoEncoding: { maxFramerate: '30' as never } }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid videoEncoding.maxFramerate: expected a number above 0 and at most 240',
  },
  ...(
    [
      ['a number', 42],
      ['an array of numbers', [1, 2]],
      ['an ArrayBuffer', new ArrayBuffer(4)],
      ['null', null],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `LocalParticipant.publishData rejects payload as ${label}`,
    run: () => new Room().localParticipant.publishData(value as Uint8Array),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid payload: expected a Uint8Array or a string',
  })),
  {
    name: 'LocalParticipant.publishData rejects options as a string',
    run: () => new Room().localParticipant.publishData('x', 'reliable' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options',
  },
  {
    name: 'LocalParticipant.publishData rejects reliable as a string',
    run: () => new Room().localParticipant.publishData('x', { reliable: 'yes' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid reliable',
  },
  {
    name: 'LocalParticipant.publishData rejects topic as a number',
    run: () => new Room().localParticipant.publishData('x', { topic: 7 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid topic',
  },
  {
    name: 'LocalParticipant.publishData rejects destinationIdentities as a string',
    run: () => new Room().localParticipant.publishData('x', { destinationIdentities: 'bob' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid destinationIdentities: expected an array of identities',
  },
  {
    name: 'LocalParticipant.publishData rejects an empty destination identity',
    run: () => new Room().localParticipant.publishData('x', { destinationIdentities: ['bob', ''] }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid destinationIdentities[1]',
  },
  {
    name: 'LocalParticipant.publishData before connect rejects',
    run: () => new Room().localParticipant.publishData('x'),
    code: 'ERR_NOT_CONNECTED',
    message: 'publishData: the room is not connected',
  },
  {
    name: 'LocalParticipant.publishTrack before connect rejects',
    run: () => new Room().localParticipant.publishTrack(track64()),
    code: 'ERR_NOT_CONNECTED',
    message: 'publishTrack: the room is not connected',
  },
  ...(
    [
      ['a number', 42],
      ['undefined', undefined],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `LocalParticipant.unpublishTrack rejects sid as ${label}`,
    run: () => new Room().localParticipant.unpublishTrack(value as string),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid sid: expected a string',
  })),
  {
    name: 'LocalParticipant.unpublishTrack rejects an empty sid',
    run: () => new Room().localParticipant.unpublishTrack(''),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid sid: expected a non-empty string',
  },
  {
    name: 'LocalParticipant.unpublishTrack before connect rejects',
    run: () => new Room().localParticipant.unpublishTrack('TR_unknown'),
    code: 'ERR_NOT_CONNECTED',
    message: 'unpublishTrack: the room is not connected',
  },
  {
    name: 'LocalParticipant.publishStats rejects sid as a number',
    run: () => new Room().localParticipant.publishStats(42 as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid sid: expected a string',
  },
  {
    name: 'LocalParticipant.publishStats before connect throws',
    run: () => new Room().localParticipant.publishStats('TR_unknown'),
    code: 'ERR_NOT_CONNECTED',
    message: 'publishStats: the room is not connected',
  },
])

test('LocalParticipant.publishTrack accepts a fractional maxFramerate below 1 (a slide show)', async (t) => {
  // Checked, then refused only because the room is not connected.
  const error = await failure(() =>
    new Room().localParticipant.publishTrack(track64(), { videoEncoding: { maxFramerate: 0.5 } }),
  )
  t.is((error as LkrtcError).code, 'ERR_NOT_CONNECTED')
})

test('Room.disconnect before connect resolves and leaves the room disconnected', async (t) => {
  const room = new Room()
  await room.disconnect()
  await room.disconnect()
  t.is(room.connectionState, ConnectionState.Disconnected)
  t.false(room.isConnected)
})

// ---------------------------------------------------------------------------------------------
// VideoStream: arguments checked before the track is read

/** An object that passes `instanceof` without a native track: options are checked before use. */
const fakeTrack = () => Object.create(RemoteVideoTrack.prototype) as RemoteVideoTrack
const fakeParticipant = () => Object.create(RemoteParticipant.prototype) as RemoteParticipant

cases([
  ...(
    [
      ['null', null],
      ['undefined', undefined],
      ['an object that only inherits from LocalVideoTrack', Object.create(LocalVideoTrack.prototype)],
      ['a track sid', 'TR_abc'],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `VideoStream rejects track as ${label}`,
    run: () => new VideoStream(value as RemoteVideoTrack),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid track: expected a RemoteVideoTrack',
  })),
  {
    name: 'VideoStream rejects options as a number',
    run: () => new VideoStream(fakeTrack(), 3 as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  ...BAD_NUMBERS.map(([label, value]) => ({
    name: `VideoStream rejects capacity ${label}`,
    run: () => new VideoStream(fakeTrack(), { capacity: value }),
    code: 'ERR_INVALID_ARGUMENT',
    message: `invalid capacity: expected an integer from 0 to ${2 ** 31 - 1}`,
  })),
  {
    name: 'VideoStream rejects capacity as a string',
    run: () => new VideoStream(fakeTrack(), { capacity: '2' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid capacity: expected an integer',
  },
  ...[99, 11, -1, 1.5, NaN].map((value) => ({
    name: `VideoStream rejects format ${value}`,
    run: () => new VideoStream(fakeTrack(), { format: value as VideoBufferType }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid format: expected one of RGBA (0)',
  })),
  {
    name: 'VideoStream rejects format as a string',
    run: () => new VideoStream(fakeTrack(), { format: 'RGBA' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid format: expected one of RGBA (0)',
  },
  {
    name: 'VideoStream.fromTrack rejects options as a string',
    run: () => VideoStream.fromTrack('track' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  {
    name: 'VideoStream.fromTrack rejects missing options',
    run: () => VideoStream.fromTrack(undefined as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid track: expected a RemoteVideoTrack or a LocalVideoTrack, got undefined',
  },
  {
    name: 'VideoStream.fromTrack rejects track as a plain object',
    run: () => VideoStream.fromTrack({ track: {} as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid track: expected a RemoteVideoTrack',
  },
  {
    name: 'VideoStream.fromTrack rejects capacity -1',
    run: () => VideoStream.fromTrack({ track: fakeTrack(), capacity: -1 }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid capacity',
  },
  ...(
    [
      ['null', null],
      ['an identity string', 'alice'],
      ['a plain object', {}],
    ] as [string, unknown][]
  ).map(([label, value]) => ({
    name: `VideoStream.fromParticipant rejects participant as ${label}`,
    run: () => VideoStream.fromParticipant({ participant: value as RemoteParticipant }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid participant: expected a RemoteParticipant',
  })),
  ...[99, -1, 2.5].map((value) => ({
    name: `VideoStream.fromParticipant rejects trackSource ${value}`,
    run: () => VideoStream.fromParticipant({ participant: fakeParticipant(), trackSource: value as TrackSource }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid trackSource: expected one of Unknown (0), Camera (1)',
  })),
  {
    name: 'VideoStream.fromParticipant rejects trackSource as a string',
    run: () => VideoStream.fromParticipant({ participant: fakeParticipant(), trackSource: 'camera' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid trackSource: expected one of',
  },
  {
    name: 'VideoStream.fromParticipant rejects format 99',
    run: () => VideoStream.fromParticipant({ participant: fakeParticipant(), format: 99 as never }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid format',
  },
])

// ---------------------------------------------------------------------------------------------
// createToken

const KEY = { apiKey: 'key', apiSecret: 'secret', identity: 'alice', room: 'room' }

cases([
  {
    name: 'createToken rejects options as a string',
    run: () => createToken('alice' as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid options: expected an options object',
  },
  {
    name: 'createToken rejects missing options',
    run: () => createToken(undefined as never),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid apiKey: expected a string, got undefined',
  },
  ...(['apiKey', 'apiSecret', 'identity', 'room'] as const).flatMap((field) => [
    {
      name: `createToken rejects an empty ${field}`,
      run: () => createToken({ ...KEY, [field]: '' }),
      code: 'ERR_INVALID_ARGUMENT',
      message: `invalid ${field}: expected a non-empty string`,
    },
    {
      name: `createToken rejects ${field} as a number`,
      run: () => createToken({ ...KEY, [field]: 7 as never }),
      code: 'ERR_INVALID_ARG_TYPE',
      // The secret's value is never quoted, not even a wrong one.
      message: `invalid ${field}: expected a string, got ${field === 'apiSecret' ? 'a number' : 'number 7'}`,
    },
  ]),
  ...[
    ...BAD_NUMBERS.filter(([label]) => label !== '1.5' && label !== '2**31'),
    ['0', 0] as [string, number],
    ['0.5', 0.5] as [string, number],
  ].map(([label, value]) => ({
    name: `createToken rejects ttl ${label}`,
    run: () => createToken({ ...KEY, ttl: value }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid ttl: expected a number of seconds from 1 to',
  })),
  ...['', '10 weeks', '1e3', '-5m', '99999999999999999999d', '9'.repeat(400)].map((value) => ({
    name: `createToken rejects ttl ${JSON.stringify(value.length > 30 ? `${value.slice(0, 10)}…` : value)}`,
    run: () => createToken({ ...KEY, ttl: value }),
    code: 'ERR_INVALID_ARGUMENT',
    message: 'invalid ttl: expected a number of seconds from 1 to',
  })),
  {
    name: 'createToken rejects ttl as an object',
    run: () => createToken({ ...KEY, ttl: {} as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid ttl: expected a number of seconds',
  },
  ...(['name', 'metadata'] as const).map((field) => ({
    name: `createToken rejects ${field} as a number`,
    run: () => createToken({ ...KEY, [field]: 1 as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: `invalid ${field}: expected a string`,
  })),
  ...(['canPublish', 'canSubscribe', 'canPublishData', 'hidden'] as const).map((field) => ({
    name: `createToken rejects ${field} as a string`,
    run: () => createToken({ ...KEY, [field]: 'true' as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: `invalid ${field}: expected a boolean`,
  })),
  {
    name: 'createToken rejects attributes as an array',
    run: () => createToken({ ...KEY, attributes: ['a'] as never }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid attributes: expected an object of string values',
  },
  {
    name: 'createToken rejects an attribute value that is a number',
    run: () => createToken({ ...KEY, attributes: { level: 3 as never } }),
    code: 'ERR_INVALID_ARG_TYPE',
    message: 'invalid attributes.level: expected a string',
  },
])

/** The claims of a JWT. */
function claims(jwt: string): { exp: number; nbf: number } {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString())
}

test('createToken with the largest ttl expires that many seconds from now', (t) => {
  const max = 100 * 365 * 86400
  const { exp, nbf } = claims(createToken({ ...KEY, ttl: max }))
  t.true(Math.abs(exp - (Date.now() / 1000 + max)) < 5, `exp ${exp}`)
  t.true(nbf <= Date.now() / 1000)
})

// ---------------------------------------------------------------------------------------------
// Against a real server: closed and disconnected rooms, unknown sids, double close.

test.after.always(async () => {
  await stopTestServer()
})

async function join(room: string, identity: string): Promise<Room> {
  const server = await testServer()
  const lk = new Room()
  await lk.connect(server.url, await token(identity, room))
  return lk
}

test.serial('Room.connect after disconnect rejects with ERR_ALREADY_CONNECTED', async (t) => {
  const server = await testServer()
  const name = roomName('reconnect')
  const room = await join(name, 'again')
  await room.disconnect()
  await assertFails(
    t,
    async () => room.connect(server.url, await token('again', name)),
    'ERR_ALREADY_CONNECTED',
    'make a new Room',
  )
  t.is(room.connectionState, ConnectionState.Disconnected)
})

test.serial('Room.disconnect twice resolves both times and emits disconnected once', async (t) => {
  const room = await join(roomName('twice'), 'leaver')
  let events = 0
  room.on('disconnected', () => events++)
  await Promise.all([room.disconnect(), room.disconnect()])
  await room.disconnect()
  t.is(events, 1)
  t.is(room.connectionState, ConnectionState.Disconnected)
})

test.serial('Room.disconnect while connect is pending leaves the room disconnected', async (t) => {
  const server = await testServer()
  const name = roomName('early-leave')
  const room = new Room()
  const connecting = room.connect(server.url, await token('early', name))
  const leaving = room.disconnect()
  await Promise.allSettled([connecting, leaving])
  await sleep(200)
  t.false(room.isConnected)
  t.is(room.connectionState, ConnectionState.Disconnected)
  // No ghost participant stays behind on the server.
  const watcher = await join(name, 'watcher')
  try {
    await sleep(300)
    t.false(watcher.remoteParticipants.has('early'), 'the room that disconnected is still in the room')
  } finally {
    await watcher.disconnect()
    await room.disconnect()
  }
})

test.serial('publishTrack after disconnect rejects with ERR_NOT_CONNECTED', async (t) => {
  const room = await join(roomName('late-publish'), 'late')
  await room.disconnect()
  await assertFails(t, () => room.localParticipant.publishTrack(track64()), 'ERR_NOT_CONNECTED', 'not connected')
})

test.serial('unpublishTrack after disconnect rejects with ERR_NOT_CONNECTED', async (t) => {
  const room = await join(roomName('late-unpublish'), 'late')
  await room.disconnect()
  await assertFails(t, () => room.localParticipant.unpublishTrack('TR_unknown'), 'ERR_NOT_CONNECTED', 'not connected')
})

test.serial('unpublishTrack of an unknown sid rejects with ERR_TRACK_NOT_FOUND naming it', async (t) => {
  const room = await join(roomName('unknown-sid'), 'unknown')
  try {
    await assertFails(t, () => room.localParticipant.unpublishTrack('TR_nope'), 'ERR_TRACK_NOT_FOUND', 'TR_nope')
    t.is(room.localParticipant.publishStats('TR_nope'), undefined)
  } finally {
    await room.disconnect()
  }
})

test.serial('publishTrack of a closed source rejects with ERR_CLOSED', async (t) => {
  const room = await join(roomName('closed-source'), 'closer')
  try {
    const source = source64()
    source.close()
    await assertFails(
      t,
      () => room.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('cam', source)),
      'ERR_CLOSED',
      'closed',
    )
    t.is(room.localParticipant.trackPublications.size, 0)
  } finally {
    await room.disconnect()
  }
})

test.serial(
  'publishTrack of a published track rejects with ERR_ALREADY_PUBLISHED; unpublishing twice rejects the second',
  async (t) => {
    const room = await join(roomName('twice-published'), 'twice')
    try {
      const track = track64()
      const publication = await room.localParticipant.publishTrack(track)
      await assertFails(t, () => room.localParticipant.publishTrack(track), 'ERR_ALREADY_PUBLISHED', 'cam')
      await room.localParticipant.unpublishTrack(publication.sid)
      await assertFails(
        t,
        () => room.localParticipant.unpublishTrack(publication.sid),
        'ERR_TRACK_NOT_FOUND',
        publication.sid,
      )
    } finally {
      await room.disconnect()
    }
  },
)

/** A viewer subscribed to a publisher's track in a fresh room. */
async function subscribedPair(prefix: string) {
  const name = roomName(prefix)
  const viewer = await join(name, 'viewer')
  const subscribed = once<[RemoteVideoTrack, RemoteTrackPublication, RemoteParticipant]>(viewer, 'trackSubscribed')
  const sender = await join(name, 'sender')
  const source = new VideoSource(64, 48)
  const frame = solidRgba(64, 48, [90, 160, 40])
  const timer = setInterval(() => {
    if (!source.isClosed) source.captureFrame(frame)
  }, 66)
  await sender.localParticipant.publishTrack(LocalVideoTrack.createVideoTrack('cam', source))
  const [track, publication, participant] = await subscribed
  return {
    viewer,
    track,
    publication,
    participant,
    async close() {
      clearInterval(timer)
      await sender.disconnect()
      await viewer.disconnect()
    },
  }
}

test.serial('a real remote track: bad VideoStream options, setSubscribed, double close', async (t) => {
  const pair = await subscribedPair('stream-options')
  try {
    const { track, publication, participant } = pair
    await assertFails(
      t,
      () => new VideoStream(track, { capacity: 2 ** 31 }),
      'ERR_INVALID_ARGUMENT',
      'invalid capacity',
    )
    await assertFails(
      t,
      () => new VideoStream(track, { format: 99 as never }),
      'ERR_INVALID_ARGUMENT',
      'invalid format',
    )
    await assertFails(
      t,
      () => VideoStream.fromParticipant({ participant, trackSource: 45 as never }),
      'ERR_INVALID_ARGUMENT',
      'invalid trackSource',
    )
    await assertFails(
      t,
      () => publication.setSubscribed('yes' as never),
      'ERR_INVALID_ARG_TYPE',
      'invalid subscribed: expected a boolean',
    )

    const stream = new VideoStream(track, { format: T.RGBA })
    const first = await stream.next()
    t.false(first.done)
    t.is(first.value!.frame.width, 64)
    stream.close()
    t.notThrows(() => stream.close())
    await stream[Symbol.asyncDispose]()
    t.deepEqual(await stream.next(), { done: true, value: undefined })
    t.deepEqual(await stream.return(), { done: true, value: undefined })
  } finally {
    await pair.close()
  }
})

test.serial('a VideoStream made after the room disconnected ends at once', async (t) => {
  const pair = await subscribedPair('stream-after-leave')
  await pair.close()
  const stream = new VideoStream(pair.track)
  t.deepEqual(await stream.next(), { done: true, value: undefined })
  const follower = VideoStream.fromParticipant({ participant: pair.participant })
  t.deepEqual(await follower.next(), { done: true, value: undefined })
  t.true(follower.isClosed)
})

test.serial('setSubscribed after the room disconnected rejects with ERR_NOT_CONNECTED', async (t) => {
  const pair = await subscribedPair('subscribe-after-leave')
  await pair.close()
  await assertFails(t, () => pair.publication.setSubscribed(false), 'ERR_NOT_CONNECTED', 'not connected')
})
