// End-to-end figures, lkrtc beside @livekit/rtc-node in the same run against one local
// livekit-server: capture -> decoded-frame latency (timestamps embedded in pixels), CPU% of the
// publishing and of the subscribing process, frames sent and delivered. Each participant is its
// own process (benchmark/e2e-peer.ts) so CPU figures are per participant. Prints a markdown table.
//   npm run bench:e2e                    (720p30 and 1080p30, VP8, 10 s each)
//   E2E_SECONDS=30 E2E_SIZES=720 npm run bench:e2e
//   E2E_CODEC=vp9 npm run bench:e2e       (vp8, the default, h264, vp9, av1)
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'

import { AccessToken } from 'livekit-server-sdk'

import { missing } from './measure.js'

const HERE = dirname(__filename)
const SECONDS = Number(process.env.E2E_SECONDS ?? 10)
const SIZES = (process.env.E2E_SIZES ?? '720,1080').split(',').map(Number)
const CODECS = ['vp8', 'h264', 'vp9', 'av1'] as const
const CODEC = (process.env.E2E_CODEC ?? 'vp8') as (typeof CODECS)[number]
if (!CODECS.includes(CODEC)) {
  console.error(`E2E_CODEC must be one of ${CODECS.join(', ')}, got ${CODEC}`)
  process.exit(2)
}
const STACKS = (process.env.E2E_STACKS ?? 'lkrtc,rtc-node').split(',')

async function token(server: { apiKey: string; apiSecret: string }, identity: string, room: string) {
  const at = new AccessToken(server.apiKey, server.apiSecret, { identity })
  at.addGrant({ roomJoin: true, room, canPublish: true, canSubscribe: true })
  return at.toJwt()
}

/** What a peer prints: the publisher's `sent`, `warmup` (frames captured during the warm-up) and
 * `cpu`; the subscriber's `received`, `numbers` (of the frames that arrived), `fullSize`, `cpu`,
 * latency `p50` and `p95`. */
interface PeerResult {
  sent: number
  warmup: number
  received: number
  numbers: number[]
  fullSize: number
  cpu: number
  p50: number
  p95: number
  /** Stalls over 150 ms in the steady window, and their total length. */
  gaps: number
  gapMs: number
}

function peer(role: string, stack: string, options: object): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(HERE, 'e2e-peer.ts'), role, stack, JSON.stringify(options)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? ''
      if (code !== 0) return reject(new Error(`${role} ${stack} exited with ${code}: ${out.slice(-500)}`))
      try {
        resolve(JSON.parse(last))
      } catch {
        reject(new Error(`${role} ${stack}: no result in ${out.slice(-500)}`))
      }
    })
  })
}

async function main() {
  // @ts-expect-error plain ESM helper without types
  const { start } = await import('../scripts/livekit-server.mjs')
  const server = await start()
  const rows: string[] = []
  try {
    for (const height of SIZES) {
      const width = Math.round((height * 16) / 9)
      for (const stack of STACKS) {
        const room = `e2e-${stack.replace('>', '-to-')}-${height}-${Date.now()}`
        const common = {
          url: server.url,
          width,
          height,
          fps: 30,
          seconds: SECONDS,
          warmupSeconds: 3,
          epochMs: Date.now(),
          codec: CODEC,
        }
        // `a>b`: stack a publishes, stack b subscribes (interop figures).
        const [pubStack, subStack = pubStack] = stack.split('>')
        const sub = peer('subscribe', subStack, { ...common, token: await token(server, 'sub', room) })
        await new Promise((r) => setTimeout(r, 1500))
        const pub = await peer('publish', pubStack, { ...common, token: await token(server, 'pub', room) })
        const got = await sub
        const lost = pub.sent - got.received
        // Frames captured after the warm-up (the subscription is up by then) that never arrived.
        const lostSteady = missing(got.numbers, pub.warmup, pub.sent)
        const full = `${Math.round((100 * got.fullSize) / Math.max(1, got.received))}%`
        rows.push(
          `| ${stack} | ${height}p30 ${CODEC.toUpperCase()} | ${got.p50.toFixed(1)} | ${got.p95.toFixed(1)} | ${pub.cpu.toFixed(0)}% | ${got.cpu.toFixed(0)}% | ${got.received} / ${pub.sent} (${lost} lost) | ${lostSteady} | ${full} | ${got.gaps} (${Math.round(got.gapMs)} ms) |`,
        )
        console.error(rows[rows.length - 1])
      }
    }
  } finally {
    await server.stop()
  }
  console.log(
    '| stack | stream | latency p50 ms | latency p95 ms | publisher CPU | subscriber CPU | frames delivered / sent | lost after warm-up | at full size | stalls > 150 ms |',
  )
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const row of rows) console.log(row)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
