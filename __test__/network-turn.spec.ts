/**
 * TURN in the network lab (scripts/netlab.sh): the clients' direct media paths to
 * livekit-server are blocked (UDP to its media port, TCP to its ICE-TCP port) while its embedded
 * TURN server's UDP port passes. lkrtc, with the default ICE policy, finds that only its relayed
 * candidate works and streams through the TURN server. Each participant is a process of
 * benchmark/e2e-peer.ts, which stamps a frame number into every picture and reads it back from
 * the decoded one. Needs root, ip, tc and nft; skips without.
 */
import { readFileSync } from 'node:fs'

import test from 'ava'

import { createToken } from '../lib/index.js'
import { direct, Lab, labUnavailable, type PubResult, type SubResult, URLS } from '../benchmark/netlab.js'

const unavailable = labUnavailable()
if (unavailable) console.warn(`network TURN tests skipped: ${unavailable}`)
const serial = unavailable ? test.serial.skip : test.serial

const lab = new Lab(`turn${process.pid}`)

test.before(async () => {
  if (!unavailable) await lab.up({ turn: true })
})

test.after.always(async () => {
  if (!unavailable) await lab.down()
})

/** The connection types ("turn", "udp", "tcp") the server logged for `identity` once its peer
 * connections were up. */
function loggedConnectionTypes(identity: string): string[] {
  const types: string[] = []
  for (const line of readFileSync(lab.serverLog!, 'utf8').split('\n')) {
    if (!line.includes(`"${identity}"`)) continue
    const m = /"connectionType": ?"([a-z]+)"/.exec(line)
    if (m) types.push(m[1])
  }
  return types
}

serial('a room that can reach only the TURN server streams through it', async (t) => {
  lab.apply(direct(true))
  const room = `turn-${process.pid}`
  const token = (identity: string) => createToken({ apiKey: 'devkey', apiSecret: 'secret', identity, room })
  const seconds = 10
  const options = { width: 640, height: 360, fps: 30, seconds, warmupSeconds: 0, epochMs: Date.now(), codec: 'vp8' }
  const timeoutMs = (seconds + 40) * 1000
  const sub = lab.peer<SubResult>(
    'sub',
    'subscribe',
    'lkrtc',
    { ...options, url: URLS.sub, token: await token('sub') },
    timeoutMs,
  )
  sub.catch(() => {})
  await new Promise((r) => setTimeout(r, 1000))
  const pub = await lab.peer<PubResult>(
    'pub',
    'publish',
    'lkrtc',
    { ...options, url: URLS.pub, token: await token('pub') },
    timeoutMs,
  )
  const got = await sub
  // The clients did try the direct paths, and the block held.
  t.true(lab.dropped() > 0, 'the block dropped direct packets')
  const arrived = new Set(got.numbers.filter((n) => n < pub.sent))
  t.true(arrived.size >= pub.sent / 2, `${arrived.size} of ${pub.sent} frames arrived`)
  // The last seconds too: the relayed path carries the call, not a burst at the start.
  const lastFrom = pub.sent - Math.round(4000 / pub.intervalMs)
  const late = [...arrived].filter((n) => n >= lastFrom).length
  t.true(late >= (pub.sent - lastFrom) / 2, `${late} of the last ${pub.sent - lastFrom} frames arrived`)
  // The server's view: both connections' selected pairs end at our relayed candidates.
  t.log(`${arrived.size} of ${pub.sent} frames arrived, ${late} of the last ${pub.sent - lastFrom}`)
  t.deepEqual([...new Set(loggedConnectionTypes('pub'))], ['turn'])
  t.deepEqual([...new Set(loggedConnectionTypes('sub'))], ['turn'])
})
