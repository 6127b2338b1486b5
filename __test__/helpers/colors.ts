/** Solid-colour frames and their recognition on the receiving side. */
import { VideoBufferType, VideoFrame } from '../../lib/index.js'

export type Rgb = [number, number, number]

export const COLOURS: Record<string, Rgb> = {
  red: [255, 0, 0],
  green: [0, 255, 0],
  blue: [0, 0, 255],
  white: [255, 255, 255],
  black: [0, 0, 0],
}
export const SEQUENCE = ['red', 'green', 'blue', 'white', 'black']
export const GREY: Rgb = [128, 128, 128]

export function solidRgba(width: number, height: number, [r, g, b]: Rgb): VideoFrame {
  const data = new Uint8Array(width * height * 4)
  for (let i = 0; i < data.length; i += 4) {
    data[i] = r
    data[i + 1] = g
    data[i + 2] = b
    data[i + 3] = 255
  }
  return new VideoFrame(width, height, VideoBufferType.RGBA, data)
}

/** The mean colour of an RGBA picture, sampled on a grid. */
export function meanRgb(rgba: Uint8Array, width: number, height: number): Rgb {
  let [r, g, b, n] = [0, 0, 0, 0]
  for (let y = 4; y < height; y += 8) {
    for (let x = 4; x < width; x += 8) {
      const i = (y * width + x) * 4
      r += rgba[i]
      g += rgba[i + 1]
      b += rgba[i + 2]
      n++
    }
  }
  return [r / n, g / n, b / n]
}

/** The name of the colour `mean` is within `tolerance` of (per channel), else undefined. */
export function classify(mean: Rgb, tolerance = 40): string | undefined {
  for (const [name, rgb] of Object.entries(COLOURS)) {
    if (rgb.every((c, i) => Math.abs(c - mean[i]) <= tolerance)) return name
  }
  return undefined
}

/** Runs of at least `minRun` consecutive frames of the same colour, in order. */
export function stableRuns(names: (string | undefined)[], minRun = 3): string[] {
  const runs: string[] = []
  let current: string | undefined
  let length = 0
  for (const name of [...names, undefined]) {
    if (name === current) {
      length++
      continue
    }
    if (current !== undefined && length >= minRun && runs[runs.length - 1] !== current) runs.push(current)
    current = name
    length = 1
  }
  return runs
}

/** Whether `expected` appears in `runs` in order (other runs may come between). */
export function inOrder(runs: string[], expected: string[]): boolean {
  let i = 0
  for (const run of runs) if (run === expected[i]) i++
  return i === expected.length
}

/**
 * Captures `SEQUENCE` on `capture`: a grey lead-in, then each colour for `secondsEach` at `fps`,
 * then a grey tail. Timestamps are real time in microseconds.
 */
export async function playSequence(
  capture: (frame: VideoFrame, timestampUs: number) => void,
  { width = 640, height = 480, fps = 15, secondsEach = 1, leadIn = 1, colours = SEQUENCE } = {},
): Promise<void> {
  const frames = [
    ...Array(Math.round(leadIn * fps)).fill(solidRgba(width, height, GREY)),
    ...colours.flatMap((c) => Array(Math.round(secondsEach * fps)).fill(solidRgba(width, height, COLOURS[c]))),
    ...Array(Math.round(leadIn * fps)).fill(solidRgba(width, height, GREY)),
  ] as VideoFrame[]
  const start = performance.now()
  for (let i = 0; i < frames.length; i++) {
    const due = start + (i * 1000) / fps
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    capture(frames[i], Math.round((performance.timeOrigin + performance.now()) * 1000))
  }
}

/**
 * Reads an lkrtc `VideoStream` of RGBA frames until `stop()` or its end: the colour name of
 * every frame and the sizes seen.
 */
export function readStreamColours(stream: AsyncIterable<{ frame: VideoFrame }> & { close(): void }): {
  names: (string | undefined)[]
  sizes: Set<string>
  stop: () => Promise<void>
  ended: Promise<void>
} {
  const names: (string | undefined)[] = []
  const sizes = new Set<string>()
  const ended = (async () => {
    for await (const { frame } of stream) {
      if (frame.type !== VideoBufferType.RGBA) throw new Error(`expected RGBA frames, got type ${frame.type}`)
      sizes.add(`${frame.width}x${frame.height}`)
      names.push(classify(meanRgb(frame.data, frame.width, frame.height)))
    }
  })()
  return {
    names,
    sizes,
    ended,
    stop: async () => {
      stream.close()
      await ended
    },
  }
}
