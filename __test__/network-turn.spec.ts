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

import { direct, Lab, labUnavailable } from '../benchmark/netlab.js'
import { type Call, labCall } from './helpers/lab-call.js'

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

/** lkrtc publishes 640x360 at 30 fps to an lkrtc subscriber for `seconds`, both with the
 * default ICE policy; `blockAtS` blocks the direct paths that many seconds after the first
 * capture (0: before anyone joins). */
function call(identity: string, seconds: number, blockAtS: number): Promise<Call> {
  if (blockAtS === 0) lab.apply(direct(true))
  const steps = blockAtS > 0 ? [{ atS: blockAtS, actions: [direct(true)] }] : []
  return labCall(lab, seconds, { room: `turn-${identity}-${process.pid}`, identityPrefix: `${identity}-`, steps })
}

serial('a room that can reach only the TURN server streams through it', async (t) => {
  lab.apply(direct(false))
  const before = lab.dropped()
  const c = await call('start', 10, 0)
  // The clients did try the direct paths, and the block held.
  t.true(lab.dropped() > before, 'the block dropped direct packets')
  const all = c.arrivedSince(0)
  t.true(all.length >= c.pub.sent / 2, `${all.length} of ${c.pub.sent} frames arrived`)
  // The last seconds too: the relayed path carries the call, not a burst at the start.
  const late = c.arrivedSince(6)
  t.true(late.length >= c.sentSince(6) / 2, `${late.length} of the last ${c.sentSince(6)} frames arrived`)
  const latencies = [...c.sub.latencies].sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]
  t.log(
    `${all.length} of ${c.pub.sent} frames arrived, ${late.length} of the last ${c.sentSince(6)}; latency p50 ${pct(50)} ms, p95 ${pct(95)} ms`,
  )
  // The server's view: both connections' selected pairs end at our relayed candidates.
  t.deepEqual([...new Set(loggedConnectionTypes('start-pub'))], ['turn'])
  t.deepEqual([...new Set(loggedConnectionTypes('start-sub'))], ['turn'])
})

serial('a call whose direct paths are blocked midway carries on through the TURN server', async (t) => {
  lab.apply(direct(false))
  const c = await call('midway', 40, 4)
  const blockedFrom = c.pub.sent - c.sentSince(4)
  t.true(c.arrivedSince(0).filter((n) => n < blockedFrom).length > 60, 'frames flowed before the block')
  // Direct first (the relayed pairs rank last), so the server saw a UDP connection at first.
  t.true(loggedConnectionTypes('midway-sub').includes('udp'), loggedConnectionTypes('midway-sub').join(','))
  // The move to the relay takes a resume (an ICE restart, on both connections); by the last
  // 10 s video must flow again.
  const late = c.arrivedSince(30)
  t.true(late.length >= c.sentSince(30) / 2, `${late.length} of the last ${c.sentSince(30)} frames arrived`)
  // The outage: the longest wait between two frames.
  const arrivals = [...c.sub.arrivals].sort((a, b) => a - b)
  const gapS = Math.max(...arrivals.slice(1).map((at, i) => at - arrivals[i])) / 1000
  t.log(
    `the longest wait between frames: ${gapS.toFixed(1)} s; ${late.length} of the last ${c.sentSince(30)} frames arrived`,
  )
})
