// What the benchmarks measure a video stream with, shared by the end-to-end benchmark
// (e2e.ts, e2e-peer.ts), the network lab (net.ts) and its tests.
//
// The publisher stamps two 32-bit values into bands of the top rows of the Y plane, one bit per
// black/white block: band 0 its capture time (µs since an agreed epoch), band 1 the frame's
// number. The subscriber reads them back from the decoded picture, so it knows each frame's
// capture -> decoded latency and which frames never arrived, whatever the stack in between.

export const BITS = 32
/** Rows of one band at the published size. */
export const BAND = 32

/** 30 frames of a moving picture (I420), so the encoder has real work. */
export function makePictures(w: number, h: number): Uint8Array[] {
  const cw = Math.ceil(w / 2)
  const ch = Math.ceil(h / 2)
  const pictures: Uint8Array[] = []
  for (let n = 0; n < 30; n++) {
    const data = new Uint8Array(w * h + 2 * cw * ch)
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) data[y * w + x] = (x + y + n * 8) & 255
    }
    for (let i = 0; i < cw * ch; i++) {
      data[w * h + i] = 128 + ((i + n * 4) % 64)
      data[w * h + cw * ch + i] = 160 - ((i >> 3) % 64)
    }
    pictures.push(data)
  }
  return pictures
}

/** Writes `value` into band `band` (0: capture time, 1: frame number) of a Y plane. */
export function stamp(y: Uint8Array, w: number, band: number, value: number): void {
  const block = Math.floor(w / BITS)
  for (let bit = 0; bit < BITS; bit++) {
    const v = (value >>> (BITS - 1 - bit)) & 1 ? 235 : 16
    for (let row = band * BAND; row < (band + 1) * BAND; row++)
      y.fill(v, row * w + bit * block, row * w + (bit + 1) * block)
  }
}

/** Reads band `band` back from a decoded Y plane of `w` x `h`, which may be smaller than the
 * published height `publishedHeight` (an encoder that scales down): the band scales with it. */
export function readStamp(
  y: Uint8Array,
  stride: number,
  w: number,
  h: number,
  publishedHeight: number,
  band: number,
): number {
  const scale = h / publishedHeight
  const block = w / BITS
  const center = (band + 0.5) * BAND * scale
  const half = Math.max(1, 4 * scale)
  const top = Math.round(center - half)
  const bottom = Math.round(center + half)
  let value = 0
  for (let bit = 0; bit < BITS; bit++) {
    const left = Math.ceil(bit * block + block / 4)
    const right = Math.floor((bit + 1) * block - block / 4)
    let sum = 0
    let count = 0
    for (let row = top; row < bottom; row++) {
      for (let x = left; x < right; x++) {
        sum += y[row * stride + x]
        count++
      }
    }
    value = (value << 1) | (sum / Math.max(1, count) > 125 ? 1 : 0)
  }
  return value >>> 0
}

/** Latency in ms of a frame stamped `stampedUs` (32-bit wrapped) and decoded at `nowUs`. */
export function latencyMs(nowUs: number, stampedUs: number): number {
  return (((Math.round(nowUs) >>> 0) - stampedUs) >>> 0) / 1000
}

/** The `p`th percentile of an ascending array (NaN when empty). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]
}

/** Frames numbered `from` to `to - 1` that are not among `arrived`. */
export function missing(arrived: Iterable<number>, from: number, to: number): number {
  const got = new Set(arrived)
  let n = 0
  for (let i = from; i < to; i++) if (!got.has(i)) n++
  return n
}

export interface Freezes {
  count: number
  /** Sum of the frozen gaps, ms. */
  totalMs: number
}

/**
 * Freezes as WebRTC's stats define them: a gap between two rendered frames longer than
 * max(3 x the mean frame interval, mean + 150 ms). `arrivalsMs` are the render times of the
 * window's frames, ascending; the window's own start and end count as edges, so a stream that
 * stops is frozen until the window ends, and one that delivers nothing is frozen throughout.
 * `intervalMs` is the nominal frame interval (the mean of a stream that keeps up).
 */
export function freezes(arrivalsMs: number[], startMs: number, endMs: number, intervalMs: number): Freezes {
  const edges = [startMs, ...arrivalsMs.filter((t) => t >= startMs && t <= endMs), endMs]
  const limit = Math.max(3 * intervalMs, intervalMs + 150)
  let count = 0
  let totalMs = 0
  for (let i = 1; i < edges.length; i++) {
    const gap = edges[i] - edges[i - 1]
    if (gap > limit) {
      count++
      totalMs += gap
    }
  }
  return { count, totalMs }
}
