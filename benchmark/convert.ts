// Pixel-format conversion, lkrtc beside @livekit/rtc-node in the same process, with memcpy
// floors: TypedArray.set of the larger of the input and output into a preallocated buffer
// (what `convertInto` competes with) and `slice()` into a new one (a fresh buffer per frame:
// page faults, which `convert` avoids by reusing collected frames' memory from the frame pool).
// Prints a markdown table. Run on a release build:
//   node --import tsx benchmark/convert.ts
import { dispose, VideoBufferType as RtcType, VideoFrame as RtcFrame } from '@livekit/rtc-node'

import { framePoolStats, VideoBufferType as T, VideoFrame } from '../index.js'

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Median ms per call of `fn`, over at least `minMs` of runs after a warm-up. The event loop
 * turns between calls, as in a frame loop, so finalizers of dropped results run. */
async function measure(fn: () => unknown, minMs = 400): Promise<number> {
  for (let i = 0; i < 5; i++) fn()
  const times: number[] = []
  const start = performance.now()
  while (performance.now() - start < minMs || times.length < 20) {
    await turn()
    const t0 = process.hrtime.bigint()
    fn()
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  times.sort((a, b) => a - b)
  return times[times.length >> 1]
}

/** A smooth test picture (gradients), so no conversion hits a special case. */
function rgbaPattern(w: number, h: number): Uint8Array {
  const data = new Uint8Array(w * h * 4)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4
      data[i] = (255 * x) / w
      data[i + 1] = (255 * y) / h
      data[i + 2] = 255 - (255 * x) / w
      data[i + 3] = 255
    }
  }
  return data
}

function memcpy(bytes: number): () => void {
  const src = new Uint8Array(bytes).fill(1)
  const dst = new Uint8Array(bytes)
  return () => dst.set(src)
}

function memcpyNew(bytes: number): () => void {
  const src = new Uint8Array(bytes).fill(1)
  return () => src.slice()
}

type Row = {
  op: string
  size: string
  lkrtc: number
  into?: number
  rtc: number
  floor: number
  floorNew: number
  pooled?: number
}

/** `measure` of a call that makes new frames, and the share of them whose memory came from the pool. */
async function measurePooled(fn: () => unknown): Promise<[number, number]> {
  const before = framePoolStats()
  const ms = await measure(fn)
  const after = framePoolStats()
  const reused = after.reused - before.reused
  return [ms, reused / (reused + after.allocated - before.allocated)]
}
const rows: Row[] = []

async function main() {
  for (const [label, w, h] of [
    ['720p', 1280, 720],
    ['1080p', 1920, 1080],
  ] as const) {
    const rgba = rgbaPattern(w, h)
    const lkRgba = new VideoFrame(w, h, T.RGBA, rgba)
    const lkI420 = lkRgba.convert(T.I420)
    const lkNv12 = lkRgba.convert(T.NV12)
    const rtcRgba = new RtcFrame(rgba.slice(), w, h, RtcType.RGBA)
    const rtcI420 = new RtcFrame(lkI420.data.slice(), w, h, RtcType.I420)
    const rtcNv12 = new RtcFrame(lkNv12.data.slice(), w, h, RtcType.NV12)
    const rgbaBytes = w * h * 4
    const i420Bytes = lkI420.data.length

    const i420Out = lkI420.convert(T.I420)
    const rgbaOut = lkRgba.convert(T.RGBA)
    rows.push({
      op: 'RGBA -> I420',
      size: label,
      ...(await measurePooled(() => lkRgba.convert(T.I420)).then(([lkrtc, pooled]) => ({ lkrtc, pooled }))),
      into: await measure(() => lkRgba.convertInto(i420Out)),
      rtc: await measure(() => rtcRgba.convert(RtcType.I420)),
      floor: await measure(memcpy(rgbaBytes)),
      floorNew: await measure(memcpyNew(rgbaBytes)),
    })
    rows.push({
      op: 'I420 -> RGBA',
      size: label,
      ...(await measurePooled(() => lkI420.convert(T.RGBA)).then(([lkrtc, pooled]) => ({ lkrtc, pooled }))),
      into: await measure(() => lkI420.convertInto(rgbaOut)),
      rtc: await measure(() => rtcI420.convert(RtcType.RGBA)),
      floor: await measure(memcpy(rgbaBytes)),
      floorNew: await measure(memcpyNew(rgbaBytes)),
    })
    rows.push({
      op: 'NV12 -> I420',
      size: label,
      ...(await measurePooled(() => lkNv12.convert(T.I420)).then(([lkrtc, pooled]) => ({ lkrtc, pooled }))),
      into: await measure(() => lkNv12.convertInto(i420Out)),
      rtc: await measure(() => rtcNv12.convert(RtcType.I420)),
      floor: await measure(memcpy(i420Bytes)),
      floorNew: await measure(memcpyNew(i420Bytes)),
    })
    rows.push({
      op: 'getPlane(0) (Y of I420)',
      size: label,
      lkrtc: await measure(() => lkI420.getPlane(0)),
      rtc: await measure(() => rtcI420.getPlane(0)),
      floor: await measure(memcpy(w * h)),
      floorNew: await measure(memcpyNew(w * h)),
    })
  }

  const fmt = (ms: number) => (ms < 0.01 ? ms.toFixed(4) : ms.toFixed(3))
  const lines = [
    '| operation | size | lkrtc `convert` ms | lkrtc `convertInto` ms | @livekit/rtc-node ms | memcpy ms (new / reused buffer) | rtc-node ÷ lkrtc `convert` | lkrtc ÷ memcpy (`convert` ÷ new, `convertInto` ÷ reused) | `convert` ÷ `convertInto` | `convert`s served by the pool |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const into = r.into === undefined ? '–' : fmt(r.into)
      const vsFloor =
        r.into === undefined
          ? `${(r.lkrtc / r.floorNew).toFixed(2)}x`
          : `${(r.lkrtc / r.floorNew).toFixed(2)}x, ${(r.into / r.floor).toFixed(2)}x`
      const ratio = r.into === undefined ? '–' : `${(r.lkrtc / r.into).toFixed(2)}x`
      const pooled = r.pooled === undefined ? '–' : `${Math.round(r.pooled * 100)}%`
      return `| ${r.op} | ${r.size} | ${fmt(r.lkrtc)} | ${into} | ${fmt(r.rtc)} | ${fmt(r.floorNew)} / ${fmt(r.floor)} | ${(r.rtc / r.lkrtc).toFixed(1)}x | ${vsFloor} | ${ratio} | ${pooled} |`
    }),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  await dispose()
}

void main()
