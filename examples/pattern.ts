// The demo's test pattern: SMPTE-like colour bars with a white square bouncing across them, in
// I420 (BT.601 limited range). Used by the demo and by the tests that check what a viewer shows.
import type { VideoFrame } from '../lib/index.js'

/** Y, U, V of the bars, left to right: white, yellow, cyan, green, magenta, red, blue, black. */
const BARS_YUV = [
  [235, 128, 128],
  [210, 16, 146],
  [170, 166, 16],
  [145, 54, 34],
  [106, 202, 222],
  [81, 90, 240],
  [41, 240, 110],
  [16, 128, 128],
] as const

/** The same bars in RGB, as a viewer should show them. */
export const BARS_RGB: readonly [number, number, number][] = [
  [255, 255, 255],
  [255, 255, 0],
  [0, 255, 255],
  [0, 255, 0],
  [255, 0, 255],
  [255, 0, 0],
  [0, 0, 255],
  [0, 0, 0],
]

/** Side of the bouncing square, in pixels at 720p (scaled with the height). */
const SQUARE_720 = 160

/** The bars alone, as an I420 picture of `width` x `height` (both even). */
export function colourBars(width: number, height: number): Uint8Array {
  const cw = width / 2
  const ch = height / 2
  const data = new Uint8Array(width * height + 2 * cw * ch)
  const [u, v] = [width * height, width * height + cw * ch]
  const bar = (x: number) => BARS_YUV[Math.floor((x * BARS_YUV.length) / width)]
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data[y * width + x] = bar(x)[0]
  }
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      data[u + y * cw + x] = bar(2 * x)[1]
      data[v + y * cw + x] = bar(2 * x)[2]
    }
  }
  return data
}

/**
 * Rows at the top that the square never covers: a viewer finds the bars there in every frame.
 */
export function clearRows(height: number): number {
  const size = Math.round((SQUARE_720 * height) / 720) & ~1
  return Math.floor((height - size) / 2 - height / 3) - 2
}

/** Frame `n` of the pattern into `frame` (I420, the size `base` was drawn for). */
export function drawFrame(base: Uint8Array, frame: VideoFrame, n: number): void {
  const { width, height } = frame
  const data = frame.data
  data.set(base)
  const size = Math.round((SQUARE_720 * height) / 720) & ~1
  const span = width - size
  const phase = (n * 12) % (2 * span)
  const left = (phase < span ? phase : 2 * span - phase) & ~1
  const top = Math.round((height - size) / 2 + Math.sin(n / 15) * (height / 3)) & ~1
  for (let y = top; y < top + size; y++) data.fill(235, y * width + left, y * width + left + size)
  const cw = width / 2
  const [u, v] = [width * height, width * height + cw * (height / 2)]
  for (let y = top / 2; y < (top + size) / 2; y++) {
    const row = y * cw + left / 2
    data.fill(128, u + row, u + row + size / 2)
    data.fill(128, v + row, v + row + size / 2)
  }
}
