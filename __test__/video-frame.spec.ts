import test from 'ava'

import v8 from 'node:v8'
import vm from 'node:vm'

import { framePoolStats, VideoBufferType, VideoFrame, VideoRotation } from '../index.js'

const T = VideoBufferType
const ALL_TYPES = [T.RGBA, T.ABGR, T.ARGB, T.BGRA, T.RGB24, T.I420, T.I420A, T.I422, T.I444, T.I010, T.NV12]
const NAMES = ['RGBA', 'ABGR', 'ARGB', 'BGRA', 'RGB24', 'I420', 'I420A', 'I422', 'I444', 'I010', 'NV12']

/** Bytes of a `w` x `h` frame, computed independently of lkrtc: chroma is ceil(w/2) wide. */
function frameSize(type: VideoBufferType, w: number, h: number): number {
  const cw = Math.ceil(w / 2)
  const ch = Math.ceil(h / 2)
  switch (type) {
    case T.RGBA:
    case T.ABGR:
    case T.ARGB:
    case T.BGRA:
      return w * h * 4
    case T.RGB24:
      return w * h * 3
    case T.I420:
      return w * h + 2 * cw * ch
    case T.I420A:
      return 2 * w * h + 2 * cw * ch
    case T.I422:
      return w * h + 2 * cw * h
    case T.I444:
      return 3 * w * h
    case T.I010:
      return 2 * (w * h + 2 * cw * ch)
    case T.NV12:
      return w * h + 2 * cw * ch
  }
}

/** Expected plane lengths, in order. */
function planeLengths(type: VideoBufferType, w: number, h: number): number[] {
  const cw = Math.ceil(w / 2)
  const ch = Math.ceil(h / 2)
  switch (type) {
    case T.I420:
      return [w * h, cw * ch, cw * ch]
    case T.I420A:
      return [w * h, cw * ch, cw * ch, w * h]
    case T.I422:
      return [w * h, cw * h, cw * h]
    case T.I444:
      return [w * h, w * h, w * h]
    case T.I010:
      return [2 * w * h, 2 * cw * ch, 2 * cw * ch]
    case T.NV12:
      return [w * h, 2 * cw * ch]
    default:
      return [frameSize(type, w, h)]
  }
}

const SIZES: [number, number][] = [
  [1, 1],
  [2, 2],
  [3, 5],
  [7, 3],
  [640, 360],
  [641, 361],
]

test('buffer types and rotations carry LiveKit numbers', (t) => {
  t.deepEqual(ALL_TYPES, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
  t.deepEqual(
    [VideoRotation.Rotation0, VideoRotation.Rotation90, VideoRotation.Rotation180, VideoRotation.Rotation270],
    [0, 1, 2, 3],
  )
})

for (const type of ALL_TYPES) {
  const name = NAMES[type]

  test(`${name} accepts exactly the right size, odd dimensions included`, (t) => {
    for (const [w, h] of SIZES) {
      const frame = new VideoFrame(w, h, type, new Uint8Array(frameSize(type, w, h)))
      t.is(frame.data.length, frameSize(type, w, h), `${w}x${h}`)
    }
  })

  test(`${name} rejects one byte too few or too many with ERR_INVALID_FRAME_SIZE`, (t) => {
    for (const [w, h] of SIZES) {
      const size = frameSize(type, w, h)
      for (const given of [size - 1, size + 1]) {
        const err = t.throws(() => new VideoFrame(w, h, type, new Uint8Array(given)))
        t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_FRAME_SIZE')
        t.true(err!.message.includes(`${size} bytes`) && err!.message.includes(`got ${given}`), err!.message)
      }
    }
  })

  test(`${name} planes have the documented lengths and strides`, (t) => {
    const [w, h] = [7, 5]
    const frame = new VideoFrame(w, h, type, new Uint8Array(frameSize(type, w, h)))
    const lengths = planeLengths(type, w, h)
    t.deepEqual(
      lengths.map((_, i) => frame.getPlane(i)!.length),
      lengths,
    )
    t.is(frame.getPlane(lengths.length), undefined)
    t.deepEqual(
      frame.planes.map((p) => p.length),
      lengths,
    )
    t.deepEqual(
      frame.planes.map((_p, i) => frame.getStride(i)),
      frame.planes.map((p) => p.stride),
    )
    t.is(frame.getStride(lengths.length), undefined)
  })
}

test('accepts a Buffer, an ArrayBuffer and a Uint8ClampedArray', (t) => {
  const size = frameSize(T.I420, 4, 4)
  t.is(new VideoFrame(4, 4, T.I420, Buffer.alloc(size)).data.length, size)
  t.is(new VideoFrame(4, 4, T.I420, new ArrayBuffer(size)).data.length, size)
  t.is(new VideoFrame(4, 4, T.I420, new Uint8ClampedArray(size)).data.length, size)
})

test('a view at a byteOffset is measured from its offset', (t) => {
  const backing = new ArrayBuffer(1000)
  const view = new Uint8Array(backing, 13, frameSize(T.RGBA, 3, 3))
  view.fill(7)
  const frame = new VideoFrame(3, 3, T.RGBA, view)
  t.is(frame.data.byteOffset, 13)
  t.true(frame.data.every((b) => b === 7))
  const err = t.throws(() => new VideoFrame(3, 3, T.RGBA, new Uint8Array(backing, 13)))
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_FRAME_SIZE')
})

test('a Buffer from the pool (nonzero byteOffset) is viewed, not copied', (t) => {
  const buf = Buffer.from('0123456789abcdef') // 16 bytes = 2x2 RGBA, usually inside the shared pool
  const frame = new VideoFrame(2, 2, T.RGBA, buf)
  t.is(frame.data.byteOffset, buf.byteOffset)
  t.is(frame.data.buffer, buf.buffer)
})

test('data is the same memory as the input, not a copy', (t) => {
  const bytes = new Uint8Array(frameSize(T.RGBA, 2, 2))
  const frame = new VideoFrame(2, 2, T.RGBA, bytes)
  bytes[5] = 42
  t.is(frame.data[5], 42)
  frame.data[6] = 43
  t.is(bytes[6], 43)
  t.is(frame.data, frame.data)
})

test('width, height and type read back', (t) => {
  const frame = new VideoFrame(5, 3, T.NV12, new Uint8Array(frameSize(T.NV12, 5, 3)))
  t.deepEqual([frame.width, frame.height, frame.type], [5, 3, T.NV12])
})

test('getPlane returns views: writes through a plane reach data and convert', (t) => {
  const frame = new VideoFrame(4, 4, T.I420, new Uint8Array(frameSize(T.I420, 4, 4)).fill(128))
  const y = frame.getPlane(0)!
  t.is(y.buffer, frame.data.buffer)
  y.fill(235) // white luma, neutral chroma
  t.is(frame.data[0], 235)
  const rgba = frame.convert(T.RGBA)
  t.deepEqual([...rgba.data.subarray(0, 4)], [255, 255, 255, 255])
})

test('planes describe offsets into data', (t) => {
  const frame = new VideoFrame(5, 3, T.I420A, new Uint8Array(frameSize(T.I420A, 5, 3)))
  t.deepEqual(frame.planes, [
    { offset: 0, stride: 5, rows: 3, length: 15 },
    { offset: 15, stride: 3, rows: 2, length: 6 },
    { offset: 21, stride: 3, rows: 2, length: 6 },
    { offset: 27, stride: 5, rows: 3, length: 15 },
  ])
})

for (const [label, w, h] of [
  ['NaN', NaN, 2],
  ['zero', 0, 2],
  ['negative', -4, 2],
  ['fractional', 2.5, 2],
  ['Infinity', Infinity, 2],
  ['too large', 16385, 2],
  ['huge', 2 ** 53, 2],
  ['negative height', 2, -2],
] as const) {
  test(`${label} dimensions throw ERR_INVALID_DIMENSIONS`, (t) => {
    const err = t.throws(() => new VideoFrame(w, h, T.RGBA, new Uint8Array(16)))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_DIMENSIONS')
  })
}

for (const type of [11, -1, 2.5, NaN, 1e10]) {
  test(`buffer type ${type} throws ERR_INVALID_BUFFER_TYPE`, (t) => {
    const err = t.throws(() => new VideoFrame(2, 2, type as VideoBufferType, new Uint8Array(16)))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_BUFFER_TYPE')
    t.true(err!.message.includes(String(type)), err!.message)
  })
}

const wrongTypes: [string, () => unknown][] = [
  ['data as a string', () => new VideoFrame(2, 2, T.RGBA, 'abcd' as any)],
  ['data as an array of numbers', () => new VideoFrame(2, 2, T.RGBA, new Array(16).fill(0) as any)],
  ['data as null', () => new VideoFrame(2, 2, T.RGBA, null as any)],
  ['data as a Uint16Array', () => new VideoFrame(2, 2, T.RGBA, new Uint16Array(8) as any)],
  ['data as a DataView', () => new VideoFrame(2, 2, T.RGBA, new DataView(new ArrayBuffer(16)) as any)],
  ['width as a string', () => new VideoFrame('2' as any, 2, T.RGBA, new Uint8Array(16))],
  ['height as undefined', () => new VideoFrame(2, undefined as any, T.RGBA, new Uint8Array(16))],
  ['type as a string', () => new VideoFrame(2, 2, 'RGBA' as any, new Uint8Array(16))],
]
for (const [label, make] of wrongTypes) {
  test(`${label} throws ERR_INVALID_ARG_TYPE`, (t) => {
    const err = t.throws(make)
    t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_TYPE')
  })
}

test('convert to an unknown type throws ERR_INVALID_BUFFER_TYPE', (t) => {
  const frame = new VideoFrame(2, 2, T.RGBA, new Uint8Array(16))
  const err = t.throws(() => frame.convert(42 as VideoBufferType))
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_BUFFER_TYPE')
})

test('a frame whose buffer was transferred away throws instead of reading freed memory', (t) => {
  const bytes = new Uint8Array(16)
  const frame = new VideoFrame(2, 2, T.RGBA, bytes)
  structuredClone(bytes.buffer, { transfer: [bytes.buffer] })
  const err = t.throws(() => frame.convert(T.I420))
  t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_FRAME_SIZE')
})

test('errors are Error instances with a message', (t) => {
  const err = t.throws(() => new VideoFrame(2, 2, T.RGBA, new Uint8Array(3)))
  t.true(err instanceof Error)
  t.regex(err!.message, /2x2 RGBA frame needs exactly 16 bytes, got 3/)
})

test('frames dropped in a synchronous loop are freed by garbage collection alone', (t) => {
  // 200 converted 1080p RGBA frames are 1.6 GB: the loop must not hold them until it yields.
  const source = new VideoFrame(1920, 1080, T.I420, new Uint8Array((1920 * 1080 * 3) / 2))
  const before = process.memoryUsage().arrayBuffers
  let last: VideoFrame | undefined
  for (let i = 0; i < 200; i++) last = source.convert(T.RGBA)
  t.is(last!.data.length, 1920 * 1080 * 4)
  const grown = process.memoryUsage().arrayBuffers - before
  t.true(grown < 400e6, `ArrayBuffer memory grew by ${(grown / 1e6).toFixed(0)} MB`)
})

test("convert reuses a collected frame's memory and overwrites all of it", async (t) => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
  const [w, h] = [641, 359]
  const picture = (seed: number) => {
    const data = new Uint8Array(w * h * 4)
    for (let i = 0; i < data.length; i++) data[i] = (i * seed + (i >> 9)) & 0xff
    return new VideoFrame(w, h, T.RGBA, data)
  }
  const [first, second] = [picture(7), picture(13)]
  // What the second picture converts to in memory that was never used.
  const fresh = second.convert(T.I420)
  const reference = Uint8Array.from(fresh.data)
  // A frame of that size is made and collected: its memory waits in the pool.
  let dropped: VideoFrame | undefined = first.convert(T.I420)
  t.notDeepEqual(Uint8Array.from(dropped.data), reference)
  dropped = undefined
  let reused = false
  for (let i = 0; i < 20 && !reused; i++) {
    gc()
    await turn()
    const before = framePoolStats().reused
    const out = second.convert(T.I420)
    reused = framePoolStats().reused > before
    t.deepEqual(Uint8Array.from(out.data), reference)
  }
  t.true(reused, "a collected frame's memory served a new one")
})
