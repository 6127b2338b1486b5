// The network lab: lkrtc beside @livekit/rtc-node in the same run, under named network
// profiles (caps, loss, steps, UDP blocked), each participant in a network namespace of its own
// (scripts/netlab.sh: a server namespace with livekit-server, a publisher and a subscriber
// namespace, joined by veth pairs shaped per direction). Needs root, iproute2 and nftables.
// Prints a markdown table.
//   npm run bench:net
//   NET_PROFILES=1m,step NET_STACKS=lkrtc NET_SECONDS=30 npm run bench:net
// NET_SUB_STACK=rtc-node has rtc-node subscribe whatever publishes.
// NET_LAB_ID=<prefix> starts the namespaces' names (default netlab); NET_LOG_DIR=<dir> keeps each
// participant's stderr and each run's frames there.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { AccessToken } from 'livekit-server-sdk'

import { freezes, percentile } from './measure.js'
import {
  type Action,
  cap,
  everyDirection,
  Lab,
  labId,
  labUnavailable,
  loss,
  type PubResult,
  rate,
  type SubResult,
  udp,
  URLS,
} from './netlab.js'

const SECONDS = Number(process.env.NET_SECONDS ?? 20)
const WARMUP = 3
const STACKS = (process.env.NET_STACKS ?? 'lkrtc,rtc-node').split(',')
/** NET_SUB_STACK: the subscribers' stack, whatever publishes (default: the publisher's). */
const SUB_STACK = process.env.NET_SUB_STACK
const HEIGHT = Number(process.env.NET_HEIGHT ?? 720)
const WIDTH = Math.round((HEIGHT * 16) / 9)
const FPS = 30
/** A frame later than this (ms) is a bad frame when judging recovery. */
const LATE_MS = 250

interface Profile {
  key: string
  name: string
  /** Applied before anyone joins. */
  setup: Action[]
  /** Applied at `atS` seconds after the first frame is captured. */
  steps?: { atS: number; actions: Action[] }[]
  /** The publisher's uplink cap in the measured window, kbit/s, for "sent against the cap". */
  uplinkKbit?: string
  /** When the last change happens (s after the first capture): recovery is timed from it. */
  recoverFromS?: number
  /** A second subscriber (in its own namespace, `sub2`, unshaped), and simulcast publishing. */
  twoSubscribers?: boolean
}

const PROFILES: Profile[] = [
  { key: 'clean', name: 'no limit', setup: [] },
  { key: '4m', name: '4 Mbit/s', setup: cap(4000), uplinkKbit: '4000' },
  { key: '2m', name: '2 Mbit/s', setup: cap(2000), uplinkKbit: '2000' },
  { key: '1m', name: '1 Mbit/s', setup: cap(1000), uplinkKbit: '1000' },
  {
    key: 'loss',
    name: '2 Mbit/s, 3% loss',
    setup: [...cap(2000), ...everyDirection((l, d) => loss(l, d, 3))],
    uplinkKbit: '2000',
  },
  {
    key: 'step',
    name: '4 -> 0.8 -> 4 Mbit/s',
    setup: cap(4000),
    steps: [
      { atS: WARMUP + 5, actions: cap(800) },
      { atS: WARMUP + 12, actions: cap(4000) },
    ],
    uplinkKbit: '4000/800',
    recoverFromS: WARMUP + 12,
  },
  {
    key: 'updown',
    name: 'uplink 1 Mbit/s, then downlink 1 Mbit/s',
    setup: [],
    steps: [
      { atS: WARMUP + 2, actions: [rate('pub', 'up', 1000)] },
      { atS: WARMUP + 8, actions: [rate('pub', 'up', 0), rate('sub', 'down', 1000)] },
      { atS: WARMUP + 14, actions: [rate('sub', 'down', 0)] },
    ],
    uplinkKbit: '1000, then none',
    recoverFromS: WARMUP + 14,
  },
  { key: 'noudp', name: 'UDP blocked', setup: [udp(true)] },
  {
    key: '2subs',
    name: 'simulcast, one subscriber at 500 kbit/s down, one clean',
    setup: [rate('sub', 'down', 500)],
    twoSubscribers: true,
  },
  {
    key: 'udpmid',
    name: 'UDP blocked mid-call',
    setup: [],
    steps: [{ atS: WARMUP + 3, actions: [udp(true)] }],
    recoverFromS: WARMUP + 3,
  },
]

function token(identity: string, room: string) {
  const at = new AccessToken('devkey', 'secret', { identity })
  at.addGrant({ roomJoin: true, room, canPublish: true, canSubscribe: true })
  return at.toJwt()
}

interface Row {
  profile: string
  stack: string
  delivered: string
  freezes: string
  p50: string
  p95: string
  sent: string
  fullSize: string
  recovery: string
  firstFrame: string
}

function emptyRow(profile: Profile, stack: string): Row {
  return {
    profile: profile.name,
    stack,
    delivered: '-',
    freezes: '-',
    p50: '-',
    p95: '-',
    sent: '-',
    fullSize: '-',
    recovery: '-',
    firstFrame: '-',
  }
}

/** One subscriber's figures over the measured window. */
function measureSub(row: Row, profile: Profile, pub: PubResult, got: SubResult): void {
  const windowStart = pub.startedAtMs + pub.warmup * pub.intervalMs
  const windowEnd = pub.startedAtMs + pub.sent * pub.intervalMs
  // The window's frames: captured after the warm-up, each counted once.
  const seen = new Set<number>()
  const frames: { arrival: number; latency: number; height: number }[] = []
  got.numbers.forEach((n, i) => {
    if (n < pub.warmup || n >= pub.sent || seen.has(n)) return
    seen.add(n)
    frames.push({ arrival: got.arrivals[i], latency: got.latencies[i], height: got.heights[i] })
  })
  const lat = frames.map((f) => f.latency).sort((a, b) => a - b)
  const median = lat.length ? percentile(lat, 50) : 0
  const f = freezes(
    frames.map((x) => x.arrival),
    windowStart + median,
    windowEnd + median,
    pub.intervalMs,
  )
  row.delivered = `${frames.length} / ${pub.sent - pub.warmup}`
  row.freezes = `${f.count}, ${(f.totalMs / 1000).toFixed(1)} s`
  row.p50 = lat.length ? percentile(lat, 50).toFixed(0) : '-'
  row.p95 = lat.length ? percentile(lat, 95).toFixed(0) : '-'
  row.fullSize = frames.length
    ? `${Math.round((100 * frames.filter((x) => x.height === HEIGHT).length) / frames.length)}%`
    : '-'
  if (profile.twoSubscribers && frames.length) {
    // Which layers it got: the share of frames per height.
    const heights = new Map<number, number>()
    for (const x of frames) heights.set(x.height, (heights.get(x.height) ?? 0) + 1)
    row.fullSize += ` (${[...heights.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([h, n]) => `${h}p ${Math.round((100 * n) / frames.length)}%`)
      .join(', ')})`
  }
  if (profile.recoverFromS !== undefined) {
    const lifted = pub.startedAtMs + profile.recoverFromS * 1000
    const after = frames.filter((x) => x.arrival >= lifted)
    const limit = Math.max(3 * pub.intervalMs, pub.intervalMs + 150)
    // The last bad frame after the lift: late, or the end of a freeze.
    let lastBad = lifted
    let prev = lifted
    for (const x of after) {
      if (x.latency > LATE_MS || x.arrival - prev > limit) lastBad = x.arrival
      prev = x.arrival
    }
    const tail = windowEnd + median - prev
    row.recovery = after.length === 0 || tail > limit ? 'not recovered' : `${((lastBad - lifted) / 1000).toFixed(1)} s`
  }
  const first = got.arrivals.length ? Math.min(...got.arrivals) : NaN
  row.firstFrame = Number.isFinite(first) ? `${((first - pub.connectAtMs) / 1000).toFixed(1)} s` : '-'
}

/** One stack under one profile: a row per subscriber. */
async function runOne(lab: Lab, profile: Profile, stack: string): Promise<Row[]> {
  const two = profile.twoSubscribers === true
  const rows = two
    ? [emptyRow(profile, `${stack}, thin subscriber`), emptyRow(profile, `${stack}, clean subscriber`)]
    : [emptyRow(profile, stack)]
  if (SUB_STACK) for (const row of rows) row.stack = row.stack.replace(stack, `${stack} -> ${SUB_STACK}`)
  lab.clear()
  for (const a of profile.setup) lab.apply(a)
  const room = `net-${profile.key}-${stack}-${Date.now()}`
  const epochMs = Date.now()
  const common = {
    width: WIDTH,
    height: HEIGHT,
    fps: FPS,
    seconds: SECONDS,
    warmupSeconds: WARMUP,
    epochMs,
    codec: 'vp8',
  }
  const timeoutMs = (WARMUP + SECONDS + 45) * 1000
  const timers: NodeJS.Timeout[] = []
  let uplink0 = 0
  let uplink1 = 0
  const subs = (two ? (['sub', 'sub2'] as const) : (['sub'] as const)).map(async (where, i) =>
    lab.peer<SubResult>(
      where,
      'subscribe',
      SUB_STACK ?? stack,
      { ...common, url: URLS[where], token: await token(`sub${i}`, room) },
      timeoutMs,
    ),
  )
  for (const sub of subs) sub.catch(() => {})
  await new Promise((r) => setTimeout(r, 1500))
  try {
    const pub = await lab.peer<PubResult>(
      'pub',
      'publish',
      stack,
      { ...common, url: URLS.pub, token: await token('pub', room), simulcast: two },
      timeoutMs,
      (line) => {
        if (line !== 'capturing') return
        for (const step of profile.steps ?? [])
          timers.push(setTimeout(() => lab.applyAll(step.actions), step.atS * 1000))
        timers.push(setTimeout(() => (uplink0 = lab.sentBytes('pub', 'up')), WARMUP * 1000))
        timers.push(setTimeout(() => (uplink1 = lab.sentBytes('pub', 'up')), (WARMUP + SECONDS) * 1000))
      },
    )
    const results = await Promise.all(subs)
    if (process.env.NET_LOG_DIR) {
      const file = join(process.env.NET_LOG_DIR, `${profile.key}-${stack}-${Date.now()}.json`)
      writeFileSync(file, JSON.stringify({ pub, subs: results }))
    }
    const kbps = ((uplink1 - uplink0) * 8) / SECONDS / 1000
    results.forEach((got, i) => {
      measureSub(rows[i], profile, pub, got)
      rows[i].sent = `${kbps.toFixed(0)}${profile.uplinkKbit ? ` / ${profile.uplinkKbit}` : ''}`
    })
  } catch (e) {
    for (const row of rows) row.delivered = `failed: ${(e as Error).message}`
    await Promise.allSettled(subs)
  } finally {
    timers.forEach(clearTimeout)
  }
  return rows
}

async function main() {
  const wanted = process.env.NET_PROFILES?.split(',')
  const profiles = PROFILES.filter((p) => !wanted || wanted.includes(p.key))
  const why = labUnavailable()
  if (why) throw new Error(`bench:net cannot run: ${why}`)
  const lab = new Lab(labId('b'))
  await lab.up()
  const rows: Row[] = []
  try {
    for (const profile of profiles) {
      for (const stack of STACKS) {
        for (const row of await runOne(lab, profile, stack)) {
          rows.push(row)
          console.error(JSON.stringify(row))
        }
      }
    }
  } finally {
    await lab.down()
  }
  console.log(
    `${WIDTH}x${HEIGHT} at ${FPS} fps VP8 (max 2.5 Mbit/s), ${SECONDS} s after a ${WARMUP} s warm-up, ${new Date().toISOString().slice(0, 10)}`,
  )
  console.log('')
  console.log(
    '| profile | stack | frames delivered / sent | freezes, total | latency p50 ms | p95 ms | uplink kbit/s / cap | at full size | recovery after the last step | first frame after connect |',
  )
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of rows) {
    console.log(
      `| ${r.profile} | ${r.stack} | ${r.delivered} | ${r.freezes} | ${r.p50} | ${r.p95} | ${r.sent} | ${r.fullSize} | ${r.recovery} | ${r.firstFrame} |`,
    )
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
