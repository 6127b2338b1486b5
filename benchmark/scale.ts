// Many streams per process, lkrtc beside @livekit/rtc-node in the same run against one local
// livekit-server: one process publishing N VP8 tracks (one participant with N tracks) and one
// process receiving all of them (benchmark/scale-peer.ts), for N = 1, 4, 9, 16 at 640x360 and
// N = 4 at 1280x720, 30 fps; then a bot farm: R rooms in one process, each with one participant
// publishing a 640x360 track and one receiving it. Per process: CPU per stream (process CPU
// time over the measured window, all threads, in % of one core, divided by the streams), RSS per
// stream (above the process's RSS after loading the SDK, before joining); frames of the window
// delivered (decoded by the receiver) / sent (given to the publisher's SDK), the share at full
// size, capture -> decoded latency (stamped in the pixels, measure.ts). A stack keeps up at a
// point while at least 90% of the frames are delivered. Prints markdown tables.
//   npm run bench:scale                      (15 s measured per point after 8 s of warm-up)
//   npm run bench:scale -- --quick           (a smoke run: N = 1, 4 and 2 rooms, 3 s windows)
//   npm run bench:scale -- --seconds=30 --warmup=10 --n=1,4 --n720=4 --rooms=10 --stacks=lkrtc
// `--stacks=lkrtc>rtc-node,rtc-node>lkrtc`: one stack publishes, the other receives, to tell
// which side stops keeping up. `--kbps`: the max bitrate of each 640x360 track (1280x720: 2500).
import { spawn } from 'node:child_process'
import { loadavg } from 'node:os'
import { dirname, join } from 'node:path'

import { AccessToken } from 'livekit-server-sdk'

import type { PeerOptions, PeerResult } from './scale-peer.js'

const HERE = dirname(__filename)
const STACKS = ['lkrtc', 'rtc-node'] as const
type StackName = (typeof STACKS)[number]

function args() {
  const flags = new Map<string, string>()
  for (const a of process.argv.slice(2)) {
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a)
    if (!m) usage(`unknown argument ${a}`)
    flags.set(m[1], m[2] ?? 'true')
  }
  const quick = flags.get('quick') === 'true'
  const known = ['quick', 'seconds', 'warmup', 'n', 'n720', 'rooms', 'stacks', 'kbps']
  for (const k of flags.keys()) if (!known.includes(k)) usage(`unknown option --${k}`)
  const number = (name: string, fallback: number, min: number) => {
    const v = Number(flags.get(name) ?? fallback)
    if (!Number.isFinite(v) || v < min) usage(`--${name} must be a number of at least ${min}`)
    return v
  }
  const list = (name: string, fallback: string) =>
    (flags.get(name) ?? fallback)
      .split(',')
      .filter(Boolean)
      .map((x) => {
        const v = Number(x)
        if (!Number.isInteger(v) || v < 1) usage(`--${name} takes whole numbers of tracks, got ${x}`)
        return v
      })
  // `a>b`: stack a publishes, stack b receives (which side stops keeping up).
  const stacks = (flags.get('stacks') ?? STACKS.join(',')).split(',')
  for (const s of stacks) {
    if (!s.split('>').every((x) => STACKS.includes(x as StackName)) || s.split('>').length > 2) {
      usage(`--stacks takes lkrtc, rtc-node, lkrtc>rtc-node and rtc-node>lkrtc, got ${s}`)
    }
  }
  return {
    quick,
    seconds: number('seconds', quick ? 3 : 15, 1),
    warmup: number('warmup', quick ? 3 : 8, 1),
    kbps: number('kbps', 800, 1),
    n360: list('n', quick ? '1,4' : '1,4,9,16'),
    n720: list('n720', quick ? '' : '4'),
    rooms: number('rooms', quick ? 2 : 10, 0),
    stacks,
  }
}

function usage(problem: string): never {
  console.error(`bench:scale: ${problem}
usage: npm run bench:scale -- [--quick] [--seconds=15] [--warmup=8] [--n=1,4,9,16] [--n720=4] [--rooms=10] [--stacks=lkrtc,rtc-node,lkrtc>rtc-node] [--kbps=800]`)
  process.exit(2)
}

const opts = args()

async function token(server: { apiKey: string; apiSecret: string }, identity: string, room: string) {
  const at = new AccessToken(server.apiKey, server.apiSecret, { identity })
  at.addGrant({ roomJoin: true, room, canPublish: true, canSubscribe: true })
  return at.toJwt()
}

/** A running scale-peer: resolves `ready` when it has joined, `result` with its last line. */
function peer(name: string, options: PeerOptions) {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(HERE, 'scale-peer.ts'), JSON.stringify(options)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  )
  let out = ''
  let onReady: () => void = () => {}
  const ready = new Promise<void>((resolve) => (onReady = resolve))
  child.stdout.on('data', (d) => {
    out += d
    if (/^ready$/m.test(out)) onReady()
  })
  const result = new Promise<PeerResult>((resolve, reject) => {
    child.on('exit', (code, signal) => {
      const last = out.trim().split('\n').pop() ?? ''
      if (code !== 0) return reject(new Error(`${name} exited with ${code ?? signal}: ${out.slice(-300)}`))
      try {
        resolve(JSON.parse(last))
      } catch {
        reject(new Error(`${name}: no result in ${out.slice(-300)}`))
      }
    })
  })
  result.catch(() => {}) // observed by the caller; not an unhandled rejection meanwhile
  return {
    ready,
    result,
    start(at: number) {
      child.stdin.write(`start ${at}\n`)
    },
    kill() {
      child.kill('SIGKILL')
    },
  }
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} took over ${ms / 1000} s`)), ms).unref(),
    ),
  ])

/** Runs the peers (their options keyed by name) on one frame clock; their results by name. */
async function run(peers: Record<string, PeerOptions>): Promise<Record<string, PeerResult>> {
  const running = Object.entries(peers).map(([name, o]) => [name, peer(name, o)] as const)
  try {
    await withTimeout(Promise.all(running.map(([, p]) => p.ready)), 90_000, 'joining and publishing')
    const at = performance.timeOrigin + performance.now() + 1000
    for (const [, p] of running) p.start(at)
    const budget = (opts.warmup + opts.seconds + 30) * 1000
    const results = await withTimeout(Promise.all(running.map(([, p]) => p.result)), budget, 'the measured run')
    // SCALE_DEBUG=1: each process's own figures (RSS at the window's edges, counts).
    if (process.env.SCALE_DEBUG) console.error(JSON.stringify(results))
    return Object.fromEntries(running.map(([name], i) => [name, results[i]]))
  } finally {
    for (const [, p] of running) p.kill()
  }
}

const pct = (x: number) => `${x.toFixed(1)}%`
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–')
const cpuPerStream = (r: PeerResult, streams: number) => pct((100 * r.cpuMs) / r.wallMs / streams)
const rssPerStream = (r: PeerResult, streams: number) => mb((r.rssEnd - r.rssBaseline) / streams)

/** The columns about the frames, from the publisher's and the receiver's results. */
function delivery(pub: PeerResult, sub: PeerResult, streams: number) {
  const share = sub.delivered / Math.max(1, pub.captured)
  const clockKept = pub.captured >= 0.9 * pub.nominal
  const keepsUp = share >= 0.9 && clockKept && sub.tracksSubscribed === streams
  const encoded =
    pub.encoded === undefined
      ? '–'
      : `${pub.encoded} / ${pub.captured}${pub.skipped ? ` (${pub.skipped} skipped)` : ''}`
  return {
    cells: [
      `${sub.delivered} / ${pub.captured} (${Math.round(100 * share)}%)${clockKept ? '' : ` of ${pub.nominal} due`}`,
      `${Math.round((100 * sub.fullSize) / Math.max(1, sub.delivered))}% (${Math.round(sub.meanHeight)}p)`,
      ms(sub.p50),
      ms(sub.p95),
      encoded,
      keepsUp ? 'yes' : sub.tracksSubscribed < streams ? `no (${sub.tracksSubscribed} tracks)` : 'no',
    ],
    keepsUp,
  }
}

async function main() {
  // @ts-expect-error plain ESM helper without types
  const { start } = await import('../scripts/livekit-server.mjs')
  const server = await start()
  const epochMs = Date.now()
  const base = {
    url: server.url,
    fps: 30,
    warmupSeconds: opts.warmup,
    seconds: opts.seconds,
    epochMs,
  }
  const sizes = {
    360: { width: 640, height: 360, maxBitrate: opts.kbps * 1000 },
    720: { width: 1280, height: 720, maxBitrate: 2_500_000 },
  }
  const points = [...opts.n360.map((n) => [n, 360] as const), ...opts.n720.map((n) => [n, 720] as const)]
  const rows: string[] = []
  const farmRows: string[] = []
  const keeps = new Map<string, string[]>()
  const load = () => loadavg()[0].toFixed(1)
  console.error(
    `bench:scale: ${opts.warmup} s warm-up + ${opts.seconds} s measured per point, stacks ${opts.stacks.join(', ')}, load ${load()}`,
  )
  try {
    for (const [n, height] of points) {
      for (const stack of opts.stacks) {
        const [pubStack, subStack = pubStack] = stack.split('>') as StackName[]
        const room = `scale-${pubStack}-${subStack}-${n}x${height}-${Date.now()}`
        const size = sizes[height]
        const label = `| ${stack} | ${n} x ${size.width}x${size.height} |`
        try {
          const r = await run({
            subscriber: {
              ...base,
              ...size,
              stack: subStack,
              publish: [],
              subscribe: [await token(server, 'sub', room)],
            },
            publisher: {
              ...base,
              ...size,
              stack: pubStack,
              publish: [{ token: await token(server, 'pub', room), tracks: n }],
              subscribe: [],
            },
          })
          const d = delivery(r.publisher, r.subscriber, n)
          rows.push(
            `${label} ${cpuPerStream(r.publisher, n)} | ${rssPerStream(r.publisher, n)} | ${cpuPerStream(r.subscriber, n)} | ${rssPerStream(r.subscriber, n)} | ${d.cells.join(' | ')} | ${load()} |`,
          )
          if (d.keepsUp) keeps.set(stack, [...(keeps.get(stack) ?? []), `${n}x${height}p`])
        } catch (e) {
          rows.push(`${label} failed: ${(e as Error).message.split('\n')[0]} |||||||||||`)
        }
        console.error(rows[rows.length - 1])
      }
    }
    if (opts.rooms > 0) {
      for (const stack of opts.stacks.filter((s): s is StackName => !s.includes('>'))) {
        const size = sizes[360]
        const label = `| ${stack} | ${opts.rooms} rooms x ${size.width}x${size.height} |`
        try {
          const rooms = Array.from({ length: opts.rooms }, (_, i) => `farm-${stack}-${i}-${Date.now()}`)
          const r = await run({
            farm: {
              ...base,
              ...size,
              stack,
              publish: await Promise.all(
                rooms.map(async (room) => ({ token: await token(server, 'pub', room), tracks: 1 })),
              ),
              subscribe: await Promise.all(rooms.map((room) => token(server, 'sub', room))),
            },
          })
          const d = delivery(r.farm, r.farm, opts.rooms)
          farmRows.push(
            `${label} ${cpuPerStream(r.farm, opts.rooms)} | ${rssPerStream(r.farm, opts.rooms)} | ${d.cells.join(' | ')} | ${load()} |`,
          )
        } catch (e) {
          farmRows.push(`${label} failed: ${(e as Error).message.split('\n')[0]} |||||||||`)
        }
        console.error(farmRows[farmRows.length - 1])
      }
    }
  } finally {
    await server.stop()
  }
  console.log(
    '| stack | tracks | publisher CPU / stream | publisher RSS / stream | subscriber CPU / stream | subscriber RSS / stream | frames delivered / sent | at full size (mean height) | latency p50 ms | latency p95 ms | encoded / captured | keeps up | load |',
  )
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|')
  for (const row of rows) console.log(row)
  if (farmRows.length > 0) {
    console.log()
    console.log(
      '| stack | bot farm (one process) | CPU / room | RSS / room | frames delivered / sent | at full size (mean height) | latency p50 ms | latency p95 ms | encoded / captured | keeps up | load |',
    )
    console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|')
    for (const row of farmRows) console.log(row)
  }
  console.log()
  for (const stack of opts.stacks) console.log(`${stack} keeps up at: ${(keeps.get(stack) ?? []).join(', ') || 'none'}`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
