// Builds a colourful test picture, sends it through the formats a video pipeline uses
// (RGBA -> I420 -> NV12 -> RGBA) and writes out/test-pattern.png.
//   node --import tsx examples/convert-to-png.ts
import { mkdirSync, writeFileSync } from 'node:fs'

import { PNG } from 'pngjs'

import { VideoBufferType, VideoFrame } from '../index.js'

const width = 640
const height = 360

/** Colour bars over the top half, a hue/brightness gradient below, and a soft white disc. */
function testPattern(w: number, h: number): Uint8Array {
  const bars = [
    [255, 255, 255],
    [255, 255, 0],
    [0, 255, 255],
    [0, 255, 0],
    [255, 0, 255],
    [255, 0, 0],
    [0, 0, 255],
    [0, 0, 0],
  ]
  const data = new Uint8Array(w * h * 4)
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let rgb: number[]
      if (y < h / 2) {
        rgb = bars[Math.floor((x * bars.length) / w)]
      } else {
        const hue = (x / w) * 6
        const light = 1 - (y - h / 2) / (h / 2)
        const c = (k: number) => 255 * light * Math.min(1, Math.max(0, Math.abs(((hue + k) % 6) - 3) - 1))
        rgb = [c(0), c(4), c(2)]
      }
      const d = Math.hypot(x - w * 0.75, y - h * 0.7) - h * 0.12
      const k = Math.min(1, Math.max(0, 0.5 - d / 2))
      rgb = rgb.map((v) => v + k * (255 - v))
      data.set([...rgb.map(Math.round), 255], (y * w + x) * 4)
    }
  }
  return data
}

const rgba = new VideoFrame(width, height, VideoBufferType.RGBA, testPattern(width, height))
const i420 = rgba.convert(VideoBufferType.I420)
const nv12 = i420.convert(VideoBufferType.NV12)
const back = nv12.convert(VideoBufferType.RGBA)

let sum = 0
for (let i = 0; i < rgba.data.length; i++) {
  if (i % 4 !== 3) sum += (rgba.data[i] - back.data[i]) ** 2
}
const psnr = 10 * Math.log10((255 * 255) / (sum / ((rgba.data.length * 3) / 4)))

const png = new PNG({ width, height })
png.data = Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength)
mkdirSync('out', { recursive: true })
writeFileSync('out/test-pattern.png', PNG.sync.write(png))

console.log(`test pattern ${width}x${height}: RGBA (${rgba.data.length} bytes)`)
console.log(`  -> I420 (${i420.data.length} bytes, planes ${i420.planes.map((p) => p.length).join(' + ')})`)
console.log(`  -> NV12 (${nv12.data.length} bytes, planes ${nv12.planes.map((p) => p.length).join(' + ')})`)
console.log(`  -> RGBA (${back.data.length} bytes), PSNR against the original ${psnr.toFixed(1)} dB`)
console.log('wrote out/test-pattern.png')
