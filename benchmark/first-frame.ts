// Time to first frame, lkrtc beside @livekit/rtc-node in the same run against one local
// livekit-server: a publisher of each stack (its own process, benchmark/e2e-peer.ts) sends
// 960x540 VP8 at 30 fps; a subscriber of the same stack joins, waits for its first decoded
// frame and leaves, again and again. Reported: p50/p95 from the track's subscription to the
// first decoded frame, and from `connect` to it.
//   npm run bench:first-frame            (20 subscriptions per stack)
//   FIRST_FRAME_RUNS=50 npm run bench:first-frame
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'

import * as rtc from '@livekit/rtc-node'
import { AccessToken } from 'livekit-server-sdk'

import { Room, type RemoteVideoTrack, VideoStream } from '../lib/index.js'
import { percentile } from './measure.js'

const HERE = dirname(__filename)
const RUNS = Number(process.env.FIRST_FRAME_RUNS ?? 20)
const STACKS = ['lkrtc', 'rtc-node'] as const

async function token(server: { apiKey: string; apiSecret: string }, identity: string, room: string) {
  const at = new AccessToken(server.apiKey, server.apiSecret, { identity })
  at.addGrant({ roomJoin: true, room, canPublish: true, canSubscribe: true })
  return at.toJwt()
}

/** One subscription: ms from subscription to the first decoded frame, and from connect. */
async function once(stack: (typeof STACKS)[number], url: string, tok: string): Promise<[number, number]> {
  const start = performance.now()
  if (stack === 'lkrtc') {
    const room = new Room()
    const subscribed = new Promise<[RemoteVideoTrack, number]>((resolve) =>
      room.on('trackSubscribed', (track) => resolve([track, performance.now()])),
    )
    await room.connect(url, tok)
    const [track, at] = await subscribed
    const stream = new VideoStream(track)
    await stream.next()
    const end = performance.now()
    stream.close()
    await room.disconnect()
    return [end - at, end - start]
  }
  const room = new rtc.Room()
  const subscribed = new Promise<[rtc.RemoteTrack, number]>((resolve) =>
    room.on(rtc.RoomEvent.TrackSubscribed, (track: rtc.RemoteTrack) => resolve([track, performance.now()])),
  )
  await room.connect(url, tok, { autoSubscribe: true, dynacast: false })
  const [track, at] = await subscribed
  const reader = new rtc.VideoStream(track).getReader()
  await reader.read()
  const end = performance.now()
  await reader.cancel().catch(() => {})
  await room.disconnect()
  return [end - at, end - start]
}

async function main() {
  // @ts-expect-error plain ESM helper without types
  const { start } = await import('../scripts/livekit-server.mjs')
  const server = await start()
  const rows: string[] = []
  try {
    for (const stack of STACKS) {
      const room = `first-frame-${stack}-${Date.now()}`
      const options = {
        url: server.url,
        token: await token(server, 'pub', room),
        width: 960,
        height: 540,
        fps: 30,
        seconds: 3600,
        warmupSeconds: 0,
        epochMs: Date.now(),
        codec: 'vp8',
      }
      const publisher = spawn(
        process.execPath,
        ['--import', 'tsx', join(HERE, 'e2e-peer.ts'), 'publish', stack, JSON.stringify(options)],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      try {
        await new Promise<void>((resolve) =>
          publisher.stdout.on('data', (d) => String(d).includes('capturing') && resolve()),
        )
        await new Promise((r) => setTimeout(r, 2000))
        const fromSubscription: number[] = []
        const fromConnect: number[] = []
        for (let i = 0; i < RUNS; i++) {
          const [sub, conn] = await once(stack, server.url, await token(server, `sub-${i}`, room))
          fromSubscription.push(sub)
          fromConnect.push(conn)
        }
        const f = (xs: number[], p: number) =>
          percentile(
            [...xs].sort((a, b) => a - b),
            p,
          ).toFixed(0)
        rows.push(
          `| ${stack} | ${RUNS} | ${f(fromSubscription, 50)} | ${f(fromSubscription, 95)} | ${f(fromConnect, 50)} | ${f(fromConnect, 95)} |`,
        )
        console.error(rows[rows.length - 1])
      } finally {
        publisher.kill('SIGKILL')
      }
    }
  } finally {
    await rtc.dispose()
    await server.stop()
  }
  console.log(
    '| stack | subscriptions | subscribed -> first frame p50 ms | p95 ms | connect -> first frame p50 ms | p95 ms |',
  )
  console.log('|---|---:|---:|---:|---:|---:|')
  for (const row of rows) console.log(row)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
