/**
 * One call in the network lab (benchmark/netlab.ts): lkrtc publishes a stamped picture to an
 * lkrtc subscriber, each a process of benchmark/e2e-peer.ts in its own namespace, and the
 * frames that arrived are counted by their stamped numbers.
 */
import { type Action, type Lab, type PubResult, type SubResult, URLS } from '../../benchmark/netlab.js'
import { createToken } from '../../lib/index.js'

export interface Call {
  pub: PubResult
  sub: SubResult
  /** Numbers of the frames captured at or after `sinceS` seconds that arrived, once each. */
  arrivedSince(sinceS: number): number[]
  /** How many frames were captured at or after `sinceS` seconds. */
  sentSince(sinceS: number): number
}

export interface CallOptions {
  room: string
  /** The participants are `${identityPrefix}sub` and `${identityPrefix}pub`. */
  identityPrefix?: string
  /** Applied at their second after the first capture. */
  steps?: { atS: number; actions: Action[] }[]
  width?: number
  height?: number
  simulcast?: boolean
}

/** lkrtc publishes 640x360 at 30 fps (or `width` x `height`, in simulcast layers when
 * `simulcast`) to an lkrtc subscriber for `seconds`. */
export async function labCall(lab: Lab, seconds: number, opts: CallOptions): Promise<Call> {
  const { room, identityPrefix = '', steps = [], width = 640, height = 360, simulcast = false } = opts
  const token = (who: string) =>
    createToken({ apiKey: 'devkey', apiSecret: 'secret', identity: `${identityPrefix}${who}`, room })
  const options = { width, height, fps: 30, seconds, warmupSeconds: 0, epochMs: Date.now(), codec: 'vp8', simulcast }
  const timeoutMs = (seconds + 40) * 1000
  const timers: NodeJS.Timeout[] = []
  const sub = lab.peer<SubResult>(
    'sub',
    'subscribe',
    'lkrtc',
    { ...options, url: URLS.sub, token: await token('sub') },
    timeoutMs,
  )
  sub.catch(() => {})
  await new Promise((r) => setTimeout(r, 1000))
  try {
    const pub = await lab.peer<PubResult>(
      'pub',
      'publish',
      'lkrtc',
      { ...options, url: URLS.pub, token: await token('pub') },
      timeoutMs,
      (line) => {
        if (line !== 'capturing') return
        for (const step of steps) timers.push(setTimeout(() => lab.applyAll(step.actions), step.atS * 1000))
      },
    )
    const got = await sub
    const firstOf = (s: number) => Math.round((s * 1000) / pub.intervalMs)
    return {
      pub,
      sub: got,
      arrivedSince: (s) => [...new Set(got.numbers.filter((n) => n >= firstOf(s) && n < pub.sent))],
      sentSince: (s) => pub.sent - firstOf(s),
    }
  } finally {
    timers.forEach(clearTimeout)
  }
}
