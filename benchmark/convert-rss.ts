// Memory under convert(): RGBA -> I420 in a loop at 720p then 1080p, printing RSS, V8's
// external memory and the frame pool's figures each second. Each result is dropped at once.
//   node --import tsx benchmark/convert-rss.ts            (the event loop turns between calls)
//   node --import tsx benchmark/convert-rss.ts --sync     (batches of 100 calls without a turn)
//   RSS_SECONDS=20 (per size) by default.
import { framePoolStats, VideoBufferType as T, VideoFrame } from '../index.js'

const SECONDS = Number(process.env.RSS_SECONDS ?? 20)
const BATCH = process.argv.includes('--sync') ? 100 : 1
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
const mb = (n: number) => (n / 1e6).toFixed(0)

async function main() {
  for (const [label, w, h] of [
    ['720p', 1280, 720],
    ['1080p', 1920, 1080],
  ] as const) {
    const src = new VideoFrame(w, h, T.RGBA, new Uint8Array(w * h * 4).fill(90))
    const start = performance.now()
    let calls = 0
    let next = 1
    let peak = 0
    while (performance.now() - start < SECONDS * 1000) {
      for (let i = 0; i < BATCH; i++) src.convert(T.I420)
      calls += BATCH
      await turn()
      const rss = process.memoryUsage.rss()
      peak = Math.max(peak, rss)
      if (performance.now() - start >= next * 1000) {
        const m = process.memoryUsage()
        const p = framePoolStats()
        console.log(
          `${label} ${String(next).padStart(2)} s: rss ${mb(m.rss)} MB, external ${mb(m.external)} MB, pool ${p.buffers} buffers ${mb(p.bytes)} MB (reused ${p.reused}, allocated ${p.allocated}), lent ${mb(p.lent)} MB, ${calls} calls`,
        )
        next++
      }
    }
    console.log(`${label}: peak rss ${mb(peak)} MB over ${calls} calls`)
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
