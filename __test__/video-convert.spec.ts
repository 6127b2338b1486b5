import test from 'ava'

import { VideoBufferType, VideoFrame } from '../index.js'

const T = VideoBufferType
const ALL_TYPES = [T.RGBA, T.ABGR, T.ARGB, T.BGRA, T.RGB24, T.I420, T.I420A, T.I422, T.I444, T.I010, T.NV12]
const NAMES = ['RGBA', 'ABGR', 'ARGB', 'BGRA', 'RGB24', 'I420', 'I420A', 'I422', 'I444', 'I010', 'NV12']

/** Smooth gradients with a soft-edged disc and bar, opaque: what a camera or renderer produces. */
function pattern(w: number, h: number): VideoFrame {
  const data = new Uint8Array(w * h * 4)
  const soft = (d: number) => Math.min(1, Math.max(0, 0.5 - (d * Math.max(w, h)) / 3))
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const fx = (x + 0.5) / w
      const fy = (y + 0.5) / h
      let rgb = [255 * fx, 255 * fy, 255 * (1 - fx) * (0.5 + 0.5 * fy)]
      const paint = (k: number, c: number[]) => (rgb = rgb.map((v, i) => v + k * (c[i] - v)))
      paint(soft(Math.hypot(fx - 0.6, fy - 0.4) - 0.2), [230, 200, 40])
      paint(soft(Math.max(Math.abs(0.2 - fx), Math.abs(0.75 - fy)) - 0.12), [40, 90, 200])
      data.set([...rgb.map((v) => Math.round(v)), 255], (y * w + x) * 4)
    }
  }
  return new VideoFrame(w, h, T.RGBA, data)
}

function solid(rgba: number[], w = 4, h = 4): VideoFrame {
  const data = new Uint8Array(w * h * 4)
  for (let i = 0; i < data.length; i += 4) data.set(rgba, i)
  return new VideoFrame(w, h, T.RGBA, data)
}

/** PSNR in dB over the R, G, B bytes of two RGBA frames. */
function psnrRgb(a: VideoFrame, b: VideoFrame): number {
  let sum = 0
  let n = 0
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = a.data[i + c] - b.data[i + c]
      sum += d * d
      n++
    }
  }
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255) / (sum / n))
}

function yuvAt0(frame: VideoFrame): number[] {
  return [frame.getPlane(0)![0], frame.getPlane(1)![0], frame.getPlane(2)![0]]
}

function near(t: any, given: number[], expected: number[], tolerance: number, what: string) {
  const ok = given.every((g, i) => Math.abs(g - expected[i]) <= tolerance)
  t.true(ok, `${what}: got [${given}], expected [${expected}] +-${tolerance}`)
}

// ITU-R BT.601 limited range: Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255.
const BT601: [string, number[], number[]][] = [
  ['red', [255, 0, 0, 255], [81, 90, 240]],
  ['green', [0, 255, 0, 255], [145, 54, 34]],
  ['blue', [0, 0, 255, 255], [41, 240, 110]],
  ['white', [255, 255, 255, 255], [235, 128, 128]],
  ['black', [0, 0, 0, 255], [16, 128, 128]],
]
for (const [name, rgba, yuv] of BT601) {
  test(`RGBA ${name} becomes BT.601 limited-range YUV ${yuv}`, (t) => {
    near(t, yuvAt0(solid(rgba).convert(T.I420)), yuv, 1, name)
  })
}

// libyuv's fixed-point YUV -> RGB is within 4 levels (saturated blue comes back as 251).
const SOLIDS: [string, number[]][] = [
  ['red', [255, 0, 0, 255]],
  ['green', [0, 255, 0, 255]],
  ['blue', [0, 0, 255, 255]],
  ['white', [255, 255, 255, 255]],
  ['black', [0, 0, 0, 255]],
  ['grey', [128, 128, 128, 255]],
]
for (const [name, rgba] of SOLIDS) {
  test(`solid ${name} survives RGBA -> I420 -> RGBA within 4 levels`, (t) => {
    const back = solid(rgba).convert(T.I420).convert(T.RGBA)
    for (let i = 0; i < back.data.length; i += 4) near(t, [...back.data.subarray(i, i + 4)], rgba, 4, name)
  })
}

test('packed formats are named by byte order in memory', (t) => {
  const px = solid([10, 20, 30, 40], 1, 1)
  t.deepEqual([...px.convert(T.ABGR).data], [40, 30, 20, 10])
  t.deepEqual([...px.convert(T.ARGB).data], [40, 10, 20, 30])
  t.deepEqual([...px.convert(T.BGRA).data], [30, 20, 10, 40])
  t.deepEqual([...px.convert(T.RGB24).data], [10, 20, 30])
})

test('I420A keeps the alpha of RGBA', (t) => {
  const i420a = solid([200, 100, 50, 77], 3, 3).convert(T.I420A)
  t.true(i420a.getPlane(3)!.every((a) => a === 77))
  t.true(
    i420a
      .convert(T.RGBA)
      .data.filter((_, i) => i % 4 === 3)
      .every((a) => a === 77),
  )
})

test('I420A made from I420 is opaque', (t) => {
  const i420a = solid([200, 100, 50, 255], 3, 3).convert(T.I420).convert(T.I420A)
  t.true(i420a.getPlane(3)!.every((a) => a === 255))
})

for (const a of ALL_TYPES) {
  for (const b of ALL_TYPES) {
    test(`${NAMES[a]} -> ${NAMES[b]} -> ${NAMES[a]} keeps PSNR >= 35 dB`, (t) => {
      const src = pattern(161, 91).convert(a)
      const reference = src.convert(T.RGBA)
      const back = src.convert(b).convert(a).convert(T.RGBA)
      const db = psnrRgb(reference, back)
      t.true(db >= 35, `${db.toFixed(1)} dB`)
    })
  }
}

test('flipY puts the last row of the source first', (t) => {
  const src = pattern(9, 7)
  const flipped = src.convert(T.RGBA, { flipY: true })
  const row = 9 * 4
  t.deepEqual(flipped.data.subarray(0, row), src.data.subarray(6 * row))
  t.deepEqual(flipped.data.subarray(6 * row), src.data.subarray(0, row))
})

for (const to of ALL_TYPES) {
  test(`flipY flips every plane of RGBA -> ${NAMES[to]}`, (t) => {
    const src = pattern(16, 10)
    const upright = src.convert(to)
    const flipped = src.convert(to, { flipY: true })
    upright.planes.forEach((p, i) => {
      const a = upright.getPlane(i)!
      const b = flipped.getPlane(i)!
      for (let r = 0; r < p.rows; r++) {
        const top = b.subarray(r * p.stride, (r + 1) * p.stride)
        const bottom = a.subarray((p.rows - 1 - r) * p.stride, (p.rows - r) * p.stride)
        t.deepEqual(top, bottom, `plane ${i} row ${r}`)
      }
    })
  })
}

test('convert without options does not flip', (t) => {
  const src = pattern(4, 4)
  t.deepEqual(src.convert(T.RGBA).data, src.data)
  t.deepEqual(src.convert(T.RGBA, {}).data, src.data)
})

test('a converted frame owns a buffer of exactly its size', (t) => {
  const out = pattern(33, 17).convert(T.I420)
  t.is(out.data.byteOffset, 0)
  t.is(out.data.buffer.byteLength, 33 * 17 + 2 * 17 * 9)
  t.deepEqual([out.width, out.height, out.type], [33, 17, T.I420])
})

test('converting the same frame twice gives the same bytes', (t) => {
  const src = pattern(31, 9)
  t.deepEqual(src.convert(T.NV12).data, src.convert(T.NV12).data)
})

test('odd sizes convert between every pair', (t) => {
  for (const [w, h] of [
    [1, 1],
    [3, 5],
    [5, 2],
  ]) {
    const rgba = pattern(w, h)
    for (const a of ALL_TYPES) {
      const src = rgba.convert(a)
      for (const b of ALL_TYPES) t.is(src.convert(b).type, b)
    }
  }
})

test('convertInto writes into an existing frame of the target type', (t) => {
  const src = pattern(33, 17)
  const dst = new VideoFrame(33, 17, T.NV12, new Uint8Array(src.convert(T.NV12).data.length))
  const before = dst.data
  src.convertInto(dst)
  t.is(dst.data, before)
  t.deepEqual(dst.data, src.convert(T.NV12).data)
})

test('convertInto honours flipY', (t) => {
  const src = pattern(8, 6)
  const dst = new VideoFrame(8, 6, T.RGBA, new Uint8Array(8 * 6 * 4))
  src.convertInto(dst, { flipY: true })
  t.deepEqual(dst.data, src.convert(T.RGBA, { flipY: true }).data)
})

test('convertInto a frame of other dimensions throws ERR_DIMENSION_MISMATCH', (t) => {
  const dst = new VideoFrame(4, 4, T.I420, new Uint8Array(24))
  const err = t.throws(() => pattern(8, 6).convertInto(dst))
  t.is((err as NodeJS.ErrnoException).code, 'ERR_DIMENSION_MISMATCH')
})

test('convertInto between overlapping views of one buffer reads the source first', (t) => {
  const memory = new Uint8Array(8 * 4 * 2)
  memory.set(pattern(8, 1).data)
  const src = new VideoFrame(8, 1, T.RGBA, memory.subarray(0, 32))
  const expected = src.convert(T.BGRA).data.slice()
  const dst = new VideoFrame(8, 1, T.BGRA, memory.subarray(16, 48))
  src.convertInto(dst)
  t.deepEqual(dst.data, expected)
})
